// Package algoliatest is an in-memory stand-in for the parts of Algolia's
// Search API that the algolia provider uses: API keys (create, list, get,
// delete). It follows Algolia's documented x-algolia-application-id and
// x-algolia-api-key headers, {"message","status"} errors (403 for a key or
// application id it does not know), key validity in seconds, the rule that
// only the admin key manages keys while any key may read itself, and
// X-RateLimit-* headers.
package algoliatest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// AppID is the application id of the fake.
const AppID = "VAULTAPP01"

// ACLs are the documented ACL values.
var ACLs = []string{"search", "browse", "addObject", "deleteObject", "listIndexes", "deleteIndex", "settings", "editSettings",
	"analytics", "recommendation", "usage", "logs", "seeUnretrievableAttributes", "inference", "personalization"}

// Recorded is one request as the server saw it. Auth names the key instead
// of carrying it: "admin", "key:<description>", "unknown", or "" (none).
// Path has a key value in it replaced with "{key}".
type Recorded struct {
	Method string
	Path   string
	// KeyInPath is the label of the key named in the path ("key:<description>").
	KeyInPath string
	Auth      string
	Body      map[string]any
	Status    int
}

// Key is an API key.
type Key struct {
	Value       string
	Description string
	ACL         []string
	Indexes     []string
	Referers    []string
	Validity    int
	Created     time.Time
	Deleted     bool
}

// Server is the fake Algolia API.
type Server struct {
	*httptest.Server
	log fakeapi.Recorder[Recorded]

	mu    sync.Mutex
	admin string
	keys  []*Key
}

// NewServer starts a fake Algolia application with an admin key.
func NewServer() *Server {
	s := &Server{admin: fakeapi.Hex(16)}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// AdminKey is the application's admin API key.
func (s *Server) AdminKey() string { return s.admin }

// LiveKeys returns the keys neither deleted nor expired (not the admin key).
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

// IsLive reports whether secret is the admin key or a live key.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return secret != "" && (secret == s.admin || s.byValue(secret) != nil)
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

func live(k *Key) bool {
	return !k.Deleted && (k.Validity == 0 || time.Since(k.Created) < time.Duration(k.Validity)*time.Second)
}

func (s *Server) byValue(v string) *Key {
	for _, k := range s.keys {
		if k.Value == v && live(k) {
			return k
		}
	}
	return nil
}

type response struct {
	status int
	body   any
}

func apiError(status int, message string) response {
	return response{status, map[string]any{"message": message, "status": status}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, validJSON := fakeapi.DecodeBody(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	secret := r.Header.Get("X-Algolia-API-Key")
	caller := s.byValue(secret)
	isAdmin := secret != "" && secret == s.admin
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Body: body}
	inPath := ""
	if v, ok := strings.CutPrefix(r.URL.EscapedPath(), "/1/keys/"); ok {
		inPath, _ = url.PathUnescape(v)
		rec.Path = "/1/keys/{key}"
		if k := s.byValue(inPath); k != nil {
			rec.KeyInPath = "key:" + k.Description
		}
	}
	switch {
	case secret == "":
	case isAdmin:
		rec.Auth = "admin"
	case caller != nil:
		rec.Auth = "key:" + caller.Description
	default:
		rec.Auth = "unknown"
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", "1000")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(1000-s.log.Len()%1000))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))

	var resp response
	switch failure := s.log.Fail(w); {
	case failure == http.StatusTooManyRequests:
		h.Set("X-RateLimit-Remaining", "0")
		resp = apiError(failure, "Too many requests")
	case failure != 0:
		resp = apiError(failure, "Internal error")
	case r.Header.Get("X-Algolia-Application-Id") != AppID || (!isAdmin && caller == nil):
		resp = apiError(http.StatusForbidden, "Invalid Application-ID or API key")
	case !validJSON:
		resp = apiError(http.StatusBadRequest, "Invalid JSON")
	default:
		resp = s.route(r, isAdmin, caller, inPath, body)
	}
	rec.Status = resp.status
	s.log.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func view(k *Key) map[string]any {
	return map[string]any{"value": k.Value, "description": k.Description, "acl": k.ACL, "indexes": k.Indexes,
		"referers": k.Referers, "validity": k.Validity, "createdAt": k.Created.Unix()}
}

func strList(v any) ([]string, bool) {
	list, ok := v.([]any)
	if v != nil && !ok {
		return nil, false
	}
	out := []string{}
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func (s *Server) route(r *http.Request, isAdmin bool, caller *Key, inPath string, body map[string]any) response {
	switch {
	case r.URL.Path == "/1/keys" && r.Method == http.MethodPost && isAdmin:
		acl, ok := strList(body["acl"])
		if !ok || len(acl) == 0 {
			return apiError(http.StatusBadRequest, "acl is required")
		}
		for _, a := range acl {
			if !slices.Contains(ACLs, a) {
				return apiError(http.StatusBadRequest, "Invalid ACL: "+a)
			}
		}
		indexes, ok1 := strList(body["indexes"])
		referers, ok2 := strList(body["referers"])
		if !ok1 || !ok2 {
			return apiError(http.StatusBadRequest, "indexes and referers must be arrays of strings")
		}
		validity := 0
		if v, ok := body["validity"]; ok {
			n, err := strconv.Atoi(toString(v))
			if err != nil || n < 0 {
				return apiError(http.StatusBadRequest, "validity must be a positive integer")
			}
			validity = n
		}
		desc, _ := body["description"].(string)
		k := &Key{Value: fakeapi.Hex(16), Description: desc, ACL: acl, Indexes: indexes, Referers: referers, Validity: validity, Created: time.Now()}
		s.keys = append(s.keys, k)
		if s.log.CreateLost() {
			return apiError(http.StatusInternalServerError, "Internal error")
		}
		return response{http.StatusOK, map[string]any{"key": k.Value, "createdAt": k.Created.UTC().Format(time.RFC3339)}}
	case r.URL.Path == "/1/keys" && r.Method == http.MethodGet && isAdmin:
		list := []map[string]any{}
		for _, k := range s.keys {
			if live(k) {
				list = append(list, view(k))
			}
		}
		return response{http.StatusOK, map[string]any{"keys": list}}
	case inPath != "" && (isAdmin || (caller != nil && caller.Value == inPath && r.Method == http.MethodGet)):
		k := s.byValue(inPath)
		if k == nil {
			return apiError(http.StatusNotFound, "Key does not exist")
		}
		switch r.Method {
		case http.MethodGet:
			return response{http.StatusOK, view(k)}
		case http.MethodDelete:
			k.Deleted = true
			return response{http.StatusOK, map[string]any{"deletedAt": time.Now().UTC().Format(time.RFC3339)}}
		}
		return apiError(http.StatusMethodNotAllowed, "Method not allowed")
	case strings.HasPrefix(r.URL.Path, "/1/keys"):
		return apiError(http.StatusForbidden, "Method not allowed with this API key")
	}
	return apiError(http.StatusNotFound, "Not found")
}

func toString(v any) string {
	if n, ok := v.(json.Number); ok {
		return n.String()
	}
	return "x" // not a number
}
