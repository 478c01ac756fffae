package httpx_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// window is a test provider that refuses (429) every request arriving
// before its reset, and counts the 429s it sent.
type window struct {
	*httptest.Server
	mu      sync.Mutex
	resetAt time.Time
	refused atomic.Int32
	served  atomic.Int32
}

// newWindow answers the first request with first(w) and closes the window
// for hold from then; later requests are refused until it reopens.
func newWindow(t *testing.T, hold time.Duration, first func(h http.Header) int) *window {
	t.Helper()
	win := &window{}
	var n atomic.Int32
	win.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			win.mu.Lock()
			win.resetAt = time.Now().Add(hold)
			win.mu.Unlock()
			status := first(w.Header())
			if status == http.StatusTooManyRequests {
				win.refused.Add(1)
			} else {
				win.served.Add(1)
			}
			w.WriteHeader(status)
			return
		}
		win.mu.Lock()
		closed := time.Now().Before(win.resetAt)
		win.mu.Unlock()
		if closed {
			win.refused.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		win.served.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(win.Close)
	return win
}

// storm sends n requests at once and fails the test on any error or non-200.
func storm(t *testing.T, c *httpx.Client, url string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Do(context.Background(), get(url))
			if err != nil {
				t.Error(err)
			} else if resp.Status != http.StatusOK {
				t.Errorf("status %d, want 200", resp.Status)
			}
		}()
	}
	wg.Wait()
}

// The bucket paces every attempt to max rate, and the waits are reported.
func TestBudgetPacesRequests(t *testing.T) {
	s := newScript(t, func(int) reply { return reply{status: http.StatusOK} })
	var waited atomic.Int64
	c := newClient(t, httpx.Options{Budget: httpx.NewBudget(50),
		ObserveThrottle: func(d time.Duration) { waited.Add(int64(d)) }})
	start := time.Now()
	storm(t, c, s.URL, 60) // 50 in the burst, then 10 at 50/s: at least 0.2 s
	if el := time.Since(start); el < 180*time.Millisecond {
		t.Errorf("60 requests at 50/s (burst 50) took %v, want at least 0.18s", el)
	}
	if got := len(s.requests()); got != 60 {
		t.Errorf("server saw %d requests, want 60", got)
	}
	if waited.Load() <= 0 {
		t.Error("no wait reported to ObserveThrottle")
	}
}

// A 429 holds every caller of the budget until its reset: a storm started
// after it meets no second 429, where each caller retrying on its own
// would collect one each.
func TestBudget429HoldsEveryCaller(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
	}{
		{"RateLimit-Reset seconds", "RateLimit-Reset"},
		{"X-RateLimit-Reset seconds", "X-RateLimit-Reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			win := newWindow(t, 300*time.Millisecond, func(h http.Header) int {
				h.Set(tc.header, "0.3")
				return http.StatusTooManyRequests
			})
			budget := httpx.NewBudget(0)
			c := newClient(t, httpx.Options{Budget: budget})
			r := get(win.URL)
			r.NoRetry = true
			if resp, err := c.Do(context.Background(), r); err != nil || resp.Status != http.StatusTooManyRequests {
				t.Fatalf("first request: %v %v, want a 429", resp, err)
			}
			if budget.HeldUntil().IsZero() {
				t.Fatal("HeldUntil is zero after a 429")
			}
			storm(t, c, win.URL, 8)
			if got := win.refused.Load(); got != 1 {
				t.Errorf("provider sent %d 429s, want 1", got)
			}
			if !budget.HeldUntil().IsZero() {
				t.Error("HeldUntil still set after the reset")
			}
		})
	}
}

// An answer that says no request is left in the window (Remaining 0 with a
// reset) holds the budget before any 429.
func TestBudgetRemainingZeroHolds(t *testing.T) {
	for _, name := range []string{"X-RateLimit-Remaining", "RateLimit-Remaining", "X-Rate-Limit-Remaining"} {
		t.Run(name, func(t *testing.T) {
			win := newWindow(t, 300*time.Millisecond, func(h http.Header) int {
				h.Set(name, "0")
				h.Set("RateLimit-Reset", "0.3")
				return http.StatusOK
			})
			c := newClient(t, httpx.Options{Budget: httpx.NewBudget(0)})
			storm(t, c, win.URL, 1)
			storm(t, c, win.URL, 8)
			if got := win.refused.Load(); got != 0 {
				t.Errorf("provider sent %d 429s, want 0", got)
			}
		})
	}
}

// Remaining above 0, or 0 on a client without a budget, holds nothing.
func TestBudgetRemainingAboveZeroDoesNotHold(t *testing.T) {
	s := newScript(t, func(int) reply {
		return reply{status: http.StatusOK, header: map[string]string{"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "5"}}
	})
	budget := httpx.NewBudget(0)
	c := newClient(t, httpx.Options{Budget: budget})
	start := time.Now()
	storm(t, c, s.URL, 4)
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v: held without reason", el)
	}
	if !budget.HeldUntil().IsZero() {
		t.Error("held on Remaining 3")
	}
}

// A caller held by the budget gives up when its context ends.
func TestBudgetWaitHonoursContext(t *testing.T) {
	budget := httpx.NewBudget(0)
	budget.Hold(10 * time.Second)
	s := newScript(t, func(int) reply { return reply{status: http.StatusOK} })
	c := newClient(t, httpx.Options{Budget: budget})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Do(ctx, get(s.URL))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("waited %v past the context's end", el)
	}
	if len(s.requests()) != 0 {
		t.Error("a held request was sent")
	}
}

// A hold is capped: a reset far away (or a skewed clock) does not stop a
// provider for longer than the longest retry wait.
func TestBudgetHoldCapped(t *testing.T) {
	budget := httpx.NewBudget(0)
	budget.Hold(24 * time.Hour)
	if until := budget.HeldUntil(); time.Until(until) > httpx.DefaultRetryWaitMax {
		t.Errorf("held until %v, more than %v away", until, httpx.DefaultRetryWaitMax)
	}
}

// SetRate changes the pace of an existing budget; 0 removes the cap.
func TestBudgetSetRate(t *testing.T) {
	budget := httpx.NewBudget(1)
	if budget.Rate() != 1 {
		t.Fatalf("Rate = %v", budget.Rate())
	}
	budget.SetRate(0)
	start := time.Now()
	for range 20 {
		if _, err := budget.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("20 waits with no cap took %v", el)
	}
}

// A request that finds a token and no hold reports no wait at all.
func TestBudgetNoWaitReportsZero(t *testing.T) {
	budget := httpx.NewBudget(0)
	if d, err := budget.Wait(context.Background()); d != 0 || err != nil {
		t.Errorf("Wait = %v, %v; want 0, nil", d, err)
	}
	budget = httpx.NewBudget(100)
	if d, err := budget.Wait(context.Background()); d != 0 || err != nil {
		t.Errorf("Wait with a token = %v, %v; want 0, nil", d, err)
	}
}

// Against a provider enforcing the same rate with a token bucket of its
// own (the demo provider), a budget of that rate gets no 429 from several
// callers: a token a caller took before a hold is not spent after it.
func TestBudgetMatchesProviderBucket(t *testing.T) {
	const rps = 40
	if refused, _ := demoStorm(t, httpx.NewBudget(rps), rps, -1, 8, 8); refused > 1 {
		t.Errorf("%d answers were 429, want at most 1 (the two buckets drift by the network's jitter)", refused)
	}
}

// demoStorm sends callers x each requests through budget to a demo
// provider limited to rps (a request refused with 429 is retried up to
// retries times: -1 none) and returns the 429s and other answers it got.
func demoStorm(t *testing.T, budget *httpx.Budget, rps float64, retries, callers, each int) (refused, served int) {
	admin := demoserver.NewAdminKey()
	srv := httptest.NewServer(demoserver.New(demoserver.Options{AdminKey: admin, RateLimitRPS: rps}))
	defer srv.Close()
	var no, yes atomic.Int32
	c := newClient(t, httpx.Options{Budget: budget, MaxRetries: retries,
		ObserveAnswer: func(_ string, status int) {
			if status == http.StatusTooManyRequests {
				no.Add(1)
			} else {
				yes.Add(1)
			}
		}})
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				r := get(srv.URL)
				r.Header = http.Header{"Authorization": {"Bearer " + admin}}
				if _, err := c.Do(context.Background(), r); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	return int(no.Load()), int(yes.Load())
}

// A token taken before a hold is not spent after it: interactive callers
// (the ones that reserve a turn ahead) whose turn fell inside the held
// window take a new one when it ends, instead of all going at once at its
// end on top of the refilled bucket.
func TestBudgetHoldVoidsEarlierTokens(t *testing.T) {
	budget := httpx.NewBudget(20) // bursts of 20, then one every 50 ms
	for range 20 {                // interactive: a background caller's share would refill the bucket meanwhile
		budget.Wait(httpx.Interactive(context.Background()))
	}
	start := time.Now()
	var mu sync.Mutex
	var done []time.Duration
	var wg sync.WaitGroup
	for range 10 { // turns at 50, 100, … 500 ms
		wg.Add(1)
		go func() {
			defer wg.Done()
			budget.Wait(httpx.Interactive(context.Background()))
			mu.Lock()
			done = append(done, time.Since(start))
			mu.Unlock()
		}()
	}
	time.Sleep(10 * time.Millisecond) // every caller has its turn
	budget.Hold(290 * time.Millisecond)
	wg.Wait()
	early := 0
	for _, d := range done {
		if d < 340*time.Millisecond {
			early++
		}
	}
	// The six turns inside the hold (50-300 ms) move after the four later
	// ones (350-500 ms): none is left for the moment the hold ends.
	if early > 1 {
		t.Errorf("%d callers went by 340 ms, when the hold ended at 300 ms: their tokens from before it were spent after it (done at %v)", early, done)
	}
}

// Interactive callers go before the others: with background callers
// keeping the bucket empty, an interactive one waits about one token's
// time, not its turn among them.
func TestBudgetInteractiveGoesFirst(t *testing.T) {
	budget := httpx.NewBudget(10) // one token every 100 ms once the burst is spent
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				budget.Wait(ctx)
			}
		}()
	}
	time.Sleep(150 * time.Millisecond) // the burst is spent, 40 callers queue
	for i := range 6 {
		start := time.Now()
		if _, err := budget.Wait(httpx.Interactive(context.Background())); err != nil {
			t.Fatal(err)
		}
		// Among 40 callers with equal rights it would often be seconds.
		if el := time.Since(start); el > 250*time.Millisecond {
			t.Errorf("interactive wait %d took %v, want about one token's time (100 ms)", i, el)
		}
	}
}

// With no rate configured, a budget follows the count the provider sends
// (the demo provider's X-RateLimit-Remaining): a storm from many callers
// gets few 429s, where sending until refused would get one for every
// request in flight when the bucket ran dry, each time it ran dry.
func TestBudgetUnsetRateFollowsProviderCount(t *testing.T) {
	refused, served := demoStorm(t, httpx.NewBudget(0), 40, 5, 24, 5)
	if refused > 2 {
		t.Errorf("%d answers were 429 (%d served), want at most 2", refused, served)
	}
	t.Logf("%d answers were 429, %d served", refused, served)
}

// A background caller waiting for its turn on the budget holds none of
// the provider's concurrency slots: an interactive caller whose token
// comes first goes first, instead of queueing behind it for the slot.
func TestBudgetWaitHoldsNoConcurrencySlot(t *testing.T) {
	var mu sync.Mutex
	var order []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		order = append(order, r.Header.Get("X-Who"))
		mu.Unlock()
	}))
	defer srv.Close()
	// A token a second: the bucket's next token is 1 s away, the
	// background share's next turn 1.1 s away.
	c := newClient(t, httpx.Options{Budget: httpx.NewBudget(1), MaxConcurrency: 1})
	send := func(ctx context.Context, who string) {
		r := get(srv.URL)
		r.Header = http.Header{"X-Who": {who}}
		if _, err := c.Do(ctx, r); err != nil {
			t.Error(err)
		}
	}
	send(context.Background(), "first") // takes the token and the share's turn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); send(context.Background(), "background") }()
	time.Sleep(50 * time.Millisecond) // the background caller reaches its wait (an ordering aid, not an assertion)
	send(httpx.Interactive(context.Background()), "interactive")
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 3 || order[1] != "interactive" {
		t.Errorf("requests arrived as %v, want the interactive one before the background one", order)
	}
}
