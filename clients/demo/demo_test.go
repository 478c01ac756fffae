package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/demo"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

const (
	providerName = "demo-test"
	adminKey     = "demoadm_00112233445566778899aabbccddeeff"
)

var (
	keyIDPattern    = regexp.MustCompile(`^key_[0-9a-f]{12}$`)
	keyValuePattern = regexp.MustCompile(`^demo_[0-9a-f]{40}$`)
	adminIDPattern  = regexp.MustCompile(`^adm_[0-9a-f]{12}$`)
	adminValue      = regexp.MustCompile(`^demoadm_[0-9a-f]{32}$`)
)

// startDemo serves a fresh demo provider whose initial admin key is adminKey.
func startDemo(t *testing.T) (*demoserver.Server, string) {
	t.Helper()
	srv := demoserver.New(demoserver.Options{AdminKey: adminKey, RetryAfter: 1})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts.URL
}

// newProvider builds the demo type through the registry, as the backend
// does, with a real HTTP layer that retries quickly.
func newProvider(t *testing.T, baseURL, admin string) clients.Provider {
	t.Helper()
	typ, ok := clients.Lookup("demo")
	if !ok {
		t.Fatal("the demo type is not registered")
	}
	hc, err := httpx.New(httpx.Options{Provider: providerName, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p, err := typ.New(clients.Config{Name: providerName, BaseURL: baseURL, Fields: map[string]string{"admin_key": admin}, HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// inspect returns the server's view of one key.
func inspect(t *testing.T, srv *demoserver.Server, id string) demoserver.KeyInfo {
	t.Helper()
	for _, k := range srv.Keys() {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("the provider has no key %s", id)
	return demoserver.KeyInfo{}
}

// statusOf returns the HTTP status in err, failing unless err is an
// *httpx.Error.
func statusOf(t *testing.T, err error) int {
	t.Helper()
	var e *httpx.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v, want an *httpx.Error", err, err)
	}
	return e.Status
}

func TestKeyLifecycle(t *testing.T) {
	srv, url := startDemo(t)
	p := newProvider(t, url, adminKey)
	ctx := context.Background()
	expires := time.Now().Add(time.Hour).Truncate(time.Second).UTC()

	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: []string{"read", "write"}, ExpiresAt: expires})
	if err != nil {
		t.Fatal(err)
	}
	if !keyIDPattern.MatchString(key.ID) || !keyValuePattern.MatchString(key.Secret) || key.Name != "vault-app-1" || !key.ExpiresAt.Equal(expires) {
		t.Fatalf("created key: id %q name %q expires %v, value well-formed %v",
			key.ID, key.Name, key.ExpiresAt, keyValuePattern.MatchString(key.Secret))
	}
	got := inspect(t, srv, key.ID)
	if got.Name != "vault-app-1" || got.Kind != demoserver.KindKey || got.State != demoserver.StateLive ||
		!slices.Equal(got.Scopes, []string{"read", "write"}) || !got.ExpiresAt.Equal(expires) {
		t.Errorf("the provider holds %+v", got)
	}

	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("verifying a live key: %v", err)
	}
	if uses := inspect(t, srv, key.ID).Uses; uses != 1 {
		t.Errorf("verify used the key %d times, want 1", uses)
	}

	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	if state := inspect(t, srv, key.ID).State; state != demoserver.StateRevoked {
		t.Fatalf("after RevokeKey the key is %s", state)
	}
	err = p.VerifyKey(ctx, key)
	if err == nil {
		t.Fatal("a revoked key verified")
	}
	if s := statusOf(t, err); s != http.StatusUnauthorized {
		t.Errorf("verify of a revoked key: status %d, want 401", s)
	}
	if strings.Contains(err.Error(), key.Secret) {
		t.Errorf("error %q contains the key", err)
	}

	// Gone already is not an error, whether revoked or never there.
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Errorf("revoking a revoked key: %v", err)
	}
	if err := p.RevokeKey(ctx, "key_000000000000"); err != nil {
		t.Errorf("revoking an unknown key: %v", err)
	}

	// Without scopes or expiry the provider gets neither.
	plain, err := p.CreateKey(ctx, clients.KeyRequest{Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	if got := inspect(t, srv, plain.ID); len(got.Scopes) != 0 || !got.ExpiresAt.IsZero() || !plain.ExpiresAt.IsZero() {
		t.Errorf("a key created without scopes or expiry: %+v, returned expiry %v", got, plain.ExpiresAt)
	}
}

func TestFindKeys(t *testing.T) {
	_, url := startDemo(t)
	p := newProvider(t, url, adminKey)
	ctx := context.Background()
	create := func(name string) clients.Key {
		t.Helper()
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	const odd = "vault app&name=x/1" // must be escaped in the query
	a1, _, a2, revoked, oddKey := create("a"), create("b"), create("a"), create("a"), create(odd)
	create("a-longer")
	if err := p.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		want []string
	}{
		{"a", []string{a1.ID, a2.ID}}, // live keys only, in creation order
		{odd, []string{oddKey.ID}},
		{"nobody", nil},
	} {
		keys, err := p.FindKeys(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
			if k.Name != tc.name || k.Secret != "" {
				t.Errorf("FindKeys(%q) returned name %q, secret set %v", tc.name, k.Name, k.Secret != "")
			}
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("FindKeys(%q) = %v, want %v", tc.name, ids, tc.want)
		}
	}
}

func TestCreateKeyRejectsParameters(t *testing.T) {
	srv, url := startDemo(t)
	p := newProvider(t, url, adminKey)
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Parameters: map[string]string{"region": "eu"}})
	var fe *clients.FieldError
	if !errors.As(err, &fe) || fe.Field != "parameters" || !strings.Contains(fe.Message, "region") {
		t.Fatalf("error %v, want a FieldError on parameters naming region", err)
	}
	if n := len(srv.Keys()); n != 1 {
		t.Errorf("the provider holds %d keys after a rejected create, want only the admin key", n)
	}
	// An empty map is no parameters at all.
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Parameters: map[string]string{}}); err != nil {
		t.Errorf("empty parameters: %v", err)
	}
}

func TestNewRequiresAdminKey(t *testing.T) {
	typ, _ := clients.Lookup("demo")
	hc, err := httpx.New(httpx.Options{Provider: providerName})
	if err != nil {
		t.Fatal(err)
	}
	_, err = typ.New(clients.Config{Name: providerName, BaseURL: "http://127.0.0.1:1", Fields: map[string]string{}, HTTP: hc})
	var fe *clients.FieldError
	if !errors.As(err, &fe) || fe.Field != "admin_key" {
		t.Errorf("error %v, want a FieldError on admin_key", err)
	}
}

func TestRootID(t *testing.T) {
	srv, url := startDemo(t)
	id, err := newProvider(t, url, adminKey).RootID(context.Background())
	if err != nil || id != srv.AdminKeyID() {
		t.Errorf("RootID = %q, %v; want %q", id, err, srv.AdminKeyID())
	}
}

func TestRootRotation(t *testing.T) {
	srv, url := startDemo(t)
	ctx := context.Background()
	old := newProvider(t, url, adminKey)
	oldID, err := old.RootID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	root, err := old.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatal(err)
	}
	newKey := root.Fields["admin_key"]
	if !adminIDPattern.MatchString(root.ID) || root.ID == oldID || !adminValue.MatchString(newKey) {
		t.Fatalf("new root: id %q (old %q), value well-formed %v", root.ID, oldID, adminValue.MatchString(newKey))
	}
	if got := inspect(t, srv, root.ID); got.Kind != demoserver.KindAdmin || got.Name != "vault-root-2" || got.State != demoserver.StateLive {
		t.Errorf("the provider holds %+v", got)
	}
	if err := old.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("verifying the new root: %v", err)
	}

	// The backend switches to the new root, then revokes the old one with it.
	rotated := newProvider(t, url, newKey)
	if err := rotated.RevokeRoot(ctx, oldID); err != nil {
		t.Fatal(err)
	}
	if state := inspect(t, srv, oldID).State; state != demoserver.StateRevoked {
		t.Fatalf("old admin key is %s after RevokeRoot", state)
	}
	if s := whoami(t, url, adminKey); s != http.StatusUnauthorized {
		t.Errorf("old admin key on whoami: %d, want 401", s)
	}
	if s := whoami(t, url, newKey); s != http.StatusOK {
		t.Errorf("new admin key on whoami: %d, want 200", s)
	}
	if _, err := old.CreateKey(ctx, clients.KeyRequest{Name: "k"}); err == nil || statusOf(t, err) != http.StatusUnauthorized {
		t.Errorf("creating a key with the old root: %v, want a 401", err)
	}
	if id, err := rotated.RootID(ctx); err != nil || id != root.ID {
		t.Errorf("RootID after rotation = %q, %v; want %q", id, err, root.ID)
	}
	if _, err := rotated.CreateKey(ctx, clients.KeyRequest{Name: "k"}); err != nil {
		t.Errorf("creating a key with the new root: %v", err)
	}
	// Gone already is not an error.
	if err := rotated.RevokeRoot(ctx, oldID); err != nil {
		t.Errorf("revoking the old root again: %v", err)
	}
	// The last admin key cannot go: that is an error, not "gone".
	if err := rotated.RevokeRoot(ctx, root.ID); err == nil || statusOf(t, err) != http.StatusConflict {
		t.Errorf("revoking the last admin key: %v, want a 409", err)
	}
}

func whoami(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestVerifyRootRejects(t *testing.T) {
	_, url := startDemo(t)
	ctx := context.Background()
	p := newProvider(t, url, adminKey)
	normal, err := p.CreateKey(ctx, clients.KeyRequest{Name: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.CreateRoot(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		root clients.Root
	}{
		{"a normal key", clients.Root{ID: normal.ID, Fields: map[string]string{"admin_key": normal.Secret}}},
		{"a normal key, no id", clients.Root{Fields: map[string]string{"admin_key": normal.Secret}}},
		{"an admin key with another key's id", clients.Root{ID: other.ID, Fields: map[string]string{"admin_key": adminKey}}},
		{"an unknown admin key", clients.Root{ID: "adm_000000000000", Fields: map[string]string{"admin_key": "demoadm_ffffffffffffffffffffffffffffffff"}}},
		{"no admin key", clients.Root{ID: other.ID, Fields: map[string]string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.VerifyRoot(ctx, tc.root)
			if err == nil {
				t.Fatal("verified")
			}
			for _, secret := range []string{normal.Secret, adminKey, other.Fields["admin_key"], tc.root.Fields["admin_key"]} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a key", err)
				}
			}
			if !strings.Contains(err.Error(), providerName) {
				t.Errorf("error %q does not name the provider", err)
			}
		})
	}
}

func TestProviderErrors(t *testing.T) {
	srv, url := startDemo(t)
	ctx := context.Background()
	p := newProvider(t, url, adminKey)
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.CreateRoot(ctx, "second")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{adminKey, key.Secret, root.Fields["admin_key"]}

	for _, knobs := range []demoserver.Knobs{
		{ErrorStatus: 503, Down: true},
		{ErrorStatus: 502, ErrorRate: 1},
		{ErrorStatus: 429, Down: true, RetryAfter: 0},
	} {
		if err := srv.SetKnobs(knobs); err != nil {
			t.Fatal(err)
		}
		ops := []struct {
			name string
			call func() error
		}{
			{"CreateKey", func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "x"}); return err }},
			{"VerifyKey", func() error { return p.VerifyKey(ctx, key) }},
			{"RevokeKey", func() error { return p.RevokeKey(ctx, key.ID) }},
			{"FindKeys", func() error { _, err := p.FindKeys(ctx, "k"); return err }},
			{"RootID", func() error { _, err := p.RootID(ctx); return err }},
			{"CreateRoot", func() error { _, err := p.CreateRoot(ctx, "x"); return err }},
			{"VerifyRoot", func() error { return p.VerifyRoot(ctx, root) }},
			{"RevokeRoot", func() error { return p.RevokeRoot(ctx, root.ID) }},
		}
		for _, op := range ops {
			err := op.call()
			if err == nil {
				t.Errorf("%d: %s succeeded", knobs.ErrorStatus, op.name)
				continue
			}
			if s := statusOf(t, err); s != knobs.ErrorStatus {
				t.Errorf("%d: %s: status %d", knobs.ErrorStatus, op.name, s)
			}
			msg := err.Error()
			if !strings.Contains(msg, `"`+providerName+`"`) || !strings.Contains(msg, "HTTP "+strconv.Itoa(knobs.ErrorStatus)) {
				t.Errorf("%d: %s: error %q does not name the provider and status", knobs.ErrorStatus, op.name, msg)
			}
			for i, secret := range secrets {
				if strings.Contains(msg, secret) {
					t.Errorf("%d: %s: error contains secret #%d", knobs.ErrorStatus, op.name, i)
				}
			}
		}
	}
	// Nothing changed while the provider failed.
	if err := srv.SetKnobs(demoserver.DefaultKnobs()); err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Errorf("the key no longer works after the outage: %v", err)
	}
	if err := p.VerifyRoot(ctx, root); err != nil {
		t.Errorf("the second root no longer works after the outage: %v", err)
	}
}

// TestUnreadableResponse checks the error for a 2xx answer that is not the
// documented JSON: it names the provider and the operation.
func TestUnreadableResponse(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>maintenance</html>"))
	}))
	defer ts.Close()
	p := newProvider(t, ts.URL, adminKey)
	_, err := p.RootID(context.Background())
	if err == nil {
		t.Fatal("an HTML page decoded as a whoami answer")
	}
	msg := err.Error()
	if !strings.Contains(msg, providerName) || !strings.Contains(msg, "decoding response") || strings.Contains(msg, "%!") {
		t.Errorf("error %q", msg)
	}
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"}); err == nil {
		t.Error("an HTML page decoded as a created key")
	}
}

// TestErrorsNeverEchoKeys uses a provider that repeats the credential it
// was sent in its error message: no error may carry it on.
func TestErrorsNeverEchoKeys(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
			"code": "forbidden", "message": "key " + r.Header.Get("Authorization") + " may not do this"}})
	}))
	defer ts.Close()
	p := newProvider(t, ts.URL, adminKey)
	ctx := context.Background()
	const keyValue = "demo_0123456789abcdef0123456789abcdef01234567"
	const rootValue = "demoadm_ffeeddccbbaa99887766554433221100"
	for name, call := range map[string]func() error{
		"CreateKey": func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"}); return err },
		"VerifyKey": func() error { return p.VerifyKey(ctx, clients.Key{ID: "key_1", Secret: keyValue}) },
		"VerifyRoot": func() error {
			return p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"admin_key": rootValue}})
		},
		"RevokeRoot": func() error { return p.RevokeRoot(ctx, "adm_1") },
	} {
		err := call()
		if err == nil {
			t.Fatalf("%s succeeded against a 403", name)
		}
		msg := err.Error()
		if !strings.Contains(msg, "may not do this") || !strings.Contains(msg, "HTTP 403") {
			t.Errorf("%s: error %q lost the provider's message or status", name, msg)
		}
		for _, secret := range []string{adminKey, keyValue, rootValue} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s: error %q contains a key", name, msg)
			}
		}
	}
}

func TestListKeys(t *testing.T) {
	srv, url := startDemo(t)
	p := newProvider(t, url, adminKey)
	lister, ok := p.(clients.KeyLister)
	if !ok {
		t.Fatal("the demo type does not implement clients.KeyLister")
	}
	ctx := context.Background()
	var ids []string
	for _, name := range []string{"a", "b", "gone"} {
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	if err := p.RevokeKey(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}

	keys, err := lister.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
		info := inspect(t, srv, k.ID)
		if k.Name != info.Name || k.Secret != "" {
			t.Errorf("key %s: name %q (want %q), secret set %v", k.ID, k.Name, info.Name, k.Secret != "")
		}
		// The API shows times to the second.
		if want := info.CreatedAt.Truncate(time.Second); !k.CreatedAt.Equal(want) || k.CreatedAt.IsZero() {
			t.Errorf("key %s: created %v, the provider says %v", k.ID, k.CreatedAt, info.CreatedAt)
		}
	}
	// Live keys only (not the revoked one, not the admin key), oldest first.
	if !slices.Equal(got, ids[:2]) {
		t.Errorf("ListKeys = %v, want %v", got, ids[:2])
	}
}

// InspectRoot and CreateRoot report an admin key's expiry.
func TestRootExpiry(t *testing.T) {
	srv := demoserver.New(demoserver.Options{AdminKey: adminKey, RetryAfter: 1, AdminKeyTTL: time.Hour})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	p := newProvider(t, ts.URL, adminKey)
	root, err := p.(clients.RootInspector).InspectRoot(context.Background())
	want := inspect(t, srv, srv.AdminKeyID()).ExpiresAt.Truncate(time.Second) // the API shows whole seconds
	if err != nil || root.ID != srv.AdminKeyID() || want.IsZero() || !root.ExpiresAt.Equal(want) {
		t.Fatalf("InspectRoot = %+v, %v; want expiry %s", root, err, want)
	}
	created, err := p.CreateRoot(context.Background(), "vault-root-2")
	if err != nil || !created.ExpiresAt.IsZero() {
		t.Fatalf("CreateRoot = expiry %s, %v; want none", created.ExpiresAt, err)
	}
}
