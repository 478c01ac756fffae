// Package gitlabtest is an in-memory stand-in for the parts of the GitLab
// REST API (v4) that the gitlab provider uses: project, group and personal
// access tokens, /personal_access_tokens/self and its rotate endpoint. It
// follows GitLab's documented status codes, JSON shapes, PRIVATE-TOKEN /
// Bearer auth, RateLimit-* headers and error bodies, so the provider and the
// e2e suite can run against it.
package gitlabtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Defaults seeded by NewServer.
const (
	AdminUserID      = 1
	DefaultProjectID = 100
	DefaultGroupID   = 200
	DefaultUserID    = 300
	dateLayout       = "2006-01-02"
)

// Recorded is one request as the server saw it. Auth names the credential
// instead of carrying it: "root" (the current root token), "root:<id>" (an
// earlier root), "key:<id>" (an issued token), "unknown", or "" (none).
type Recorded struct {
	Method string
	Path   string
	Query  url.Values
	Auth   string
	Header map[string]string
	Body   map[string]any
	Status int
}

// Token is an access token as the server holds it.
type Token struct {
	ID          int64
	Name        string
	Secret      string
	Scopes      []string
	ExpiresAt   string // YYYY-MM-DD
	CreatedAt   time.Time
	Kind        string // "personal", "project", "group"
	Target      int64  // project or group id; the user id for personal tokens
	UserID      int64
	AccessLevel int
	Description string
	Revoked     bool
	admin       bool
}

// Server is the fake GitLab.
type Server struct {
	*httptest.Server

	log fakeapi.Recorder[Recorded]

	mu         sync.Mutex
	nextID     int64
	tokens     map[int64]*Token
	rootID     int64
	projects   map[int64]bool
	groups     map[int64]bool
	users      map[int64]bool
	maxPerPage int
	now        func() time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithProject adds a project id the server knows.
func WithProject(id int64) Option { return func(s *Server) { s.projects[id] = true } }

// WithGroup adds a group id the server knows.
func WithGroup(id int64) Option { return func(s *Server) { s.groups[id] = true } }

// WithUser adds a user id the server knows.
func WithUser(id int64) Option { return func(s *Server) { s.users[id] = true } }

// WithMaxPerPage caps list page sizes (GitLab's cap is 100), to exercise paging.
func WithMaxPerPage(n int) Option { return func(s *Server) { s.maxPerPage = n } }

// WithRootScopes sets the seeded root token's scopes (default: api).
func WithRootScopes(scopes ...string) Option {
	return func(s *Server) { s.tokens[s.rootID].Scopes = scopes }
}

// WithRootLifetime makes the seeded root token created createdDaysAgo days
// ago and expiring expiresInDays days from today.
func WithRootLifetime(createdDaysAgo, expiresInDays int) Option {
	return func(s *Server) {
		t := s.tokens[s.rootID]
		t.CreatedAt = s.now().UTC().AddDate(0, 0, -createdDaysAgo)
		t.ExpiresAt = s.today().AddDate(0, 0, expiresInDays).Format(dateLayout)
	}
}

// NewServer starts a fake GitLab with project DefaultProjectID, group
// DefaultGroupID, users AdminUserID and DefaultUserID, and a root personal
// access token of the administrator (scope api, 30 days' lifetime).
func NewServer(opts ...Option) *Server {
	s := &Server{
		nextID:     1,
		tokens:     map[int64]*Token{},
		projects:   map[int64]bool{DefaultProjectID: true},
		groups:     map[int64]bool{DefaultGroupID: true},
		users:      map[int64]bool{AdminUserID: true, DefaultUserID: true},
		maxPerPage: 100,
		now:        time.Now,
	}
	root := s.newToken("vault-root", "personal", AdminUserID, AdminUserID, []string{"api"},
		s.today().AddDate(0, 0, 30).Format(dateLayout))
	root.admin = true
	s.rootID = root.ID
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// RootToken is the current root token's secret.
func (s *Server) RootToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[s.rootID].Secret
}

// RootID is the current root token's id.
func (s *Server) RootID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.FormatInt(s.rootID, 10)
}

// Root returns a copy of the current root token.
func (s *Server) Root() Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyToken(s.tokens[s.rootID])
}

// FailNext answers the next n requests with status (429s carry
// Retry-After: 1 and RateLimit-* headers).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.log.ResetRequests() }

// LiveKeys returns the issued (non-root) tokens that still work.
func (s *Server) LiveKeys() []Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Token
	for _, t := range s.tokens {
		if !t.admin && s.usable(t) {
			out = append(out, s.copyToken(t))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IsLive reports whether secret is a token (root or issued) that still works.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.bySecret(secret)
	return t != nil && s.usable(t)
}

// TokenByID returns a copy of any token, revoked or not.
func (s *Server) TokenByID(id string) (Token, bool) {
	n, _ := strconv.ParseInt(id, 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[n]
	if !ok {
		return Token{}, false
	}
	return s.copyToken(t), true
}

func (s *Server) copyToken(t *Token) Token {
	c := *t
	c.Scopes = slices.Clone(t.Scopes)
	return c
}

func (s *Server) today() time.Time {
	n := s.now().UTC()
	return time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC)
}

// usable: not revoked and not expired (GitLab tokens stop at 00:00 UTC on
// their expires_at date).
func (s *Server) usable(t *Token) bool {
	if t.Revoked {
		return false
	}
	d, err := time.Parse(dateLayout, t.ExpiresAt)
	return err == nil && s.today().Before(d)
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

func (s *Server) newToken(name, kind string, target, user int64, scopes []string, expires string) *Token {
	t := &Token{
		ID: s.nextID, Name: name, Secret: "glpat-" + fakeapi.Hex(10), Scopes: scopes,
		ExpiresAt: expires, CreatedAt: s.now().UTC(), Kind: kind, Target: target, UserID: user,
	}
	s.nextID++
	s.tokens[t.ID] = t
	return t
}

func (s *Server) authLabel(t *Token, present bool) string {
	switch {
	case !present:
		return ""
	case t == nil:
		return "unknown"
	case t.ID == s.rootID:
		return "root"
	case t.admin:
		return fmt.Sprintf("root:%d", t.ID)
	default:
		return fmt.Sprintf("key:%d", t.ID)
	}
}

type response struct {
	status int
	body   any // JSON-encoded unless a string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	secret := r.Header.Get("PRIVATE-TOKEN")
	if secret == "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			secret = v
		}
	}
	caller := s.bySecret(secret)
	rec := Recorded{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Auth: s.authLabel(caller, secret != ""),
		Header: map[string]string{"Content-Type": r.Header.Get("Content-Type"), "User-Agent": r.Header.Get("User-Agent")},
	}
	body, validJSON := fakeapi.DecodeBody(r)
	rec.Body = body
	if !validJSON {
		rec.Body = map[string]any{"_invalid_json": true}
	}

	var resp response
	if status := s.log.Fail(w); status != 0 {
		resp = failure(status)
	} else {
		if caller != nil && !s.usable(caller) {
			caller = nil
		}
		resp = s.route(w, r, caller, body)
	}
	rec.Status = resp.status
	s.log.Record(rec)

	s.rateHeaders(w)
	if str, ok := resp.body.(string); ok {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(resp.status)
		_, _ = w.Write([]byte(str))
		return
	}
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) rateHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("RateLimit-Name", "throttle_authenticated_api")
	h.Set("RateLimit-Limit", "2000")
	n := s.log.Len()
	h.Set("RateLimit-Observed", strconv.Itoa(n%2000))
	h.Set("RateLimit-Remaining", strconv.Itoa(2000-n%2000))
	h.Set("RateLimit-Reset", strconv.FormatInt(s.now().Add(time.Minute).Unix(), 10))
}

// failure is the answer to an injected failure (its Retry-After is set).
func failure(status int) response {
	if status == http.StatusTooManyRequests {
		return response{status, "Retry later\n"}
	}
	return response{status, msg(fmt.Sprintf("%d %s", status, http.StatusText(status)))}
}

func msg(m any) map[string]any { return map[string]any{"message": m} }

var (
	unauthorized = response{http.StatusUnauthorized, msg("401 Unauthorized")}
	forbidden    = response{http.StatusForbidden, msg("403 Forbidden")}
	notFound     = response{http.StatusNotFound, msg("404 Not found")}
)

func insufficientScope(scope string) response {
	return response{http.StatusForbidden, map[string]any{
		"error":             "insufficient_scope",
		"error_description": "The request requires higher privileges than provided by the access token.",
		"scope":             scope,
	}}
}

func hasScope(t *Token, any ...string) bool {
	for _, s := range any {
		if slices.Contains(t.Scopes, s) {
			return true
		}
	}
	return false
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, caller *Token, body map[string]any) response {
	path, ok := strings.CutPrefix(r.URL.Path, "/api/v4/")
	if !ok {
		return response{http.StatusNotFound, msg("404 Not Found")}
	}
	if caller == nil {
		return unauthorized
	}
	seg := strings.Split(path, "/")
	switch {
	case path == "personal_access_tokens/self" && r.Method == http.MethodGet:
		if !hasScope(caller, "api", "read_api") {
			return insufficientScope("api read_api")
		}
		return response{http.StatusOK, s.view(caller, false)}
	case path == "personal_access_tokens/self/rotate" && r.Method == http.MethodPost:
		return s.rotateSelf(caller, body)
	case path == "personal_access_tokens" && r.Method == http.MethodGet:
		return s.listPersonal(w, r, caller)
	case len(seg) == 2 && seg[0] == "personal_access_tokens" && r.Method == http.MethodDelete:
		return s.revokePersonal(caller, seg[1])
	case len(seg) == 3 && seg[0] == "users" && seg[2] == "personal_access_tokens" && r.Method == http.MethodPost:
		return s.createPersonal(caller, seg[1], body)
	case len(seg) >= 3 && (seg[0] == "projects" || seg[0] == "groups") && seg[2] == "access_tokens":
		kind := strings.TrimSuffix(seg[0], "s")
		known := s.projects
		if kind == "group" {
			known = s.groups
		}
		id, err := strconv.ParseInt(seg[1], 10, 64)
		if err != nil || !known[id] {
			return response{http.StatusNotFound, msg(fmt.Sprintf("404 %s Not Found", strings.ToUpper(kind[:1])+kind[1:]))}
		}
		switch {
		case len(seg) == 3 && r.Method == http.MethodPost:
			return s.createResource(caller, kind, id, body)
		case len(seg) == 3 && r.Method == http.MethodGet:
			return s.listResource(w, r, caller, kind, id)
		case len(seg) == 4 && r.Method == http.MethodDelete:
			return s.revokeResource(caller, kind, id, seg[3])
		}
	}
	return response{http.StatusNotFound, msg("404 Not Found")}
}

// view is the JSON object GitLab returns for a token.
func (s *Server) view(t *Token, withSecret bool) map[string]any {
	v := map[string]any{
		"id": t.ID, "name": t.Name, "revoked": t.Revoked, "active": s.usable(t),
		"created_at": t.CreatedAt.Format(time.RFC3339), "scopes": t.Scopes, "user_id": t.UserID,
		"last_used_at": nil, "expires_at": t.ExpiresAt, "description": t.Description,
	}
	if t.Kind != "personal" {
		v["access_level"] = t.AccessLevel
	}
	if withSecret {
		v["token"] = t.Secret
	}
	return v
}

// createParams validates the attributes shared by every create call.
func (s *Server) createParams(body map[string]any, expiryRequired bool) (name string, scopes []string, expires string, bad *response) {
	name, _ = body["name"].(string)
	if strings.TrimSpace(name) == "" {
		return "", nil, "", &response{http.StatusBadRequest, map[string]any{"error": "name is missing"}}
	}
	raw, _ := body["scopes"].([]any)
	for _, v := range raw {
		if str, ok := v.(string); ok && str != "" {
			scopes = append(scopes, str)
		}
	}
	if len(scopes) == 0 {
		return "", nil, "", &response{http.StatusBadRequest, map[string]any{"error": "scopes is missing"}}
	}
	expires, _ = body["expires_at"].(string)
	if expires == "" {
		if expiryRequired {
			return "", nil, "", &response{http.StatusBadRequest, map[string]any{"error": "expires_at is missing"}}
		}
		expires = s.today().AddDate(0, 0, 365).Format(dateLayout)
	}
	if r := s.checkExpiry(expires); r != nil {
		return "", nil, "", r
	}
	return name, scopes, expires, nil
}

func (s *Server) checkExpiry(expires string) *response {
	d, err := time.Parse(dateLayout, expires)
	if err != nil {
		return &response{http.StatusBadRequest, map[string]any{"error": "expires_at is invalid"}}
	}
	if !d.After(s.today()) {
		return &response{http.StatusBadRequest, msg(map[string][]string{"expires_at": {"must be in the future"}})}
	}
	if d.After(s.today().AddDate(0, 0, 365)) {
		return &response{http.StatusBadRequest, msg(map[string][]string{"expires_at": {"must be before " +
			s.today().AddDate(0, 0, 366).Format(dateLayout)}})}
	}
	return nil
}

func (s *Server) createResource(caller *Token, kind string, target int64, body map[string]any) response {
	if !caller.admin {
		return forbidden
	}
	if !hasScope(caller, "api") {
		return insufficientScope("api")
	}
	name, scopes, expires, bad := s.createParams(body, true)
	if bad != nil {
		return *bad
	}
	level := 40
	if v, ok := body["access_level"]; ok {
		n, err := strconv.Atoi(fmt.Sprint(v))
		if err != nil || !slices.Contains([]int{10, 15, 20, 30, 40, 50}, n) {
			return response{http.StatusBadRequest, map[string]any{"error": "access_level does not have a valid value"}}
		}
		level = n
	}
	// Each resource token belongs to its own bot user.
	t := s.newToken(name, kind, target, 0, scopes, expires)
	t.UserID = 10000 + t.ID
	t.AccessLevel = level
	t.Description, _ = body["description"].(string)
	return response{http.StatusCreated, s.view(t, true)}
}

func (s *Server) createPersonal(caller *Token, user string, body map[string]any) response {
	if !caller.admin || caller.UserID != AdminUserID {
		return forbidden
	}
	if !hasScope(caller, "api") {
		return insufficientScope("api")
	}
	id, err := strconv.ParseInt(user, 10, 64)
	if err != nil || !s.users[id] {
		return response{http.StatusNotFound, msg("404 User Not Found")}
	}
	name, scopes, expires, bad := s.createParams(body, false)
	if bad != nil {
		return *bad
	}
	t := s.newToken(name, "personal", id, id, scopes, expires)
	t.Description, _ = body["description"].(string)
	return response{http.StatusCreated, s.view(t, true)}
}

// paginate writes GitLab's paging headers and returns the page.
func (s *Server) paginate(w http.ResponseWriter, r *http.Request, list []*Token) []map[string]any {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 20
	}
	per = min(per, s.maxPerPage)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page <= 0 {
		page = 1
	}
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	total := len(list)
	pages := max((total+per-1)/per, 1)
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(per))
	h.Set("X-Total", strconv.Itoa(total))
	h.Set("X-Total-Pages", strconv.Itoa(pages))
	h.Set("X-Next-Page", "")
	if page < pages {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
	}
	out := []map[string]any{}
	for i := (page - 1) * per; i < total && i < page*per; i++ {
		out = append(out, s.view(list[i], false))
	}
	return out
}

func (s *Server) filter(r *http.Request, keep func(*Token) bool) []*Token {
	q := r.URL.Query()
	var list []*Token
	for _, t := range s.tokens {
		if !keep(t) {
			continue
		}
		if v := q.Get("search"); v != "" && !strings.Contains(t.Name, v) {
			continue
		}
		switch q.Get("state") {
		case "active":
			if !s.usable(t) {
				continue
			}
		case "inactive":
			if s.usable(t) {
				continue
			}
		}
		list = append(list, t)
	}
	return list
}

func (s *Server) listResource(w http.ResponseWriter, r *http.Request, caller *Token, kind string, target int64) response {
	if !caller.admin {
		return forbidden
	}
	if !hasScope(caller, "api", "read_api") {
		return insufficientScope("api read_api")
	}
	list := s.filter(r, func(t *Token) bool { return t.Kind == kind && t.Target == target })
	return response{http.StatusOK, s.paginate(w, r, list)}
}

func (s *Server) listPersonal(w http.ResponseWriter, r *http.Request, caller *Token) response {
	if !hasScope(caller, "api", "read_api") {
		return insufficientScope("api read_api")
	}
	user := caller.UserID
	if v := r.URL.Query().Get("user_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return response{http.StatusBadRequest, map[string]any{"error": "user_id is invalid"}}
		}
		if n != caller.UserID && caller.UserID != AdminUserID {
			return unauthorized
		}
		user = n
	}
	list := s.filter(r, func(t *Token) bool { return t.Kind == "personal" && t.UserID == user })
	return response{http.StatusOK, s.paginate(w, r, list)}
}

func (s *Server) revokeResource(caller *Token, kind string, target int64, id string) response {
	if !caller.admin {
		return forbidden
	}
	if !hasScope(caller, "api") {
		return insufficientScope("api")
	}
	n, _ := strconv.ParseInt(id, 10, 64)
	t, ok := s.tokens[n]
	if !ok || t.Kind != kind || t.Target != target || t.Revoked {
		return notFound
	}
	t.Revoked = true
	return response{http.StatusNoContent, nil}
}

func (s *Server) revokePersonal(caller *Token, id string) response {
	if !hasScope(caller, "api") {
		return insufficientScope("api")
	}
	n, _ := strconv.ParseInt(id, 10, 64)
	t, ok := s.tokens[n]
	if !ok || t.Kind != "personal" || t.Revoked {
		return notFound
	}
	if t.UserID != caller.UserID && caller.UserID != AdminUserID {
		return forbidden
	}
	t.Revoked = true
	return response{http.StatusNoContent, nil}
}

// rotateSelf revokes the caller and returns its successor (same name, scopes
// and owner); without expires_at the successor lives one week.
func (s *Server) rotateSelf(caller *Token, body map[string]any) response {
	if !hasScope(caller, "api", "self_rotate") {
		return insufficientScope("api self_rotate")
	}
	expires, _ := body["expires_at"].(string)
	if expires == "" {
		expires = s.today().AddDate(0, 0, 7).Format(dateLayout)
	}
	if r := s.checkExpiry(expires); r != nil {
		return *r
	}
	caller.Revoked = true
	t := s.newToken(caller.Name, caller.Kind, caller.Target, caller.UserID, slices.Clone(caller.Scopes), expires)
	t.AccessLevel, t.Description, t.admin = caller.AccessLevel, caller.Description, caller.admin
	if caller.ID == s.rootID {
		s.rootID = t.ID
	}
	return response{http.StatusOK, s.view(t, true)}
}
