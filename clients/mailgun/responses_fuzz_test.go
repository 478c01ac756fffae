package mailgun_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Mailgun client;
// the seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "mailgun",
		Fields:    map[string]string{"api_key": "f0220f0220f0220f0220f0220f0220ab-f0220f02-20f0220f", "api_key_id": "aaaa0000-bbbb1111"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", Parameters: map[string]string{"role": "sending", "domain_name": "mg.example.com"}},
		Key:       clients.Key{ID: "cccc2222-dddd3333", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "eeee4444-ffff5555", Fields: map[string]string{"api_key": clienttest.FuzzNewRootKey, "api_key_id": "eeee4444-ffff5555"}},
		OldRootID: "aaaa0000-bbbb1111",
	})
}
