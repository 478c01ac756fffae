package mailgun_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mailgun"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mailgun/mailguntest"
)

func newProvider(t *testing.T, srv *mailguntest.Server, secret, id string) clients.Provider {
	t.Helper()
	return clienttest.New(t, mailgun.TypeName, srv.URL, map[string]string{"api_key": secret, "api_key_id": id})
}

func rootProvider(t *testing.T, srv *mailguntest.Server) clients.Provider {
	t.Helper()
	r := srv.Root()
	return newProvider(t, srv, r.Secret, r.ID)
}

func last(srv *mailguntest.Server) mailguntest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func sending(name string) clients.KeyRequest {
	return clients.KeyRequest{Name: name, Parameters: map[string]string{"role": "sending", "domain_name": mailguntest.Domain}}
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, mailgun.TypeName)
	if typ.DefaultBaseURL != "https://api.mailgun.net" {
		t.Fatalf("base %q", typ.DefaultBaseURL)
	}
	if c := typ.Capabilities; !c.Expiry || !c.ListByName || !c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	clienttest.AssertValidate(t, mailgun.TypeName, map[string]string{"api_key": "k"}, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"ok with id", map[string]string{"api_key_id": "f2153fd0-f1277777"}, ""},
		{"key missing", map[string]string{"api_key": ""}, "api_key"},
		{"id with a slash", map[string]string{"api_key_id": "a/../b"}, "api_key_id"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	srv := mailguntest.NewServer()
	defer srv.Close()
	p := rootProvider(t, srv)
	ctx := context.Background()
	req := sending("vault-app-1")
	req.ExpiresAt = time.Now().Add(10 * time.Minute)
	key, err := p.CreateKey(ctx, req)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	c := last(srv)
	exp, _ := strconv.Atoi(c.Form["expiration"])
	if c.Method != http.MethodPost || c.Path != "/v1/keys" || c.Auth != "root" || !strings.HasPrefix(c.ContentType, "multipart/form-data; boundary=") ||
		c.Form["role"] != "sending" || c.Form["kind"] != "domain" || c.Form["domain_name"] != mailguntest.Domain ||
		c.Form["description"] != "vault-app-1" || exp < 590 || exp > 600 {
		t.Fatalf("create request = %+v", c)
	}
	if key.ID == "" || key.Secret == "" || key.Extra["kind"] != "domain" || key.Extra["domain_name"] != mailguntest.Domain ||
		time.Until(key.ExpiresAt) < 9*time.Minute {
		t.Fatalf("key = %+v", key)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey (a domain key: 403 on the domain list) = %v", err)
	}
	if v := last(srv); v.Path != "/v3/domains" || v.Auth != "key:"+key.ID || v.Status != http.StatusForbidden {
		t.Fatalf("verify request = %+v", v)
	}
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != "/v1/keys/"+key.ID || r.Status != 200 {
		t.Fatalf("revoke request = %+v", r)
	}
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.Root().Secret)
	if !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}
	if r := last(srv); r.Status != http.StatusNotFound {
		t.Fatalf("second revoke got %d, want the server's 404", r.Status)
	}

	// A user key without expiry.
	k2, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-dual", Parameters: map[string]string{"role": "basic"}})
	if err != nil || !k2.ExpiresAt.IsZero() {
		t.Fatalf("user key: %+v, %v", k2, err)
	}
	if f := last(srv).Form; f["kind"] != "user" || f["domain_name"] != "" || f["expiration"] != "" {
		t.Fatalf("user key form = %v", f)
	}
	if err := p.VerifyKey(ctx, k2); err != nil || last(srv).Status != http.StatusOK {
		t.Fatalf("VerifyKey of a user key: %v", err)
	}
}

// Dual rotation: the new key is made and verified while the old one still
// works; revoking the old one leaves the new one working.
func TestDualRotationOverlap(t *testing.T) {
	srv := mailguntest.NewServer()
	defer srv.Close()
	clienttest.AssertDualOverlap(t, rootProvider(t, srv), sending("vault-dual"), srv.IsLive)
}

func TestBadRequests(t *testing.T) {
	srv := mailguntest.NewServer()
	defer srv.Close()
	p := rootProvider(t, srv)
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"scopes", []string{"send"}, map[string]string{"role": "basic"}, "scopes", "take no scopes"},
		{"no role", nil, nil, "parameters", "role is required"},
		{"bad role", nil, map[string]string{"role": "owner"}, "parameters", `"owner"`},
		{"web kind", nil, map[string]string{"role": "basic", "kind": "web"}, "parameters", "kind must be user or domain"},
		{"domain kind without domain", nil, map[string]string{"role": "sending", "kind": "domain"}, "parameters", "needs domain_name"},
		{"user kind with domain", nil, map[string]string{"role": "basic", "kind": "user", "domain_name": "mg.example.com"}, "parameters", "domain keys only"},
		{"unknown parameter", nil, map[string]string{"role": "basic", "expiration": "60"}, "parameters", `"expiration"`},
	})
}

// A create whose answer is lost (a 500 after the key was stored) is not
// retried, and FindKeys finds the key by name so rollback can revoke it.
func TestLostCreateIsFoundNotOrphaned(t *testing.T) {
	srv := mailguntest.NewServer()
	defer srv.Close()
	posts := func() int {
		return clienttest.Count(srv.Requests(), func(r mailguntest.Recorded) bool { return r.Method == http.MethodPost })
	}
	clienttest.AssertLostCreateFound(t, rootProvider(t, srv), sending("vault-wal-1"), srv.LoseNextCreate, posts,
		func(name string) bool {
			return slices.ContainsFunc(srv.LiveKeys(), func(k mailguntest.Key) bool { return k.Description == name })
		})
}

func TestRootRotation(t *testing.T) {
	srv := mailguntest.NewServer()
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
	if c := last(srv); c.Method != http.MethodPost || c.Auth != "root" || c.Form["role"] != "admin" || c.Form["kind"] != "user" ||
		c.Form["description"] != "vault-root-2" {
		t.Fatalf("create_root request = %+v", c)
	}
	if root.ID == "" || root.Fields["api_key_id"] != root.ID || root.Fields["api_key"] == "" {
		t.Fatalf("root = %s", root.ID)
	}
	if err := p.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot: %v", err)
	}
	if v := last(srv); v.Path != "/v1/keys" || v.Method != http.MethodGet || v.Auth != "key:"+root.ID {
		t.Fatalf("verify_root request = %+v", v)
	}
	cur := newProvider(t, srv, root.Fields["api_key"], root.ID)
	if err := cur.RevokeRoot(ctx, old.ID); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != "/v1/keys/"+old.ID || r.Auth != "key:"+root.ID {
		t.Fatalf("revoke_root request = %+v", r)
	}
	if srv.IsLive(old.Secret) || !srv.IsLive(root.Fields["api_key"]) {
		t.Fatal("after RevokeRoot exactly the old key must be gone")
	}
	err = cur.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"api_key": old.Secret}})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("old root verified: %v", err)
	}
	clienttest.AssertNoSecret(t, err, old.Secret, root.Fields["api_key"])
}

// Without a known api_key_id rotation refuses before creating anything; a
// key that is not an admin cannot rotate either.
func TestRootRotationRefusals(t *testing.T) {
	srv := mailguntest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	root := srv.Root()
	for _, id := range []string{"", "f0000000-00000000"} {
		p := newProvider(t, srv, root.Secret, id)
		if got, err := p.RootID(ctx); err != nil || got != "" {
			t.Fatalf("RootID with id %q = %q, %v", id, got, err)
		}
		_, err := p.CreateRoot(ctx, "r")
		if err == nil || !strings.Contains(err.Error(), "api_key_id") {
			t.Fatalf("CreateRoot with id %q = %v", id, err)
		}
		clienttest.AssertNoSecret(t, err, root.Secret)
	}
	k, err := rootProvider(t, srv).CreateKey(ctx, clients.KeyRequest{Name: "basic", Parameters: map[string]string{"role": "basic"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newProvider(t, srv, k.Secret, k.ID).CreateRoot(ctx, "r"); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("CreateRoot with a basic key = %v", err)
	}
	if n := len(srv.LiveKeys()); n != 2 {
		t.Fatalf("%d keys live", n)
	}
}

func TestRateLimitRetried(t *testing.T) {
	srv := mailguntest.NewServer()
	defer srv.Close()
	p := rootProvider(t, srv)
	statuses := clienttest.Statuses(srv.Requests, func(r mailguntest.Recorded) int { return r.Status })
	clienttest.AssertRetriedAfter429(t, p, sending("after-429"), srv.FailNext, statuses, http.StatusOK)
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := mailguntest.NewServer()
	defer srv.Close()
	p := rootProvider(t, srv)
	ctx := context.Background()
	key, err := p.CreateKey(ctx, sending("k"))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create":      func() error { _, err := p.CreateKey(ctx, sending("k2")); return err },
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"list":        func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"verify_root": func() error { return p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"api_key": key.Secret}}) },
		"revoke_root": func() error { return p.RevokeRoot(ctx, "abc") },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.Root().Secret, key.Secret)
}
