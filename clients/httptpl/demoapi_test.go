package httptpl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/fakeapi"
)

// demoAPI is an httptest stand-in for the API cmd/demo-provider serves:
//
//	POST   /v1/keys {"name","scopes","expires_at"} → 201 {"id","name","key","created_at","expires_at"}
//	GET    /v1/keys?name=                         → 200 {"keys":[{"id","name","created_at","expires_at"}]}
//	DELETE /v1/keys/{id}                          → 204 | 404
//	GET    /v1/whoami (any live key)              → 200 {"id","name","kind"} | 401
//	POST   /v1/admin-keys {"name"}                → 201 {"id","name","admin_key"}
//	DELETE /v1/admin-keys/{id}                    → 204 | 404
//	POST   /v1/admin-keys/roll (test-only)        → 200 {"id","admin_key"}: the caller's admin key is replaced
//
// Every endpoint but whoami needs an admin key as "Authorization: Bearer".
// Errors are {"error":{"code":…,"message":…}}; the last admin key cannot be
// deleted (409), as in docs/demo-provider.md.
type demoAPI struct {
	*httptest.Server
	// FailNext and Requests.
	fakeapi.Recorder[demoRequest]

	mu         sync.Mutex
	seq        int
	admins     map[string]*demoCred // by id
	keys       map[string]*demoCred // by id
	omitSecret bool
}

type demoCred struct {
	id, name, secret string
	scopes           []string
	expires          time.Time
	created          time.Time
}

// demoRequest is one recorded request; Auth names the credential used
// ("admin:<id>", "key:<id>", "unknown", "none"), never its value.
type demoRequest struct {
	Method, Path, RawQuery, Auth, ContentType, Accept string
	Body                                              string
}

const demoRootSecret = "adm_0123456789abcdef"

func newDemoAPI() *demoAPI {
	d := &demoAPI{admins: map[string]*demoCred{}, keys: map[string]*demoCred{}}
	d.admins["adm_1"] = &demoCred{id: "adm_1", name: "bootstrap", secret: demoRootSecret, created: time.Now()}
	d.seq = 1
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/keys", d.admin(d.createKey))
	mux.HandleFunc("GET /v1/keys", d.admin(d.listKeys))
	mux.HandleFunc("DELETE /v1/keys/{id}", d.admin(d.deleteKey))
	mux.HandleFunc("GET /v1/whoami", d.whoami)
	mux.HandleFunc("POST /v1/admin-keys", d.admin(d.createAdmin))
	mux.HandleFunc("POST /v1/admin-keys/roll", d.admin(d.rollAdmin))
	mux.HandleFunc("DELETE /v1/admin-keys/{id}", d.admin(d.deleteAdmin))
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		d.mu.Lock()
		d.Record(demoRequest{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
			Auth: d.whoLocked(r), ContentType: r.Header.Get("Content-Type"), Accept: r.Header.Get("Accept"), Body: string(body)})
		d.mu.Unlock()
		if status := d.Fail(w); status != 0 {
			// Echo the credential so tests prove errors redact it.
			fakeapi.WriteJSON(w, status, map[string]any{"error": map[string]any{
				"message": "failure while serving " + r.Header.Get("Authorization")}})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return d
}

func (d *demoAPI) key(id string) *demoCred {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.keys[id]
}

func (d *demoAPI) liveKeys() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys)
}

func (d *demoAPI) adminIDs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id := range d.admins {
		ids = append(ids, id)
	}
	return ids
}

func (d *demoAPI) bearer(r *http.Request) string {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	return v
}

func (d *demoAPI) whoLocked(r *http.Request) string {
	s := d.bearer(r)
	if s == "" {
		return "none"
	}
	for _, a := range d.admins {
		if a.secret == s {
			return "admin:" + a.id
		}
	}
	for _, k := range d.keys {
		if k.secret == s {
			return "key:" + k.id
		}
	}
	return "unknown"
}

func (d *demoAPI) admin(h func(http.ResponseWriter, *http.Request, *demoCred)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		defer d.mu.Unlock()
		s := d.bearer(r)
		for _, a := range d.admins {
			if s != "" && a.secret == s {
				h(w, r, a)
				return
			}
		}
		writeError(w, http.StatusUnauthorized, "invalid admin key")
	}
}

func (d *demoAPI) newID(prefix string) string {
	d.seq++
	return fmt.Sprintf("%s_%d", prefix, d.seq)
}

func newSecret(prefix string) string { return prefix + fakeapi.Hex(16) }

func (d *demoAPI) createKey(w http.ResponseWriter, r *http.Request, _ *demoCred) {
	var in struct {
		Name      string   `json:"name"`
		Scopes    []string `json:"scopes"`
		ExpiresAt *string  `json:"expires_at"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "body is not JSON")
		return
	}
	if in.Name == "" {
		writeError(w, http.StatusBadRequest, "name is required")
		return
	}
	k := &demoCred{id: d.newID("key"), name: in.Name, secret: newSecret("dk_"), scopes: in.Scopes, created: time.Now().UTC()}
	if in.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *in.ExpiresAt)
		if err != nil {
			writeError(w, http.StatusBadRequest, "expires_at is not RFC 3339")
			return
		}
		k.expires = t
	}
	d.keys[k.id] = k
	out := keyJSON(k)
	if !d.omitSecret {
		out["key"] = k.secret
	}
	fakeapi.WriteJSON(w, http.StatusCreated, out)
}

func keyJSON(k *demoCred) map[string]any {
	m := map[string]any{"id": k.id, "name": k.name, "scopes": k.scopes, "created_at": k.created.Format(time.RFC3339)}
	if !k.expires.IsZero() {
		m["expires_at"] = k.expires.Format(time.RFC3339)
	}
	return m
}

func (d *demoAPI) listKeys(w http.ResponseWriter, r *http.Request, _ *demoCred) {
	name := r.URL.Query().Get("name")
	out := []map[string]any{}
	for _, k := range d.keys {
		if name == "" || k.name == name {
			out = append(out, keyJSON(k))
		}
	}
	fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"keys": out})
}

func (d *demoAPI) deleteKey(w http.ResponseWriter, r *http.Request, _ *demoCred) {
	id := r.PathValue("id")
	if _, ok := d.keys[id]; !ok {
		writeError(w, http.StatusNotFound, "no such key")
		return
	}
	delete(d.keys, id)
	w.WriteHeader(http.StatusNoContent)
}

func (d *demoAPI) whoami(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.bearer(r)
	if s != "" {
		for _, a := range d.admins {
			if a.secret == s {
				fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"id": a.id, "name": a.name, "kind": "admin"})
				return
			}
		}
		for _, k := range d.keys {
			if k.secret == s && (k.expires.IsZero() || time.Now().Before(k.expires)) {
				fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"id": k.id, "name": k.name, "kind": "key"})
				return
			}
		}
	}
	writeError(w, http.StatusUnauthorized, "invalid API key")
}

func (d *demoAPI) createAdmin(w http.ResponseWriter, r *http.Request, _ *demoCred) {
	var in struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name == "" {
		writeError(w, http.StatusBadRequest, "name is required")
		return
	}
	a := &demoCred{id: d.newID("adm"), name: in.Name, secret: newSecret("adm_"), created: time.Now()}
	d.admins[a.id] = a
	fakeapi.WriteJSON(w, http.StatusCreated, map[string]any{"id": a.id, "name": a.name, "admin_key": a.secret})
}

func (d *demoAPI) rollAdmin(w http.ResponseWriter, _ *http.Request, caller *demoCred) {
	caller.secret = newSecret("adm_")
	fakeapi.WriteJSON(w, http.StatusOK, map[string]any{"id": caller.id, "admin_key": caller.secret})
}

func (d *demoAPI) deleteAdmin(w http.ResponseWriter, r *http.Request, _ *demoCred) {
	id := r.PathValue("id")
	if _, ok := d.admins[id]; !ok {
		writeError(w, http.StatusNotFound, "no such admin key")
		return
	}
	if len(d.admins) == 1 {
		writeError(w, http.StatusConflict, "cannot delete the last live admin key")
		return
	}
	delete(d.admins, id)
	w.WriteHeader(http.StatusNoContent)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	code := strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	fakeapi.WriteJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}
