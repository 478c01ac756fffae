// Package databrickstest is an in-memory stand-in for the parts of
// Databricks the databricks provider uses, one server acting as both the
// workspace and the account console: personal access tokens
// (/api/2.0/token/create|delete|list, with lifetime_seconds), service
// principal OAuth secrets at the workspace
// (/api/2.0/accounts/servicePrincipals/{id}/credentials/secrets) and at the
// account (/api/2.0/accounts/{account}/servicePrincipals/…), at most five
// per service principal, OAuth M2M tokens at /oidc/v1/token and
// /oidc/accounts/{account}/v1/token, and SCIM Me. Errors use Databricks'
// {"error_code","message"} shape; a 429 carries Retry-After.
package databrickstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// AccountID is the account the server serves.
const AccountID = "acct-0001"

// Recorded is one request as the server saw it. Auth names the credential:
// "root" (the root PAT, or a token got with the root service principal's
// seeded secret), "pat:<token_id>", "sp:<sp id>:<secret id>" (a token got
// with that secret; also the Basic credential at a token endpoint),
// "unknown" or "".
type Recorded struct {
	Method string
	Path   string
	Query  map[string]string
	Auth   string
	Body   map[string]any
	Status int
}

// PAT is a personal access token.
type PAT struct {
	ID      string
	Value   string
	Comment string
	Expiry  time.Time
	Deleted bool
}

// SPSecret is a service principal OAuth secret.
type SPSecret struct {
	ID      string
	Value   string
	Expiry  time.Time
	Deleted bool
}

// SP is a service principal.
type SP struct {
	ID      string // numeric
	AppID   string
	Secrets []*SPSecret
}

type accessToken struct {
	label   string
	account bool
	exp     time.Time
}

// Server is the fake Databricks.
type Server struct {
	*httptest.Server

	// Recorder has FailNext (failures to inject), Requests and
	// ResetRequests.
	fakeapi.Recorder[Recorded]

	mu         sync.Mutex
	seq        int
	pats       []*PAT
	rootPAT    *PAT
	sps        map[string]*SP
	rootSecret *SPSecret
	tokens     map[string]accessToken
	now        func() time.Time
}

// Service principals the server starts with.
const (
	RootSPID   = "1001"
	RootAppID  = "11111111-root-app"
	AppSPID    = "2002"
	AppSPAppID = "22222222-app"
)

// NewServer starts a fake Databricks: a root PAT, a root service principal
// with one secret, and an application service principal with none.
func NewServer() *Server {
	s := &Server{sps: map[string]*SP{}, tokens: map[string]accessToken{}, now: time.Now}
	s.rootPAT = s.newPAT("vault-root-seed", 0)
	s.sps[RootSPID] = &SP{ID: RootSPID, AppID: RootAppID}
	s.sps[AppSPID] = &SP{ID: AppSPID, AppID: AppSPAppID}
	s.rootSecret = s.newSecret(s.sps[RootSPID], 0)
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// RootPAT returns the seeded PAT's value and token_id.
func (s *Server) RootPAT() (value, id string) { return s.rootPAT.Value, s.rootPAT.ID }

// RootSecret returns the root service principal's seeded secret and its id.
func (s *Server) RootSecret() (value, id string) { return s.rootSecret.Value, s.rootSecret.ID }

// SetNow replaces the server's clock.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// LivePATs returns the PATs not deleted (and not expired).
func (s *Server) LivePATs() []PAT {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []PAT
	for _, t := range s.pats {
		if s.patLive(t) {
			out = append(out, *t)
		}
	}
	return out
}

// Secrets returns the live secrets of a service principal.
func (s *Server) Secrets(spID string) []SPSecret {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SPSecret
	for _, x := range s.sps[spID].Secrets {
		if !x.Deleted {
			out = append(out, *x)
		}
	}
	return out
}

// AddSecret gives a service principal one more secret, as someone might
// in the account console.
func (s *Server) AddSecret(spID string) SPSecret {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.newSecret(s.sps[spID], 0)
}

// IsLive reports whether secret is a live PAT or service principal secret.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.patByValue(secret); t != nil {
		return true
	}
	_, x := s.secretByValue(secret)
	return x != nil
}

func (s *Server) nextID() string {
	s.seq++
	return fmt.Sprintf("%04d%s", s.seq, fakeapi.Hex(6))
}

func (s *Server) newPAT(comment string, lifetime int64) *PAT {
	t := &PAT{ID: s.nextID(), Value: "dapi" + fakeapi.Hex(16), Comment: comment}
	if lifetime > 0 {
		t.Expiry = s.now().Add(time.Duration(lifetime) * time.Second)
	}
	s.pats = append(s.pats, t)
	return t
}

func (s *Server) newSecret(sp *SP, lifetime int64) *SPSecret {
	if lifetime <= 0 {
		lifetime = 730 * 24 * 3600
	}
	x := &SPSecret{ID: s.nextID(), Value: "dose" + fakeapi.Hex(16), Expiry: s.now().Add(time.Duration(lifetime) * time.Second).UTC()}
	sp.Secrets = append(sp.Secrets, x)
	return x
}

func (s *Server) patLive(t *PAT) bool {
	return !t.Deleted && (t.Expiry.IsZero() || s.now().Before(t.Expiry))
}

func (s *Server) patByValue(v string) *PAT {
	for _, t := range s.pats {
		if t.Value == v && v != "" && s.patLive(t) {
			return t
		}
	}
	return nil
}

func (s *Server) secretByValue(v string) (*SP, *SPSecret) {
	for _, sp := range s.sps {
		for _, x := range sp.Secrets {
			if x.Value == v && v != "" && !x.Deleted && s.now().Before(x.Expiry) {
				return sp, x
			}
		}
	}
	return nil, nil
}

type response struct {
	status int
	body   any
}

func apiError(status int, code, message string) response {
	return response{status, map[string]any{"error_code": code, "message": message}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, body := fakeapi.ReadJSON(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: map[string]string{}, Body: body}
	for k := range r.URL.Query() {
		rec.Query[k] = r.URL.Query().Get(k)
	}
	var resp response
	switch failure := s.Recorder.Fail(w); {
	case failure == http.StatusTooManyRequests:
		resp = apiError(failure, "REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again.")
	case failure != 0:
		resp = apiError(failure, "INTERNAL_ERROR", "Internal error")
	case r.URL.Path == "/oidc/v1/token" || r.URL.Path == "/oidc/accounts/"+AccountID+"/v1/token":
		rec.Auth, resp = s.token(r, raw, r.URL.Path != "/oidc/v1/token")
	default:
		label, account, ok := s.auth(r.Header.Get("Authorization"))
		rec.Auth = label
		switch {
		case !ok:
			resp = apiError(http.StatusUnauthorized, "UNAUTHENTICATED", "Invalid access token.")
		case len(raw) > 0 && body == nil:
			resp = apiError(http.StatusBadRequest, "MALFORMED_REQUEST", "Could not parse request object")
		default:
			resp = s.route(r, raw, account)
		}
	}
	rec.Status = resp.status
	s.Recorder.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) auth(header string) (label string, account, ok bool) {
	v, found := strings.CutPrefix(header, "Bearer ")
	if !found {
		if header == "" {
			return "", false, false
		}
		return "unknown", false, false
	}
	if t := s.patByValue(v); t != nil {
		if t == s.rootPAT {
			return "root", false, true
		}
		return "pat:" + t.ID, false, true
	}
	if a, ok := s.tokens[v]; ok && s.now().Before(a.exp) {
		return a.label, a.account, true
	}
	return "unknown", false, false
}

func (s *Server) token(r *http.Request, raw []byte, account bool) (string, response) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return "", response{http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "Client authentication failed"}}
	}
	sp, x := s.secretByValue(secret)
	if sp == nil || sp.AppID != id {
		return "unknown", response{http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "Client authentication failed"}}
	}
	label := "sp:" + sp.ID + ":" + x.ID
	if x == s.rootSecret {
		label = "root"
	}
	form, _ := url.ParseQuery(string(raw))
	if form.Get("grant_type") != "client_credentials" || form.Get("scope") != "all-apis" {
		return label, response{http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "grant_type and scope=all-apis are required"}}
	}
	tok := "eyJ" + fakeapi.Hex(20)
	s.tokens[tok] = accessToken{label: label, account: account, exp: s.now().Add(time.Hour)}
	return label, response{http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "scope": "all-apis"}}
}

func (s *Server) route(r *http.Request, raw []byte, account bool) response {
	path := r.URL.Path
	switch {
	case path == "/api/2.0/preview/scim/v2/Me" && r.Method == http.MethodGet:
		if account {
			return apiError(http.StatusUnauthorized, "UNAUTHENTICATED", "An account token cannot call the workspace API.")
		}
		return response{http.StatusOK, map[string]any{"userName": "vault", "active": true}}
	case path == "/api/2.0/token/create" && r.Method == http.MethodPost:
		var in struct {
			Comment  string `json:"comment"`
			Lifetime int64  `json:"lifetime_seconds"`
		}
		_ = json.Unmarshal(raw, &in)
		t := s.newPAT(in.Comment, in.Lifetime)
		exp := int64(-1)
		if !t.Expiry.IsZero() {
			exp = t.Expiry.UnixMilli()
		}
		return response{http.StatusOK, map[string]any{"token_value": t.Value, "token_info": map[string]any{
			"token_id": t.ID, "creation_time": s.now().UnixMilli(), "expiry_time": exp, "comment": t.Comment}}}
	case path == "/api/2.0/token/delete" && r.Method == http.MethodPost:
		var in struct {
			TokenID string `json:"token_id"`
		}
		_ = json.Unmarshal(raw, &in)
		for _, t := range s.pats {
			if t.ID == in.TokenID && !t.Deleted {
				t.Deleted = true
				return response{http.StatusOK, map[string]any{}}
			}
		}
		return apiError(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Token with id "+in.TokenID+" does not exist.")
	case path == "/api/2.0/token/list" && r.Method == http.MethodGet:
		list := []map[string]any{}
		for _, t := range s.pats {
			if s.patLive(t) {
				list = append(list, map[string]any{"token_id": t.ID, "comment": t.Comment})
			}
		}
		return response{http.StatusOK, map[string]any{"token_infos": list}}
	case strings.HasPrefix(path, "/api/2.0/accounts/"+AccountID+"/scim/v2/ServicePrincipals/") && r.Method == http.MethodGet:
		if !account {
			return apiError(http.StatusUnauthorized, "UNAUTHENTICATED", "A workspace token cannot call the account API.")
		}
		return response{http.StatusOK, map[string]any{"id": strings.TrimPrefix(path, "/api/2.0/accounts/"+AccountID+"/scim/v2/ServicePrincipals/")}}
	}
	var rest string
	switch {
	case strings.HasPrefix(path, "/api/2.0/accounts/"+AccountID+"/servicePrincipals/"):
		if !account {
			return apiError(http.StatusUnauthorized, "UNAUTHENTICATED", "A workspace token cannot call the account API.")
		}
		rest = strings.TrimPrefix(path, "/api/2.0/accounts/"+AccountID+"/servicePrincipals/")
	case strings.HasPrefix(path, "/api/2.0/accounts/servicePrincipals/"):
		if account {
			return apiError(http.StatusUnauthorized, "UNAUTHENTICATED", "An account token cannot call the workspace API.")
		}
		rest = strings.TrimPrefix(path, "/api/2.0/accounts/servicePrincipals/")
	default:
		return apiError(http.StatusNotFound, "ENDPOINT_NOT_FOUND", "No API found for '"+r.Method+" "+path+"'")
	}
	seg := strings.Split(rest, "/")
	if len(seg) < 3 || seg[1] != "credentials" || seg[2] != "secrets" {
		return apiError(http.StatusNotFound, "ENDPOINT_NOT_FOUND", "No API found")
	}
	sp := s.sps[seg[0]]
	if sp == nil {
		return apiError(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Service principal "+seg[0]+" does not exist.")
	}
	var live []*SPSecret
	for _, x := range sp.Secrets {
		if !x.Deleted {
			live = append(live, x)
		}
	}
	if len(seg) == 3 {
		switch r.Method {
		case http.MethodPost:
			if len(live) >= 5 {
				return apiError(http.StatusBadRequest, "QUOTA_EXCEEDED", "Service principal "+sp.ID+" already has the maximum of 5 OAuth secrets.")
			}
			var in struct {
				Lifetime string `json:"lifetime"`
			}
			_ = json.Unmarshal(raw, &in)
			var life int64
			if in.Lifetime != "" {
				n, err := strconv.ParseInt(strings.TrimSuffix(in.Lifetime, "s"), 10, 64)
				if err != nil || !strings.HasSuffix(in.Lifetime, "s") {
					return apiError(http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "lifetime must be a duration in seconds such as 3600s")
				}
				life = n
			}
			x := s.newSecret(sp, life)
			v := secretView(x)
			v["secret"] = x.Value
			return response{http.StatusOK, v}
		case http.MethodGet:
			size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
			if size <= 0 || size > 2 {
				size = 2 // small pages, to exercise paging
			}
			start, _ := strconv.Atoi(r.URL.Query().Get("page_token"))
			end := min(start+size, len(live))
			list := []map[string]any{}
			for _, x := range live[min(start, len(live)):end] {
				list = append(list, secretView(x))
			}
			out := map[string]any{"secrets": list}
			if end < len(live) {
				out["next_page_token"] = strconv.Itoa(end)
			}
			return response{http.StatusOK, out}
		}
	}
	if len(seg) == 4 && r.Method == http.MethodDelete {
		for _, x := range live {
			if x.ID == seg[3] {
				x.Deleted = true
				return response{http.StatusOK, map[string]any{}}
			}
		}
		return apiError(http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Secret "+seg[3]+" does not exist.")
	}
	return apiError(http.StatusNotFound, "ENDPOINT_NOT_FOUND", "No API found")
}

func secretView(x *SPSecret) map[string]any {
	return map[string]any{"id": x.ID, "secret_hash": "h" + x.ID[:4], "status": "ACTIVE",
		"create_time": time.Now().UTC().Format(time.RFC3339), "update_time": time.Now().UTC().Format(time.RFC3339),
		"expire_time": x.Expiry.Format(time.RFC3339)}
}
