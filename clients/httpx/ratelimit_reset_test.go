package httpx_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// Okta answers a 429 with X-Rate-Limit-Reset (epoch seconds) and no
// Retry-After; the wait is counted from the answer's Date (the server's
// clock) plus one second, as Okta's SDKs do.
func TestRetryAfterOktaResetHeader(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	serverNow := now.Add(-time.Hour) // a server clock an hour behind ours
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"epoch, no Date", map[string]string{"X-Rate-Limit-Reset": strconv.FormatInt(now.Add(20*time.Second).Unix(), 10)}, 20 * time.Second},
		{"epoch from the server's Date", map[string]string{"X-Rate-Limit-Reset": strconv.FormatInt(serverNow.Add(20*time.Second).Unix(), 10),
			"Date": serverNow.Format(http.TimeFormat)}, 21 * time.Second},
		{"Retry-After still wins", map[string]string{"Retry-After": "2", "X-Rate-Limit-Reset": strconv.FormatInt(now.Add(time.Minute).Unix(), 10)}, 2 * time.Second},
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

// A 429 carrying only Okta's headers is waited out before the retry, not
// retried at the ordinary millisecond backoff.
func TestOktaStyle429IsWaitedOut(t *testing.T) {
	var calls atomic.Int32
	var first time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			first = time.Now()
			w.Header().Set("X-Rate-Limit-Limit", "100")
			w.Header().Set("X-Rate-Limit-Remaining", "0")
			w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(time.Now().Unix()+1, 10))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c, err := httpx.New(httpx.Options{Provider: "okta", RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(context.Background(), httpx.Request{Op: "create", Method: http.MethodPost, URL: srv.URL})
	if err != nil || resp.Status != http.StatusOK || calls.Load() != 2 {
		t.Fatalf("status %v, err %v, calls %d", resp, err, calls.Load())
	}
	// Reset is the next second or the one after; Date − 1s as the base
	// makes the wait at least a second.
	if took := time.Since(first); took < time.Second {
		t.Fatalf("retried after %v, before the rate-limit window reset", took)
	}
}
