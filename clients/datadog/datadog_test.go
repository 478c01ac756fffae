package datadog_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/datadog"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/datadog/datadogtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

func newProvider(t *testing.T, srv *datadogtest.Server, fields map[string]string) clients.Provider {
	t.Helper()
	return clienttest.New(t, datadog.TypeName, srv.URL, fields)
}

func rootFields(srv *datadogtest.Server) map[string]string {
	return map[string]string{"api_key": srv.RootAPIKey(), "app_key": srv.RootAppKey()}
}

func lastRequest(t *testing.T, srv *datadogtest.Server, method, path string) datadogtest.Recorded {
	t.Helper()
	return clienttest.Last(t, srv.Requests(), method+" "+path, func(r datadogtest.Recorded) bool { return r.Method == method && r.Path == path })
}

func attributes(t *testing.T, rec datadogtest.Recorded, wantType string) map[string]any {
	t.Helper()
	data, _ := rec.Body["data"].(map[string]any)
	if data["type"] != wantType {
		t.Errorf("data.type = %v, want %s", data["type"], wantType)
	}
	attrs, _ := data["attributes"].(map[string]any)
	return attrs
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		scopes     []string
		params     map[string]string
		createPath string
		dataType   string
		wantAttrs  map[string]any
		appKey     bool
	}{
		{
			name: "api key by default", createPath: "/api/v2/api_keys", dataType: "api_keys",
			wantAttrs: map[string]any{"name": "vault-app-1"},
		},
		{
			name: "api key with remote config", params: map[string]string{"key_kind": "api_key", "remote_config_read_enabled": "true"},
			createPath: "/api/v2/api_keys", dataType: "api_keys",
			wantAttrs: map[string]any{"name": "vault-app-1", "remote_config_read_enabled": true},
		},
		{
			name: "scoped application key", scopes: []string{"dashboards_read", "monitors_read"},
			params:     map[string]string{"key_kind": "application_key"},
			createPath: "/api/v2/current_user/application_keys", dataType: "application_keys",
			wantAttrs: map[string]any{"name": "vault-app-1", "scopes": []any{"dashboards_read", "monitors_read"}},
			appKey:    true,
		},
		{
			name: "unscoped application key", params: map[string]string{"key_kind": "application_key"},
			createPath: "/api/v2/current_user/application_keys", dataType: "application_keys",
			wantAttrs: map[string]any{"name": "vault-app-1"},
			appKey:    true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			srv := datadogtest.NewServer()
			defer srv.Close()
			p := newProvider(t, srv, rootFields(srv))

			key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: tc.scopes, Parameters: tc.params})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if key.ID == "" || key.Secret == "" || key.Name != "vault-app-1" {
				t.Fatalf("unexpected key %+v", key)
			}
			if got := strings.HasPrefix(key.ID, "app:"); got != tc.appKey {
				t.Fatalf("key id %q: application-key prefix = %v", key.ID, got)
			}
			create := lastRequest(t, srv, http.MethodPost, tc.createPath)
			if create.APIKey != "root" || create.AppKey != "root" {
				t.Errorf("create authenticated as %q/%q", create.APIKey, create.AppKey)
			}
			if got := attributes(t, create, tc.dataType); !reflect.DeepEqual(got, tc.wantAttrs) {
				t.Errorf("attributes = %v, want %v", got, tc.wantAttrs)
			}
			if !srv.IsLive(key.Secret) {
				t.Fatal("key not live")
			}

			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			id := strings.TrimPrefix(key.ID, "app:")
			if tc.appKey {
				v := lastRequest(t, srv, http.MethodGet, "/api/v2/validate_keys")
				if v.APIKey != "root" || v.AppKey != "key:"+id {
					t.Errorf("verify authenticated as %q/%q", v.APIKey, v.AppKey)
				}
			} else {
				v := lastRequest(t, srv, http.MethodGet, "/api/v1/validate")
				if v.APIKey != "key:"+id || v.AppKey != "" {
					t.Errorf("verify authenticated as %q/%q", v.APIKey, v.AppKey)
				}
			}

			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			deletePath := "/api/v2/api_keys/" + id
			if tc.appKey {
				deletePath = "/api/v2/current_user/application_keys/" + id
			}
			lastRequest(t, srv, http.MethodDelete, deletePath)
			clienttest.AssertRevoked(t, p, key, srv.IsLive)
		})
	}
}

func TestFindKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := datadogtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	api, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-1"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-2", Parameters: map[string]string{"key_kind": "application_key"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-10"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"vault-wal-1": api.ID, "vault-wal-2": app.ID} {
		found, err := p.FindKeys(ctx, name)
		if err != nil {
			t.Fatalf("FindKeys: %v", err)
		}
		if len(found) != 1 || found[0].ID != want {
			t.Fatalf("FindKeys(%s) = %+v, want %s", name, found, want)
		}
		if err := p.RevokeKey(ctx, found[0].ID); err != nil {
			t.Fatalf("RevokeKey(found): %v", err)
		}
	}
	if srv.IsLive(api.Secret) || srv.IsLive(app.Secret) {
		t.Fatal("keys found by name were not revoked")
	}
}

func TestRootRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	scopes := []string{"api_keys_read", "api_keys_write", "user_app_keys"}
	srv := datadogtest.NewServer(datadogtest.WithRootAppKeyScopes(scopes...))
	defer srv.Close()
	oldFields := rootFields(srv)
	old := newProvider(t, srv, oldFields)

	oldID, err := old.RootID(ctx)
	if err != nil {
		t.Fatalf("RootID: %v", err)
	}
	if want := "app_key:" + srv.RootAppKeyID() + ",api_key:" + srv.RootAPIKeyID(); oldID != want {
		t.Fatalf("RootID = %q, want %q", oldID, want)
	}

	root, err := old.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	if root.ID == "" || root.ID == oldID || root.Fields["api_key"] == "" || root.Fields["app_key"] == "" {
		t.Fatalf("unexpected root %q", root.ID)
	}
	appCreate := lastRequest(t, srv, http.MethodPost, "/api/v2/current_user/application_keys")
	if got := attributes(t, appCreate, "application_keys")["scopes"]; !reflect.DeepEqual(got, []any{"api_keys_read", "api_keys_write", "user_app_keys"}) {
		t.Errorf("new application key scopes = %v, want the old key's", got)
	}
	if err := old.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot: %v", err)
	}
	if v := lastRequest(t, srv, http.MethodGet, "/api/v2/validate_keys"); !strings.HasPrefix(v.APIKey, "key:") || !strings.HasPrefix(v.AppKey, "key:") {
		t.Errorf("VerifyRoot authenticated as %q/%q, want the new pair", v.APIKey, v.AppKey)
	}
	if !srv.IsLive(oldFields["api_key"]) || !srv.IsLive(oldFields["app_key"]) {
		t.Fatal("old pair died before the new one was persisted")
	}

	fresh := newProvider(t, srv, root.Fields)
	if err := fresh.RevokeRoot(ctx, root.ID); err == nil {
		t.Fatal("RevokeRoot accepted the id of the pair in use")
	}
	if err := fresh.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	if srv.IsLive(oldFields["api_key"]) || srv.IsLive(oldFields["app_key"]) {
		t.Fatal("old pair still live")
	}
	if err := fresh.VerifyRoot(ctx, clients.Root{Fields: oldFields}); err == nil {
		t.Fatal("old pair still accepted")
	}
	if err := fresh.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("repeated RevokeRoot: %v", err)
	}
	if id, err := fresh.RootID(ctx); err != nil || id != root.ID {
		t.Fatalf("RootID after rotation = %q, %v; want %q", id, err, root.ID)
	}
	if _, err := fresh.CreateKey(ctx, clients.KeyRequest{Name: "after"}); err != nil {
		t.Fatalf("new pair cannot issue keys: %v", err)
	}
}

func TestAbandonedRootRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := datadogtest.NewServer()
	defer srv.Close()
	fields := rootFields(srv)
	p := newProvider(t, srv, fields)
	root, err := p.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatal(err)
	}
	if err := newProvider(t, srv, fields).RevokeRoot(ctx, root.ID); err != nil {
		t.Fatalf("RevokeRoot(new) with the old pair: %v", err)
	}
	if srv.IsLive(root.Fields["api_key"]) || srv.IsLive(root.Fields["app_key"]) {
		t.Fatal("abandoned pair still live")
	}
	if !srv.IsLive(fields["api_key"]) || !srv.IsLive(fields["app_key"]) {
		t.Fatal("stored pair was deleted")
	}
}

// A root whose application key may manage application keys but not API keys
// fails halfway through CreateRoot; the new application key must not linger.
func TestCreateRootCleansUpHalfCreatedPair(t *testing.T) {
	t.Parallel()
	srv := datadogtest.NewServer(datadogtest.WithRootAppKeyScopes("user_app_keys", "api_keys_read"))
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	before := len(srv.LiveKeys())
	_, err := p.CreateRoot(context.Background(), "vault-root-2")
	var he *httpx.Error
	if !errors.As(err, &he) || he.Status != http.StatusForbidden {
		t.Fatalf("CreateRoot err = %v, want the 403 of the API-key create", err)
	}
	if after := len(srv.LiveKeys()); after != before {
		t.Fatalf("%d keys left behind", after-before)
	}
}

func TestRetriesRateLimit(t *testing.T) {
	t.Parallel()
	srv := datadogtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	srv.FailNext(2, http.StatusTooManyRequests)
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "after-429"}); err != nil {
		t.Fatalf("CreateKey after 429s: %v", err)
	}
	posts := clienttest.Count(srv.Requests(), func(r datadogtest.Recorded) bool { return r.Method == http.MethodPost })
	if posts != 3 {
		t.Fatalf("%d attempts, want 3", posts)
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := datadogtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: map[string]string{"key_kind": "application_key"}})
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.CreateRoot(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{srv.RootAPIKey(), srv.RootAppKey(), key.Secret, root.Fields["api_key"], root.Fields["app_key"]}
	srv.FailNext(1000, http.StatusBadGateway)
	calls := map[string]func() error{
		"create":      func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "x"}); return err },
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"verify_root": func() error { return p.VerifyRoot(ctx, root) },
		"revoke_root": func() error { return p.RevokeRoot(ctx, root.ID) },
	}
	clienttest.AssertFailures(t, calls, http.StatusBadGateway, secrets...)
}

func TestKeyOptionsRejected(t *testing.T) {
	t.Parallel()
	srv := datadogtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"unknown parameter", nil, map[string]string{"expires_at": "x"}, "parameters", "expires_at"},
		{"bad kind", nil, map[string]string{"key_kind": "client_token"}, "parameters", "key_kind"},
		{"scopes on api key", []string{"dashboards_read"}, nil, "scopes", "application"},
		{"remote config on app key", nil, map[string]string{"key_kind": "application_key", "remote_config_read_enabled": "true"}, "parameters", "API keys only"},
		{"remote config not bool", nil, map[string]string{"remote_config_read_enabled": "yes please"}, "parameters", "true or false"},
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	keys := func(extra map[string]string) map[string]string {
		m := map[string]string{"api_key": "a1b2c3d4", "app_key": "e5f6a7b8"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	clienttest.AssertValidate(t, datadog.TypeName, nil, []clienttest.FieldsCase{
		{"us1", keys(map[string]string{"site": "datadoghq.com"}), ""},
		{"eu", keys(map[string]string{"site": "datadoghq.eu"}), ""},
		{"gov", keys(map[string]string{"site": "ddog-gov.com"}), ""},
		{"base url instead of site", keys(map[string]string{"base_url": "http://localhost:1"}), ""},
		{"unknown site", keys(map[string]string{"site": "app.datadoghq.com"}), "site"},
		{"neither site nor base url", keys(map[string]string{"base_url": ""}), "site"},
		{"missing api key", map[string]string{"site": "datadoghq.com", "app_key": "x"}, "api_key"},
		{"missing app key", map[string]string{"site": "datadoghq.com", "api_key": "x"}, "app_key"},
		{"bad app key id", keys(map[string]string{"site": "datadoghq.com", "app_key_id": "a/b"}), "app_key_id"},
	})
}

func TestNewDerivesURLFromSite(t *testing.T) {
	t.Parallel()
	typ, _ := clients.Lookup(datadog.TypeName)
	if typ.DefaultBaseURL != "" || typ.BaseURLRequired {
		t.Fatal("datadog must derive its URL from site")
	}
	_, err := typ.New(clients.Config{Name: "dd", Fields: map[string]string{"api_key": "a", "app_key": "b"}, HTTP: clienttest.HTTP(t)})
	clienttest.AssertFieldError(t, err, "site", "")
	p, err := typ.New(clients.Config{Name: "dd", Fields: map[string]string{"site": "datadoghq.eu", "api_key": "a", "app_key": "b"}, HTTP: clienttest.HTTP(t)})
	if err != nil || p == nil {
		t.Fatalf("New with site: %v", err)
	}
}

// A 404 on the key listing (base_url or site pointing where Datadog's API
// is not) says which listing was not found, not that the root was refused.
func TestListingNotFoundSaysWhat(t *testing.T) {
	t.Parallel()
	srv := datadogtest.NewServer()
	defer srv.Close()
	p := clienttest.New(t, datadog.TypeName, srv.URL+"/not-datadog", rootFields(srv))
	_, err := p.RootID(context.Background())
	if !httpx.NotFound(err) {
		t.Fatalf("RootID against a base URL without the API = %v, want a 404", err)
	}
	msg := err.Error()
	for _, want := range []string{"HTTP 404", "/api/v2/current_user/application_keys was not found", srv.URL + "/not-datadog", "site and base_url"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "accept") {
		t.Errorf("error %q reads as a refused credential", msg)
	}
	clienttest.AssertNoSecret(t, err, srv.RootAPIKey(), srv.RootAppKey())
}
