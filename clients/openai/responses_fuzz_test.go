package openai_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openai"
)

// FuzzResponses serves fuzzed answers to every call of the OpenAI client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "openai",
		Fields:    map[string]string{"admin_key": "sk-admin-f0220f0220f0220f0220f0220s1MA", "project_id": "proj_fuzz01"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz"},
		Key:       clients.Key{ID: "svc_acct_fuzz01", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "key_new01", Fields: map[string]string{"admin_key": clienttest.FuzzNewRootKey, "admin_key_id": "key_new01"}},
		OldRootID: "key_old01",
	})
}
