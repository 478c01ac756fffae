package sendgrid_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/sendgrid"
)

// FuzzResponses serves fuzzed answers to every call of the SendGrid client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:      "sendgrid",
		Fields:    map[string]string{"api_key": "SG.rootKeyId_f022.rootsecret_f0220f0220f0220f0220", "on_behalf_of": "subuser-1"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"mail.send"}},
		Key:       clients.Key{ID: "keyId_0123", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "newRootId_1", Fields: map[string]string{"api_key": clienttest.FuzzNewRootKey}},
		OldRootID: "oldRootId_1",
	})
}
