package twilio_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/twilio"
)

// FuzzResponses serves fuzzed answers to every call of the Twilio client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type: "twilio",
		Fields: map[string]string{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "authtoken_f0220f0220f0220f0220f0",
			"iam_base_url": "{{base}}", "accounts_base_url": "{{base}}"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz"},
		Key:       clients.Key{ID: "SK0123456789abcdef0123456789abcdef", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret, Extra: map[string]string{"key_type": "restricted"}},
		Root:      clients.Root{ID: "authtoken-000000000001", Fields: map[string]string{"auth_token": clienttest.FuzzNewRootKey}},
		OldRootID: "authtoken-000000000002",
	})
}
