// Package linodetest is an in-memory stand-in for the parts of the Linode
// API v4 that the linode provider uses: personal access tokens
// (/profile/tokens: create, list, get, delete) and GET /profile. It follows
// Linode's documented bearer auth, {"errors":[{"reason","field"}]} errors,
// page/pages/results paging, token expiry, a token list that shows only the
// first 16 characters of each token, and X-RateLimit-* headers.
package linodetest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Recorded is one request as the server saw it. Auth names the credential
// instead of carrying it: "root" (the seeded token), "token:<id>" (any
// other), "unknown", or "" (none).
type Recorded struct {
	Method string
	Path   string
	Query  map[string]string
	Auth   string
	Body   map[string]any
	Status int
}

// Token is a personal access token.
type Token struct {
	ID      int64
	Label   string
	Scopes  string
	Secret  string
	Created time.Time
	Expiry  time.Time // zero: never
	Deleted bool
}

// Server is the fake Linode API.
type Server struct {
	*httptest.Server
	log fakeapi.Recorder[Recorded]

	mu      sync.Mutex
	seq     int64
	tokens  []*Token
	rootID  int64
	maxPage int
}

// Option configures a Server.
type Option func(*Server)

// WithMaxPage caps the page size, to exercise paging.
func WithMaxPage(n int) Option { return func(s *Server) { s.maxPage = n } }

// NewServer starts a fake with one token (the root), scopes "*".
func NewServer(opts ...Option) *Server {
	s := &Server{maxPage: 100, seq: 1000}
	for _, o := range opts {
		o(s)
	}
	s.rootID = s.newToken("vault-root", "*", time.Time{}).ID
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// RootToken is the seeded token's value.
func (s *Server) RootToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID(s.rootID).Secret
}

// RootTokenID is the seeded token's id.
func (s *Server) RootTokenID() string { return strconv.FormatInt(s.rootID, 10) }

// AddToken creates a token directly (as in Cloud Manager).
func (s *Server) AddToken(label, scopes string) Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.newToken(label, scopes, time.Time{})
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

// IsLive reports whether secret is a live token.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bySecret(secret) != nil
}

// FailNext answers the next n requests with status (a 429 carries
// Retry-After: 1 and X-RateLimit-Remaining: 0).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// LoseNextCreate makes the next create store the key and then answer 500,
// as when the answer is lost.
func (s *Server) LoseNextCreate() { s.log.LoseNextCreate() }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.log.ResetRequests() }

func (s *Server) newToken(label, scopes string, expiry time.Time) *Token {
	s.seq++
	t := &Token{ID: s.seq, Label: label, Scopes: scopes, Secret: fakeapi.Hex(32), Created: time.Now().UTC(), Expiry: expiry}
	s.tokens = append(s.tokens, t)
	return t
}

func (s *Server) live(t *Token) bool {
	return !t.Deleted && (t.Expiry.IsZero() || time.Now().Before(t.Expiry))
}

func (s *Server) byID(id int64) *Token {
	for _, t := range s.tokens {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func (s *Server) bySecret(secret string) *Token {
	for _, t := range s.tokens {
		if secret != "" && t.Secret == secret && s.live(t) {
			return t
		}
	}
	return nil
}

type response struct {
	status int
	body   any
}

func apiError(status int, reason, field string) response {
	e := map[string]any{"reason": reason}
	if field != "" {
		e["field"] = field
	}
	return response{status, map[string]any{"errors": []any{e}}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, validJSON := fakeapi.DecodeBody(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	secret, hasAuth := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	caller := s.bySecret(secret)
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: map[string]string{}, Body: body}
	for k := range r.URL.Query() {
		rec.Query[k] = r.URL.Query().Get(k)
	}
	switch {
	case !hasAuth:
	case caller == nil:
		rec.Auth = "unknown"
	case caller.ID == s.rootID:
		rec.Auth = "root"
	default:
		rec.Auth = fmt.Sprintf("token:%d", caller.ID)
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", "800")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(800-s.log.Len()%800))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))

	var resp response
	switch failure := s.log.Fail(w); {
	case failure == http.StatusTooManyRequests:
		h.Set("X-RateLimit-Remaining", "0")
		resp = apiError(failure, "Too Many Requests", "")
	case failure != 0:
		resp = apiError(failure, "Please try again", "")
	case caller == nil:
		resp = apiError(http.StatusUnauthorized, "Invalid Token", "")
	case !validJSON:
		resp = apiError(http.StatusBadRequest, "Malformed JSON", "")
	default:
		resp = s.route(r, body)
	}
	rec.Status = resp.status
	s.log.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func view(t *Token, full bool) map[string]any {
	v := map[string]any{"id": t.ID, "label": t.Label, "scopes": t.Scopes, "created": t.Created.Format("2006-01-02T15:04:05"),
		"expiry": nil, "token": t.Secret[:16]}
	if !t.Expiry.IsZero() {
		v["expiry"] = t.Expiry.UTC().Format("2006-01-02T15:04:05")
	}
	if full {
		v["token"] = t.Secret
	}
	return v
}

func (s *Server) route(r *http.Request, body map[string]any) response {
	path, ok := strings.CutPrefix(r.URL.Path, "/v4/")
	if !ok {
		return apiError(http.StatusNotFound, "Not found", "")
	}
	switch {
	case path == "profile" && r.Method == http.MethodGet:
		return response{http.StatusOK, map[string]any{"username": "vault", "email": "vault@example.com", "restricted": false}}
	case path == "profile/tokens" && r.Method == http.MethodPost:
		return s.create(body)
	case path == "profile/tokens" && r.Method == http.MethodGet:
		return s.list(r)
	case strings.HasPrefix(path, "profile/tokens/"):
		id, err := strconv.ParseInt(strings.TrimPrefix(path, "profile/tokens/"), 10, 64)
		t := s.byID(id)
		if err != nil || t == nil || !s.live(t) {
			return apiError(http.StatusNotFound, "Not found", "")
		}
		switch r.Method {
		case http.MethodGet:
			return response{http.StatusOK, view(t, false)}
		case http.MethodDelete:
			t.Deleted = true
			return response{http.StatusOK, map[string]any{}}
		}
		return apiError(http.StatusMethodNotAllowed, "Method Not Allowed", "")
	}
	return apiError(http.StatusNotFound, "Not found", "")
}

func (s *Server) create(body map[string]any) response {
	label, _ := body["label"].(string)
	if l := len(label); l < 1 || l > 100 {
		return apiError(http.StatusBadRequest, "Length must be 1-100 characters", "label")
	}
	scopes, _ := body["scopes"].(string)
	if scopes == "" {
		scopes = "*"
	}
	var expiry time.Time
	switch v := body["expiry"].(type) {
	case nil:
	case string:
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = time.Parse("2006-01-02T15:04:05", v); err != nil {
				return apiError(http.StatusBadRequest, "Invalid datetime", "expiry")
			}
		}
		if !t.After(time.Now()) {
			return apiError(http.StatusBadRequest, "Expiry must be in the future", "expiry")
		}
		expiry = t
	default:
		return apiError(http.StatusBadRequest, "Invalid datetime", "expiry")
	}
	t := s.newToken(label, scopes, expiry)
	if s.log.CreateLost() {
		return apiError(http.StatusInternalServerError, "Please try again", "")
	}
	return response{http.StatusOK, view(t, true)}
}

func (s *Server) list(r *http.Request) response {
	var data []map[string]any
	for _, t := range s.tokens {
		if s.live(t) {
			data = append(data, view(t, false))
		}
	}
	size, err := strconv.Atoi(r.URL.Query().Get("page_size"))
	if err != nil || size < 25 || size > 500 {
		size = 100
	}
	size = min(size, s.maxPage)
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	pages := max(1, (len(data)+size-1)/size)
	start, end := min((page-1)*size, len(data)), min(page*size, len(data))
	out := data[start:end]
	if out == nil {
		out = []map[string]any{}
	}
	return response{http.StatusOK, map[string]any{"data": out, "page": page, "pages": pages, "results": len(data)}}
}
