package linode_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Linode client;
// the seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:       "linode",
		Fields:     map[string]string{"token": "f0220f0220f0220f0220f0220f0220f0220f0220f0220f0220f0220f0220abcd"},
		BaseSuffix: "/v4",
		Request:    clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"*"}},
		Key:        clients.Key{ID: "1234", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:       clients.Root{ID: "5678", Fields: map[string]string{"token": clienttest.FuzzNewRootKey}},
		OldRootID:  "1001",
	})
}
