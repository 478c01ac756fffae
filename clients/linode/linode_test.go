package linode_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/linode"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/linode/linodetest"
)

func newProvider(t *testing.T, srv *linodetest.Server, token string) clients.Provider {
	t.Helper()
	return clienttest.New(t, linode.TypeName, srv.URL+"/v4", map[string]string{"token": token})
}

func last(srv *linodetest.Server) linodetest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, linode.TypeName)
	if typ.DefaultBaseURL != "https://api.linode.com/v4" || typ.KeyNameLimit() != 100 {
		t.Fatalf("base %q, name limit %d", typ.DefaultBaseURL, typ.KeyNameLimit())
	}
	if c := typ.Capabilities; !c.Expiry || !c.ListByName || !c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	clienttest.AssertValidate(t, linode.TypeName, nil, []clienttest.FieldsCase{
		{"ok", map[string]string{"token": "abc"}, ""},
		{"token missing", map[string]string{"token": " "}, "token"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	srv := linodetest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, srv.RootToken())
	ctx := context.Background()
	expires := time.Now().Add(10 * time.Minute).Truncate(time.Second).UTC()

	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: []string{"linodes:read_only", "domains:read_write"}, ExpiresAt: expires})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if key.ID == "" || len(key.Secret) != 64 || key.Name != "vault-app-1" || !key.ExpiresAt.Equal(expires) {
		t.Fatalf("key = %+v", key)
	}
	c := last(srv)
	if c.Method != http.MethodPost || c.Path != "/v4/profile/tokens" || c.Auth != "root" || c.Body["label"] != "vault-app-1" ||
		c.Body["scopes"] != "linodes:read_only,domains:read_write" || c.Body["expiry"] != expires.Format(time.RFC3339) {
		t.Fatalf("create request = %+v", c)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if v := last(srv); v.Method != http.MethodGet || v.Path != "/v4/profile" || v.Auth != "token:"+key.ID {
		t.Fatalf("verify request = %+v", v)
	}
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != "/v4/profile/tokens/"+key.ID || r.Status != 200 {
		t.Fatalf("revoke request = %+v", r)
	}
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.RootToken())
	if !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "Invalid Token") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}
	if r := last(srv); r.Status != http.StatusNotFound {
		t.Fatalf("second revoke got %d, want the server's 404", r.Status)
	}

	// A dual key has no expiry.
	k2, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-dual", Scopes: []string{"*"}})
	if err != nil || !k2.ExpiresAt.IsZero() {
		t.Fatalf("CreateKey without expiry: %+v, %v", k2, err)
	}
	if _, sent := last(srv).Body["expiry"]; sent || last(srv).Body["scopes"] != "*" {
		t.Fatalf("create without expiry sent %v", last(srv).Body)
	}
}

// Dual rotation: the new key is made and verified while the old one still
// works; revoking the old one leaves the new one working.
func TestDualRotationOverlap(t *testing.T) {
	srv := linodetest.NewServer()
	defer srv.Close()
	clienttest.AssertDualOverlap(t, newProvider(t, srv, srv.RootToken()), clients.KeyRequest{Name: "vault-dual", Scopes: []string{"*"}}, srv.IsLive)
}

func TestBadRequests(t *testing.T) {
	srv := linodetest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, srv.RootToken())
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"no scopes", nil, nil, "scopes", `"*" for all`},
		{"star with others", []string{"*", "linodes:read_only"}, nil, "scopes", `"*" alone`},
		{"bad level", []string{"linodes:write"}, nil, "scopes", `"linodes:write" is not a Linode scope`},
		{"parameters", []string{"*"}, map[string]string{"expiry": "x"}, "parameters", `"expiry"`},
	})
}

// A create whose answer is lost (a 500 after the key was stored) is not
// retried, and FindKeys finds the key by name so rollback can revoke it.
func TestLostCreateIsFoundNotOrphaned(t *testing.T) {
	srv := linodetest.NewServer(linodetest.WithMaxPage(2))
	defer srv.Close()
	srv.AddToken("other", "*")
	posts := func() int {
		return clienttest.Count(srv.Requests(), func(r linodetest.Recorded) bool { return r.Method == http.MethodPost })
	}
	clienttest.AssertLostCreateFound(t, newProvider(t, srv, srv.RootToken()), clients.KeyRequest{Name: "vault-wal-1", Scopes: []string{"*"}}, srv.LoseNextCreate, posts,
		func(name string) bool {
			return slices.ContainsFunc(srv.LiveTokens(), func(k linodetest.Token) bool { return k.Label == name })
		})
}

func TestRootRotation(t *testing.T) {
	srv := linodetest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	oldSecret, oldID := srv.RootToken(), srv.RootTokenID()
	other := srv.AddToken("someone else's", "*")
	p := newProvider(t, srv, oldSecret)
	if id, err := p.RootID(ctx); err != nil || id != oldID {
		t.Fatalf("RootID = %q, %v; want %s", id, err, oldID)
	}
	root, err := p.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	newSecret := root.Fields["token"]
	if root.ID == "" || root.ID == oldID || newSecret == "" {
		t.Fatalf("root = %s", root.ID)
	}
	if c := last(srv); c.Path != "/v4/profile/tokens" || c.Method != http.MethodPost || c.Auth != "root" || c.Body["scopes"] != "*" ||
		c.Body["expiry"] != nil || c.Body["label"] != "vault-root-2" {
		t.Fatalf("create_root request = %+v", c)
	}
	if err := p.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot: %v", err)
	}
	if v := last(srv); v.Method != http.MethodGet || v.Auth != "token:"+root.ID {
		t.Fatalf("verify_root request = %+v", v)
	}
	cur := newProvider(t, srv, newSecret)
	if err := cur.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != "/v4/profile/tokens/"+oldID || r.Auth != "token:"+root.ID {
		t.Fatalf("revoke_root request = %+v", r)
	}
	if srv.IsLive(oldSecret) || !srv.IsLive(newSecret) || !srv.IsLive(other.Secret) {
		t.Fatal("after RevokeRoot exactly the old token must be gone")
	}
	if id, err := cur.RootID(ctx); err != nil || id != root.ID {
		t.Fatalf("RootID with the new root = %q, %v", id, err)
	}
	err = cur.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"token": oldSecret}})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("old root verified: %v", err)
	}
	clienttest.AssertNoSecret(t, err, oldSecret, newSecret)
	if err := cur.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("RevokeRoot again: %v", err)
	}
}

// A root that does not authenticate cannot be rotated: nothing is created.
func TestRootRotationWithADeadRoot(t *testing.T) {
	srv := linodetest.NewServer()
	defer srv.Close()
	bad := newProvider(t, srv, strings.Repeat("0", 64))
	if _, err := bad.CreateRoot(context.Background(), "r"); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("CreateRoot with a dead root = %v", err)
	}
	if n := len(srv.LiveTokens()); n != 1 {
		t.Fatalf("%d tokens live", n)
	}
}

func TestRateLimitRetried(t *testing.T) {
	srv := linodetest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, srv.RootToken())
	statuses := clienttest.Statuses(srv.Requests, func(r linodetest.Recorded) int { return r.Status })
	clienttest.AssertRetriedAfter429(t, p, clients.KeyRequest{Name: "after-429", Scopes: []string{"*"}}, srv.FailNext, statuses, http.StatusOK)
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := linodetest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, srv.RootToken())
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Scopes: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create": func() error {
			_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2", Scopes: []string{"*"}})
			return err
		},
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"list":        func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"verify_root": func() error { return p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"token": key.Secret}}) },
		"revoke_root": func() error { return p.RevokeRoot(ctx, "1") },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.RootToken(), key.Secret)
}
