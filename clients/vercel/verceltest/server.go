// Package verceltest is an in-memory stand-in for the parts of the Vercel
// REST API the vercel provider uses: access tokens (POST /v3/user/tokens,
// DELETE /v3/user/tokens/{id}, GET /v5/user/tokens/{id|current}) and
// GET /v2/user, with bearer auth, an optional ?teamId=, expiry in epoch
// milliseconds, {"error":{code,message}} errors and X-RateLimit-* headers.
package verceltest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// TeamID is the team the seeded user belongs to.
const TeamID = "team_vault0123"

// Recorded is one request as the server saw it. Auth is "root" (the seeded
// token), "token:<id>" (any other), "unknown" or "" (none); TeamID is the
// teamId query parameter.
type Recorded struct {
	Method string
	Path   string
	TeamID string
	Until  string
	Auth   string
	Body   map[string]any
	Status int
}

// Token is an access token.
type Token struct {
	Created   int64 // epoch ms, unique per token
	ID        string
	Name      string
	Secret    string
	TeamID    string
	ExpiresAt time.Time // zero: never
	Deleted   bool
}

// Server is the fake Vercel API.
type Server struct {
	*httptest.Server

	// Recorder has FailNext (failures to inject: 429s carry Retry-After: 1),
	// Requests and ResetRequests.
	fakeapi.Recorder[Recorded]

	mu      sync.Mutex
	seq     int64
	tokens  []*Token
	rootID  string
	maxPage int
	now     func() time.Time
}

// NewServer starts a fake Vercel with one access token (the root).
func NewServer() *Server {
	s := &Server{now: time.Now, maxPage: 100}
	s.rootID = s.newToken("operator-token", "", time.Time{}).ID
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// RootToken is the seeded token's value; RootTokenID its id.
func (s *Server) RootToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID(s.rootID).Secret
}

// RootTokenID is the seeded token's id.
func (s *Server) RootTokenID() string { return s.rootID }

// SetMaxPage caps list page sizes, to exercise paging.
func (s *Server) SetMaxPage(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPage = n
}

// SetNow replaces the server's clock (for expiry).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
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

func (s *Server) live(t *Token) bool {
	return !t.Deleted && (t.ExpiresAt.IsZero() || s.now().Before(t.ExpiresAt))
}

func (s *Server) newToken(name, team string, expires time.Time) *Token {
	s.seq++
	t := &Token{Created: 1_700_000_000_000 + s.seq, ID: fakeapi.Hex(16), Name: name, Secret: fakeapi.Hex(12), TeamID: team, ExpiresAt: expires}
	s.tokens = append(s.tokens, t)
	return t
}

func (s *Server) byID(id string) *Token {
	for _, t := range s.tokens {
		if t.ID == id && !t.Deleted {
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

func apiError(status int, code, message string) response {
	return response{status, map[string]any{"error": map[string]any{"code": code, "message": message}}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	secret, hasAuth := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	caller := s.bySecret(secret)
	rec := Recorded{Method: r.Method, Path: r.URL.Path, TeamID: r.URL.Query().Get("teamId"), Until: r.URL.Query().Get("until")}
	switch {
	case !hasAuth:
	case caller != nil && caller.ID == s.rootID:
		rec.Auth = "root"
	case caller != nil:
		rec.Auth = "token:" + caller.ID
	default:
		rec.Auth = "unknown"
	}
	body, validJSON := fakeapi.DecodeBody(r)
	rec.Body = body

	h := w.Header()
	h.Set("X-RateLimit-Limit", "100")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(100-s.Recorder.Len()%100))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))

	var resp response
	failure := s.Recorder.Fail(w)
	switch {
	case failure == http.StatusTooManyRequests:
		h.Set("X-RateLimit-Remaining", "0")
		resp = apiError(failure, "rate_limited", "Rate limit exceeded")
	case failure != 0:
		resp = apiError(failure, "internal_server_error", "An unexpected internal error occurred")
	case caller == nil:
		resp = response{http.StatusForbidden, map[string]any{"error": map[string]any{"code": "forbidden",
			"message": "Not authorized", "invalidToken": true}}}
	case rec.TeamID != "" && rec.TeamID != TeamID:
		resp = apiError(http.StatusForbidden, "forbidden", "You don't have permission to access this team")
	case !validJSON:
		resp = apiError(http.StatusBadRequest, "bad_request", "Invalid JSON")
	default:
		resp = s.route(r, rec.TeamID, caller, body)
	}
	rec.Status = resp.status
	s.Recorder.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) view(t *Token) map[string]any {
	v := map[string]any{"id": t.ID, "name": t.Name, "type": "token", "origin": "manual",
		"activeAt": t.Created, "createdAt": t.Created}
	if !t.ExpiresAt.IsZero() {
		v["expiresAt"] = t.ExpiresAt.UnixMilli()
	}
	return v
}

func (s *Server) route(r *http.Request, team string, caller *Token, body map[string]any) response {
	p := r.URL.Path
	switch {
	case p == "/v2/user" && r.Method == http.MethodGet:
		return response{http.StatusOK, map[string]any{"user": map[string]any{"id": "user_vault", "username": "vault", "email": "vault@example.com"}}}
	case p == "/v3/user/tokens" && r.Method == http.MethodPost:
		name, _ := body["name"].(string)
		if strings.TrimSpace(name) == "" {
			return apiError(http.StatusBadRequest, "bad_request", "Invalid request: missing required property `name`.")
		}
		var expires time.Time
		if v, ok := body["expiresAt"]; ok {
			n, isNum := v.(interface{ Int64() (int64, error) })
			ms, err := int64(0), error(nil)
			if isNum {
				ms, err = n.Int64()
			}
			if !isNum || err != nil || ms <= s.now().UnixMilli() {
				return apiError(http.StatusBadRequest, "bad_request", "Invalid request: `expiresAt` must be a future timestamp in milliseconds.")
			}
			expires = time.UnixMilli(ms)
		}
		t := s.newToken(name, team, expires)
		return response{http.StatusOK, map[string]any{"token": s.view(t), "bearerToken": t.Secret}}
	case p == "/v6/user/tokens" && r.Method == http.MethodGet:
		return s.list(r)
	case strings.HasPrefix(p, "/v5/user/tokens/") && r.Method == http.MethodGet:
		id := strings.TrimPrefix(p, "/v5/user/tokens/")
		t := caller
		if id != "current" {
			t = s.byID(id)
		}
		if t == nil {
			return apiError(http.StatusNotFound, "not_found", "Token not found")
		}
		return response{http.StatusOK, map[string]any{"token": s.view(t)}}
	case strings.HasPrefix(p, "/v3/user/tokens/") && r.Method == http.MethodDelete:
		id := strings.TrimPrefix(p, "/v3/user/tokens/")
		t := s.byID(id)
		if t == nil {
			return apiError(http.StatusNotFound, "not_found", "Token not found")
		}
		t.Deleted = true
		return response{http.StatusOK, map[string]any{"tokenId": id}}
	}
	return apiError(http.StatusNotFound, "not_found", "The requested endpoint was not found")
}

// list answers GET /v6/user/tokens: newest first, limit per page (at most
// maxPage), until = the createdAt (exclusive) to continue before.
func (s *Server) list(r *http.Request) response {
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = 20
	}
	limit = min(limit, s.maxPage)
	until, _ := strconv.ParseInt(r.URL.Query().Get("until"), 10, 64)
	var page []map[string]any
	more := false
	for i := len(s.tokens) - 1; i >= 0; i-- {
		t := s.tokens[i]
		if t.Deleted || (until > 0 && t.Created >= until) {
			continue
		}
		if len(page) == limit {
			more = true
			break
		}
		page = append(page, s.view(t))
	}
	pagination := map[string]any{"count": len(page), "next": nil, "prev": nil}
	if more {
		pagination["next"] = page[len(page)-1]["createdAt"]
	}
	if page == nil {
		page = []map[string]any{}
	}
	return response{http.StatusOK, map[string]any{"tokens": page, "pagination": pagination}}
}
