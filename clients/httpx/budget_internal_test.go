package httpx

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// fakeClock is a budget clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func budgetAt(rps float64) (*Budget, *fakeClock) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := NewBudget(rps)
	b.now = c.now
	b.lim, b.share = nil, nil
	b.rps = 0
	b.SetRate(rps) // the limiters start from the fake clock's time
	return b, c
}

// answer is a provider's answer carrying a Remaining count and a reset in
// seconds.
func answer(remaining, reset string) *http.Response {
	h := http.Header{}
	if remaining != "" {
		h.Set("X-RateLimit-Remaining", remaining)
		h.Set("X-RateLimit-Reset", reset)
	}
	return &http.Response{StatusCode: http.StatusOK, Header: h}
}

// While background callers saturate the budget, interactive callers
// arriving at up to the rate they leave free (5 %) never wait: the
// background share keeps the bucket from running dry. And the background
// callers still get their whole share (the rotation storm's pace).
func TestBudgetBackgroundShareKeepsInteractiveHeadroom(t *testing.T) {
	const rps, secs = 20, 30
	b, c := budgetAt(rps)
	start := c.t
	end := start.Add(secs * time.Second)
	every := time.Second                                             // 5 % of 20 rps
	bgNext, intNext := start, start.Add(every/2+13*time.Millisecond) // off the tokens' 50 ms grid
	bg := &waiter{}
	granted, reads := 0, 0
	for {
		if bgNext.Before(intNext) {
			if !bgNext.Before(end) {
				break
			}
			c.t = bgNext
			ok, d, _ := b.step(c.t, bg, false)
			if ok {
				granted++
				bg = &waiter{} // the next scheduled request is already waiting
				continue
			}
			bgNext = c.t.Add(d)
			continue
		}
		c.t = intNext
		reads++
		if ok, d, _ := b.step(c.t, &waiter{interactive: true}, false); !ok {
			t.Errorf("interactive read %d at +%v waited %v for a token", reads, c.t.Sub(start), d)
		}
		intNext = intNext.Add(every)
	}
	want := rps*BackgroundShare*secs + rps/2 // the share, after half a bucket at once
	if float64(granted) < want-1 || float64(granted) > want+1 {
		t.Errorf("background callers got %d requests in %ds, want their share and half a bucket: %.0f", granted, secs, want)
	}
	if reads < secs-1 {
		t.Fatalf("only %d interactive reads simulated", reads)
	}
}

// Past their share, background callers wait even when the bucket has
// tokens: the tokens above the share are left for interactive callers.
func TestBudgetBackgroundShareCapsPace(t *testing.T) {
	b, c := budgetAt(20)
	granted := 0
	for w := (&waiter{}); c.t.Before(time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)); {
		ok, d, _ := b.step(c.t, w, false)
		if ok {
			granted++
			w = &waiter{}
			continue
		}
		c.t = c.t.Add(d)
	}
	// A full bucket of 20 would let 20 go at once and 20 a second after:
	// 220 in 10 s without the share, which allows 10 at once and 19 a
	// second after.
	if granted > 201 {
		t.Errorf("background callers got %d requests in 10 s at 20 rps, want at most half a bucket and the 95 %% share (201)", granted)
	}
}

// A fresh budget sends one request alone until an answer says what the
// provider counts; an answer without a count frees everyone.
func TestBudgetFirstRequestGoesAlone(t *testing.T) {
	b, c := budgetAt(0)
	if ok, _, _ := b.step(c.t, &waiter{}, true); !ok {
		t.Fatal("the first request waited")
	}
	ok, d, wake := b.step(c.t, &waiter{}, true)
	if ok || d != 0 || wake == nil {
		t.Fatalf("second request before any answer: go %v, wait %v, wake %v; want a wait for the answer", ok, d, wake != nil)
	}
	b.done(answer("", ""))
	select {
	case <-wake:
	default:
		t.Fatal("the answer did not wake the waiting caller")
	}
	for i := range 50 {
		if ok, _, _ := b.step(c.t, &waiter{}, true); !ok {
			t.Fatalf("request %d waited after an answer with no rate-limit count", i)
		}
	}
}

// The Remaining count is a quota: requests in flight when it came and
// those started since are charged to it, and when it is spent nobody
// starts before the reset; after the reset one request goes alone and its
// answer sets the next quota.
func TestBudgetRemainingIsAQuota(t *testing.T) {
	b, c := budgetAt(0)
	go1 := func() bool { ok, _, _ := b.step(c.t, &waiter{}, true); return ok }
	if !go1() {
		t.Fatal("first request waited")
	}
	b.done(answer("6", "1")) // 6 left until 1 s from now
	for i := range 6 {
		if !go1() {
			t.Fatalf("request %d of the 6 left waited", i+1)
		}
	}
	ok, d, _ := b.step(c.t, &waiter{}, true)
	if ok || d != time.Second {
		t.Fatalf("7th request: go %v, wait %v; want a wait of 1s (the reset)", ok, d)
	}
	// An answer from one of the 6 says 4 are left, with 5 still in
	// flight: they may all be counted after it, so none is left.
	c.t = c.t.Add(100 * time.Millisecond)
	b.done(answer("4", "1"))
	if ok, d, _ := b.step(c.t, &waiter{}, true); ok || d != time.Second {
		t.Fatalf("with 4 left and 5 in flight: go %v, wait %v; want a wait of 1s", ok, d)
	}
	// Past the reset, with answers still on the way: wait for them.
	c.t = c.t.Add(time.Second)
	if ok, d, wake := b.step(c.t, &waiter{}, true); ok || d != 0 || wake == nil {
		t.Fatalf("past the reset, 5 in flight: go %v, wait %v; want a wait for an answer", ok, d)
	}
	for range 5 {
		b.done(nil) // unanswered: each gives its charge back
	}
	if b.quota != 4 { // -1 after the answer, +5
		t.Errorf("quota %d after 5 unanswered requests, want 4", b.quota)
	}
	b.quota = 0
	// Spent, past the reset, nothing in flight: one request goes alone.
	if !go1() {
		t.Fatal("no request went after the reset")
	}
	if ok, _, wake := b.step(c.t, &waiter{}, true); ok || wake == nil {
		t.Fatal("a second request went with the first one's answer still out")
	}
	b.done(answer("3", "1"))
	for i := range 3 {
		if !go1() {
			t.Fatalf("request %d of the 3 the answer gave waited", i+1)
		}
	}
	if go1() {
		t.Fatal("a 4th request went on a quota of 3")
	}
}

// Remaining 0 holds (shown as HeldUntil) as before; a Remaining count
// without a reset sets no quota.
func TestBudgetRemainingWithoutResetIsNoQuota(t *testing.T) {
	b, c := budgetAt(0)
	b.step(c.t, &waiter{}, true)
	b.done(answer("0", "0"))
	for i := range 10 {
		if ok, _, _ := b.step(c.t, &waiter{}, true); !ok {
			t.Fatalf("request %d waited on a count with no reset", i)
		}
	}
	b.done(answer("0", "2"))
	if until := b.HeldUntil(); !until.Equal(c.t.Add(2 * time.Second)) {
		t.Errorf("HeldUntil %v after Remaining 0 with a reset in 2s, want %v", until, c.t.Add(2*time.Second))
	}
}

// Answers overtake each other on the way back: within one window (the
// same reset moment), a count that arrives late does not raise the quota.
func TestBudgetLateCountDoesNotRaiseQuota(t *testing.T) {
	b, c := budgetAt(0)
	reset := strconv.FormatInt(c.t.Add(time.Second).Unix(), 10) // epoch seconds
	for range 3 {
		b.step(c.t, &waiter{}, true)
		b.done(answer("", "")) // free the first-request probe
	}
	for range 3 {
		b.step(c.t, &waiter{}, true)
	}
	b.done(answer("5", reset)) // counted last, answered first: 5 - 2 in flight
	b.done(answer("7", reset)) // counted first: 7 - 1 would be 6
	if b.quota != 3 {
		t.Errorf("quota %d, want 3: the late answer raised it", b.quota)
	}
	c.t = c.t.Add(time.Second)
	b.done(answer("20", strconv.FormatInt(c.t.Add(time.Second).Unix(), 10)))
	if b.quota != 20 {
		t.Errorf("quota %d in the next window, want 20", b.quota)
	}
}

// A 429 whose Retry-After is shorter than its window's reset (Remaining 0,
// reset in an hour) is waited out by its Retry-After: then one request
// goes, not every caller at the end of the window.
func TestBudget429QuotaEndsWithRetryAfter(t *testing.T) {
	b, c := budgetAt(0)
	b.step(c.t, &waiter{}, true)
	r := answer("0", strconv.FormatInt(c.t.Add(time.Hour).Unix(), 10))
	r.StatusCode = http.StatusTooManyRequests
	r.Header.Set("Retry-After", "1")
	b.done(r)
	if ok, d, _ := b.step(c.t, &waiter{}, true); ok || d != time.Second {
		t.Fatalf("after the 429: go %v, wait %v; want a wait of 1s (its Retry-After)", ok, d)
	}
	c.t = c.t.Add(time.Second)
	if ok, _, _ := b.step(c.t, &waiter{}, true); !ok {
		t.Fatal("no request went after the Retry-After")
	}
	if ok, _, wake := b.step(c.t, &waiter{}, true); ok || wake == nil {
		t.Fatal("a second request went before the first one's answer")
	}
}

// With a rate configured the bucket paces, not the provider's count: a
// refilling bucket (the demo provider's) reports one reset for a whole
// second while it refills, so a quota read from it would stall every
// caller at each second's end.
func TestBudgetConfiguredRateIgnoresQuota(t *testing.T) {
	b, c := budgetAt(20)
	b.step(c.t, &waiter{interactive: true}, true)
	b.done(answer("2", "1"))
	for i := range 5 {
		if ok, d, _ := b.step(c.t, &waiter{interactive: true}, true); !ok {
			t.Fatalf("request %d waited %v on a count of 2, with 19 tokens in the bucket", i+1, d)
		}
	}
}
