package databricks_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/databricks"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Databricks
// client (a PAT root issuing PATs); the seeds in
// testdata/fuzz/FuzzResponses are documented answers.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "databricks",
		Fields:    map[string]string{"token": "dapif0220f0220f0220f0220f0220", "token_id": "tok-old"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", Parameters: map[string]string{"lifetime_seconds": "3600"}},
		Key:       clients.Key{ID: "pat:tok-fuzz", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "tok-new", Fields: map[string]string{"token": clienttest.FuzzNewRootKey, "token_id": "tok-new"}},
		OldRootID: "tok-old",
	})
}
