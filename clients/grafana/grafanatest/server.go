// Package grafanatest is an in-memory stand-in for the parts of Grafana's
// HTTP API that the grafana provider uses: service account tokens (create,
// list, delete) and GET /api/org. It follows Grafana's documented status
// codes, JSON shapes, bearer auth and {"message": …} errors, and models the
// OSS permission rule that only the Admin org role manages service account
// tokens.
package grafanatest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Service accounts seeded by NewServer.
const (
	// RootAccountID has the Admin role and holds the root token.
	RootAccountID = 1
	// KeyAccountID has the Viewer role; keys are normally issued on it.
	KeyAccountID = 2
)

// Recorded is one request as the server saw it. Auth names the credential
// instead of carrying it: "root" (the seeded root token), "token:<id>" (any
// other token, including later roots), "unknown", or "" (none).
type Recorded struct {
	Method string
	Path   string
	Auth   string
	Header map[string]string
	Body   map[string]any
	Status int
}

// Token is a service account token as the server holds it.
type Token struct {
	ID        int64
	Name      string
	Secret    string
	AccountID int64
	Created   time.Time
	Expires   time.Time // zero: never
	Deleted   bool
}

type account struct {
	id   int64
	name string
	role string // Admin, Editor, Viewer, None
}

// Server is the fake Grafana.
type Server struct {
	*httptest.Server

	log fakeapi.Recorder[Recorded]

	mu       sync.Mutex
	nextID   int64
	accounts map[int64]*account
	tokens   map[int64]*Token
	rootID   int64
	now      func() time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithServiceAccount adds a service account with an org role (Admin,
// Editor, Viewer or None).
func WithServiceAccount(id int64, name, role string) Option {
	return func(s *Server) { s.accounts[id] = &account{id: id, name: name, role: role} }
}

// NewServer starts a fake Grafana with service accounts RootAccountID
// (Admin, holding the root token) and KeyAccountID (Viewer).
func NewServer(opts ...Option) *Server {
	s := &Server{
		nextID:   1,
		accounts: map[int64]*account{},
		tokens:   map[int64]*Token{},
		now:      time.Now,
	}
	s.accounts[RootAccountID] = &account{id: RootAccountID, name: "vault-admin", role: "Admin"}
	s.accounts[KeyAccountID] = &account{id: KeyAccountID, name: "vault-keys", role: "Viewer"}
	for _, o := range opts {
		o(s)
	}
	s.rootID = s.newToken(RootAccountID, "vault-root", time.Time{}).ID
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// RootToken is the seeded root token's secret.
func (s *Server) RootToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[s.rootID].Secret
}

// RootTokenID is the seeded root token's id.
func (s *Server) RootTokenID() string { return strconv.FormatInt(s.rootID, 10) }

// AddToken creates a token directly (as a human would in the UI).
func (s *Server) AddToken(accountID int64, name string) Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.newToken(accountID, name, time.Time{})
}

// FailNext answers the next n requests with status (429s carry
// Retry-After: 1).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.log.ResetRequests() }

// LiveKeys returns every token that still works, on any service account.
func (s *Server) LiveKeys() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Token
	for _, t := range s.tokens {
		if s.usable(t) {
			out = append(out, *t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// LiveKeysOn returns the working tokens of one service account.
func (s *Server) LiveKeysOn(accountID int64) []Token {
	var out []Token
	for _, t := range s.LiveKeys() {
		if t.AccountID == accountID {
			out = append(out, t)
		}
	}
	return out
}

// IsLive reports whether secret is a token that still works.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.bySecret(secret)
	return t != nil && s.usable(t)
}

// TokenByID returns a copy of any token, deleted or not.
func (s *Server) TokenByID(id string) (Token, bool) {
	n, _ := strconv.ParseInt(id, 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[n]
	if !ok {
		return Token{}, false
	}
	return *t, true
}

func (s *Server) usable(t *Token) bool {
	return !t.Deleted && (t.Expires.IsZero() || s.now().Before(t.Expires))
}

func (s *Server) bySecret(secret string) *Token {
	if secret == "" {
		return nil
	}
	for _, t := range s.tokens {
		if t.Secret == secret {
			return t
		}
	}
	return nil
}

func (s *Server) newToken(accountID int64, name string, expires time.Time) *Token {
	t := &Token{ID: s.nextID, Name: name, Secret: "glsa_" + fakeapi.Hex(16), AccountID: accountID,
		Created: s.now().UTC(), Expires: expires}
	s.nextID++
	s.tokens[t.ID] = t
	return t
}

type response struct {
	status int
	body   any
}

func msg(m string) map[string]any { return map[string]any{"message": m} }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	secret, hasAuth := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	caller := s.bySecret(secret)
	rec := Recorded{Method: r.Method, Path: r.URL.Path,
		Header: map[string]string{"Content-Type": r.Header.Get("Content-Type"), "User-Agent": r.Header.Get("User-Agent")}}
	switch {
	case !hasAuth:
	case caller == nil:
		rec.Auth = "unknown"
	case caller.ID == s.rootID:
		rec.Auth = "root"
	default:
		rec.Auth = fmt.Sprintf("token:%d", caller.ID)
	}
	body, validJSON := fakeapi.DecodeBody(r)
	rec.Body = body

	var resp response
	failure := s.log.Fail(w)
	switch {
	case failure == http.StatusTooManyRequests:
		resp = response{failure, msg("Too many requests")}
	case failure != 0:
		resp = response{failure, msg(http.StatusText(failure))}
	case caller == nil || !s.usable(caller):
		resp = response{http.StatusUnauthorized, map[string]any{"message": "Invalid API key", "messageId": "api-key.invalid",
			"statusCode": 401, "traceID": ""}}
	case !validJSON:
		resp = response{http.StatusBadRequest, msg("bad request data")}
	default:
		resp = s.route(r, caller, body)
	}
	rec.Status = resp.status
	s.log.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) route(r *http.Request, caller *Token, body map[string]any) response {
	role := s.accounts[caller.AccountID].role
	if r.URL.Path == "/api/org" && r.Method == http.MethodGet {
		if role == "None" {
			return response{http.StatusForbidden, msg("You'll need additional permissions to perform this action. Permissions needed: orgs:read")}
		}
		return response{http.StatusOK, map[string]any{"id": 1, "name": "Main Org.", "address": map[string]string{}}}
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/serviceaccounts/")
	seg := strings.Split(rest, "/")
	if !ok || len(seg) < 2 || seg[1] != "tokens" || len(seg) > 3 {
		return response{http.StatusNotFound, msg("Not found")}
	}
	if role != "Admin" {
		action := "serviceaccounts:write"
		if r.Method == http.MethodGet {
			action = "serviceaccounts:read"
		}
		return response{http.StatusForbidden, msg("You'll need additional permissions to perform this action. Permissions needed: " + action)}
	}
	id, err := strconv.ParseInt(seg[0], 10, 64)
	if err != nil {
		return response{http.StatusBadRequest, msg("Service Account ID is invalid")}
	}
	if s.accounts[id] == nil {
		return response{http.StatusNotFound, msg("service account not found")}
	}
	switch {
	case len(seg) == 2 && r.Method == http.MethodPost:
		return s.create(id, body)
	case len(seg) == 2 && r.Method == http.MethodGet:
		return s.list(id)
	case len(seg) == 3 && r.Method == http.MethodDelete:
		tid, _ := strconv.ParseInt(seg[2], 10, 64)
		t, ok := s.tokens[tid]
		if !ok || t.Deleted || t.AccountID != id {
			return response{http.StatusNotFound, msg("service account token not found")}
		}
		t.Deleted = true
		return response{http.StatusOK, msg("Service account token deleted")}
	}
	return response{http.StatusMethodNotAllowed, msg("Method not allowed")}
}

func (s *Server) create(accountID int64, body map[string]any) response {
	name, _ := body["name"].(string)
	if strings.TrimSpace(name) == "" {
		return response{http.StatusBadRequest, msg("bad request data")}
	}
	var expires time.Time
	if v, ok := body["secondsToLive"]; ok {
		n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
		if err != nil || n < 0 {
			return response{http.StatusBadRequest, msg("bad request data")}
		}
		if n > 0 {
			expires = s.now().Add(time.Duration(n) * time.Second)
		}
	}
	for _, t := range s.tokens {
		if t.AccountID == accountID && t.Name == name && !t.Deleted {
			return response{http.StatusBadRequest, msg("service account token with given name already exists in the organization")}
		}
	}
	t := s.newToken(accountID, name, expires)
	return response{http.StatusOK, map[string]any{"id": t.ID, "name": t.Name, "key": t.Secret}}
}

func (s *Server) list(accountID int64) response {
	out := []map[string]any{}
	var ids []int64
	for id, t := range s.tokens {
		if t.AccountID == accountID && !t.Deleted {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		t := s.tokens[id]
		v := map[string]any{"id": t.ID, "name": t.Name, "created": t.Created.Format(time.RFC3339),
			"lastUsedAt": nil, "expiration": nil, "secondsUntilExpiration": 0, "hasExpired": false, "isRevoked": false}
		if !t.Expires.IsZero() {
			v["expiration"] = t.Expires.UTC().Format(time.RFC3339)
			v["secondsUntilExpiration"] = max(t.Expires.Sub(s.now()).Seconds(), 0)
			v["hasExpired"] = !s.now().Before(t.Expires)
		}
		out = append(out, v)
	}
	return response{http.StatusOK, out}
}
