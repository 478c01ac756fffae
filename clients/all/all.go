// Package all registers every provider type; adding a type is one line here.
package all

import (
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/demo"
)
