package auth0_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/auth0"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Auth0 client;
// the seeds in testdata/fuzz/FuzzResponses are documented answers.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "auth0",
		Fields:    map[string]string{"client_id": "vaultRootFuzz", "client_secret": "rootsecretf0220f0220f0220f0220"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"read:orders"}, Parameters: map[string]string{"audience": "https://api.example.com"}},
		Key:       clients.Key{ID: "clientfuzz01", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret, Extra: map[string]string{"audience": "https://api.example.com"}},
		Root:      clients.Root{ID: "secret-new", Fields: map[string]string{"client_secret": clienttest.FuzzNewRootKey}},
		OldRootID: "secret-old",
	})
}
