package httptpl_test

import (
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httptpl"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// FuzzResponses serves fuzzed answers to every call of an http provider
// configured like the demo example of docs/providers/http.md (create-then-
// delete root rotation, root id read from the verify answer); the seeds in
// testdata/fuzz/FuzzResponses are that API's answers.
func FuzzResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type: "http",
		Fields: map[string]string{
			"root_secret":         "demoadm_f0220f0220f0220f0220f0220f0220f0",
			"create_path":         "/v1/keys",
			"create_body":         `{"name": {{.Key.Name}}, "scopes": {{.Scopes}}{{if .Key.ExpiresAt}}, "expires_at": {{.Key.ExpiresAt}}{{end}}}`,
			"key_id_path":         "id",
			"key_secret_path":     "key",
			"key_expires_path":    "expires_at",
			"verify_path":         "/v1/whoami",
			"revoke_path":         "/v1/keys/{{.Key.ID}}",
			"list_path":           "/v1/keys?name={{.Key.Name}}",
			"list_items_path":     "keys",
			"list_name_path":      "name",
			"list_id_path":        "id",
			"root_create_path":    "/v1/admin-keys",
			"root_create_body":    `{"name": {{.Key.Name}}}`,
			"root_id_path":        "id",
			"root_secret_path":    "admin_key",
			"root_verify_path":    "/v1/whoami",
			"root_verify_id_path": "id",
			"root_revoke_path":    "/v1/admin-keys/{{.Root.ID}}",
		},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", Scopes: []string{"read"}, ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		Key:       clients.Key{ID: "key_0123456789ab", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "adm_new000000000", Fields: map[string]string{"root_secret": clienttest.FuzzNewRootKey, "root_id": "adm_new000000000"}},
		OldRootID: "adm_old000000000",
	})
}

// FuzzRollResponses is FuzzResponses for a roll-style root (root_roll=true,
// an API-key header instead of Bearer, a list answered as a bare array).
func FuzzRollResponses(f *testing.F) {
	clienttest.FuzzResponses(f, clienttest.FuzzTarget{
		Type: "http",
		Fields: map[string]string{
			"root_secret":        "rootkey_f0220f0220f0220f0220f0220f0220f0",
			"root_id":            "root-1",
			"auth_header":        "X-Api-Key: {{.Root.Secret}}",
			"key_auth_header":    "X-Api-Key: {{.Key.Secret}}",
			"create_path":        "/api/tokens?label={{.Key.Name}}",
			"create_body":        `label={{.Key.Name}}&ttl={{.Key.TTLSeconds}}`,
			"create_headers":     "Content-Type: application/x-www-form-urlencoded",
			"key_id_path":        "token.id",
			"key_secret_path":    "secret",
			"key_expires_path":   "token.expires",
			"verify_path":        "/api/me",
			"revoke_path":        "/api/tokens/{{.Key.ID}}",
			"revoke_gone_status": "404,410",
			"list_path":          "/api/tokens",
			"list_items_path":    "@this",
			"list_name_path":     "label",
			"list_id_path":       "id",
			"root_create_path":   "/api/root/roll",
			"root_roll":          "true",
			"root_secret_path":   "secret",
			"root_verify_path":   "/api/me",
		},
		Request:   clients.KeyRequest{Name: "vault-app-fuzz", ExpiresAt: time.Now().Add(time.Hour)},
		Key:       clients.Key{ID: "41", Name: "vault-app-fuzz", Secret: clienttest.FuzzKeySecret},
		Root:      clients.Root{ID: "root-1", Fields: map[string]string{"root_secret": clienttest.FuzzNewRootKey, "root_id": "root-1"}},
		OldRootID: "root-0",
	})
}
