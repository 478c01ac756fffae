// Package npmtest is an in-memory stand-in for the parts of the npm
// registry API the npm provider uses: granular access tokens
// (POST /-/npm/v1/tokens with the account's password, DELETE
// /-/npm/v1/tokens/token/{key}) and GET /-/whoami, with bearer auth, the
// npm-otp header for an account with two-factor authentication (a 401
// with WWW-Authenticate: OTP without it), {"error": …} errors and 429 with
// Retry-After.
package npmtest

import (
	"encoding/base32"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/npm/internal/totp"
)

// Username is the account's name.
const Username = "vault-bot"

// Recorded is one request as the server saw it. Auth is "root" (the
// account's session token), "token:<key>", "unknown" or "" (none); OTP is
// the npm-otp header.
type Recorded struct {
	Method string
	Path   string
	Auth   string
	OTP    string
	Body   map[string]any
	Status int
}

// Token is a granular access token.
type Token struct {
	Key         string
	Name        string
	Secret      string
	Packages    []string
	Scopes      []string
	Orgs        []string
	PackagePerm string
	OrgsPerm    string
	CIDR        []string
	Expires     time.Time // zero: npm's default applied by nobody here
	Deleted     bool
}

// Server is the fake npm registry.
type Server struct {
	*httptest.Server

	// Recorder has FailNext (failures to inject: 429s carry Retry-After: 1),
	// Requests and ResetRequests.
	fakeapi.Recorder[Recorded]

	mu       sync.Mutex
	session  string
	password string
	otpKey   []byte
	otp      string
	tokens   []*Token
	now      func() time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithTwoFactor turns on two-factor authentication with a TOTP secret
// (OTPSecret returns it).
func WithTwoFactor() Option {
	return func(s *Server) {
		s.otp = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(fakeapi.Hex(10)))
		s.otpKey, _ = totp.Key(s.otp)
	}
}

// NewServer starts a fake registry with account Username.
func NewServer(opts ...Option) *Server {
	s := &Server{session: "npm_" + fakeapi.Hex(18), password: "pw-" + fakeapi.Hex(8), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SessionToken is the account's session token; Password its password.
func (s *Server) SessionToken() string { return s.session }

// Password is the account's password.
func (s *Server) Password() string { return s.password }

// OTPSecret is the TOTP secret ("" without two-factor authentication).
func (s *Server) OTPSecret() string { return s.otp }

// LiveTokens returns the tokens neither deleted nor expired.
func (s *Server) LiveTokens() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Token
	for _, t := range s.tokens {
		if s.live(t) {
			out = append(out, *t)
		}
	}
	return out
}

// IsLive reports whether secret is the session token or a live token.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return secret != "" && (secret == s.session || s.bySecret(secret) != nil)
}

func (s *Server) live(t *Token) bool {
	return !t.Deleted && (t.Expires.IsZero() || s.now().Before(t.Expires))
}

func (s *Server) bySecret(secret string) *Token {
	for _, t := range s.tokens {
		if t.Secret == secret && s.live(t) {
			return t
		}
	}
	return nil
}

type response struct {
	status int
	body   any
}

func apiError(status int, message string) response {
	return response{status, map[string]any{"error": message}}
}

// otpOK accepts the code of the current step or the one before.
func (s *Server) otpOK(code string) bool {
	now := s.now()
	return code != "" && (code == totp.Code(s.otpKey, now) || code == totp.Code(s.otpKey, now.Add(-totp.Step)))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	secret, hasAuth := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	rec := Recorded{Method: r.Method, Path: r.URL.Path, OTP: r.Header.Get("npm-otp")}
	var caller *Token
	switch {
	case !hasAuth:
	case secret == s.session:
		rec.Auth = "root"
	case s.bySecret(secret) != nil:
		caller = s.bySecret(secret)
		rec.Auth = "token:" + caller.Key
	default:
		rec.Auth = "unknown"
	}
	body, validJSON := fakeapi.DecodeBody(r)
	rec.Body = body

	var resp response
	failure := s.Recorder.Fail(w)
	management := strings.HasPrefix(r.URL.Path, "/-/npm/v1/tokens")
	switch {
	case failure == http.StatusTooManyRequests:
		resp = apiError(failure, "Too Many Requests")
	case failure != 0:
		resp = apiError(failure, "Internal Server Error")
	case rec.Auth == "" || rec.Auth == "unknown":
		resp = apiError(http.StatusUnauthorized, "Unauthorized")
	case !validJSON:
		resp = apiError(http.StatusBadRequest, "Invalid JSON")
	case r.URL.Path == "/-/whoami" && r.Method == http.MethodGet:
		resp = response{http.StatusOK, map[string]any{"username": Username}}
	case !management:
		resp = apiError(http.StatusNotFound, "Not Found")
	case caller != nil:
		resp = apiError(http.StatusForbidden, "granular access tokens cannot manage tokens")
	case s.otpKey != nil && !s.otpOK(rec.OTP):
		w.Header().Set("WWW-Authenticate", "OTP")
		resp = apiError(http.StatusUnauthorized, "OTP required for authentication")
	default:
		resp = s.route(r, body)
	}
	rec.Status = resp.status
	s.Recorder.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func strs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (s *Server) route(r *http.Request, body map[string]any) response {
	switch {
	case r.URL.Path == "/-/npm/v1/tokens" && r.Method == http.MethodPost:
		if pw, _ := body["password"].(string); pw != s.password {
			return apiError(http.StatusUnauthorized, "Incorrect password")
		}
		name, _ := body["name"].(string)
		if strings.TrimSpace(name) == "" {
			return apiError(http.StatusBadRequest, "name is required")
		}
		t := &Token{Key: fakeapi.Hex(16), Name: name, Secret: "npm_" + fakeapi.Hex(18), Packages: strs(body["packages"]),
			Scopes: strs(body["scopes"]), Orgs: strs(body["orgs"]), CIDR: strs(body["cidr"])}
		t.PackagePerm, _ = body["packages_and_scopes_permission"].(string)
		t.OrgsPerm, _ = body["orgs_permission"].(string)
		for _, p := range []string{t.PackagePerm, t.OrgsPerm} {
			if p != "" && p != "no-access" && p != "read-only" && p != "read-write" {
				return apiError(http.StatusBadRequest, fmt.Sprintf("invalid permission %q", p))
			}
		}
		if v, ok := body["expires"]; ok {
			n, isNum := v.(interface{ Int64() (int64, error) })
			days, err := int64(0), error(nil)
			if isNum {
				days, err = n.Int64()
			}
			if !isNum || err != nil || days < 1 || days > 365 {
				return apiError(http.StatusBadRequest, "expires must be a number of days from 1 to 365")
			}
			t.Expires = s.now().Add(time.Duration(days) * 24 * time.Hour)
		}
		s.tokens = append(s.tokens, t)
		out := map[string]any{"key": t.Key, "token": t.Secret, "name": t.Name, "created": s.now().UTC().Format(time.RFC3339)}
		if !t.Expires.IsZero() {
			out["expires"] = t.Expires.UTC().Format(time.RFC3339)
		}
		return response{http.StatusCreated, out}
	case strings.HasPrefix(r.URL.Path, "/-/npm/v1/tokens/token/") && r.Method == http.MethodDelete:
		key := strings.TrimPrefix(r.URL.Path, "/-/npm/v1/tokens/token/")
		for _, t := range s.tokens {
			if t.Key == key && !t.Deleted {
				t.Deleted = true
				return response{http.StatusNoContent, nil}
			}
		}
		return apiError(http.StatusNotFound, "Token not found")
	}
	return apiError(http.StatusNotFound, "Not Found")
}
