package vercel_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/vercel"
)

// FuzzResponses serves fuzzed answers to every call of the Vercel client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "vercel",
		Fields:    map[string]string{"api_token": "f0220f0220f0220f0220vrcl", "team_id": "team_fuzz01"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz"},
		Key:       clients.Key{ID: "tokfuzz01", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "tokrootnew01", Fields: map[string]string{"api_token": clienttest.FuzzNewRootKey}},
		OldRootID: "tokrootold01",
	})
}
