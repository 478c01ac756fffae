// Package sendgridtest is an in-memory fake of the SendGrid v3 API-key
// endpoints (create, list, get, delete, scopes) for tests, including the
// e2e suite that drives it through a real Vault.
package sendgridtest

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

// AllScopes is what a full-access key holds in this fake.
var AllScopes = []string{
	"alerts.create", "alerts.read", "alerts.update", "alerts.delete",
	"api_keys.create", "api_keys.read", "api_keys.update", "api_keys.delete",
	"mail.send", "mail_settings.read", "stats.read", "suppression.read",
	"templates.create", "templates.read", "templates.update", "templates.delete",
}

// autoScopes are added by SendGrid to every key it creates.
var autoScopes = []string{"2fa_required", "sender_verification_eligible"}

// DefaultKeyLimit is SendGrid's documented per-account key limit.
const DefaultKeyLimit = 100

// Recorded is one request the server received. Auth names the credential
// used instead of carrying it: "root" (the seeded root key), "key:<id>",
// "invalid" or "" when none was sent.
type Recorded struct {
	Method     string
	Path       string
	Query      url.Values
	Auth       string
	OnBehalfOf string
	Body       map[string]any
}

// Key is a live key as the fake stores it.
type Key struct {
	ID     string
	Name   string
	Secret string
	Owner  string // "" for the parent account, else the on-behalf-of value
	Scopes []string
}

// Server is the fake SendGrid API.
type Server struct {
	*httptest.Server

	log fakeapi.Recorder[Recorded]

	mu     sync.Mutex
	keys   map[string]*Key // by id
	rootID string
	limit  int
}

// Option configures a Server.
type Option func(*Server)

// WithRootScopes sets the seeded root key's scopes (default AllScopes).
func WithRootScopes(scopes ...string) Option {
	return func(s *Server) { s.keys[s.rootID].Scopes = withAuto(scopes) }
}

// WithKeyLimit overrides the 100-key account limit.
func WithKeyLimit(n int) Option { return func(s *Server) { s.limit = n } }

// NewServer starts a fake seeded with one root key (see RootKey).
func NewServer(opts ...Option) *Server {
	s := &Server{keys: map[string]*Key{}, limit: DefaultKeyLimit}
	root := newKey("vault-root", "", withAuto(AllScopes))
	s.keys[root.ID] = root
	s.rootID = root.ID
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func withAuto(scopes []string) []string {
	out := append([]string(nil), scopes...)
	for _, a := range autoScopes {
		if !contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func randString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func newKey(name, owner string, scopes []string) *Key {
	id := randString(22)
	return &Key{ID: id, Name: name, Owner: owner, Scopes: scopes, Secret: "SG." + id + "." + randString(43)}
}

// RootKey is the seeded root key's secret.
func (s *Server) RootKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.findByID(s.rootID); k != nil {
		return k.Secret
	}
	return ""
}

// RootKeyID is the seeded root key's id.
func (s *Server) RootKeyID() string { return s.rootID }

// AdminKeys returns the secrets of live parent-account keys that can create
// and delete keys: the current root credential(s).
func (s *Server) AdminKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range s.keys {
		if k.Owner == "" && contains(k.Scopes, "api_keys.create") && contains(k.Scopes, "api_keys.delete") {
			out = append(out, k.Secret)
		}
	}
	sort.Strings(out)
	return out
}

// FailNext answers the next n requests with status (429s carry Retry-After: 1
// and the rate-limit headers).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// LiveKeys returns a copy of every live key, the root included.
func (s *Server) LiveKeys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Key, 0, len(s.keys))
	for _, k := range s.keys {
		c := *k
		c.Scopes = append([]string(nil), k.Scopes...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IsLive reports whether secret is a live key.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.findBySecret(secret) != nil
}

func (s *Server) findByID(id string) *Key { return s.keys[id] }

func (s *Server) findBySecret(secret string) *Key {
	for _, k := range s.keys {
		if k.Secret == secret {
			return k
		}
	}
	return nil
}

type errorItem struct {
	Field   *string `json:"field"`
	Message string  `json:"message"`
}

func writeError(w http.ResponseWriter, status int, field, msg string) {
	item := errorItem{Message: msg}
	if field != "" {
		item.Field = &field
	}
	fakeapi.WriteJSON(w, status, map[string]any{"errors": []errorItem{item}})
}

func rateHeaders(w http.ResponseWriter, remaining int) {
	w.Header().Set("X-RateLimit-Limit", "600")
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, body := fakeapi.ReadJSON(r)
	s.mu.Lock()
	defer s.mu.Unlock()

	caller := s.caller(r)
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), OnBehalfOf: r.Header.Get("On-Behalf-Of")}
	switch {
	case r.Header.Get("Authorization") == "":
	case caller == nil:
		rec.Auth = "invalid"
	case caller.ID == s.rootID:
		rec.Auth = "root"
	default:
		rec.Auth = "key:" + caller.ID
	}
	rec.Body = body
	s.log.Record(rec)

	if status := s.log.Fail(w); status != 0 {
		msg := "internal error"
		if status == http.StatusTooManyRequests {
			rateHeaders(w, 0)
			msg = "too many requests"
		}
		writeError(w, status, "", msg)
		return
	}
	rateHeaders(w, 599)

	if caller == nil {
		writeError(w, http.StatusUnauthorized, "", "authorization required")
		return
	}
	owner := caller.Owner
	if rec.OnBehalfOf != "" {
		if caller.Owner != "" {
			writeError(w, http.StatusForbidden, "", "subuser keys cannot act on behalf of others")
			return
		}
		owner = rec.OnBehalfOf
	}

	switch {
	case r.URL.Path == "/v3/scopes" && r.Method == http.MethodGet:
		fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"scopes": caller.Scopes})

	case r.URL.Path == "/v3/api_keys" && r.Method == http.MethodPost:
		if !contains(caller.Scopes, "api_keys.create") {
			writeError(w, http.StatusForbidden, "", "access forbidden")
			return
		}
		var in struct {
			Name   string   `json:"name"`
			Scopes []string `json:"scopes"`
		}
		if err := json.Unmarshal(raw, &in); err != nil {
			writeError(w, http.StatusBadRequest, "", "invalid JSON body")
			return
		}
		if in.Name == "" {
			writeError(w, http.StatusBadRequest, "name", "missing required argument")
			return
		}
		n := 0
		for _, k := range s.keys {
			if k.Owner == owner {
				n++
			}
		}
		if n >= s.limit {
			writeError(w, http.StatusForbidden, "", fmt.Sprintf("cannot create more than %d API keys", s.limit))
			return
		}
		scopes := in.Scopes
		if len(scopes) == 0 {
			scopes = AllScopes
		}
		k := newKey(in.Name, owner, withAuto(scopes))
		s.keys[k.ID] = k
		fakeapi.WriteJSON(w, http.StatusCreated, map[string]any{
			"api_key_id": k.ID, "api_key": k.Secret, "name": k.Name, "scopes": k.Scopes,
		})

	case r.URL.Path == "/v3/api_keys" && r.Method == http.MethodGet:
		if !contains(caller.Scopes, "api_keys.read") {
			writeError(w, http.StatusForbidden, "", "access forbidden")
			return
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		var result []map[string]any
		for _, k := range s.sortedKeys(owner) {
			if limit > 0 && len(result) >= limit {
				break
			}
			result = append(result, map[string]any{"api_key_id": k.ID, "name": k.Name})
		}
		if result == nil {
			result = []map[string]any{}
		}
		fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"result": result})

	case strings.HasPrefix(r.URL.Path, "/v3/api_keys/"):
		id := strings.TrimPrefix(r.URL.Path, "/v3/api_keys/")
		k := s.keys[id]
		if k != nil && k.Owner != owner {
			k = nil
		}
		switch r.Method {
		case http.MethodGet:
			if !contains(caller.Scopes, "api_keys.read") {
				writeError(w, http.StatusForbidden, "", "access forbidden")
				return
			}
			if k == nil {
				writeError(w, http.StatusNotFound, "", "unable to find API Key")
				return
			}
			fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"api_key_id": k.ID, "name": k.Name, "scopes": k.Scopes})
		case http.MethodDelete:
			if !contains(caller.Scopes, "api_keys.delete") {
				writeError(w, http.StatusForbidden, "", "access forbidden")
				return
			}
			if k == nil {
				writeError(w, http.StatusNotFound, "", "unable to find API Key")
				return
			}
			delete(s.keys, id)
			w.WriteHeader(http.StatusNoContent)
		default:
			writeError(w, http.StatusMethodNotAllowed, "", "method not allowed")
		}

	default:
		writeError(w, http.StatusNotFound, "", "not found")
	}
}

func (s *Server) caller(r *http.Request) *Key {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") {
		return nil
	}
	return s.findBySecret(strings.TrimPrefix(h, "Bearer "))
}

func (s *Server) sortedKeys(owner string) []*Key {
	var out []*Key
	for _, k := range s.keys {
		if k.Owner == owner {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
