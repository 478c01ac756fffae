package cloudflare_test

import (
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/cloudflare"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of the Cloudflare client; the
// seeds in testdata/fuzz/FuzzResponses are documented answers of the API.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type:   "cloudflare",
		Fields: map[string]string{"api_token": "cftoken_f0220f0220f0220f0220f0220f022"},
		Request: clients.KeyRequest{Name: "vault-app-fuzz", ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
			Parameters: map[string]string{"policies": `[{"effect":"allow","permission_groups":[{"id":"c8fed203ed3043cba015a93ad1616f1f"}],"resources":{"com.cloudflare.api.account.zone.*":"*"}}]`}},
		Key:       clients.Key{ID: "ed17574386854bf78a67040be0a770b0", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "newroot0123", Fields: map[string]string{"api_token": clienttest.FuzzNewRootKey}},
		OldRootID: "oldroot0123",
	})
}
