package openai

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openai/openaitest"
)

func newClient(t *testing.T, srv *openaitest.Server, fields map[string]string) *provider {
	t.Helper()
	return clienttest.New(t, "openai", srv.URL+"/v1", fields).(*provider)
}

func fields(srv *openaitest.Server) map[string]string {
	return map[string]string{"admin_key": srv.RootKey(), "project_id": openaitest.DefaultProjectID, "admin_key_id": srv.RootKeyID()}
}

// anyKey matches a key-like fragment other than our redaction marker.
var anyKey = regexp.MustCompile(`sk-[A-Za-z0-9*]`)

// assertNoSecret adds OpenAI's masked key fragments to the shared check.
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	clienttest.AssertNoSecret(t, err, secrets...)
	if err != nil && anyKey.MatchString(err.Error()) {
		t.Fatalf("error contains a key fragment: %v", err)
	}
}

func last(srv *openaitest.Server) openaitest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, "openai")
	if typ.DefaultBaseURL != "https://api.openai.com/v1" || typ.BaseURLRequired {
		t.Fatalf("base url = %q required=%v", typ.DefaultBaseURL, typ.BaseURLRequired)
	}
	if c := typ.Capabilities; c.Expiry || !c.ListByName || !c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	for _, f := range typ.Fields {
		if (f.Name == "admin_key") != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
	}
}

func TestValidate(t *testing.T) {
	good := map[string]string{"admin_key": "sk-admin-x", "project_id": "proj_abc", "admin_key_id": ""}
	clienttest.AssertValidate(t, "openai", good, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"ok with key id", map[string]string{"admin_key_id": "key_abc"}, ""},
		{"project missing", map[string]string{"project_id": ""}, "project_id"},
		{"project with a slash", map[string]string{"project_id": "proj_a/../x"}, "project_id"},
		{"key id with a space", map[string]string{"admin_key_id": "key abc"}, "admin_key_id"},
		{"admin key missing", map[string]string{"admin_key": ""}, "admin_key"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	srv := openaitest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()

	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1"})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if !strings.HasPrefix(key.ID, "svc_acct_") || !strings.HasPrefix(key.Secret, "sk-svcacct-") || key.Name != "vault-app-1" {
		t.Fatalf("key = %+v", key)
	}
	if key.Extra["service_account_id"] != key.ID || !strings.HasPrefix(key.Extra["api_key_id"], "key_") ||
		key.Extra["project_id"] != openaitest.DefaultProjectID || !key.ExpiresAt.IsZero() {
		t.Fatalf("extra = %v expires = %v", key.Extra, key.ExpiresAt)
	}
	c := last(srv)
	if c.Method != http.MethodPost || c.Path != "/v1/organization/projects/proj_vault/service_accounts" || c.Auth != "root" ||
		c.Header["Content-Type"] != "application/json" || c.Body["name"] != "vault-app-1" || len(c.Body) != 1 {
		t.Fatalf("create request = %+v", c)
	}

	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if v := last(srv); v.Method != http.MethodGet || v.Path != "/v1/models" || v.Auth != "key:"+key.ID {
		t.Fatalf("verify request = %+v", v)
	}

	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != "/v1/organization/projects/proj_vault/service_accounts/"+key.ID || r.Status != 200 {
		t.Fatalf("revoke request = %+v", r)
	}
	if len(srv.LiveKeys()) != 0 {
		t.Fatal("key live after revoke")
	}
	// The server echoes a masked key; the error must carry no fragment of it.
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive, key.Secret[len(key.Secret)-4:], srv.RootKey())
	assertNoSecret(t, err)
	if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "invalid_api_key") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}
	if r := last(srv); r.Status != http.StatusNotFound {
		t.Fatalf("second revoke got %d, want the server's 404", r.Status)
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name  string
		req   clients.KeyRequest
		field string
		text  string
	}{
		{"scopes", clients.KeyRequest{Name: "x", Scopes: []string{"model.read"}}, "scopes", "no scopes"},
		{"parameters", clients.KeyRequest{Name: "x", Parameters: map[string]string{"role": "owner", "budget": "1"}}, "parameters", `"budget", "role"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.NewServer()
			defer srv.Close()
			p := newClient(t, srv, fields(srv))
			_, err := p.CreateKey(context.Background(), tt.req)
			clienttest.AssertFieldError(t, err, tt.field, tt.text)
			if len(srv.Requests()) != 0 {
				t.Fatal("a request was sent")
			}
		})
	}
}

func TestUnknownProject(t *testing.T) {
	srv := openaitest.NewServer()
	defer srv.Close()
	f := fields(srv)
	f["project_id"] = "proj_missing"
	p := newClient(t, srv, f)
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "x"})
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "No such project") {
		t.Fatalf("CreateKey in an unknown project = %v", err)
	}
	assertNoSecret(t, err, srv.RootKey())
}

func TestFindKeys(t *testing.T) {
	srv := openaitest.NewServer(openaitest.WithMaxPage(2))
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
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
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("FindKeys = %v, want %v", got, want)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[1].Query["after"] == "" || reqs[0].Auth != "root" {
		t.Fatalf("expected 3 paged list requests, got %+v", reqs)
	}
}

func TestRootRotation(t *testing.T) {
	tests := []struct {
		name    string
		opts    []openaitest.Option
		knownID bool
	}{
		{"admin_key_id set", nil, true},
		{"id found by star-masked value", nil, false},
		{"id found by dotted value", []openaitest.Option{openaitest.WithDotRedaction()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := openaitest.NewServer(tt.opts...)
			defer srv.Close()
			other := srv.AddAdminKey("someone else's")
			ctx := context.Background()
			f := fields(srv)
			if !tt.knownID {
				f["admin_key_id"] = ""
			}
			old := newClient(t, srv, f)
			oldSecret, oldID := srv.RootKey(), srv.RootKeyID()
			if id, err := old.RootID(ctx); err != nil || id != oldID {
				t.Fatalf("RootID = %q, %v; want %s", id, err, oldID)
			}

			root, err := old.CreateRoot(ctx, "vault-root-2")
			if err != nil {
				t.Fatalf("CreateRoot: %v", err)
			}
			newSecret := root.Fields["admin_key"]
			if root.ID == "" || root.ID == oldID || !strings.HasPrefix(newSecret, "sk-admin-") || root.Fields["admin_key_id"] != root.ID {
				t.Fatalf("root id %q (old %s)", root.ID, oldID)
			}
			if c := last(srv); c.Method != http.MethodPost || c.Path != "/v1/organization/admin_api_keys" || c.Auth != "root" || c.Body["name"] != "vault-root-2" {
				t.Fatalf("create_root request = %+v", c)
			}
			if !srv.IsLive(oldSecret) || !srv.IsLive(newSecret) {
				t.Fatal("both admin keys should be live before the revoke")
			}
			if err := old.VerifyRoot(ctx, root); err != nil {
				t.Fatalf("VerifyRoot: %v", err)
			}
			if v := last(srv); v.Method != http.MethodGet || v.Path != "/v1/organization/admin_api_keys" || v.Auth != "admin:"+root.ID {
				t.Fatalf("verify_root request = %+v", v)
			}

			f["admin_key"], f["admin_key_id"] = newSecret, root.ID
			cur := newClient(t, srv, f)
			if err := cur.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot: %v", err)
			}
			if r := last(srv); r.Method != http.MethodDelete || r.Path != "/v1/organization/admin_api_keys/"+oldID || r.Auth != "admin:"+root.ID {
				t.Fatalf("revoke_root request = %+v", r)
			}
			if srv.IsLive(oldSecret) || !srv.IsLive(newSecret) || !srv.IsLive(other.Value) {
				t.Fatal("after RevokeRoot exactly the old admin key must be gone")
			}
			err = cur.VerifyRoot(ctx, clients.Root{ID: oldID, Fields: map[string]string{"admin_key": oldSecret}})
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("old root verified: %v", err)
			}
			assertNoSecret(t, err, oldSecret, newSecret, oldSecret[len(oldSecret)-4:])
			if err := cur.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot again: %v", err)
			}
			if _, err := cur.CreateKey(ctx, clients.KeyRequest{Name: "after"}); err != nil {
				t.Fatalf("CreateKey with the new root: %v", err)
			}
		})
	}
}

func TestRootRotationNeedsKeyID(t *testing.T) {
	srv := openaitest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	// Without admin_key_id, a key that does not authenticate fails RootID.
	f := fields(srv)
	f["admin_key_id"] = ""
	p := newClient(t, srv, f)
	p.adminKey = "sk-admin-" + strings.Repeat("z", 48) // authenticates nowhere
	if _, err := p.RootID(ctx); err == nil {
		t.Fatal("RootID with a bad key should fail")
	}

	if !redactedMatches("sk-admin...abcd", "sk-admin-xxxxabcd") || redactedMatches("sk-admin...abcd", "sk-admin-xxxxabce") {
		t.Fatal("dotted redaction match is wrong")
	}
	if redactedMatches("sk-admin****abcd", "sk-admin-xxxxabcd") || !redactedMatches("sk-admin*****abcd", "sk-admin-xxxxabcd") {
		t.Fatal("star redaction must match the key's length")
	}
	if redactedMatches("...", "sk-admin-x") || redactedMatches("sk-admin...", "sk-admin-x") {
		t.Fatal("a redaction without both ends must not match")
	}

	// Two admin keys whose redacted values both fit: ambiguous, so the id
	// is unknown and rotation refuses before creating anything.
	srv2 := openaitest.NewServer()
	defer srv2.Close()
	rootKey := srv2.RootKey()
	srv2.AddAdminKeyWithValue("look-alike", rootKey[:9]+strings.Repeat("0", len(rootKey)-13)+rootKey[len(rootKey)-4:])
	f2 := fields(srv2)
	f2["admin_key_id"] = ""
	p2 := newClient(t, srv2, f2)
	if id, err := p2.RootID(ctx); err != nil || id != "" {
		t.Fatalf("RootID with two look-alikes = %q, %v", id, err)
	}
	_, err := p2.CreateRoot(ctx, "r")
	if err == nil || !strings.Contains(err.Error(), "admin_key_id") {
		t.Fatalf("CreateRoot with an unknown id = %v", err)
	}
	assertNoSecret(t, err, rootKey)
	if n := len(srv2.LiveAdminKeys()); n != 2 {
		t.Fatalf("%d admin keys exist; CreateRoot must not create one without a known old id", n)
	}
	if err := p2.RevokeRoot(ctx, ""); err == nil {
		t.Fatal("RevokeRoot with no id succeeded")
	}
}

func TestAdminKeyOnlyOnAdminEndpoints(t *testing.T) {
	srv := openaitest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	// An issued key cannot pass as a root.
	err = p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"admin_key": key.Secret}})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("VerifyRoot with a project key = %v", err)
	}
	assertNoSecret(t, err, key.Secret, srv.RootKey())
}

func TestRateLimitRetried(t *testing.T) {
	srv := openaitest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	srv.FailNext(2, http.StatusTooManyRequests)
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "after-429"}); err != nil {
		t.Fatalf("CreateKey after 429s: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Status != 429 || reqs[2].Status != 200 {
		t.Fatalf("requests = %+v", reqs)
	}
	if len(srv.LiveKeys()) != 1 {
		t.Fatal("want exactly one service account")
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := openaitest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create":      func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2"}); return err },
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"list":        func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"verify_root": func() error {
			return p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"admin_key": srv.RootKey()}})
		},
		"revoke_root": func() error { return p.RevokeRoot(ctx, "key_x") },
	}
	for _, err := range clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.RootKey(), key.Secret) {
		assertNoSecret(t, err)
	}
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"error":{"message":"Incorrect API key provided: sk-abc*****wxyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`: "Incorrect API key provided: sk-[redacted]. (type=invalid_request_error, code=invalid_api_key)",
		`{"error":{"message":"Missing name","type":"invalid_request_error","param":"name","code":null}}`:                                            "Missing name (type=invalid_request_error, param=name)",
		"bad gateway": "bad gateway",
		"<html/>":     "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%s) = %q, want %q", in, got, want)
		}
	}
}
