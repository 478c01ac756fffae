// Package tailscaletest is an in-memory stand-in for the parts of the
// Tailscale API v2 the tailscale provider uses: auth keys under
// /api/v2/tailnet/{tailnet}/keys, authenticated with an API access token
// (Bearer, or Basic with the token as user name), {"message": …} errors
// and 429 with Retry-After. Auth keys cannot call the API; they only
// register devices, which RegisterDevice stands for.
package tailscaletest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Tailnet is the tailnet the seeded access token belongs to.
const Tailnet = "example.com"

// Recorded is one request as the server saw it. Auth is "root" (the seeded
// access token), "key:<id>" (an auth key, which the API refuses),
// "unknown" or "" (none).
type Recorded struct {
	Method string
	Path   string
	Auth   string
	Body   map[string]any
	Status int
}

// AuthKey is an auth key.
type AuthKey struct {
	ID            string
	Key           string
	Description   string
	Reusable      bool
	Ephemeral     bool
	Preauthorized bool
	Tags          []string
	Created       time.Time
	Expires       time.Time
	Deleted       bool
}

// Server is the fake Tailscale API.
type Server struct {
	*httptest.Server

	// Recorder has FailNext (failures to inject: 429s carry Retry-After: 1),
	// Requests and ResetRequests.
	fakeapi.Recorder[Recorded]

	mu    sync.Mutex
	seq   int
	token string
	keys  []*AuthKey
	now   func() time.Time
}

// NewServer starts a fake Tailscale with one API access token for Tailnet.
func NewServer() *Server {
	s := &Server{token: "tskey-api-" + fakeapi.Hex(8) + "-" + fakeapi.Hex(16), now: time.Now}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// RootToken is the API access token.
func (s *Server) RootToken() string { return s.token }

// SetNow replaces the server's clock (for expiry).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// LiveKeys returns the auth keys neither deleted nor expired.
func (s *Server) LiveKeys() []AuthKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AuthKey
	for _, k := range s.keys {
		if s.live(k) {
			out = append(out, *k)
		}
	}
	return out
}

// IsLive reports whether secret is the access token or an auth key that
// would register a device now.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if secret != "" && secret == s.token {
		return true
	}
	k := s.byKey(secret)
	return k != nil && s.live(k)
}

func (s *Server) live(k *AuthKey) bool { return !k.Deleted && s.now().Before(k.Expires) }

func (s *Server) byKey(secret string) *AuthKey {
	for _, k := range s.keys {
		if secret != "" && k.Key == secret {
			return k
		}
	}
	return nil
}

func (s *Server) byID(id string) *AuthKey {
	for _, k := range s.keys {
		if k.ID == id && !k.Deleted {
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
	return response{status, map[string]any{"message": message}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()

	secret, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !bearer {
		secret, _, _ = r.BasicAuth()
	}
	rec := Recorded{Method: r.Method, Path: r.URL.Path}
	switch {
	case secret == "":
	case secret == s.token:
		rec.Auth = "root"
	case s.byKey(secret) != nil:
		rec.Auth = "key:" + s.byKey(secret).ID
	default:
		rec.Auth = "unknown"
	}
	body, validJSON := fakeapi.DecodeBody(r)
	rec.Body = body

	var resp response
	failure := s.Recorder.Fail(w)
	switch {
	case failure == http.StatusTooManyRequests:
		resp = apiError(failure, "rate limit exceeded")
	case failure != 0:
		resp = apiError(failure, "internal server error")
	case rec.Auth != "root":
		resp = apiError(http.StatusUnauthorized, "API token invalid")
	case !validJSON:
		resp = apiError(http.StatusBadRequest, "invalid JSON body")
	default:
		resp = s.route(r, body)
	}
	rec.Status = resp.status
	s.Recorder.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) route(r *http.Request, body map[string]any) response {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v2/tailnet/")
	seg := strings.Split(rest, "/")
	if !ok || len(seg) < 2 || seg[1] != "keys" || len(seg) > 3 {
		return apiError(http.StatusNotFound, "not found")
	}
	if seg[0] != "-" && seg[0] != Tailnet {
		return apiError(http.StatusNotFound, "tailnet not found")
	}
	if len(seg) == 2 {
		switch r.Method {
		case http.MethodPost:
			return s.create(body)
		case http.MethodGet:
			keys := []map[string]any{}
			for _, k := range s.keys {
				if !k.Deleted {
					keys = append(keys, map[string]any{"id": k.ID, "description": k.Description})
				}
			}
			return response{http.StatusOK, map[string]any{"keys": keys}}
		}
		return apiError(http.StatusMethodNotAllowed, "method not allowed")
	}
	k := s.byID(seg[2])
	if k == nil {
		return apiError(http.StatusNotFound, "not found")
	}
	switch r.Method {
	case http.MethodGet:
		return response{http.StatusOK, s.view(k)}
	case http.MethodDelete:
		k.Deleted = true
		return response{http.StatusOK, nil}
	}
	return apiError(http.StatusMethodNotAllowed, "method not allowed")
}

func (s *Server) create(body map[string]any) response {
	caps, _ := body["capabilities"].(map[string]any)
	devices, _ := caps["devices"].(map[string]any)
	create, _ := devices["create"].(map[string]any)
	if create == nil {
		return apiError(http.StatusBadRequest, "capabilities.devices.create is required")
	}
	desc, _ := body["description"].(string)
	if len(desc) > 50 || strings.Trim(desc, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789- ") != "" {
		return apiError(http.StatusBadRequest, "description must be at most 50 alphanumeric characters, hyphens or spaces")
	}
	k := &AuthKey{Description: desc, Created: s.now()}
	for name, dst := range map[string]*bool{"reusable": &k.Reusable, "ephemeral": &k.Ephemeral, "preauthorized": &k.Preauthorized} {
		if v, ok := create[name]; ok {
			b, isBool := v.(bool)
			if !isBool {
				return apiError(http.StatusBadRequest, name+" must be a boolean")
			}
			*dst = b
		}
	}
	if tags, ok := create["tags"].([]any); ok {
		for _, t := range tags {
			ts, _ := t.(string)
			if !strings.HasPrefix(ts, "tag:") {
				return apiError(http.StatusBadRequest, fmt.Sprintf("invalid tag %q", t))
			}
			k.Tags = append(k.Tags, ts)
		}
	}
	expiry := int64(90 * 24 * 3600)
	if v, ok := body["expirySeconds"]; ok {
		n, isNum := v.(interface{ Int64() (int64, error) })
		secs, err := int64(0), error(nil)
		if isNum {
			secs, err = n.Int64()
		}
		if !isNum || err != nil || secs < 0 || secs > 90*24*3600 {
			return apiError(http.StatusBadRequest, "expirySeconds must be between 0 and 7776000")
		}
		if secs > 0 {
			expiry = secs
		}
	}
	k.Expires = k.Created.Add(time.Duration(expiry) * time.Second)
	s.seq++
	k.ID = fmt.Sprintf("k%04d%sCNTRL", s.seq, fakeapi.Hex(3))
	k.Key = "tskey-auth-" + k.ID + "-" + fakeapi.Hex(16)
	s.keys = append(s.keys, k)
	v := s.view(k)
	v["key"] = k.Key
	return response{http.StatusOK, v}
}

func (s *Server) view(k *AuthKey) map[string]any {
	create := map[string]any{"reusable": k.Reusable, "ephemeral": k.Ephemeral, "preauthorized": k.Preauthorized}
	if len(k.Tags) > 0 {
		create["tags"] = k.Tags
	}
	return map[string]any{
		"id": k.ID, "description": k.Description, "created": k.Created.UTC().Format(time.RFC3339),
		"expires": k.Expires.UTC().Format(time.RFC3339), "invalid": !s.now().Before(k.Expires),
		"capabilities": map[string]any{"devices": map[string]any{"create": create}},
	}
}
