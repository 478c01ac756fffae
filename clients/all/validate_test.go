package all_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/all"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// TestValidateKeyRequestSendsNothing: for every registered type, a role's
// scopes and parameters are checked without a single request to the API
// (the backend calls this on every role write), a good request passes,
// and each bad one is a FieldError on the field at fault.
func TestValidateKeyRequestSendsNothing(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "validation must not call the API", http.StatusTeapot)
	}))
	defer srv.Close()

	types := typeCases()
	registered := map[string]bool{}
	for _, typ := range clients.Types() {
		registered[typ.Name] = false
	}
	for _, tc := range types {
		registered[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			p := clienttest.New(t, tc.name, srv.URL, tc.fields)
			for i, c := range tc.checks {
				err := p.ValidateKeyRequest(c.req)
				if c.field == "" {
					if err != nil {
						t.Errorf("check %d: a valid request was refused: %v", i, err)
					}
					continue
				}
				clienttest.AssertFieldError(t, err, c.field, "")
			}
		})
	}
	for name, covered := range registered {
		if !covered {
			t.Errorf("provider type %q has no ValidateKeyRequest case here", name)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("validation sent %d requests to the API", n)
	}
}

// check is a key request ValidateKeyRequest must accept (field "") or
// refuse with a FieldError on field.
type check struct {
	req   clients.KeyRequest
	field string // "" when the request is valid
}

// typeCase is a registered type: fields that build a client of it, and
// checks of its ValidateKeyRequest.
type typeCase struct {
	name   string
	fields map[string]string
	checks []check
}

// typeCases has a case for every registered type (TestValidateKeyRequest-
// SendsNothing fails when one is missing).
func typeCases() []typeCase {
	params := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []typeCase{
		{"demo", map[string]string{"admin_key": "demoadm_x"}, []check{
			{clients.KeyRequest{Scopes: []string{"read"}}, ""},
			{clients.KeyRequest{Parameters: params("team", "a")}, "parameters"},
		}},
		{"sendgrid", map[string]string{"api_key": "SG.x"}, []check{
			{clients.KeyRequest{Scopes: []string{"mail.send"}}, ""},
			{clients.KeyRequest{Parameters: params("team", "a")}, "parameters"},
		}},
		{"confluent", map[string]string{"cloud_api_key": "ABC123", "cloud_api_secret": "s"}, []check{
			{clients.KeyRequest{Parameters: params("owner", "sa-1", "resource", "lkc-1")}, ""},
			{clients.KeyRequest{}, "parameters"},
			{clients.KeyRequest{Scopes: []string{"x"}, Parameters: params("owner", "sa-1")}, "scopes"},
		}},
		{"datadog", map[string]string{"api_key": "a", "app_key": "b"}, []check{
			{clients.KeyRequest{}, ""},
			{clients.KeyRequest{Parameters: params("key_kind", "application_key"), Scopes: []string{"dashboards_read"}}, ""},
			{clients.KeyRequest{Parameters: params("key_kind", "password")}, "parameters"},
			{clients.KeyRequest{Scopes: []string{"dashboards_read"}}, "scopes"},
		}},
		{"algolia", map[string]string{"application_id": "APP1", "admin_key": "k"}, []check{
			{clients.KeyRequest{Scopes: []string{"search"}, Parameters: params("indexes", "a,b")}, ""},
			{clients.KeyRequest{}, "scopes"},
			{clients.KeyRequest{Scopes: []string{"search"}, Parameters: params("validity", "1")}, "parameters"},
		}},
		{"cloudflare", map[string]string{"api_token": "t"}, []check{
			{clients.KeyRequest{Parameters: params("policies", `[{"effect":"allow","resources":{"com.cloudflare.api.account.zone.*":"*"},"permission_groups":[{"id":"c8fed203ed3043cba015a93ad1616f1f"}]}]`)}, ""},
			{clients.KeyRequest{}, "parameters"},
			{clients.KeyRequest{Scopes: []string{"zone:read"}}, "scopes"},
			{clients.KeyRequest{Parameters: params("policies", "not json")}, "parameters"},
		}},
		{"twilio", map[string]string{"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "t"}, []check{
			{clients.KeyRequest{}, ""},
			{clients.KeyRequest{Scopes: []string{"/twilio/messaging"}}, "scopes"},
			{clients.KeyRequest{Parameters: params("key_type", "admin")}, "parameters"},
		}},
		{"gitlab", map[string]string{"token": "glpat-x", "target_type": "project", "target_id": "7"}, []check{
			{clients.KeyRequest{Scopes: []string{"read_api"}, Parameters: params("access_level", "30")}, ""},
			{clients.KeyRequest{Parameters: params("access_level", "31")}, "parameters"},
			{clients.KeyRequest{Scopes: []string{" "}}, "scopes"},
		}},
		{"grafana", map[string]string{"token": "glsa_x", "service_account_id": "2"}, []check{
			{clients.KeyRequest{}, ""},
			{clients.KeyRequest{Scopes: []string{"dashboards:read"}}, "scopes"},
			{clients.KeyRequest{Parameters: params("role", "Admin")}, "parameters"},
		}},
		{"openai", map[string]string{"admin_key": "sk-admin-x", "project_id": "proj_1"}, []check{
			{clients.KeyRequest{}, ""},
			{clients.KeyRequest{Scopes: []string{"model.read"}}, "scopes"},
			{clients.KeyRequest{Parameters: params("team", "a")}, "parameters"},
		}},
		{"auth0", map[string]string{"client_id": "abc", "client_secret": "s"}, []check{
			{clients.KeyRequest{Scopes: []string{"read:orders"}, Parameters: params("audience", "https://api.example.com")}, ""},
			{clients.KeyRequest{}, "parameters"},
			{clients.KeyRequest{Scopes: []string{"read orders"}, Parameters: params("audience", "https://api.example.com")}, "scopes"},
		}},
		{"databricks", map[string]string{"token": "dapi1"}, []check{
			{clients.KeyRequest{Parameters: params("lifetime_seconds", "3600")}, ""},
			{clients.KeyRequest{Parameters: params("kind", "oauth_secret", "service_principal_id", "12", "application_id", "app")}, ""},
			{clients.KeyRequest{Parameters: params("kind", "oauth_secret")}, "parameters"},
			{clients.KeyRequest{Parameters: params("kind", "oauth_secret", "service_principal_id", "12", "application_id", "app"), Scopes: []string{"sql"}}, "scopes"},
		}},
		{"okta", map[string]string{"app_id": "0oa1", "api_token": "00tok"}, []check{
			{clients.KeyRequest{}, ""},
			{clients.KeyRequest{Scopes: []string{"okta.apps.read"}}, "scopes"},
			{clients.KeyRequest{Parameters: params("status", "INACTIVE")}, "parameters"},
		}},
		{"openrouter", map[string]string{"management_key": "sk-or-v1-x"}, []check{
			{clients.KeyRequest{Parameters: params("limit", "2.5", "limit_reset", "monthly", "expires_at", "720h")}, ""},
			{clients.KeyRequest{Parameters: params("limit", "-1")}, "parameters"},
			{clients.KeyRequest{Parameters: params("limit_reset", "hourly")}, "parameters"},
			{clients.KeyRequest{Parameters: params("expires_at", "2001-01-01T00:00:00Z")}, "parameters"},
			{clients.KeyRequest{Scopes: []string{"chat"}}, "scopes"},
		}},
		{"tailscale", map[string]string{"api_key": "tskey-api-x"}, []check{
			{clients.KeyRequest{Scopes: []string{"tag:ci"}, Parameters: params("reusable", "true", "ephemeral", "false")}, ""},
			{clients.KeyRequest{Scopes: []string{"ci"}}, "scopes"},
			{clients.KeyRequest{Parameters: params("reusable", "maybe")}, "parameters"},
		}},
		{"vercel", map[string]string{"api_token": "t", "team_id": "team_1"}, []check{
			{clients.KeyRequest{}, ""},
			{clients.KeyRequest{Scopes: []string{"read"}}, "scopes"},
			{clients.KeyRequest{Parameters: params("teamId", "x")}, "parameters"},
		}},
		{"elasticsearch", map[string]string{"username": "u", "password": "p"}, []check{
			{clients.KeyRequest{Parameters: params("role_descriptors", `{"r":{"cluster":["monitor"]}}`, "metadata", `{"a":1}`)}, ""},
			{clients.KeyRequest{Scopes: []string{"monitor"}}, "scopes"},
			{clients.KeyRequest{Parameters: params("role_descriptors", "monitor")}, "parameters"},
		}},
		{"dockerhub", map[string]string{"username": "u", "password": "p"}, []check{
			{clients.KeyRequest{Scopes: []string{"repo:read", "repo:write"}}, ""},
			{clients.KeyRequest{}, "scopes"},
			{clients.KeyRequest{Scopes: []string{"repo:root"}}, "scopes"},
			{clients.KeyRequest{Scopes: []string{"repo:read"}, Parameters: params("x", "y")}, "parameters"},
		}},
		{"npm", map[string]string{"token": "npm_x", "password": "p"}, []check{
			{clients.KeyRequest{Scopes: []string{"@acme"}, Parameters: params("packages", "left-pad", "cidr", "10.0.0.0/8")}, ""},
			{clients.KeyRequest{Scopes: []string{"acme"}}, "scopes"},
			{clients.KeyRequest{Parameters: params("orgs_permission", "owner")}, "parameters"},
		}},
		{"linode", map[string]string{"token": "t"}, []check{
			{clients.KeyRequest{Scopes: []string{"linodes:read_only"}}, ""},
			{clients.KeyRequest{}, "scopes"},
			{clients.KeyRequest{Scopes: []string{"*"}, Parameters: params("expiry", "1")}, "parameters"},
		}},
		{"mailgun", map[string]string{"api_key": "k"}, []check{
			{clients.KeyRequest{Parameters: params("role", "sending", "domain_name", "mg.example.com")}, ""},
			{clients.KeyRequest{}, "parameters"},
			{clients.KeyRequest{Scopes: []string{"send"}, Parameters: params("role", "basic")}, "scopes"},
		}},
		{"mongodbatlas", map[string]string{"public_key": "abcdefgh", "private_key": "p", "org_id": "5a0a1e7e0f2912c554080adc"}, []check{
			{clients.KeyRequest{Scopes: []string{"ORG_MEMBER"}}, ""},
			{clients.KeyRequest{}, "scopes"},
			{clients.KeyRequest{Scopes: []string{"GROUP_OWNER"}}, "scopes"},
			{clients.KeyRequest{Scopes: []string{"ORG_MEMBER"}, Parameters: params("desc", "x")}, "parameters"},
		}},
		{"http", map[string]string{"root_secret": "s", "create_path": "/v1/keys",
			"create_body": `{"name": {{.Key.Name}}, "team": {{.Parameters.team}}}`, "key_id_path": "id",
			"key_secret_path": "key", "verify_path": "/v1/whoami", "revoke_path": "/v1/keys/{{.Key.ID}}"}, []check{
			{clients.KeyRequest{Parameters: params("team", "a")}, ""},
			{clients.KeyRequest{Parameters: params("tier", "gold")}, "parameters"},
		}},
	}
}
