package elasticsearch

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/elasticsearch/elasticsearchtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

func basicFields(srv *elasticsearchtest.Server) map[string]string {
	return map[string]string{"username": elasticsearchtest.Username, "password": srv.Password()}
}

func keyFields(srv *elasticsearchtest.Server) map[string]string {
	return map[string]string{"api_key": srv.RootAPIKey()}
}

func newClient(t *testing.T, srv *elasticsearchtest.Server, fields map[string]string) *provider {
	t.Helper()
	return clienttest.New(t, "elasticsearch", srv.URL, fields).(*provider)
}

func last(srv *elasticsearchtest.Server) elasticsearchtest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

const roles = `{"logs-reader":{"indices":[{"names":["logs-*"],"privileges":["read"]}]}}`

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, "elasticsearch")
	if typ.DefaultBaseURL != "" || !typ.BaseURLRequired {
		t.Fatalf("base url = %q required=%v", typ.DefaultBaseURL, typ.BaseURLRequired)
	}
	if c := typ.Capabilities; !c.Expiry || !c.ListByName || c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	for _, f := range typ.Fields {
		if (f.Name == "api_key" || f.Name == "password") != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
	}
}

func TestValidate(t *testing.T) {
	encoded := base64.StdEncoding.EncodeToString([]byte("VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw"))
	clienttest.AssertValidate(t, "elasticsearch", nil, []clienttest.FieldsCase{
		{"api key", map[string]string{"api_key": encoded}, ""},
		{"password", map[string]string{"username": "u", "password": "p"}, ""},
		{"nothing", map[string]string{}, "api_key"},
		{"both", map[string]string{"api_key": encoded, "username": "u", "password": "p"}, "api_key"},
		{"api key not encoded", map[string]string{"api_key": "ui2lp2axTNmsyakw9tvNnw"}, "api_key"},
		{"api key without id", map[string]string{"api_key": base64.StdEncoding.EncodeToString([]byte(":x"))}, "api_key"},
		{"password alone", map[string]string{"password": "p"}, "username"},
		{"username alone", map[string]string{"username": "u"}, "password"},
		{"username with a colon", map[string]string{"username": "u:x", "password": "p"}, "username"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	srv := elasticsearchtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, basicFields(srv))
	ctx := context.Background()
	now := time.Now()
	p.now = func() time.Time { return now }

	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", ExpiresAt: now.Add(10*time.Minute + 200*time.Millisecond),
		Parameters: map[string]string{"role_descriptors": roles, "metadata": `{"team":"web"}`}})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if key.ID == "" || key.Extra["api_key_id"] != key.ID || key.Name != "vault-app-1" {
		t.Fatalf("key = %+v", key)
	}
	if d := key.ExpiresAt.Sub(now); d < 10*time.Minute || d > 10*time.Minute+2*time.Second {
		t.Fatalf("expires %v from now", d)
	}
	raw, _ := base64.StdEncoding.DecodeString(key.Secret)
	if !strings.HasPrefix(string(raw), key.ID+":") {
		t.Fatal("the secret is not the encoded key")
	}
	c := last(srv)
	rd, _ := c.Body["role_descriptors"].(map[string]any)
	md, _ := c.Body["metadata"].(map[string]any)
	if c.Method != http.MethodPost || c.Path != "/_security/api_key" || c.Auth != "user:"+elasticsearchtest.Username ||
		c.Body["name"] != "vault-app-1" || c.Body["expiration"] != "601s" || rd["logs-reader"] == nil || md["team"] != "web" {
		t.Fatalf("create request = %+v", c)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if v := last(srv); v.Method != http.MethodGet || v.Path != "/_security/_authenticate" || v.Auth != "key:"+key.ID {
		t.Fatalf("verify request = %+v", v)
	}
	// A key that authenticates as another key fails verification.
	other := key
	other.ID = "someotherid"
	if err := p.VerifyKey(ctx, other); err == nil || !strings.Contains(err.Error(), "not someotherid") {
		t.Fatalf("VerifyKey with the wrong id = %v", err)
	}

	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	r := last(srv)
	if ids, _ := r.Body["ids"].([]any); r.Method != http.MethodDelete || r.Path != "/_security/api_key" || len(ids) != 1 || ids[0] != key.ID {
		t.Fatalf("revoke request = %+v", r)
	}
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.Password())
	if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "security_exception") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}
	// The second revoke was answered "previously invalidated": gone.
	if r := last(srv); r.Method != http.MethodDelete || r.Status != 200 {
		t.Fatalf("second revoke = %+v", r)
	}
	// An id Elasticsearch does not know (404) is gone too.
	if err := p.RevokeKey(ctx, "neverexisted"); err != nil {
		t.Fatalf("RevokeKey of an unknown id: %v", err)
	}
	if r := last(srv); r.Status != http.StatusNotFound {
		t.Fatalf("unknown id got %d", r.Status)
	}
}

// With an API key root, keys are derived keys: sent with explicit empty
// role descriptors, and a role asking for privileges is refused before
// anything is sent.
func TestAPIKeyRoot(t *testing.T) {
	srv := elasticsearchtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, keyFields(srv))
	ctx := context.Background()
	if id, err := p.RootID(ctx); err != nil || id != srv.RootAPIKeyID() {
		t.Fatalf("RootID = %q, %v; want %s", id, err, srv.RootAPIKeyID())
	}
	if r := last(srv); r.Path != "/_security/_authenticate" || r.Auth != "key:"+srv.RootAPIKeyID() {
		t.Fatalf("root check = %+v", r)
	}
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "derived"})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if rd, ok := last(srv).Body["role_descriptors"].(map[string]any); !ok || len(rd) != 0 {
		t.Fatalf("create body = %v, want explicit empty role_descriptors", last(srv).Body)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	n := len(srv.Requests())
	_, err = p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: map[string]string{"role_descriptors": roles}})
	clienttest.AssertFieldError(t, err, "parameters", "username and password")
	if len(srv.Requests()) != n {
		t.Fatal("a request was sent")
	}
	// A password root's RootID checks it but knows no id.
	pw := newClient(t, srv, basicFields(srv))
	if id, err := pw.RootID(ctx); err != nil || id != "" {
		t.Fatalf("RootID with a password = %q, %v", id, err)
	}
}

func TestFindKeys(t *testing.T) {
	srv := elasticsearchtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, basicFields(srv))
	ctx := context.Background()
	a, _ := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-1"})
	b, _ := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-1"})
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	if err := p.RevokeKey(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	keys, err := p.FindKeys(ctx, "vault-wal-1")
	if err != nil || len(keys) != 1 || keys[0].ID != a.ID {
		t.Fatalf("FindKeys = %+v, %v; want only the valid %s", keys, err, a.ID)
	}
	if r := last(srv); r.Method != http.MethodGet || r.Path != "/_security/api_key" || r.Query != "name=vault-wal-1" {
		t.Fatalf("list request = %+v", r)
	}
}

func TestBadRequests(t *testing.T) {
	srv := elasticsearchtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, basicFields(srv))
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"scopes", []string{"read"}, nil, "scopes", "role_descriptors"},
		{"roles not json", nil, map[string]string{"role_descriptors": "read"}, "parameters", "role_descriptors must be a JSON object"},
		{"roles an array", nil, map[string]string{"role_descriptors": "[]"}, "parameters", "role_descriptors must be a JSON object"},
		{"metadata null", nil, map[string]string{"metadata": "null"}, "parameters", "metadata must be a JSON object"},
		{"unknown", nil, map[string]string{"expiration": "1d"}, "parameters", `"expiration"`},
	})
}

func TestRootRotationUnsupported(t *testing.T) {
	srv := elasticsearchtest.NewServer()
	defer srv.Close()
	for _, f := range []map[string]string{basicFields(srv), keyFields(srv)} {
		p := newClient(t, srv, f)
		if p.Capabilities().RootRotation {
			t.Fatal("elasticsearch claims root rotation")
		}
		if _, err := p.CreateRoot(context.Background(), "r"); err != clients.ErrNotSupported {
			t.Fatalf("CreateRoot = %v", err)
		}
	}
}

func TestUnauthorized(t *testing.T) {
	srv := elasticsearchtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, map[string]string{"username": elasticsearchtest.Username, "password": "wrong-password-0123"})
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"})
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("CreateKey with a wrong password = %v", err)
	}
	clienttest.AssertNoSecret(t, err, "wrong-password-0123", srv.Password())
}

// A 429 is waited out and the create sent again; a 500 is not retried (the
// key may exist) and leaves nothing.
func TestCreateThrottledOrFailing(t *testing.T) {
	srv := elasticsearchtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, basicFields(srv))
	create := func() error { _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"}); return err }
	clienttest.AssertCreateNotRetriedAfter500(t, srv.FailNext, create, srv.Requests)
	if n := len(srv.LiveKeys()); n != 0 {
		t.Fatalf("%d keys after a create answered 500", n)
	}
	clienttest.AssertCreateRetriedAfter429(t, srv.FailNext, create, srv.Requests, func(r elasticsearchtest.Recorded) int { return r.Status })
	if n := len(srv.LiveKeys()); n != 1 {
		t.Fatalf("%d keys after a create answered 429 twice, want 1", n)
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := elasticsearchtest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	for _, f := range []map[string]string{basicFields(srv), keyFields(srv)} {
		p := newClient(t, srv, f)
		key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
		if err != nil {
			t.Fatal(err)
		}
		srv.FailNext(100, http.StatusServiceUnavailable)
		calls := map[string]func() error{
			"create":  func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2"}); return err },
			"verify":  func() error { return p.VerifyKey(ctx, key) },
			"revoke":  func() error { return p.RevokeKey(ctx, key.ID) },
			"list":    func() error { _, err := p.FindKeys(ctx, "k"); return err },
			"root_id": func() error { _, err := p.RootID(ctx); return err },
		}
		clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.Password(), srv.RootAPIKey(), key.Secret)
		srv.FailNext(0, 0)
	}
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"error":{"root_cause":[],"type":"security_exception","reason":"missing authentication"},"status":401}`: "security_exception: missing authentication",
		`{"error":"Incorrect HTTP method","status":405}`:                                                         "Incorrect HTTP method",
		"bad gateway":  "bad gateway",
		"<html/>":      "",
		`{"status":1}`: "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%s) = %q, want %q", in, got, want)
		}
	}
}
