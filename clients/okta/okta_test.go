package okta

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/okta/oktatest"
)

func sswsFields(srv *oktatest.Server) map[string]string {
	return map[string]string{fieldAppID: oktatest.AppID, fieldAPIToken: srv.APIToken()}
}

func jwtFields(srv *oktatest.Server) map[string]string {
	pemKey, kid := srv.ServiceKey()
	return map[string]string{fieldAppID: oktatest.AppID, fieldClientID: oktatest.ServiceClientID,
		fieldPrivateKey: pemKey, fieldPrivateKeyID: kid}
}

func newClient(t *testing.T, srv *oktatest.Server, fields map[string]string) *provider {
	t.Helper()
	return clienttest.New(t, TypeName, srv.URL, fields).(*provider)
}

func last(srv *oktatest.Server) oktatest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, TypeName)
	if !typ.BaseURLRequired || typ.Capabilities.MaxLiveKeys != 2 || typ.Capabilities.ListByName || typ.Capabilities.Expiry {
		t.Fatalf("type = %+v", typ)
	}
	for _, f := range typ.Fields {
		if (f.Name == fieldAPIToken || f.Name == fieldPrivateKey) != f.Sensitive {
			t.Fatalf("%s: sensitive = %v", f.Name, f.Sensitive)
		}
	}
}

func TestValidate(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	pemKey, _ := srv.ServiceKey()
	base := map[string]string{fieldAppID: "0oa1", fieldAPIToken: "00tok", fieldAuthServer: "default"}
	clienttest.AssertValidate(t, TypeName, base, []clienttest.FieldsCase{
		{"ssws", nil, ""},
		{"service app", map[string]string{fieldAPIToken: "", fieldClientID: "0oasvc", fieldPrivateKey: pemKey, fieldPrivateKeyID: "k1"}, ""},
		{"both forms", map[string]string{fieldClientID: "0oasvc", fieldPrivateKey: pemKey, fieldPrivateKeyID: "k1"}, fieldAPIToken},
		{"neither form", map[string]string{fieldAPIToken: ""}, fieldAPIToken},
		{"service app without kid", map[string]string{fieldAPIToken: "", fieldClientID: "0oasvc", fieldPrivateKey: pemKey}, fieldPrivateKeyID},
		{"key not PEM", map[string]string{fieldAPIToken: "", fieldClientID: "0oasvc", fieldPrivateKey: "nope", fieldPrivateKeyID: "k1"}, fieldPrivateKey},
		{"app id with a slash", map[string]string{fieldAppID: "0oa/../x"}, fieldAppID},
		{"app id missing", map[string]string{fieldAppID: ""}, fieldAppID},
		{"auth server with a slash", map[string]string{fieldAuthServer: "a/b"}, fieldAuthServer},
		{"verify scope on two lines", map[string]string{fieldVerifyScope: "a\nb"}, fieldVerifyScope},
	})
}

// The key lifecycle and dual rotation as the backend drives them: create
// the second ACTIVE secret, verify it with a client-credentials token
// request, and at retirement deactivate then delete the old one. A third
// secret is never attempted.
func TestDualRotation(t *testing.T) {
	for _, form := range []string{"ssws", "service app"} {
		t.Run(form, func(t *testing.T) {
			srv := oktatest.NewServer()
			defer srv.Close()
			f := sswsFields(srv)
			if form != "ssws" {
				f = jwtFields(srv)
			}
			f[fieldVerifyScope] = "vault.verify"
			p := newClient(t, srv, f)
			ctx := context.Background()

			k1, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-dual-1"})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if !strings.HasPrefix(k1.ID, "ocs") || k1.Secret == "" || k1.Extra["client_id"] != oktatest.AppID || !k1.ExpiresAt.IsZero() {
				t.Fatalf("key = %+v", k1)
			}
			c := last(srv)
			if c.Method != http.MethodPost || c.Path != "/api/v1/apps/"+oktatest.AppID+"/credentials/secrets" || c.Auth != "root" ||
				c.Status != http.StatusCreated || c.Body["status"] != "ACTIVE" {
				t.Fatalf("create request = %+v", c)
			}
			if err := p.VerifyKey(ctx, k1); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			v := last(srv)
			if v.Method != http.MethodPost || v.Path != "/oauth2/default/v1/token" || v.Auth != "secret:"+k1.ID ||
				v.Form["grant_type"] != "client_credentials" || v.Form["scope"] != "vault.verify" {
				t.Fatalf("verify request = %+v", v)
			}

			k2, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-dual-2"})
			if err != nil {
				t.Fatalf("second CreateKey: %v", err)
			}
			if err := p.VerifyKey(ctx, k2); err != nil {
				t.Fatalf("VerifyKey of the second: %v", err)
			}
			if !srv.IsLive(k1.Secret) || !srv.IsLive(k2.Secret) {
				t.Fatal("both secrets must work during the overlap")
			}
			// A third is refused before it is asked for.
			srv.ResetRequests()
			_, err = p.CreateKey(ctx, clients.KeyRequest{Name: "vault-dual-3"})
			if err == nil || !strings.Contains(err.Error(), "already has 2 client secrets") || !strings.Contains(err.Error(), k1.ID) {
				t.Fatalf("third CreateKey = %v", err)
			}
			clienttest.AssertNoSecret(t, err, k1.Secret, k2.Secret, srv.APIToken())
			for _, r := range srv.Requests() {
				if r.Method == http.MethodPost {
					t.Fatalf("a third secret was asked for: %+v", r)
				}
			}

			srv.ResetRequests()
			if err := p.RevokeKey(ctx, k1.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			reqs := srv.Requests()
			path := "/api/v1/apps/" + oktatest.AppID + "/credentials/secrets/" + k1.ID
			if len(reqs) != 2 || reqs[0].Method != http.MethodPost || reqs[0].Path != path+"/lifecycle/deactivate" ||
				reqs[1].Method != http.MethodDelete || reqs[1].Path != path || reqs[1].Status != http.StatusNoContent {
				t.Fatalf("revoke requests = %+v", reqs)
			}
			err = clienttest.AssertRevoked(t, p, k1, srv.IsLive, srv.APIToken())
			if !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "invalid_client") {
				t.Fatalf("VerifyKey after revoke = %v", err)
			}
			if srv.MaxSecrets() != 2 || len(srv.Secrets()) != 1 {
				t.Fatalf("max %d secrets, now %d", srv.MaxSecrets(), len(srv.Secrets()))
			}
		})
	}
}

// With a secret made outside Vault already on the app, the role's first
// key fits, the next rotation says which secret to remove.
func TestForeignSecretBlocksClearly(t *testing.T) {
	srv := oktatest.NewServer(oktatest.WithSecret())
	defer srv.Close()
	p := newClient(t, srv, sswsFields(srv))
	ctx := context.Background()
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	foreign := srv.Secrets()[0]
	_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "b"})
	if err == nil || !strings.Contains(err.Error(), foreign.ID+" (active)") || !strings.Contains(err.Error(), "deactivate and delete") {
		t.Fatalf("CreateKey = %v", err)
	}
	clienttest.AssertNoSecret(t, err, foreign.Value)
}

// Revoking the only active secret is Okta's 400, named, not a silent pass.
func TestRevokeOnlySecret(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, sswsFields(srv))
	k, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	err = p.RevokeKey(context.Background(), k.ID)
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || !strings.Contains(err.Error(), "only active secret") {
		t.Fatalf("RevokeKey of the only secret = %v", err)
	}
	if !srv.IsLive(k.Secret) {
		t.Fatal("the secret is gone")
	}
}

func TestBadRequests(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, sswsFields(srv))
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"scopes", []string{"okta.users.read"}, nil, "scopes", "no scopes"},
		{"parameters", nil, map[string]string{"status": "INACTIVE"}, "parameters", `"status"`},
	})
}

// SSWS: the token is made in the Admin Console only; nothing to rotate.
func TestSSWSRootNotRotatable(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, sswsFields(srv))
	if p.Capabilities().RootRotation {
		t.Fatal("an SSWS root claims it can rotate")
	}
	if _, err := p.CreateRoot(context.Background(), "vault-root-1"); err != clients.ErrNotSupported {
		t.Fatalf("CreateRoot = %v", err)
	}
	if len(srv.Requests()) != 0 {
		t.Fatal("a request was sent")
	}
}

// The service app's key rotates through its JWKS: add the new key, sign
// with it, deactivate and delete the old one.
func TestServiceAppRootRotation(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	f := jwtFields(srv)
	old := newClient(t, srv, f)
	ctx := context.Background()
	if !old.Capabilities().RootRotation {
		t.Fatal("a service-app root cannot rotate")
	}
	oldPEM, oldKid := srv.ServiceKey()
	if id, err := old.RootID(ctx); err != nil || id != oldKid {
		t.Fatalf("RootID = %q, %v", id, err)
	}
	root, err := old.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	c := last(srv)
	if c.Method != http.MethodPost || c.Path != "/api/v1/apps/"+oktatest.ServiceClientID+"/credentials/jwks" || c.Auth != "root" ||
		c.Body["kid"] != "vault-root-2" || c.Body["kty"] != "EC" || c.Body["use"] != "sig" || c.Body["alg"] != "ES256" || c.Body["d"] != nil {
		t.Fatalf("create_root request = %+v", c)
	}
	if root.ID != "vault-root-2" || root.Fields[fieldPrivateKeyID] != "vault-root-2" || !strings.Contains(root.Fields[fieldPrivateKey], "PRIVATE KEY") {
		t.Fatalf("root = %v", root.ID)
	}
	srv.ResetRequests()
	if err := old.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/oauth2/v1/token" || reqs[0].Auth != "assertion:vault-root-2" ||
		reqs[0].Form["scope"] != "okta.apps.read okta.apps.manage" || reqs[1].Auth != "jwk:vault-root-2" {
		t.Fatalf("verify_root requests = %+v", reqs)
	}
	if roots, err := old.FindRoots(ctx, "vault-root-2"); err != nil || len(roots) != 1 || roots[0].ID != "vault-root-2" {
		t.Fatalf("FindRoots = %v, %v", roots, err)
	}

	cur := newClient(t, srv, clienttest.Merge(f, root.Fields))
	srv.ResetRequests()
	if err := cur.RevokeRoot(ctx, oldKid); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	reqs = srv.Requests()
	var seq []string
	for _, r := range reqs {
		seq = append(seq, r.Method+" "+r.Path+" "+r.Auth)
	}
	got := strings.Join(seq, "\n")
	if !strings.Contains(got, "/lifecycle/deactivate jwk:vault-root-2") || !strings.Contains(got, "DELETE /api/v1/apps/"+oktatest.ServiceClientID+"/credentials/jwks/pks") {
		t.Fatalf("revoke_root requests:\n%s", got)
	}
	if srv.IsLive(oldPEM) || !srv.IsLive(root.Fields[fieldPrivateKey]) || len(srv.JWKS()) != 1 {
		t.Fatalf("after RevokeRoot: old live %v, %d keys", srv.IsLive(oldPEM), len(srv.JWKS()))
	}
	if err := cur.RevokeRoot(ctx, oldKid); err != nil {
		t.Fatalf("RevokeRoot again: %v", err)
	}
	if err := cur.RevokeRoot(ctx, "vault-root-2"); err == nil {
		t.Fatal("RevokeRoot of the key in use succeeded")
	}
	// The old key can no longer get a token.
	if err := old.VerifyRoot(ctx, clients.Root{Fields: map[string]string{fieldPrivateKey: oldPEM, fieldPrivateKeyID: oldKid}}); err == nil ||
		!strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("old key verified: %v", err)
	} else {
		clienttest.AssertNoSecret(t, err, oldPEM)
	}
	if _, err := cur.CreateKey(ctx, clients.KeyRequest{Name: "after"}); err != nil {
		t.Fatalf("CreateKey with the new root: %v", err)
	}
}

// The management access token is cached until shortly before it expires.
func TestAccessTokenCached(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, jwtFields(srv))
	now := time.Now()
	p.now = func() time.Time { return now }
	srv.SetNow(func() time.Time { return now })
	ctx := context.Background()
	tokens := func() int {
		return clienttest.Count(srv.Requests(), func(r oktatest.Recorded) bool { return r.Path == "/oauth2/v1/token" })
	}
	for i := 0; i < 3; i++ {
		if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"}); err != nil && i < 2 {
			t.Fatal(err)
		}
	}
	if n := tokens(); n != 1 {
		t.Fatalf("%d token requests for three calls, want 1", n)
	}
	now = now.Add(time.Hour - time.Minute) // within tokenSlack of expiry
	if err := p.RevokeKey(ctx, "ocsgone"); err != nil {
		t.Fatal(err)
	}
	if n := tokens(); n != 2 {
		t.Fatalf("%d token requests, want a new one near expiry", n)
	}
}

// A 429 with Okta's headers only (X-Rate-Limit-Reset, no Retry-After) is
// waited out, then the call succeeds.
func TestRateLimitRetried(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, sswsFields(srv))
	srv.FailNext(1, http.StatusTooManyRequests)
	start := time.Now()
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "after-429"}); err != nil {
		t.Fatalf("CreateKey after a 429: %v", err)
	}
	// clienttest.HTTP caps waits at 10ms; the wait asked for is honoured
	// up to that cap (see httpx's tests for the uncapped wait).
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Status != 429 || reqs[2].Status != 201 || time.Since(start) < 10*time.Millisecond {
		t.Fatalf("requests = %+v", reqs)
	}
}

// A 500 on create is not retried (the secret may exist: the backend's WAL
// settles it), so no second secret is made; a 503 (nothing done) is.
func TestServerErrorOnCreate(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, sswsFields(srv))
	ctx := context.Background()
	srv.FailNextCreate(http.StatusInternalServerError, false)
	_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("CreateKey = %v", err)
	}
	creates := clienttest.Count(srv.Requests(), func(r oktatest.Recorded) bool { return r.Method == http.MethodPost })
	if creates != 1 || len(srv.Secrets()) != 0 {
		t.Fatalf("%d creates, %d secrets after a 500", creates, len(srv.Secrets()))
	}
	srv.ResetRequests()
	srv.FailNextCreate(http.StatusServiceUnavailable, false)
	if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"}); err != nil {
		t.Fatalf("CreateKey after a 503: %v", err)
	}
	if len(srv.Secrets()) != 1 {
		t.Fatalf("%d secrets", len(srv.Secrets()))
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, jwtFields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	pemKey, kid := srv.ServiceKey()
	srv.FailNext(1000, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create":      func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2"}); return err },
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"verify_root": func() error {
			return p.VerifyRoot(ctx, clients.Root{Fields: map[string]string{fieldPrivateKey: pemKey, fieldPrivateKeyID: kid}})
		},
		"revoke_root": func() error { return p.RevokeRoot(ctx, "old") },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.APIToken(), key.Secret, pemKey)
}

func TestAuthFailure(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	f := sswsFields(srv)
	f[fieldAPIToken] = "00wrongtoken0000"
	p := newClient(t, srv, f)
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "Invalid token provided (E0000011)") {
		t.Fatalf("CreateKey with a bad token = %v", err)
	}
	clienttest.AssertNoSecret(t, err, "00wrongtoken0000")
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"errorCode":"E0000001","errorSummary":"Api validation failed: client_secret","errorCauses":[{"errorSummary":"client_secret: too many"}]}`: "Api validation failed: client_secret: client_secret: too many (E0000001)",
		`{"error":"invalid_client","error_description":"Client authentication failed."}`:                                                            "invalid_client: Client authentication failed.",
		"<html/>":     "",
		"bad gateway": "bad gateway",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%s) = %q, want %q", in, got, want)
		}
	}
}

// RootID lists the app's secrets with the root, so a wrong token, key or
// app_id is refused when the provider is written.
func TestRootIDChecksTheRoot(t *testing.T) {
	srv := oktatest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	_, kid := srv.ServiceKey()
	if id, err := newClient(t, srv, jwtFields(srv)).RootID(ctx); err != nil || id != kid {
		t.Fatalf("RootID = %q, %v", id, err)
	}
	if id, err := newClient(t, srv, sswsFields(srv)).RootID(ctx); err != nil || id != "" {
		t.Fatalf("RootID (SSWS) = %q, %v", id, err)
	}
	for name, f := range map[string]map[string]string{
		"wrong token":  clienttest.Merge(sswsFields(srv), map[string]string{fieldAPIToken: "00wrong0000"}),
		"wrong app_id": clienttest.Merge(sswsFields(srv), map[string]string{fieldAppID: "0oamissing"}),
		"unknown kid":  clienttest.Merge(jwtFields(srv), map[string]string{fieldPrivateKeyID: "nope"}),
	} {
		if _, err := newClient(t, srv, f).RootID(ctx); err == nil {
			t.Errorf("%s: RootID succeeded", name)
		}
	}
}
