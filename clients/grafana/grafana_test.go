package grafana

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/grafana/grafanatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

func newClient(t *testing.T, baseURL string, fields map[string]string) *provider {
	t.Helper()
	return clienttest.New(t, "grafana", baseURL, fields).(*provider)
}

// fields configures keys on the Viewer account and the root on the Admin one.
func fields(srv *grafanatest.Server) map[string]string {
	return map[string]string{
		"token":                   srv.RootToken(),
		"service_account_id":      fmt.Sprint(grafanatest.KeyAccountID),
		"root_service_account_id": fmt.Sprint(grafanatest.RootAccountID),
		"token_id":                srv.RootTokenID(),
	}
}

func last(srv *grafanatest.Server) grafanatest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, "grafana")
	if !typ.BaseURLRequired {
		t.Fatal("grafana must require base_url")
	}
	if c := typ.Capabilities; !c.Expiry || !c.ListByName || !c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	for _, f := range typ.Fields {
		if (f.Name == "token") != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
		if f.Description == "" {
			t.Fatalf("%s has no description", f.Name)
		}
	}
}

func TestValidate(t *testing.T) {
	good := map[string]string{"token": "glsa_x", "service_account_id": "2", "root_service_account_id": "", "token_id": ""}
	clienttest.AssertValidate(t, "grafana", good, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"ok all ids", map[string]string{"root_service_account_id": "1", "token_id": "9"}, ""},
		{"account missing", map[string]string{"service_account_id": ""}, "service_account_id"},
		{"account not a number", map[string]string{"service_account_id": "sa-2"}, "service_account_id"},
		{"account zero", map[string]string{"service_account_id": "0"}, "service_account_id"},
		{"root account not a number", map[string]string{"root_service_account_id": "admin"}, "root_service_account_id"},
		{"token id negative", map[string]string{"token_id": "-1"}, "token_id"},
		{"token empty", map[string]string{"token": ""}, "token"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	tests := []struct {
		name    string
		expires time.Duration
		wantTTL int64
	}{
		{"with expiry", 90 * time.Minute, 5400},
		{"without expiry", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := grafanatest.NewServer()
			defer srv.Close()
			p := newClient(t, srv.URL, fields(srv))
			now := time.Now()
			p.now = func() time.Time { return now }
			ctx := context.Background()
			req := clients.KeyRequest{Name: "vault-app-1"}
			if tt.expires > 0 {
				req.ExpiresAt = now.Add(tt.expires)
			}

			key, err := p.CreateKey(ctx, req)
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if key.ID == "" || !strings.HasPrefix(key.Secret, "glsa_") || key.Name != "vault-app-1" ||
				key.Extra["service_account_id"] != "2" || !key.ExpiresAt.Equal(req.ExpiresAt) {
				t.Fatalf("key = %+v", key)
			}
			c := last(srv)
			if c.Method != http.MethodPost || c.Path != "/api/serviceaccounts/2/tokens" || c.Auth != "root" ||
				c.Header["Content-Type"] != "application/json" || c.Status != http.StatusOK {
				t.Fatalf("create request = %+v", c)
			}
			if c.Body["name"] != "vault-app-1" {
				t.Fatalf("create body = %v", c.Body)
			}
			ttl, has := c.Body["secondsToLive"]
			if tt.wantTTL == 0 && has {
				t.Fatalf("secondsToLive sent without expiry: %v", ttl)
			}
			if tt.wantTTL != 0 && fmt.Sprint(ttl) != fmt.Sprint(tt.wantTTL) {
				t.Fatalf("secondsToLive = %v, want %d", ttl, tt.wantTTL)
			}
			held, _ := srv.TokenByID(key.ID)
			if held.AccountID != grafanatest.KeyAccountID || (tt.wantTTL != 0) == held.Expires.IsZero() {
				t.Fatalf("server holds %+v", held)
			}

			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			if v := last(srv); v.Method != http.MethodGet || v.Path != "/api/org" || v.Auth != "token:"+key.ID {
				t.Fatalf("verify request = %+v", v)
			}

			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			if r := last(srv); r.Method != http.MethodDelete || r.Path != "/api/serviceaccounts/2/tokens/"+key.ID || r.Status != 200 {
				t.Fatalf("revoke request = %+v", r)
			}
			err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.RootToken())
			if !strings.Contains(err.Error(), "401") {
				t.Fatalf("VerifyKey after revoke = %v", err)
			}
			if r := last(srv); r.Status != http.StatusNotFound {
				t.Fatalf("second revoke got %d, want the server's 404", r.Status)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		name  string
		req   clients.KeyRequest
		field string
		text  string
	}{
		{"scopes", clients.KeyRequest{Name: "x", Scopes: []string{"dashboards:read"}}, "scopes", "no scopes"},
		{"parameters", clients.KeyRequest{Name: "x", Parameters: map[string]string{"role": "Admin"}}, "parameters", `"role"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := grafanatest.NewServer()
			defer srv.Close()
			p := newClient(t, srv.URL, fields(srv))
			_, err := p.CreateKey(context.Background(), tt.req)
			clienttest.AssertFieldError(t, err, tt.field, tt.text)
			if len(srv.Requests()) != 0 {
				t.Fatal("a request was sent")
			}
		})
	}
	srv := grafanatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL, fields(srv))
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "x", ExpiresAt: time.Now().Add(-time.Minute)}); err == nil {
		t.Fatal("an expiry in the past was accepted")
	}
}

func TestDuplicateNameAndPermissions(t *testing.T) {
	srv := grafanatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL, fields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "dup"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.CreateKey(ctx, clients.KeyRequest{Name: "dup"})
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate create = %v", err)
	}
	clienttest.AssertNoSecret(t, err, srv.RootToken(), key.Secret)

	// An issued key (Viewer account) cannot act as root.
	f := fields(srv)
	f["token"] = key.Secret
	viewer := newClient(t, srv.URL, f)
	_, err = viewer.CreateKey(ctx, clients.KeyRequest{Name: "escalate"})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("create with a Viewer token = %v", err)
	}
	clienttest.AssertNoSecret(t, err, srv.RootToken(), key.Secret)
}

func TestFindKeys(t *testing.T) {
	srv := grafanatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL, fields(srv))
	ctx := context.Background()
	a, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-1", ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-10"}); err != nil {
		t.Fatal(err)
	}
	srv.AddToken(grafanatest.RootAccountID, "vault-wal-1") // another account: not ours to find
	keys, err := p.FindKeys(ctx, "vault-wal-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != a.ID || keys[0].Name != "vault-wal-1" || keys[0].ExpiresAt.IsZero() {
		t.Fatalf("FindKeys = %+v", keys)
	}
	if r := last(srv); r.Method != http.MethodGet || r.Path != "/api/serviceaccounts/2/tokens" || r.Auth != "root" {
		t.Fatalf("list request = %+v", r)
	}
	if err := p.RevokeKey(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if keys, err := p.FindKeys(ctx, "vault-wal-1"); err != nil || len(keys) != 0 {
		t.Fatalf("FindKeys after revoke = %v, %v", keys, err)
	}
}

func TestRootRotation(t *testing.T) {
	tests := []struct {
		name   string
		fields func(*grafanatest.Server) map[string]string
	}{
		{"separate root account", fields},
		{"root on the key account", func(srv *grafanatest.Server) map[string]string {
			return map[string]string{"token": srv.RootToken(), "service_account_id": "1", "token_id": srv.RootTokenID()}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := grafanatest.NewServer()
			defer srv.Close()
			ctx := context.Background()
			f := tt.fields(srv)
			old := newClient(t, srv.URL, f)
			oldSecret, oldID := srv.RootToken(), srv.RootTokenID()
			if id, err := old.RootID(ctx); err != nil || id != oldID {
				t.Fatalf("RootID = %q, %v", id, err)
			}

			root, err := old.CreateRoot(ctx, "vault-root-2")
			if err != nil {
				t.Fatalf("CreateRoot: %v", err)
			}
			newSecret := root.Fields["token"]
			if root.ID == "" || root.ID == oldID || newSecret == "" || root.Fields["token_id"] != root.ID {
				t.Fatalf("root = id %q fields %v", root.ID, slices.Sorted(maps.Keys(root.Fields)))
			}
			if c := last(srv); c.Method != http.MethodPost || c.Path != "/api/serviceaccounts/1/tokens" ||
				c.Body["name"] != "vault-root-2" || c.Body["secondsToLive"] != nil {
				t.Fatalf("create_root request = %+v", c)
			}
			// Create-then-delete: both work until the old one is revoked.
			if !srv.IsLive(oldSecret) || !srv.IsLive(newSecret) {
				t.Fatal("both roots should be live before the revoke")
			}
			if err := old.VerifyRoot(ctx, root); err != nil {
				t.Fatalf("VerifyRoot: %v", err)
			}
			if v := last(srv); v.Auth != "token:"+root.ID || v.Path != "/api/serviceaccounts/1/tokens" {
				t.Fatalf("verify_root request = %+v", v)
			}

			f["token"], f["token_id"] = newSecret, root.ID
			cur := newClient(t, srv.URL, f)
			if err := cur.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot: %v", err)
			}
			if r := last(srv); r.Method != http.MethodDelete || r.Path != "/api/serviceaccounts/1/tokens/"+oldID || r.Auth != "token:"+root.ID {
				t.Fatalf("revoke_root request = %+v", r)
			}
			if srv.IsLive(oldSecret) || !srv.IsLive(newSecret) {
				t.Fatal("after RevokeRoot only the new root may work")
			}
			err = cur.VerifyRoot(ctx, clients.Root{ID: oldID, Fields: map[string]string{"token": oldSecret}})
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("old root verified: %v", err)
			}
			clienttest.AssertNoSecret(t, err, oldSecret, newSecret)
			if err := cur.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot again: %v", err)
			}
			if _, err := cur.CreateKey(ctx, clients.KeyRequest{Name: "after"}); err != nil {
				t.Fatalf("CreateKey with the new root: %v", err)
			}
		})
	}
}

func TestRootRotationNeedsTokenID(t *testing.T) {
	srv := grafanatest.NewServer()
	defer srv.Close()
	f := fields(srv)
	f["token_id"] = ""
	p := newClient(t, srv.URL, f)
	if id, _ := p.RootID(context.Background()); id != "" {
		t.Fatalf("RootID = %q", id)
	}
	_, err := p.CreateRoot(context.Background(), "r")
	if err == nil || !strings.Contains(err.Error(), "token_id") {
		t.Fatalf("CreateRoot without token_id = %v", err)
	}
	if len(srv.Requests()) != 0 || len(srv.LiveKeys()) != 1 {
		t.Fatal("CreateRoot without token_id must not touch Grafana")
	}
	if err := p.RevokeRoot(context.Background(), ""); err == nil {
		t.Fatal("RevokeRoot with no id succeeded")
	}
}

func TestVerifyRootRejectsWrongAccount(t *testing.T) {
	srv := grafanatest.NewServer(grafanatest.WithServiceAccount(3, "other-admin", "Admin"))
	defer srv.Close()
	p := newClient(t, srv.URL, fields(srv))
	other := srv.AddToken(3, "elsewhere")
	err := p.VerifyRoot(context.Background(), clients.Root{ID: fmt.Sprint(other.ID), Fields: map[string]string{"token": other.Secret}})
	if err == nil || !strings.Contains(err.Error(), "not on service account 1") {
		t.Fatalf("VerifyRoot of a token on another account = %v", err)
	}
}

func TestRateLimitRetried(t *testing.T) {
	srv := grafanatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL, fields(srv))
	srv.FailNext(3, http.StatusTooManyRequests)
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "after-429"}); err != nil {
		t.Fatalf("CreateKey after 429s: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 4 || reqs[0].Status != 429 || reqs[3].Status != 200 {
		t.Fatalf("requests = %+v", reqs)
	}
	if n := len(srv.LiveKeysOn(grafanatest.KeyAccountID)); n != 1 {
		t.Fatalf("%d keys live, want 1", n)
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := grafanatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL, fields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusInternalServerError)
	calls := map[string]func() error{
		"create":      func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2"}); return err },
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"list":        func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"revoke_root": func() error { return p.RevokeRoot(ctx, "99") },
	}
	clienttest.AssertFailures(t, calls, http.StatusInternalServerError, srv.RootToken(), key.Secret)
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"message":"Invalid API key","messageId":"api-key.invalid"}`: "Invalid API key",
		`{"message":"failed","error":"boom"}`:                         "failed: boom",
		"upstream timeout\nmore":                                      "upstream timeout",
		"<html>nope</html>":                                           "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
