package httpx

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Budget is the request budget of one provider: a token bucket taken
// before every request attempt (retries and an auth scheme's extra round
// trips included), shared by every Client built with it, and a hold that
// stops every caller until the provider's rate-limit window resets.
//
// The hold is set from the provider's own answers: a 429 (until its
// Retry-After or rate-limit reset), or any answer saying no request is left
// (X-RateLimit-Remaining, RateLimit-Remaining or X-Rate-Limit-Remaining of
// 0 with a reset). So a storm of callers meets one 429, not one each.
type Budget struct {
	mu        sync.Mutex
	lim       *rate.Limiter // nil: no rate cap
	rps       float64
	heldUntil time.Time
	// maxHold caps a hold, whatever a provider (or a clock skew) asks for.
	maxHold time.Duration
	now     func() time.Time
}

// NewBudget returns a budget of rps requests a second (bursts of rps, at
// least one); rps <= 0 caps nothing, but answers still set holds.
func NewBudget(rps float64) *Budget {
	b := &Budget{maxHold: DefaultRetryWaitMax, now: time.Now}
	b.SetRate(rps)
	return b
}

// SetRate changes the rate (a provider's max_requests_per_second was
// written); a hold in force stays.
func (b *Budget) SetRate(rps float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rps == b.rps {
		return
	}
	b.rps = rps
	if rps <= 0 || math.IsInf(rps, 0) || math.IsNaN(rps) {
		b.lim = nil
		return
	}
	b.lim = rate.NewLimiter(rate.Limit(rps), max(1, int(math.Ceil(rps))))
}

// Rate returns the configured rate (0: no cap).
func (b *Budget) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rps
}

// HeldUntil returns when the hold set by the provider's answers ends, or
// the zero time when none is in force.
func (b *Budget) HeldUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.heldUntil.After(b.now()) {
		return time.Time{}
	}
	return b.heldUntil
}

// Hold stops every caller for d (capped), unless a longer hold is in force.
func (b *Budget) Hold(d time.Duration) {
	if d <= 0 {
		return
	}
	if d > b.maxHold {
		d = b.maxHold
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if until := b.now().Add(d); until.After(b.heldUntil) {
		b.heldUntil = until
	}
}

// interactiveKey marks a context whose requests go before others on a
// Budget.
type interactiveKey struct{}

// Interactive returns ctx marked as a caller someone is waiting on (a creds
// read): its requests take the budget's next token before those of
// unmarked callers (scheduled rotations, revocations).
func Interactive(ctx context.Context) context.Context {
	return context.WithValue(ctx, interactiveKey{}, true)
}

func isInteractive(ctx context.Context) bool {
	v, _ := ctx.Value(interactiveKey{}).(bool)
	return v
}

// Wait blocks until a request may be sent: no hold is in force and a token
// was taken. It returns how long it waited (0 when it did not); the error
// is ctx's.
//
// An interactive caller (see Interactive) reserves its turn in the bucket
// and keeps it. Any other caller takes a token only when one is there, and
// otherwise sleeps until the next one without claiming it: so it never
// holds a future turn that an interactive caller arriving later would
// queue behind, and loses every race for a token against one that has
// reserved it.
func (b *Budget) Wait(ctx context.Context) (time.Duration, error) {
	interactive := isInteractive(ctx)
	start := b.now()
	took, slept := false, false
	waited := func() time.Duration {
		if !slept {
			return 0
		}
		return b.now().Sub(start)
	}
	for {
		b.mu.Lock()
		now := b.now()
		var d time.Duration
		var res *rate.Reservation
		switch {
		case b.heldUntil.After(now):
			d = b.heldUntil.Sub(now)
			// A token taken before the hold is spent: the provider's
			// window reset since, and so did everyone else's claim.
			took = false
		case !took && b.lim != nil && interactive:
			res = b.lim.ReserveN(now, 1)
			d = res.DelayFrom(now)
			took = true
		case !took && b.lim != nil:
			r := b.lim.ReserveN(now, 1)
			if d = r.DelayFrom(now); d > 0 {
				r.CancelAt(now) // not our turn yet: leave it free
			} else {
				took = true
			}
		default:
			b.mu.Unlock()
			return waited(), nil
		}
		b.mu.Unlock()
		if d <= 0 {
			continue
		}
		slept = true
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if res != nil {
				res.Cancel()
			}
			return waited(), ctx.Err()
		}
	}
}

// observe sets a hold from one answer of the provider.
func (b *Budget) observe(resp *http.Response) {
	now := b.now()
	if resp.StatusCode == http.StatusTooManyRequests {
		// A 429 that names no wait holds nothing: the caller's own
		// backoff spaces its retries, and the bucket everyone else's.
		b.Hold(throttleWait(resp.StatusCode, resp.Header, now))
		return
	}
	if exhausted(resp.Header) {
		// A hold ahead of any refusal counts the reset from our clock,
		// without the second RetryAfter adds for a truncated Date (a 429
		// gets that margin): if it proves short, the 429 that follows
		// holds again.
		h := resp.Header.Clone()
		h.Del("Date")
		h.Del("Retry-After")
		b.Hold(RetryAfter(h, now))
	}
}

// exhausted reports whether the answer says no request is left in the
// provider's current window.
func exhausted(h http.Header) bool {
	for _, name := range []string{"X-RateLimit-Remaining", "RateLimit-Remaining", "X-Rate-Limit-Remaining"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			n, err := strconv.ParseFloat(v, 64)
			return err == nil && n <= 0
		}
	}
	return false
}

// budgetTransport takes the budget before each request it sends and
// reads the answer's rate-limit headers into it.
type budgetTransport struct {
	next   http.RoundTripper
	budget *Budget
	// waited, when set, is told each wait on the budget.
	waited func(time.Duration)
}

func (t *budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	d, err := t.budget.Wait(req.Context())
	if d > 0 && t.waited != nil {
		t.waited(d)
	}
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if resp != nil {
		t.budget.observe(resp)
	}
	return resp, err
}
