package elasticsearch_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/elasticsearch"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Elasticsearch
// client; the seeds in testdata/fuzz/FuzzResponses are documented answers of
// the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:    "elasticsearch",
		Fields:  map[string]string{"username": "vault-admin", "password": "f0220f0220f0220f0220esPw"},
		Request: clients.KeyRequest{Name: "vault-app-fuzz", Parameters: map[string]string{"role_descriptors": `{"r":{"cluster":["monitor"]}}`}},
		Key:     clients.Key{ID: "VuaCfGcBCdbkQm-e5aOx", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
	})
}
