package grafana_test

import (
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/grafana"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Grafana client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "grafana",
		Fields:    map[string]string{"token": "glsa_f0220f0220f0220f0220f0220f02_0a1b2c3d", "service_account_id": "7", "token_id": "3"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", ExpiresAt: time.Now().Add(24 * time.Hour)},
		Key:       clients.Key{ID: "11", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "12", Fields: map[string]string{"token": clienttest.FuzzNewRootKey, "token_id": "12"}},
		OldRootID: "3",
	})
}
