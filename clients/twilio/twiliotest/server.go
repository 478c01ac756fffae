// Package twiliotest is an in-memory fake of the Twilio endpoints the twilio
// provider uses: the 2010-04-01 Account, Balance, Applications and Keys resources
// (api.twilio.com), the IAM v1 Keys resource (iam.twilio.com) and the Auth
// Token resources (accounts.twilio.com). One server answers all three hosts'
// paths, so base_url, iam_base_url and accounts_base_url can all point at it.
package twiliotest

import (
	"encoding/json"
	"fmt"
	"io"
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

// Key types.
const (
	KeyMain       = "main"
	KeyStandard   = "standard"
	KeyRestricted = "restricted"
)

// Recorded is one request the server received. Auth names the credential
// instead of carrying it: "auth_token" (the primary), "auth_token:secondary",
// "key:<sid>", "invalid", or "" when none was sent.
type Recorded struct {
	Method string
	Path   string
	Query  url.Values
	Auth   string
	// Body holds the decoded form fields (first value of each).
	Body map[string]any
}

// Key is a live API key as the fake stores it.
type Key struct {
	SID          string
	FriendlyName string
	Secret       string
	Type         string
	Policy       string
	Created      time.Time
}

// Server is the fake Twilio API.
type Server struct {
	*httptest.Server

	log fakeapi.Recorder[Recorded]

	mu         sync.Mutex
	accountSID string
	primary    string
	secondary  string
	keys       map[string]*Key
	// subaccount: the account is a child account, which Twilio gives no
	// balance (Balance.json answers 404).
	subaccount bool
	// noIAM: the IAM host does not know the account's credentials (an
	// account of another region): /v1/Keys answers 401.
	noIAM bool
}

// AsSubaccount makes the account a child account: no balance information.
func AsSubaccount() Option { return func(s *Server) { s.subaccount = true } }

// WithoutIAM makes the IAM paths (/v1/Keys) refuse the account's
// credentials, as the US-only IAM host does for an account of another
// region.
func WithoutIAM() Option { return func(s *Server) { s.noIAM = true } }

// Option configures a Server.
type Option func(*Server)

// WithMainKey seeds a Main API key (see MainKey).
func WithMainKey() Option {
	return func(s *Server) {
		k := newKey("vault main key", KeyMain, "")
		s.keys[k.SID] = k
	}
}

// NewServer starts a fake account seeded with a primary Auth Token.
func NewServer(opts ...Option) *Server {
	s := &Server{accountSID: "AC" + fakeapi.Hex(16), primary: fakeapi.Hex(16), keys: map[string]*Key{}}
	for _, o := range opts {
		o(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func newKey(name, typ, policy string) *Key {
	return &Key{SID: "SK" + fakeapi.Hex(16), FriendlyName: name, Secret: fakeapi.Hex(16), Type: typ, Policy: policy, Created: time.Now().UTC()}
}

// AccountSID is the fake account's SID.
func (s *Server) AccountSID() string { return s.accountSID }

// AuthToken is the current primary Auth Token.
func (s *Server) AuthToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.primary
}

// SecondaryAuthToken is the current secondary Auth Token ("" when none).
func (s *Server) SecondaryAuthToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.secondary
}

// MainKey returns the SID and secret of a live Main key (seeded by WithMainKey).
func (s *Server) MainKey() (sid, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.sorted() {
		if k.Type == KeyMain {
			return k.SID, k.Secret
		}
	}
	return "", ""
}

// FailNext answers the next n requests with status (429s carry Retry-After: 1).
func (s *Server) FailNext(n, status int) { s.log.FailNext(n, status) }

// Requests returns every request received so far.
func (s *Server) Requests() []Recorded { return s.log.Requests() }

// LiveKeys returns a copy of every live API key.
func (s *Server) LiveKeys() []Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Key
	for _, k := range s.sorted() {
		out = append(out, *k)
	}
	return out
}

// IsLive reports whether secret is a live key secret or Auth Token.
func (s *Server) IsLive(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if secret == "" {
		return false
	}
	if secret == s.primary || secret == s.secondary {
		return true
	}
	for _, k := range s.keys {
		if k.Secret == secret {
			return true
		}
	}
	return false
}

func (s *Server) sorted() []*Key {
	out := make([]*Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].SID < out[j].SID
	})
	return out
}

// principal is who a request authenticated as.
type principal struct {
	kind string // "primary", "secondary", "key"
	key  *Key
}

// accountLevel: the Auth Token or a Main key.
func (p *principal) accountLevel() bool {
	return p != nil && (p.kind != "key" || p.key.Type == KeyMain)
}

func (s *Server) authenticate(r *http.Request) (*principal, string) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil, ""
	}
	if user == s.accountSID {
		switch {
		case pass == s.primary:
			return &principal{kind: "primary"}, "auth_token"
		case s.secondary != "" && pass == s.secondary:
			return &principal{kind: "secondary"}, "auth_token:secondary"
		}
		return nil, "invalid"
	}
	if k := s.keys[user]; k != nil && k.Secret == pass {
		return &principal{kind: "key", key: k}, "key:" + k.SID
	}
	return nil, "invalid"
}

func writeError(w http.ResponseWriter, status, code int, msg string) {
	fakeapi.WriteJSON(w, status, map[string]any{
		"code": code, "message": msg, "status": status,
		"more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
	})
}

func rfc2822(t time.Time) string { return t.Format("Mon, 02 Jan 2006 15:04:05 -0700") }

func (s *Server) keyJSON(k *Key, withSecret bool) map[string]any {
	m := map[string]any{
		"sid": k.SID, "friendly_name": k.FriendlyName,
		"date_created": rfc2822(k.Created), "date_updated": rfc2822(k.Created),
	}
	if withSecret {
		m["secret"] = k.Secret
	}
	return m
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()

	who, auth := s.authenticate(r)
	rec := Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Auth: auth}
	form, _ := url.ParseQuery(string(raw))
	if len(form) > 0 {
		rec.Body = map[string]any{}
		for k, v := range form {
			rec.Body[k] = v[0]
		}
	}
	s.log.Record(rec)

	if status := s.log.Fail(w); status != 0 {
		if status == http.StatusTooManyRequests {
			writeError(w, status, 20429, "Too Many Requests")
			return
		}
		writeError(w, status, 20500, "Internal Server Error")
		return
	}
	if who == nil {
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}

	p := r.URL.Path
	acctPrefix := "/2010-04-01/Accounts/" + s.accountSID
	switch {
	case strings.HasPrefix(p, "/2010-04-01/Accounts/") && !strings.HasPrefix(p, acctPrefix):
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")

	case p == acctPrefix+".json" && r.Method == http.MethodGet:
		if !who.accountLevel() {
			writeError(w, http.StatusUnauthorized, 20003, "Authentication Error - invalid username")
			return
		}
		fakeapi.WriteJSON(w, http.StatusOK, map[string]any{
			"sid": s.accountSID, "owner_account_sid": s.accountSID, "friendly_name": "fake account",
			"status": "active", "type": "Full", "auth_token": s.primary,
		})

	case strings.HasPrefix(p, "/v1/Keys") && s.noIAM:
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")

	case p == acctPrefix+"/Balance.json" && r.Method == http.MethodGet && s.subaccount:
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+p+" was not found")

	case p == acctPrefix+"/Applications.json" && r.Method == http.MethodGet:
		if who.kind == "key" && who.key.Type == KeyRestricted {
			writeError(w, http.StatusForbidden, 20403, "Forbidden")
			return
		}
		fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"applications": []any{}, "page": 0, "page_size": 1,
			"uri": p + "?PageSize=1&Page=0", "next_page_uri": nil, "previous_page_uri": nil})

	case p == acctPrefix+"/Balance.json" && r.Method == http.MethodGet:
		if who.kind == "key" && who.key.Type == KeyRestricted {
			writeError(w, http.StatusForbidden, 20403, "Forbidden")
			return
		}
		fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"account_sid": s.accountSID, "balance": "10.00", "currency": "USD"})

	case p == acctPrefix+"/Keys.json":
		if !who.accountLevel() {
			writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
			return
		}
		switch r.Method {
		case http.MethodPost:
			name := form.Get("FriendlyName")
			if len(name) > 64 {
				writeError(w, http.StatusBadRequest, 21610, "FriendlyName must be at most 64 characters")
				return
			}
			k := newKey(name, KeyStandard, "")
			s.keys[k.SID] = k
			fakeapi.WriteJSON(w, http.StatusCreated, s.keyJSON(k, true))
		case http.MethodGet:
			s.listKeys(w, r, acctPrefix)
		default:
			writeError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		}

	case strings.HasPrefix(p, acctPrefix+"/Keys/") && strings.HasSuffix(p, ".json"):
		if !who.accountLevel() {
			writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
			return
		}
		s.oneKey(w, r, strings.TrimSuffix(strings.TrimPrefix(p, acctPrefix+"/Keys/"), ".json"))

	case p == "/v1/Keys" && r.Method == http.MethodPost:
		if !who.accountLevel() {
			writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
			return
		}
		if form.Get("AccountSid") != s.accountSID {
			writeError(w, http.StatusBadRequest, 20001, "AccountSid is invalid")
			return
		}
		typ := form.Get("KeyType")
		if typ != KeyRestricted && typ != KeyStandard && typ != "" {
			writeError(w, http.StatusBadRequest, 20001, "KeyType is invalid")
			return
		}
		policy := form.Get("Policy")
		if typ == KeyRestricted {
			var obj map[string]any
			if json.Unmarshal([]byte(policy), &obj) != nil || obj == nil {
				writeError(w, http.StatusBadRequest, 20001, "Policy must be a JSON object")
				return
			}
		} else {
			typ = KeyStandard
		}
		if len(form.Get("FriendlyName")) > 64 {
			writeError(w, http.StatusBadRequest, 21610, "FriendlyName must be at most 64 characters")
			return
		}
		k := newKey(form.Get("FriendlyName"), typ, policy)
		s.keys[k.SID] = k
		m := s.keyJSON(k, true)
		if policy != "" {
			m["policy"] = json.RawMessage(policy)
		}
		fakeapi.WriteJSON(w, http.StatusCreated, m)

	case strings.HasPrefix(p, "/v1/Keys/"):
		if !who.accountLevel() {
			writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
			return
		}
		s.oneKey(w, r, strings.TrimPrefix(p, "/v1/Keys/"))

	case strings.HasPrefix(p, "/v1/AuthTokens/"):
		if !who.accountLevel() {
			writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
			return
		}
		s.authTokens(w, r)

	default:
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+p+" was not found")
	}
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, prefix string) {
	size, _ := strconv.Atoi(r.URL.Query().Get("PageSize"))
	if size <= 0 {
		size = 50
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("Page"))
	all := s.sorted()
	start := page * size
	if start > len(all) {
		start = len(all)
	}
	end := start + size
	if end > len(all) {
		end = len(all)
	}
	keys := make([]map[string]any, 0, end-start)
	for _, k := range all[start:end] {
		keys = append(keys, s.keyJSON(k, false))
	}
	var next any
	if end < len(all) {
		next = fmt.Sprintf("%s/Keys.json?PageSize=%d&Page=%d&PageToken=PA%d", prefix, size, page+1, end)
	}
	fakeapi.WriteJSON(w, http.StatusOK, map[string]any{
		"keys": keys, "page": page, "page_size": size, "next_page_uri": next,
		"uri": fmt.Sprintf("%s/Keys.json?PageSize=%d&Page=%d", prefix, size, page),
	})
}

func (s *Server) oneKey(w http.ResponseWriter, r *http.Request, sid string) {
	k := s.keys[sid]
	if k == nil {
		writeError(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	switch r.Method {
	case http.MethodGet:
		fakeapi.WriteJSON(w, http.StatusOK, s.keyJSON(k, false))
	case http.MethodDelete:
		delete(s.keys, sid)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
	}
}

func (s *Server) authTokens(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UTC().Format(time.RFC3339)
	switch {
	case r.URL.Path == "/v1/AuthTokens/Secondary" && r.Method == http.MethodPost:
		s.secondary = fakeapi.Hex(16)
		fakeapi.WriteJSON(w, http.StatusCreated, map[string]any{
			"account_sid": s.accountSID, "secondary_auth_token": s.secondary,
			"date_created": now, "date_updated": now, "url": "https://accounts.twilio.com/v1/AuthTokens/Secondary",
		})
	case r.URL.Path == "/v1/AuthTokens/Secondary" && r.Method == http.MethodDelete:
		if s.secondary == "" {
			writeError(w, http.StatusNotFound, 20404, "No secondary auth token")
			return
		}
		s.secondary = ""
		w.WriteHeader(http.StatusNoContent)
	case r.URL.Path == "/v1/AuthTokens/Promote" && r.Method == http.MethodPost:
		if s.secondary == "" {
			writeError(w, http.StatusNotFound, 20404, "No secondary auth token to promote")
			return
		}
		s.primary, s.secondary = s.secondary, ""
		fakeapi.WriteJSON(w, http.StatusOK, map[string]any{
			"account_sid": s.accountSID, "auth_token": s.primary,
			"date_created": now, "date_updated": now, "url": "https://accounts.twilio.com/v1/AuthTokens",
		})
	default:
		writeError(w, http.StatusNotFound, 20404, "The requested resource was not found")
	}
}

// AddKey stores a standard key named name created at created, as a key made
// in the Console at that time would be, and returns it.
func (s *Server) AddKey(name string, created time.Time) Key {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := newKey(name, KeyStandard, "")
	k.Created = created.UTC()
	s.keys[k.SID] = k
	return *k
}
