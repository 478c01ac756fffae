package demoserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testAdminKey = "demoadm_00112233445566778899aabbccddeeff"

// harness is one server under test plus helpers to talk to it.
type harness struct {
	t     *testing.T
	url   string
	admin string
	clock *fakeClock
	log   *syncBuffer
	srv   *Server
}

// syncBuffer lets the server log concurrently while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{
		t:     t,
		admin: testAdminKey,
		clock: &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		log:   &syncBuffer{},
	}
	h.srv = New(Options{
		AdminKey:   h.admin,
		RetryAfter: 1, // as the command's flag defaults to
		Log:        h.log,
		Now:        h.clock.Now,
	})
	ts := httptest.NewServer(h.srv)
	t.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. body may be nil, a string (sent as is) or a value
// encoded as JSON. key, when not empty, goes in a Bearer header.
func (h *harness) do(method, path, key string, body any) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: raw}
}

// must is do plus a status check.
func (h *harness) must(want int, method, path, key string, body any) response {
	h.t.Helper()
	r := h.do(method, path, key, body)
	if r.status != want {
		h.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, want, r.body)
	}
	return r
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// apiErr decodes the error shape and fails if the body is not in it.
func (r response) apiErr(t *testing.T) apiError {
	t.Helper()
	var e struct {
		Error *apiError `json:"error"`
	}
	r.decode(t, &e)
	if e.Error == nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an error body: %s", r.body)
	}
	return *e.Error
}

// createKey creates a normal key with the harness admin key.
func (h *harness) createKey(body map[string]any) keyJSON {
	h.t.Helper()
	var k keyJSON
	h.must(http.StatusCreated, "POST", "/v1/keys", h.admin, body).decode(h.t, &k)
	return k
}

// inspect returns /_demo/keys with the given query, by id.
func (h *harness) inspect(query string) map[string]inspectJSON {
	h.t.Helper()
	var out struct{ Keys []inspectJSON }
	h.must(http.StatusOK, "GET", "/_demo/keys"+query, "", nil).decode(h.t, &out)
	byID := map[string]inspectJSON{}
	for _, k := range out.Keys {
		byID[k.ID] = k
	}
	return byID
}

// setKnobs posts a knob patch and expects it to be accepted.
func (h *harness) setKnobs(patch string) {
	h.t.Helper()
	h.must(http.StatusOK, "POST", "/_demo/knobs", "", patch)
}

// initialAdminID finds the id of the harness admin key.
func (h *harness) initialAdminID() string {
	h.t.Helper()
	var who whoamiJSON
	h.must(http.StatusOK, "GET", "/v1/whoami", h.admin, nil).decode(h.t, &who)
	return who.ID
}
