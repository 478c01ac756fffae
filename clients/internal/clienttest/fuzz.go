package clienttest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// Canary credentials of FuzzResponses: the key VerifyKey is asked about and
// the new root VerifyRoot is asked about. A script's {{key}} and {{newroot}}
// stand for them, so a fuzzed provider can hand them out as the secret of a
// key or root it creates, or echo them in an error.
const (
	FuzzKeySecret  = "fuzzkeysecret_5b6f0c2e9a1d4c7e8f30"
	FuzzNewRootKey = "fuzznewroot_c4d9e1a7b2f3064e5d18"
)

// FuzzTarget is the provider instance FuzzResponses drives.
type FuzzTarget struct {
	// Type is the registered provider type.
	Type string
	// Fields configure the instance (over the type's defaults). "{{base}}"
	// in a value stands for the fuzzed server's URL (for types with more
	// than one API host).
	Fields map[string]string
	// BaseSuffix is appended to the server's URL to make base_url.
	BaseSuffix string
	// Request is what CreateKey is asked for; its Name is what FindKeys
	// looks for.
	Request clients.KeyRequest
	// Key is what VerifyKey is asked about; its Secret should be
	// FuzzKeySecret. RevokeKey is asked to revoke Key.ID.
	Key clients.Key
	// Root is what VerifyRoot is asked about; its secret fields should be
	// FuzzNewRootKey. RevokeRoot is asked to revoke OldRootID.
	Root      clients.Root
	OldRootID string
}

// Limits of one provider call under FuzzResponses.
const (
	fuzzCallTimeout = 20 * time.Second
	fuzzMaxRequests = 1000
)

// FuzzResponses is the fuzz target body shared by the provider packages:
// every call of the Provider interface (and RootFinder, RootDiscarder where
// the type has them) is made against a server that answers with the fuzzed
// script (see ParseScript), started from its first response for each call.
// Whatever the answers, each call must
//   - return (no panic, within fuzzCallTimeout, with at most
//     fuzzMaxRequests requests: paging and retries are bounded);
//   - fail with an error that holds no credential: no root field, no
//     secret the call was given or handed out before its last answer, no
//     credential header the client sent;
//   - or succeed with a result the backend can use: a created key has an
//     id, a secret and an expiry the backend can store, and RevokeKey
//     sends a request for that id (a key Vault cannot revoke would outlive
//     its lease); FindKeys returns only keys of the name asked for, each
//     revocable (rollback revokes them); ListKeys (where the type is a
//     KeyLister) returns keys with ids, no secret and a creation time JSON
//     can hold, each revocable (tidy revokes orphans); a created root has a value for
//     every root field the instance has.
//
// The package's checked-in corpus, testdata/fuzz/<Target>/, holds the
// provider's documented answers to start from.
func FuzzResponses(f *testing.F, target FuzzTarget) {
	f.Helper()
	fs := newFuzzServer()
	f.Cleanup(fs.Close)
	hc, err := httpx.New(httpx.Options{Provider: Provider, Timeout: 5 * time.Second, MaxRetries: 2,
		RetryWaitMin: time.Microsecond, RetryWaitMax: time.Millisecond, MaxResponseBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	typ := Type(f, target.Type)
	fields := WithDefaults(f, target.Type, nil)
	for k, v := range target.Fields {
		fields[k] = strings.ReplaceAll(v, "{{base}}", fs.URL)
	}
	sensitive := map[string]bool{}
	var roots []string
	for _, fd := range typ.Fields {
		if fd.Sensitive && fields[fd.Name] != "" {
			sensitive[fd.Name] = true
			roots = append(roots, fields[fd.Name])
		}
	}
	sort.Strings(roots)
	fs.vars = map[string]string{
		"{{root}}":    strings.Join(roots, " "),
		"{{key}}":     FuzzKeySecret,
		"{{newroot}}": FuzzNewRootKey,
	}
	// newRoot are the values VerifyRoot and DiscardRoot are given.
	var newRoot []string
	for name, v := range target.Root.Fields {
		if f := fieldOf(typ, name); f != nil && f.Sensitive {
			newRoot = append(newRoot, v)
		}
	}
	var mu sync.Mutex // one execution at a time: the server has one script

	f.Fuzz(func(t *testing.T, script string) {
		mu.Lock()
		defer mu.Unlock()
		p, err := typ.Build(clients.Config{Name: Provider, BaseURL: fs.URL + target.BaseSuffix, Fields: fields, HTTP: hc})
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		responses := ParseScript(script)
		ctx := context.Background()
		name := target.Request.Name

		// run makes one call against the script and checks its error for
		// the root credentials, the credentials the call sent, the secrets
		// it was given (known) and those the server handed out in an
		// earlier 2xx (see credentials).
		run := func(call string, known []string, fn func() error) error {
			fs.start(responses)
			done := make(chan error, 1)
			go func() { done <- fn() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(fuzzCallTimeout):
				t.Fatalf("%s did not return within %v (%d requests)", call, fuzzCallTimeout, fs.count())
			}
			if n := fs.count(); n > fuzzMaxRequests {
				t.Fatalf("%s sent %d requests", call, n)
			}
			if err != nil {
				msg := err.Error()
				for _, s := range slices.Concat(roots, known, fs.credentials()) {
					if len(s) >= 4 && strings.Contains(msg, s) {
						t.Fatalf("%s: the error holds a credential (%q): %s", call, s, msg)
					}
				}
			}
			return err
		}
		// revocable checks that RevokeKey(id) asks the provider to revoke
		// id, rather than refusing it without a request.
		revocable := func(call, id string) {
			fs.start([]ScriptResponse{{Status: http.StatusNoContent}})
			_ = p.RevokeKey(ctx, id)
			if fs.count() == 0 {
				t.Fatalf("%s returned key id %q, which RevokeKey refuses to send", call, id)
			}
		}

		var key clients.Key
		if err := run("CreateKey", nil, func() (err error) { key, err = p.CreateKey(ctx, target.Request); return }); err == nil {
			if key.ID == "" || key.Secret == "" {
				t.Fatalf("CreateKey succeeded without an id or secret: %+v", redactKey(key))
			}
			// The backend stores it as JSON (years 0–9999) and refuses a
			// key that is already expired.
			if _, err := key.ExpiresAt.MarshalJSON(); err != nil {
				t.Fatalf("CreateKey returned expiry %v: %v", key.ExpiresAt, err)
			}
			revocable("CreateKey", key.ID)
		}
		run("VerifyKey", []string{target.Key.Secret}, func() error { return p.VerifyKey(ctx, target.Key) })
		run("RevokeKey", nil, func() error { return p.RevokeKey(ctx, target.Key.ID) })
		if p.Capabilities().ListByName {
			var found []clients.Key
			if err := run("FindKeys", nil, func() (err error) { found, err = p.FindKeys(ctx, name); return }); err == nil {
				for _, k := range found {
					if k.Name != name || k.ID == "" {
						t.Fatalf("FindKeys(%q) returned key %q named %q", name, k.ID, k.Name)
					}
					revocable("FindKeys", k.ID)
				}
			}
		}
		if kl, ok := p.(clients.KeyLister); ok {
			var listed []clients.Key
			if err := run("ListKeys", nil, func() (err error) { listed, err = kl.ListKeys(ctx); return }); err == nil {
				for i, k := range listed {
					if k.ID == "" || k.Secret != "" {
						t.Fatalf("ListKeys returned key %q named %q without an id or with a secret", k.ID, k.Name)
					}
					// Tidy reports the creation time as JSON.
					if _, err := k.CreatedAt.MarshalJSON(); err != nil {
						t.Fatalf("ListKeys returned creation time %v: %v", k.CreatedAt, err)
					}
					if i < 10 {
						revocable("ListKeys", k.ID) // tidy revokes orphans it lists
					}
				}
			}
		}
		run("RootID", nil, func() error { _, err := p.RootID(ctx); return err })
		if !p.Capabilities().RootRotation {
			return
		}
		var root clients.Root
		if err := run("CreateRoot", nil, func() (err error) { root, err = p.CreateRoot(ctx, name); return }); err == nil {
			for field := range sensitive {
				if root.Fields[field] == "" {
					t.Fatalf("CreateRoot succeeded without a value for %s", field)
				}
			}
		}
		run("VerifyRoot", newRoot, func() error { return p.VerifyRoot(ctx, target.Root) })
		run("RevokeRoot", nil, func() error { return p.RevokeRoot(ctx, target.OldRootID) })
		if rf, ok := p.(clients.RootFinder); ok {
			run("FindRoots", nil, func() error { _, err := rf.FindRoots(ctx, name); return err })
		}
		if rd, ok := p.(clients.RootDiscarder); ok {
			run("DiscardRoot", newRoot, func() error { return rd.DiscardRoot(ctx, target.Root) })
		}
	})
}

func fieldOf(typ *clients.Type, name string) *clients.Field {
	for i := range typ.Fields {
		if typ.Fields[i].Name == name {
			return &typ.Fields[i]
		}
	}
	return nil
}

func redactKey(k clients.Key) clients.Key {
	if k.Secret != "" {
		k.Secret = "(set)"
	}
	return k
}

// ScriptResponse is one answer of a fuzzed provider.
type ScriptResponse struct {
	Status int
	Header http.Header
	Body   string
}

// ScriptSeparator separates the responses of a script.
const ScriptSeparator = "\n===\n"

// ParseScript reads a fuzzed provider's answers, one per request in order
// (the last one repeats), separated by ScriptSeparator. Each is written as
// an HTTP response without the protocol: a status line (a number; anything
// else reads as 200, and 1xx or above 599 wraps into 200–599), header lines,
// a blank line, the body:
//
//	429
//	Retry-After: 1
//
//	{"errors":[{"message":"too many requests"}]}
//
// In bodies and header values {{root}} stands for the instance's root
// credentials (space-separated), {{key}} for FuzzKeySecret, {{newroot}}
// for FuzzNewRootKey and {{cred}} for the credential headers of the request
// being answered. Headers the server controls (Content-Length,
// Transfer-Encoding, Connection, Trailer) are dropped, and so is a Location
// that leaves the server.
func ParseScript(script string) []ScriptResponse {
	var out []ScriptResponse
	for _, part := range strings.Split(script, ScriptSeparator) {
		r := ScriptResponse{Status: http.StatusOK, Header: http.Header{}}
		head, body, _ := strings.Cut(part, "\n\n")
		r.Body = body
		lines := strings.Split(head, "\n")
		if n, err := strconv.Atoi(strings.TrimSpace(lines[0])); err == nil {
			if n < 200 || n > 599 {
				n = 200 + ((n%400)+400)%400
			}
			r.Status = n
		}
		for _, line := range lines[1:] {
			name, value, ok := strings.Cut(line, ":")
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			// A value with a control character makes Go's client refuse the
			// whole answer (a transport error): it would never reach the
			// client as a 2xx, yet count as one that handed out its canaries.
			if !ok || !validHeaderName(name) || strings.IndexFunc(value, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) >= 0 {
				continue
			}
			switch http.CanonicalHeaderKey(name) {
			case "Content-Length", "Transfer-Encoding", "Connection", "Trailer":
				continue
			case "Location":
				if !strings.HasPrefix(value, "/") || strings.HasPrefix(value, "//") || strings.HasPrefix(value, `/\`) {
					continue
				}
			}
			r.Header.Add(name, value)
		}
		out = append(out, r)
	}
	return out
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c > 127 || !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// fuzzServer answers with a script and records what it was sent.
type fuzzServer struct {
	*httptest.Server
	vars map[string]string

	mu        sync.Mutex
	script    []ScriptResponse
	n         int
	creds     map[string]bool
	credOrder []string
	// handed lists, per answer served, the canaries a 2xx answer held.
	handed [][]string
}

func newFuzzServer() *fuzzServer {
	fs := &fuzzServer{}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	return fs
}

// start makes the next request get the script's first response.
func (fs *fuzzServer) start(script []ScriptResponse) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.script, fs.n, fs.creds, fs.credOrder, fs.handed = script, 0, map[string]bool{}, nil, nil
}

func (fs *fuzzServer) count() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.n
}

// credentials are the credential header values the client sent since start
// (whole and without their auth scheme) and the canary secrets handed out
// in a 2xx answer before the last one. (What the last answer holds, the
// client may rightly take for the provider's error text: a 2xx status it
// does not expect, say.)
func (fs *fuzzServer) credentials() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := append([]string(nil), fs.credOrder...)
	for i := 0; i+1 < len(fs.handed); i++ {
		out = append(out, fs.handed[i]...)
	}
	return out
}

// credentialHeader reports whether a request header carries a credential.
func credentialHeader(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"auth", "key", "token", "secret"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func (fs *fuzzServer) serve(w http.ResponseWriter, r *http.Request) {
	var sent []string
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !credentialHeader(name) {
			continue
		}
		for _, v := range r.Header[name] {
			sent = append(sent, v)
		}
	}
	fs.mu.Lock()
	for _, v := range sent {
		for _, s := range []string{v, lastWord(v)} {
			if !fs.creds[s] {
				fs.creds[s] = true
				fs.credOrder = append(fs.credOrder, s)
			}
		}
	}
	var resp ScriptResponse
	if len(fs.script) > 0 {
		resp = fs.script[min(fs.n, len(fs.script)-1)]
	} else {
		resp = ScriptResponse{Status: http.StatusOK}
	}
	fs.n++
	var handed []string
	if resp.Status >= 200 && resp.Status <= 299 {
		for _, v := range []string{"{{key}}", "{{newroot}}"} {
			if strings.Contains(resp.Body, v) {
				handed = append(handed, fs.vars[v])
			}
		}
	}
	fs.handed = append(fs.handed, handed)
	fs.mu.Unlock()

	pairs := []string{"{{cred}}", strings.Join(sent, " ")}
	for k, v := range fs.vars {
		pairs = append(pairs, k, v)
	}
	subst := strings.NewReplacer(pairs...)
	for name, values := range resp.Header {
		for _, v := range values {
			if name != "Location" {
				v = subst.Replace(v)
			}
			w.Header().Add(name, v)
		}
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write([]byte(subst.Replace(resp.Body)))
}

func lastWord(v string) string {
	if _, after, ok := strings.Cut(v, " "); ok {
		return strings.TrimSpace(after)
	}
	return v
}
