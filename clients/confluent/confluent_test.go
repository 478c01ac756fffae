package confluent_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/confluent"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/confluent/confluenttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

const keysPath = "/iam/v2/api-keys"

func newProvider(t *testing.T, srv *confluenttest.Server, id, secret string) clients.Provider {
	t.Helper()
	return clienttest.New(t, confluent.TypeName, srv.URL, map[string]string{"cloud_api_key": id, "cloud_api_secret": secret})
}

func rootProvider(t *testing.T, srv *confluenttest.Server) clients.Provider {
	t.Helper()
	r := srv.Root()
	return newProvider(t, srv, r.ID, r.Secret)
}

func last(srv *confluenttest.Server) confluenttest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func appKey(name string, params ...string) clients.KeyRequest {
	p := map[string]string{"owner": confluenttest.AppAccount}
	for i := 0; i+1 < len(params); i += 2 {
		p[params[i]] = params[i+1]
	}
	return clients.KeyRequest{Name: name, Parameters: p}
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, confluent.TypeName)
	if typ.DefaultBaseURL != "https://api.confluent.cloud" {
		t.Fatalf("base %q", typ.DefaultBaseURL)
	}
	if c := typ.Capabilities; c.Expiry || !c.ListByName || !c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	for _, f := range typ.Fields {
		if (f.Name == "cloud_api_secret") != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
	}
	good := map[string]string{"cloud_api_key": "ABCDEF123", "cloud_api_secret": "s"}
	clienttest.AssertValidate(t, confluent.TypeName, good, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"key missing", map[string]string{"cloud_api_key": ""}, "cloud_api_key"},
		{"key with a slash", map[string]string{"cloud_api_key": "ABC/../X"}, "cloud_api_key"},
		{"secret missing", map[string]string{"cloud_api_secret": " "}, "cloud_api_secret"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	tests := []struct {
		name     string
		req      clients.KeyRequest
		resource string
		verify   string // the Auth of the verify request
	}{
		{"cloud key", appKey("vault-app-1", "description", "for app"), "", "key:"},
		{"cluster key", appKey("vault-app-1", "resource", confluenttest.Cluster), confluenttest.Cluster, "root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := confluenttest.NewServer()
			defer srv.Close()
			p := rootProvider(t, srv)
			ctx := context.Background()
			key, err := p.CreateKey(ctx, tt.req)
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			c := last(srv)
			spec, _ := c.Body["spec"].(map[string]any)
			owner, _ := spec["owner"].(map[string]any)
			if c.Method != http.MethodPost || c.Path != keysPath || c.Auth != "root" || c.Status != http.StatusAccepted ||
				spec["display_name"] != "vault-app-1" || owner["id"] != confluenttest.AppAccount {
				t.Fatalf("create request = %+v", c)
			}
			if res, ok := spec["resource"].(map[string]any); (tt.resource == "") == ok || (ok && res["id"] != tt.resource) {
				t.Fatalf("create resource = %v", spec["resource"])
			}
			if key.ID == "" || key.Secret == "" || key.Extra["owner"] != confluenttest.AppAccount || key.Extra["resource"] != tt.resource {
				t.Fatalf("key = %+v", key)
			}
			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			want := tt.verify
			if want == "key:" {
				want += key.ID
			}
			path := keysPath + "/" + key.ID
			if tt.resource == "" {
				path = keysPath
			}
			if v := last(srv); v.Method != http.MethodGet || v.Path != path || v.Auth != want {
				t.Fatalf("verify request = %+v", v)
			}
			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			if r := last(srv); r.Method != http.MethodDelete || r.Path != keysPath+"/"+key.ID || r.Status != http.StatusNoContent {
				t.Fatalf("revoke request = %+v", r)
			}
			err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.Root().Secret)
			if !strings.Contains(err.Error(), "HTTP 401") && !strings.Contains(err.Error(), "HTTP 404") {
				t.Fatalf("VerifyKey after revoke = %v", err)
			}
			if r := last(srv); r.Status != http.StatusNotFound {
				t.Fatalf("second revoke got %d, want the server's 404", r.Status)
			}
		})
	}
}

// Dual rotation: the new key is made and verified while the old one still
// works; revoking the old one leaves the new one working.
func TestDualRotationOverlap(t *testing.T) {
	srv := confluenttest.NewServer()
	defer srv.Close()
	clienttest.AssertDualOverlap(t, rootProvider(t, srv), appKey("vault-dual"), srv.IsLive)
}

func TestBadRequests(t *testing.T) {
	srv := confluenttest.NewServer()
	defer srv.Close()
	p := rootProvider(t, srv)
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"scopes", []string{"CloudClusterAdmin"}, map[string]string{"owner": "sa-1"}, "scopes", "owner"},
		{"no owner", nil, nil, "parameters", "owner is required"},
		{"bad owner", nil, map[string]string{"owner": "team-a"}, "parameters", `"team-a"`},
		{"bad resource", nil, map[string]string{"owner": "sa-1", "resource": "../x"}, "parameters", "resource must be"},
		{"unknown parameter", nil, map[string]string{"owner": "sa-1", "env": "x"}, "parameters", `"env"`},
	})
}

// A 402 (quota exhausted) says so, is sent once, and creates nothing.
func TestQuotaExhausted(t *testing.T) {
	srv := confluenttest.NewServer(confluenttest.WithQuota(1))
	defer srv.Close()
	p := rootProvider(t, srv)
	_, err := p.CreateKey(context.Background(), appKey("k"))
	if err == nil || !strings.Contains(err.Error(), "HTTP 402") || !strings.Contains(err.Error(), "quota is exhausted") ||
		!strings.Contains(err.Error(), "not retried") {
		t.Fatalf("CreateKey over quota = %v", err)
	}
	clienttest.AssertNoSecret(t, err, srv.Root().Secret)
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("a 402 was sent %d times", n)
	}
	if n := len(srv.LiveKeys()); n != 1 {
		t.Fatalf("%d keys live", n)
	}
}

// A create whose answer is lost (a 500 after the key was stored) is not
// retried, and FindKeys finds the key by name so rollback can revoke it.
func TestLostCreateIsFoundNotOrphaned(t *testing.T) {
	srv := confluenttest.NewServer(confluenttest.WithMaxPage(1))
	defer srv.Close()
	posts := func() int {
		return clienttest.Count(srv.Requests(), func(r confluenttest.Recorded) bool { return r.Method == http.MethodPost })
	}
	clienttest.AssertLostCreateFound(t, rootProvider(t, srv), appKey("vault-wal-1"), srv.LoseNextCreate, posts,
		func(name string) bool {
			return slices.ContainsFunc(srv.LiveKeys(), func(k confluenttest.Key) bool { return k.DisplayName == name })
		})
}

func TestRootRotation(t *testing.T) {
	srv := confluenttest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	old := srv.Root()
	p := rootProvider(t, srv)
	if id, err := p.RootID(ctx); err != nil || id != old.ID {
		t.Fatalf("RootID = %q, %v", id, err)
	}
	root, err := p.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	c := last(srv)
	spec, _ := c.Body["spec"].(map[string]any)
	if owner, _ := spec["owner"].(map[string]any); c.Method != http.MethodPost || c.Auth != "root" || owner["id"] != confluenttest.AdminAccount ||
		spec["resource"] != nil || spec["display_name"] != "vault-root-2" {
		t.Fatalf("create_root request = %+v", c)
	}
	if root.ID == "" || root.Fields["cloud_api_key"] != root.ID || root.Fields["cloud_api_secret"] == "" {
		t.Fatalf("root = %s", root.ID)
	}
	if err := p.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot: %v", err)
	}
	if v := last(srv); v.Auth != "key:"+root.ID || v.Path != keysPath || v.Query["page_size"] != "1" {
		t.Fatalf("verify_root request = %+v", v)
	}
	cur := newProvider(t, srv, root.ID, root.Fields["cloud_api_secret"])
	if err := cur.RevokeRoot(ctx, old.ID); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != keysPath+"/"+old.ID || r.Auth != "key:"+root.ID {
		t.Fatalf("revoke_root request = %+v", r)
	}
	if srv.IsLive(old.Secret) || !srv.IsLive(root.Fields["cloud_api_secret"]) {
		t.Fatal("after RevokeRoot exactly the old key must be gone")
	}
	err = cur.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"cloud_api_key": old.ID, "cloud_api_secret": old.Secret}})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("old root verified: %v", err)
	}
	clienttest.AssertNoSecret(t, err, old.Secret, root.Fields["cloud_api_secret"])
}

func TestRateLimitRetried(t *testing.T) {
	srv := confluenttest.NewServer()
	defer srv.Close()
	p := rootProvider(t, srv)
	statuses := clienttest.Statuses(srv.Requests, func(r confluenttest.Recorded) int { return r.Status })
	clienttest.AssertRetriedAfter429(t, p, appKey("after-429"), srv.FailNext, statuses, http.StatusAccepted)
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := confluenttest.NewServer()
	defer srv.Close()
	p := rootProvider(t, srv)
	ctx := context.Background()
	key, err := p.CreateKey(ctx, appKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create":      func() error { _, err := p.CreateKey(ctx, appKey("k2")); return err },
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"list":        func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"verify_root": func() error {
			return p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"cloud_api_key": key.ID, "cloud_api_secret": key.Secret}})
		},
		"revoke_root": func() error { return p.RevokeRoot(ctx, "ABC") },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.Root().Secret, key.Secret)
}
