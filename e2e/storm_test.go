//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// The rotation storm against a rate-limited provider (issue 11): n dual
// roles on one demo provider limited to stormRPS, all made due at the same
// minute by a rotation_schedule, rotated by the scheduler. The default
// suite runs stormDefaultRoles; E2E_STORM_ROLES=1000 runs the full-size
// cell (about 2 minutes of storm at 20 rps).
const (
	stormRPS          = 20
	stormDefaultRoles = 100
	// stormReadEvery spaces the interactive creds reads: one a second, the
	// 5 % of the rate that scheduled work leaves free.
	stormReadEvery = time.Second
)

func stormRoles(t *testing.T) int {
	if v := os.Getenv("E2E_STORM_ROLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("E2E_STORM_ROLES=%q: want a positive number", v)
		}
		return n
	}
	return stormDefaultRoles
}

// demoStats is the demo provider's /_demo/stats.
type demoStats struct {
	RateLimited int            `json:"rate_limited"`
	Requests    map[string]int `json:"requests"`
}

func (s demoStats) total() int {
	n := 0
	for _, v := range s.Requests {
		n += v
	}
	return n
}

func (d *demoProvider) stats(t testing.TB) demoStats {
	var st demoStats
	d.getJSON(t, "/_demo/stats", &st)
	return st
}

// storm is one rotation storm's set-up and figures.
type storm struct {
	t      *testing.T
	c      *api.Client
	d      *demoProvider
	mount  string
	roles  int
	due    time.Time // the scheduled minute
	before demoStats // taken just before due
}

// newStorm starts a demo provider, mounts the engine with provider p
// (max_requests_per_second maxRPS, 0 = unset) and creates n dual roles
// rotating daily at a minute far enough ahead to finish the set-up (and
// lead more, for measuring idle reads). limitFirst turns the demo's
// rate limit on before the roles are created, else after.
func newStorm(t *testing.T, n int, maxRPS float64, limitFirst bool, lead time.Duration) *storm {
	c := sharedVlt.client
	d, err := startDemo(uniq("storm"))
	if err != nil {
		t.Fatal(err)
	}
	issued.add(d.AdminKey)
	s := &storm{t: t, c: c, d: d, mount: uniq("storm"), roles: n}
	if err := sharedVlt.mount(s.mount); err != nil {
		t.Fatal(err)
	}
	if limitFirst {
		d.setKnobs(t, map[string]any{"rate_limit_rps": stormRPS})
	}
	p := map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey}
	if maxRPS > 0 {
		p["max_requests_per_second"] = maxRPS
	}
	write(t, c, s.mount+"/providers/p", p)
	start := time.Now()
	s.eachRole(func(name string) error {
		_, err := c.Logical().Write(s.mount+"/roles/"+name, map[string]any{"provider": "p", "mode": "dual",
			"rotation_period": "24h", "overlap": "1h"})
		return err
	})
	made := time.Since(start)
	// One whole minute, daily, far enough ahead for the schedule writes.
	s.due = time.Now().UTC().Add(lead + made/2 + 10*time.Second).Truncate(time.Minute).Add(time.Minute)
	sched := fmt.Sprintf("%d %d * * *", s.due.Minute(), s.due.Hour())
	s.eachRole(func(name string) error {
		_, err := c.Logical().Write(s.mount+"/roles/"+name, map[string]any{"rotation_schedule": sched})
		return err
	})
	if got := ptS(read(t, c, s.mount+"/roles/"+stormRole(n-1)).Data["next_rotation"]); got != s.due.Format(time.RFC3339) {
		t.Fatalf("next_rotation %s, want %s", got, s.due.Format(time.RFC3339))
	}
	if time.Until(s.due) < 3*time.Second {
		t.Fatalf("set-up took too long: the scheduled minute %s is %v away", s.due, time.Until(s.due))
	}
	if !limitFirst {
		d.setKnobs(t, map[string]any{"rate_limit_rps": stormRPS})
	}
	t.Logf("%d dual roles made in %v; all due at %s", n, made.Round(time.Millisecond), s.due.Format(time.TimeOnly))
	return s
}

func stormRole(i int) string { return fmt.Sprintf("r%05d", i) }

// eachRole runs f for every role name from 8 writers.
func (s *storm) eachRole(f func(name string) error) {
	s.t.Helper()
	names := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				if err := f(name); err != nil {
					mu.Lock()
					first = cmpOr(first, fmt.Errorf("%s: %w", name, err))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range s.roles {
		names <- stormRole(i)
	}
	close(names)
	wg.Wait()
	if first != nil {
		s.t.Fatal(first)
	}
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// snapshot takes the demo's stats just before the scheduled minute.
func (s *storm) snapshot() {
	time.Sleep(time.Until(s.due.Add(-time.Second)))
	s.before = s.d.stats(s.t)
}

// rotated reports whether every role's rotation at the scheduled minute is
// done, judged from the provider's count of creates and verifies (two
// per rotation) beyond extra requests of other callers.
func (s *storm) rotated(extra int) bool {
	st := s.d.stats(s.t)
	return st.total()-s.before.total()-extra >= 2*s.roles
}

// finish waits for every rotation (at most timeout) and returns when the
// provider had seen them all, polled every 50 ms; then it checks that each
// role was rotated since the scheduled minute.
func (s *storm) finish(timeout time.Duration, extra func() int) time.Time {
	deadline := time.Now().Add(timeout)
	for !s.rotated(extra()) {
		if time.Now().After(deadline) {
			s.t.Fatalf("the rotations were not done %v after the scheduled minute", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	done := time.Now()
	s.eachRole(func(name string) error {
		for {
			r, err := s.c.Logical().Read(s.mount + "/roles/" + name)
			if err != nil {
				return err
			}
			// Whole seconds; the scheduled minute is one.
			promoted, err := time.Parse(time.RFC3339, ptS(r.Data["current_key_created"]))
			switch {
			case err != nil:
				return err
			case !promoted.Before(s.due):
				return nil
			case time.Now().After(deadline):
				return fmt.Errorf("not rotated since %s (current key promoted %s)", s.due, promoted)
			}
			time.Sleep(100 * time.Millisecond) // its verify was counted, its promotion not yet stored
		}
	})
	return done
}

// reader reads dynamic creds every stormReadEvery, recording each read's
// latency and start.
type reader struct {
	mu    sync.Mutex
	start []time.Time
	took  []time.Duration
	stop  chan struct{}
	done  chan struct{}
}

func (s *storm) startReader(role string) *reader {
	r := &reader{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(stormReadEvery)
		defer tick.Stop()
		for {
			begin := time.Now()
			sec, err := s.c.Logical().Read(s.mount + "/creds/" + role)
			took := time.Since(begin)
			if err != nil || sec == nil {
				s.t.Errorf("creds read at %s: %v", begin.Format(time.TimeOnly), err)
			} else {
				issued.add(ptS(sec.Data["api_key"]))
			}
			r.mu.Lock()
			r.start, r.took = append(r.start, begin), append(r.took, took)
			r.mu.Unlock()
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return r
}

func (r *reader) end() {
	close(r.stop)
	<-r.done
}

func (r *reader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.took)
}

// between returns the latencies of the reads started in [from, to).
func (r *reader) between(from, to time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for i, at := range r.start {
		if !at.Before(from) && at.Before(to) {
			out = append(out, r.took[i])
		}
	}
	return out
}

// p99 is the nearest-rank 99th percentile.
func p99(d []time.Duration) time.Duration { return pct(d, 0.99) }

// pct is the nearest-rank p-quantile (0 < p <= 1), rounded to 0.1 ms.
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[max(0, int(math.Ceil(p*float64(len(s))))-1)].Round(100 * time.Microsecond)
}

// Acceptance lines 1 and 3 of issue 11: with max_requests_per_second at
// the provider's limit, every rotation of the storm gets through with no
// 429, within 1.15x the floor the limit sets (the provider requests the
// rotations took / 20 rps), and interactive creds reads during the storm
// keep their p99 within 2x the idle p99 measured just before it.
func TestRotationStormWithinProviderLimit(t *testing.T) {
	n := stormRoles(t)
	s := newStorm(t, n, stormRPS, false, 30*time.Second)
	write(t, s.c, s.mount+"/roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "10m"})

	// Idle: reads until just before the storm; the stats tell what one
	// read asks of the provider.
	idleFrom := s.d.stats(t)
	rd := s.startReader("dyn")
	s.snapshot()
	idleReads := rd.count()
	perRead := float64(s.before.total()-idleFrom.total()) / float64(idleReads)
	readsAtDue := rd.count()
	extra := func() int { return int(math.Round(float64(rd.count()-readsAtDue) * perRead)) }

	last := s.finish(time.Duration(float64(4*n)/stormRPS*float64(time.Second))+time.Minute, extra)
	rd.end()
	after := s.d.stats(t)

	idle := rd.between(time.Time{}, s.due.Add(-time.Second))
	during := rd.between(s.due, last)
	readsInStorm := rd.count() - readsAtDue
	total := after.total() - s.before.total()
	rotationReqs := total - int(math.Round(float64(readsInStorm)*perRead))
	floor := time.Duration(float64(rotationReqs) / stormRPS * float64(time.Second))
	took := last.Sub(s.due)
	refused := after.RateLimited - s.before.RateLimited
	t.Logf("storm of %d roles: %d provider requests for the rotations (%d in all with %d creds reads at %.1f each), %d x 429; "+
		"done in %v, floor %v: %.3fx; creds p99 idle %v over %d reads, during the storm %v over %d reads: %.2fx",
		n, rotationReqs, total, readsInStorm, perRead, refused, took.Round(time.Millisecond), floor.Round(time.Millisecond),
		took.Seconds()/floor.Seconds(), p99(idle).Round(time.Microsecond), len(idle), p99(during).Round(time.Microsecond),
		len(during), p99(during).Seconds()/p99(idle).Seconds())

	t.Logf("creds read latencies: idle p50 %v p90 %v; during the storm p50 %v p90 %v, the slowest %v",
		pct(idle, 0.5), pct(idle, 0.9), pct(during, 0.5), pct(during, 0.9), pct(during, 1))
	if refused != 0 {
		t.Errorf("the demo provider sent %d 429s during the storm, want 0", refused)
	}
	if rotationReqs < 2*n {
		t.Errorf("%d provider requests for %d rotations, want at least 2 each", rotationReqs, n)
	}
	if len(idle) < 10 || len(during) < 5 {
		t.Fatalf("too few reads to compare: %d idle, %d during the storm", len(idle), len(during))
	}
	// Speed is reported, never asserted (a loaded machine is not a broken
	// engine): the targets are 1.15x the floor and 2x the idle p99.
	t.Logf("figures: storm %.3fx its floor (target <= 1.15x); creds p99 during the storm %.2fx the idle p99 (target <= 2x)",
		took.Seconds()/floor.Seconds(), p99(during).Seconds()/p99(idle).Seconds())
}

// Acceptance line 2 of issue 11: max_requests_per_second left unset, the
// provider's rate-limit headers present (the demo's limit on throughout):
// the budget paces the storm by the count the provider sends and receives
// at most a handful of 429s (stormMax429).
func TestRotationStormFollowsProviderHeaders(t *testing.T) {
	const stormMax429 = 5
	n := stormRoles(t)
	s := newStorm(t, n, 0, true, 0)
	s.snapshot()
	last := s.finish(time.Duration(float64(8*n)/stormRPS*float64(time.Second))+time.Minute, func() int { return 0 })
	after := s.d.stats(t)
	refused := after.RateLimited - s.before.RateLimited
	total := after.total() - s.before.total()
	took := last.Sub(s.due)
	floor := time.Duration(float64(total-refused) / stormRPS * float64(time.Second))
	t.Logf("storm of %d roles, no max_requests_per_second: %d provider requests, %d x 429; done in %v, floor %v: %.3fx",
		n, total, refused, took.Round(time.Millisecond), floor.Round(time.Millisecond), took.Seconds()/floor.Seconds())
	if refused > stormMax429 {
		t.Errorf("the demo provider sent %d 429s during the storm, want at most %d", refused, stormMax429)
	}
}
