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
//
// Two more rules keep the provider's own count in view:
//   - Background callers (all but Interactive ones) take tokens at most at
//     BackgroundShare of the rate, and at most half a full bucket at once,
//     so the bucket refills faster than they drain it and an interactive
//     caller arriving during a storm finds a token instead of queueing for
//     the next one.
//   - Without a rate, an answer's Remaining count with a reset is a quota:
//     the requests in flight then and those started since are charged to
//     it, and once it is spent nobody starts another request before the
//     reset; after the reset one request goes alone and its answer gives
//     the next quota. So a provider whose limit was not configured
//     (max_requests_per_second unset) is paced by what it says is left,
//     not by its 429s.
type Budget struct {
	mu  sync.Mutex
	lim *rate.Limiter // nil: no rate cap
	// share paces background callers at BackgroundShare of the rate, in
	// bursts of half the bucket (nil with lim).
	share     *rate.Limiter
	rps       float64
	heldUntil time.Time

	// The quota from the provider's last answer that carried a Remaining
	// count and a reset: quota requests may still start before quotaReset.
	quotaKnown bool
	quota      int
	quotaReset time.Time
	// inflight counts requests started through the transport whose answer
	// has not come back yet.
	inflight int
	// answered is closed (and replaced) when an answer changes the quota,
	// waking the callers waiting for one.
	answered chan struct{}

	// maxHold caps a hold, whatever a provider (or a clock skew) asks for.
	maxHold time.Duration
	now     func() time.Time
}

// BackgroundShare is the part of a budget's rate that callers other than
// Interactive ones may use: the rest is kept for interactive callers, who
// then seldom wait for a token even while scheduled work is saturating the
// budget.
const BackgroundShare = 0.95

// NewBudget returns a budget of rps requests a second (bursts of rps, at
// least one); rps <= 0 caps nothing, but answers still set holds and quotas.
func NewBudget(rps float64) *Budget {
	// Until a first answer says what the provider counts, one request
	// goes alone (see step).
	b := &Budget{maxHold: DefaultRetryWaitMax, now: time.Now, answered: make(chan struct{}),
		quotaKnown: true, quota: 1}
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
		b.lim, b.share = nil, nil
		return
	}
	burst := max(1, int(math.Ceil(rps)))
	b.lim = rate.NewLimiter(rate.Limit(rps), burst)
	// Half a full bucket at once, then the share's pace: the other half
	// stays for interactive callers when a storm starts.
	b.share = rate.NewLimiter(rate.Limit(rps*BackgroundShare), max(1, burst/2))
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
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holdLocked(d)
}

func (b *Budget) holdLocked(d time.Duration) {
	if d <= 0 {
		return
	}
	if d > b.maxHold {
		d = b.maxHold
	}
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

// Wait blocks until a request may be sent: no hold is in force, the
// provider's quota is not spent, a token was taken (and, for a background
// caller, a turn of its share). It returns how long it waited (0 when it
// did not); the error is ctx's.
//
// An interactive caller (see Interactive) reserves its turn in the bucket
// and keeps it. Any other caller takes a token only when one is there, and
// otherwise sleeps until the next one without claiming it: so it never
// holds a future turn that an interactive caller arriving later would
// queue behind, and loses every race for a token against one that has
// reserved it.
func (b *Budget) Wait(ctx context.Context) (time.Duration, error) {
	return b.wait(ctx, false)
}

// waiter is one caller's progress through Wait.
type waiter struct {
	interactive bool
	took        bool // holds a token of the bucket
	shareTook   bool // holds a turn of the background share
	// res is the interactive caller's reservation, cancelled if it gives up.
	res *rate.Reservation
}

// step decides, at now, whether w may send: go, or sleep for d, or (d 0)
// until wake is closed by an answer. start counts the request as started
// (in flight and charged to the quota) when it may go.
func (b *Budget) step(now time.Time, w *waiter, start bool) (ok bool, d time.Duration, wake <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// The quota paces a provider whose rate is not configured; with a
	// rate, the bucket does (a refilling bucket's count, read per
	// window, would stall it at every window's end).
	spent := b.lim == nil && b.quotaKnown && b.quota <= 0
	switch {
	case b.heldUntil.After(now):
		// A token taken before the hold is spent: the provider's window
		// reset since, and so did everyone else's claim.
		w.took, w.shareTook = false, false
		return false, b.heldUntil.Sub(now), nil
	case spent && b.quotaReset.After(now):
		w.took, w.shareTook = false, false
		return false, b.quotaReset.Sub(now), nil
	case spent && b.inflight > 0:
		// Past the reset, with answers on the way: they give the new quota.
		return false, 0, b.answered
	case spent:
		// Past the reset and nothing in flight: one request goes alone to
		// learn the new quota.
		b.quota = 1
	}
	if !w.interactive && !w.shareTook && b.share != nil {
		w.shareTook = true
		if d := b.share.ReserveN(now, 1).DelayFrom(now); d > 0 {
			return false, d, nil
		}
	}
	switch {
	case w.took || b.lim == nil:
	case w.interactive:
		w.res = b.lim.ReserveN(now, 1)
		w.took = true
		if d := w.res.DelayFrom(now); d > 0 {
			return false, d, nil
		}
	default:
		r := b.lim.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now) // not our turn yet: leave it free
			return false, d, nil
		}
		w.took = true
	}
	if start {
		b.inflight++
		if b.quotaKnown {
			b.quota--
		}
	}
	return true, 0, nil
}

// wait is Wait; start counts the request as sent (see step), to be ended
// by done.
func (b *Budget) wait(ctx context.Context, start bool) (time.Duration, error) {
	w := &waiter{interactive: isInteractive(ctx)}
	begin := b.now()
	slept := false
	waited := func() time.Duration {
		if !slept {
			return 0
		}
		return b.now().Sub(begin)
	}
	for {
		ok, d, wake := b.step(b.now(), w, start)
		if ok {
			return waited(), nil
		}
		slept = true
		if !sleep(ctx, d, wake) {
			if w.res != nil {
				w.res.Cancel()
			}
			return waited(), ctx.Err()
		}
	}
}

// sleep waits for d, or (d 0) until wake is closed; false if ctx ended
// first.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	if wake == nil {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	select {
	case <-wake:
		return true
	case <-ctx.Done():
		return false
	}
}

// done ends a request counted by wait: resp is its answer (nil when none
// came), read into the hold and the quota.
func (b *Budget) done(resp *http.Response) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inflight--
	if resp == nil {
		if b.quotaKnown {
			b.quota++ // unanswered: the provider may not have counted it
		}
	} else {
		b.observeLocked(resp)
	}
	close(b.answered)
	b.answered = make(chan struct{})
}

// observeLocked sets the hold and the quota from one answer of the
// provider.
func (b *Budget) observeLocked(resp *http.Response) {
	now := b.now()
	if resp.StatusCode == http.StatusTooManyRequests {
		// A 429 that names no wait holds nothing: the caller's own
		// backoff spaces its retries, and the bucket everyone else's.
		b.holdLocked(throttleWait(resp.StatusCode, resp.Header, now))
	}
	left, ok := remaining(resp.Header)
	if !ok {
		if resp.StatusCode != http.StatusTooManyRequests {
			b.quotaKnown = false
		}
		return
	}
	// The reset counted from our clock, without the second RetryAfter
	// adds for a truncated Date (a 429 gets that margin from its hold): if
	// it proves short, the answer after it says so. A 429's quota ends
	// with its hold: when it says to come back (its Retry-After, say,
	// rather than the end of a long window), one request goes alone.
	h := resp.Header.Clone()
	h.Del("Date")
	h.Del("Retry-After")
	reset := RetryAfter(h, now)
	if resp.StatusCode == http.StatusTooManyRequests {
		reset = throttleWait(resp.StatusCode, resp.Header, now)
	}
	reset = min(reset, b.maxHold)
	if reset <= 0 {
		b.quotaKnown = false
		return
	}
	if left <= 0 && resp.StatusCode != http.StatusTooManyRequests {
		// Nothing left ahead of any refusal: a hold, shown in status.
		b.holdLocked(reset)
	}
	// The requests still in flight were sent before this answer came and
	// may be counted after it.
	// Wall time (Round(0)): a reset given as a moment is then the same
	// moment in every answer that gives it.
	q, at := left-b.inflight, now.Add(reset).Round(0)
	if b.quotaKnown && now.Before(b.quotaReset) && !at.After(b.quotaReset) {
		// The same window: answers overtake each other on the way back,
		// so an earlier count arriving late does not raise the quota.
		q = min(q, b.quota)
	}
	b.quotaKnown, b.quota, b.quotaReset = true, q, at
}

// remaining returns the answer's count of requests left in the provider's
// current window, if it has one.
func remaining(h http.Header) (int, bool) {
	for _, name := range []string{"X-RateLimit-Remaining", "RateLimit-Remaining", "X-Rate-Limit-Remaining"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(n) {
				return 0, false
			}
			return int(max(-1, min(n, 1e9))), true
		}
	}
	return 0, false
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
	d, err := t.budget.wait(req.Context(), true)
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
	t.budget.done(resp)
	return resp, err
}
