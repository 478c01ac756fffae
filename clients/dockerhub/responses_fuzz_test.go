package dockerhub_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/dockerhub"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Docker Hub client
// (the JWT exchange included); the seeds in testdata/fuzz/FuzzResponses are
// documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:    "dockerhub",
		Fields:  map[string]string{"username": "vaultbot", "password": "f0220f0220f0220f0220dkPw"},
		Request: clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"repo:read"}},
		Key:     clients.Key{ID: "a1b2c3d4-0000-1111-2222-333344445555", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
	})
}
