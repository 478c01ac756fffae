package openrouter

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openrouter/openroutertest"
)

func newClient(t *testing.T, srv *openroutertest.Server, fields map[string]string) *provider {
	t.Helper()
	return clienttest.New(t, TypeName, srv.URL+"/api/v1", fields).(*provider)
}

func fields(srv *openroutertest.Server) map[string]string {
	return map[string]string{fieldManagementKey: srv.ManagementKey()}
}

// anyKey matches a key-like fragment other than our redaction marker.
var anyKey = regexp.MustCompile(`sk-or-v1`)

func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	clienttest.AssertNoSecret(t, err, secrets...)
	if err != nil && anyKey.MatchString(err.Error()) {
		t.Fatalf("error contains a key fragment: %v", err)
	}
}

func last(srv *openroutertest.Server) openroutertest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, TypeName)
	if typ.DefaultBaseURL != "https://openrouter.ai/api/v1" || typ.BaseURLRequired {
		t.Fatalf("base url = %q required=%v", typ.DefaultBaseURL, typ.BaseURLRequired)
	}
	// The management key is made in the dashboard only: no root rotation.
	if c := typ.Capabilities; !c.Expiry || !c.ListByName || c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	for _, f := range typ.Fields {
		if (f.Name == fieldManagementKey) != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
	}
}

func TestValidate(t *testing.T) {
	clienttest.AssertValidate(t, TypeName, map[string]string{fieldManagementKey: "sk-or-v1-x"}, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"workspace", map[string]string{fieldWorkspaceID: "ws_123"}, ""},
		{"workspace with a slash", map[string]string{fieldWorkspaceID: "a/../b"}, fieldWorkspaceID},
		{"key missing", map[string]string{fieldManagementKey: " "}, fieldManagementKey},
	})
}

func TestKeyLifecycle(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()
	want := time.Now().Add(2 * time.Hour)

	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", ExpiresAt: want,
		Parameters: map[string]string{"limit": "2.5", "limit_reset": "monthly", "include_byok_in_limit": "true"}})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if !strings.HasPrefix(key.Secret, "sk-or-v1-") || key.Name != "vault-app-1" || key.Extra["key_hash"] != key.ID ||
		key.Extra["limit"] != "2.5" || key.Extra["limit_reset"] != "monthly" {
		t.Fatalf("key = %+v", key)
	}
	// Rounded up to the second, never before the time asked for.
	if key.ExpiresAt.Before(want) || key.ExpiresAt.After(want.Add(time.Second)) {
		t.Fatalf("expires %v, want %v", key.ExpiresAt, want)
	}
	c := last(srv)
	if c.Method != http.MethodPost || c.Path != "/api/v1/keys" || c.Auth != "root" || c.Status != http.StatusCreated ||
		c.Body["name"] != "vault-app-1" || c.Body["limit"] != 2.5 || c.Body["limit_reset"] != "monthly" ||
		c.Body["include_byok_in_limit"] != true || c.Body["expires_at"] != key.ExpiresAt.Format(time.RFC3339) ||
		!strings.HasSuffix(c.Body["expires_at"].(string), "Z") {
		t.Fatalf("create request = %+v", c)
	}

	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if v := last(srv); v.Method != http.MethodGet || v.Path != "/api/v1/key" || v.Auth != "key:"+key.ID {
		t.Fatalf("verify request = %+v", v)
	}

	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != "/api/v1/keys/"+key.ID || r.Auth != "root" || r.Status != 200 {
		t.Fatalf("revoke request = %+v", r)
	}
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.ManagementKey())
	assertNoSecret(t, err)
	if !strings.Contains(err.Error(), "401") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}
	if r := last(srv); r.Status != http.StatusNotFound {
		t.Fatalf("second revoke got %d, want the server's 404", r.Status)
	}
}

func TestExpiresAtParameter(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	srv.SetNow(func() time.Time { return now })
	ctx := context.Background()

	// A duration counts from the key's creation; the earlier of it and the
	// lease's expiry wins.
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "d", Parameters: map[string]string{"expires_at": "720h"}})
	if err != nil || !key.ExpiresAt.Equal(now.Add(720*time.Hour)) {
		t.Fatalf("duration: %v, %v", key.ExpiresAt, err)
	}
	key, err = p.CreateKey(ctx, clients.KeyRequest{Name: "d", ExpiresAt: now.Add(time.Hour), Parameters: map[string]string{"expires_at": "720h"}})
	if err != nil || !key.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("lease earlier: %v, %v", key.ExpiresAt, err)
	}
	// An absolute time in another zone is sent in UTC.
	key, err = p.CreateKey(ctx, clients.KeyRequest{Name: "t", Parameters: map[string]string{"expires_at": "2026-06-01T12:00:00+02:00"}})
	if err != nil || last(srv).Body["expires_at"] != "2026-06-01T10:00:00Z" || !key.ExpiresAt.Equal(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("absolute: %v %v, %v", last(srv).Body["expires_at"], key.ExpiresAt, err)
	}
	// Without any expiry, none is sent.
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "n"}); err != nil {
		t.Fatal(err)
	}
	if _, sent := last(srv).Body["expires_at"]; sent {
		t.Fatal("expires_at sent without one asked for")
	}
	// The key stops working at the provider once expired.
	now = now.Add(2 * time.Hour)
	if err := p.VerifyKey(ctx, clients.Key{ID: "x", Secret: srv.LiveKeys()[1].Value}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("an expired key verified: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"scopes", []string{"chat"}, nil, "scopes", "no scopes"},
		{"negative limit", nil, map[string]string{"limit": "-3"}, "parameters", "limit must be"},
		{"limit not a number", nil, map[string]string{"limit": "ten"}, "parameters", "limit must be"},
		{"limit NaN", nil, map[string]string{"limit": "NaN"}, "parameters", "limit must be"},
		{"limit_reset", nil, map[string]string{"limit_reset": "hourly"}, "parameters", "limit_reset must be one of daily, weekly, monthly"},
		{"byok", nil, map[string]string{"include_byok_in_limit": "maybe"}, "parameters", "include_byok_in_limit"},
		{"expires_at past", nil, map[string]string{"expires_at": "2001-01-01T00:00:00Z"}, "parameters", "expires_at is in the past"},
		{"expires_at garbage", nil, map[string]string{"expires_at": "tomorrow"}, "parameters", "expires_at must be"},
		{"expires_at negative", nil, map[string]string{"expires_at": "-1h"}, "parameters", "expires_at must be a positive"},
		{"unknown", nil, map[string]string{"budget": "1"}, "parameters", `unknown parameter "budget"`},
	})
}

func TestFindAndListKeys(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()
	var want []string
	for i := 0; i < 205; i++ { // three pages
		name := "other"
		if i%50 == 0 {
			name = "vault-wal-1"
		}
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: name})
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
	if len(keys) != len(want) {
		t.Fatalf("FindKeys found %d keys, want %d", len(keys), len(want))
	}
	for i, k := range keys {
		if k.ID != want[i] || k.Name != "vault-wal-1" {
			t.Fatalf("FindKeys[%d] = %+v", i, k)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Query["offset"] != "" || reqs[1].Query["offset"] != "100" || reqs[2].Query["offset"] != "200" ||
		reqs[0].Query["include_disabled"] != "true" {
		t.Fatalf("want 3 paged list requests, got %+v", reqs)
	}
	all, err := clients.Provider(p).(clients.KeyLister).ListKeys(ctx)
	if err != nil || len(all) != 205 || all[0].CreatedAt.IsZero() {
		t.Fatalf("ListKeys = %d keys, %v", len(all), err)
	}
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.ManagementKey())
}

func TestWorkspace(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, clienttest.Merge(fields(srv), map[string]string{fieldWorkspaceID: "ws_1"}))
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "w"}); err != nil {
		t.Fatal(err)
	}
	if c := last(srv); c.Body["workspace_id"] != "ws_1" {
		t.Fatalf("create body = %v", c.Body)
	}
	if _, err := p.FindKeys(context.Background(), "w"); err != nil || last(srv).Query["workspace_id"] != "ws_1" {
		t.Fatalf("list query = %v, %v", last(srv).Query, err)
	}
}

// TestRootNotRotatable: the management key is made in the dashboard only.
func TestRootNotRotatable(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	if _, err := p.CreateRoot(context.Background(), "r"); err != clients.ErrNotSupported {
		t.Fatalf("CreateRoot = %v", err)
	}
	if len(srv.Requests()) != 0 {
		t.Fatal("a request was sent")
	}
}

// TestIssuedKeyIsNotARoot: an issued key cannot manage keys.
func TestIssuedKeyIsNotARoot(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	key, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	q := newClient(t, srv, map[string]string{fieldManagementKey: key.Secret})
	_, err = q.CreateKey(context.Background(), clients.KeyRequest{Name: "k2"})
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "management keys") {
		t.Fatalf("create with an issued key = %v", err)
	}
	assertNoSecret(t, err, key.Secret, srv.ManagementKey())
}

func TestRateLimitRetried(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	create := func() error { _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"}); return err }
	clienttest.AssertCreateRetriedAfter429(t, srv.FailNext, create, srv.Requests, func(r openroutertest.Recorded) int { return r.Status })
	if len(srv.LiveKeys()) != 1 {
		t.Fatal("want exactly one key")
	}
}

// TestServerErrorWithoutOrphan: a 500 on create is not retried (the key may
// exist; the backend's WAL finds it by name) and creates nothing here.
func TestServerErrorWithoutOrphan(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	create := func() error { _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"}); return err }
	clienttest.AssertCreateNotRetriedAfter500(t, srv.FailNext, create, srv.Requests)
	if len(srv.LiveKeys()) != 0 {
		t.Fatal("a key was left")
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create": func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2"}); return err },
		"verify": func() error { return p.VerifyKey(ctx, key) },
		"revoke": func() error { return p.RevokeKey(ctx, key.ID) },
		"list":   func() error { _, err := p.FindKeys(ctx, "k"); return err },
	}
	for _, err := range clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.ManagementKey(), key.Secret) {
		assertNoSecret(t, err)
	}
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"error":{"code":401,"message":"Invalid key sk-or-v1-abc...890"}}`: "Invalid key sk-or-[redacted]",
		`{"error":{"code":404,"message":"Key not found"},"user_id":"u"}`:    "Key not found",
		"bad gateway": "bad gateway",
		"<html/>":     "",
		`{"x":1}`:     "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%s) = %q, want %q", in, got, want)
		}
	}
}

// RootID makes an authenticated call, so a wrong management key is refused
// when the provider is written.
func TestRootIDChecksTheKey(t *testing.T) {
	srv := openroutertest.NewServer()
	defer srv.Close()
	if id, err := newClient(t, srv, fields(srv)).RootID(context.Background()); err != nil || id != "" {
		t.Fatalf("RootID = %q, %v", id, err)
	}
	if r := last(srv); r.Path != "/api/v1/key" || r.Auth != "root" {
		t.Fatalf("RootID request = %+v", r)
	}
	_, err := newClient(t, srv, map[string]string{fieldManagementKey: "sk-or-v1-wrong0000"}).RootID(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("RootID with a wrong key = %v", err)
	}
	assertNoSecret(t, err, "sk-or-v1-wrong0000")
}
