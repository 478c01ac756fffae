// Package openaitest is an in-memory stand-in for the parts of the OpenAI
// API that the openai provider uses: project service accounts (whose API key
// is the issued key), organization admin API keys, and GET /v1/models. It
// follows OpenAI's documented status codes, JSON shapes, bearer auth,
// {"error":{message,type,param,code}} errors and x-ratelimit-* headers.
// Admin keys work only on /organization endpoints and project keys only on
// the others, as on the real API.
package openaitest

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

// DefaultProjectID is the project NewServer creates.
const DefaultProjectID = "proj_vault"

// Recorded is one request as the server saw it. Auth names the credential
// instead of carrying it: "root" (the seeded admin key), "admin:<id>" (any
// other admin key), "key:<service account id>", "unknown", or "" (none).
type Recorded struct {
	Method string
	Path   string
	Query  map[string]string
	Auth   string
	Header map[string]string
	Body   map[string]any
	Status int
}

// AdminKey is an organization admin API key.
type AdminKey struct {
	ID      string
	Name    string
	Value   string
	Created time.Time
	Deleted bool
}

// ServiceAccount is a project service account with its API key.
type ServiceAccount struct {
	ID        string
	Name      string
	ProjectID string
	KeyID     string
	KeyValue  string
	Created   time.Time
	Deleted   bool
}

// Server is the fake OpenAI API.
type Server struct {
	*httptest.Server

	log fakeapi.Recorder[Recorded]

	mu          sync.Mutex
	seq         int
	projects    map[string]bool
	admins      []*AdminKey // in creation order
	accounts    []*ServiceAccount
	rootID      string
	maxPage     int
	dotRedacted bool
}

// Option configures a Server.
type Option func(*Server)

// WithProject adds a project id.
func WithProject(id string) Option { return func(s *Server) { s.projects[id] = true } }

// WithMaxPage caps list page sizes, to exercise paging.
func WithMaxPage(n int) Option { return func(s *Server) { s.maxPage = n } }

// WithDotRedaction makes redacted_value look like the reference's example
// ("sk-admin...wxyz") instead of a star mask of the key's length.
func WithDotRedaction() Option { return func(s *Server) { s.dotRedacted = true } }

// NewServer starts a fake OpenAI with project DefaultProjectID and one admin
// key (the root).
func NewServer(opts ...Option) *Server {
	s := &Server{projects: map[string]bool{DefaultProjectID: true}, maxPage: 100}
	for _, o := range opts {
		o(s)
	}
	s.rootID = s.newAdminKey("vault-root").ID
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// RootKey is the seeded admin key's value.
func (s *Server) RootKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admin(s.rootID).Value
}

// RootKeyID is the seeded admin key's id.
func (s *Server) RootKeyID() string { return s.rootID }

// AddAdminKey creates another admin key directly (as an Owner would in the
// dashboard) and returns it.
func (s *Server) AddAdminKey(name string) AdminKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.newAdminKey(name)
}

// AddAdminKeyWithValue creates an admin key with a chosen value, e.g. one
// whose redacted form collides with another key's.
func (s *Server) AddAdminKeyWithValue(name, value string) AdminKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := &AdminKey{ID: s.nextID("key_"), Name: name, Value: value, Created: time.Now()}
	s.admins = append(s.admins, k)
	return *k
}

// LiveAdminKeys returns the admin keys not deleted.
func (s *Server) LiveAdminKeys() []AdminKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AdminKey
	for _, k := range s.admins {
		if !k.Deleted {
			out = append(out, *k)
		}
	}
	return out
}

// LiveKeys returns the service accounts (issued keys) not deleted.
func (s *Server) LiveKeys() []ServiceAccount {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ServiceAccount
	for _, a := range s.accounts {
		if !a.Deleted {
			out = append(out, *a)
		}
	}
	return out
}

// IsLive reports whether secret is a live admin or service account key.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, sa := s.bySecret(secret)
	return a != nil || sa != nil
}

// FailNext answers the next n requests with status (429s carry
// Retry-After: 1).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.log.ResetRequests() }

func (s *Server) random(n int) string { return fakeapi.Hex(n) }

func (s *Server) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%04d%s", prefix, s.seq, s.random(3))
}

func (s *Server) newAdminKey(name string) *AdminKey {
	k := &AdminKey{ID: s.nextID("key_"), Name: name, Value: "sk-admin-" + s.random(24), Created: time.Now()}
	s.admins = append(s.admins, k)
	return k
}

func (s *Server) admin(id string) *AdminKey {
	for _, k := range s.admins {
		if k.ID == id {
			return k
		}
	}
	return nil
}

func (s *Server) bySecret(secret string) (*AdminKey, *ServiceAccount) {
	if secret == "" {
		return nil, nil
	}
	for _, k := range s.admins {
		if k.Value == secret && !k.Deleted {
			return k, nil
		}
	}
	for _, a := range s.accounts {
		if a.KeyValue == secret && !a.Deleted {
			return nil, a
		}
	}
	return nil, nil
}

// mask renders a key the way the API echoes it in errors.
func mask(secret string) string {
	if len(secret) < 12 {
		return "sk-***"
	}
	return secret[:7] + strings.Repeat("*", 10) + secret[len(secret)-4:]
}

func (s *Server) redacted(k *AdminKey) string {
	if s.dotRedacted {
		return k.Value[:8] + "..." + k.Value[len(k.Value)-4:]
	}
	return k.Value[:8] + strings.Repeat("*", len(k.Value)-12) + k.Value[len(k.Value)-4:]
}

type response struct {
	status int
	body   any
}

func apiError(status int, message, typ string, param, code any) response {
	return response{status, map[string]any{"error": map[string]any{"message": message, "type": typ, "param": param, "code": code}}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	secret, hasAuth := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	adminKey, account := s.bySecret(secret)
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: map[string]string{},
		Header: map[string]string{"Content-Type": r.Header.Get("Content-Type"), "User-Agent": r.Header.Get("User-Agent")}}
	for k := range r.URL.Query() {
		rec.Query[k] = r.URL.Query().Get(k)
	}
	switch {
	case !hasAuth:
	case adminKey != nil && adminKey.ID == s.rootID:
		rec.Auth = "root"
	case adminKey != nil:
		rec.Auth = "admin:" + adminKey.ID
	case account != nil:
		rec.Auth = "key:" + account.ID
	default:
		rec.Auth = "unknown"
	}
	body, validJSON := fakeapi.DecodeBody(r)
	rec.Body = body

	h := w.Header()
	h.Set("x-ratelimit-limit-requests", "500")
	h.Set("x-ratelimit-remaining-requests", strconv.Itoa(500-s.log.Len()%500))
	h.Set("x-ratelimit-reset-requests", "120ms")

	var resp response
	failure := s.log.Fail(w)
	switch {
	case failure == http.StatusTooManyRequests:
		h.Set("x-ratelimit-remaining-requests", "0")
		resp = apiError(failure, "Rate limit reached for requests", "requests", nil, "rate_limit_exceeded")
	case failure != 0:
		resp = apiError(failure, "The server had an error while processing your request. Sorry about that!",
			"server_error", nil, nil)
	case adminKey == nil && account == nil:
		m := "You didn't provide an API key."
		if hasAuth {
			m = "Incorrect API key provided: " + mask(secret) + ". You can find your API key at https://platform.openai.com/account/api-keys."
		}
		resp = apiError(http.StatusUnauthorized, m, "invalid_request_error", nil, "invalid_api_key")
	case !validJSON:
		resp = apiError(http.StatusBadRequest, "We could not parse the JSON body of your request.", "invalid_request_error", nil, nil)
	default:
		resp = s.route(r, adminKey, body)
	}
	rec.Status = resp.status
	s.log.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) route(r *http.Request, adminKey *AdminKey, body map[string]any) response {
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		return apiError(http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", nil, nil)
	}
	seg := strings.Split(path, "/")
	isAdminPath := seg[0] == "organization"
	if isAdminPath && adminKey == nil {
		return apiError(http.StatusForbidden, "You have insufficient permissions for this operation. Missing scopes: api.management.read.",
			"invalid_request_error", nil, nil)
	}
	if !isAdminPath && adminKey != nil {
		return apiError(http.StatusForbidden, "Admin API keys can only be used with the organization administration endpoints.",
			"invalid_request_error", nil, nil)
	}
	switch {
	case path == "models" && r.Method == http.MethodGet:
		return response{http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{
			{"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"}}}}
	case path == "organization/admin_api_keys" && r.Method == http.MethodPost:
		name, _ := body["name"].(string)
		if strings.TrimSpace(name) == "" {
			return apiError(http.StatusBadRequest, "Missing required parameter: 'name'.", "invalid_request_error", "name", nil)
		}
		k := s.newAdminKey(name)
		v := s.adminView(k)
		v["value"] = k.Value
		return response{http.StatusOK, v}
	case path == "organization/admin_api_keys" && r.Method == http.MethodGet:
		var list []map[string]any
		for _, k := range s.admins {
			if !k.Deleted {
				list = append(list, s.adminView(k))
			}
		}
		return s.page(r, list)
	case len(seg) == 3 && seg[1] == "admin_api_keys":
		k := s.admin(seg[2])
		if k == nil || k.Deleted {
			return apiError(http.StatusNotFound, "No such admin API key: "+seg[2], "invalid_request_error", nil, nil)
		}
		switch r.Method {
		case http.MethodGet:
			return response{http.StatusOK, s.adminView(k)}
		case http.MethodDelete:
			k.Deleted = true
			return response{http.StatusOK, map[string]any{"id": k.ID, "object": "organization.admin_api_key.deleted", "deleted": true}}
		}
	case len(seg) >= 4 && seg[1] == "projects" && seg[3] == "service_accounts":
		if !s.projects[seg[2]] {
			return apiError(http.StatusNotFound, "No such project: "+seg[2], "invalid_request_error", nil, nil)
		}
		return s.serviceAccounts(r, seg[2], seg[4:], body)
	}
	return apiError(http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", nil, nil)
}

func (s *Server) adminView(k *AdminKey) map[string]any {
	return map[string]any{
		"object": "organization.admin_api_key", "id": k.ID, "name": k.Name, "redacted_value": s.redacted(k),
		"created_at": k.Created.Unix(), "expires_at": nil, "last_used_at": nil,
		"owner": map[string]any{"type": "user", "object": "organization.user", "id": "user-vault", "name": "Vault Owner", "role": "owner"},
	}
}

func accountView(a *ServiceAccount) map[string]any {
	return map[string]any{"object": "organization.project.service_account", "id": a.ID, "name": a.Name,
		"role": "member", "created_at": a.Created.Unix()}
}

// page applies limit/after paging to list (ordered by creation).
func (s *Server) page(r *http.Request, list []map[string]any) response {
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = 20
	}
	limit = min(limit, s.maxPage)
	start := 0
	if after := r.URL.Query().Get("after"); after != "" {
		for i, v := range list {
			if v["id"] == after {
				start = i + 1
			}
		}
	}
	end := min(start+limit, len(list))
	data := []map[string]any{}
	if start < len(list) {
		data = list[start:end]
	}
	out := map[string]any{"object": "list", "data": data, "has_more": end < len(list), "first_id": nil, "last_id": nil}
	if len(data) > 0 {
		out["first_id"], out["last_id"] = data[0]["id"], data[len(data)-1]["id"]
	}
	return response{http.StatusOK, out}
}

func (s *Server) serviceAccounts(r *http.Request, project string, rest []string, body map[string]any) response {
	switch {
	case len(rest) == 0 && r.Method == http.MethodPost:
		name, _ := body["name"].(string)
		if strings.TrimSpace(name) == "" {
			return apiError(http.StatusBadRequest, "Missing required parameter: 'name'.", "invalid_request_error", "name", nil)
		}
		a := &ServiceAccount{ID: s.nextID("svc_acct_"), Name: name, ProjectID: project, KeyID: s.nextID("key_"),
			KeyValue: "sk-svcacct-" + s.random(24), Created: time.Now()}
		s.accounts = append(s.accounts, a)
		v := accountView(a)
		v["api_key"] = map[string]any{"object": "organization.project.service_account.api_key", "value": a.KeyValue,
			"name": "Secret Key", "created_at": a.Created.Unix(), "id": a.KeyID}
		return response{http.StatusOK, v}
	case len(rest) == 0 && r.Method == http.MethodGet:
		var list []map[string]any
		for _, a := range s.accounts {
			if a.ProjectID == project && !a.Deleted {
				list = append(list, accountView(a))
			}
		}
		return s.page(r, list)
	case len(rest) == 1:
		var a *ServiceAccount
		for _, x := range s.accounts {
			if x.ID == rest[0] && x.ProjectID == project && !x.Deleted {
				a = x
			}
		}
		if a == nil {
			return apiError(http.StatusNotFound, "No such service account: "+rest[0], "invalid_request_error", nil, nil)
		}
		switch r.Method {
		case http.MethodGet:
			return response{http.StatusOK, accountView(a)}
		case http.MethodDelete:
			a.Deleted = true
			return response{http.StatusOK, map[string]any{"object": "organization.project.service_account.deleted", "id": a.ID, "deleted": true}}
		}
	}
	return apiError(http.StatusMethodNotAllowed, "Method not allowed", "invalid_request_error", nil, nil)
}
