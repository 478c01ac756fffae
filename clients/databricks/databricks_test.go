package databricks

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/databricks/databrickstest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

func patFields(srv *databrickstest.Server) map[string]string {
	v, id := srv.RootPAT()
	return map[string]string{fieldToken: v, fieldTokenID: id}
}

func spFields(srv *databrickstest.Server, account bool) map[string]string {
	v, id := srv.RootSecret()
	f := map[string]string{fieldClientID: databrickstest.RootAppID, fieldClientSecret: v, fieldClientSecretID: id,
		fieldRootSPID: databrickstest.RootSPID}
	if account {
		f[fieldAccountID], f[fieldAccountURL] = databrickstest.AccountID, srv.URL
	}
	return f
}

func newClient(t *testing.T, srv *databrickstest.Server, fields map[string]string) *provider {
	t.Helper()
	return clienttest.New(t, TypeName, srv.URL, fields).(*provider)
}

func last(srv *databrickstest.Server) databrickstest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

var secretParams = map[string]string{"kind": "oauth_secret", "service_principal_id": databrickstest.AppSPID, "application_id": databrickstest.AppSPAppID}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, TypeName)
	if !typ.BaseURLRequired || !typ.Capabilities.Expiry || !typ.Capabilities.RootRotation || typ.Capabilities.NativeRoll {
		t.Fatalf("type = %+v", typ)
	}
	for _, f := range typ.Fields {
		if (f.Name == fieldToken || f.Name == fieldClientSecret) != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
	}
}

func TestValidate(t *testing.T) {
	base := map[string]string{fieldToken: "dapi1", fieldAccountURL: "https://accounts.cloud.databricks.com", fieldRootLifetime: "7776000"}
	clienttest.AssertValidate(t, TypeName, base, []clienttest.FieldsCase{
		{"pat", nil, ""},
		{"sp", map[string]string{fieldToken: "", fieldClientID: "app", fieldClientSecret: "dose1", fieldAccountID: "acct-1"}, ""},
		{"both", map[string]string{fieldClientID: "app", fieldClientSecret: "dose1"}, fieldToken},
		{"neither", map[string]string{fieldToken: ""}, fieldToken},
		{"client id without secret", map[string]string{fieldToken: "", fieldClientID: "app"}, fieldClientSecret},
		{"pat at the account", map[string]string{fieldAccountID: "acct-1"}, fieldAccountID},
		{"root sp id not numeric", map[string]string{fieldRootSPID: "app-id"}, fieldRootSPID},
		{"root lifetime too short", map[string]string{fieldRootLifetime: "60"}, fieldRootLifetime},
		{"token id with a slash", map[string]string{fieldTokenID: "a/b"}, fieldTokenID},
	})
}

func TestPATLifecycle(t *testing.T) {
	srv := databrickstest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, patFields(srv))
	now := time.Now()
	p.now = func() time.Time { return now }
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-ci-1", ExpiresAt: now.Add(10 * time.Minute), Scopes: []string{"sql"},
		Parameters: map[string]string{"comment": "ci"}})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if !strings.HasPrefix(key.ID, "pat:") || !strings.HasPrefix(key.Secret, "dapi") || key.Extra["kind"] != "pat" ||
		key.ExpiresAt.Sub(now) < 10*time.Minute-time.Second || key.ExpiresAt.Sub(now) > 10*time.Minute+time.Second {
		t.Fatalf("key = %+v (expires in %v)", key, key.ExpiresAt.Sub(now))
	}
	c := last(srv)
	if c.Path != "/api/2.0/token/create" || c.Auth != "root" || c.Body["lifetime_seconds"] != float64(600) || c.Body["comment"] != "vault-ci-1 ci" {
		t.Fatalf("create request = %+v", c)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if v := last(srv); v.Path != "/api/2.0/preview/scim/v2/Me" || v.Auth != "pat:"+key.Extra["token_id"] {
		t.Fatalf("verify request = %+v", v)
	}
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if r := last(srv); r.Path != "/api/2.0/token/delete" || r.Body["token_id"] != key.Extra["token_id"] {
		t.Fatalf("revoke request = %+v", r)
	}
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive)
	if !strings.Contains(err.Error(), "401") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}
	if r := last(srv); r.Status != http.StatusNotFound {
		t.Fatalf("second revoke got %d", r.Status)
	}
}

// Service-principal OAuth secrets, at the workspace and at the account:
// create, verify through the OIDC token endpoint, delete; the quota of
// five is a clear error before any create.
func TestOAuthSecrets(t *testing.T) {
	for _, account := range []bool{false, true} {
		name := "workspace"
		if account {
			name = "account"
		}
		t.Run(name, func(t *testing.T) {
			srv := databrickstest.NewServer()
			defer srv.Close()
			p := newClient(t, srv, spFields(srv, account))
			ctx := context.Background()
			key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-etl", Parameters: clienttest.Merge(secretParams, map[string]string{"lifetime_seconds": "86400"})})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			prefix := "/api/2.0/accounts/servicePrincipals/"
			if account {
				prefix = "/api/2.0/accounts/" + databrickstest.AccountID + "/servicePrincipals/"
			}
			c := last(srv)
			if c.Method != http.MethodPost || c.Path != prefix+databrickstest.AppSPID+"/credentials/secrets" || c.Auth != "root" || c.Body["lifetime"] != "86400s" {
				t.Fatalf("create request = %+v", c)
			}
			if !strings.HasPrefix(key.ID, "sp:"+databrickstest.AppSPID+":") || key.Extra["client_id"] != databrickstest.AppSPAppID ||
				time.Until(key.ExpiresAt) < 23*time.Hour {
				t.Fatalf("key = %+v", key)
			}
			srv.ResetRequests()
			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			reqs := srv.Requests()
			if len(reqs) != 2 || reqs[0].Path != "/oidc/v1/token" || reqs[1].Path != "/api/2.0/preview/scim/v2/Me" ||
				reqs[1].Auth != "sp:"+databrickstest.AppSPID+":"+key.Extra["secret_id"] {
				t.Fatalf("verify requests = %+v", reqs)
			}
			for i := 0; i < 4; i++ {
				if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "more", Parameters: secretParams}); err != nil {
					t.Fatalf("secret %d: %v", i+2, err)
				}
			}
			srv.ResetRequests()
			_, err = p.CreateKey(ctx, clients.KeyRequest{Name: "sixth", Parameters: secretParams})
			if err == nil || !strings.Contains(err.Error(), "already has 5 OAuth secrets, Databricks' quota") {
				t.Fatalf("sixth secret = %v", err)
			}
			for _, r := range srv.Requests() {
				if r.Method == http.MethodPost && strings.Contains(r.Path, "/credentials/secrets") {
					t.Fatal("a sixth secret was asked for")
				}
			}
			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			if r := last(srv); r.Method != http.MethodDelete || r.Path != prefix+databrickstest.AppSPID+"/credentials/secrets/"+key.Extra["secret_id"] {
				t.Fatalf("revoke request = %+v", r)
			}
			err = clienttest.AssertRevoked(t, p, key, srv.IsLive)
			if !strings.Contains(err.Error(), "invalid_client") {
				t.Fatalf("VerifyKey after revoke = %v", err)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	srv := databrickstest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, patFields(srv))
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"kind", nil, map[string]string{"kind": "password"}, "parameters", "kind must be pat or oauth_secret"},
		{"secret without sp", nil, map[string]string{"kind": "oauth_secret"}, "parameters", "needs service_principal_id"},
		{"sp id is an application id", nil, map[string]string{"kind": "oauth_secret", "service_principal_id": "2222-app", "application_id": "x"}, "parameters", "numeric"},
		{"sp for a pat", nil, map[string]string{"service_principal_id": "1"}, "parameters", "oauth_secret only"},
		{"lifetime", nil, map[string]string{"lifetime_seconds": "ten"}, "parameters", "lifetime_seconds"},
		{"scopes on a secret", []string{"sql"}, secretParams, "scopes", "kind=pat only"},
		{"unknown", nil, map[string]string{"team": "a"}, "parameters", `unknown parameter "team"`},
	})
}

// A PAT root mints its successor, which then revokes the old one.
func TestPATRootRotation(t *testing.T) {
	srv := databrickstest.NewServer()
	defer srv.Close()
	f := patFields(srv)
	old := newClient(t, srv, f)
	ctx := context.Background()
	oldValue, oldID := srv.RootPAT()
	root, err := old.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	if c := last(srv); c.Path != "/api/2.0/token/create" || c.Auth != "root" || c.Body["lifetime_seconds"] != float64(defaultRootLifetime) || c.Body["comment"] != "vault-root-2" {
		t.Fatalf("create_root request = %+v", c)
	}
	if err := old.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot: %v", err)
	}
	cur := newClient(t, srv, clienttest.Merge(f, root.Fields))
	if err := cur.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	if r := last(srv); r.Auth != "pat:"+root.ID || r.Body["token_id"] != oldID {
		t.Fatalf("revoke_root request = %+v", r)
	}
	if srv.IsLive(oldValue) || !srv.IsLive(root.Fields[fieldToken]) {
		t.Fatal("after RevokeRoot the old PAT must be dead and the new one live")
	}
	// Without token_id the old PAT could not be revoked: refuse first.
	f2 := clienttest.Merge(f, root.Fields, map[string]string{fieldTokenID: ""})
	if _, err := newClient(t, srv, f2).CreateRoot(ctx, "x"); err == nil || !strings.Contains(err.Error(), "token_id") {
		t.Fatalf("CreateRoot without token_id = %v", err)
	}
}

// A service principal's secret rotates itself: create a second secret,
// switch, delete the old one (at the account too).
func TestSPRootRotation(t *testing.T) {
	for _, account := range []bool{false, true} {
		srv := databrickstest.NewServer()
		f := spFields(srv, account)
		old := newClient(t, srv, f)
		ctx := context.Background()
		oldValue, oldID := srv.RootSecret()
		root, err := old.CreateRoot(ctx, "vault-root-2")
		if err != nil {
			t.Fatalf("CreateRoot: %v", err)
		}
		if len(srv.Secrets(databrickstest.RootSPID)) != 2 {
			t.Fatal("want two root secrets during the switch")
		}
		if err := old.VerifyRoot(ctx, root); err != nil {
			t.Fatalf("VerifyRoot: %v", err)
		}
		cur := newClient(t, srv, clienttest.Merge(f, root.Fields))
		if err := cur.RevokeRoot(ctx, oldID); err != nil {
			t.Fatalf("RevokeRoot: %v", err)
		}
		if r := last(srv); r.Method != http.MethodDelete || !strings.HasSuffix(r.Path, "/"+databrickstest.RootSPID+"/credentials/secrets/"+oldID) ||
			r.Auth != "sp:"+databrickstest.RootSPID+":"+root.ID {
			t.Fatalf("revoke_root request = %+v", r)
		}
		if srv.IsLive(oldValue) || !srv.IsLive(root.Fields[fieldClientSecret]) {
			t.Fatal("after RevokeRoot the old secret must be dead and the new one live")
		}
		srv.Close()
	}
}

func TestTokenCached(t *testing.T) {
	srv := databrickstest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, spFields(srv, false))
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := clienttest.Count(srv.Requests(), func(r databrickstest.Recorded) bool { return r.Path == "/oidc/v1/token" }); n != 1 {
		t.Fatalf("%d token requests for three creates", n)
	}
}

func TestRateLimitRetried(t *testing.T) {
	srv := databrickstest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, patFields(srv))
	create := func() error { _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"}); return err }
	clienttest.AssertCreateRetriedAfter429(t, srv.FailNext, create, srv.Requests, func(r databrickstest.Recorded) int { return r.Status })
}

func TestServerErrorWithoutOrphan(t *testing.T) {
	srv := databrickstest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, patFields(srv))
	create := func() error { _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"}); return err }
	if err := clienttest.AssertCreateNotRetriedAfter500(t, srv.FailNext, create, srv.Requests); !strings.Contains(err.Error(), "INTERNAL_ERROR") {
		t.Fatalf("error %v lacks Databricks' code", err)
	}
	if len(srv.LivePATs()) != 1 {
		t.Fatalf("%d PATs, want only the root", len(srv.LivePATs()))
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := databrickstest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, patFields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	rootValue, _ := srv.RootPAT()
	srv.FailNext(1000, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create":      func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2"}); return err },
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"verify_root": func() error { return p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{fieldToken: rootValue}}) },
		"revoke_root": func() error { return p.RevokeRoot(ctx, "old") },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, rootValue, key.Secret)
}

func TestAuthFailure(t *testing.T) {
	srv := databrickstest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, map[string]string{fieldToken: "dapiwrong0000"})
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "UNAUTHENTICATED") {
		t.Fatalf("CreateKey with a bad token = %v", err)
	}
	clienttest.AssertNoSecret(t, err, "dapiwrong0000")
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Token dapi0123456789 does not exist"}`: "RESOURCE_DOES_NOT_EXIST: Token [redacted] does not exist",
		`{"error":"invalid_client","error_description":"Client authentication failed"}`:            "invalid_client: Client authentication failed",
		`{"detail":"User not found","status":"404","scimType":"x"}`:                                "User not found",
		"<html/>": "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%s) = %q, want %q", in, got, want)
		}
	}
}

// RootID makes an authenticated call, so a wrong root is refused when the
// provider is written.
func TestRootIDChecksTheRoot(t *testing.T) {
	srv := databrickstest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	_, patID := srv.RootPAT()
	_, secretID := srv.RootSecret()
	for name, tc := range map[string]struct {
		fields map[string]string
		id     string
	}{
		"pat":       {patFields(srv), patID},
		"workspace": {spFields(srv, false), secretID},
		"account":   {spFields(srv, true), secretID},
	} {
		if id, err := newClient(t, srv, tc.fields).RootID(ctx); err != nil || id != tc.id {
			t.Errorf("%s: RootID = %q, %v", name, id, err)
		}
	}
	for name, f := range map[string]map[string]string{
		"wrong pat":    {fieldToken: "dapiwrong0000"},
		"wrong secret": clienttest.Merge(spFields(srv, true), map[string]string{fieldClientSecret: "dosewrong0000"}),
	} {
		_, err := newClient(t, srv, f).RootID(ctx)
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s: RootID = %v", name, err)
		}
		clienttest.AssertNoSecret(t, err, "dapiwrong0000", "dosewrong0000")
	}
}
