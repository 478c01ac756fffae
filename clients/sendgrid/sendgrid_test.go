package sendgrid_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/sendgrid"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/sendgrid/sendgridtest"
)

func newProvider(t *testing.T, srv *sendgridtest.Server, fields map[string]string) clients.Provider {
	t.Helper()
	return clienttest.New(t, sendgrid.TypeName, srv.URL, fields)
}

func rootFields(srv *sendgridtest.Server) map[string]string {
	return map[string]string{"api_key": srv.RootKey()}
}

func lastRequest(t *testing.T, srv *sendgridtest.Server, method, path string) sendgridtest.Recorded {
	t.Helper()
	return clienttest.Last(t, srv.Requests(), method+" "+path, func(r sendgridtest.Recorded) bool { return r.Method == method && r.Path == path })
}

func stringsOf(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		scopes     []string
		onBehalfOf string
	}{
		{name: "scoped", scopes: []string{"mail.send", "stats.read"}},
		{name: "full access", scopes: nil},
		{name: "subuser", scopes: []string{"mail.send"}, onBehalfOf: "team-a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv := sendgridtest.NewServer()
			defer srv.Close()
			fields := rootFields(srv)
			if tc.onBehalfOf != "" {
				fields["on_behalf_of"] = tc.onBehalfOf
			}
			p := newProvider(t, srv, fields)

			key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: tc.scopes})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if key.ID == "" || !strings.HasPrefix(key.Secret, "SG.") || key.Name != "vault-app-1" {
				t.Fatalf("unexpected key %+v", key)
			}
			create := lastRequest(t, srv, http.MethodPost, "/v3/api_keys")
			if create.Auth != "root" {
				t.Errorf("create authenticated as %q, want root", create.Auth)
			}
			if create.OnBehalfOf != tc.onBehalfOf {
				t.Errorf("create on-behalf-of = %q, want %q", create.OnBehalfOf, tc.onBehalfOf)
			}
			if create.Body["name"] != "vault-app-1" {
				t.Errorf("create name = %v", create.Body["name"])
			}
			wantScopes := append([]string(nil), tc.scopes...)
			sort.Strings(wantScopes)
			if _, sent := create.Body["scopes"]; len(tc.scopes) == 0 && sent {
				t.Errorf("scopes sent for a full-access key: %v", create.Body["scopes"])
			} else if len(tc.scopes) > 0 && !reflect.DeepEqual(stringsOf(create.Body["scopes"]), wantScopes) {
				t.Errorf("create scopes = %v, want %v", create.Body["scopes"], wantScopes)
			}
			if !srv.IsLive(key.Secret) {
				t.Fatal("created key is not live at the provider")
			}

			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			verify := lastRequest(t, srv, http.MethodGet, "/v3/scopes")
			if verify.Auth != "key:"+key.ID {
				t.Errorf("verify authenticated as %q, want the new key", verify.Auth)
			}
			if verify.OnBehalfOf != "" {
				t.Errorf("verify sent on-behalf-of %q", verify.OnBehalfOf)
			}

			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			del := lastRequest(t, srv, http.MethodDelete, "/v3/api_keys/"+key.ID)
			if del.Auth != "root" || del.OnBehalfOf != tc.onBehalfOf {
				t.Errorf("delete sent as %q on behalf of %q", del.Auth, del.OnBehalfOf)
			}
			clienttest.AssertRevoked(t, p, key, srv.IsLive)
		})
	}
}

func TestFindKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := sendgridtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	if !p.Capabilities().ListByName {
		t.Fatal("ListByName not set")
	}
	want, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-other"}); err != nil {
		t.Fatal(err)
	}
	found, err := p.FindKeys(ctx, "vault-wal-1")
	if err != nil {
		t.Fatalf("FindKeys: %v", err)
	}
	if len(found) != 1 || found[0].ID != want.ID || found[0].Secret != "" {
		t.Fatalf("FindKeys = %+v, want only %s without secret", found, want.ID)
	}
	none, err := p.FindKeys(ctx, "vault-missing")
	if err != nil || len(none) != 0 {
		t.Fatalf("FindKeys(missing) = %v, %v", none, err)
	}
}

func TestRootRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rootScopes := []string{"api_keys.create", "api_keys.read", "api_keys.delete", "mail.send"}
	srv := sendgridtest.NewServer(sendgridtest.WithRootScopes(rootScopes...))
	defer srv.Close()
	oldSecret := srv.RootKey()
	old := newProvider(t, srv, map[string]string{"api_key": oldSecret, "on_behalf_of": "team-a"})

	oldID, err := old.RootID(ctx)
	if err != nil {
		t.Fatalf("RootID: %v", err)
	}
	if oldID != srv.RootKeyID() {
		t.Fatalf("RootID = %q, want %q", oldID, srv.RootKeyID())
	}

	root, err := old.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	newSecret := root.Fields["api_key"]
	if root.ID == "" || root.ID == oldID || newSecret == "" || newSecret == oldSecret {
		t.Fatalf("unexpected root %q", root.ID)
	}
	create := lastRequest(t, srv, http.MethodPost, "/v3/api_keys")
	sort.Strings(rootScopes)
	if got := stringsOf(create.Body["scopes"]); !reflect.DeepEqual(got, rootScopes) {
		t.Errorf("new root scopes = %v, want the root's own %v (without SendGrid's automatic scopes)", got, rootScopes)
	}
	if create.OnBehalfOf != "" {
		t.Errorf("root created on behalf of %q; it must stay on the parent account", create.OnBehalfOf)
	}

	if err := old.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot: %v", err)
	}
	if got := lastRequest(t, srv, http.MethodGet, "/v3/scopes").Auth; got != "key:"+root.ID {
		t.Errorf("VerifyRoot authenticated as %q, want the new root", got)
	}

	// The backend persists root.Fields, then revokes with the new root.
	fresh := newProvider(t, srv, map[string]string{"api_key": newSecret, "on_behalf_of": "team-a"})
	if err := fresh.RevokeRoot(ctx, root.ID); err == nil {
		t.Fatal("RevokeRoot deleted the root key in use")
	}
	if err := fresh.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	if got := lastRequest(t, srv, http.MethodDelete, "/v3/api_keys/"+oldID); got.Auth != "key:"+root.ID || got.OnBehalfOf != "" {
		t.Errorf("old root deleted as %q on behalf of %q", got.Auth, got.OnBehalfOf)
	}
	if srv.IsLive(oldSecret) {
		t.Fatal("old root still live")
	}
	if err := fresh.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"api_key": oldSecret}}); err == nil {
		t.Fatal("old root still accepted")
	}
	if err := fresh.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("repeated RevokeRoot: %v", err)
	}
	if id, err := fresh.RootID(ctx); err != nil || id != root.ID {
		t.Fatalf("RootID after rotation = %q, %v; want %q", id, err, root.ID)
	}
	if _, err := fresh.CreateKey(ctx, clients.KeyRequest{Name: "after-rotation", Scopes: []string{"mail.send"}}); err != nil {
		t.Fatalf("new root cannot issue keys: %v", err)
	}
	if err := fresh.RevokeRoot(ctx, ""); err == nil {
		t.Fatal("RevokeRoot with an unknown id must fail")
	}
}

func TestRootWithoutKeyManagementScopes(t *testing.T) {
	t.Parallel()
	srv := sendgridtest.NewServer(sendgridtest.WithRootScopes("api_keys.create", "mail.send"))
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	before := len(srv.LiveKeys())
	_, err := p.CreateRoot(context.Background(), "vault-root-2")
	clienttest.AssertFieldError(t, err, "api_key", "api_keys.delete")
	if after := len(srv.LiveKeys()); after != before {
		t.Fatalf("%d keys created by a refused rotation", after-before)
	}
}

func TestVerifyRootNeedsKeyManagement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := sendgridtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	weak, err := p.CreateKey(ctx, clients.KeyRequest{Name: "mail-only", Scopes: []string{"mail.send"}})
	if err != nil {
		t.Fatal(err)
	}
	err = p.VerifyRoot(ctx, clients.Root{ID: weak.ID, Fields: map[string]string{"api_key": weak.Secret}})
	if err == nil || !strings.Contains(err.Error(), "api_keys.create") {
		t.Fatalf("VerifyRoot with a key that cannot manage keys = %v", err)
	}
	if strings.Contains(err.Error(), weak.Secret) {
		t.Fatalf("error leaks the key: %v", err)
	}
}

func TestKeyLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := sendgridtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	// The root is key 1 of 100.
	for i := 0; i < sendgridtest.DefaultKeyLimit-1; i++ {
		if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"}); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "one-too-many"})
	var he *httpx.Error
	if !errors.As(err, &he) || he.Status != http.StatusForbidden {
		t.Fatalf("101st key: err = %v, want a 403", err)
	}
	if !strings.Contains(err.Error(), "100") {
		t.Errorf("error does not carry SendGrid's message: %v", err)
	}
}

func TestRetriesRateLimit(t *testing.T) {
	t.Parallel()
	srv := sendgridtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	srv.FailNext(2, http.StatusTooManyRequests)
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "after-429"}); err != nil {
		t.Fatalf("CreateKey after 429s: %v", err)
	}
	posts := clienttest.Count(srv.Requests(), func(r sendgridtest.Recorded) bool { return r.Method == http.MethodPost })
	if posts != 3 {
		t.Fatalf("%d create attempts, want 3", posts)
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := sendgridtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{srv.RootKey(), key.Secret}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create": func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "x"}); return err },
		"verify": func() error { return p.VerifyKey(ctx, key) },
		"revoke": func() error { return p.RevokeKey(ctx, key.ID) },
		"create_root": func() error {
			_, err := p.CreateRoot(ctx, "r")
			return err
		},
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, secrets...)
}

func TestParametersRejected(t *testing.T) {
	t.Parallel()
	srv := sendgridtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Parameters: map[string]string{"ttl": "1h"}})
	clienttest.AssertFieldError(t, err, "parameters", "ttl")
	if len(srv.Requests()) != 0 {
		t.Fatal("a request was sent for a rejected key")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	clienttest.AssertValidate(t, sendgrid.TypeName, nil, []clienttest.FieldsCase{
		{"ok", map[string]string{"api_key": "SG.abc.def"}, ""},
		{"ok with subuser and id", map[string]string{"api_key": "SG.abc.def", "on_behalf_of": "team a", "api_key_id": "abc_-1"}, ""},
		{"missing key", map[string]string{"api_key": ""}, "api_key"},
		{"key with newline", map[string]string{"api_key": "SG.a.b\n"}, "api_key"},
		{"header injection", map[string]string{"api_key": "SG.a.b", "on_behalf_of": "x\r\nEvil: 1"}, "on_behalf_of"},
		{"bad key id", map[string]string{"api_key": "SG.a.b", "api_key_id": "../x"}, "api_key_id"},
	})
}

func TestTypeDeclaration(t *testing.T) {
	t.Parallel()
	typ, _ := clients.Lookup(sendgrid.TypeName)
	if typ.DefaultBaseURL != "https://api.sendgrid.com" {
		t.Errorf("DefaultBaseURL = %q", typ.DefaultBaseURL)
	}
	for _, f := range typ.Fields {
		if f.Name == "api_key" && (!f.Required || !f.Sensitive) {
			t.Errorf("api_key must be required and sensitive")
		}
		if f.Name != "api_key" && f.Sensitive {
			t.Errorf("%s should not be sensitive", f.Name)
		}
		if f.Description == "" {
			t.Errorf("%s has no description", f.Name)
		}
	}
}
