package algolia_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/algolia"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Algolia client;
// the seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:    "algolia",
		Fields:  map[string]string{"application_id": "FUZZAPP", "admin_key": "f0220f0220f0220f0220f0220f0220ab"},
		Request: clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"search"}},
		Key:     clients.Key{ID: algolia.KeyID(clienttest.FuzzKeySecret), Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
	})
}
