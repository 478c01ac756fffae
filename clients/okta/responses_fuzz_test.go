package okta_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/okta"
)

// FuzzResponses serves fuzzed answers to every call of the Okta client (as
// a service app, so the token endpoint and the JWKS calls are fuzzed too);
// the seeds in testdata/fuzz/FuzzResponses are documented answers.
func FuzzResponses(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type: "okta",
		Fields: map[string]string{"app_id": "0oafuzz01", "client_id": "0oasvcfuzz", "private_key": pemKey,
			"private_key_id": "vault-root-old"},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz"},
		Key:       clients.Key{ID: "ocsfuzz01", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "vault-root-new", Fields: map[string]string{"private_key": clienttest.FuzzNewRootKey, "private_key_id": "vault-root-new"}},
		OldRootID: "vault-root-older",
	})
}
