package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// lease is what a reader holds: a key and when its lease ends.
type lease struct {
	keyID  string
	secret *logical.Secret
	end    time.Time
}

func (e *env) readCreds(role string) lease {
	e.t.Helper()
	resp := e.must(logical.ReadOperation, "creds/"+role, nil)
	if resp.Secret == nil || resp.Secret.TTL <= 0 {
		e.t.Fatalf("creds/%s: no lease: %+v", role, resp)
	}
	resp.Secret.IssueTime = e.clock.Now()
	resp.Secret.LeaseID = fmt.Sprintf("creds/%s/%d", role, time.Now().UnixNano())
	return lease{keyID: resp.Data["key_id"].(string), secret: resp.Secret, end: e.clock.Now().Add(resp.Secret.TTL)}
}

// renew renews a lease as Vault would, enforcing the returned max TTL.
func (e *env) renew(l *lease) error {
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RenewOperation, Path: "creds/x", Storage: e.storage, Secret: l.secret,
	})
	if err != nil {
		return err
	}
	if resp.IsError() {
		return resp.Error()
	}
	end := e.clock.Now().Add(resp.Secret.TTL)
	if max := l.secret.IssueTime.Add(resp.Secret.MaxTTL); resp.Secret.MaxTTL > 0 && end.After(max) {
		end = max
	}
	l.end = end
	return nil
}

// Invariants 1, 2 and 6 under the scheduler: a dual role rotating every
// 10s with 5s overlap and 3s leases, read and renewed every second for
// 2 minutes. Every lease's key is live until the lease ends, no key is
// revoked before its retire time, and the role never has more than two
// live keys.
func TestDualRoleReadersNeverHoldARevokedKey(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", nil)
	e.b.sched.start()

	var leases []*lease
	retire := map[string]time.Time{}
	rotations := map[string]bool{}
	for step := 0; step < 120; step++ {
		e.clock.Advance(time.Second)
		e.settle()
		now := e.clock.Now()

		st := e.state("r")
		rotations[st.Current.ID] = true
		if st.Previous != nil {
			retire[st.Previous.ID] = st.Previous.RetireAt
		}
		if live := len(e.keys(demoserver.StateLive)); live > 2 {
			t.Fatalf("t+%ds: %d live keys, want at most 2 (invariant 1)", step, live)
		}
		for _, l := range leases {
			if l.end.After(now) && e.keyState(l.keyID) != demoserver.StateLive {
				t.Fatalf("t+%ds: a lease ending %s holds key %s, which is %s (invariant 2)", step, l.end, l.keyID, e.keyState(l.keyID))
			}
		}
		for _, k := range e.keys(demoserver.StateRevoked) {
			if ra, ok := retire[k.ID]; !ok || k.RevokedAt.Before(ra) {
				t.Fatalf("key %s revoked at %s, before its retire time %s", k.ID, k.RevokedAt, ra)
			} else if k.RevokedAt.After(ra.Add(10 * time.Second)) {
				t.Fatalf("key %s revoked at %s, more than 10s after its retire time %s", k.ID, k.RevokedAt, ra)
			}
		}

		l := e.readCreds("r")
		leases = append(leases, &l)
		for _, old := range leases[max(0, len(leases)-3):] {
			if old.end.After(now) {
				_ = e.renew(old) // a refusal is fine; a lease past its key is not
			}
		}
	}
	if len(rotations) < 10 {
		t.Fatalf("%d keys were current over 120s at a 10s period, want at least 10", len(rotations))
	}
	if n := len(e.keys(demoserver.StateRevoked)); n < 9 {
		t.Fatalf("%d keys revoked, want at least 9", n)
	}
}

// Invariant 2 for leases: a lease of the current key ends no later than
// max(next rotation, now) + overlap, and a lease of the previous key no
// later than its retire time; renewals keep to the same caps.
func TestDualLeaseIsCappedByTheKey(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"ttl": "1h", "rotation_period": "60s", "overlap": "20s"})

	e.clock.Advance(15 * time.Second)
	l := e.readCreds("r")
	st := e.state("r")
	if want := st.NextRotation.Add(20 * time.Second); !l.end.Equal(want) {
		t.Fatalf("lease ends %s, want next rotation + overlap = %s", l.end, want)
	}
	e.must(logical.UpdateOperation, "rotate-role/r", nil)
	st = e.state("r")
	if st.Previous == nil || st.Previous.ID != l.keyID {
		t.Fatal("the rotated key is not previous")
	}
	if st.Previous.RetireAt.Before(l.end) {
		t.Fatalf("previous key retires %s, before a lease of it ends %s", st.Previous.RetireAt, l.end)
	}
	e.clock.Advance(10 * time.Second)
	if err := e.renew(&l); err != nil {
		t.Fatalf("renewing a lease of the previous key inside its overlap: %v", err)
	}
	if l.end.After(st.Previous.RetireAt) {
		t.Fatalf("renewed lease ends %s, after the key retires %s", l.end, st.Previous.RetireAt)
	}
	e.clock.Advance(st.Previous.RetireAt.Sub(e.clock.Now()) + 2*time.Second)
	if err := e.renew(&l); err == nil {
		t.Fatal("renewing a lease of a retired key succeeded")
	}
	// Overdue rotation (the provider is down): leases still end within
	// now + overlap, and the retire time of that key stays after them.
	e.failCreate.Store(true)
	e.clock.Advance(2 * time.Minute)
	e.b.roleJob(context.Background(), "r")
	l2 := e.readCreds("r")
	if want := e.clock.Now().Add(20 * time.Second); l2.end.After(want) {
		t.Fatalf("lease of an overdue key ends %s, after now + overlap %s", l2.end, want)
	}
	e.failCreate.Store(false)
	e.clock.Advance(time.Second)
	e.must(logical.UpdateOperation, "rotate-role/r", nil)
	if ra := e.state("r").Previous.RetireAt; ra.Before(l2.end) {
		t.Fatalf("key retires %s, before a lease of it ends %s", ra, l2.end)
	}
}

// Invariant 3: a new key that fails verification is revoked and the old
// key stays current; the failure is recorded with a retry, not a revoke.
func TestRotationVerifiesBeforePromoting(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", nil)
	before := e.state("r").Current.ID

	e.rejectVerify.Store(true)
	resp, err := e.do(logical.UpdateOperation, "rotate-role/r", nil)
	if err == nil && (resp == nil || !resp.IsError()) {
		t.Fatal("rotation with a key that fails verification succeeded")
	}
	st := e.state("r")
	if st.Current.ID != before || st.Previous != nil {
		t.Fatalf("current changed to %s (previous %v) after a failed verification", st.Current.ID, st.Previous)
	}
	if e.keyState(before) != demoserver.StateLive {
		t.Fatal("the old key was revoked")
	}
	live := e.keys(demoserver.StateLive)
	if len(live) != 1 || live[0].ID != before {
		t.Fatalf("live keys after a failed verification: %v, want only %s", live, before)
	}
	if e.walCount() != 0 {
		t.Fatalf("%d WAL entries left after the unverified key was revoked", e.walCount())
	}

	// Scheduled: the failure is recorded with a backoff retry.
	e.clock.Advance(11 * time.Second)
	e.b.roleJob(context.Background(), "r")
	st = e.state("r")
	if st.Current.ID != before || st.LastError == "" || !st.NextRetry.After(e.clock.Now()) {
		t.Fatalf("after a failed scheduled rotation: current %s, last error %q, next retry %s", st.Current.ID, st.LastError, st.NextRetry)
	}
	e.rejectVerify.Store(false)
	e.clock.Advance(st.NextRetry.Sub(e.clock.Now()))
	e.b.roleJob(context.Background(), "r")
	if st = e.state("r"); st.Current.ID == before || st.LastError != "" {
		t.Fatalf("rotation did not resume after recovery: current %s, last error %q", st.Current.ID, st.LastError)
	}
}

// Provider outage across several scheduled rotations: nothing is revoked
// early, the error and next retry are visible, backoff grows, and rotation
// resumes by itself.
func TestOutageLosesNothingAndBacksOff(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "10s", "overlap": "5s"})
	e.b.sched.start()
	cur := e.state("r").Current.ID

	e.failCreate.Store(true)
	var retries []time.Time
	for i := 0; i < 40; i++ {
		e.clock.Advance(time.Second)
		e.settle()
		st := e.state("r")
		if st.Current.ID != cur || e.keyState(cur) != demoserver.StateLive {
			t.Fatalf("t+%ds: the current key changed or died during the outage", i)
		}
		if n := len(retries); st.NextRetry.After(e.clock.Now()) && (n == 0 || !retries[n-1].Equal(st.NextRetry)) {
			retries = append(retries, st.NextRetry)
		}
	}
	st := e.state("r")
	if st.LastError == "" || !strings.Contains(st.LastError, "503") {
		t.Fatalf("last error %q does not show the provider's 503", st.LastError)
	}
	if len(retries) < 3 {
		t.Fatalf("only %d retries over 40s of outage", len(retries))
	}
	status := e.must(logical.ReadOperation, "status", nil).Data["roles"].(map[string]any)["r"].(map[string]any)
	if status["last_error"] == "" || status["next_retry"] == "" {
		t.Fatalf("status does not show the failure: %v", status)
	}
	metrics := string(e.must(logical.ReadOperation, "metrics", nil).Data[logical.HTTPRawBody].([]byte))
	if !strings.Contains(metrics, `thirdparty_rotations_total{kind="role",name="r",result="failure"}`) {
		t.Fatalf("metrics do not count the failures:\n%s", metrics)
	}

	e.failCreate.Store(false)
	for i := 0; i < 40 && e.state("r").Current.ID == cur; i++ {
		e.clock.Advance(time.Second)
		e.settle()
	}
	if st := e.state("r"); st.Current.ID == cur || st.LastError != "" {
		t.Fatalf("rotation did not resume after the outage: %+v", st)
	}
}

func TestRetryDelayGrowsWithJitterAndHonoursRetryAfter(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 6; n++ {
		d := retryDelay(n, time.Hour, fmt.Errorf("x"))
		lo, hi := (backoffBase<<(n-1))/2, backoffBase<<(n-1)
		if d < lo || d > hi {
			t.Fatalf("retry %d: %s outside [%s, %s]", n, d, lo, hi)
		}
		if n > 2 && d < prev/2 {
			t.Fatalf("retry %d: %s does not grow from %s", n, d, prev)
		}
		prev = d
	}
	if d := retryDelay(30, 10*time.Second, fmt.Errorf("x")); d > 10*time.Second {
		t.Fatalf("retry delay %s exceeds the rotation interval", d)
	}
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		seen[retryDelay(5, time.Hour, fmt.Errorf("x"))] = true
	}
	if len(seen) < 5 {
		t.Fatal("retry delays have no jitter")
	}
}

// Manual rotation: refused while a previous key is still in its overlap
// (a third live key), and revoke_previous=true revokes at once.
func TestRotateRoleManual(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	first := e.state("r").Current.ID

	resp := e.must(logical.UpdateOperation, "rotate-role/r", nil)
	second := resp.Data["key_id"].(string)
	if second == first || resp.Data["previous_key_id"] != first || resp.Data["previous_key_retires"] == "" {
		t.Fatalf("rotate-role response: %v", resp.Data)
	}
	for k, v := range resp.Data {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "demo_") {
			t.Fatalf("rotate-role returned a secret in %s", k)
		}
	}
	if next := e.state("r").NextRotation; !next.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("manual rotation did not reset the schedule from now: next %s", next)
	}
	r, err := e.do(logical.UpdateOperation, "rotate-role/r", nil)
	e.userError(r, err, "revoke_previous")
	if n := len(e.keys(demoserver.StateLive)); n != 2 {
		t.Fatalf("%d live keys after a refused rotation, want 2", n)
	}

	resp = e.must(logical.UpdateOperation, "rotate-role/r", map[string]any{"revoke_previous": true})
	third := resp.Data["key_id"].(string)
	if e.keyState(first) != demoserver.StateRevoked || e.keyState(second) != demoserver.StateRevoked {
		t.Fatal("revoke_previous=true left an old key live")
	}
	if live := e.keys(demoserver.StateLive); len(live) != 1 || live[0].ID != third {
		t.Fatalf("live keys after the leak response: %v, want only %s", live, third)
	}
	if st := e.state("r"); st.Previous != nil {
		t.Fatal("a revoked key is still recorded as previous")
	}
}

// Invariant 5: concurrent rotations of one role never run at once and never
// leave more than two live keys.
func TestConcurrentRotationsAreSerialised(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	done := make(chan error)
	for i := 0; i < 8; i++ {
		go func() {
			_, err := e.do(logical.UpdateOperation, "rotate-role/r", map[string]any{"revoke_previous": true})
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	st := e.state("r")
	live := e.keys(demoserver.StateLive)
	if len(live) != 1 || live[0].ID != st.Current.ID {
		t.Fatalf("after 8 concurrent leak rotations: live %v, current %s", live, st.Current.ID)
	}
	if n := len(e.keys("")); n != 9 {
		t.Fatalf("%d keys created, want 9 (1 + 8 rotations)", n)
	}
}

// Invariant 5: where the node cannot write (a performance standby), the
// scheduler does not start and nothing calls the provider.
func TestSchedulerRunsOnlyWhereWritesAreSafe(t *testing.T) {
	for _, tc := range []struct {
		state consts.ReplicationState
		runs  bool
	}{
		{0, true},
		{consts.ReplicationPerformanceStandby, false},
		{consts.ReplicationPerformanceSecondary, false},
		{consts.ReplicationDRSecondary, false},
	} {
		t.Run(fmt.Sprint(tc.state), func(t *testing.T) {
			e := newEnv(t)
			e.provider("p")
			e.dualRole("r", nil)
			created := len(e.keys(""))
			e.sys.ReplicationStateVal = tc.state
			if err := e.b.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
				t.Fatal(err)
			}
			if e.b.sched.isRunning() != tc.runs {
				t.Fatalf("scheduler running = %v, want %v", e.b.sched.isRunning(), tc.runs)
			}
			e.clock.Advance(time.Minute)
			e.settle()
			if got := len(e.keys("")) > created; got != tc.runs {
				t.Fatalf("provider saw a create: %v, want %v", got, tc.runs)
			}
		})
	}
}

// A rotation missed while Vault was down runs at start.
func TestMissedRotationRunsAtStart(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	before := e.state("r").Current.ID
	e.clock.Advance(5 * time.Hour) // Vault was down

	e.restart()
	e.settle()
	st := e.state("r")
	if st.Current.ID == before {
		t.Fatal("the missed rotation did not run at start")
	}
	if !st.NextRotation.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("next rotation %s, want an hour after the catch-up", st.NextRotation)
	}
}

// The scheduler pops work in due order, never runs one item twice at once,
// and costs nothing between due times.
func TestSchedulerOrderAndIdle(t *testing.T) {
	c := newFakeClock()
	ran := make(chan string, 100)
	s := newScheduler(c, func(_ context.Context, item string) time.Time {
		ran <- item
		return time.Time{}
	})
	s.workers = 1
	base := c.Now()
	s.schedule("c", base.Add(3*time.Second))
	s.schedule("a", base.Add(1*time.Second))
	s.schedule("b", base.Add(2*time.Second))
	s.schedule("gone", base.Add(2*time.Second))
	s.unschedule("gone")
	s.start()
	defer s.stop()
	for _, want := range []string{"a", "b", "c"} {
		c.Advance(time.Second)
		if got := <-ran; got != want {
			t.Fatalf("ran %s, want %s", got, want)
		}
	}
	c.Advance(time.Hour)
	select {
	case got := <-ran:
		t.Fatalf("ran %s with nothing scheduled", got)
	case <-time.After(50 * time.Millisecond):
	}
}

// A manual rotation after a long period retires the old key no later than
// the longest lease Vault allows (the role's max_ttl), not a full period on.
func TestPreviousKeyRetiresWithinMaxLease(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "720h", "overlap": "10m", "ttl": "5m", "max_ttl": "1h"})
	l := e.readCreds("r")
	e.must(logical.UpdateOperation, "rotate-role/r", nil)
	st := e.state("r")
	if want := e.clock.Now().Add(time.Hour); !st.Previous.RetireAt.Equal(want) {
		t.Fatalf("previous key retires %s, want promotion + max_ttl %s", st.Previous.RetireAt, want)
	}
	if st.Previous.RetireAt.Before(l.end) {
		t.Fatalf("retire %s before a lease of the key ends %s", st.Previous.RetireAt, l.end)
	}
	metrics := string(e.must(logical.ReadOperation, "metrics", nil).Data[logical.HTTPRawBody].([]byte))
	prefix := `thirdparty_previous_key_retire_timestamp_seconds{role="r"} `
	found := false
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			found = err == nil && int64(f) == st.Previous.RetireAt.Unix()
		}
	}
	if !found {
		t.Fatalf("metrics lack the previous key's retire time %d:\n%s", st.Previous.RetireAt.Unix(), metrics)
	}
}

// A failed manual rotation shows in status and on the role (and the
// provider, for a root) like a scheduled one, without moving the schedule;
// the next success clears it.
func TestManualRotationFailureShowsInStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	next := e.state("r").NextRotation

	e.failCreate.Store(true)
	if _, err := e.do(logical.UpdateOperation, "rotate-role/r", nil); err == nil {
		t.Fatal("rotate-role succeeded while the provider refuses creates")
	}
	if _, err := e.do(logical.UpdateOperation, "rotate-root/p", nil); err == nil {
		t.Fatal("rotate-root succeeded while the provider refuses creates")
	}
	e.failCreate.Store(false)

	role := e.must(logical.ReadOperation, "roles/r", nil).Data
	if msg, _ := role["last_rotation_error"].(string); !strings.Contains(msg, "manual rotation") || !strings.Contains(msg, "503") {
		t.Fatalf("role last_rotation_error = %q, want the manual rotation's 503", msg)
	}
	if st := e.state("r"); !st.NextRotation.Equal(next) || !st.NextRetry.IsZero() || st.Failures != 0 {
		t.Fatalf("a failed manual rotation moved the schedule: next %s (was %s), retry %s, failures %d", st.NextRotation, next, st.NextRetry, st.Failures)
	}
	prov := e.must(logical.ReadOperation, "providers/p", nil).Data
	if msg, _ := prov["last_root_rotation_error"].(string); !strings.Contains(msg, "manual rotation") {
		t.Fatalf("provider last_root_rotation_error = %q, want the manual rotation's failure", msg)
	}
	status := e.must(logical.ReadOperation, "status", nil).Data
	roles := status["roles"].(map[string]any)
	if msg, _ := roles["r"].(map[string]any)["last_error"].(string); !strings.Contains(msg, "manual rotation") {
		t.Fatalf("status role last_error = %q", msg)
	}
	if v := e.metricValue(`thirdparty_rotation_failing{kind="role",name="r"}`); v != 1 {
		t.Fatalf("rotation_failing for the role = %v, want 1", v)
	}

	e.must(logical.UpdateOperation, "rotate-role/r", map[string]any{"revoke_previous": true})
	e.must(logical.UpdateOperation, "rotate-root/p", nil)
	if msg := e.must(logical.ReadOperation, "roles/r", nil).Data["last_rotation_error"]; msg != "" {
		t.Fatalf("last_rotation_error after a successful rotation: %v", msg)
	}
	if msg := e.must(logical.ReadOperation, "providers/p", nil).Data["last_root_rotation_error"]; msg != "" {
		t.Fatalf("last_root_rotation_error after a successful rotation: %v", msg)
	}
}

// Invariant 6 for dynamic leases: a lease never outlives its key's
// provider-side expiry, not after max_ttl is raised, and not when the
// provider sets an earlier expiry than asked.
func TestDynamicLeaseNeverOutlivesItsKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h", "max_ttl": "2h"})
	l := e.readCreds("dyn")
	var expires time.Time
	for _, k := range e.keys(demoserver.StateLive) {
		if k.ID == l.keyID {
			expires = k.ExpiresAt
		}
	}
	if expires.Before(l.secret.IssueTime.Add(2 * time.Hour)) {
		t.Fatalf("key expires %s, before the lease's max TTL (2h from %s)", expires, l.secret.IssueTime)
	}

	// Raising max_ttl later must not stretch leases already issued past
	// their key's expiry.
	e.must(logical.UpdateOperation, "roles/dyn", map[string]any{"ttl": "5h", "max_ttl": "10h"})
	e.clock.Advance(90 * time.Minute)
	if err := e.renew(&l); err != nil {
		t.Fatalf("renew inside the key's life: %v", err)
	}
	if l.end.After(expires) {
		t.Fatalf("renewed lease ends %s, after its key expires at the provider %s", l.end, expires)
	}
	e.clock.Advance(expires.Sub(e.clock.Now()) + time.Second)
	if err := e.renew(&l); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("renewing a lease whose key has expired: %v, want an error saying so", err)
	}

	// A provider that caps the expiry: the lease is cut to the key's life.
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/keys" {
			return false
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("create body: %v", err)
		}
		body["expires_at"] = e.clock.Now().Add(20 * time.Minute).UTC().Format(time.RFC3339)
		raw, _ := json.Marshal(body)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(raw)), int64(len(raw))
		e.demo.ServeHTTP(w, r)
		return true
	})
	capped := e.readCreds("dyn")
	if capped.secret.MaxTTL > 20*time.Minute || capped.secret.TTL > 20*time.Minute {
		t.Fatalf("lease of a key expiring in 20m has ttl %s, max_ttl %s", capped.secret.TTL, capped.secret.MaxTTL)
	}
}
