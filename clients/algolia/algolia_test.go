package algolia_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/algolia"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/algolia/algoliatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

func newProvider(t *testing.T, srv *algoliatest.Server) clients.Provider {
	t.Helper()
	return clienttest.New(t, algolia.TypeName, srv.URL, map[string]string{"application_id": algoliatest.AppID, "admin_key": srv.AdminKey()})
}

func last(srv *algoliatest.Server) algoliatest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, algolia.TypeName)
	if typ.DefaultBaseURL != "" || typ.BaseURLRequired {
		t.Fatalf("base %q required %v: the URL comes from application_id", typ.DefaultBaseURL, typ.BaseURLRequired)
	}
	if c := typ.Capabilities; !c.Expiry || !c.ListByName || c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v: the admin key cannot be rotated through the API", c)
	}
	clienttest.AssertValidate(t, algolia.TypeName, map[string]string{"application_id": "APP1", "admin_key": "k"}, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"app id missing", map[string]string{"application_id": ""}, "application_id"},
		{"app id a host", map[string]string{"application_id": "evil.example/x"}, "application_id"},
		{"admin key missing", map[string]string{"admin_key": ""}, "admin_key"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	srv := algoliatest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv)
	ctx := context.Background()
	expires := time.Now().Add(10 * time.Minute)
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: []string{"search", "browse"}, ExpiresAt: expires,
		Parameters: map[string]string{"indexes": "products, orders", "referers": "https://shop.example.com/*", "maxQueriesPerIPPerHour": "100"}})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if key.ID != algolia.KeyID(key.Secret) || strings.Contains(key.ID, key.Secret) || key.Extra["application_id"] != algoliatest.AppID {
		t.Fatalf("key = %+v: the id is a digest of the value, never the value", key)
	}
	if d := time.Until(key.ExpiresAt); d < 9*time.Minute || d > 10*time.Minute {
		t.Fatalf("expires %v", key.ExpiresAt)
	}
	c := last(srv)
	if c.Method != http.MethodPost || c.Path != "/1/keys" || c.Auth != "admin" || c.Body["description"] != "vault-app-1" {
		t.Fatalf("create request = %+v", c)
	}
	if v, ok := c.Body["validity"]; !ok || v == nil {
		t.Fatalf("validity missing in %v", c.Body)
	}
	live := srv.LiveKeys()
	if len(live) != 1 || strings.Join(live[0].ACL, ",") != "search,browse" || strings.Join(live[0].Indexes, ",") != "products,orders" ||
		strings.Join(live[0].Referers, ",") != "https://shop.example.com/*" || live[0].Validity < 590 || live[0].Validity > 600 {
		t.Fatalf("key at Algolia = %+v", live)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if v := last(srv); v.Method != http.MethodGet || v.Path != "/1/keys/{key}" || v.Auth != "key:vault-app-1" || v.KeyInPath != "key:vault-app-1" {
		t.Fatalf("verify request = %+v", v)
	}
	srv.ResetRequests()
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if r := srv.Requests(); len(r) != 2 || r[0].Path != "/1/keys" || r[1].Method != http.MethodDelete || r[1].KeyInPath != "key:vault-app-1" || r[1].Auth != "admin" {
		t.Fatalf("revoke = list then delete by value, got %+v", r)
	}
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.AdminKey())
	if !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "/1/keys/[redacted]") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}

	// A dual key has no validity.
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-dual", Scopes: []string{"search"}}); err != nil {
		t.Fatal(err)
	}
	if _, sent := last(srv).Body["validity"]; sent {
		t.Fatalf("a key without expiry got a validity: %v", last(srv).Body)
	}
}

// Dual rotation: the new key is made and verified while the old one still
// works; revoking the old one leaves the new one working.
func TestDualRotationOverlap(t *testing.T) {
	srv := algoliatest.NewServer()
	defer srv.Close()
	clienttest.AssertDualOverlap(t, newProvider(t, srv), clients.KeyRequest{Name: "vault-dual", Scopes: []string{"search"}}, srv.IsLive)
}

func TestBadRequests(t *testing.T) {
	srv := algoliatest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv)
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"no acl", nil, nil, "scopes", "need an ACL"},
		{"unknown acl", []string{"search", "admin"}, nil, "scopes", `"admin" is not an Algolia ACL`},
		{"bad number", []string{"search"}, map[string]string{"maxHitsPerQuery": "-1"}, "parameters", "maxHitsPerQuery"},
		{"unknown parameter", []string{"search"}, map[string]string{"validity": "60"}, "parameters", `"validity"`},
	})
}

// The admin key cannot be rotated: every root operation says so, and
// RootID checks the admin key without giving an id.
func TestNoRootRotation(t *testing.T) {
	srv := algoliatest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv)
	ctx := context.Background()
	if id, err := p.RootID(ctx); err != nil || id != "" {
		t.Fatalf("RootID = %q, %v", id, err)
	}
	if _, err := p.CreateRoot(ctx, "r"); !errors.Is(err, clients.ErrNotSupported) {
		t.Fatalf("CreateRoot = %v", err)
	}
	if err := p.RevokeRoot(ctx, "x"); !errors.Is(err, clients.ErrNotSupported) {
		t.Fatalf("RevokeRoot = %v", err)
	}
	bad := clienttest.New(t, algolia.TypeName, srv.URL, map[string]string{"application_id": algoliatest.AppID, "admin_key": "wrong-admin-key"})
	_, err := bad.RootID(ctx)
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "Invalid Application-ID or API key") {
		t.Fatalf("RootID with a wrong admin key = %v", err)
	}
	clienttest.AssertNoSecret(t, err, "wrong-admin-key")
	// A search-only key is not an admin key.
	k, err := p.CreateKey(ctx, clients.KeyRequest{Name: "s", Scopes: []string{"search"}})
	if err != nil {
		t.Fatal(err)
	}
	notAdmin := clienttest.New(t, algolia.TypeName, srv.URL, map[string]string{"application_id": algoliatest.AppID, "admin_key": k.Secret})
	if _, err := notAdmin.RootID(ctx); err == nil || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("RootID with a search key = %v", err)
	}
}

// A create whose answer is lost (a 500 after the key was stored) is not
// retried, and FindKeys finds the key by name so rollback can revoke it.
func TestLostCreateIsFoundNotOrphaned(t *testing.T) {
	srv := algoliatest.NewServer()
	defer srv.Close()
	posts := func() int {
		return clienttest.Count(srv.Requests(), func(r algoliatest.Recorded) bool { return r.Method == http.MethodPost })
	}
	clienttest.AssertLostCreateFound(t, newProvider(t, srv), clients.KeyRequest{Name: "vault-wal-1", Scopes: []string{"search"}}, srv.LoseNextCreate, posts,
		func(name string) bool {
			return slices.ContainsFunc(srv.LiveKeys(), func(k algoliatest.Key) bool { return k.Description == name })
		})
}

func TestRateLimitRetried(t *testing.T) {
	srv := algoliatest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv)
	statuses := clienttest.Statuses(srv.Requests, func(r algoliatest.Recorded) int { return r.Status })
	clienttest.AssertRetriedAfter429(t, p, clients.KeyRequest{Name: "after-429", Scopes: []string{"search"}}, srv.FailNext, statuses, http.StatusOK)
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := algoliatest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv)
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Scopes: []string{"search"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create": func() error {
			_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2", Scopes: []string{"search"}})
			return err
		},
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"list":        func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"verify_root": func() error { _, err := p.RootID(ctx); return err },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.AdminKey(), key.Secret)
}
