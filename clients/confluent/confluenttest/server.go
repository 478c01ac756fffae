// Package confluenttest is an in-memory stand-in for the parts of the
// Confluent Cloud IAM API v2 that the confluent provider uses: API keys
// (create with 202 Accepted and Location, get, list, delete). It follows
// Confluent's documented HTTP Basic auth with a Cloud API key,
// {"errors":[{status, code, title, detail}]} errors, the 402 answer when
// the organization's API key quota is exhausted, page_size/page_token
// paging, and X-RateLimit-* (reset in seconds) and Retry-After headers. Only Cloud API keys (no
// resource) authenticate to this API; keys of a Kafka cluster or Schema
// Registry do not, as on Confluent Cloud.
package confluenttest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Seeded owners and resources.
const (
	// AdminAccount owns the root key and may manage API keys.
	AdminAccount = "sa-vault01"
	// AppAccount owns issued keys; its Cloud keys authenticate but may not
	// manage API keys.
	AppAccount = "sa-app001"
	// Cluster is a Kafka cluster that keys can be scoped to.
	Cluster = "lkc-abc123"
)

// Recorded is one request as the server saw it. Auth names the key instead
// of carrying it: "root" (the seeded key), "key:<id>" (any other),
// "unknown", or "" (none).
type Recorded struct {
	Method string
	Path   string
	Query  map[string]string
	Auth   string
	Body   map[string]any
	Status int
}

// Key is an API key.
type Key struct {
	ID          string
	Secret      string
	Owner       string
	Resource    string // "" for a Cloud API key
	DisplayName string
	Description string
	Created     time.Time
	Deleted     bool
}

// Server is the fake Confluent Cloud API.
type Server struct {
	*httptest.Server
	log fakeapi.Recorder[Recorded]

	mu      sync.Mutex
	keys    []*Key
	rootID  string
	quota   int
	maxPage int
}

// Option configures a Server.
type Option func(*Server)

// WithQuota caps the live API keys; a create beyond it is a 402.
func WithQuota(n int) Option { return func(s *Server) { s.quota = n } }

// WithMaxPage caps page_size, to exercise paging.
func WithMaxPage(n int) Option { return func(s *Server) { s.maxPage = n } }

// NewServer starts a fake with one Cloud API key of AdminAccount (the root).
func NewServer(opts ...Option) *Server {
	s := &Server{quota: 1000, maxPage: 100}
	for _, o := range opts {
		o(s)
	}
	s.rootID = s.newKey(AdminAccount, "", "vault-root", "").ID
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Root returns the seeded key.
func (s *Server) Root() Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.byID(s.rootID)
}

// LiveKeys returns the keys not deleted.
func (s *Server) LiveKeys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Key
	for _, k := range s.keys {
		if !k.Deleted {
			out = append(out, *k)
		}
	}
	return out
}

// IsLive reports whether secret is the secret of a live key.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if !k.Deleted && secret != "" && k.Secret == secret {
			return true
		}
	}
	return false
}

// FailNext answers the next n requests with status (a 429 carries
// Retry-After: 1).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// LoseNextCreate makes the next create store the key and then answer 500,
// as when the answer is lost.
func (s *Server) LoseNextCreate() { s.log.LoseNextCreate() }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.log.ResetRequests() }

func (s *Server) newKey(owner, resource, name, desc string) *Key {
	k := &Key{ID: strings.ToUpper(fakeapi.Hex(8)), Secret: fakeapi.Hex(32), Owner: owner, Resource: resource,
		DisplayName: name, Description: desc, Created: time.Now().UTC()}
	s.keys = append(s.keys, k)
	return k
}

func (s *Server) byID(id string) *Key {
	for _, k := range s.keys {
		if k.ID == id && !k.Deleted {
			return k
		}
	}
	return nil
}

type response struct {
	status int
	header map[string]string
	body   any
}

func apiError(status int, code, detail string) response {
	return response{status: status, body: map[string]any{"errors": []any{map[string]any{
		"status": strconv.Itoa(status), "code": code, "title": http.StatusText(status), "detail": detail}}}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, validJSON := fakeapi.DecodeBody(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	user, pass, hasAuth := r.BasicAuth()
	caller := s.byID(user)
	if caller != nil && (caller.Secret != pass || caller.Resource != "") {
		caller = nil // a wrong secret, or a key of a cluster: not a Cloud API credential
	}
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
		rec.Auth = "key:" + caller.ID
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", "60")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(60-s.log.Len()%60))
	h.Set("X-RateLimit-Reset", "30")

	var resp response
	switch failure := s.log.Fail(w); {
	case failure == http.StatusTooManyRequests:
		h.Set("X-RateLimit-Remaining", "0")
		resp = apiError(failure, "too_many_requests", "Too many requests")
	case failure != 0:
		resp = apiError(failure, "server_error", "Oops, something went wrong")
	case caller == nil:
		resp = apiError(http.StatusUnauthorized, "unauthorized", "Unauthorized")
	case !validJSON:
		resp = apiError(http.StatusBadRequest, "invalid_input", "Malformed request body")
	default:
		resp = s.route(r, caller, body)
	}
	rec.Status = resp.status
	s.log.Record(rec)
	for k, v := range resp.header {
		h.Set(k, v)
	}
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) view(k *Key, withSecret bool) map[string]any {
	spec := map[string]any{"display_name": k.DisplayName, "description": k.Description,
		"owner": map[string]any{"id": k.Owner, "kind": "ServiceAccount", "api_version": "iam/v2"}}
	if k.Resource != "" {
		spec["resource"] = map[string]any{"id": k.Resource, "kind": "Cluster", "api_version": "cmk/v2"}
	} else {
		spec["resource"] = map[string]any{"id": "cloud", "kind": "Cloud"}
	}
	if withSecret {
		spec["secret"] = k.Secret
	}
	return map[string]any{"api_version": "iam/v2", "kind": "ApiKey", "id": k.ID, "spec": spec,
		"metadata": map[string]any{"self": s.URL + "/iam/v2/api-keys/" + k.ID, "created_at": k.Created.Format(time.RFC3339)}}
}

func (s *Server) route(r *http.Request, caller *Key, body map[string]any) response {
	const base = "/iam/v2/api-keys"
	if caller.Owner != AdminAccount {
		// Authenticated, but without OrganizationAdmin.
		return apiError(http.StatusForbidden, "forbidden", "Forbidden Access")
	}
	switch {
	case r.URL.Path == base && r.Method == http.MethodPost:
		spec, _ := body["spec"].(map[string]any)
		owner, _ := spec["owner"].(map[string]any)
		ownerID, _ := owner["id"].(string)
		if ownerID != AdminAccount && ownerID != AppAccount {
			return apiError(http.StatusBadRequest, "invalid_input", "Invalid owner id: "+ownerID)
		}
		resourceID := ""
		if res, ok := spec["resource"].(map[string]any); ok {
			resourceID, _ = res["id"].(string)
			if resourceID != Cluster {
				return apiError(http.StatusNotFound, "resource_not_found", "Resource "+resourceID+" was not found")
			}
		}
		live := 0
		for _, k := range s.keys {
			if !k.Deleted {
				live++
			}
		}
		if live >= s.quota {
			return apiError(http.StatusPaymentRequired, "quota_exceeded", "Your organization has reached its limit of API keys")
		}
		name, _ := spec["display_name"].(string)
		desc, _ := spec["description"].(string)
		k := s.newKey(ownerID, resourceID, name, desc)
		if s.log.CreateLost() {
			return apiError(http.StatusInternalServerError, "server_error", "Oops, something went wrong")
		}
		return response{status: http.StatusAccepted, header: map[string]string{"Location": s.URL + base + "/" + k.ID}, body: s.view(k, true)}
	case r.URL.Path == base && r.Method == http.MethodGet:
		return s.list(r)
	case strings.HasPrefix(r.URL.Path, base+"/"):
		k := s.byID(strings.TrimPrefix(r.URL.Path, base+"/"))
		if k == nil {
			return apiError(http.StatusNotFound, "not_found", "API key not found")
		}
		switch r.Method {
		case http.MethodGet:
			return response{status: http.StatusOK, body: s.view(k, false)}
		case http.MethodDelete:
			k.Deleted = true
			return response{status: http.StatusNoContent}
		}
	}
	return apiError(http.StatusNotFound, "not_found", "Not found")
}

func (s *Server) list(r *http.Request) response {
	q := r.URL.Query()
	var all []map[string]any
	for _, k := range s.keys {
		if k.Deleted || (q.Get("spec.owner") != "" && q.Get("spec.owner") != k.Owner) {
			continue
		}
		all = append(all, s.view(k, false))
	}
	size, err := strconv.Atoi(q.Get("page_size"))
	if err != nil || size < 1 {
		size = 10
	}
	size = min(size, s.maxPage)
	start, _ := strconv.Atoi(q.Get("page_token"))
	start = min(max(start, 0), len(all))
	end := min(start+size, len(all))
	meta := map[string]any{"total_size": len(all)}
	if end < len(all) {
		meta["next"] = s.URL + "/iam/v2/api-keys?page_size=" + strconv.Itoa(size) + "&page_token=" + strconv.Itoa(end)
	}
	data := all[start:end]
	if data == nil {
		data = []map[string]any{}
	}
	return response{status: http.StatusOK, body: map[string]any{"api_version": "iam/v2", "kind": "ApiKeyList", "metadata": meta, "data": data}}
}
