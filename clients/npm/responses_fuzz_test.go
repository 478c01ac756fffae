package npm_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/npm"
)

// FuzzResponses serves fuzzed answers to every call of the npm client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the
// registry.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type: "npm",
		Fields: map[string]string{"token": "npm_f0220f0220f0220f0220npmTok", "password": "f0220f0220f0220npmPw",
			"otp_secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"},
		Request: clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"@acme"}, Parameters: map[string]string{"packages": "left-pad"}},
		Key:     clients.Key{ID: "a1b2c3d4e5f6", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
	})
}
