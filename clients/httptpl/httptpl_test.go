package httptpl

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// demoFields configures the http type for the demo API (the same settings
// as the first example in docs/providers/http.md; TestDocsDemoExample keeps
// the two in step).
func demoFields() map[string]string {
	return map[string]string{
		"root_secret":         demoRootSecret,
		"create_path":         "/v1/keys",
		"create_body":         `{"name": {{.Key.Name}}, "scopes": {{.Scopes}}{{if .Key.ExpiresAt}}, "expires_at": {{.Key.ExpiresAt}}{{end}}}`,
		"key_id_path":         "id",
		"key_secret_path":     "key",
		"key_expires_path":    "expires_at",
		"verify_path":         "/v1/whoami",
		"revoke_path":         "/v1/keys/{{.Key.ID}}",
		"list_path":           "/v1/keys?name={{.Key.Name}}",
		"list_items_path":     "keys",
		"list_name_path":      "name",
		"list_id_path":        "id",
		"root_create_path":    "/v1/admin-keys",
		"root_create_body":    `{"name": {{.Key.Name}}}`,
		"root_id_path":        "id",
		"root_secret_path":    "admin_key",
		"root_verify_path":    "/v1/whoami",
		"root_verify_id_path": "id",
		"root_revoke_path":    "/v1/admin-keys/{{.Root.ID}}",
	}
}

// withDefaults merges the registered type's defaults, as the backend does.
func withDefaults(t testing.TB, f map[string]string) map[string]string {
	t.Helper()
	return clienttest.WithDefaults(t, "http", f)
}

func newProvider(t testing.TB, baseURL string, f map[string]string) *provider {
	t.Helper()
	return clienttest.New(t, "http", baseURL, f).(*provider)
}

func TestRegistered(t *testing.T) {
	typ, ok := clients.Lookup("http")
	if !ok {
		t.Fatal("http not registered")
	}
	if !typ.BaseURLRequired || typ.DefaultBaseURL != "" {
		t.Errorf("http must require base_url")
	}
	for _, f := range typ.Fields {
		if f.Description == "" {
			t.Errorf("field %s has no description", f.Name)
		}
		if f.Sensitive != (f.Name == "root_secret") {
			t.Errorf("field %s: Sensitive=%v", f.Name, f.Sensitive)
		}
	}
}

func TestKeyLifecycle(t *testing.T) {
	api := newDemoAPI()
	defer api.Close()
	p := newProvider(t, api.URL, demoFields())
	ctx := context.Background()

	caps := p.Capabilities()
	if !caps.Expiry || !caps.ListByName || !caps.RootRotation || caps.NativeRoll {
		t.Fatalf("capabilities = %+v", caps)
	}

	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: []string{"mail.send", "stats.read"}, ExpiresAt: exp})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if key.ID == "" || key.Secret == "" || key.Name != "vault-app-1" || !key.ExpiresAt.Equal(exp) {
		t.Fatalf("key = %+v", key)
	}
	reqs := api.Requests()
	create := reqs[len(reqs)-1]
	if create.Method != "POST" || create.Path != "/v1/keys" || create.Auth != "admin:adm_1" || create.ContentType != "application/json" {
		t.Fatalf("create request = %+v", create)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(create.Body), &body); err != nil {
		t.Fatalf("create body %q: %v", create.Body, err)
	}
	if body["name"] != "vault-app-1" || body["expires_at"] != exp.Format(time.RFC3339) {
		t.Errorf("create body = %v", body)
	}
	if s, _ := json.Marshal(body["scopes"]); string(s) != `["mail.send","stats.read"]` {
		t.Errorf("scopes = %s", s)
	}
	if k := api.key(key.ID); k == nil || len(k.scopes) != 2 || !k.expires.Equal(exp) {
		t.Fatalf("server key = %+v", k)
	}

	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	reqs = api.Requests()
	if v := reqs[len(reqs)-1]; v.Path != "/v1/whoami" || v.Auth != "key:"+key.ID {
		t.Fatalf("verify request = %+v (must use the new key)", v)
	}

	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if api.key(key.ID) != nil {
		t.Fatal("key still live after revoke")
	}
	err = p.VerifyKey(ctx, key)
	if err == nil {
		t.Fatal("VerifyKey of a revoked key succeeded")
	}
	if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), `provider "test"`) {
		t.Errorf("verify error = %v", err)
	}
	clienttest.AssertNoSecret(t, err, key.Secret, demoRootSecret)
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("second RevokeKey (404 = gone) = %v", err)
	}
	if err := p.RevokeKey(ctx, ""); err == nil {
		t.Fatal("RevokeKey with no id must fail, not DELETE the collection")
	}
}

func TestCreateWithoutExpiry(t *testing.T) {
	api := newDemoAPI()
	defer api.Close()
	p := newProvider(t, api.URL, demoFields())
	key, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if !key.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v, want zero", key.ExpiresAt)
	}
	reqs := api.Requests()
	if got := reqs[len(reqs)-1].Body; got != `{"name": "k", "scopes": []}` {
		t.Errorf("body = %s", got)
	}
}

func TestFindKeys(t *testing.T) {
	api := newDemoAPI()
	defer api.Close()
	p := newProvider(t, api.URL, demoFields())
	ctx := context.Background()
	name := "vault-wal & co?"
	k1, err := p.CreateKey(ctx, clients.KeyRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	found, err := p.FindKeys(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].ID != k1.ID || found[0].Name != name || found[0].Secret != "" {
		t.Fatalf("FindKeys = %+v", found)
	}
	reqs := api.Requests()
	if q := reqs[len(reqs)-1].RawQuery; q != "name="+url.QueryEscape(name) {
		t.Errorf("list query = %q (the & and ? must be escaped)", q)
	}
	if found, err := p.FindKeys(ctx, "none"); err != nil || len(found) != 0 {
		t.Fatalf("FindKeys(none) = %v, %v", found, err)
	}

	f := demoFields()
	delete(f, "list_path")
	delete(f, "list_items_path")
	delete(f, "list_name_path")
	delete(f, "list_id_path")
	p2 := newProvider(t, api.URL, f)
	if p2.Capabilities().ListByName {
		t.Error("ListByName without list_path")
	}
	if _, err := p2.FindKeys(ctx, name); !errors.Is(err, clients.ErrNotSupported) {
		t.Errorf("FindKeys without list_path = %v", err)
	}
}

func TestRootRotation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rootID string // "" makes RootID ask root_verify_id_path
	}{{"root_id configured", "adm_1"}, {"root_id discovered", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			api := newDemoAPI()
			defer api.Close()
			ctx := context.Background()
			f := demoFields()
			f["root_id"] = tc.rootID
			old := newProvider(t, api.URL, f)

			oldID, err := old.RootID(ctx)
			if err != nil || oldID != "adm_1" {
				t.Fatalf("RootID = %q, %v", oldID, err)
			}
			root, err := old.CreateRoot(ctx, "vault-root-1")
			if err != nil {
				t.Fatalf("CreateRoot: %v", err)
			}
			newSecret := root.Fields["root_secret"]
			if root.ID == "" || root.ID == oldID || newSecret == "" || root.Fields["root_id"] != root.ID {
				t.Fatalf("root = %+v", root)
			}
			if err := old.VerifyRoot(ctx, root); err != nil {
				t.Fatalf("VerifyRoot: %v", err)
			}
			reqs := api.Requests()
			if v := reqs[len(reqs)-1]; v.Auth != "admin:"+root.ID {
				t.Fatalf("verify_root used %s, want the new root", v.Auth)
			}
			// A root that answers with another id is not the new root.
			bad := clients.Root{ID: "adm_999", Fields: map[string]string{"root_secret": newSecret}}
			if err := old.VerifyRoot(ctx, bad); err == nil || !strings.Contains(err.Error(), "root_verify_id_path") {
				t.Fatalf("VerifyRoot with a wrong id = %v", err)
			} else {
				clienttest.AssertNoSecret(t, err, newSecret, demoRootSecret)
			}

			// The backend persists the new fields and rebuilds the client.
			for k, v := range root.Fields {
				f[k] = v
			}
			cur := newProvider(t, api.URL, f)
			if err := cur.RevokeRoot(ctx, cur.root.ID); err == nil {
				t.Fatal("RevokeRoot of the root in use must be refused")
			}
			if err := cur.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot: %v", err)
			}
			reqs = api.Requests()
			if r := reqs[len(reqs)-1]; r.Method != "DELETE" || r.Path != "/v1/admin-keys/"+oldID || r.Auth != "admin:"+root.ID {
				t.Fatalf("revoke_root request = %+v", r)
			}
			if ids := api.adminIDs(); len(ids) != 1 || ids[0] != root.ID {
				t.Fatalf("admin keys after rotation = %v", ids)
			}
			// The old root is rejected; the new one works.
			_, err = old.CreateKey(ctx, clients.KeyRequest{Name: "x"})
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("old root still works: %v", err)
			}
			clienttest.AssertNoSecret(t, err, demoRootSecret)
			if _, err := cur.CreateKey(ctx, clients.KeyRequest{Name: "x"}); err != nil {
				t.Fatalf("new root: %v", err)
			}
			if err := cur.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot again (404 = gone): %v", err)
			}
		})
	}
}

func TestRootRotationUnknownOldID(t *testing.T) {
	api := newDemoAPI()
	defer api.Close()
	f := demoFields()
	delete(f, "root_verify_id_path")
	p := newProvider(t, api.URL, f)
	if id, err := p.RootID(context.Background()); err != nil || id != "" {
		t.Fatalf("RootID = %q, %v", id, err)
	}
	if err := p.RevokeRoot(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "by hand") {
		t.Fatalf("RevokeRoot(\"\") = %v", err)
	}
}

func TestRootRoll(t *testing.T) {
	api := newDemoAPI()
	defer api.Close()
	ctx := context.Background()
	f := demoFields()
	f["root_create_path"] = "/v1/admin-keys/roll"
	f["root_create_body"] = ""
	f["root_roll"] = "true"
	f["root_revoke_path"] = ""
	f["root_id"] = "adm_1"
	p := newProvider(t, api.URL, f)
	if c := p.Capabilities(); !c.RootRotation || !c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	// A roll is sent once: a retry after a lost answer would roll blind.
	api.FailNext(1, http.StatusServiceUnavailable)
	n := len(api.Requests())
	if _, err := p.CreateRoot(ctx, "ignored"); err == nil || len(api.Requests()) != n+1 {
		t.Fatalf("roll after a 503: %v, %d requests", err, len(api.Requests())-n)
	} else if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("the echoed root must be redacted: %v", err)
	}
	root, err := p.CreateRoot(ctx, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if root.ID != "adm_1" || root.Fields["root_secret"] == demoRootSecret {
		t.Fatalf("root = %+v", root)
	}
	if err := p.VerifyRoot(ctx, root); err != nil {
		t.Fatal(err)
	}
	// Rolled: the old value is dead at once and there is nothing to revoke.
	if err := p.VerifyRoot(ctx, clients.Root{ID: "adm_1", Fields: map[string]string{"root_secret": demoRootSecret}}); err == nil {
		t.Fatal("old root still works after a roll")
	}
	n = len(api.Requests())
	if err := p.RevokeRoot(ctx, "adm_1"); err != nil || len(api.Requests()) != n {
		t.Fatalf("RevokeRoot after a roll must be a no-op: %v", err)
	}
}

func TestNoRootRotation(t *testing.T) {
	api := newDemoAPI()
	defer api.Close()
	f := demoFields()
	for _, k := range []string{"root_create_path", "root_create_body", "root_id_path", "root_secret_path", "root_revoke_path", "root_verify_path", "root_verify_id_path"} {
		delete(f, k)
	}
	p := newProvider(t, api.URL, f)
	if p.Capabilities().RootRotation {
		t.Fatal("RootRotation without root_create_path")
	}
	if _, err := p.CreateRoot(context.Background(), "x"); !errors.Is(err, clients.ErrNotSupported) {
		t.Fatalf("CreateRoot = %v", err)
	}
}

func TestRetriesAndErrors(t *testing.T) {
	api := newDemoAPI()
	defer api.Close()
	p := newProvider(t, api.URL, demoFields())
	ctx := context.Background()

	api.FailNext(2, http.StatusTooManyRequests)
	before := len(api.Requests())
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "after-429"})
	if err != nil {
		t.Fatalf("CreateKey after two 429s: %v", err)
	}
	if n := len(api.Requests()) - before; n != 3 {
		t.Errorf("%d requests, want 3", n)
	}

	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable} {
		api.FailNext(100, status)
		err = p.VerifyKey(ctx, key)
		if err == nil {
			t.Fatalf("VerifyKey with %d succeeded", status)
		}
		if !strings.Contains(err.Error(), `provider "test"`) || !strings.Contains(err.Error(), "HTTP "+itoa(status)) {
			t.Errorf("error = %v", err)
		}
		// The fake echoes the credential in its error message.
		if !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("expected the echoed key to be redacted: %v", err)
		}
		clienttest.AssertNoSecret(t, err, key.Secret, demoRootSecret)

		err = p.RevokeKey(ctx, key.ID)
		if err == nil {
			t.Fatalf("RevokeKey with %d succeeded", status)
		}
		clienttest.AssertNoSecret(t, err, key.Secret, demoRootSecret)
		api.FailNext(0, 0)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestMissingSecretRevokesKey(t *testing.T) {
	api := newDemoAPI()
	defer api.Close()
	api.omitSecret = true
	p := newProvider(t, api.URL, demoFields())
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "no-secret"})
	if err == nil || !strings.Contains(err.Error(), "key_secret_path") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "was revoked") || api.liveKeys() != 0 {
		t.Fatalf("the key without a secret was left behind: %v (%d live)", err, api.liveKeys())
	}
}

func TestUnknownParameters(t *testing.T) {
	api := newDemoAPI()
	defer api.Close()
	ctx := context.Background()

	p := newProvider(t, api.URL, demoFields())
	_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: map[string]string{"team": "a"}})
	var fe *clients.FieldError
	if !errors.As(err, &fe) || fe.Field != "parameters" || !strings.Contains(fe.Message, `"team"`) {
		t.Fatalf("err = %v", err)
	}

	f := demoFields()
	f["create_body"] = `{"name": {{.Key.Name}}, "team": {{.Parameters.team}}, "env": {{index .Parameters "env"}}}`
	p = newProvider(t, api.URL, f)
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: map[string]string{"team": "a", "env": "prod"}}); err != nil {
		t.Fatalf("known parameters: %v", err)
	}
	_, err = p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: map[string]string{"tema": "a"}})
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, `"tema"`) || !strings.Contains(fe.Message, "env, team") {
		t.Fatalf("err = %v", err)
	}
	// A missing parameter renders as "".
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"}); err != nil {
		t.Fatal(err)
	}

	f["create_body"] = `{"name": {{.Key.Name}}, "options": {{json .Parameters}}}`
	p = newProvider(t, api.URL, f)
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: map[string]string{"anything": "x"}}); err != nil {
		t.Fatalf("whole-map template: %v", err)
	}
}

// TestInjection sends hostile values through every kind of template.
func TestInjection(t *testing.T) {
	var got *http.Request
	var gotBody string
	srv := startRecorder(func(r *http.Request, body string) (int, string) {
		got, gotBody = r, body
		return 201, `{"id":"a/../../admin","key":"sek-ret-123"}`
	})
	defer srv.Close()
	f := demoFields()
	f["create_path"] = "/v1/teams/{{.Parameters.team}}/keys?label={{.Key.Name}}&x=1"
	f["create_body"] = `{"name": {{.Key.Name}}, "note": "team {{.Parameters.team}}!", "scopes": {{.Scopes}}, "csv": "{{join .Scopes ","}}", "policy": "{{json .Scopes}}"}`
	f["create_headers"] = "X-Team: {{.Parameters.team}}"
	p := newProvider(t, srv.URL, f)
	team := "a/b?c=d&e\",\"admin\":true}\\"
	scopes := []string{`x"]`, "y\n\\u0022"}
	key, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "n&evil=1#frag", Scopes: scopes, Parameters: map[string]string{"team": team}})
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.EscapedPath() != "/v1/teams/"+url.PathEscape(team)+"/keys" {
		t.Errorf("path = %q", got.URL.EscapedPath())
	}
	if q := got.URL.Query(); q.Get("label") != "n&evil=1#frag" || q.Get("x") != "1" || q.Has("evil") {
		t.Errorf("query = %v", q)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(gotBody), &body); err != nil {
		t.Fatalf("body %s: %v", gotBody, err)
	}
	if len(body) != 5 || body["note"] != "team "+team+"!" || body["csv"] != strings.Join(scopes, ",") {
		t.Errorf("body = %v", body)
	}
	var policy []string
	if err := json.Unmarshal([]byte(body["policy"].(string)), &policy); err != nil || len(policy) != 2 || policy[0] != scopes[0] {
		t.Errorf("policy = %v (%v)", body["policy"], err)
	}
	if got.Header.Get("X-Team") != team {
		t.Errorf("X-Team = %q", got.Header.Get("X-Team"))
	}

	// Revoking an id that tries to climb the path stays in its segment.
	if err := p.RevokeKey(context.Background(), key.ID); err != nil {
		t.Fatal(err)
	}
	if got.URL.EscapedPath() != "/v1/keys/a%2F..%2F..%2Fadmin" {
		t.Errorf("revoke path = %q", got.URL.EscapedPath())
	}
	if err := p.RevokeKey(context.Background(), ".."); err == nil || !strings.Contains(err.Error(), "revoke_path") {
		t.Errorf("RevokeKey(..) = %v", err)
	}

	// A line break in a header value is refused, not sent as a new header.
	_, err = p.CreateKey(context.Background(), clients.KeyRequest{Name: "n", Parameters: map[string]string{"team": "x\r\nAuthorization: Bearer stolen"}})
	if err == nil || !strings.Contains(err.Error(), "create_headers") {
		t.Fatalf("header injection: %v", err)
	}
}

func TestFormBody(t *testing.T) {
	var gotBody, ct string
	srv := startRecorder(func(r *http.Request, body string) (int, string) {
		gotBody, ct = body, r.Header.Get("Content-Type")
		return 201, `{"sid":12345,"secret":"s3cr3t-value"}`
	})
	defer srv.Close()
	f := demoFields()
	f["create_headers"] = "Content-Type: application/x-www-form-urlencoded"
	f["create_body"] = "FriendlyName={{.Key.Name}}&Scopes={{join .Scopes \" \"}}"
	f["key_id_path"] = "sid"
	f["key_secret_path"] = "secret"
	f["key_expires_path"] = ""
	p := newProvider(t, srv.URL, f)
	key, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "a&b=c", Scopes: []string{"x", "y"}})
	if err != nil {
		t.Fatal(err)
	}
	if key.ID != "12345" {
		t.Errorf("numeric id = %q", key.ID)
	}
	vals, err := url.ParseQuery(gotBody)
	if err != nil || vals.Get("FriendlyName") != "a&b=c" || vals.Get("Scopes") != "x y" || len(vals) != 2 || ct != "application/x-www-form-urlencoded" {
		t.Errorf("form body = %q (%v), content type %q", gotBody, err, ct)
	}
}

func TestRuntimeErrorsNameTemplateAndHideSecrets(t *testing.T) {
	srv := startRecorder(func(r *http.Request, body string) (int, string) { return 201, `{"id":"1","key":"k-123456"}` })
	defer srv.Close()
	f := demoFields()
	f["create_headers"] = "X-Team: {{.Parameters.team}}"
	f["create_path"] = "/v1/{{.Parameters.dir}}/keys"
	p := newProvider(t, srv.URL, f)
	ctx := context.Background()
	for _, tc := range []struct {
		params map[string]string
		field  string
	}{
		{map[string]string{"team": demoRootSecret + "\r\nX-Evil: 1", "dir": "d"}, "create_headers"},
		{map[string]string{"team": "t", "dir": ".."}, "create_path"},
	} {
		_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: tc.params})
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), `provider "test"`) {
			t.Fatalf("err = %v, want one naming %s", err, tc.field)
		}
		clienttest.AssertNoSecret(t, err, demoRootSecret)
	}
}

func TestDocsDemoExample(t *testing.T) {
	f := docsExample(t, "demo-http")
	want := demoFields()
	want["root_secret"] = f["root_secret"]
	for k, v := range want {
		if f[k] != v {
			t.Errorf("docs example %s = %q, tests use %q", k, f[k], v)
		}
	}
	for k := range f {
		if _, ok := want[k]; !ok && k != "base_url" && k != "type" {
			t.Errorf("docs example sets %s, tests do not", k)
		}
	}
	if f["type"] != "http" || f["base_url"] != "http://127.0.0.1:8300" {
		t.Errorf("docs example type/base_url = %q %q", f["type"], f["base_url"])
	}
}

func TestDocsSecondExampleValidates(t *testing.T) {
	f := docsExample(t, "heroku")
	delete(f, "type")
	delete(f, "base_url")
	typ, _ := clients.Lookup("http")
	if err := typ.Validate(withDefaults(t, f)); err != nil {
		t.Fatalf("second docs example does not validate: %v", err)
	}
}
