package vercel

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/vercel/verceltest"
)

func newClient(t *testing.T, srv *verceltest.Server, token, team string) *provider {
	t.Helper()
	return clienttest.New(t, "vercel", srv.URL, map[string]string{"api_token": token, "team_id": team}).(*provider)
}

func last(srv *verceltest.Server) verceltest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, "vercel")
	if typ.DefaultBaseURL != "https://api.vercel.com" || typ.BaseURLRequired {
		t.Fatalf("base url = %q required=%v", typ.DefaultBaseURL, typ.BaseURLRequired)
	}
	if c := typ.Capabilities; !c.Expiry || !c.ListByName || !c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	for _, f := range typ.Fields {
		if (f.Name == "api_token") != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
	}
}

func TestValidate(t *testing.T) {
	clienttest.AssertValidate(t, "vercel", map[string]string{"api_token": "tok", "team_id": ""}, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"ok team", map[string]string{"team_id": "team_abc123"}, ""},
		{"team with a slash", map[string]string{"team_id": "team/../x"}, "team_id"},
		{"team with a query", map[string]string{"team_id": "team_a&slug=b"}, "team_id"},
		{"token missing", map[string]string{"api_token": ""}, "api_token"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	for _, team := range []string{"", verceltest.TeamID} {
		t.Run("team="+team, func(t *testing.T) {
			srv := verceltest.NewServer()
			defer srv.Close()
			p := newClient(t, srv, srv.RootToken(), team)
			ctx := context.Background()
			expires := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond)

			key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", ExpiresAt: expires})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if key.Secret == "" || key.Name != "vault-app-1" || !key.ExpiresAt.Equal(expires) || key.Extra["team_id"] != team {
				t.Fatalf("key = %+v", key)
			}
			c := last(srv)
			if c.Method != http.MethodPost || c.Path != "/v3/user/tokens" || c.Auth != "root" || c.TeamID != team ||
				c.Body["name"] != "vault-app-1" || fmt.Sprint(c.Body["expiresAt"]) != fmt.Sprint(expires.UnixMilli()) {
				t.Fatalf("create request = %+v", c)
			}
			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			if v := last(srv); v.Method != http.MethodGet || v.Path != "/v2/user" || v.Auth != "token:"+key.ID {
				t.Fatalf("verify request = %+v", v)
			}
			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			if r := last(srv); r.Method != http.MethodDelete || r.Path != "/v3/user/tokens/"+key.ID || r.Auth != "root" || r.TeamID != team {
				t.Fatalf("revoke request = %+v", r)
			}
			err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.RootToken())
			if !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "forbidden") {
				t.Fatalf("VerifyKey after revoke = %v", err)
			}
			if r := last(srv); r.Status != http.StatusNotFound {
				t.Fatalf("second revoke got %d, want the server's 404", r.Status)
			}
		})
	}
}

// A token created to expire stops working at its expiry at Vercel.
func TestExpiry(t *testing.T) {
	srv := verceltest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, srv.RootToken(), "")
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "short", ExpiresAt: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	dual, err := p.CreateKey(ctx, clients.KeyRequest{Name: "dual"})
	if err != nil {
		t.Fatal(err)
	}
	if _, sent := last(srv).Body["expiresAt"]; sent || !dual.ExpiresAt.IsZero() {
		t.Fatal("a key without expiry was created with one")
	}
	srv.SetNow(func() time.Time { return time.Now().Add(2 * time.Minute) })
	if srv.IsLive(key.Secret) || !srv.IsLive(dual.Secret) {
		t.Fatal("expiry not applied by the fake")
	}
	if err := p.VerifyKey(ctx, key); err == nil {
		t.Fatal("an expired token verified")
	}
}

func TestFindKeys(t *testing.T) {
	srv := verceltest.NewServer()
	defer srv.Close()
	srv.SetMaxPage(2)
	p := newClient(t, srv, srv.RootToken(), verceltest.TeamID)
	ctx := context.Background()
	var want []string
	for i := 0; i < 5; i++ {
		name := "other"
		if i%2 == 0 {
			name = "vault-wal-1"
		}
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		if name == "vault-wal-1" {
			want = append([]string{k.ID}, want...) // the list is newest first
		}
	}
	srv.ResetRequests()
	keys, err := p.FindKeys(ctx, "vault-wal-1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("FindKeys = %v, want %v", got, want)
	}
	// 6 tokens (the root too) in pages of 2.
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Path != "/v6/user/tokens" || reqs[0].TeamID != verceltest.TeamID || reqs[1].Until == "" {
		t.Fatalf("want 3 paged list requests, got %+v", reqs)
	}
}

func TestWrongTeam(t *testing.T) {
	srv := verceltest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, srv.RootToken(), "team_other")
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"})
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "permission to access this team") {
		t.Fatalf("CreateKey for another team = %v", err)
	}
	clienttest.AssertNoSecret(t, err, srv.RootToken())
	if len(srv.LiveTokens()) != 1 {
		t.Fatal("a token was created")
	}
}

func TestBadRequests(t *testing.T) {
	srv := verceltest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, srv.RootToken(), "")
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"scopes", []string{"read"}, nil, "scopes", "no scopes"},
		{"parameters", nil, map[string]string{"expiresAt": "1"}, "parameters", `"expiresAt"`},
	})
}

func TestRootRotation(t *testing.T) {
	for _, team := range []string{"", verceltest.TeamID} {
		t.Run("team="+team, func(t *testing.T) {
			srv := verceltest.NewServer()
			defer srv.Close()
			ctx := context.Background()
			oldSecret, oldID := srv.RootToken(), srv.RootTokenID()
			old := newClient(t, srv, oldSecret, team)
			if id, err := old.RootID(ctx); err != nil || id != oldID {
				t.Fatalf("RootID = %q, %v; want %s", id, err, oldID)
			}
			if r := last(srv); r.Path != "/v5/user/tokens/current" || r.Auth != "root" || r.TeamID != team {
				t.Fatalf("root id request = %+v", r)
			}
			root, err := old.CreateRoot(ctx, "vault-root-2")
			if err != nil {
				t.Fatalf("CreateRoot: %v", err)
			}
			newSecret := root.Fields["api_token"]
			if root.ID == "" || root.ID == oldID || newSecret == "" {
				t.Fatalf("root = %q", root.ID)
			}
			if c := last(srv); c.Method != http.MethodPost || c.Path != "/v3/user/tokens" || c.Auth != "root" || c.Body["name"] != "vault-root-2" {
				t.Fatalf("create_root request = %+v", c)
			} else if _, exp := c.Body["expiresAt"]; exp {
				t.Fatal("the new root was created to expire")
			}
			if err := old.VerifyRoot(ctx, root); err != nil {
				t.Fatalf("VerifyRoot: %v", err)
			}
			if v := last(srv); v.Path != "/v5/user/tokens/current" || v.Auth != "token:"+root.ID {
				t.Fatalf("verify_root request = %+v", v)
			}
			// A root that authenticates as another token fails verification.
			err = old.VerifyRoot(ctx, clients.Root{ID: "someotherid", Fields: root.Fields})
			if err == nil || !strings.Contains(err.Error(), "not someotherid") {
				t.Fatalf("VerifyRoot with a wrong id = %v", err)
			}
			clienttest.AssertNoSecret(t, err, newSecret, oldSecret)

			cur := newClient(t, srv, newSecret, team)
			if err := cur.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot: %v", err)
			}
			if r := last(srv); r.Method != http.MethodDelete || r.Path != "/v3/user/tokens/"+oldID || r.Auth != "token:"+root.ID {
				t.Fatalf("revoke_root request = %+v", r)
			}
			if srv.IsLive(oldSecret) || !srv.IsLive(newSecret) {
				t.Fatal("after RevokeRoot exactly the old token must be gone")
			}
			err = cur.VerifyRoot(ctx, clients.Root{ID: oldID, Fields: map[string]string{"api_token": oldSecret}})
			if err == nil || !strings.Contains(err.Error(), "403") {
				t.Fatalf("old root verified: %v", err)
			}
			clienttest.AssertNoSecret(t, err, oldSecret, newSecret)
			if err := cur.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot again: %v", err)
			}
			if err := cur.RevokeRoot(ctx, ""); err == nil {
				t.Fatal("RevokeRoot without an id succeeded")
			}
		})
	}
}

// A 429 is waited out and the create sent again; a 500 is not retried (the
// token may exist) and leaves nothing.
func TestCreateThrottledOrFailing(t *testing.T) {
	srv := verceltest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, srv.RootToken(), "")
	create := func() error { _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"}); return err }
	err := clienttest.AssertCreateNotRetriedAfter500(t, srv.FailNext, create, srv.Requests)
	if !strings.Contains(err.Error(), "internal_server_error") || len(srv.LiveTokens()) != 1 {
		t.Fatalf("CreateKey = %v, %d live tokens (the root alone expected)", err, len(srv.LiveTokens()))
	}
	clienttest.AssertCreateRetriedAfter429(t, srv.FailNext, create, srv.Requests, func(r verceltest.Recorded) int { return r.Status })
	if n := len(srv.LiveTokens()); n != 2 {
		t.Fatalf("%d live tokens after a create answered 429 twice, want the root and one", n)
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := verceltest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, srv.RootToken(), verceltest.TeamID)
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create":      func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2"}); return err },
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"list":        func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"root_id":     func() error { _, err := p.RootID(ctx); return err },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"verify_root": func() error {
			return p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"api_token": srv.RootToken()}})
		},
		"revoke_root": func() error { return p.RevokeRoot(ctx, "abc") },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.RootToken(), key.Secret)
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"error":{"code":"forbidden","message":"Not authorized","invalidToken":true}}`: "Not authorized (code=forbidden)",
		`{"error":{"message":"Token not found"}}`:                                       "Token not found",
		"bad gateway":   "bad gateway",
		"<html/>":       "",
		`{"other":"x"}`: "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%s) = %q, want %q", in, got, want)
		}
	}
}
