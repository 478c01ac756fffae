// Package oktatest is an in-memory stand-in for the parts of Okta the okta
// provider uses: one OAuth app's client secrets (at most two per app; only
// an INACTIVE secret can be deleted; the last active one cannot be
// deactivated), a custom authorization server's token endpoint that
// accepts the app's ACTIVE secrets (client_credentials, HTTP Basic), an
// OAuth service app whose JWKS keys sign private_key_jwt assertions at the
// org token endpoint for management access tokens, and an SSWS API token.
// Errors use Okta's {"errorCode","errorSummary",…} shape (OAuth errors at
// the token endpoints), and every answer carries X-Rate-Limit-Limit,
// -Remaining and -Reset (epoch seconds); a 429 has no Retry-After, as on
// Okta.
package oktatest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// Recorded is one request as the server saw it. Auth names the credential
// instead of carrying it: "root" (the SSWS token, or an access token of
// the seeded service-app key), "jwk:<kid>" (an access token minted with
// another key), "assertion:<kid>" (a client assertion at the org token
// endpoint), "secret:<id>" (an app client secret at the custom server's
// token endpoint), "unknown", or "" (none).
type Recorded struct {
	Method string
	Path   string
	Query  map[string]string
	Auth   string
	Body   map[string]any
	Form   map[string]string
	Status int
}

// Secret is one client secret of the app.
type Secret struct {
	ID      string
	Status  string // ACTIVE or INACTIVE
	Value   string
	Created time.Time
}

// JWK is one key of the service app's JWKS.
type JWK struct {
	ID     string
	Kid    string
	Status string
	Key    jose.JSONWebKey
}

// Server is the fake Okta org.
type Server struct {
	*httptest.Server

	// Recorder has FailNext (failures to inject), Requests and
	// ResetRequests.
	fakeapi.Recorder[Recorded]

	mu         sync.Mutex
	apiToken   string
	appID      string
	secrets    []*Secret
	deleted    []*Secret
	maxSecrets int // high-water mark of secret objects on the app
	serviceID  string
	jwks       []*JWK
	seededKid  string
	seededPEM  string
	tokens     map[string]tokenInfo
	now        func() time.Time
	// failCreate answers the next secret create with this status (after
	// creating the secret when createAnyway).
	failCreate   int
	createAnyway bool
}

type tokenInfo struct {
	kid string
	exp time.Time
}

// AppID is the OAuth app whose secrets are issued (its client_id too).
const AppID = "0oaapp0001"

// ServiceClientID is the service app's client_id.
const ServiceClientID = "0oasvc0001"

// Option configures a Server.
type Option func(*Server)

// WithSecret seeds the app with an ACTIVE client secret (one made with the
// app, before Vault), returning nothing; see Secrets.
func WithSecret() Option {
	return func(s *Server) { s.newSecret() }
}

// NewServer starts a fake Okta org: an SSWS token, an app with no client
// secret, and a service app with one ACTIVE EC P-256 key.
func NewServer(opts ...Option) *Server {
	s := &Server{apiToken: "00" + fakeapi.Hex(20), appID: AppID, serviceID: ServiceClientID,
		tokens: map[string]tokenInfo{}, now: time.Now}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	s.seededPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	s.seededKid = "vault-seed-" + fakeapi.Hex(4)
	s.jwks = append(s.jwks, &JWK{ID: "pks" + fakeapi.Hex(8), Kid: s.seededKid, Status: "ACTIVE",
		Key: jose.JSONWebKey{Key: key.Public(), KeyID: s.seededKid, Algorithm: "ES256", Use: "sig"}})
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// APIToken is the SSWS token.
func (s *Server) APIToken() string { return s.apiToken }

// ServiceKey returns the seeded service-app key: its PEM and kid.
func (s *Server) ServiceKey() (pemKey, kid string) { return s.seededPEM, s.seededKid }

// SetNow replaces the server's clock (access token expiry).
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Secrets returns the app's client secrets (not deleted).
func (s *Server) Secrets() []Secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Secret, 0, len(s.secrets))
	for _, x := range s.secrets {
		out = append(out, *x)
	}
	return out
}

// MaxSecrets is the most client secrets the app ever held at once.
func (s *Server) MaxSecrets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxSecrets
}

// JWKS returns the service app's keys.
func (s *Server) JWKS() []JWK {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JWK, 0, len(s.jwks))
	for _, k := range s.jwks {
		out = append(out, *k)
	}
	return out
}

// IsLive reports whether secret authenticates: the SSWS token, an ACTIVE
// client secret of the app, or a PEM private key whose public half is an
// ACTIVE key of the service app.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if secret == "" {
		return false
	}
	if secret == s.apiToken {
		return true
	}
	if x := s.secretByValue(secret); x != nil && x.Status == "ACTIVE" {
		return true
	}
	if block, _ := pem.Decode([]byte(secret)); block != nil {
		if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			pub, _ := json.Marshal(jose.JSONWebKey{Key: publicOf(k)})
			for _, j := range s.jwks {
				mine, _ := json.Marshal(jose.JSONWebKey{Key: j.Key.Key})
				if j.Status == "ACTIVE" && string(mine) == string(pub) {
					return true
				}
			}
		}
	}
	return false
}

func publicOf(k any) any {
	if sg, ok := k.(crypto.Signer); ok {
		return sg.Public()
	}
	return nil
}

// FailNextCreate answers the next client secret create with status; with
// created, the secret is made anyway (the answer is lost), as a 500 from a
// server that did the work.
func (s *Server) FailNextCreate(status int, created bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCreate, s.createAnyway = status, created
}

func (s *Server) newSecret() *Secret {
	x := &Secret{ID: "ocs" + fakeapi.Hex(8), Status: "ACTIVE", Value: fakeapi.Hex(32), Created: time.Now().UTC()}
	s.secrets = append(s.secrets, x)
	s.maxSecrets = max(s.maxSecrets, len(s.secrets))
	return x
}

func (s *Server) secretByValue(v string) *Secret {
	for _, x := range s.secrets {
		if x.Value == v {
			return x
		}
	}
	return nil
}

type response struct {
	status int
	body   any
}

func oktaError(status int, code, summary string, causes ...string) response {
	var cs []map[string]string
	for _, c := range causes {
		cs = append(cs, map[string]string{"errorSummary": c})
	}
	if cs == nil {
		cs = []map[string]string{}
	}
	return response{status, map[string]any{"errorCode": code, "errorSummary": summary,
		"errorLink": code, "errorId": "oae" + fakeapi.Hex(6), "errorCauses": cs}}
}

func oauthError(status int, code, desc string) response {
	return response{status, map[string]any{"error": code, "error_description": desc}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, body, form := fakeapi.ReadRequest(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: map[string]string{}, Body: body, Form: fakeapi.FormFields(form, "client_assertion")}
	for k := range r.URL.Query() {
		rec.Query[k] = r.URL.Query().Get(k)
	}
	now := s.now()
	date := time.Now().UTC().Truncate(time.Second)
	h := w.Header()
	h.Set("Date", date.Format(http.TimeFormat))
	h.Set("X-Rate-Limit-Limit", "600")
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(599-s.Recorder.Len()%600))
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(date.Add(time.Minute).Unix(), 10))

	var resp response
	failure := s.Recorder.Fail(w)
	switch {
	case failure == http.StatusTooManyRequests:
		h.Del("Retry-After")
		h.Set("X-Rate-Limit-Remaining", "0")
		h.Set("X-Rate-Limit-Reset", strconv.FormatInt(date.Add(time.Second).Unix(), 10))
		resp = oktaError(failure, "E0000047", "API call exceeded rate limit due to too many requests.")
	case failure != 0:
		resp = oktaError(failure, "E0000009", "Internal Server Error")
	case r.URL.Path == "/oauth2/v1/token":
		rec.Auth, resp = s.orgToken(form, now)
	case strings.HasPrefix(r.URL.Path, "/oauth2/") && strings.HasSuffix(r.URL.Path, "/v1/token"):
		rec.Auth, resp = s.appToken(r, form)
	case strings.HasPrefix(r.URL.Path, "/api/v1/"):
		var ok bool
		rec.Auth, ok = s.apiAuth(r.Header.Get("Authorization"), now)
		switch {
		case !ok:
			resp = oktaError(http.StatusUnauthorized, "E0000011", "Invalid token provided")
		case len(raw) > 0 && body == nil && form == nil:
			resp = oktaError(http.StatusBadRequest, "E0000003", "The request body was not well-formed.")
		default:
			resp = s.route(r, raw)
		}
	default:
		resp = oktaError(http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
	}
	rec.Status = resp.status
	s.Recorder.Record(rec)
	if resp.body == nil {
		w.WriteHeader(resp.status)
		return
	}
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

// apiAuth labels the management credential: SSWS token or an unexpired
// access token minted for the service app.
func (s *Server) apiAuth(header string, now time.Time) (string, bool) {
	if v, ok := strings.CutPrefix(header, "SSWS "); ok {
		if v == s.apiToken {
			return "root", true
		}
		return "unknown", false
	}
	if v, ok := strings.CutPrefix(header, "Bearer "); ok {
		if t, ok := s.tokens[v]; ok && now.Before(t.exp) {
			if t.kid == s.seededKid {
				return "root", true
			}
			return "jwk:" + t.kid, true
		}
		return "unknown", false
	}
	if header == "" {
		return "", false
	}
	return "unknown", false
}

// orgToken is POST /oauth2/v1/token for the service app (private_key_jwt).
func (s *Server) orgToken(form url.Values, now time.Time) (string, response) {
	if form.Get("grant_type") != "client_credentials" {
		return "", oauthError(http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported by the authorization server.")
	}
	if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return "", oauthError(http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
	}
	jws, err := jose.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return "unknown", oauthError(http.StatusBadRequest, "invalid_client", "The client_assertion token is invalid.")
	}
	kid := jws.Signatures[0].Header.KeyID
	label := "assertion:" + kid
	var key *JWK
	for _, k := range s.jwks {
		if k.Kid == kid && k.Status == "ACTIVE" {
			key = k
		}
	}
	if key == nil {
		return label, oauthError(http.StatusBadRequest, "invalid_client", "The client_assertion signature is invalid.")
	}
	payload, err := jws.Verify(key.Key.Key)
	if err != nil {
		return label, oauthError(http.StatusBadRequest, "invalid_client", "The client_assertion signature is invalid.")
	}
	var c struct {
		Iss, Sub, Aud string
		Exp           int64
	}
	_ = json.Unmarshal(payload, &c)
	if c.Iss != s.serviceID || c.Sub != s.serviceID || c.Aud != s.URL+"/oauth2/v1/token" || now.Unix() > c.Exp {
		return label, oauthError(http.StatusBadRequest, "invalid_client", "The client_assertion token has an invalid claim.")
	}
	for _, sc := range strings.Fields(form.Get("scope")) {
		if sc != "okta.apps.read" && sc != "okta.apps.manage" {
			return label, oauthError(http.StatusBadRequest, "invalid_scope", "The following scopes are not allowed: "+sc)
		}
	}
	tok := "eyJ" + fakeapi.Hex(24)
	s.tokens[tok] = tokenInfo{kid: kid, exp: now.Add(time.Hour)}
	return label, response{http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3600,
		"access_token": tok, "scope": form.Get("scope")}}
}

// appToken is POST /oauth2/{server}/v1/token for the app (client secret).
func (s *Server) appToken(r *http.Request, form url.Values) (string, response) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		return "", oauthError(http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
	}
	x := s.secretByValue(secret)
	if id != s.appID || x == nil || x.Status != "ACTIVE" {
		return "unknown", oauthError(http.StatusUnauthorized, "invalid_client", "The client secret supplied for a confidential client is invalid.")
	}
	if form.Get("grant_type") != "client_credentials" {
		return "secret:" + x.ID, oauthError(http.StatusBadRequest, "unsupported_grant_type", "The authorization grant type is not supported.")
	}
	return "secret:" + x.ID, response{http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3600,
		"access_token": "eyJ" + fakeapi.Hex(16), "scope": form.Get("scope")}}
}

func (s *Server) route(r *http.Request, raw []byte) response {
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	if len(seg) < 4 || seg[0] != "apps" || seg[2] != "credentials" {
		return oktaError(http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
	}
	switch {
	case seg[1] == s.appID && seg[3] == "secrets":
		return s.secretsRoute(r, seg[4:], raw)
	case seg[1] == s.serviceID && seg[3] == "jwks":
		return s.jwksRoute(r, seg[4:], raw)
	}
	return oktaError(http.StatusNotFound, "E0000007", "Not found: Resource not found: "+seg[1]+" (AppInstance)")
}

func secretView(x *Secret, withValue bool) map[string]any {
	v := map[string]any{"id": x.ID, "status": x.Status, "secret_hash": "h" + x.ID, "created": x.Created.Format(time.RFC3339),
		"lastUpdated": x.Created.Format(time.RFC3339), "_links": map[string]any{}}
	if withValue {
		v["client_secret"] = x.Value
	} else {
		v["client_secret"] = x.Value[:4] + strings.Repeat("*", 20)
	}
	return v
}

func (s *Server) secretsRoute(r *http.Request, rest []string, raw []byte) response {
	if len(rest) == 0 {
		switch r.Method {
		case http.MethodGet:
			list := []map[string]any{}
			for _, x := range s.secrets {
				list = append(list, secretView(x, false))
			}
			return response{http.StatusOK, list}
		case http.MethodPost:
			if st := s.failCreate; st != 0 {
				s.failCreate = 0
				if s.createAnyway {
					s.newSecret()
				}
				return oktaError(st, "E0000009", "Internal Server Error")
			}
			if len(s.secrets) >= 2 {
				return oktaError(http.StatusBadRequest, "E0000001", "Api validation failed: client_secret",
					"client_secret: You can't create a new secret, maximum number of secrets is reached. Delete an existing secret to create a new one.")
			}
			x := s.newSecret()
			var in struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal(raw, &in)
			if in.Status == "INACTIVE" {
				x.Status = "INACTIVE"
			}
			return response{http.StatusCreated, secretView(x, true)}
		}
		return oktaError(http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method")
	}
	idx := -1
	for i, x := range s.secrets {
		if x.ID == rest[0] {
			idx = i
		}
	}
	if idx < 0 {
		return oktaError(http.StatusNotFound, "E0000007", "Not found: Resource not found: "+rest[0]+" (OAuth2ClientSecret)")
	}
	x := s.secrets[idx]
	switch {
	case len(rest) == 1 && r.Method == http.MethodGet:
		return response{http.StatusOK, secretView(x, false)}
	case len(rest) == 1 && r.Method == http.MethodDelete:
		if x.Status == "ACTIVE" {
			return oktaError(http.StatusBadRequest, "E0000001", "Api validation failed: client_secret",
				"client_secret: You can't delete an active secret. Deactivate it first.")
		}
		s.secrets = append(s.secrets[:idx], s.secrets[idx+1:]...)
		s.deleted = append(s.deleted, x)
		return response{http.StatusNoContent, nil}
	case len(rest) == 3 && rest[1] == "lifecycle" && r.Method == http.MethodPost:
		switch rest[2] {
		case "deactivate":
			active := 0
			for _, y := range s.secrets {
				if y.Status == "ACTIVE" {
					active++
				}
			}
			if x.Status == "ACTIVE" && active == 1 {
				return oktaError(http.StatusBadRequest, "E0000001", "Api validation failed: client_secret",
					"client_secret: You can't deactivate the only active secret.")
			}
			x.Status = "INACTIVE"
			return response{http.StatusOK, secretView(x, false)}
		case "activate":
			x.Status = "ACTIVE"
			return response{http.StatusOK, secretView(x, false)}
		}
	}
	return oktaError(http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
}

func jwkView(k *JWK) map[string]any {
	v := map[string]any{}
	b, _ := k.Key.MarshalJSON()
	_ = json.Unmarshal(b, &v)
	v["id"], v["kid"], v["status"] = k.ID, k.Kid, k.Status
	return v
}

func (s *Server) jwksRoute(r *http.Request, rest []string, raw []byte) response {
	if len(rest) == 0 {
		switch r.Method {
		case http.MethodGet:
			list := []map[string]any{}
			for _, k := range s.jwks {
				list = append(list, jwkView(k))
			}
			return response{http.StatusOK, list}
		case http.MethodPost:
			var key jose.JSONWebKey
			if err := key.UnmarshalJSON(raw); err != nil || !key.IsPublic() || key.KeyID == "" {
				return oktaError(http.StatusBadRequest, "E0000001", "Api validation failed: jwks", "jwks: The key is not a valid public JWK.")
			}
			for _, k := range s.jwks {
				if k.Kid == key.KeyID {
					return oktaError(http.StatusBadRequest, "E0000001", "Api validation failed: kid", "kid: A key with this kid already exists.")
				}
			}
			var in struct {
				Status string `json:"status"`
			}
			_ = json.Unmarshal(raw, &in)
			k := &JWK{ID: "pks" + fakeapi.Hex(8), Kid: key.KeyID, Status: "ACTIVE", Key: key}
			if in.Status == "INACTIVE" {
				k.Status = "INACTIVE"
			}
			s.jwks = append(s.jwks, k)
			return response{http.StatusCreated, jwkView(k)}
		}
		return oktaError(http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method")
	}
	idx := -1
	for i, k := range s.jwks {
		if k.ID == rest[0] {
			idx = i
		}
	}
	if idx < 0 {
		return oktaError(http.StatusNotFound, "E0000007", "Not found: Resource not found: "+rest[0]+" (JsonWebKey)")
	}
	k := s.jwks[idx]
	switch {
	case len(rest) == 1 && r.Method == http.MethodGet:
		return response{http.StatusOK, jwkView(k)}
	case len(rest) == 1 && r.Method == http.MethodDelete:
		if k.Status == "ACTIVE" {
			return oktaError(http.StatusBadRequest, "E0000001", "Api validation failed: jwks", "jwks: You can't delete an active key. Deactivate it first.")
		}
		s.jwks = append(s.jwks[:idx], s.jwks[idx+1:]...)
		return response{http.StatusNoContent, nil}
	case len(rest) == 3 && rest[1] == "lifecycle" && r.Method == http.MethodPost:
		switch rest[2] {
		case "deactivate":
			k.Status = "INACTIVE"
		case "activate":
			k.Status = "ACTIVE"
		default:
			return oktaError(http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
		}
		return response{http.StatusOK, jwkView(k)}
	}
	return oktaError(http.StatusNotFound, "E0000022", "The endpoint does not support the provided HTTP method")
}

// String describes the server without secrets.
func (s *Server) String() string { return fmt.Sprintf("oktatest(%s)", s.URL) }
