package mongodbatlas_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers (Digest challenges included) to every
// call of the Atlas client; the seeds in testdata/fuzz/FuzzResponses are
// documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type: "mongodbatlas",
		Fields: map[string]string{"public_key": "fzpubkey", "private_key": "f0220f02-20f0-220f-0220-f0220f0220ab",
			"org_id": "5a0a1e7e0f2912c554080adc"},
		Request: clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"ORG_MEMBER"}},
		Key: clients.Key{ID: "6b0a1e7e0f2912c554080add", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret,
			Extra: map[string]string{"public_key": "fzkeypub"}},
		Root: clients.Root{ID: "6b0a1e7e0f2912c554080ade",
			Fields: map[string]string{"public_key": "fznewpub", "private_key": clienttest.FuzzNewRootKey}},
		OldRootID: "5a0a1e7e0f2912c554080adf",
	})
}
