// Package openroutertest is an in-memory stand-in for OpenRouter's
// key-management API as the openrouter provider uses it: POST/GET /keys,
// GET/PATCH/DELETE /keys/{hash} with the management key, and GET /key with
// any key. It follows OpenRouter's documented status codes (201 on create,
// 200 {"deleted": true} on delete), its {"error":{code,message}} errors,
// and refuses a management key anywhere but the key-management endpoints
// and an issued key on them. Expired and disabled keys do not authenticate.
package openroutertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Recorded is one request as the server saw it. Auth names the credential
// instead of carrying it: "root" (the management key), "key:<hash>" (an
// issued key), "unknown", or "" (none).
type Recorded struct {
	Method string
	Path   string
	Query  map[string]string
	Auth   string
	Body   map[string]any
	Status int
}

// Key is an issued API key.
type Key struct {
	Hash        string
	Name        string
	Value       string
	Limit       *float64
	LimitReset  string
	IncludeBYOK bool
	ExpiresAt   time.Time
	WorkspaceID string
	Disabled    bool
	Created     time.Time
	Deleted     bool
}

// Server is the fake OpenRouter API.
type Server struct {
	*httptest.Server

	// Recorder has FailNext (failures to inject), Requests and
	// ResetRequests.
	fakeapi.Recorder[Recorded]

	mu            sync.Mutex
	managementKey string
	keys          []*Key
	now           func() time.Time
}

// NewServer starts a fake OpenRouter with one management key.
func NewServer() *Server {
	s := &Server{managementKey: "sk-or-v1-mgmt-" + fakeapi.Hex(24), now: time.Now}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// ManagementKey is the root credential.
func (s *Server) ManagementKey() string { return s.managementKey }

// SetNow replaces the server's clock (for expiry).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// LiveKeys returns the keys not deleted (disabled ones included).
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

// IsLive reports whether secret authenticates (the management key or an
// issued key that is neither deleted, disabled nor expired).
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return secret != "" && (secret == s.managementKey || s.bySecret(secret) != nil)
}

func (s *Server) bySecret(secret string) *Key {
	for _, k := range s.keys {
		if k.Value == secret && !k.Deleted && !k.Disabled && (k.ExpiresAt.IsZero() || s.now().Before(k.ExpiresAt)) {
			return k
		}
	}
	return nil
}

func (s *Server) byHash(hash string) *Key {
	for _, k := range s.keys {
		if k.Hash == hash && !k.Deleted {
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
	return response{status, map[string]any{"error": map[string]any{"code": status, "message": message}}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, body := fakeapi.ReadJSON(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	secret, hasAuth := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: map[string]string{}, Body: body}
	for k := range r.URL.Query() {
		rec.Query[k] = r.URL.Query().Get(k)
	}
	isRoot := hasAuth && secret == s.managementKey
	key := s.bySecret(secret)
	switch {
	case !hasAuth:
	case isRoot:
		rec.Auth = "root"
	case key != nil:
		rec.Auth = "key:" + key.Hash
	default:
		rec.Auth = "unknown"
	}
	var resp response
	switch failure := s.Recorder.Fail(w); {
	case failure == http.StatusTooManyRequests:
		resp = apiError(failure, "Rate limit exceeded")
	case failure != 0:
		resp = apiError(failure, "Internal Server Error")
	case !isRoot && key == nil:
		m := "No auth credentials found"
		if hasAuth {
			m = "User not found."
		}
		resp = apiError(http.StatusUnauthorized, m)
	case len(raw) > 0 && body == nil:
		resp = apiError(http.StatusBadRequest, "Invalid JSON body")
	default:
		resp = s.route(r, isRoot, key, raw)
	}
	rec.Status = resp.status
	s.Recorder.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) route(r *http.Request, isRoot bool, caller *Key, raw []byte) response {
	path, ok := strings.CutPrefix(r.URL.Path, "/api/v1/")
	if !ok {
		return apiError(http.StatusNotFound, "Not Found")
	}
	if path == "key" && r.Method == http.MethodGet {
		if isRoot {
			return response{http.StatusOK, map[string]any{"data": map[string]any{"label": "sk-or-v1-mgm...", "limit": nil,
				"usage": 0, "is_free_tier": false, "is_management_key": true, "is_provisioning_key": true}}}
		}
		return response{http.StatusOK, map[string]any{"data": map[string]any{"label": mask(caller.Value), "limit": caller.Limit,
			"usage": 0, "is_free_tier": false, "is_management_key": false, "is_provisioning_key": false,
			"limit_reset": nullable(caller.LimitReset), "expires_at": s.expiry(caller)}}}
	}
	seg := strings.Split(path, "/")
	if seg[0] != "keys" || len(seg) > 2 {
		return apiError(http.StatusNotFound, "Not Found")
	}
	if !isRoot {
		return apiError(http.StatusUnauthorized, "Only management keys can perform this operation")
	}
	if len(seg) == 1 {
		switch r.Method {
		case http.MethodPost:
			return s.create(raw)
		case http.MethodGet:
			return s.list(r)
		}
		return apiError(http.StatusMethodNotAllowed, "Method Not Allowed")
	}
	k := s.byHash(seg[1])
	if k == nil {
		return apiError(http.StatusNotFound, "Key not found")
	}
	switch r.Method {
	case http.MethodGet:
		return response{http.StatusOK, map[string]any{"data": s.view(k)}}
	case http.MethodPatch:
		var in struct {
			Disabled *bool `json:"disabled"`
		}
		_ = json.Unmarshal(raw, &in)
		if in.Disabled != nil {
			k.Disabled = *in.Disabled
		}
		return response{http.StatusOK, map[string]any{"data": s.view(k)}}
	case http.MethodDelete:
		k.Deleted = true
		return response{http.StatusOK, map[string]any{"deleted": true}}
	}
	return apiError(http.StatusMethodNotAllowed, "Method Not Allowed")
}

func (s *Server) create(raw []byte) response {
	var in struct {
		Name        *string          `json:"name"`
		Limit       *json.RawMessage `json:"limit"`
		LimitReset  *string          `json:"limit_reset"`
		IncludeBYOK *bool            `json:"include_byok_in_limit"`
		ExpiresAt   *string          `json:"expires_at"`
		WorkspaceID string           `json:"workspace_id"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return apiError(http.StatusBadRequest, "Invalid request body")
	}
	if in.Name == nil || *in.Name == "" {
		return apiError(http.StatusBadRequest, "name: String must contain at least 1 character(s)")
	}
	k := &Key{Hash: fakeapi.Hex(32), Name: *in.Name, Value: "sk-or-v1-" + fakeapi.Hex(32), Created: s.now().UTC(), WorkspaceID: in.WorkspaceID}
	if in.Limit != nil && string(*in.Limit) != "null" {
		f, err := strconv.ParseFloat(string(*in.Limit), 64)
		if err != nil || f < 0 {
			return apiError(http.StatusBadRequest, "limit: Expected number")
		}
		k.Limit = &f
	}
	if in.LimitReset != nil {
		switch *in.LimitReset {
		case "daily", "weekly", "monthly":
			k.LimitReset = *in.LimitReset
		default:
			return apiError(http.StatusBadRequest, "limit_reset: Invalid enum value")
		}
	}
	if in.IncludeBYOK != nil {
		k.IncludeBYOK = *in.IncludeBYOK
	}
	if in.ExpiresAt != nil {
		if !strings.HasSuffix(*in.ExpiresAt, "Z") {
			return apiError(http.StatusBadRequest, "expires_at: only UTC timestamps are accepted")
		}
		t, err := time.Parse(time.RFC3339, *in.ExpiresAt)
		if err != nil || !t.After(s.now()) {
			return apiError(http.StatusBadRequest, "expires_at: must be a future ISO 8601 timestamp")
		}
		k.ExpiresAt = t
	}
	s.keys = append(s.keys, k)
	return response{http.StatusCreated, map[string]any{"data": s.view(k), "key": k.Value}}
}

// list answers GET /keys: 100 per page from offset, disabled keys only
// with include_disabled=true.
func (s *Server) list(r *http.Request) response {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	withDisabled := r.URL.Query().Get("include_disabled") == "true"
	ws := r.URL.Query().Get("workspace_id")
	var all []map[string]any
	for _, k := range s.keys {
		if k.Deleted || (k.Disabled && !withDisabled) || (ws != "" && k.WorkspaceID != ws) {
			continue
		}
		all = append(all, s.view(k))
	}
	data := []map[string]any{}
	if offset >= 0 && offset < len(all) {
		data = all[offset:min(offset+100, len(all))]
	}
	return response{http.StatusOK, map[string]any{"data": data}}
}

func (s *Server) expiry(k *Key) any {
	if k.ExpiresAt.IsZero() {
		return nil
	}
	return k.ExpiresAt.UTC().Format(time.RFC3339)
}

func nullable(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func (s *Server) view(k *Key) map[string]any {
	v := map[string]any{
		"hash": k.Hash, "name": k.Name, "label": mask(k.Value), "disabled": k.Disabled, "limit": k.Limit,
		"limit_remaining": k.Limit, "limit_reset": nullable(k.LimitReset), "include_byok_in_limit": k.IncludeBYOK,
		"usage": 0, "created_at": k.Created.Format(time.RFC3339), "updated_at": nil, "expires_at": s.expiry(k),
	}
	if k.WorkspaceID != "" {
		v["workspace_id"] = k.WorkspaceID
	}
	return v
}

// mask renders a key the way the API labels it ("sk-or-v1-abc...890").
func mask(secret string) string {
	if len(secret) < 16 {
		return "sk-or-v1-..."
	}
	return fmt.Sprintf("%s...%s", secret[:12], secret[len(secret)-3:])
}
