package demoserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKnobFaults(t *testing.T) {
	tests := []struct {
		name       string
		knobs      string
		status     int
		code       string
		retryAfter string // expected Retry-After header, "" for none
	}{
		{"error rate 1", `{"error_rate":1}`, 503, "service_unavailable", ""},
		{"error rate 1 custom status", `{"error_rate":1,"error_status":500}`, 500, "internal_server_error", ""},
		{"rate limit every request", `{"rate_limit_every":1,"retry_after":7}`, 429, "rate_limited", "7"},
		{"down", `{"down":true}`, 503, "service_unavailable", ""},
		{"down custom status", `{"down":true,"error_status":502}`, 502, "bad_gateway", ""},
		{"down as 429", `{"down":true,"error_status":429,"retry_after":3}`, 429, "rate_limited", "3"},
		{"down beats rate limit", `{"down":true,"rate_limit_every":1}`, 503, "service_unavailable", ""},
		{"error rate 0 is off", `{"error_rate":0}`, 200, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			k := h.createKey(map[string]any{"name": "k"})
			h.setKnobs(tc.knobs)

			for range 5 { // every request, not just the first
				r := h.must(tc.status, "GET", "/v1/whoami", k.Key, nil)
				if tc.code != "" {
					if e := r.apiErr(t); e.Code != tc.code {
						t.Errorf("code %q, want %q", e.Code, tc.code)
					}
				}
				if got := r.header.Get("Retry-After"); got != tc.retryAfter {
					t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
				}
			}
			// Other /v1 routes too, and the admin endpoints.
			wantPost := tc.status
			if wantPost == http.StatusOK {
				wantPost = http.StatusCreated
			}
			h.must(wantPost, "POST", "/v1/keys", h.admin, `{"name":"x"}`)

			// Knobs never touch the harness endpoints.
			h.must(http.StatusOK, "GET", "/healthz", "", nil)
			h.must(http.StatusOK, "GET", "/_demo/stats", "", nil)
			got := h.inspect("")[k.ID]
			if tc.status != 200 && got.Uses != 0 {
				t.Errorf("a request answered by a knob counted as a key use: uses=%d", got.Uses)
			}

			h.setKnobs(`{"down":false,"error_rate":0,"rate_limit_every":0}`)
			h.must(http.StatusOK, "GET", "/v1/whoami", k.Key, nil)
		})
	}
}

func TestRateLimitEveryNth(t *testing.T) {
	h := newHarness(t)
	h.setKnobs(`{"rate_limit_every":3}`)
	var got []int
	for range 7 {
		got = append(got, h.do("GET", "/v1/whoami", h.admin, nil).status)
	}
	want := []int{200, 200, 429, 200, 200, 429, 200}
	if !slices.Equal(got, want) {
		t.Errorf("statuses = %v, want %v", got, want)
	}
	// Setting the knob again restarts the count.
	h.setKnobs(`{"rate_limit_every":2}`)
	if s := h.do("GET", "/v1/whoami", h.admin, nil).status; s != 200 {
		t.Errorf("first request after re-setting the knob: %d", s)
	}
	if s := h.do("GET", "/v1/whoami", h.admin, nil).status; s != 429 {
		t.Errorf("second request after re-setting the knob: %d", s)
	}
}

func TestKnobsValidation(t *testing.T) {
	tests := []struct {
		name, body, wantText string
	}{
		{"negative latency", `{"latency_ms":-1}`, "latency_ms"},
		{"huge latency", `{"latency_ms":9223372036854775807}`, "latency_ms"},
		{"latency path outside /v1", `{"latency_path":"/_demo/keys"}`, "latency_path"},
		{"error rate above 1", `{"error_rate":1.5}`, "error_rate"},
		{"error rate below 0", `{"error_rate":-0.1}`, "error_rate"},
		{"error status not an error", `{"error_status":200}`, "error_status"},
		{"error status out of range", `{"error_status":600}`, "error_status"},
		{"negative rate limit", `{"rate_limit_every":-2}`, "rate_limit_every"},
		{"negative rate limit rps", `{"rate_limit_rps":-1}`, "rate_limit_rps"},
		{"negative retry after", `{"retry_after":-1}`, "retry_after"},
		{"wrong type", `{"down":"yes"}`, "down must be a boolean"},
		{"unknown knob", `{"latency":5}`, "unknown field; allowed fields: down, error_rate, error_status, forbid, latency_after, latency_ms, latency_path, rate_limit_every, rate_limit_rps, retry_after"},
		{"not json", `down`, "not valid JSON"},
		{"empty", ``, "JSON object"},
		// One bad field rejects the whole patch, including the good part.
		{"partly bad", `{"down":true,"error_rate":2}`, "error_rate"},
	}
	h := newHarness(t)
	before := h.must(http.StatusOK, "GET", "/_demo/knobs", "", nil).body
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := h.must(http.StatusBadRequest, "POST", "/_demo/knobs", "", tc.body).apiErr(t)
			if e.Code != "invalid_request" || !strings.Contains(e.Message, tc.wantText) {
				t.Errorf("error %+v, want invalid_request mentioning %q", e, tc.wantText)
			}
		})
	}
	if after := h.must(http.StatusOK, "GET", "/_demo/knobs", "", nil).body; string(after) != string(before) {
		t.Errorf("rejected patches changed the knobs: %s -> %s", before, after)
	}
}

func TestKnobsPartialUpdate(t *testing.T) {
	h := newHarness(t)
	h.setKnobs(`{"latency_ms":5,"retry_after":9}`)
	h.setKnobs(`{"error_rate":0.25}`)
	var got knobsJSON
	h.must(http.StatusOK, "GET", "/_demo/knobs", "", nil).decode(t, &got)
	want := knobsJSON{LatencyMS: 5, ErrorRate: 0.25, ErrorStatus: 503, RateLimitEvery: 0, RetryAfter: 9, Forbid: []string{}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("knobs = %+v, want %+v", got, want)
	}
}

func TestLatency(t *testing.T) {
	h := newHarness(t)
	h.setKnobs(`{"latency_ms":100}`)
	start := time.Now()
	h.must(http.StatusOK, "GET", "/v1/whoami", h.admin, nil)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("whoami took %v with 100ms latency", d)
	}
	// The harness endpoints are not delayed.
	start = time.Now()
	h.must(http.StatusOK, "GET", "/_demo/knobs", "", nil)
	if d := time.Since(start); d >= 100*time.Millisecond {
		t.Errorf("/_demo/knobs took %v; latency must apply to /v1 only", d)
	}
}

// TestLatencyPath: with latency_path set, only that path waits.
func TestLatencyPath(t *testing.T) {
	h := newHarness(t)
	h.setKnobs(`{"latency_ms":1500,"latency_path":"/v1/whoami"}`)
	start := time.Now()
	h.must(http.StatusOK, "GET", "/v1/keys", h.admin, nil)
	if d := time.Since(start); d >= 1500*time.Millisecond {
		t.Errorf("GET /v1/keys took %v; latency_path is /v1/whoami", d)
	}
	start = time.Now()
	h.must(http.StatusOK, "GET", "/v1/whoami", h.admin, nil)
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("whoami took %v with 1500ms latency on its path", d)
	}
	var got knobsJSON
	h.must(http.StatusOK, "GET", "/_demo/knobs", "", nil).decode(t, &got)
	if got.LatencyPath != "/v1/whoami" {
		t.Errorf("knobs show latency_path %q", got.LatencyPath)
	}
}

func TestLatencyHonoursCancellationAndDoesNotBlock(t *testing.T) {
	h := newHarness(t)
	// Serve through a wrapper that reports when the slow request arrives.
	arrived := make(chan struct{})
	inner := New(Options{AdminKey: testAdminKey, Now: h.clock.Now})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/whoami" {
			close(arrived)
		}
		inner.ServeHTTP(w, r)
	}))
	defer ts.Close()
	h.url = ts.URL
	h.setKnobs(`{"latency_ms":10000}`)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-arrived
	time.Sleep(20 * time.Millisecond) // let it reach the sleep

	// While it sleeps, endpoints that take the server lock answer at once.
	start := time.Now()
	h.must(http.StatusOK, "GET", "/_demo/knobs", "", nil)
	h.must(http.StatusOK, "GET", "/_demo/keys", "", nil)
	h.must(http.StatusOK, "POST", "/_demo/knobs", "", `{"error_rate":0}`)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("harness endpoints took %v while a /v1 request slept", d)
	}

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("slow request ended with %v, want context.Canceled", err)
	}
	// The server gives up too, rather than sleeping out the ten seconds, and
	// records the request as 499.
	waitFor(t, "the server to drop the cancelled request", func() bool {
		var st stats
		h.must(http.StatusOK, "GET", "/_demo/stats", "", nil).decode(t, &st)
		return st.Status[statusClientClosed] == 1 && st.Requests["GET /v1/whoami"] == 1
	})
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLatencyAfter: with latency_after the request takes effect first and
// only its answer waits, so a client that gives up meanwhile has created a
// key it never learns about (a create whose answer is lost).
func TestLatencyAfter(t *testing.T) {
	h := newHarness(t)
	h.setKnobs(`{"latency_ms":10000,"latency_path":"/v1/keys","latency_after":true}`)
	var got knobsJSON
	h.must(http.StatusOK, "GET", "/_demo/knobs", "", nil).decode(t, &got)
	if !got.LatencyAfter {
		t.Fatalf("knobs %+v do not show latency_after", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.url+"/v1/keys", strings.NewReader(`{"name":"answer-lost"}`))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("create answered %d within the held latency", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the client waited %v", d)
	}
	if keys := h.inspect("?name=answer-lost&state=live"); len(keys) != 1 {
		t.Fatalf("live keys named answer-lost: %v, want the 1 created before the answer was held", keys)
	}
	waitFor(t, "the server to record the dropped answer", func() bool {
		var st stats
		h.must(http.StatusOK, "GET", "/_demo/stats", "", nil).decode(t, &st)
		return st.Status[statusClientClosed] == 1
	})

	// A short hold delivers the real answer.
	h.setKnobs(`{"latency_ms":50}`)
	var k keyJSON
	h.must(http.StatusCreated, "POST", "/v1/keys", testAdminKey, map[string]any{"name": "held"}).decode(t, &k)
	if k.ID == "" || k.Key == "" {
		t.Fatalf("held answer %+v", k)
	}
}

// The rate_limit_rps token bucket, on an explicit clock: rps tokens a
// second, a full bucket of that many to start with, and the headers of a
// rate-limited API on every answer.
func TestRateLimitRPSBucket(t *testing.T) {
	s := New(Options{AdminKey: NewAdminKey(), RateLimitRPS: 2})
	t0 := time.Unix(1_900_000_000, 0)
	take := func(at time.Time) (bool, http.Header) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.takeToken(at)
	}
	for i, want := range []bool{true, true, false} {
		ok, h := take(t0)
		if ok != want {
			t.Fatalf("request %d at t0: allowed %v, want %v", i+1, ok, want)
		}
		if h.Get("X-RateLimit-Limit") != "2" {
			t.Errorf("request %d: X-RateLimit-Limit %q, want 2", i+1, h.Get("X-RateLimit-Limit"))
		}
		if !ok {
			// Half a second to the next token: Retry-After rounds up to 1,
			// the reset is the second it is there in.
			if h.Get("Retry-After") != "1" || h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset") != "1900000001" {
				t.Errorf("refused: Retry-After %q, remaining %q, reset %q; want 1, 0, 1900000001",
					h.Get("Retry-After"), h.Get("X-RateLimit-Remaining"), h.Get("X-RateLimit-Reset"))
			}
		}
	}
	if ok, _ := take(t0.Add(400 * time.Millisecond)); ok {
		t.Error("a token after 0.4s at 2/s")
	}
	if ok, _ := take(t0.Add(time.Second)); !ok {
		t.Error("no token after a second at 2/s")
	}
	s.mu.Lock()
	limited := s.stats.RateLimited
	s.mu.Unlock()
	if limited != 2 {
		t.Errorf("stats rate_limited = %d, want the 2 refusals", limited)
	}
}

// Over HTTP: a burst beyond the bucket gets 429 rate_limited with
// Retry-After, every answer carries X-RateLimit-*, /_demo/stats counts
// the 429s, and turning the knob off lets everything through again.
func TestRateLimitRPSOverHTTP(t *testing.T) {
	h := newHarness(t)
	h.setKnobs(`{"rate_limit_rps":1}`)
	first := h.must(http.StatusOK, "GET", "/v1/whoami", h.admin, nil)
	if first.header.Get("X-RateLimit-Limit") != "1" || first.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("first answer: X-RateLimit-Limit %q, remaining %q; want 1, 0", first.header.Get("X-RateLimit-Limit"), first.header.Get("X-RateLimit-Remaining"))
	}
	r := h.must(http.StatusTooManyRequests, "GET", "/v1/whoami", h.admin, nil)
	if e := r.apiErr(t); e.Code != "rate_limited" {
		t.Errorf("code %q, want rate_limited", e.Code)
	}
	if r.header.Get("Retry-After") != "1" || r.header.Get("X-RateLimit-Reset") == "" {
		t.Errorf("429: Retry-After %q, X-RateLimit-Reset %q", r.header.Get("Retry-After"), r.header.Get("X-RateLimit-Reset"))
	}
	st := h.must(http.StatusOK, "GET", "/_demo/stats", "", nil)
	if !strings.Contains(string(st.body), `"rate_limited":1`) {
		t.Errorf("stats %s: want rate_limited 1", st.body)
	}
	h.setKnobs(`{"rate_limit_rps":0}`)
	for range 3 {
		if r := h.must(http.StatusOK, "GET", "/v1/whoami", h.admin, nil); r.header.Get("X-RateLimit-Limit") != "" {
			t.Error("X-RateLimit-Limit sent with the knob off")
		}
	}
}
