// Package datadogtest is an in-memory fake of Datadog's key-management API
// (API keys, current-user application keys, validation endpoints) for tests,
// including the e2e suite that drives it through a real Vault.
package datadogtest

import (
	"encoding/json"
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

// Recorded is one request the server received. APIKey and AppKey name the
// credentials instead of carrying them: "root" (the seeded pair),
// "key:<id>", "invalid", or "" when the header was absent.
type Recorded struct {
	Method string
	Path   string
	Query  url.Values
	APIKey string
	AppKey string
	Body   map[string]any
}

// Key is a live API key or application key.
type Key struct {
	ID      string
	Kind    string // "api_key" or "application_key"
	Name    string
	Secret  string
	Owner   string   // application keys: the user
	Scopes  []string // application keys: nil = the user's full permissions
	Created time.Time
	Attrs   map[string]any // extra attributes sent on create
}

// Server is the fake Datadog API.
type Server struct {
	*httptest.Server

	log fakeapi.Recorder[Recorded]

	mu        sync.Mutex
	keys      map[string]*Key
	rootAPIID string
	rootAppID string
}

// Option configures a Server.
type Option func(*Server)

// WithRootAppKeyScopes restricts the seeded application key to scopes.
func WithRootAppKeyScopes(scopes ...string) Option {
	return func(s *Server) { s.keys[s.rootAppID].Scopes = append([]string{}, scopes...) }
}

const rootUser = "user-vault"

// NewServer starts a fake organization seeded with a root API key and a root
// application key (owned by one user, unscoped).
func NewServer(opts ...Option) *Server {
	s := &Server{keys: map[string]*Key{}}
	api := s.add("api_key", "vault-root", rootUser, nil)
	app := s.add("application_key", "vault-root", rootUser, nil)
	s.rootAPIID, s.rootAppID = api.ID, app.ID
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func uuid() string {
	h := fakeapi.Hex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) add(kind, name, owner string, scopes []string) *Key {
	secret := fakeapi.Hex(16) // API keys: 32 hex characters
	if kind == "application_key" {
		secret = fakeapi.Hex(20) // application keys: 40
	}
	k := &Key{ID: uuid(), Kind: kind, Name: name, Secret: secret, Owner: owner, Scopes: scopes, Created: time.Now().UTC()}
	s.keys[k.ID] = k
	return k
}

// RootAPIKey is the seeded API key's secret ("" once deleted).
func (s *Server) RootAPIKey() string { return s.secretOf(s.rootAPIID) }

// RootAppKey is the seeded application key's secret ("" once deleted).
func (s *Server) RootAppKey() string { return s.secretOf(s.rootAppID) }

// RootAPIKeyID and RootAppKeyID are the seeded keys' ids.
func (s *Server) RootAPIKeyID() string { return s.rootAPIID }

// RootAppKeyID is the seeded application key's id.
func (s *Server) RootAppKeyID() string { return s.rootAppID }

func (s *Server) secretOf(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[id]; k != nil {
		return k.Secret
	}
	return ""
}

// FailNext answers the next n requests with status (429s carry Retry-After: 1
// and Datadog's X-RateLimit-* headers).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// LiveKeys returns a copy of every live key of both kinds.
func (s *Server) LiveKeys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Key
	for _, k := range s.keys {
		c := *k
		c.Scopes = append([]string(nil), k.Scopes...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IsLive reports whether secret is a live key of either kind.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bySecret(secret, "") != nil
}

func (s *Server) bySecret(secret, kind string) *Key {
	if secret == "" {
		return nil
	}
	for _, k := range s.keys {
		if k.Secret == secret && (kind == "" || k.Kind == kind) {
			return k
		}
	}
	return nil
}

func (s *Server) label(header, kind string) string {
	if header == "" {
		return ""
	}
	k := s.bySecret(header, kind)
	switch {
	case k == nil:
		return "invalid"
	case k.ID == s.rootAPIID || k.ID == s.rootAppID:
		return "root"
	default:
		return "key:" + k.ID
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	fakeapi.WriteJSON(w, status, map[string]any{"errors": []string{msg}})
}

func rateHeaders(w http.ResponseWriter, remaining, reset int) {
	h := w.Header()
	h.Set("X-RateLimit-Limit", "100")
	h.Set("X-RateLimit-Period", "60")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(reset))
	h.Set("X-RateLimit-Name", "key_management")
}

func (s *Server) keyJSON(k *Key, withSecret bool) map[string]any {
	attrs := map[string]any{
		"name": k.Name, "last4": k.Secret[len(k.Secret)-4:],
		"created_at": k.Created.Format(time.RFC3339), "modified_at": k.Created.Format(time.RFC3339),
	}
	typ := "api_keys"
	if k.Kind == "application_key" {
		typ = "application_keys"
		if k.Scopes != nil {
			attrs["scopes"] = k.Scopes
		} else {
			attrs["scopes"] = nil
		}
	}
	for n, v := range k.Attrs {
		attrs[n] = v
	}
	if withSecret {
		attrs["key"] = k.Secret
	}
	return map[string]any{"type": typ, "id": k.ID, "attributes": attrs}
}

func hasScope(app *Key, scope string) bool {
	if app.Scopes == nil {
		return true
	}
	for _, s := range app.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, body := fakeapi.ReadJSON(r)
	s.mu.Lock()
	defer s.mu.Unlock()

	apiHeader, appHeader := r.Header.Get("DD-API-KEY"), r.Header.Get("DD-APPLICATION-KEY")
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(),
		APIKey: s.label(apiHeader, "api_key"), AppKey: s.label(appHeader, "application_key")}
	rec.Body = body
	s.log.Record(rec)

	if status := s.log.Fail(w); status != 0 {
		msg := "Internal Server Error"
		if status == http.StatusTooManyRequests {
			rateHeaders(w, 0, 1)
			msg = "Too many requests"
		}
		writeError(w, status, msg)
		return
	}
	rateHeaders(w, 99, 60)

	if s.bySecret(apiHeader, "api_key") == nil {
		writeError(w, http.StatusForbidden, "Forbidden")
		return
	}
	if r.URL.Path == "/api/v1/validate" && r.Method == http.MethodGet {
		fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"valid": true})
		return
	}
	app := s.bySecret(appHeader, "application_key")
	if app == nil {
		writeError(w, http.StatusForbidden, "Forbidden")
		return
	}

	p := r.URL.Path
	switch {
	case p == "/api/v2/validate_keys" && r.Method == http.MethodGet:
		fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"status": "ok"})

	case p == "/api/v2/api_keys" || strings.HasPrefix(p, "/api/v2/api_keys/"):
		need := "api_keys_read"
		if r.Method != http.MethodGet {
			need = "api_keys_write"
		}
		if !hasScope(app, need) {
			writeError(w, http.StatusForbidden, "Forbidden")
			return
		}
		s.collection(w, r, raw, "api_key", "api_keys", strings.TrimPrefix(strings.TrimPrefix(p, "/api/v2/api_keys"), "/"), "")

	case p == "/api/v2/current_user/application_keys" || strings.HasPrefix(p, "/api/v2/current_user/application_keys/"):
		if !hasScope(app, "user_app_keys") {
			writeError(w, http.StatusForbidden, "Forbidden")
			return
		}
		id := strings.TrimPrefix(strings.TrimPrefix(p, "/api/v2/current_user/application_keys"), "/")
		s.collection(w, r, raw, "application_key", "application_keys", id, app.Owner)

	case strings.HasPrefix(p, "/api/v2/application_keys/") && r.Method == http.MethodDelete:
		if !hasScope(app, "org_app_keys_write") {
			writeError(w, http.StatusForbidden, "Forbidden")
			return
		}
		s.collection(w, r, raw, "application_key", "application_keys", strings.TrimPrefix(p, "/api/v2/application_keys/"), "")

	default:
		writeError(w, http.StatusNotFound, "Not found")
	}
}

// collection serves create/list on a collection and get/delete on one key.
// owner, when set, limits it to that user's keys.
func (s *Server) collection(w http.ResponseWriter, r *http.Request, raw []byte, kind, typ, id, owner string) {
	visible := func(k *Key) bool { return k != nil && k.Kind == kind && (owner == "" || k.Owner == owner) }
	if id != "" {
		k := s.keys[id]
		if !visible(k) {
			writeError(w, http.StatusNotFound, strings.ReplaceAll(kind, "_", " ")+" not found")
			return
		}
		switch r.Method {
		case http.MethodGet:
			fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"data": s.keyJSON(k, kind == "api_key")})
		case http.MethodDelete:
			delete(s.keys, id)
			w.WriteHeader(http.StatusNoContent)
		default:
			writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
		}
		return
	}
	switch r.Method {
	case http.MethodPost:
		var in struct {
			Data struct {
				Type       string         `json:"type"`
				Attributes map[string]any `json:"attributes"`
			} `json:"data"`
		}
		if json.Unmarshal(raw, &in) != nil || in.Data.Type != typ {
			writeError(w, http.StatusBadRequest, "invalid JSON:API body: data.type must be "+typ)
			return
		}
		name, _ := in.Data.Attributes["name"].(string)
		if name == "" {
			writeError(w, http.StatusBadRequest, "name is required")
			return
		}
		var scopes []string
		extra := map[string]any{}
		for n, v := range in.Data.Attributes {
			switch {
			case n == "name":
			case n == "scopes" && kind == "application_key":
				list, ok := v.([]any)
				if !ok && v != nil {
					writeError(w, http.StatusBadRequest, "scopes must be a list")
					return
				}
				scopes = []string{}
				for _, x := range list {
					str, _ := x.(string)
					scopes = append(scopes, str)
				}
				if v == nil {
					scopes = nil
				}
			case (n == "remote_config_read_enabled" || n == "category") && kind == "api_key":
				extra[n] = v
			default:
				writeError(w, http.StatusBadRequest, "unknown attribute "+n)
				return
			}
		}
		keyOwner := owner
		if keyOwner == "" {
			keyOwner = rootUser
		}
		k := s.add(kind, name, keyOwner, scopes)
		if len(extra) > 0 {
			k.Attrs = extra
		}
		fakeapi.WriteJSON(w, http.StatusCreated, map[string]any{"data": s.keyJSON(k, true)})
	case http.MethodGet:
		q := r.URL.Query()
		size, _ := strconv.Atoi(q.Get("page[size]"))
		if size <= 0 {
			size = 10
		}
		number, _ := strconv.Atoi(q.Get("page[number]"))
		filter := q.Get("filter")
		var match []*Key
		for _, k := range s.keys {
			if visible(k) && strings.Contains(k.Name, filter) {
				match = append(match, k)
			}
		}
		sort.Slice(match, func(i, j int) bool { return match[i].ID < match[j].ID })
		start := number * size
		if start > len(match) {
			start = len(match)
		}
		end := start + size
		if end > len(match) {
			end = len(match)
		}
		data := make([]map[string]any, 0, end-start)
		for _, k := range match[start:end] {
			data = append(data, s.keyJSON(k, false))
		}
		fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"data": data, "meta": map[string]any{"page": map[string]any{"total_filtered_count": len(match)}}})
	default:
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
	}
}
