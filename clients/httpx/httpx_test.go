package httpx_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

const provider = "acme-prod"

// newClient builds a client with fast retries unless opts says otherwise.
func newClient(t *testing.T, opts httpx.Options) *httpx.Client {
	t.Helper()
	if opts.Provider == "" {
		opts.Provider = provider
	}
	if opts.RetryWaitMin == 0 {
		opts.RetryWaitMin = time.Millisecond
	}
	if opts.RetryWaitMax == 0 {
		opts.RetryWaitMax = 5 * time.Millisecond
	}
	c, err := httpx.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// script is a test server that answers its n-th request (from 1) with
// reply(n), records when each request arrived, and counts them.
type script struct {
	*httptest.Server
	mu       sync.Mutex
	arrivals []time.Time
}

type reply struct {
	status int
	header map[string]string
	body   string
}

func newScript(t *testing.T, answer func(n int) reply) *script {
	t.Helper()
	s := &script{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.arrivals = append(s.arrivals, time.Now())
		n := len(s.arrivals)
		s.mu.Unlock()
		rep := answer(n)
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *script) requests() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.arrivals...)
}

func get(url string) httpx.Request {
	return httpx.Request{Op: "verify", Method: http.MethodGet, URL: url + "/v1/whoami"}
}

func TestRetriesUntilSuccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status       int
		wantRequests int // 1 when the status is not retried
		wantStatus   int
	}{
		{http.StatusInternalServerError, 3, 200},
		{http.StatusBadGateway, 3, 200},
		{http.StatusServiceUnavailable, 3, 200},
		{http.StatusGatewayTimeout, 3, 200},
		{http.StatusTooManyRequests, 3, 200},
		// Not transient: retrying would repeat the same answer.
		{http.StatusNotImplemented, 1, 501},
		{http.StatusBadRequest, 1, 400},
		{http.StatusUnauthorized, 1, 401},
		{http.StatusNotFound, 1, 404},
		{http.StatusConflict, 1, 409},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			t.Parallel()
			srv := newScript(t, func(n int) reply {
				if n <= 2 {
					return reply{status: tc.status, body: "failure " + strconv.Itoa(n)}
				}
				return reply{status: 200, body: `{"ok":true}`}
			})
			var observed []string
			c := newClient(t, httpx.Options{Observe: func(op string, d time.Duration, status int) {
				observed = append(observed, fmt.Sprintf("%s %d", op, status))
			}})
			resp, err := c.Do(context.Background(), get(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.Status, tc.wantStatus)
			}
			if n := len(srv.requests()); n != tc.wantRequests {
				t.Errorf("%d requests, want %d", n, tc.wantRequests)
			}
			if tc.wantStatus == 200 && string(resp.Body) != `{"ok":true}` {
				t.Errorf("body %q", resp.Body)
			}
			// One observation per call, with the final status.
			if want := fmt.Sprintf("verify %d", tc.wantStatus); len(observed) != 1 || observed[0] != want {
				t.Errorf("observed %q, want [%s]", observed, want)
			}
		})
	}
}

func TestRetryResendsBody(t *testing.T) {
	t.Parallel()
	var bodies []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		n := len(bodies)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	c := newClient(t, httpx.Options{})
	resp, err := c.Do(context.Background(), httpx.Request{Op: "create", Method: "POST", URL: srv.URL + "/v1/keys",
		Header: httpx.JSONHeader(nil), Body: []byte(`{"name":"k"}`)})
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
	if len(bodies) != 2 || bodies[0] != `{"name":"k"}` || bodies[1] != bodies[0] {
		t.Errorf("bodies sent = %q, want the same body twice", bodies)
	}
}

// TestCreatesRepeatOnlyWhereNothingHappened sends each kind of request at
// a server that fails every attempt the same way, and counts the attempts.
// A GET is repeated on any 5xx; a POST or PATCH only on a 429 or a 503,
// since after a 500, 502 or 504 the create may have happened.
func TestCreatesRepeatOnlyWhereNothingHappened(t *testing.T) {
	t.Parallel()
	const retries = 2
	tests := []struct {
		method     string
		idempotent bool
		status     int
		want       int
	}{
		{http.MethodGet, false, http.StatusInternalServerError, 1 + retries},
		{http.MethodGet, false, http.StatusBadGateway, 1 + retries},
		{http.MethodDelete, false, http.StatusGatewayTimeout, 1 + retries},
		{http.MethodPut, false, http.StatusBadGateway, 1 + retries},
		{http.MethodPost, false, http.StatusInternalServerError, 1},
		{http.MethodPost, false, http.StatusBadGateway, 1},
		{http.MethodPost, false, http.StatusGatewayTimeout, 1},
		{http.MethodPatch, false, http.StatusBadGateway, 1},
		{http.MethodPost, false, http.StatusTooManyRequests, 1 + retries},
		{http.MethodPost, false, http.StatusServiceUnavailable, 1 + retries},
		{http.MethodPost, false, http.StatusBadRequest, 1},
		{http.MethodPost, true, http.StatusBadGateway, 1 + retries},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s %d idempotent=%v", tc.method, tc.status, tc.idempotent)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newScript(t, func(int) reply { return reply{status: tc.status} })
			c := newClient(t, httpx.Options{MaxRetries: retries})
			resp, err := c.Do(context.Background(), httpx.Request{Op: "create", Method: tc.method, URL: srv.URL + "/v1/keys",
				Body: []byte(`{}`), Idempotent: tc.idempotent})
			if err != nil || resp.Status != tc.status {
				t.Fatalf("resp %+v, err %v", resp, err)
			}
			if n := len(srv.requests()); n != tc.want {
				t.Errorf("%d attempts, want %d", n, tc.want)
			}
		})
	}

	// A POST whose answer is lost (timeout) is not sent again.
	t.Run("POST timeout", func(t *testing.T) {
		t.Parallel()
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			time.Sleep(300 * time.Millisecond)
		}))
		defer srv.Close()
		c := newClient(t, httpx.Options{MaxRetries: retries, Timeout: 50 * time.Millisecond})
		if _, err := c.Do(context.Background(), httpx.Request{Op: "create", Method: http.MethodPost, URL: srv.URL}); err == nil {
			t.Fatal("a timed-out POST returned no error")
		}
		if got := n.Load(); got != 1 {
			t.Errorf("a timed-out POST was sent %d times, want 1", got)
		}
	})
}

// TestCreateRetryPolicyErrors: a connection never made is retried, one
// lost after the request went out is not.
func TestCreateRetryPolicyErrors(t *testing.T) {
	ctx := context.Background()
	dial := &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	read := &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}
	if retry, _ := httpx.CreateRetryPolicy(ctx, nil, dial); !retry {
		t.Error("a refused connection is not retried")
	}
	if retry, _ := httpx.CreateRetryPolicy(ctx, nil, read); retry {
		t.Error("a connection reset after the request went out is retried")
	}
	if retry, _ := httpx.CreateRetryPolicy(ctx, nil, io.ErrUnexpectedEOF); retry {
		t.Error("an unexpected EOF is retried")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if retry, err := httpx.CreateRetryPolicy(canceled, &http.Response{StatusCode: 503}, nil); retry || err == nil {
		t.Errorf("a canceled context: retry %v, err %v", retry, err)
	}
}

func TestRetryAfterIsWaitedOut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		retryAfter string
		waitMax    time.Duration
		wantMin    time.Duration // the retry comes at least this late
		wantMax    time.Duration // and no later than this
	}{
		{"429 asks for 1s", http.StatusTooManyRequests, "1", 5 * time.Second, 950 * time.Millisecond, 3 * time.Second},
		{"503 asks for 1s", http.StatusServiceUnavailable, "1", 5 * time.Second, 950 * time.Millisecond, 3 * time.Second},
		// RetryWaitMax wins over a longer Retry-After.
		{"429 asks for 30s, capped", http.StatusTooManyRequests, "30", 100 * time.Millisecond, 90 * time.Millisecond, 900 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newScript(t, func(n int) reply {
				if n == 1 {
					return reply{status: tc.status, header: map[string]string{"Retry-After": tc.retryAfter}}
				}
				return reply{status: 200}
			})
			c := newClient(t, httpx.Options{RetryWaitMax: tc.waitMax})
			resp, err := c.Do(context.Background(), get(srv.URL))
			if err != nil || resp.Status != 200 {
				t.Fatalf("resp %+v, err %v", resp, err)
			}
			reqs := srv.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			if gap := reqs[1].Sub(reqs[0]); gap < tc.wantMin || gap > tc.wantMax {
				t.Errorf("retry came %v after the first request, want %v..%v", gap, tc.wantMin, tc.wantMax)
			}
		})
	}
}

func TestRetriesExhaustedReturnsLastResponse(t *testing.T) {
	t.Parallel()
	srv := newScript(t, func(n int) reply {
		return reply{status: http.StatusServiceUnavailable, body: "attempt " + strconv.Itoa(n)}
	})
	c := newClient(t, httpx.Options{MaxRetries: 2})
	resp, err := c.Do(context.Background(), get(srv.URL))
	if err != nil {
		t.Fatalf("exhausted retries returned an error instead of the response: %v", err)
	}
	if resp.Status != http.StatusServiceUnavailable || string(resp.Body) != "attempt 3" {
		t.Errorf("got %d %q, want 503 \"attempt 3\" (the last answer)", resp.Status, resp.Body)
	}
	if n := len(srv.requests()); n != 3 {
		t.Errorf("%d requests, want 1 + MaxRetries = 3", n)
	}
}

func TestMaxRetriesNegativeAndNoRetrySendOnce(t *testing.T) {
	t.Parallel()
	srv := newScript(t, func(int) reply { return reply{status: http.StatusBadGateway} })
	neverRetries := newClient(t, httpx.Options{MaxRetries: -1})
	if resp, err := neverRetries.Do(context.Background(), get(srv.URL)); err != nil || resp.Status != 502 {
		t.Fatalf("MaxRetries -1: resp %+v, err %v", resp, err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Fatalf("MaxRetries -1 sent %d requests, want 1", n)
	}

	c := newClient(t, httpx.Options{MaxRetries: 3})
	once := get(srv.URL)
	once.NoRetry = true
	resp, err := c.Do(context.Background(), once)
	if err != nil || resp.Status != 502 {
		t.Fatalf("NoRetry: resp %+v, err %v", resp, err)
	}
	if n := len(srv.requests()); n != 2 {
		t.Fatalf("NoRetry sent %d requests, want 1", n-1)
	}
	// NoRetry applies to that request only, not to the client.
	if _, err := c.Do(context.Background(), get(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests()); n != 2+4 {
		t.Errorf("a normal request after a NoRetry one sent %d requests, want 4", n-2)
	}
}

// TestNoRetryConcurrentWithRetries runs NoRetry and normal requests at once
// on a fresh client, for the race detector.
func TestNoRetryConcurrentWithRetries(t *testing.T) {
	t.Parallel()
	srv := newScript(t, func(int) reply { return reply{status: 200} })
	c := newClient(t, httpx.Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := get(srv.URL)
			r.NoRetry = i%2 == 0
			if _, err := c.Do(context.Background(), r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestTransportError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more

	var statuses []int
	c := newClient(t, httpx.Options{MaxRetries: 1, Observe: func(_ string, _ time.Duration, status int) {
		statuses = append(statuses, status)
	}})
	resp, err := c.Do(context.Background(), httpx.Request{Op: "revoke", Method: http.MethodDelete,
		URL: url + "/v1/keys/key_1?token=query-secret-value", Header: http.Header{"Authorization": {"Bearer header-secret-value"}}})
	if resp != nil {
		t.Errorf("got a response %+v from a closed server", resp)
	}
	var e *httpx.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v, want *httpx.Error", err, err)
	}
	if e.Status != 0 || e.Provider != provider || e.Op != "revoke" || e.Method != "DELETE" || e.Path != "/v1/keys/key_1" {
		t.Errorf("error fields = %+v", e)
	}
	msg := err.Error()
	for _, want := range []string{provider, "revoke", "DELETE /v1/keys/key_1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	for _, secret := range []string{"query-secret-value", "header-secret-value", "HTTP"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains %q", msg, secret)
		}
	}
	if len(statuses) != 1 || statuses[0] != 0 {
		t.Errorf("observed statuses %v, want [0]", statuses)
	}
}

func TestContextCancellationStopsRetrying(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// hang makes the server hold the first request until the client
		// gives up; otherwise it answers 503 and the client waits to retry.
		hang bool
	}{
		{"during the wait between attempts", false},
		{"during an attempt", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			arrived := make(chan struct{}, 10)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				if tc.hang {
					<-r.Context().Done()
					return
				}
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer srv.Close()
			// Waits long enough that only cancellation can end the call quickly.
			c := newClient(t, httpx.Options{RetryWaitMin: 20 * time.Second, RetryWaitMax: 20 * time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-arrived
				time.Sleep(20 * time.Millisecond)
				cancel()
			}()
			start := time.Now()
			_, err := c.Do(ctx, get(srv.URL))
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Do returned %v after the first request; cancellation did not stop it", d)
			}
			var e *httpx.Error
			if !errors.As(err, &e) || !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want an *httpx.Error wrapping context.Canceled", err)
			}
			if e.Provider != provider || !strings.Contains(err.Error(), "canceled") {
				t.Errorf("error %q", err)
			}
			if n := len(arrived); n != 0 {
				t.Errorf("%d more requests after cancellation", n)
			}
		})
	}
}

func TestTimeoutBoundsEachAttempt(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, httpx.Options{Timeout: 50 * time.Millisecond, MaxRetries: -1})
	start := time.Now()
	_, err := c.Do(context.Background(), get(srv.URL))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Do took %v with a 50ms timeout", d)
	}
	var e *httpx.Error
	if !errors.As(err, &e) || e.Status != 0 || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("error %v, want a timed-out *httpx.Error", err)
	}
}

func TestMaxResponseBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		size    int
		wantErr bool
	}{
		{10, false}, // exactly the limit is fine
		{11, true},
		{100000, true},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.size), func(t *testing.T) {
			t.Parallel()
			srv := newScript(t, func(int) reply { return reply{status: 200, body: strings.Repeat("x", tc.size)} })
			c := newClient(t, httpx.Options{MaxResponseBytes: 10})
			resp, err := c.Do(context.Background(), get(srv.URL))
			if !tc.wantErr {
				if err != nil || len(resp.Body) != tc.size {
					t.Fatalf("resp %+v, err %v", resp, err)
				}
				return
			}
			var e *httpx.Error
			if !errors.As(err, &e) {
				t.Fatalf("resp %+v, err %v; want an *httpx.Error", resp, err)
			}
			if e.Provider != provider || e.Status != 200 || !strings.Contains(err.Error(), "larger than 10 bytes") {
				t.Errorf("error %q", err)
			}
		})
	}
}

func TestMaxConcurrency(t *testing.T) {
	t.Parallel()
	const limit, callers = 3, 12
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
	}))
	defer srv.Close()
	c := newClient(t, httpx.Options{MaxConcurrency: limit})

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Do(context.Background(), get(srv.URL)); err != nil {
				errs <- err
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inFlight.Load() < limit && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for a request over the limit to show up

	// A caller waiting for a slot gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := c.Do(ctx, get(srv.URL))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for a slot past the deadline: error %v", err)
	}

	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p != limit {
		t.Errorf("peak of %d requests in flight, want exactly MaxConcurrency=%d", p, limit)
	}
}

func TestStatusErrorRedacts(t *testing.T) {
	t.Parallel()
	const (
		bearer   = "sk_live_abcdef0123456789"
		apiKey   = "dd-api-key-0123456789"
		password = "basic-password-xyz"
		body     = `{"name":"vault-app","password":"body-secret-123"}`
		given1   = "given-secret-one"
		given2   = "given-secret-two"
	)
	// A badly behaved provider that echoes everything it got.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "bad request: auth=%q key=%q body=%s also %s and %s",
			r.Header.Get("Authorization"), r.Header.Get("DD-API-KEY"), b, given1, given2)
	}))
	defer srv.Close()
	c := newClient(t, httpx.Options{})

	for _, auth := range []string{"Bearer " + bearer, "Basic " + basic("AC123", password)} {
		req := httpx.Request{Op: "create", Method: "POST", URL: srv.URL + "/v1/keys",
			Header: http.Header{"Authorization": {auth}, "Dd-Api-Key": {apiKey}}, Body: []byte(body)}
		resp, err := c.Do(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		err = c.StatusError(req, resp, string(resp.Body), given1, given2)
		msg := err.Error()
		for _, secret := range []string{bearer, auth, apiKey, password, body, given1, given2} {
			if strings.Contains(msg, secret) {
				t.Errorf("error %q contains %q", msg, secret)
			}
		}
		for _, want := range []string{provider, "create", "POST /v1/keys", "HTTP 400", "bad request", "[redacted]"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q lacks %q", msg, want)
			}
		}
		var e *httpx.Error
		if !errors.As(err, &e) || e.Status != 400 || e.Provider != provider || e.Op != "create" {
			t.Errorf("error %+v", e)
		}
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "http://x", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

func TestStatusErrorMessage(t *testing.T) {
	t.Parallel()
	c := newClient(t, httpx.Options{})
	req := httpx.Request{Op: "verify", Method: "GET", URL: "https://api.example.com/v1/whoami?x=1"}
	resp := &httpx.Response{Status: 418, Header: http.Header{}}

	err := c.StatusError(req, resp, "  teapot  ")
	if got, want := err.Error(), `provider "acme-prod": verify (GET /v1/whoami): HTTP 418: teapot`; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
	// Long provider text is cut, on a character boundary.
	for _, text := range []string{strings.Repeat("é", 400), "x" + strings.Repeat("é", 400)} {
		long := c.StatusError(req, resp, text).(*httpx.Error).Message
		kept := strings.TrimSuffix(long, "…")
		if !utf8.ValidString(long) || len(kept) > 300 || len(kept) < 290 || kept == long {
			t.Errorf("long message cut to %d bytes (valid UTF-8: %v): %q", len(kept), utf8.ValidString(long), long)
		}
	}
	// Secrets too short to redact safely are left alone rather than
	// turning every empty string into "[redacted]".
	if got := c.StatusError(req, resp, "abc", "", "b").(*httpx.Error).Message; got != "abc" {
		t.Errorf("message %q", got)
	}
}

func TestStatusErrorRetryAfter(t *testing.T) {
	t.Parallel()
	c := newClient(t, httpx.Options{})
	req := get("https://api.example.com")
	for _, tc := range []struct {
		status int
		want   time.Duration
	}{
		{http.StatusTooManyRequests, 7 * time.Second},
		{http.StatusServiceUnavailable, 7 * time.Second},
		// Other statuses may carry rate-limit headers on every answer; they
		// do not ask the caller to wait.
		{http.StatusOK, 0},
		{http.StatusBadRequest, 0},
		{http.StatusForbidden, 0},
		{http.StatusInternalServerError, 0},
		{http.StatusBadGateway, 0},
	} {
		resp := &httpx.Response{Status: tc.status, Header: http.Header{"Retry-After": {"7"}}}
		var e *httpx.Error
		if err := c.StatusError(req, resp, "x"); !errors.As(err, &e) || e.RetryAfter != tc.want {
			t.Errorf("status %d: RetryAfter %v, want %v", tc.status, e.RetryAfter, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "5"}, 5 * time.Second},
		{"seconds with spaces", map[string]string{"Retry-After": " 7 "}, 7 * time.Second},
		{"zero seconds", map[string]string{"Retry-After": "0"}, 0},
		{"HTTP date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"HTTP date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"X-RateLimit-Reset epoch", map[string]string{"X-RateLimit-Reset": strconv.FormatInt(now.Add(45*time.Second).Unix(), 10)}, 45 * time.Second},
		{"X-RateLimit-Reset epoch in the past", map[string]string{"X-RateLimit-Reset": strconv.FormatInt(now.Add(-45*time.Second).Unix(), 10)}, 0},
		{"X-RateLimit-Reset relative seconds", map[string]string{"X-RateLimit-Reset": "12"}, 12 * time.Second},
		{"RateLimit-Reset relative fraction", map[string]string{"RateLimit-Reset": "1.5"}, 1500 * time.Millisecond},
		{"X-RateLimit-Reset garbage", map[string]string{"X-RateLimit-Reset": "later"}, 0},
		{"Retry-After wins", map[string]string{"Retry-After": "3", "X-RateLimit-Reset": "60"}, 3 * time.Second},
		{"bad Retry-After falls back", map[string]string{"Retry-After": "-3", "X-RateLimit-Reset": "60"}, time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			if got := httpx.RetryAfter(h, now); got != tc.want {
				t.Errorf("RetryAfter(%v) = %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	const min, max = 100 * time.Millisecond, 2 * time.Second
	t.Run("exponential with jitter stays within min and max", func(t *testing.T) {
		for attempt := range 70 {
			var hi time.Duration
			for range 200 {
				for _, resp := range []*http.Response{nil, {StatusCode: 500, Header: http.Header{"Retry-After": {"60"}}}} {
					d := httpx.Backoff(min, max, attempt, resp)
					if d < min || d > max {
						t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, d, min, max)
					}
					hi = maxDuration(hi, d)
				}
			}
			// The ceiling grows as min·2^attempt: early attempts wait less.
			if ceiling := min << attempt; attempt < 5 && hi > ceiling {
				t.Errorf("attempt %d waited %v, above min·2^attempt = %v", attempt, hi, ceiling)
			}
			if attempt >= 10 && hi < max/2 {
				t.Errorf("attempt %d never waited more than %v; the ceiling should be max", attempt, hi)
			}
		}
	})
	t.Run("Retry-After of a 429 or 503, capped at max", func(t *testing.T) {
		for _, tc := range []struct {
			status     int
			retryAfter string
			want       time.Duration
		}{
			{429, "1", time.Second},
			{503, "1", time.Second},
			{429, "3600", max},
		} {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Retry-After": {tc.retryAfter}}}
			if d := httpx.Backoff(min, max, 0, resp); d != tc.want {
				t.Errorf("%d with Retry-After %s: wait %v, want %v", tc.status, tc.retryAfter, d, tc.want)
			}
		}
	})
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// TestRetryWaitMinAboveMax checks that a RetryWaitMax set below the
// default minimum still caps every wait.
func TestTLSCACert(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))

	trusting := newClient(t, httpx.Options{TLSCACert: certPEM})
	resp, err := trusting.Do(context.Background(), get(srv.URL))
	if err != nil || resp.Status != 200 || string(resp.Body) != "ok" {
		t.Fatalf("with the server's certificate: resp %+v, err %v", resp, err)
	}

	// Each attempt is a new connection (the handshake fails, the
	// connection closes): one connection means no retry.
	before := conns.Load()
	plain := newClient(t, httpx.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	_, err = plain.Do(context.Background(), get(srv.URL))
	var e *httpx.Error
	if !errors.As(err, &e) || e.Status != 0 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the certificate: error %v, want a certificate error", err)
	}
	if n := conns.Load() - before; n != 1 {
		t.Errorf("an untrusted certificate was tried %d times; it cannot get better, so once", n)
	}

	for _, bad := range []string{"garbage", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"} {
		if _, err := httpx.New(httpx.Options{Provider: provider, TLSCACert: bad}); err == nil || !strings.Contains(err.Error(), "tls_ca_cert") {
			t.Errorf("New with TLSCACert %q: error %v, want one naming tls_ca_cert", bad, err)
		}
	}
}

// A rate-limit reset header marks the end of the rate-limit window; APIs
// such as GitLab send it on every answer. It is a wait only on a 429: a 503
// carrying it is retried on the normal backoff.
func TestResetHeaderIsAWaitOnlyOn429(t *testing.T) {
	t.Parallel()
	c := newClient(t, httpx.Options{})
	req := get("https://api.example.com")
	h := http.Header{"Ratelimit-Reset": {"30"}}
	for _, tc := range []struct {
		status int
		want   time.Duration
	}{
		{http.StatusTooManyRequests, 30 * time.Second},
		{http.StatusServiceUnavailable, 0},
	} {
		var e *httpx.Error
		if err := c.StatusError(req, &httpx.Response{Status: tc.status, Header: h}, "x"); !errors.As(err, &e) || e.RetryAfter != tc.want {
			t.Errorf("status %d: RetryAfter %v, want %v", tc.status, e.RetryAfter, tc.want)
		}
	}
	for _, tc := range []struct {
		status  int
		atLeast bool
	}{
		{http.StatusTooManyRequests, true},
		{http.StatusServiceUnavailable, false},
	} {
		d := httpx.Backoff(10*time.Millisecond, time.Minute, 0, &http.Response{StatusCode: tc.status, Header: h})
		if got := d >= 30*time.Second; got != tc.atLeast {
			t.Errorf("status %d: backoff %v; waits for the reset header = %v, want %v", tc.status, d, got, tc.atLeast)
		}
	}
}

// seen is one request as a JSON-call test server received it.
type seen struct {
	method, path, contentType, accept, auth string
	body                                    string
}

// jsonAPI answers every request with status and body, recording what it got.
func jsonAPI(t *testing.T, status int, body string) (*httptest.Server, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Accept"),
			r.Header.Get("Authorization"), string(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

// acmeMessage extracts a test API's {"message":…} error text.
func acmeMessage(body []byte) string {
	var e struct{ Message string }
	_ = json.Unmarshal(body, &e)
	return e.Message
}

func bearerReq(op, method, url, token string) httpx.Request {
	return httpx.Request{Op: op, Method: method, URL: url, Header: http.Header{"Authorization": {"Bearer " + token}}}
}

func TestJSONDecodesSuccess(t *testing.T) {
	t.Parallel()
	srv, requests := jsonAPI(t, http.StatusCreated, `{"id":"key_1","key":"sk_new"}`)
	c := newClient(t, httpx.Options{})
	header := http.Header{"Authorization": {"Bearer root-token"}}
	var out struct{ ID, Key string }
	resp, err := c.JSON(context.Background(), httpx.Request{Op: "create", Method: "POST", URL: srv.URL + "/v1/keys", Header: header},
		map[string]any{"name": "vault-app"}, &out, httpx.Expect{Message: acmeMessage})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusCreated || out.ID != "key_1" || out.Key != "sk_new" {
		t.Fatalf("status %d, decoded %+v", resp.Status, out)
	}
	got := requests()
	want := seen{"POST", "/v1/keys", "application/json", "application/json", "Bearer root-token", `{"name":"vault-app"}`}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("server saw %+v, want %+v", got, want)
	}
	if len(header) != 1 {
		t.Errorf("the caller's header was changed: %v", header)
	}

	// No body: none is sent, and a nil out skips decoding.
	if _, err := c.JSON(context.Background(), bearerReq("verify", "GET", srv.URL+"/v1/whoami", "k"), nil, nil, httpx.Expect{}); err != nil {
		t.Fatal(err)
	}
	if g := requests()[1]; g.body != "" || g.accept != "application/json" {
		t.Errorf("bodiless call sent %+v", g)
	}
}

func TestJSONFailureIsStatusError(t *testing.T) {
	t.Parallel()
	const (
		root  = "root-token-0123456789"
		other = "other-secret-987654"
	)
	// The API echoes the credential and another secret in its error.
	srv, _ := jsonAPI(t, http.StatusForbidden,
		`{"message":"token `+root+` may not do this; see `+other+`","detail":"unrelated body text"}`)
	c := newClient(t, httpx.Options{})
	var out map[string]any
	resp, err := c.JSON(context.Background(), bearerReq("revoke", "DELETE", srv.URL+"/v1/keys/k1?force=1", root), nil, &out,
		httpx.Expect{Message: acmeMessage, Redact: []string{other}})
	if resp != nil || out != nil {
		t.Errorf("a failure returned a response %v or decoded %v", resp, out)
	}
	var e *httpx.Error
	if !errors.As(err, &e) || e.Status != http.StatusForbidden || e.Provider != provider || e.Op != "revoke" {
		t.Fatalf("error %#v, want an *httpx.Error with status 403", err)
	}
	msg := err.Error()
	if want := `provider "acme-prod": revoke (DELETE /v1/keys/k1): HTTP 403: token [redacted] may not do this; see [redacted]`; msg != want {
		t.Errorf("error %q, want %q", msg, want)
	}
	if strings.Contains(msg, "unrelated body text") {
		t.Errorf("error %q carries body text that is not the provider's message", msg)
	}

	// Without a Message function the error still names provider and status.
	_, err = c.JSON(context.Background(), bearerReq("revoke", "DELETE", srv.URL+"/v1/keys/k1", root), nil, nil, httpx.Expect{})
	if got, want := err.Error(), `provider "acme-prod": revoke (DELETE /v1/keys/k1): HTTP 403`; got != want {
		t.Errorf("error %q, want %q", got, want)
	}
}

func TestJSONUndecodableSuccess(t *testing.T) {
	t.Parallel()
	const leaked = "sk_live_in_a_broken_body"
	for name, body := range map[string]string{
		"html":        `<html>maintenance ` + leaked + `</html>`,
		"wrong shape": `{"id":["` + leaked + `"]}`,
		"bad time":    `{"expires":"` + leaked + `"}`,
		"empty":       ``,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := jsonAPI(t, http.StatusOK, body)
			c := newClient(t, httpx.Options{})
			var out struct {
				ID      string    `json:"id"`
				Expires time.Time `json:"expires"`
			}
			resp, err := c.JSON(context.Background(), bearerReq("create", "POST", srv.URL+"/v1/keys?x=1", "k"), map[string]string{}, &out, httpx.Expect{})
			if err == nil || resp != nil {
				t.Fatalf("a broken 2xx body decoded: %+v", out)
			}
			want := `provider "acme-prod": create (POST /v1/keys): HTTP 200: decoding response: the body is not the expected JSON`
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			for e := error(err); e != nil; e = errors.Unwrap(e) {
				if strings.Contains(e.Error(), leaked) {
					t.Errorf("error chain carries the body: %v", e)
				}
			}
			if httpx.NotFound(err) {
				t.Error("a decoding failure reads as a 404")
			}
		})
	}
}

func TestJSONAllowEmpty(t *testing.T) {
	t.Parallel()
	srv, _ := jsonAPI(t, http.StatusNoContent, "")
	c := newClient(t, httpx.Options{})
	out := map[string]string{"kept": "yes"}
	resp, err := c.JSON(context.Background(), bearerReq("revoke", "DELETE", srv.URL+"/v1/keys/k1", "k"), nil, &out, httpx.Expect{AllowEmpty: true})
	if err != nil || resp.Status != http.StatusNoContent || out["kept"] != "yes" {
		t.Fatalf("status %v err %v out %v", resp, err, out)
	}
}

func TestJSONAcceptedStatuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gone, _ := jsonAPI(t, http.StatusNotFound, `{"id":"gone","message":"no such key"}`)
	ok, _ := jsonAPI(t, http.StatusOK, `{"id":"x"}`)
	c := newClient(t, httpx.Options{})
	del := func(url string) httpx.Request { return bearerReq("revoke", "DELETE", url+"/v1/keys/k1", "k") }

	// By default a 404 is an error the caller can recognise.
	_, err := c.JSON(ctx, del(gone.URL), nil, nil, httpx.Expect{Message: acmeMessage})
	if !httpx.NotFound(err) || httpx.Forbidden(err) || !strings.Contains(err.Error(), "no such key") {
		t.Fatalf("404 without OK: %v", err)
	}
	forbidden, _ := jsonAPI(t, http.StatusForbidden, `{"message":"insufficient role"}`)
	if _, err := c.JSON(ctx, del(forbidden.URL), nil, nil, httpx.Expect{}); !httpx.Forbidden(err) || httpx.NotFound(err) {
		t.Fatalf("403: Forbidden(%v) = false", err)
	}
	// Listed, it is the caller's to judge: returned, not decoded.
	var out struct{ ID string }
	resp, err := c.JSON(ctx, del(gone.URL), nil, &out, httpx.Expect{OK: []int{http.StatusNoContent, http.StatusNotFound}})
	if err != nil || resp.Status != http.StatusNotFound || out.ID != "" || !strings.Contains(string(resp.Body), "no such key") {
		t.Fatalf("404 listed in OK: resp %+v err %v out %+v", resp, err, out)
	}
	// A list replaces "any 2xx": an unlisted 200 fails.
	_, err = c.JSON(ctx, del(ok.URL), nil, &out, httpx.Expect{OK: []int{http.StatusNoContent}})
	var e *httpx.Error
	if !errors.As(err, &e) || e.Status != http.StatusOK || out.ID != "" {
		t.Fatalf("unlisted 200: %v (decoded %+v)", err, out)
	}
	if _, err = c.JSON(ctx, del(ok.URL), nil, &out, httpx.Expect{OK: []int{http.StatusOK}}); err != nil || out.ID != "x" {
		t.Fatalf("listed 200: %v (decoded %+v)", err, out)
	}
}

func TestJSONUnencodableBody(t *testing.T) {
	t.Parallel()
	srv, requests := jsonAPI(t, http.StatusOK, `{}`)
	c := newClient(t, httpx.Options{})
	_, err := c.JSON(context.Background(), bearerReq("create", "POST", srv.URL+"/v1/keys", "k"), map[string]any{"f": func() {}}, nil, httpx.Expect{})
	if err == nil || !strings.Contains(err.Error(), `provider "acme-prod": create: encoding the request`) {
		t.Fatalf("error %v", err)
	}
	if n := len(requests()); n != 0 {
		t.Errorf("%d requests sent with a body that did not encode", n)
	}
}

func TestCallSendsBodyAsGiven(t *testing.T) {
	t.Parallel()
	srv, requests := jsonAPI(t, http.StatusCreated, `{"sid":"SK1"}`)
	c := newClient(t, httpx.Options{})
	form := "FriendlyName=vault+app"
	req := httpx.Request{Op: "create", Method: "POST", URL: srv.URL + "/Keys.json", Body: []byte(form),
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {"Basic " + basic("AC1", "pw-secret")}}}
	var out struct{ SID string }
	if _, err := c.Call(context.Background(), req, &out, httpx.Expect{}); err != nil || out.SID != "SK1" {
		t.Fatalf("err %v, decoded %+v", err, out)
	}
	if g := requests()[0]; g.contentType != "application/x-www-form-urlencoded" || g.accept != "" || g.body != form {
		t.Errorf("server saw %+v: Call must send the request as given", g)
	}
}

func TestTextMessage(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		"  Retry later\n":                "Retry later",
		"first line\nsecond line":        "first line",
		"<html><body>502</body></html>":  "",
		"\n  <!DOCTYPE html>\n<html>":    "",
		"":                               "",
		`{"message":"JSON is not text"}`: `{"message":"JSON is not text"}`,
	} {
		if got := httpx.TextMessage([]byte(body)); got != want {
			t.Errorf("TextMessage(%q) = %q, want %q", body, got, want)
		}
	}
}

// roundTripFunc is an http.RoundTripper from a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A wrapped transport sits under the retry layer: each retry of a 429 goes
// through it again, Retry-After still counts, and the errors of the
// wrapped client are redacted like any other.
func TestWithTransportKeepsRetriesAndRedaction(t *testing.T) {
	t.Parallel()
	const secret = "wrapped-secret-123456"
	s := newScript(t, func(n int) reply {
		if n == 1 {
			return reply{status: 429, header: map[string]string{"Retry-After": "0"}}
		}
		return reply{status: 400, body: "bad request for " + secret}
	})
	var answers atomic.Int32
	c := newClient(t, httpx.Options{ObserveAnswer: func(string, int) { answers.Add(1) }})
	var through atomic.Int32
	w := c.WithTransport(func(base http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			through.Add(1)
			r = r.Clone(r.Context())
			r.Header.Set("X-Wrapped", "yes")
			return base.RoundTrip(r)
		})
	})
	if w.Provider() != provider {
		t.Fatalf("provider = %q", w.Provider())
	}
	req := get(s.URL)
	req.Secrets = []string{secret}
	_, err := w.Call(context.Background(), req, nil, httpx.Expect{Message: httpx.TextMessage})
	if err == nil || !strings.Contains(err.Error(), "HTTP 400") || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v", err)
	}
	if through.Load() != 2 || len(s.requests()) != 2 {
		t.Fatalf("the wrapper saw %d round trips, the server %d; want the 429 retried through it", through.Load(), len(s.requests()))
	}
	if answers.Load() != 2 {
		t.Fatalf("ObserveAnswer saw %d answers of the wrapped client, want both", answers.Load())
	}
	// The original client is unchanged.
	through.Store(0)
	_, _ = c.Do(context.Background(), get(s.URL))
	if through.Load() != 0 {
		t.Fatal("the original client went through the wrapper")
	}
}

func TestErrorBodyAndMessageField(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"message":"Key does not exist","status":404}`: "Key does not exist",
		`{"errors":["other shape"]}`:                    "",
		"Forbidden\nmore":                               "Forbidden",
		"<html>proxy</html>":                            "",
		`{"message":`:                                   "",
	} {
		if got := httpx.MessageField([]byte(body)); got != want {
			t.Errorf("MessageField(%q) = %q, want %q", body, got, want)
		}
	}
	var v struct{ A int }
	if _, ok := httpx.ErrorBody([]byte(`{"A":1}`), &v); !ok || v.A != 1 {
		t.Fatalf("ErrorBody did not decode: %+v", v)
	}
}

// ObserveAnswer sees every answer, the retried 429s included, under the
// request's operation, for each of the three retry policies (GET, a
// create-style POST, and NoRetry).
func TestObserveAnswerSeesRetriedAnswers(t *testing.T) {
	t.Parallel()
	srv := newScript(t, func(n int) reply {
		if n%3 != 0 {
			return reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "0"}}
		}
		return reply{status: 200, body: `{"ok":true}`}
	})
	var mu sync.Mutex
	var answers []string
	c := newClient(t, httpx.Options{ObserveAnswer: func(op string, status int) {
		mu.Lock()
		answers = append(answers, fmt.Sprintf("%s %d", op, status))
		mu.Unlock()
	}})
	for _, r := range []httpx.Request{
		get(srv.URL),
		{Op: "create", Method: http.MethodPost, URL: srv.URL + "/v1/keys", Body: []byte(`{}`)},
		{Op: "roll", Method: http.MethodPost, URL: srv.URL + "/v1/roll", NoRetry: true},
	} {
		if _, err := c.Do(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"verify 429", "verify 429", "verify 200", "create 429", "create 429", "create 200", "roll 429"}
	if fmt.Sprint(answers) != fmt.Sprint(want) {
		t.Errorf("answers %q, want %q", answers, want)
	}
}
