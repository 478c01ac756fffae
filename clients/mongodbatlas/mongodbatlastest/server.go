// Package mongodbatlastest is an in-memory stand-in for the parts of the
// MongoDB Atlas Administration API v2 that the mongodbatlas provider uses:
// organization API keys (create, list, get, delete) and GET /orgs/{orgId}.
// It follows Atlas's documented HTTP Digest auth (a 401 challenge with
// realm "MMS Public API", qop "auth", MD5), the versioned media type
// application/vnd.atlas.2023-01-01+json, {"error","errorCode","reason",
// "detail"} errors, itemsPerPage/pageNum paging and the RateLimit-* and
// Retry-After headers.
package mongodbatlastest

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// MediaType is the versioned media type the API requires.
const MediaType = "application/vnd.atlas.2023-01-01+json"

// DefaultOrgID is the organization NewServer creates.
const DefaultOrgID = "5a0a1e7e0f2912c554080adc"

const realm = "MMS Public API"

// Recorded is one request as the server saw it. Auth names the key pair
// instead of carrying it: "root" (the seeded pair), "key:<id>" (any other),
// "unknown" (a digest that does not verify), or "" (none). Challenge marks
// the unauthenticated request a digest client sends first, answered with
// the 401 challenge.
type Recorded struct {
	Method    string
	Path      string
	Query     map[string]string
	Auth      string
	Accept    string
	Challenge bool
	Body      map[string]any
	Status    int
}

// Key is an organization API key.
type Key struct {
	ID         string
	Desc       string
	PublicKey  string
	PrivateKey string
	Roles      []string
	Deleted    bool
}

// Server is the fake Atlas API.
type Server struct {
	*httptest.Server
	log fakeapi.Recorder[Recorded]

	mu      sync.Mutex
	keys    []*Key
	rootID  string
	nonces  map[string]bool
	maxPage int
}

// Option configures a Server.
type Option func(*Server)

// WithMaxPage caps itemsPerPage, to exercise paging.
func WithMaxPage(n int) Option { return func(s *Server) { s.maxPage = n } }

// NewServer starts a fake Atlas with one organization owner key (the root).
func NewServer(opts ...Option) *Server {
	s := &Server{nonces: map[string]bool{}, maxPage: 500}
	for _, o := range opts {
		o(s)
	}
	s.rootID = s.newKey("vault-root", []string{"ORG_OWNER"}).ID
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Root returns the seeded key pair.
func (s *Server) Root() Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.byID(s.rootID)
}

// AddKey creates a key directly (as in the Atlas UI).
func (s *Server) AddKey(desc string, roles ...string) Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.newKey(desc, roles)
}

// LiveKeys returns the keys not deleted.
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

// IsLive reports whether secret is the public or private half of a live key.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if !k.Deleted && secret != "" && (k.PrivateKey == secret || k.PublicKey == secret) {
			return true
		}
	}
	return false
}

// FailNext answers the next n authenticated requests with status (a 429
// carries Retry-After: 1 and RateLimit-Remaining: 0).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// LoseNextCreate makes the next create store the key and then answer 500,
// as when the answer is lost.
func (s *Server) LoseNextCreate() { s.log.LoseNextCreate() }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.log.ResetRequests() }

func (s *Server) newKey(desc string, roles []string) *Key {
	k := &Key{ID: fakeapi.Hex(12), Desc: desc, PublicKey: strings.ToLower(fakeapi.Hex(4)),
		PrivateKey: fmt.Sprintf("%s-%s-%s-%s-%s", fakeapi.Hex(4), fakeapi.Hex(2), fakeapi.Hex(2), fakeapi.Hex(2), fakeapi.Hex(6)), Roles: roles}
	s.keys = append(s.keys, k)
	return k
}

func (s *Server) byID(id string) *Key {
	for _, k := range s.keys {
		if k.ID == id {
			return k
		}
	}
	return nil
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// digestParams parses the parameters of a Digest Authorization header.
func digestParams(v string) map[string]string {
	out := map[string]string{}
	for v != "" {
		v = strings.TrimLeft(v, " ,")
		name, rest, ok := strings.Cut(v, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				break
			}
			val, v = rest[1:1+end], rest[2+end:]
		} else {
			val, v, _ = strings.Cut(rest, ",")
		}
		out[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(val)
	}
	return out
}

// authenticate checks a Digest Authorization header (RFC 7616, MD5,
// qop=auth) against the live keys and a nonce this server issued.
func (s *Server) authenticate(r *http.Request) (key *Key, sent bool) {
	rest, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Digest ")
	if !ok {
		return nil, false
	}
	p := digestParams(rest)
	if !s.nonces[p["nonce"]] || p["realm"] != realm || p["uri"] != r.URL.RequestURI() || p["qop"] != "auth" {
		return nil, true
	}
	for _, k := range s.keys {
		if k.Deleted || k.PublicKey != p["username"] {
			continue
		}
		ha1 := md5hex(k.PublicKey + ":" + realm + ":" + k.PrivateKey)
		ha2 := md5hex(r.Method + ":" + p["uri"])
		if md5hex(strings.Join([]string{ha1, p["nonce"], p["nc"], p["cnonce"], p["qop"], ha2}, ":")) == p["response"] {
			return k, true
		}
	}
	return nil, true
}

type response struct {
	status int
	body   any
}

func apiError(status int, code, detail string) response {
	return response{status, map[string]any{"error": status, "errorCode": code, "reason": http.StatusText(status), "detail": detail,
		"parameters": []any{}}}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, validJSON := fakeapi.DecodeBody(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	key, sent := s.authenticate(r)
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: map[string]string{}, Accept: r.Header.Get("Accept"), Body: body}
	for k := range r.URL.Query() {
		rec.Query[k] = r.URL.Query().Get(k)
	}
	switch {
	case key != nil && key.ID == s.rootID:
		rec.Auth = "root"
	case key != nil:
		rec.Auth = "key:" + key.ID
	case sent:
		rec.Auth = "unknown"
	}
	h := w.Header()
	h.Set("RateLimit-Limit", "100")
	h.Set("RateLimit-Remaining", strconv.Itoa(100-s.log.Len()%100))

	var resp response
	failure := 0
	if key != nil {
		failure = s.log.Fail(w)
	}
	if failure == http.StatusUnauthorized || key == nil {
		// Atlas challenges every 401, also one for a key it knew.
		nonce := fakeapi.Hex(16)
		s.nonces[nonce] = true
		h.Set("WWW-Authenticate", fmt.Sprintf(`Digest realm=%q, domain="", nonce=%q, algorithm=MD5, qop="auth", stale=false`, realm, nonce))
	}
	switch {
	case failure == http.StatusTooManyRequests:
		h.Set("RateLimit-Remaining", "0")
		resp = apiError(failure, "RATE_LIMITED", "You have exceeded the rate limit.")
	case failure != 0:
		resp = apiError(failure, "UNEXPECTED_ERROR", "Unexpected error.")
	case key == nil:
		rec.Challenge = !sent
		resp = apiError(http.StatusUnauthorized, "USER_UNAUTHORIZED", "You are not authorized for this resource.")
	case !strings.Contains(r.Header.Get("Accept"), MediaType):
		resp = apiError(http.StatusNotAcceptable, "INVALID_VERSION_DATE", "The API version requested is not supported.")
	case !validJSON:
		resp = apiError(http.StatusBadRequest, "MALFORMED_JSON", "Malformed JSON.")
	default:
		resp = s.route(r, key, body)
	}
	rec.Status = resp.status
	s.log.Record(rec)
	fakeapi.WriteJSON(w, resp.status, resp.body)
}

func keyView(k *Key, full bool) map[string]any {
	roles := []map[string]any{}
	for _, r := range k.Roles {
		roles = append(roles, map[string]any{"orgId": DefaultOrgID, "roleName": r})
	}
	priv := "********-****-****-" + k.PrivateKey[len(k.PrivateKey)-12:]
	if full {
		priv = k.PrivateKey
	}
	return map[string]any{"id": k.ID, "desc": k.Desc, "publicKey": k.PublicKey, "privateKey": priv, "roles": roles,
		"links": []any{}}
}

var orgRoles = map[string]bool{"ORG_OWNER": true, "ORG_MEMBER": true, "ORG_GROUP_CREATOR": true, "ORG_BILLING_ADMIN": true,
	"ORG_BILLING_READ_ONLY": true, "ORG_READ_ONLY": true}

func (s *Server) route(r *http.Request, caller *Key, body map[string]any) response {
	org := "/api/atlas/v2/orgs/" + DefaultOrgID
	if !strings.HasPrefix(r.URL.Path+"/", org+"/") {
		if strings.HasPrefix(r.URL.Path, "/api/atlas/v2/orgs/") {
			return apiError(http.StatusNotFound, "ORG_NOT_FOUND", "Organization not found.")
		}
		return apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "Cannot find resource "+r.URL.Path+".")
	}
	rest := strings.TrimPrefix(r.URL.Path, org)
	if rest == "" && r.Method == http.MethodGet {
		return response{http.StatusOK, map[string]any{"id": DefaultOrgID, "name": "vault-org", "isDeleted": false}}
	}
	if !strings.HasPrefix(rest, "/apiKeys") {
		return apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "Cannot find resource "+r.URL.Path+".")
	}
	owner := false
	for _, role := range caller.Roles {
		owner = owner || role == "ORG_OWNER"
	}
	if !owner {
		return apiError(http.StatusForbidden, "USER_CANNOT_ACCESS_ORG", "The current user does not have permission to manage API keys.")
	}
	switch {
	case rest == "/apiKeys" && r.Method == http.MethodPost:
		desc, _ := body["desc"].(string)
		if l := len(desc); l < 1 || l > 250 {
			return apiError(http.StatusBadRequest, "INVALID_ATTRIBUTE", "Invalid attribute desc specified.")
		}
		list, _ := body["roles"].([]any)
		var roles []string
		for _, x := range list {
			role, _ := x.(string)
			if !orgRoles[role] {
				return apiError(http.StatusBadRequest, "INVALID_ROLE", fmt.Sprintf("Invalid role %v specified.", x))
			}
			roles = append(roles, role)
		}
		if len(roles) == 0 {
			return apiError(http.StatusBadRequest, "MISSING_ATTRIBUTE", "The required attribute roles was not specified.")
		}
		k := s.newKey(desc, roles)
		if s.log.CreateLost() {
			return apiError(http.StatusInternalServerError, "UNEXPECTED_ERROR", "Unexpected error.")
		}
		return response{http.StatusOK, keyView(k, true)}
	case rest == "/apiKeys" && r.Method == http.MethodGet:
		return s.list(r)
	case strings.HasPrefix(rest, "/apiKeys/"):
		k := s.byID(strings.TrimPrefix(rest, "/apiKeys/"))
		if k == nil || k.Deleted {
			return apiError(http.StatusNotFound, "API_KEY_NOT_FOUND", "No API key with ID "+strings.TrimPrefix(rest, "/apiKeys/")+" exists.")
		}
		switch r.Method {
		case http.MethodGet:
			return response{http.StatusOK, keyView(k, false)}
		case http.MethodDelete:
			k.Deleted = true
			return response{http.StatusNoContent, nil}
		}
	}
	return apiError(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed.")
}

func (s *Server) list(r *http.Request) response {
	var all []map[string]any
	for _, k := range s.keys {
		if !k.Deleted {
			all = append(all, keyView(k, false))
		}
	}
	per, err := strconv.Atoi(r.URL.Query().Get("itemsPerPage"))
	if err != nil || per < 1 || per > 500 {
		per = 100
	}
	per = min(per, s.maxPage)
	page, err := strconv.Atoi(r.URL.Query().Get("pageNum"))
	if err != nil || page < 1 {
		page = 1
	}
	start, end := min((page-1)*per, len(all)), min(page*per, len(all))
	results := all[start:end]
	if results == nil {
		results = []map[string]any{}
	}
	return response{http.StatusOK, map[string]any{"results": results, "totalCount": len(all), "links": []any{}}}
}
