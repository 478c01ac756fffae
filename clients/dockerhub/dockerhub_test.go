package dockerhub

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/dockerhub/dockerhubtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

func newClient(t *testing.T, srv *dockerhubtest.Server) *provider {
	t.Helper()
	return clienttest.New(t, "dockerhub", srv.URL, map[string]string{"username": dockerhubtest.Username, "password": srv.Password()}).(*provider)
}

func last(srv *dockerhubtest.Server) dockerhubtest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func exchanges(srv *dockerhubtest.Server, auth string) int {
	return clienttest.Count(srv.Requests(), func(r dockerhubtest.Recorded) bool { return r.Path == "/v2/auth/token" && r.Auth == auth })
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, "dockerhub")
	if typ.DefaultBaseURL != "https://hub.docker.com" || typ.BaseURLRequired {
		t.Fatalf("base url = %q required=%v", typ.DefaultBaseURL, typ.BaseURLRequired)
	}
	if c := typ.Capabilities; !c.Expiry || !c.ListByName || c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	for _, f := range typ.Fields {
		if (f.Name == "password") != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
	}
}

func TestValidate(t *testing.T) {
	clienttest.AssertValidate(t, "dockerhub", map[string]string{"username": "u", "password": "p"}, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"username missing", map[string]string{"username": " "}, "username"},
		{"password missing", map[string]string{"password": ""}, "password"},
		{"password is a PAT", map[string]string{"password": "dckr_pat_abc"}, "password"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv)
	ctx := context.Background()
	expires := time.Now().Add(10 * time.Minute).Truncate(time.Second)

	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-ci-1", Scopes: []string{"repo:read", "repo:write"}, ExpiresAt: expires})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if !strings.HasPrefix(key.Secret, "dckr_pat_") || key.Name != "vault-ci-1" || !key.ExpiresAt.Equal(expires) || key.Extra["username"] != dockerhubtest.Username {
		t.Fatalf("key = %+v", key)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/v2/auth/token" || reqs[0].Auth != "password" || reqs[0].Body["identifier"] != dockerhubtest.Username {
		t.Fatalf("want the JWT exchange first, got %+v", reqs)
	}
	c := reqs[1]
	if c.Method != http.MethodPost || c.Path != "/v2/access-tokens" || c.Auth != "jwt:password" || c.Body["token_label"] != "vault-ci-1" ||
		c.Body["expires_at"] != expires.UTC().Format(time.RFC3339) || len(c.Body["scopes"].([]any)) != 2 {
		t.Fatalf("create request = %+v", c)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if v := last(srv); v.Method != http.MethodPost || v.Path != "/v2/auth/token" || v.Auth != "pat:"+key.ID || v.Body["secret"] == nil {
		t.Fatalf("verify request = %+v", v)
	}
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != "/v2/access-tokens/"+key.ID || r.Auth != "jwt:password" || r.Status != 204 {
		t.Fatalf("revoke request = %+v", r)
	}
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.Password())
	if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}
	if r := last(srv); r.Status != http.StatusNotFound {
		t.Fatalf("second revoke got %d, want the server's 404", r.Status)
	}
	// One exchange of the password served every call.
	if n := exchanges(srv, "password"); n != 1 {
		t.Fatalf("%d password exchanges, want 1 (the JWT is cached)", n)
	}
}

// The JWT is reused until shortly before its exp, then exchanged again;
// one the Hub stops taking is replaced at once.
func TestJWTCache(t *testing.T) {
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv)
	ctx := context.Background()
	now := time.Now()
	p.now = func() time.Time { return now }
	srv.SetNow(func() time.Time { return now }) // the JWTs' exp follows the same clock
	req := clients.KeyRequest{Name: "k", Scopes: []string{"repo:read"}}
	for i := 0; i < 3; i++ {
		if _, err := p.CreateKey(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if n := exchanges(srv, "password"); n != 1 {
		t.Fatalf("%d exchanges for 3 creates, want 1", n)
	}
	// The fake's JWTs live 10 minutes; at 8m30s the cached one is still used,
	// at 9m30s (inside the one-minute margin) a new one is fetched.
	now = now.Add(8*time.Minute + 30*time.Second)
	if _, err := p.CreateKey(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := exchanges(srv, "password"); n != 1 || last(srv).JWT != 1 {
		t.Fatalf("exchanges %d, JWT #%d: want the first JWT reused", n, last(srv).JWT)
	}
	now = now.Add(time.Minute)
	if _, err := p.CreateKey(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := exchanges(srv, "password"); n != 2 || last(srv).JWT != 2 {
		t.Fatalf("exchanges %d, JWT #%d: want a new JWT within a minute of exp", n, last(srv).JWT)
	}
	// The Hub drops every JWT: the next call gets a 401, exchanges again
	// and succeeds.
	srv.RevokeJWTs()
	srv.ResetRequests()
	if _, err := p.CreateKey(ctx, req); err != nil {
		t.Fatalf("CreateKey after the JWT was revoked: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Status != 401 || reqs[1].Auth != "password" || reqs[2].Status != 201 || reqs[2].JWT != 3 {
		t.Fatalf("requests after the JWT was revoked = %+v", reqs)
	}
}

func TestJWTExpiry(t *testing.T) {
	for jwt, ok := range map[string]bool{
		"eyJhbGciOiJub25lIn0.eyJleHAiOjE3MDAwMDAwMDB9.sig": true,  // {"exp":1700000000}
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.sig":          false, // no exp
		"not-a-jwt":              false,
		"a.!!!.c":                false,
		"a.eyJleHAiOiJ4In0.c":    false, // exp "x"
		"a.eyJleHAiOjFlMzAwfQ.c": false, // exp 1e300
		"a.eyJleHAiOi0xfQ.c":     false, // exp -1
	} {
		exp, got := jwtExpiry(jwt)
		if got != ok || (ok && exp.Unix() != 1700000000) {
			t.Errorf("jwtExpiry(%s) = %v, %v", jwt, exp, got)
		}
	}
}

func TestFindKeys(t *testing.T) {
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	srv.SetMaxPage(2)
	p := newClient(t, srv)
	ctx := context.Background()
	var want []string
	for i := 0; i < 5; i++ {
		name := "other"
		if i%2 == 0 {
			name = "vault-wal-1"
		}
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: name, Scopes: []string{"repo:read"}})
		if err != nil {
			t.Fatal(err)
		}
		if name == "vault-wal-1" {
			want = append(want, k.ID)
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
	if !slices.Equal(got, want) {
		t.Fatalf("FindKeys = %v, want %v", got, want)
	}
	if reqs := srv.Requests(); len(reqs) != 3 || reqs[2].Query != "page=3&page_size=100" {
		t.Fatalf("want 3 pages, got %+v", reqs)
	}
}

func TestBadRequests(t *testing.T) {
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv)
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"no scope", nil, nil, "scopes", "need a scope"},
		{"unknown scope", []string{"repo:delete"}, nil, "scopes", `"repo:delete"`},
		{"parameters", []string{"repo:read"}, map[string]string{"expires_at": "x"}, "parameters", `"expires_at"`},
	})
}

func TestWrongPassword(t *testing.T) {
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	p := clienttest.New(t, "dockerhub", srv.URL, map[string]string{"username": dockerhubtest.Username, "password": "wrong-password-0123"}).(*provider)
	_, err := p.RootID(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Fatalf("RootID with a wrong password = %v", err)
	}
	clienttest.AssertNoSecret(t, err, "wrong-password-0123", srv.Password())
	if id, err := newClient(t, srv).RootID(context.Background()); id != "" || err != nil {
		t.Fatalf("RootID = %q, %v", id, err)
	}
}

func TestRootRotationUnsupported(t *testing.T) {
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv)
	if p.Capabilities().RootRotation {
		t.Fatal("dockerhub claims root rotation")
	}
	if _, err := p.CreateRoot(context.Background(), "r"); err != clients.ErrNotSupported {
		t.Fatalf("CreateRoot = %v", err)
	}
}

// A 429 is waited out and the create sent again; a 500 is not retried (the
// token may exist) and leaves nothing. The JWT is cached first, so the
// failures hit the create itself.
func TestCreateThrottledOrFailing(t *testing.T) {
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv)
	if _, err := p.RootID(context.Background()); err != nil {
		t.Fatal(err)
	}
	create := func() error {
		_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Scopes: []string{"repo:read"}})
		return err
	}
	clienttest.AssertCreateNotRetriedAfter500(t, srv.FailNext, create, srv.Requests)
	if n := len(srv.LiveTokens()); n != 0 {
		t.Fatalf("%d tokens after a create answered 500", n)
	}
	clienttest.AssertCreateRetriedAfter429(t, srv.FailNext, create, srv.Requests, func(r dockerhubtest.Recorded) int { return r.Status })
	if n := len(srv.LiveTokens()); n != 1 {
		t.Fatalf("%d tokens after a create answered 429 twice, want 1", n)
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv)
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Scopes: []string{"repo:read"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create": func() error {
			_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2", Scopes: []string{"repo:read"}})
			return err
		},
		"verify":  func() error { return p.VerifyKey(ctx, key) },
		"revoke":  func() error { return p.RevokeKey(ctx, key.ID) },
		"list":    func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"root_id": func() error { p.forget(p.jwt); _, err := p.RootID(ctx); return err },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.Password(), key.Secret)
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"message":"incorrect username or password","errinfo":{}}`: "incorrect username or password",
		`{"detail":"bad token dckr_pat_abc-123"}`:                   "bad token dckr_pat_[redacted]",
		"bad gateway":  "bad gateway",
		"<html/>":      "",
		`{"other":""}`: "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%s) = %q, want %q", in, got, want)
		}
	}
}
