package httpx

import (
	"testing"
	"time"
)

// A RetryWaitMax set below the default minimum caps every wait: New lowers
// the minimum to it, for each of its clients, so no drawn wait exceeds it
// whatever the jitter. (Checked on the clients' settings, not on the clock:
// a wall-time bound fails on a busy machine.)
func TestRetryWaitMinAboveMax(t *testing.T) {
	const max = 20 * time.Millisecond
	c, err := New(Options{Provider: "acme-prod", MaxRetries: 6, RetryWaitMax: max})
	if err != nil {
		t.Fatal(err)
	}
	if DefaultRetryWaitMin <= max {
		t.Fatalf("the test needs a default minimum (%v) above %v", DefaultRetryWaitMin, max)
	}
	for name, rc := range map[string]struct{ min, max time.Duration }{
		"retrying": {c.rc.RetryWaitMin, c.rc.RetryWaitMax},
		"create":   {c.rcCreate.RetryWaitMin, c.rcCreate.RetryWaitMax},
	} {
		if rc.min != max || rc.max != max {
			t.Errorf("%s client waits between %v and %v, want both %v", name, rc.min, rc.max, max)
		}
		for attempt := range 7 {
			for range 200 {
				if d := Backoff(rc.min, rc.max, attempt, nil); d > max {
					t.Fatalf("%s client: attempt %d waits %v, above RetryWaitMax %v", name, attempt, d, max)
				}
			}
		}
	}
}
