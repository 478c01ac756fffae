package npm

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/npm/internal/totp"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/npm/npmtest"
)

func fields(srv *npmtest.Server) map[string]string {
	return map[string]string{"token": srv.SessionToken(), "password": srv.Password(), "otp_secret": srv.OTPSecret()}
}

func newClient(t *testing.T, srv *npmtest.Server, f map[string]string) *provider {
	t.Helper()
	return clienttest.New(t, "npm", srv.URL, f).(*provider)
}

func last(srv *npmtest.Server) npmtest.Recorded {
	r := srv.Requests()
	return r[len(r)-1]
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, "npm")
	if typ.DefaultBaseURL != "https://registry.npmjs.org" || typ.BaseURLRequired {
		t.Fatalf("base url = %q required=%v", typ.DefaultBaseURL, typ.BaseURLRequired)
	}
	if c := typ.Capabilities; !c.Expiry || c.ListByName || c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	for _, f := range typ.Fields {
		if !f.Sensitive {
			t.Fatalf("%s is not sensitive", f.Name)
		}
	}
}

func TestValidate(t *testing.T) {
	clienttest.AssertValidate(t, "npm", map[string]string{"token": "npm_x", "password": "p", "otp_secret": ""}, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"ok with otp", map[string]string{"otp_secret": "JBSW Y3DP EHPK 3PXP"}, ""},
		{"otp not base32", map[string]string{"otp_secret": "123456"}, "otp_secret"},
		{"token missing", map[string]string{"token": ""}, "token"},
		{"password missing", map[string]string{"password": ""}, "password"},
	})
}

func TestKeyLifecycle(t *testing.T) {
	for _, twoFactor := range []bool{false, true} {
		t.Run(fmt.Sprintf("2fa=%v", twoFactor), func(t *testing.T) {
			var opts []npmtest.Option
			if twoFactor {
				opts = append(opts, npmtest.WithTwoFactor())
			}
			srv := npmtest.NewServer(opts...)
			defer srv.Close()
			p := newClient(t, srv, fields(srv))
			ctx := context.Background()
			now := time.Now()
			p.now = func() time.Time { return now }

			key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-ci-1", Scopes: []string{"@acme"}, ExpiresAt: now.Add(30 * time.Hour),
				Parameters: map[string]string{"packages": "left-pad, @acme/ui", "orgs": "acme", "orgs_permission": "read-write", "cidr": "192.0.2.0/24"}})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if !strings.HasPrefix(key.Secret, "npm_") || key.Name != "vault-ci-1" || key.ExpiresAt.IsZero() {
				t.Fatalf("key = %+v", key)
			}
			c := last(srv)
			if c.Method != http.MethodPost || c.Path != "/-/npm/v1/tokens" || c.Auth != "root" || c.Body["name"] != "vault-ci-1" ||
				c.Body["password"] != srv.Password() || fmt.Sprint(c.Body["expires"]) != "2" ||
				c.Body["packages_and_scopes_permission"] != "read-only" || c.Body["orgs_permission"] != "read-write" {
				t.Fatalf("create request = %+v", c)
			}
			tok := srv.LiveTokens()[0]
			if !slices.Equal(tok.Packages, []string{"left-pad", "@acme/ui"}) || !slices.Equal(tok.Scopes, []string{"@acme"}) ||
				!slices.Equal(tok.Orgs, []string{"acme"}) || !slices.Equal(tok.CIDR, []string{"192.0.2.0/24"}) {
				t.Fatalf("token = %+v", tok)
			}
			if twoFactor {
				k, _ := totp.Key(srv.OTPSecret())
				if c.OTP != totp.Code(k, now) {
					t.Fatalf("create sent npm-otp %q, want the current code", c.OTP)
				}
			} else if c.OTP != "" {
				t.Fatal("npm-otp sent without otp_secret")
			}
			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			if v := last(srv); v.Method != http.MethodGet || v.Path != "/-/whoami" || v.Auth != "token:"+key.ID {
				t.Fatalf("verify request = %+v", v)
			}
			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			if r := last(srv); r.Method != http.MethodDelete || r.Path != "/-/npm/v1/tokens/token/"+key.ID || r.Auth != "root" || r.Status != 204 {
				t.Fatalf("revoke request = %+v", r)
			}
			err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.SessionToken(), srv.Password())
			if !strings.Contains(err.Error(), "401") {
				t.Fatalf("VerifyKey after revoke = %v", err)
			}
			if r := last(srv); r.Status != http.StatusNotFound {
				t.Fatalf("second revoke got %d, want the server's 404", r.Status)
			}
		})
	}
}

// An account with two-factor authentication and no otp_secret: the create
// fails with an error saying what the operator must do.
func TestOTPRequired(t *testing.T) {
	srv := npmtest.NewServer(npmtest.WithTwoFactor())
	defer srv.Close()
	f := fields(srv)
	f["otp_secret"] = ""
	p := newClient(t, srv, f)
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Scopes: []string{"@acme"}})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "set otp_secret") ||
		!strings.Contains(err.Error(), "OTP required") {
		t.Fatalf("CreateKey without a one-time password = %v", err)
	}
	clienttest.AssertNoSecret(t, err, srv.SessionToken(), srv.Password(), srv.OTPSecret())
	if len(srv.LiveTokens()) != 0 || len(srv.Requests()) != 1 {
		t.Fatal("a token was created, or the create was retried")
	}
	// A wrong secret says so too.
	f["otp_secret"] = "JBSWY3DPEHPK3PXPJBSWY3DP"
	p = newClient(t, srv, f)
	_, err = p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Scopes: []string{"@acme"}})
	if err == nil || !strings.Contains(err.Error(), "refused the one-time password") {
		t.Fatalf("CreateKey with a wrong otp_secret = %v", err)
	}
	clienttest.AssertNoSecret(t, err, "JBSWY3DPEHPK3PXPJBSWY3DP")
}

func TestDualKeyExpiresDays(t *testing.T) {
	srv := npmtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "dual", Scopes: []string{"@acme"},
		Parameters: map[string]string{"expires_days": "90", "packages_and_scopes_permission": "read-write"}}); err != nil {
		t.Fatal(err)
	}
	if c := last(srv); fmt.Sprint(c.Body["expires"]) != "90" || c.Body["packages_and_scopes_permission"] != "read-write" {
		t.Fatalf("create = %+v", c.Body)
	}
	// A lease's expiry wins over expires_days, and is capped at 365 days.
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "dyn", ExpiresAt: time.Now().Add(400 * 24 * time.Hour),
		Parameters: map[string]string{"expires_days": "90"}}); err != nil {
		t.Fatal(err)
	}
	if c := last(srv); fmt.Sprint(c.Body["expires"]) != "365" {
		t.Fatalf("expires = %v, want 365", c.Body["expires"])
	}
}

func TestBadRequests(t *testing.T) {
	srv := npmtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"scope without @", []string{"acme"}, nil, "scopes", "package scope"},
		{"bad package", nil, map[string]string{"packages": "Left Pad"}, "parameters", "Left Pad"},
		{"bad org", nil, map[string]string{"orgs": "@acme"}, "parameters", "@acme"},
		{"bad permission", nil, map[string]string{"orgs_permission": "admin"}, "parameters", "orgs_permission"},
		{"bad cidr", nil, map[string]string{"cidr": "10.0.0.1"}, "parameters", "cidr"},
		{"bad days", nil, map[string]string{"expires_days": "400"}, "parameters", "expires_days"},
		{"unknown", nil, map[string]string{"readonly": "true"}, "parameters", `"readonly"`},
	})
}

func TestRootRotationUnsupported(t *testing.T) {
	srv := npmtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	if p.Capabilities().RootRotation {
		t.Fatal("npm claims root rotation")
	}
	if _, err := p.CreateRoot(context.Background(), "r"); err != clients.ErrNotSupported {
		t.Fatalf("CreateRoot = %v", err)
	}
	if id, err := p.RootID(context.Background()); id != "" || err != nil {
		t.Fatalf("RootID = %q, %v", id, err)
	}
	if r := last(srv); r.Path != "/-/whoami" || r.Auth != "root" {
		t.Fatalf("RootID request = %+v", r)
	}
	f := fields(srv)
	f["token"] = "npm_wrong0123456789"
	if _, err := newClient(t, srv, f).RootID(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("RootID with a wrong token = %v", err)
	}
}

func TestWrongPassword(t *testing.T) {
	srv := npmtest.NewServer()
	defer srv.Close()
	f := fields(srv)
	f["password"] = "wrong-password-0123"
	_, err := newClient(t, srv, f).CreateKey(context.Background(), clients.KeyRequest{Name: "k"})
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "Incorrect password") {
		t.Fatalf("CreateKey with a wrong password = %v", err)
	}
	clienttest.AssertNoSecret(t, err, "wrong-password-0123", srv.SessionToken())
}

// A 429 is waited out and the create sent again; a 500 is not retried (the
// token may exist) and leaves nothing.
func TestCreateThrottledOrFailing(t *testing.T) {
	srv := npmtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	create := func() error { _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k"}); return err }
	clienttest.AssertCreateNotRetriedAfter500(t, srv.FailNext, create, srv.Requests)
	if n := len(srv.LiveTokens()); n != 0 {
		t.Fatalf("%d tokens after a create answered 500", n)
	}
	clienttest.AssertCreateRetriedAfter429(t, srv.FailNext, create, srv.Requests, func(r npmtest.Recorded) int { return r.Status })
	if n := len(srv.LiveTokens()); n != 1 {
		t.Fatalf("%d tokens after a create answered 429 twice, want 1", n)
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := npmtest.NewServer(npmtest.WithTwoFactor())
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(100, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create":  func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2"}); return err },
		"verify":  func() error { return p.VerifyKey(ctx, key) },
		"revoke":  func() error { return p.RevokeKey(ctx, key.ID) },
		"root_id": func() error { _, err := p.RootID(ctx); return err },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, srv.SessionToken(), srv.Password(), srv.OTPSecret(), key.Secret)
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"error":"OTP required for authentication"}`: "OTP required for authentication",
		`{"message":"token npm_abc123 revoked"}`:      "token npm_[redacted] revoked",
		`{"error":{"code":1}}`:                        "",
		"Unauthorized":                                "Unauthorized",
		"<html/>":                                     "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%s) = %q, want %q", in, got, want)
		}
	}
}
