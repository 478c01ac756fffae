package demo_test

import (
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/demo"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the demo client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "demo",
		Fields:    map[string]string{"admin_key": "demoadm_f0220f0220f0220f0220f0220f0220f0"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"read"}, ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		Key:       clients.Key{ID: "key_0123456789ab", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "adm_new000000000", Fields: map[string]string{"admin_key": clienttest.FuzzNewRootKey}},
		OldRootID: "adm_old000000000",
	})
}
