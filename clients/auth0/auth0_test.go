package auth0

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/auth0/auth0test"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

func fields(srv *auth0test.Server) map[string]string {
	return map[string]string{fieldClientID: auth0test.RootClientID, fieldClientSecret: srv.RootSecret()}
}

func newClient(t *testing.T, srv *auth0test.Server, f map[string]string) *provider {
	t.Helper()
	p := clienttest.New(t, TypeName, srv.URL, f).(*provider)
	p.waits = []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}
	return p
}

func last(srv *auth0test.Server) auth0test.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

var apiParams = map[string]string{"audience": auth0test.API}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, TypeName)
	if c := typ.Capabilities; !typ.BaseURLRequired || !c.ListByName || !c.RootRotation || !c.NativeRoll || c.Expiry {
		t.Fatalf("type = %+v", typ)
	}
	for _, f := range typ.Fields {
		if (f.Name == fieldClientSecret) != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
	}
}

func TestValidate(t *testing.T) {
	clienttest.AssertValidate(t, TypeName, map[string]string{fieldClientID: "abc", fieldClientSecret: "s"}, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"custom domain audience", map[string]string{fieldManagementAudience: "https://tenant.auth0.com/api/v2/"}, ""},
		{"audience not https", map[string]string{fieldManagementAudience: "tenant"}, fieldManagementAudience},
		{"client id with a slash", map[string]string{fieldClientID: "a/b"}, fieldClientID},
		{"no secret", map[string]string{fieldClientSecret: " "}, fieldClientSecret},
	})
}

// One M2M application per key: create, grant, verify with a token for the
// granted audience, delete.
func TestKeyLifecycle(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: []string{"read:orders", "write:orders"}, Parameters: apiParams})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Path != "/oauth/token" || reqs[0].Form["audience"] != srv.URL+"/api/v2/" ||
		reqs[1].Path != "/api/v2/clients" || reqs[1].Status != http.StatusCreated || reqs[1].Auth != "root" ||
		reqs[1].Body["app_type"] != "non_interactive" || reqs[1].Body["name"] != "vault-app-1" ||
		reqs[2].Path != "/api/v2/client-grants" || reqs[2].Body["client_id"] != key.ID || reqs[2].Body["audience"] != auth0test.API {
		t.Fatalf("create requests = %+v", reqs)
	}
	if key.Secret == "" || key.Extra["client_id"] != key.ID || key.Extra["audience"] != auth0test.API || !strings.HasPrefix(key.Extra["grant_id"], "cgr_") {
		t.Fatalf("key = %+v", key.Extra)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if v := last(srv); v.Path != "/oauth/token" || v.Auth != "client:"+key.ID || v.Form["audience"] != auth0test.API {
		t.Fatalf("verify request = %+v", v)
	}
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != "/api/v2/clients/"+key.ID || r.Status != http.StatusNoContent {
		t.Fatalf("revoke request = %+v", r)
	}
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.RootSecret())
	if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}
	if r := last(srv); r.Status != http.StatusNotFound {
		t.Fatalf("second revoke got %d", r.Status)
	}
	if err := p.RevokeKey(ctx, auth0test.RootClientID); err == nil {
		t.Fatal("RevokeKey of Vault's own application succeeded")
	}
}

// A grant that fails leaves no application behind.
func TestGrantFailureDeletesClient(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Parameters: map[string]string{"audience": "https://unknown.example"}})
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "inexistent_resource_server") {
		t.Fatalf("CreateKey = %v", err)
	}
	if n := len(srv.LiveClients()); n != 0 {
		t.Fatalf("%d applications left behind", n)
	}
}

// The Management API token is fetched once and reused until shortly
// before it expires.
func TestManagementTokenCached(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	now := time.Now()
	p.now = func() time.Time { return now }
	srv.SetNow(func() time.Time { return now })
	ctx := context.Background()
	tokens := func() int {
		return clienttest.Count(srv.Requests(), func(r auth0test.Recorded) bool { return r.Path == "/oauth/token" && r.Auth == "root" })
	}
	for i := 0; i < 3; i++ {
		if _, err := p.FindKeys(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if n := tokens(); n != 1 {
		t.Fatalf("%d token requests for three calls, want 1", n)
	}
	now = now.Add(24*time.Hour - 10*time.Minute) // still valid, outside the slack
	if _, err := p.FindKeys(ctx, "x"); err != nil || tokens() != 1 {
		t.Fatalf("token renewed early: %d, %v", tokens(), err)
	}
	now = now.Add(6 * time.Minute) // within tokenSlack of expiry
	if _, err := p.FindKeys(ctx, "x"); err != nil || tokens() != 2 {
		t.Fatalf("want a new token near expiry: %d, %v", tokens(), err)
	}
}

func TestFindKeys(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()
	var want []string
	for i := 0; i < 150; i++ {
		name := "other"
		if i%40 == 0 {
			name = "vault-wal-1"
		}
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: name, Parameters: apiParams})
		if err != nil {
			t.Fatal(err)
		}
		if name == "vault-wal-1" {
			want = append(want, k.ID)
		}
	}
	srv.ResetRequests()
	keys, err := p.FindKeys(ctx, "vault-wal-1")
	if err != nil || len(keys) != len(want) {
		t.Fatalf("FindKeys = %d keys, %v; want %d", len(keys), err, len(want))
	}
	for i := range keys {
		if keys[i].ID != want[i] {
			t.Fatalf("FindKeys[%d] = %s, want %s", i, keys[i].ID, want[i])
		}
	}
	if reqs := srv.Requests(); len(reqs) != 2 || reqs[1].Query["page"] != "1" || reqs[0].Query["per_page"] != "100" {
		t.Fatalf("want two pages, got %+v", reqs)
	}
}

func TestBadRequests(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"no audience", nil, nil, "parameters", "audience is required"},
		{"audience with a space", nil, map[string]string{"audience": "https://a b"}, "parameters", "audience must be"},
		{"scope with a space", []string{"read orders"}, apiParams, "scopes", "not a scope"},
		{"unknown", nil, map[string]string{"audience": auth0test.API, "team": "a"}, "parameters", `unknown parameter "team"`},
	})
}

// Root rotation is a roll: rotate-secret answers the new secret and the
// old one is dead at once; verification waits out Auth0's propagation.
func TestRootRoll(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	f := fields(srv)
	old := newClient(t, srv, f)
	ctx := context.Background()
	oldSecret := srv.RootSecret()
	oldID, _ := old.RootID(ctx)
	srv.SetPropagation(2)
	root, err := old.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	if c := last(srv); c.Method != http.MethodPost || c.Path != "/api/v2/clients/"+auth0test.RootClientID+"/rotate-secret" || c.Auth != "root" {
		t.Fatalf("rotate request = %+v", c)
	}
	newSecret := root.Fields[fieldClientSecret]
	if root.ID == oldID || newSecret == "" || newSecret != srv.RootSecret() || srv.IsLive(oldSecret) {
		t.Fatalf("root id %q (old %q); old secret live %v", root.ID, oldID, srv.IsLive(oldSecret))
	}
	srv.ResetRequests()
	if err := old.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot through the propagation delay: %v", err)
	}
	if reqs := srv.Requests(); len(reqs) != 3 || reqs[0].Status != 401 || reqs[2].Status != 200 {
		t.Fatalf("verify_root requests = %+v", reqs)
	}
	cur := newClient(t, srv, clienttest.Merge(f, root.Fields))
	if id, _ := cur.RootID(ctx); id != root.ID {
		t.Fatalf("RootID after the roll = %q, want %q", id, root.ID)
	}
	if err := cur.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	if _, err := cur.CreateKey(ctx, clients.KeyRequest{Name: "after", Parameters: apiParams}); err != nil {
		t.Fatalf("CreateKey with the new root: %v", err)
	}
	// A secret that never works fails verification after the waits.
	srv.SetPropagation(100)
	root2, err := cur.CreateRoot(ctx, "vault-root-3")
	if err != nil {
		t.Fatal(err)
	}
	err = cur.VerifyRoot(ctx, root2)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("VerifyRoot of a secret that never propagates = %v", err)
	}
	clienttest.AssertNoSecret(t, err, root2.Fields[fieldClientSecret], newSecret)
}

// The roll is sent once: a lost answer cannot be replayed (a second roll
// would kill the secret the first one made).
func TestRollNotRetried(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	if _, err := p.FindKeys(context.Background(), "warm"); err != nil { // caches the token
		t.Fatal(err)
	}
	srv.ResetRequests()
	srv.FailNext(1, http.StatusServiceUnavailable)
	if _, err := p.CreateRoot(context.Background(), "r"); err == nil || !strings.Contains(err.Error(), "HTTP 503") {
		t.Fatalf("CreateRoot = %v", err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("rotate-secret sent %d times", n)
	}
}

func TestRateLimitRetried(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	srv.FailNext(2, http.StatusTooManyRequests)
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "after-429", Parameters: apiParams}); err != nil {
		t.Fatalf("CreateKey after 429s: %v", err)
	}
	if reqs := srv.Requests(); reqs[0].Status != 429 || reqs[1].Status != 429 || len(srv.LiveClients()) != 1 {
		t.Fatalf("requests = %+v", reqs)
	}
}

func TestServerErrorWithoutOrphan(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	if _, err := p.FindKeys(context.Background(), "warm"); err != nil {
		t.Fatal(err)
	}
	srv.ResetRequests()
	srv.FailNext(1, http.StatusInternalServerError)
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Parameters: apiParams})
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("CreateKey = %v", err)
	}
	if n := len(srv.Requests()); n != 1 || len(srv.LiveClients()) != 0 {
		t.Fatalf("%d requests, %d clients", n, len(srv.LiveClients()))
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: apiParams})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1000, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create": func() error {
			_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2", Parameters: apiParams})
			return err
		},
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"list":        func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"verify_root": func() error {
			return p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{fieldClientSecret: srv.RootSecret()}})
		},
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.RootSecret(), key.Secret)
}

func TestAuthFailure(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, map[string]string{fieldClientID: auth0test.RootClientID, fieldClientSecret: "wrongsecret0000"})
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Parameters: apiParams})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "access_denied: Unauthorized") {
		t.Fatalf("CreateKey with a bad secret = %v", err)
	}
	clienttest.AssertNoSecret(t, err, "wrongsecret0000")
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"statusCode":404,"error":"Not Found","message":"The client does not exist","errorCode":"inexistent_client"}`: "Not Found: The client does not exist (inexistent_client)",
		`{"error":"access_denied","error_description":"Unauthorized"}`:                                                 "access_denied: Unauthorized",
		"<html/>": "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%s) = %q, want %q", in, got, want)
		}
	}
}

// RootID gets a Management API token, so a wrong secret is refused when
// the provider is written.
func TestRootIDChecksTheSecret(t *testing.T) {
	srv := auth0test.NewServer()
	defer srv.Close()
	ctx := context.Background()
	id, err := newClient(t, srv, fields(srv)).RootID(ctx)
	if err != nil || id != fingerprint(auth0test.RootClientID, srv.RootSecret()) {
		t.Fatalf("RootID = %q, %v", id, err)
	}
	_, err = newClient(t, srv, map[string]string{fieldClientID: auth0test.RootClientID, fieldClientSecret: "wrong0000"}).RootID(ctx)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("RootID with a wrong secret = %v", err)
	}
	clienttest.AssertNoSecret(t, err, "wrong0000")
}
