// Package cloudflaretest is an in-memory fake of Cloudflare's API-token
// endpoints (user-owned /user/tokens and account-owned
// /accounts/<id>/tokens: create, list, get, delete, verify, roll) for tests,
// including the e2e suite that drives it through a real Vault.
package cloudflaretest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Permission-group ids this fake understands for token management. (They
// stand in for Cloudflare's "API Tokens Read/Write" groups.)
const (
	PermTokensRead  = "0cc3a61731504c89b99ec1be78b77aa0"
	PermTokensWrite = "686d18d5ac6c441c867cbf6771e58a0a"
	PermDNSEdit     = "4755a26eedb94da69e1066d98aa820be"
)

// Documented token limits.
const (
	UserTokenLimit    = 50
	AccountTokenLimit = 500
)

// Recorded is one request the server received. Auth names the token
// instead of carrying it: "root" (the seeded token), "token:<id>",
// "invalid", or "" when none was sent.
type Recorded struct {
	Method string
	Path   string
	Query  url.Values
	Auth   string
	Body   map[string]any
}

// Token is a live token as the fake stores it.
type Token struct {
	ID        string
	Name      string
	Value     string
	Owner     string // "user" or an account id
	Policies  json.RawMessage
	Condition json.RawMessage
	ExpiresOn time.Time
	NotBefore time.Time
	IssuedOn  time.Time
}

// Server is the fake Cloudflare API.
type Server struct {
	*httptest.Server

	log fakeapi.Recorder[Recorded]

	mu        sync.Mutex
	tokens    map[string]*Token
	rootID    string
	accountID string
	limits    map[string]int
	now       func() time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithAccountRoot makes the seeded root an account-owned token of a new
// account (see AccountID).
func WithAccountRoot() Option {
	return func(s *Server) {
		s.accountID = fakeapi.Hex(16)
		root := s.tokens[s.rootID]
		root.Owner = s.accountID
		root.Policies = rootPolicies("com.cloudflare.api.account." + s.accountID)
	}
}

// WithRootCondition sets the seeded root's condition (e.g. an IP allowlist).
func WithRootCondition(condition string) Option {
	return func(s *Server) { s.tokens[s.rootID].Condition = json.RawMessage(condition) }
}

// WithRootExpiry gives the seeded root an expires_on.
func WithRootExpiry(at time.Time) Option {
	return func(s *Server) { s.tokens[s.rootID].ExpiresOn = at.UTC().Truncate(time.Second) }
}

// WithClock replaces the clock that decides whether a token has expired.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithTokenLimit overrides the token limit for the owner ("user" or an account id).
func WithTokenLimit(owner string, n int) Option { return func(s *Server) { s.limits[owner] = n } }

func rootPolicies(resource string) json.RawMessage {
	b, _ := json.Marshal([]map[string]any{{
		"id":     fakeapi.Hex(16),
		"effect": "allow",
		"permission_groups": []map[string]any{
			{"id": PermTokensWrite, "name": "API Tokens Write"},
			{"id": PermDNSEdit, "name": "DNS Write"},
		},
		"resources": map[string]string{resource: "*"},
	}})
	return b
}

// NewServer starts a fake seeded with one user-owned root token that may
// manage tokens.
func NewServer(opts ...Option) *Server {
	s := &Server{tokens: map[string]*Token{}, limits: map[string]int{}, now: time.Now}
	root := newToken("vault-root", "user")
	root.Policies = rootPolicies("com.cloudflare.api.user." + fakeapi.Hex(16))
	s.tokens[root.ID] = root
	s.rootID = root.ID
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func newToken(name, owner string) *Token {
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return &Token{ID: fakeapi.Hex(16), Name: name, Owner: owner, Value: base64.RawURLEncoding.EncodeToString(b), IssuedOn: time.Now().UTC()}
}

// AccountID is the account of an account-owned root ("" otherwise).
func (s *Server) AccountID() string { return s.accountID }

// RootToken is the seeded root token's value ("" once deleted).
func (s *Server) RootToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tokens[s.rootID]; t != nil {
		return t.Value
	}
	return ""
}

// RootTokenID is the seeded root token's id.
func (s *Server) RootTokenID() string { return s.rootID }

// FailNext answers the next n requests with status (429s carry Retry-After: 1).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// LiveKeys returns a copy of every token that exists (expired ones included
// until deleted).
func (s *Server) LiveKeys() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Token, 0, len(s.tokens))
	for _, t := range s.tokens {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IsLive reports whether value is a token that exists and authenticates now.
func (s *Server) IsLive(value string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byValue(value) != nil
}

func (s *Server) byValue(value string) *Token {
	if value == "" {
		return nil
	}
	now := s.now()
	for _, t := range s.tokens {
		if t.Value == value {
			if (!t.ExpiresOn.IsZero() && !now.Before(t.ExpiresOn)) || (!t.NotBefore.IsZero() && now.Before(t.NotBefore)) {
				return nil
			}
			return t
		}
	}
	return nil
}

type cfError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeResult(w http.ResponseWriter, result any, info map[string]any) {
	env := map[string]any{"success": true, "errors": []cfError{}, "messages": []any{}, "result": result}
	if info != nil {
		env["result_info"] = info
	}
	fakeapi.WriteJSON(w, http.StatusOK, env)
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	fakeapi.WriteJSON(w, status, map[string]any{
		"success": false, "errors": []cfError{{Code: code, Message: msg}}, "messages": []any{}, "result": nil,
	})
}

func fmtTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) tokenJSON(t *Token, withValue bool) map[string]any {
	m := map[string]any{
		"id": t.ID, "name": t.Name, "status": "active",
		"issued_on": fmtTime(t.IssuedOn), "modified_on": fmtTime(t.IssuedOn),
		"policies": t.Policies,
	}
	if !t.ExpiresOn.IsZero() {
		m["expires_on"] = fmtTime(t.ExpiresOn)
	}
	if !t.NotBefore.IsZero() {
		m["not_before"] = fmtTime(t.NotBefore)
	}
	if len(t.Condition) > 0 {
		m["condition"] = t.Condition
	}
	if withValue {
		m["value"] = t.Value
	}
	return m
}

// can reports whether a token's allow policies grant a permission group.
func can(t *Token, groups ...string) bool {
	var ps []struct {
		Effect           string `json:"effect"`
		PermissionGroups []struct {
			ID string `json:"id"`
		} `json:"permission_groups"`
	}
	if json.Unmarshal(t.Policies, &ps) != nil {
		return false
	}
	for _, p := range ps {
		if p.Effect != "allow" {
			continue
		}
		for _, g := range p.PermissionGroups {
			for _, want := range groups {
				if g.ID == want {
					return true
				}
			}
		}
	}
	return false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, body := fakeapi.ReadJSON(r)
	s.mu.Lock()
	defer s.mu.Unlock()

	var caller *Token
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
	if h := r.Header.Get("Authorization"); h != "" {
		caller = s.byValue(strings.TrimPrefix(h, "Bearer "))
		switch {
		case caller == nil || !strings.HasPrefix(h, "Bearer "):
			caller, rec.Auth = nil, "invalid"
		case caller.ID == s.rootID:
			rec.Auth = "root"
		default:
			rec.Auth = "token:" + caller.ID
		}
	}
	rec.Body = body
	s.log.Record(rec)

	if status := s.log.Fail(w); status != 0 {
		msg := "Internal Server Error"
		if status == http.StatusTooManyRequests {
			msg = "Rate limited. Please wait and consider throttling your request speed"
		}
		writeError(w, status, 10000, msg)
		return
	}
	if caller == nil {
		writeError(w, http.StatusUnauthorized, 1000, "Invalid API Token")
		return
	}

	owner, rest, ok := splitTokenPath(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, 7003, "Could not route to "+r.URL.Path+", perhaps your object identifier is invalid?")
		return
	}
	if owner != caller.Owner {
		writeError(w, http.StatusForbidden, 9109, "Unauthorized to access requested resource")
		return
	}

	switch {
	case rest == "/verify" && r.Method == http.MethodGet:
		m := map[string]any{"id": caller.ID, "status": "active"}
		if !caller.ExpiresOn.IsZero() {
			m["expires_on"] = fmtTime(caller.ExpiresOn)
		}
		writeResult(w, m, nil)

	case rest == "" && r.Method == http.MethodPost:
		if !can(caller, PermTokensWrite) {
			writeError(w, http.StatusForbidden, 9109, "Unauthorized to access requested resource")
			return
		}
		s.create(w, raw, owner)

	case rest == "" && r.Method == http.MethodGet:
		if !can(caller, PermTokensRead, PermTokensWrite) {
			writeError(w, http.StatusForbidden, 9109, "Unauthorized to access requested resource")
			return
		}
		s.list(w, r, owner)

	case strings.HasPrefix(rest, "/"):
		id, sub, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
		t := s.tokens[id]
		if t == nil || t.Owner != owner {
			writeError(w, http.StatusNotFound, 1003, "Invalid token id")
			return
		}
		switch {
		case sub == "" && r.Method == http.MethodGet:
			if !can(caller, PermTokensRead, PermTokensWrite) {
				writeError(w, http.StatusForbidden, 9109, "Unauthorized to access requested resource")
				return
			}
			writeResult(w, s.tokenJSON(t, false), nil)
		case sub == "" && r.Method == http.MethodDelete:
			if !can(caller, PermTokensWrite) {
				writeError(w, http.StatusForbidden, 9109, "Unauthorized to access requested resource")
				return
			}
			delete(s.tokens, id)
			writeResult(w, map[string]any{"id": id}, nil)
		case sub == "value" && r.Method == http.MethodPut:
			if !can(caller, PermTokensWrite) {
				writeError(w, http.StatusForbidden, 9109, "Unauthorized to access requested resource")
				return
			}
			t.Value = newToken("", "").Value
			writeResult(w, t.Value, nil)
		default:
			writeError(w, http.StatusMethodNotAllowed, 10405, "Method not allowed")
		}

	default:
		writeError(w, http.StatusMethodNotAllowed, 10405, "Method not allowed")
	}
}

// splitTokenPath splits /user/tokens… and /accounts/<id>/tokens… paths.
func splitTokenPath(p string) (owner, rest string, ok bool) {
	if r, found := strings.CutPrefix(p, "/user/tokens"); found {
		return "user", r, r == "" || strings.HasPrefix(r, "/")
	}
	if r, found := strings.CutPrefix(p, "/accounts/"); found {
		id, tail, _ := strings.Cut(r, "/")
		if t, found := strings.CutPrefix("/"+tail, "/tokens"); found && id != "" {
			return id, t, t == "" || strings.HasPrefix(t, "/")
		}
	}
	return "", "", false
}

func (s *Server) create(w http.ResponseWriter, raw []byte, owner string) {
	var in struct {
		Name      string          `json:"name"`
		Policies  json.RawMessage `json:"policies"`
		ExpiresOn string          `json:"expires_on"`
		NotBefore string          `json:"not_before"`
		Condition json.RawMessage `json:"condition"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		writeError(w, http.StatusBadRequest, 6003, "Invalid request headers or body")
		return
	}
	if in.Name == "" {
		writeError(w, http.StatusBadRequest, 1001, "name is required")
		return
	}
	if msg := checkPolicies(in.Policies); msg != "" {
		writeError(w, http.StatusBadRequest, 1001, msg)
		return
	}
	var expires, notBefore time.Time
	for _, f := range []struct {
		v   string
		dst *time.Time
		n   string
	}{{in.ExpiresOn, &expires, "expires_on"}, {in.NotBefore, &notBefore, "not_before"}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, f.v)
		if err != nil || t.Nanosecond() != 0 {
			writeError(w, http.StatusBadRequest, 1001, f.n+" must be an RFC 3339 time in whole seconds")
			return
		}
		*f.dst = t
	}
	if !expires.IsZero() && !expires.After(s.now()) {
		writeError(w, http.StatusBadRequest, 1001, "expires_on must be in the future")
		return
	}
	limit := s.limits[owner]
	if limit == 0 {
		limit = UserTokenLimit
		if owner != "user" {
			limit = AccountTokenLimit
		}
	}
	n := 0
	for _, t := range s.tokens {
		if t.Owner == owner {
			n++
		}
	}
	if n >= limit {
		writeError(w, http.StatusBadRequest, 1000, fmt.Sprintf("token limit of %d reached", limit))
		return
	}
	t := newToken(in.Name, owner)
	t.Policies, t.ExpiresOn, t.NotBefore = in.Policies, expires, notBefore
	if len(in.Condition) > 0 && string(in.Condition) != "null" {
		t.Condition = in.Condition
	}
	s.tokens[t.ID] = t
	writeResult(w, s.tokenJSON(t, true), nil)
}

func checkPolicies(raw json.RawMessage) string {
	var ps []struct {
		Effect           string `json:"effect"`
		PermissionGroups []struct {
			ID string `json:"id"`
		} `json:"permission_groups"`
		Resources map[string]any `json:"resources"`
	}
	if err := json.Unmarshal(raw, &ps); err != nil || len(ps) == 0 {
		return "policies must be a non-empty array"
	}
	for _, p := range ps {
		if p.Effect != "allow" && p.Effect != "deny" {
			return "policy effect must be allow or deny"
		}
		if len(p.PermissionGroups) == 0 || len(p.Resources) == 0 {
			return "each policy needs permission_groups and resources"
		}
		for _, g := range p.PermissionGroups {
			if g.ID == "" {
				return "permission group id is required"
			}
		}
	}
	return ""
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, owner string) {
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page < 1 {
		page = 1
	}
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per < 1 || per > 50 {
		per = 20
	}
	var mine []*Token
	for _, t := range s.tokens {
		if t.Owner == owner {
			mine = append(mine, t)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].ID < mine[j].ID })
	start := (page - 1) * per
	if start > len(mine) {
		start = len(mine)
	}
	end := start + per
	if end > len(mine) {
		end = len(mine)
	}
	result := make([]map[string]any, 0, end-start)
	for _, t := range mine[start:end] {
		result = append(result, s.tokenJSON(t, false))
	}
	pages := (len(mine) + per - 1) / per
	writeResult(w, result, map[string]any{"page": page, "per_page": per, "count": len(result), "total_count": len(mine), "total_pages": pages})
}
