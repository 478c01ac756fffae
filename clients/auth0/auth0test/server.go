// Package auth0test is an in-memory stand-in for the parts of an Auth0
// tenant the auth0 provider uses: /oauth/token (client credentials, for
// the Management API and for custom APIs a client is granted), and the
// Management API's /api/v2/clients (create 201, list with page/per_page,
// delete 204), /api/v2/client-grants (201) and
// /api/v2/clients/{id}/rotate-secret (a roll: the old secret dies at once;
// optionally the new one is refused for a while, as Auth0 documents for
// its propagation). Errors use Auth0's {"statusCode","error","message",
// "errorCode"} shape and every answer carries x-ratelimit-limit,
// -remaining and -reset (epoch seconds).
package auth0test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// RootClientID is Vault's own M2M application.
const RootClientID = "vaultRootClient0001"

// API is a custom API (audience) that issued clients can be granted.
const API = "https://api.example.com"

// Recorded is one request as the server saw it. Auth names the credential:
// "root" (a Management API token got with the seeded root secret),
// "mgmt:<fingerprint>" (one got with a rotated root secret),
// "client:<client_id>" (an issued client at /oauth/token), "unknown", "".
type Recorded struct {
	Method string
	Path   string
	Query  map[string]string
	Auth   string
	Body   map[string]any
	Form   map[string]string
	Status int
}

// Client is an application of the tenant.
type Client struct {
	ID      string
	Name    string
	Secret  string
	AppType string
	Grants  map[string][]string // audience -> scopes
	Deleted bool
	// pending: a freshly rotated secret is refused for this many more
	// token requests (propagation).
	pending int
}

type token struct {
	label    string
	audience string
	exp      time.Time
}

// Server is the fake tenant.
type Server struct {
	*httptest.Server

	// Recorder has FailNext (failures to inject), Requests and
	// ResetRequests.
	fakeapi.Recorder[Recorded]

	mu          sync.Mutex
	clients     map[string]*Client
	order       []string
	seedSecret  string
	tokens      map[string]token
	propagation int
	tokenLife   time.Duration
	now         func() time.Time
}

// NewServer starts a tenant with Vault's root M2M application.
func NewServer() *Server {
	s := &Server{clients: map[string]*Client{}, tokens: map[string]token{}, tokenLife: 24 * time.Hour, now: time.Now}
	s.seedSecret = fakeapi.Hex(32)
	s.add(&Client{ID: RootClientID, Name: "vault", Secret: s.seedSecret, AppType: "non_interactive",
		Grants: map[string][]string{}})
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *Server) add(c *Client) {
	s.clients[c.ID] = c
	s.order = append(s.order, c.ID)
}

// RootSecret is the root application's current secret.
func (s *Server) RootSecret() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients[RootClientID].Secret
}

// SetPropagation makes a rotated secret fail its first n token requests.
func (s *Server) SetPropagation(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.propagation = n
}

// SetNow replaces the server's clock (token expiry).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// LiveClients returns the applications not deleted, the root excluded.
func (s *Server) LiveClients() []Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Client
	for _, id := range s.order {
		if c := s.clients[id]; !c.Deleted && id != RootClientID {
			out = append(out, *c)
		}
	}
	return out
}

// IsLive reports whether secret is a live client secret (root included).
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		if !c.Deleted && c.Secret == secret && secret != "" {
			return true
		}
	}
	return false
}

// Fingerprint is the label of a root secret other than the seeded one.
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:4])
}

type response struct {
	status int
	body   any
}

func apiError(status int, errName, message, code string) response {
	b := map[string]any{"statusCode": status, "error": errName, "message": message}
	if code != "" {
		b["errorCode"] = code
	}
	return response{status, b}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, body, form := fakeapi.ReadRequest(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: map[string]string{}, Body: body, Form: fakeapi.FormFields(form, "client_secret")}
	for k := range r.URL.Query() {
		rec.Query[k] = r.URL.Query().Get(k)
	}
	h := w.Header()
	h.Set("x-ratelimit-limit", "50")
	h.Set("x-ratelimit-remaining", strconv.Itoa(49-s.Recorder.Len()%50))
	h.Set("x-ratelimit-reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
	var resp response
	switch failure := s.Recorder.Fail(w); {
	case failure == http.StatusTooManyRequests:
		h.Set("x-ratelimit-remaining", "0")
		resp = apiError(failure, "Too Many Requests", "Global limit has been reached", "too_many_requests")
	case failure != 0:
		resp = apiError(failure, "Internal Server Error", "Internal error", "")
	case r.URL.Path == "/oauth/token" && r.Method == http.MethodPost:
		rec.Auth, resp = s.token(form)
	case strings.HasPrefix(r.URL.Path, "/api/v2/"):
		label, ok := s.mgmtAuth(r.Header.Get("Authorization"))
		rec.Auth = label
		switch {
		case !ok:
			resp = apiError(http.StatusUnauthorized, "Unauthorized", "Invalid token", "")
		case len(raw) > 0 && body == nil:
			resp = apiError(http.StatusBadRequest, "Bad Request", "Invalid request payload JSON format", "")
		default:
			resp = s.route(r, raw)
		}
	default:
		resp = apiError(http.StatusNotFound, "Not Found", "Not Found", "")
	}
	rec.Status = resp.status
	s.Recorder.Record(rec)
	if resp.body == nil {
		w.WriteHeader(resp.status)
		return
	}
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func (s *Server) mgmtAuth(header string) (string, bool) {
	v, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return "", false
	}
	t, ok := s.tokens[v]
	if !ok || !s.now().Before(t.exp) || t.audience != s.URL+"/api/v2/" {
		return "unknown", false
	}
	return t.label, true
}

func (s *Server) token(form url.Values) (string, response) {
	denied := response{http.StatusUnauthorized, map[string]any{"error": "access_denied", "error_description": "Unauthorized"}}
	if form.Get("grant_type") != "client_credentials" {
		return "", response{http.StatusForbidden, map[string]any{"error": "unauthorized_client", "error_description": "Grant type not allowed"}}
	}
	c := s.clients[form.Get("client_id")]
	if c == nil || c.Deleted || c.Secret != form.Get("client_secret") || form.Get("client_secret") == "" {
		return "unknown", denied
	}
	label := "client:" + c.ID
	if c.ID == RootClientID {
		label = "root"
		if c.Secret != s.seedSecret {
			label = "mgmt:" + Fingerprint(c.Secret)
		}
	}
	if c.pending > 0 {
		c.pending--
		return label, denied
	}
	aud := form.Get("audience")
	var scopes []string
	switch {
	case c.ID == RootClientID && aud == s.URL+"/api/v2/":
		scopes = []string{"read:clients", "create:clients", "delete:clients", "create:client_grants", "update:client_keys"}
	case c.Grants[aud] != nil:
		scopes = c.Grants[aud]
	default:
		return label, response{http.StatusForbidden, map[string]any{"error": "access_denied",
			"error_description": "Client is not authorized to access \"" + aud + "\". You need to create a \"client-grant\" associated to this API."}}
	}
	tok := "eyJ" + fakeapi.Hex(20)
	s.tokens[tok] = token{label: label, audience: aud, exp: s.now().Add(s.tokenLife)}
	return label, response{http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer",
		"expires_in": int(s.tokenLife.Seconds()), "scope": strings.Join(scopes, " ")}}
}

func view(c *Client, withSecret bool) map[string]any {
	v := map[string]any{"client_id": c.ID, "name": c.Name, "app_type": c.AppType, "grant_types": []string{"client_credentials"},
		"tenant": "dev-test"}
	if withSecret {
		v["client_secret"] = c.Secret
	}
	return v
}

func (s *Server) route(r *http.Request, raw []byte) response {
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v2/"), "/")
	switch {
	case seg[0] == "clients" && len(seg) == 1 && r.Method == http.MethodPost:
		var in struct {
			Name    string `json:"name"`
			AppType string `json:"app_type"`
		}
		_ = json.Unmarshal(raw, &in)
		if strings.TrimSpace(in.Name) == "" {
			return apiError(http.StatusBadRequest, "Bad Request", "Payload validation error: 'Missing required property: name'.", "invalid_body")
		}
		c := &Client{ID: fakeapi.Hex(16), Name: in.Name, Secret: fakeapi.Hex(32), AppType: in.AppType, Grants: map[string][]string{}}
		s.add(c)
		return response{http.StatusCreated, view(c, true)}
	case seg[0] == "clients" && len(seg) == 1 && r.Method == http.MethodGet:
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		if per <= 0 || per > 100 {
			per = 50
		}
		var all []map[string]any
		for _, id := range s.order {
			if c := s.clients[id]; !c.Deleted {
				all = append(all, map[string]any{"client_id": c.ID, "name": c.Name})
			}
		}
		out := []map[string]any{}
		if start := page * per; start < len(all) {
			out = all[start:min(start+per, len(all))]
		}
		return response{http.StatusOK, out}
	case seg[0] == "clients" && len(seg) >= 2:
		c := s.clients[seg[1]]
		if c == nil || c.Deleted {
			return apiError(http.StatusNotFound, "Not Found", "The client does not exist", "inexistent_client")
		}
		switch {
		case len(seg) == 2 && r.Method == http.MethodDelete:
			c.Deleted = true
			return response{http.StatusNoContent, nil}
		case len(seg) == 2 && r.Method == http.MethodGet:
			return response{http.StatusOK, view(c, false)}
		case len(seg) == 3 && seg[2] == "rotate-secret" && r.Method == http.MethodPost:
			c.Secret = fakeapi.Hex(32)
			c.pending = s.propagation
			return response{http.StatusOK, view(c, true)}
		}
	case seg[0] == "client-grants" && len(seg) == 1 && r.Method == http.MethodPost:
		var in struct {
			ClientID string   `json:"client_id"`
			Audience string   `json:"audience"`
			Scope    []string `json:"scope"`
		}
		if err := json.Unmarshal(raw, &in); err != nil || in.Scope == nil {
			return apiError(http.StatusBadRequest, "Bad Request", "Payload validation error: 'Missing required property: scope'.", "invalid_body")
		}
		c := s.clients[in.ClientID]
		if c == nil || c.Deleted {
			return apiError(http.StatusNotFound, "Not Found", "Client not found", "inexistent_client")
		}
		if in.Audience != API {
			return apiError(http.StatusNotFound, "Not Found", "No resource with identifier "+in.Audience, "inexistent_resource_server")
		}
		c.Grants[in.Audience] = in.Scope
		return response{http.StatusCreated, map[string]any{"id": "cgr_" + fakeapi.Hex(8), "client_id": c.ID, "audience": in.Audience, "scope": in.Scope}}
	}
	return apiError(http.StatusNotFound, "Not Found", "Not Found", "")
}
