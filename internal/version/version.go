// Package version holds the plugin version, injected at build time with
// -ldflags "-X github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/version.Version=v1.2.3".
package version

// Version is the plugin's semantic version, reported to Vault as RunningVersion.
var Version = "v0.0.0-dev"
