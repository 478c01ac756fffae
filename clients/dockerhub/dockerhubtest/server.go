// Package dockerhubtest is an in-memory stand-in for the parts of the
// Docker Hub API the dockerhub provider uses: POST /v2/auth/token (a
// password or personal access token for a short-lived JWT) and personal
// access tokens under /v2/access-tokens, with Docker Hub's rule that a JWT
// issued from a personal access token cannot manage tokens, {"message": …}
// errors, X-RateLimit-* headers and 429 with Retry-After.
package dockerhubtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Username is the account's user name.
const Username = "vaultbot"

// Recorded is one request as the server saw it. Auth is, for
// /v2/auth/token, the secret in the body ("password", "pat:<uuid>",
// "unknown"); otherwise the JWT's origin ("jwt:password", "jwt:pat:<uuid>"),
// "unknown" or "" (none). JWT is the JWT's serial number (0 for none).
type Recorded struct {
	Method string
	Path   string
	Query  string
	Auth   string
	JWT    int
	Body   map[string]any
	Status int
}

// Token is a personal access token.
type Token struct {
	UUID      string
	Label     string
	Secret    string
	Scopes    []string
	ExpiresAt time.Time // zero: never
	Created   time.Time
	Deleted   bool
}

type jwt struct {
	serial  int
	origin  string
	expires time.Time
}

// Server is the fake Docker Hub.
type Server struct {
	*httptest.Server

	// Recorder has FailNext (failures to inject: 429s carry Retry-After: 1),
	// Requests and ResetRequests.
	fakeapi.Recorder[Recorded]

	mu       sync.Mutex
	password string
	tokens   []*Token
	jwts     map[string]*jwt
	serial   int
	jwtLife  time.Duration
	maxPage  int
	now      func() time.Time
}

// NewServer starts a fake Docker Hub with account Username.
func NewServer() *Server {
	s := &Server{password: "pw-" + fakeapi.Hex(10), jwts: map[string]*jwt{}, jwtLife: 10 * time.Minute, maxPage: 100, now: time.Now}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Password is the account's password.
func (s *Server) Password() string { return s.password }

// SetNow replaces the server's clock (JWT and token expiry).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetMaxPage caps list page sizes, to exercise paging.
func (s *Server) SetMaxPage(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPage = n
}

// RevokeJWTs makes every JWT issued so far invalid (as a password change
// or a session logout would).
func (s *Server) RevokeJWTs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jwts = map[string]*jwt{}
}

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

// IsLive reports whether secret is the password or a live token.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return secret != "" && (secret == s.password || s.bySecret(secret) != nil)
}

func (s *Server) live(t *Token) bool {
	return !t.Deleted && (t.ExpiresAt.IsZero() || s.now().Before(t.ExpiresAt))
}

func (s *Server) bySecret(secret string) *Token {
	for _, t := range s.tokens {
		if t.Secret == secret && s.live(t) {
			return t
		}
	}
	return nil
}

// issue makes a JWT with an exp claim.
func (s *Server) issue(origin string) string {
	s.serial++
	exp := s.now().Add(s.jwtLife)
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	tok := enc(map[string]any{"alg": "RS256", "typ": "JWT"}) + "." +
		enc(map[string]any{"sub": Username, "exp": exp.Unix(), "jti": fakeapi.Hex(8)}) + "." + fakeapi.Hex(16)
	s.jwts[tok] = &jwt{serial: s.serial, origin: origin, expires: exp}
	return tok
}

type response struct {
	status int
	body   any
}

func apiError(status int, message string) response {
	return response{status, map[string]any{"message": message, "errinfo": map[string]any{}}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	body, validJSON := fakeapi.DecodeBody(r)
	rec.Body = body
	var caller *jwt
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		rec.Auth = "unknown"
		if j := s.jwts[bearer]; j != nil && s.now().Before(j.expires) {
			caller, rec.Auth, rec.JWT = j, "jwt:"+j.origin, j.serial
		}
	}

	h := w.Header()
	h.Set("X-RateLimit-Limit", "180")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(180-s.Recorder.Len()%180))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))

	var resp response
	failure := s.Recorder.Fail(w)
	switch {
	case failure == http.StatusTooManyRequests:
		h.Set("X-RateLimit-Remaining", "0")
		resp = apiError(failure, "too many requests")
	case failure != 0:
		resp = apiError(failure, "internal server error")
	case !validJSON:
		resp = apiError(http.StatusBadRequest, "invalid JSON")
	case r.URL.Path == "/v2/auth/token" && r.Method == http.MethodPost:
		resp = s.auth(&rec, body)
	case caller == nil:
		resp = apiError(http.StatusUnauthorized, "authentication required")
	case strings.HasPrefix(caller.origin, "pat:"):
		resp = apiError(http.StatusForbidden, "token issued from personal access token is not allowed")
	default:
		resp = s.route(r, body)
	}
	rec.Status = resp.status
	s.Recorder.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) auth(rec *Recorded, body map[string]any) response {
	id, _ := body["identifier"].(string)
	secret, _ := body["secret"].(string)
	rec.Auth = "unknown"
	origin := ""
	if id == Username && secret != "" && secret == s.password {
		origin = "password"
	} else if t := s.bySecret(secret); id == Username && t != nil {
		origin = "pat:" + t.UUID
	}
	if origin == "" {
		return apiError(http.StatusUnauthorized, "incorrect username or password")
	}
	rec.Auth = origin
	return response{http.StatusOK, map[string]any{"access_token": s.issue(origin)}}
}

func (s *Server) view(t *Token) map[string]any {
	v := map[string]any{"uuid": t.UUID, "client_id": "HUB", "creator_ip": "127.0.0.1", "creator_ua": "vault",
		"created_at": t.Created.UTC().Format(time.RFC3339), "last_used": nil, "generated_by": "manual",
		"is_active": s.live(t), "token_label": t.Label, "scopes": t.Scopes, "expires_at": nil}
	if !t.ExpiresAt.IsZero() {
		v["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return v
}

var scopes = map[string]bool{"repo:admin": true, "repo:write": true, "repo:read": true, "repo:public_read": true}

func (s *Server) route(r *http.Request, body map[string]any) response {
	p := r.URL.Path
	switch {
	case p == "/v2/access-tokens" && r.Method == http.MethodPost:
		label, _ := body["token_label"].(string)
		if strings.TrimSpace(label) == "" {
			return apiError(http.StatusBadRequest, "token_label is required")
		}
		t := &Token{UUID: fmt.Sprintf("%s-%s-%s", fakeapi.Hex(4), fakeapi.Hex(2), fakeapi.Hex(6)), Label: label,
			Secret: "dckr_pat_" + fakeapi.Hex(14), Created: s.now().UTC()}
		list, _ := body["scopes"].([]any)
		for _, v := range list {
			sc, _ := v.(string)
			if !scopes[sc] {
				return apiError(http.StatusBadRequest, fmt.Sprintf("invalid scope %q", sc))
			}
			t.Scopes = append(t.Scopes, sc)
		}
		if len(t.Scopes) == 0 {
			return apiError(http.StatusBadRequest, "scopes is required")
		}
		if v, ok := body["expires_at"]; ok {
			exp, err := time.Parse(time.RFC3339, fmt.Sprint(v))
			if err != nil || !exp.After(s.now()) {
				return apiError(http.StatusBadRequest, "expires_at must be a future RFC 3339 time")
			}
			t.ExpiresAt = exp
		}
		s.tokens = append(s.tokens, t)
		v := s.view(t)
		v["token"] = t.Secret
		return response{http.StatusCreated, v}
	case p == "/v2/access-tokens" && r.Method == http.MethodGet:
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		page, size = max(page, 1), min(max(size, 1), s.maxPage)
		var all []*Token
		for _, t := range s.tokens {
			if !t.Deleted {
				all = append(all, t)
			}
		}
		start, end := min((page-1)*size, len(all)), min(page*size, len(all))
		results := []map[string]any{}
		for _, t := range all[start:end] {
			results = append(results, s.view(t))
		}
		var next any
		if end < len(all) {
			next = fmt.Sprintf("%s/v2/access-tokens?page=%d&page_size=%d", s.URL, page+1, size)
		}
		return response{http.StatusOK, map[string]any{"count": len(all), "next": next, "previous": nil, "active_count": len(all), "results": results}}
	case strings.HasPrefix(p, "/v2/access-tokens/") && r.Method == http.MethodDelete:
		id := strings.TrimPrefix(p, "/v2/access-tokens/")
		for _, t := range s.tokens {
			if t.UUID == id && !t.Deleted {
				t.Deleted = true
				return response{http.StatusNoContent, nil}
			}
		}
		return apiError(http.StatusNotFound, "not found")
	}
	return apiError(http.StatusNotFound, "not found")
}
