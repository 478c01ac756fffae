package openrouter_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openrouter"
)

// FuzzResponses serves fuzzed answers to every call of the OpenRouter
// client; the seeds in testdata/fuzz/FuzzResponses are documented answers.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:       "openrouter",
		Fields:     map[string]string{"management_key": "sk-or-v1-mgmtf0220f0220f0220f0220f0220"},
		BaseSuffix: "/api/v1",
		Request:    clients.KeyRequest{Name: "vault-app-fuzz", Parameters: map[string]string{"limit": "5", "expires_at": "720h"}},
		Key:        clients.Key{ID: "f0220abc", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
	})
}
