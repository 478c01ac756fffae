// Package mailguntest is an in-memory stand-in for the parts of Mailgun's
// API that the mailgun provider uses: RBAC API keys (/v1/keys: create with a
// multipart form, list, delete) and GET /v3/domains. It follows Mailgun's
// documented Basic auth (user "api", the key as password), multipart form
// bodies, {"message"} errors, key expiration in seconds, and the rule that
// only admin keys manage keys. Mailgun's reference leaves the delete's
// answers open; the fake answers 200 {"message":"key deleted"} and 404
// {"message":"no key matching id"}, the shapes assumed in
// docs/providers/mailgun.md.
package mailguntest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Domain is the sending domain the fake knows.
const Domain = "mg.example.com"

// Recorded is one request as the server saw it. Auth names the key instead
// of carrying it: "root" (the seeded admin key), "key:<id>" (any other),
// "unknown", or "" (none). Form holds a multipart form's fields.
type Recorded struct {
	Method      string
	Path        string
	Auth        string
	ContentType string
	Form        map[string]string
	Status      int
}

// Key is an API key.
type Key struct {
	ID          string
	Secret      string
	Role        string
	Kind        string
	DomainName  string
	Description string
	Expires     time.Time // zero: never
	Created     time.Time
	Deleted     bool
}

// Server is the fake Mailgun API.
type Server struct {
	*httptest.Server
	log fakeapi.Recorder[Recorded]

	mu     sync.Mutex
	keys   []*Key
	rootID string
}

// NewServer starts a fake with one admin user key (the root).
func NewServer() *Server {
	s := &Server{}
	s.rootID = s.newKey("admin", "user", "", "vault-root", 0).ID
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Root returns the seeded admin key.
func (s *Server) Root() Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.byID(s.rootID)
}

// LiveKeys returns the keys neither deleted nor expired.
func (s *Server) LiveKeys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Key
	for _, k := range s.keys {
		if live(k) {
			out = append(out, *k)
		}
	}
	return out
}

// IsLive reports whether secret is a live key.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bySecret(secret) != nil
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

func live(k *Key) bool { return !k.Deleted && (k.Expires.IsZero() || time.Now().Before(k.Expires)) }

func (s *Server) newKey(role, kind, domain, desc string, expiration int) *Key {
	k := &Key{ID: fakeapi.Hex(4) + "-" + fakeapi.Hex(4), Secret: fakeapi.Hex(16) + "-" + fakeapi.Hex(4) + "-" + fakeapi.Hex(4),
		Role: role, Kind: kind, DomainName: domain, Description: desc, Created: time.Now().UTC()}
	if expiration > 0 {
		k.Expires = time.Now().Add(time.Duration(expiration) * time.Second)
	}
	s.keys = append(s.keys, k)
	return k
}

func (s *Server) byID(id string) *Key {
	for _, k := range s.keys {
		if k.ID == id && live(k) {
			return k
		}
	}
	return nil
}

func (s *Server) bySecret(secret string) *Key {
	for _, k := range s.keys {
		if secret != "" && k.Secret == secret && live(k) {
			return k
		}
	}
	return nil
}

type response struct {
	status int
	body   any
}

func message(status int, m string) response { return response{status, map[string]any{"message": m}} }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	form := map[string]string{}
	formOK := true
	if r.Method == http.MethodPost {
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			formOK = false
		} else {
			for k, v := range r.MultipartForm.Value {
				form[k] = v[0]
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	user, pass, hasAuth := r.BasicAuth()
	var caller *Key
	if user == "api" {
		caller = s.bySecret(pass)
	}
	rec := Recorded{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Form: form}
	switch {
	case !hasAuth:
	case caller == nil:
		rec.Auth = "unknown"
	case caller.ID == s.rootID:
		rec.Auth = "root"
	default:
		rec.Auth = "key:" + caller.ID
	}
	var resp response
	switch failure := s.log.Fail(w); {
	case failure == http.StatusTooManyRequests:
		resp = message(failure, "Too many requests")
	case failure != 0:
		resp = message(failure, "Internal Server Error")
	case caller == nil:
		// Mailgun answers a bad key with a bare 401 "Forbidden".
		rec.Status = http.StatusUnauthorized
		s.log.Record(rec)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("Forbidden"))
		return
	case !formOK:
		resp = message(http.StatusBadRequest, "expected a multipart/form-data body")
	default:
		resp = s.route(r, caller, form)
	}
	rec.Status = resp.status
	s.log.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func view(k *Key, withSecret bool) map[string]any {
	v := map[string]any{"id": k.ID, "description": k.Description, "kind": k.Kind, "role": k.Role,
		"created_at": k.Created.Format("2006-01-02T15:04:05"), "updated_at": k.Created.Format("2006-01-02T15:04:05"), "domain_name": nil, "requestor": "vault@example.com",
		"user_name": nil, "expires_at": nil, "is_disabled": false}
	if k.DomainName != "" {
		v["domain_name"] = k.DomainName
	}
	if !k.Expires.IsZero() {
		v["expires_at"] = k.Expires.UTC().Format("2006-01-02T15:04:05")
	}
	if withSecret {
		v["secret"] = k.Secret
	}
	return v
}

func (s *Server) route(r *http.Request, caller *Key, form map[string]string) response {
	switch {
	case r.URL.Path == "/v3/domains" && r.Method == http.MethodGet:
		if caller.Kind == "domain" {
			return message(http.StatusForbidden, "Forbidden: this key is restricted to domain "+caller.DomainName)
		}
		return response{http.StatusOK, map[string]any{"total_count": 1, "items": []any{map[string]any{"name": Domain, "state": "active"}}}}
	case strings.HasPrefix(r.URL.Path, "/v1/keys") && caller.Role != "admin":
		return message(http.StatusForbidden, "Forbidden: insufficient role")
	case r.URL.Path == "/v1/keys" && r.Method == http.MethodPost:
		role, kind := form["role"], form["kind"]
		if kind == "" {
			kind = "user"
		}
		if !slices.Contains([]string{"admin", "basic", "sending", "developer", "support"}, role) {
			return message(http.StatusBadRequest, "invalid role: "+role)
		}
		if !slices.Contains([]string{"domain", "user", "web"}, kind) {
			return message(http.StatusBadRequest, "invalid kind: "+kind)
		}
		if kind == "domain" && form["domain_name"] != Domain {
			return message(http.StatusNotFound, "domain not found: "+form["domain_name"])
		}
		exp := 0
		if v, ok := form["expiration"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return message(http.StatusBadRequest, "expiration must be greater than 0")
			}
			exp = n
		}
		k := s.newKey(role, kind, form["domain_name"], form["description"], exp)
		if s.log.CreateLost() {
			return message(http.StatusInternalServerError, "Internal Server Error")
		}
		return response{http.StatusOK, map[string]any{"message": "great success", "key": view(k, true)}}
	case r.URL.Path == "/v1/keys" && r.Method == http.MethodGet:
		items := []any{}
		for _, k := range s.keys {
			if live(k) {
				items = append(items, view(k, false))
			}
		}
		return response{http.StatusOK, map[string]any{"items": items, "total_count": len(items)}}
	case strings.HasPrefix(r.URL.Path, "/v1/keys/") && r.Method == http.MethodDelete:
		k := s.byID(strings.TrimPrefix(r.URL.Path, "/v1/keys/"))
		if k == nil {
			return message(http.StatusNotFound, "no key matching id")
		}
		k.Deleted = true
		return message(http.StatusOK, "key deleted")
	}
	return message(http.StatusNotFound, fmt.Sprintf("not found: %s %s", r.Method, r.URL.Path))
}
