//go:build tools

// Package vault pins the Vault server that scripts/vault.sh builds when no
// suitable vault binary is installed. It has its own go.mod so that the
// plugin's `go test ./...` never sees it.
package vault

import _ "github.com/hashicorp/vault"
