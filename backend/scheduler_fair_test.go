package backend

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// waitFor polls cond (scheduler or backend state) until it holds; the
// deadline only turns a hang into a failure, no outcome depends on it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// parkedItems returns the scheduler's parked items of provider p, in the
// order they would run.
func (s *scheduler) parkedItems(p string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.parked[p]
	if h == nil {
		return nil
	}
	q := slices.Clone(h.queue)
	slices.SortFunc(q, func(a, b queued) int {
		if lessQueued(a, b) {
			return -1
		}
		return 1
	})
	var out []string
	for _, e := range q {
		out = append(out, e.item)
	}
	return out
}

func (s *scheduler) inflightOf(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[p]
}

// schedProviders gives a test scheduler providers by item prefix:
// "role/a…" is provider A, "role/b…" provider B, anything else none.
func schedProviders(s *scheduler, limits map[string]int) {
	s.provider = func(item string) string {
		switch {
		case strings.HasPrefix(item, "role/a"):
			return "A"
		case strings.HasPrefix(item, "role/b"):
			return "B"
		}
		return ""
	}
	s.limit = func(p string) int { return limits[p] }
}

// One provider's due jobs, every one of them blocked, take at most its
// limit of the workers: another provider's job due after all of them, and
// auto-tidy, run meanwhile. Released, each of the first provider's items
// runs exactly once, never more than its limit at once.
func TestSchedulerCapsEachProvidersJobs(t *testing.T) {
	const nA = 100
	limitA := providerJobLimit(3) // max_concurrency 3: 6 jobs
	c := newFakeClock()
	release := make(chan struct{})
	others := make(chan string, 2)
	var mu sync.Mutex
	inflightA, mostA := 0, 0
	runs := map[string]int{}
	s := newScheduler(c, func(ctx context.Context, item string) time.Time {
		mu.Lock()
		runs[item]++
		isA := strings.HasPrefix(item, "role/a")
		if isA {
			inflightA++
			mostA = max(mostA, inflightA)
		}
		mu.Unlock()
		if !isA {
			others <- item
			return time.Time{}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		inflightA--
		mu.Unlock()
		return time.Time{}
	})
	if s.workers <= limitA {
		t.Fatalf("%d workers: the test needs more than A's limit %d", s.workers, limitA)
	}
	schedProviders(s, map[string]int{"A": limitA, "B": providerJobLimit(8)})
	base := c.Now()
	for i := range nA {
		s.schedule(fmt.Sprintf("role/a%03d", i), base)
	}
	s.schedule("role/b", base.Add(time.Second))
	s.schedule("tidy/auto", base.Add(time.Second))
	c.Advance(time.Second)
	s.start()
	defer s.stop()
	got := map[string]bool{}
	for range 2 {
		select {
		case item := <-others:
			got[item] = true
		case <-time.After(20 * time.Second):
			close(release)
			t.Fatalf("only %v ran while A's jobs were blocked", got)
		}
	}
	if n := s.inflightOf("A"); n != limitA {
		t.Fatalf("%d of A's jobs running, want its limit %d", n, limitA)
	}
	waitFor(t, "A's jobs to start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inflightA == limitA
	})
	// The rest of A's items wait, still queued.
	if n := s.len(); n != nA-limitA {
		t.Fatalf("len %d, want A's %d waiting items", n, nA-limitA)
	}
	if len(s.parkedItems("A")) != nA-limitA || s.idle() {
		t.Fatalf("%d of A's items parked (want %d), idle %v", len(s.parkedItems("A")), nA-limitA, s.idle())
	}
	close(release)
	waitFor(t, "A's items to run", func() bool { return s.idle() && s.len() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if mostA > limitA {
		t.Fatalf("%d of A's jobs ran at once, limit %d", mostA, limitA)
	}
	for i := range nA {
		if item := fmt.Sprintf("role/a%03d", i); runs[item] != 1 {
			t.Fatalf("%s ran %d times", item, runs[item])
		}
	}
	if s.inflightOf("A") != 0 || len(s.parkedItems("A")) != 0 {
		t.Fatal("A's count or parked items left after its jobs")
	}
}

// A parked item is a queued item: unschedule removes it, schedule moves it
// (to the future, out of the parked ones; to an earlier due time, ahead of
// the others), len counts it, idle sees it.
func TestSchedulerParkedItemsStayQueued(t *testing.T) {
	c := newFakeClock()
	hold := make(chan struct{})
	started := make(chan struct{}, 1)
	var mu sync.Mutex
	var order []string
	s := newScheduler(c, func(ctx context.Context, item string) time.Time {
		mu.Lock()
		order = append(order, item)
		mu.Unlock()
		if item == "role/a0" {
			started <- struct{}{}
			select {
			case <-hold:
			case <-ctx.Done():
			}
		}
		return time.Time{}
	})
	schedProviders(s, map[string]int{"A": 1})
	base := c.Now()
	s.schedule("role/a0", base.Add(-time.Second))
	for _, item := range []string{"role/a1", "role/a2", "role/a3", "role/a4"} {
		s.schedule(item, base)
	}
	s.start()
	defer s.stop()
	<-started
	waitFor(t, "A's other items to park", func() bool { return len(s.parkedItems("A")) == 4 })
	if n := s.len(); n != 4 || s.idle() {
		t.Fatalf("len %d (want 4), idle %v with parked items", n, s.idle())
	}

	s.unschedule("role/a1")
	s.schedule("role/a2", base.Add(time.Hour))
	s.schedule("role/a4", base.Add(-time.Second))
	if n := s.len(); n != 3 {
		t.Fatalf("len %d after unscheduling one of 4, want 3", n)
	}
	// a4 is due, so parked again (A still has no room), now first; a2 is
	// not due.
	waitFor(t, "a4 to park again", func() bool { return slices.Equal(s.parkedItems("A"), []string{"role/a4", "role/a3"}) })

	close(hold)
	waitFor(t, "the parked items to run", func() bool { return s.idle() })
	mu.Lock()
	if want := []string{"role/a0", "role/a4", "role/a3"}; !slices.Equal(order, want) {
		t.Fatalf("ran %v, want %v", order, want)
	}
	mu.Unlock()
	if n := s.len(); n != 1 {
		t.Fatalf("len %d, want a2 still queued", n)
	}
	c.Advance(time.Hour)
	waitFor(t, "a2 at its new time", func() bool { return s.idle() && s.len() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"role/a0", "role/a4", "role/a3", "role/a2"}; !slices.Equal(order, want) {
		t.Fatalf("ran %v, want %v (a1, unscheduled while parked, never)", order, want)
	}
}

// stop returns with items parked, and keeps them queued: the next start
// runs them.
func TestSchedulerStopWithParkedItems(t *testing.T) {
	c := newFakeClock()
	started := make(chan struct{}, 1)
	var mu sync.Mutex
	ran := map[string]int{}
	s := newScheduler(c, func(ctx context.Context, item string) time.Time {
		mu.Lock()
		ran[item]++
		mu.Unlock()
		if item == "role/a0" {
			started <- struct{}{}
			<-ctx.Done() // hung until the scheduler stops
		}
		return time.Time{}
	})
	schedProviders(s, map[string]int{"A": 1})
	base := c.Now()
	s.schedule("role/a0", base.Add(-time.Second))
	s.schedule("role/a1", base)
	s.schedule("role/a2", base)
	s.start()
	<-started
	waitFor(t, "a1 and a2 to park", func() bool { return len(s.parkedItems("A")) == 2 })
	stopped := make(chan struct{})
	go func() {
		s.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("stop did not return with parked items")
	}
	if n := s.len(); n != 2 {
		t.Fatalf("len %d after stop, want the 2 parked items", n)
	}
	s.start()
	defer s.stop()
	waitFor(t, "the parked items after a restart", func() bool { return s.idle() && s.len() == 0 })
	mu.Lock()
	defer mu.Unlock()
	if ran["role/a1"] != 1 || ran["role/a2"] != 1 {
		t.Fatalf("ran %v, want a1 and a2 once", ran)
	}
}

// providerJobLimit: twice max_concurrency, half the workers when not
// known, never more than the workers.
func TestProviderJobLimit(t *testing.T) {
	for mc, want := range map[int]int{0: defaultWorkers / 2, 1: 2, 8: 16, 24: 48, 32: 48, 256: 48} {
		if got := providerJobLimit(mc); got != want {
			t.Errorf("providerJobLimit(%d) = %d, want %d", mc, got, want)
		}
	}
}

// hangingProvider creates demo provider name (max_concurrency mc) on a
// server that, once hang is called, holds every create (POST) until the
// test ends and then answers 503: a hung provider whose rotations never
// finish. Other requests (probes, lists) are answered.
func (e *env) hangingProvider(name string, mc int) (hang func()) {
	e.t.Helper()
	release := make(chan struct{})
	var on atomic.Bool
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if on.Load() && r.Method == http.MethodPost {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			http.Error(w, `{"error":{"code":"unavailable","message":"down"}}`, http.StatusServiceUnavailable)
			return
		}
		e.demo.ServeHTTP(w, r)
	}))
	e.t.Cleanup(func() {
		close(release)
		e.b.sched.stop()
		slow.Close()
	})
	e.must(logical.CreateOperation, "providers/"+name, map[string]any{"type": "demo", "base_url": slow.URL, "admin_key": e.adminKey,
		"request_timeout": "5m", "max_concurrency": mc})
	return func() { on.Store(true) }
}

// Through the real rotation job: provider a hangs every request, provider
// p answers. Many dual roles of a and one of p are due at the same instant
// (a's sort first); p's role rotates while a's are stuck, a having only
// its limit of jobs running.
func TestHungProviderDoesNotDelayAnother(t *testing.T) {
	// The default max_concurrency, and the most a provider may set: even
	// then a quarter of the workers is left to the others.
	for _, mc := range []int{defaultMaxConcurrency, 256} {
		t.Run(fmt.Sprintf("max_concurrency=%d", mc), func(t *testing.T) { testHungProviderDoesNotDelayAnother(t, mc) })
	}
}

func testHungProviderDoesNotDelayAnother(t *testing.T, mc int) {
	const nA = 100
	e := newEnv(t)
	hang := e.hangingProvider("a", mc)
	e.provider("p")
	for i := range nA {
		e.dualRole(fmt.Sprintf("a-%03d", i), map[string]any{"provider": "a", "rotation_period": "1h"})
	}
	e.dualRole("zz", map[string]any{"provider": "p", "rotation_period": "1h"})
	beforeA := map[string]string{}
	for i := range nA {
		name := fmt.Sprintf("a-%03d", i)
		beforeA[name] = e.state(name).Current.ID
	}
	before := e.state("zz").Current.ID
	hang()

	e.clock.Advance(time.Hour)
	e.b.sched.start()
	// The job stores the new key (and the inventory follows) before it
	// counts the rotation: wait for both.
	waitFor(t, "p's role to rotate", func() bool {
		v, _ := e.b.inventory.role("zz")
		return v.CurrentKeyID != before && v.LastError == "" &&
			e.metricValue(`thirdparty_rotations_total{kind="role",name="zz",result="success"}`) >= 1
	})
	st := e.state("zz")
	if st.Current.ID == before || st.Previous == nil || st.Previous.ID != before {
		t.Fatalf("zz: current %v previous %v, want a new current key and %s previous", st.Current, st.Previous, before)
	}
	if v, _ := e.b.inventory.role("zz"); v.CurrentKeyID != st.Current.ID || v.PreviousKeyID != before {
		t.Fatalf("inventory shows current %s previous %s, storage %s and %s", v.CurrentKeyID, v.PreviousKeyID, st.Current.ID, before)
	}
	if n := e.metricValue(`thirdparty_rotations_total{kind="role",name="zz",result="success"}`); n != 1 {
		t.Fatalf("zz: %v successful rotations in metrics, want 1", n)
	}
	limit := providerJobLimit(mc)
	if n := e.b.sched.inflightOf("a"); n != limit {
		t.Fatalf("%d of a's jobs running, want its limit %d", n, limit)
	}
	if n := len(e.b.sched.parkedItems("a")); n != nA-limit {
		t.Fatalf("%d of a's items parked, want %d", n, nA-limit)
	}
	for name, id := range beforeA {
		if got := e.state(name).Current.ID; got != id {
			t.Fatalf("role %s rotated (%s to %s) against a hung provider", name, id, got)
		}
	}
}

// A provider's limit is read at each dispatch: raised while its items are
// parked, the next pass of the loop runs as many more as it allows,
// without waiting for one of its jobs to finish.
func TestSchedulerLimitChangeTakesEffect(t *testing.T) {
	c := newFakeClock()
	hold := make(chan struct{})
	var limitMu sync.Mutex
	limit := 1
	s := newScheduler(c, func(ctx context.Context, item string) time.Time {
		select {
		case <-hold:
		case <-ctx.Done():
		}
		return time.Time{}
	})
	s.provider = func(string) string { return "A" }
	s.limit = func(string) int {
		limitMu.Lock()
		defer limitMu.Unlock()
		return limit
	}
	for i := range 4 {
		s.schedule(fmt.Sprintf("role/a%d", i), c.Now())
	}
	s.start()
	defer s.stop()
	defer close(hold)
	waitFor(t, "three items to park", func() bool { return len(s.parkedItems("A")) == 3 })
	limitMu.Lock()
	limit = 3
	limitMu.Unlock()
	s.poke() // the next pass of the loop (any wake-up)
	waitFor(t, "the raised limit", func() bool { return s.inflightOf("A") == 3 && len(s.parkedItems("A")) == 1 })
}

// The backend's wiring: a role's item belongs to its provider, a root's to
// itself, auto-tidy to none; the limit follows max_concurrency as written.
func TestSchedulerItemProviderAndLimit(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", nil)
	for item, want := range map[string]string{"role/r": "p", "root/p": "p", "tidy/auto": "", "role/unknown": ""} {
		if got := e.b.itemProvider(item); got != want {
			t.Errorf("itemProvider(%s) = %q, want %q", item, got, want)
		}
	}
	if got, want := e.b.jobLimit("p"), providerJobLimit(defaultMaxConcurrency); got != want {
		t.Fatalf("limit %d, want %d", got, want)
	}
	e.must(logical.UpdateOperation, "providers/p", map[string]any{"max_concurrency": 3})
	if got := e.b.jobLimit("p"); got != 6 {
		t.Fatalf("limit %d after max_concurrency=3, want 6", got)
	}
	if got := e.b.jobLimit("nonexistent"); got != defaultWorkers/2 {
		t.Fatalf("limit %d for an unknown provider, want %d", got, defaultWorkers/2)
	}
}

// Raising a provider's max_concurrency raises its cap on scheduled jobs at
// once: its parked jobs start without waiting for a running one to end
// (here they never would: the provider hangs on every create).
func TestRaisingMaxConcurrencyStartsParkedJobs(t *testing.T) {
	const n = 5
	e := newEnv(t)
	hang := e.hangingProvider("a", 1)
	for i := range n {
		e.dualRole(fmt.Sprintf("a-%d", i), map[string]any{"provider": "a", "rotation_period": "1h"})
	}
	hang()

	e.clock.Advance(time.Hour)
	e.b.sched.start()
	low := providerJobLimit(1)
	waitFor(t, "a's jobs to fill its cap", func() bool {
		return e.b.sched.inflightOf("a") == low && len(e.b.sched.parkedItems("a")) == n-low
	})
	e.must(logical.UpdateOperation, "providers/a", map[string]any{"max_concurrency": 3})
	waitFor(t, "a's parked jobs to start under the raised cap", func() bool {
		return e.b.sched.inflightOf("a") == n && len(e.b.sched.parkedItems("a")) == 0
	})
}
