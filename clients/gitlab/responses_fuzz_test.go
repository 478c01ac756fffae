package gitlab_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/gitlab"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the GitLab client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "gitlab",
		Fields:    map[string]string{"token": "glpat-f0220f0220f0220f0220", "target_type": "project", "target_id": "42"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"read_api"}, Parameters: map[string]string{"access_level": "30"}},
		Key:       clients.Key{ID: "1001", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "2002", Fields: map[string]string{"token": clienttest.FuzzNewRootKey}},
		OldRootID: "2001",
	})
}
