// Package elasticsearchtest is an in-memory stand-in for the parts of the
// Elasticsearch security API the elasticsearch provider uses: create
// (POST /_security/api_key), get by name (GET /_security/api_key),
// invalidate (DELETE /_security/api_key with a JSON body) and
// GET /_security/_authenticate, with Basic and ApiKey auth, Elasticsearch's
// {"error":{root_cause,type,reason},"status"} errors and its rule that a
// key created with an API key ("derived") has empty role descriptors.
package elasticsearchtest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Username is the seeded user whose password is a root.
const Username = "vault-admin"

// Recorded is one request as the server saw it. Auth is "user:<name>",
// "key:<id>", "unknown" or "" (none).
type Recorded struct {
	Method string
	Path   string
	Query  string
	Auth   string
	Body   map[string]any
	Status int
}

// APIKey is an API key.
type APIKey struct {
	ID              string
	Name            string
	Secret          string
	Expires         time.Time // zero: never
	Created         time.Time
	Invalidated     bool
	Derived         bool // created with an API key: no privileges
	RoleDescriptors map[string]any
}

// Encoded is the key as clients send it: base64 of id:secret.
func (k APIKey) Encoded() string {
	return base64.StdEncoding.EncodeToString([]byte(k.ID + ":" + k.Secret))
}

// Server is the fake Elasticsearch.
type Server struct {
	*httptest.Server

	// Recorder has FailNext (failures to inject: 429s carry Retry-After: 1),
	// Requests and ResetRequests.
	fakeapi.Recorder[Recorded]

	mu       sync.Mutex
	password string
	keys     []*APIKey
	rootKey  string // id of the seeded root API key
	now      func() time.Time
}

// NewServer starts a fake Elasticsearch with user Username and one root
// API key created by that user.
func NewServer() *Server {
	s := &Server{password: fakeapi.Hex(12), now: time.Now}
	s.rootKey = s.newKey("vault-root-key", false, nil, time.Time{}).ID
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Password is Username's password.
func (s *Server) Password() string { return s.password }

// RootAPIKey is the seeded root API key, encoded; RootAPIKeyID its id.
func (s *Server) RootAPIKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID(s.rootKey).Encoded()
}

// RootAPIKeyID is the seeded root API key's id.
func (s *Server) RootAPIKeyID() string { return s.rootKey }

// SetNow replaces the server's clock (for expiry).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// LiveKeys returns the valid API keys other than the seeded root.
func (s *Server) LiveKeys() []APIKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []APIKey
	for _, k := range s.keys {
		if k.ID != s.rootKey && s.valid(k) {
			out = append(out, *k)
		}
	}
	return out
}

// IsLive reports whether secret (an encoded API key or the password)
// authenticates.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if secret != "" && secret == s.password {
		return true
	}
	k := s.byEncoded(secret)
	return k != nil && s.valid(k)
}

func (s *Server) valid(k *APIKey) bool {
	return !k.Invalidated && (k.Expires.IsZero() || s.now().Before(k.Expires))
}

func (s *Server) newKey(name string, derived bool, roles map[string]any, expires time.Time) *APIKey {
	id := base64.RawURLEncoding.EncodeToString([]byte(fakeapi.Hex(8)))[:20]
	k := &APIKey{ID: id, Name: name, Secret: fakeapi.Hex(11), Derived: derived, RoleDescriptors: roles, Expires: expires, Created: s.now()}
	s.keys = append(s.keys, k)
	return k
}

func (s *Server) byID(id string) *APIKey {
	for _, k := range s.keys {
		if k.ID == id {
			return k
		}
	}
	return nil
}

func (s *Server) byEncoded(encoded string) *APIKey {
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil
	}
	id, secret, _ := strings.Cut(string(raw), ":")
	if k := s.byID(id); k != nil && secret != "" && k.Secret == secret {
		return k
	}
	return nil
}

type response struct {
	status int
	body   any
}

func esError(status int, typ, reason string) response {
	cause := map[string]any{"type": typ, "reason": reason}
	return response{status, map[string]any{"error": map[string]any{"root_cause": []any{cause}, "type": typ, "reason": reason}, "status": status}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	var caller *APIKey
	authed := false
	h := r.Header.Get("Authorization")
	switch {
	case h == "":
	case strings.HasPrefix(h, "ApiKey "):
		if k := s.byEncoded(strings.TrimPrefix(h, "ApiKey ")); k != nil {
			rec.Auth = "key:" + k.ID
			if s.valid(k) {
				caller, authed = k, true
			}
		} else {
			rec.Auth = "unknown"
		}
	default:
		if user, pass, ok := r.BasicAuth(); ok && user == Username && pass == s.password {
			rec.Auth, authed = "user:"+user, true
		} else {
			rec.Auth = "unknown"
		}
	}
	body, validJSON := fakeapi.DecodeBody(r)
	rec.Body = body

	var resp response
	failure := s.Recorder.Fail(w)
	switch {
	case failure == http.StatusTooManyRequests:
		resp = esError(failure, "es_rejected_execution_exception", "rejected execution of coordinating operation")
	case failure != 0:
		resp = esError(failure, "internal_server_error", "internal error")
	case !authed:
		w.Header().Set("WWW-Authenticate", `Basic realm="security", charset="UTF-8"`)
		w.Header().Add("WWW-Authenticate", "ApiKey")
		resp = esError(http.StatusUnauthorized, "security_exception", "unable to authenticate with provided credentials and anonymous access is not allowed for this request")
	case !validJSON:
		resp = esError(http.StatusBadRequest, "parse_exception", "request body is required")
	default:
		resp = s.route(r, caller, body)
	}
	rec.Status = resp.status
	s.Recorder.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) route(r *http.Request, caller *APIKey, body map[string]any) response {
	switch {
	case r.URL.Path == "/_security/_authenticate" && r.Method == http.MethodGet:
		if caller != nil {
			return response{http.StatusOK, map[string]any{"username": Username, "authentication_type": "api_key",
				"api_key": map[string]any{"id": caller.ID, "name": caller.Name}}}
		}
		return response{http.StatusOK, map[string]any{"username": Username, "authentication_type": "realm", "roles": []string{"api_admin"}}}
	case r.URL.Path != "/_security/api_key":
		return esError(http.StatusNotFound, "resource_not_found_exception", "no handler found for uri ["+r.URL.Path+"]")
	case caller != nil && caller.Derived:
		return esError(http.StatusForbidden, "security_exception", fmt.Sprintf("action [cluster:admin/xpack/security/api_key] is unauthorized for API key id [%s] of user [%s]", caller.ID, Username))
	}
	switch r.Method {
	case http.MethodPost:
		return s.create(caller, body)
	case http.MethodGet:
		name := r.URL.Query().Get("name")
		list := []map[string]any{}
		for _, k := range s.keys {
			if name == "" || k.Name == name {
				list = append(list, s.view(k))
			}
		}
		return response{http.StatusOK, map[string]any{"api_keys": list}}
	case http.MethodDelete:
		ids, _ := body["ids"].([]any)
		if len(ids) == 0 {
			return esError(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: One of [api key id, api key name, username, realm name] must be specified if [owner] flag is false;")
		}
		invalidated, previously := []string{}, []string{}
		for _, v := range ids {
			id, _ := v.(string)
			k := s.byID(id)
			switch {
			case k == nil:
			case k.Invalidated:
				previously = append(previously, id)
			default:
				k.Invalidated = true
				invalidated = append(invalidated, id)
			}
		}
		if len(invalidated)+len(previously) == 0 {
			return esError(http.StatusNotFound, "resource_not_found_exception", "no API key owned by requesting user found for ID ["+fmt.Sprint(ids...)+"]")
		}
		return response{http.StatusOK, map[string]any{"invalidated_api_keys": invalidated,
			"previously_invalidated_api_keys": previously, "error_count": 0}}
	}
	return esError(http.StatusMethodNotAllowed, "illegal_argument_exception", "Incorrect HTTP method")
}

func (s *Server) create(caller *APIKey, body map[string]any) response {
	name, _ := body["name"].(string)
	if strings.TrimSpace(name) == "" {
		return esError(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: api key name is required;")
	}
	roles, hasRoles := body["role_descriptors"].(map[string]any)
	if caller != nil && (!hasRoles || len(roles) > 0) {
		return esError(http.StatusBadRequest, "illegal_argument_exception", "creating derived api keys requires an explicit role descriptor that is empty (has no privileges)")
	}
	var expires time.Time
	if v, ok := body["expiration"]; ok {
		d, err := parseDuration(fmt.Sprint(v))
		if err != nil || d <= 0 {
			return esError(http.StatusBadRequest, "illegal_argument_exception", fmt.Sprintf("failed to parse setting [expiration] with value [%v] as a time value", v))
		}
		expires = s.now().Add(d)
	}
	k := s.newKey(name, caller != nil, roles, expires)
	out := map[string]any{"id": k.ID, "name": k.Name, "api_key": k.Secret, "encoded": k.Encoded()}
	if !expires.IsZero() {
		out["expiration"] = expires.UnixMilli()
	}
	return response{http.StatusOK, out}
}

// parseDuration reads an Elasticsearch time value such as "600s" or "1d".
func parseDuration(v string) (time.Duration, error) {
	units := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	for _, u := range []string{"ms", "s", "m", "h", "d"} {
		if n, ok := strings.CutSuffix(v, u); ok {
			i, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				continue
			}
			return time.Duration(i) * units[u], nil
		}
	}
	return 0, fmt.Errorf("bad time value %q", v)
}

func (s *Server) view(k *APIKey) map[string]any {
	v := map[string]any{"id": k.ID, "name": k.Name, "invalidated": k.Invalidated, "username": Username, "realm": "native",
		"creation": k.Created.UnixMilli()}
	if !k.Expires.IsZero() {
		v["expiration"] = k.Expires.UnixMilli()
	}
	return v
}
