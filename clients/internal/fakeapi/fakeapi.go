// Package fakeapi is what the in-memory provider fakes (the clients/*/…test
// packages) share: the failures a test injects, the log of requests a test
// inspects, random credentials and JSON answers. Each fake keeps its own
// routes, error shapes, rate-limit headers and credential labels, which
// follow its provider's documentation.
package fakeapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Recorder holds a fake's injected failures and the requests it received,
// as its provider package's Recorded type. It has its own lock, so a fake
// may use it while holding its own, and tests may call FailNext or
// Requests while a request is being served.
type Recorder[R any] struct {
	mu         sync.Mutex
	failN      int
	failStatus int
	lose       bool
	reqs       []R
}

// FailNext makes the next n requests fail with status.
func (r *Recorder[R]) FailNext(n, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failN, r.failStatus = n, status
}

// Fail takes one injected failure: it returns its status, or 0 when none is
// pending. A 429 also gets Retry-After: 1 on w, so clients wait a second at
// most; the caller writes the provider's own error body.
func (r *Recorder[R]) Fail(w http.ResponseWriter) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failN <= 0 {
		return 0
	}
	r.failN--
	if r.failStatus == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	return r.failStatus
}

// LoseNextCreate makes the fake's next create store what it creates and
// then answer 500, as when the answer is lost on the way: only a search by
// name finds the key.
func (r *Recorder[R]) LoseNextCreate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lose = true
}

// CreateLost takes the failure LoseNextCreate armed: true once, for the
// create that must answer 500 after storing.
func (r *Recorder[R]) CreateLost() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	lost := r.lose
	r.lose = false
	return lost
}

// Record logs one request.
func (r *Recorder[R]) Record(rec R) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, rec)
}

// Len is how many requests are logged.
func (r *Recorder[R]) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// Requests returns a copy of the log.
func (r *Recorder[R]) Requests() []R {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// ResetRequests empties the log.
func (r *Recorder[R]) ResetRequests() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = nil
}

// Hex is n random bytes in hex: ids and credential values.
func Hex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// WriteJSON answers with status and v as JSON (no body when v is nil).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// DecodeBody decodes r's JSON object body, numbers as json.Number. No body
// is a nil map and ok; ok is false (and the map nil) when the body is not
// a JSON object.
func DecodeBody(r *http.Request) (body map[string]any, ok bool) {
	if r.Body == nil {
		return nil, true
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		return nil, false
	}
	return body, true
}

// ReadJSON reads r's body, 1 MiB at most, as a fake does before it takes
// its lock: raw for its handlers to decode, and body, the JSON object a
// Recorded logs (nil when the body is empty or not a JSON object).
func ReadJSON(r *http.Request) (raw []byte, body map[string]any) {
	raw, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &body)
	}
	return raw, body
}

// ReadRequest is ReadJSON for fakes whose token endpoints take forms: a
// form-encoded body comes back as form (and body is nil), any other as
// body, raw either way.
func ReadRequest(r *http.Request) (raw []byte, body map[string]any, form url.Values) {
	raw, body = ReadJSON(r)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, _ = url.ParseQuery(string(raw))
		body = nil
	}
	return raw, body, form
}

// FormFields is a form's first values by name, less the names in hide (the
// ones that carry a secret), for a fake's log of requests.
func FormFields(form url.Values, hide ...string) map[string]string {
	out := map[string]string{}
	for k := range form {
		if !slices.Contains(hide, k) {
			out[k] = form.Get(k)
		}
	}
	return out
}
