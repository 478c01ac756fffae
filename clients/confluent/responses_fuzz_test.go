package confluent_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Confluent
// client; the seeds in testdata/fuzz/FuzzResponses are documented answers
// of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "confluent",
		Fields:    map[string]string{"cloud_api_key": "ROOTKEY0001", "cloud_api_secret": "f0220f0220f0220f0220f0220f0220f0220f0220"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", Parameters: map[string]string{"owner": "sa-app001"}},
		Key:       clients.Key{ID: "APPKEY0001", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret, Extra: map[string]string{"owner": "sa-app001"}},
		Root:      clients.Root{ID: "NEWKEY0001", Fields: map[string]string{"cloud_api_key": "NEWKEY0001", "cloud_api_secret": clienttest.FuzzNewRootKey}},
		OldRootID: "ROOTKEY0001",
	})
}
