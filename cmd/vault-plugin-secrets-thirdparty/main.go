// Command vault-plugin-secrets-thirdparty is the Vault plugin binary.
package main

import (
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/backend"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/pluginserve"
)

func main() { pluginserve.Main(backend.Factory) }
