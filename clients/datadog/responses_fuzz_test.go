package datadog_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/datadog"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Datadog client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:   "datadog",
		Fields: map[string]string{"api_key": "ddapikey_f0220f0220f0220f0220a1b2", "app_key": "ddappkey_f0220f0220f0220f0220c3d4"},
		Request: clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"dashboards_read"},
			Parameters: map[string]string{"key_kind": "application_key"}},
		Key: clients.Key{ID: "app:appKeyId-0123", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root: clients.Root{ID: "app_key:newApp,api_key:newApi",
			Fields: map[string]string{"api_key": clienttest.FuzzNewRootKey, "app_key": clienttest.FuzzNewRootKey + "_app"}},
		OldRootID: "app_key:oldApp,api_key:oldApi",
	})
}
