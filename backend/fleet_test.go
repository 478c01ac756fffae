package backend

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// sameView reports whether two views show the same thing: equal strings
// and the same instants (the location is not shown anywhere).
func sameView(a, b roleView) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		fa, fb := va.Field(i).Interface(), vb.Field(i).Interface()
		if ta, ok := fa.(time.Time); ok {
			if !ta.Equal(fb.(time.Time)) || ta.IsZero() != fb.(time.Time).IsZero() {
				return false
			}
			continue
		}
		if fa != fb {
			return false
		}
	}
	return true
}

// The inventory's compact records give back exactly the view that was
// set: nanoseconds, other locations, times a Unix-nanosecond stamp cannot
// hold (year 9999, year 1 plus a nanosecond, the epoch itself), previous
// keys and failures; and a delete leaves every other role as it was.
func TestInventoryKeepsViewsExactly(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("UTC+1", 3600))
	far := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	tiny := time.Time{}.Add(time.Nanosecond)
	epoch := time.Unix(0, 0)
	states := map[string]*dualState{
		"plain": {Current: &dualKey{ID: "k1", PromotedAt: base, ExpiresAt: base.Add(48 * time.Hour), RenewAt: base.Add(24 * time.Hour)},
			NextRotation: base.Add(time.Hour), LastRotation: base.Add(-time.Hour)},
		"previous": {Current: &dualKey{ID: "k2", PromotedAt: base}, Previous: &dualKey{ID: "k1", RetireAt: base.Add(time.Minute)},
			NextRotation: base.Add(time.Hour)},
		"failing":  {Current: &dualKey{ID: "k3", PromotedAt: base}, LastError: "creating the key: 503", NextRetry: base.Add(time.Second)},
		"far":      {Current: &dualKey{ID: "k4", PromotedAt: base, ExpiresAt: far, RenewAt: far}, NextRotation: far},
		"tiny":     {Current: &dualKey{ID: "k5", PromotedAt: tiny}},
		"epoch":    {Current: &dualKey{ID: "k6", PromotedAt: epoch}, LastRotation: epoch},
		"no-keys":  {NextRotation: base},
		"long-ago": {Current: &dualKey{ID: "k7", PromotedAt: time.Date(1601, 1, 1, 0, 0, 0, 1, time.UTC)}},
	}
	want := map[string]roleView{}
	in := newInventory()
	for name, st := range states {
		in.setRoleConfig(name, &roleEntry{Mode: modeDual, Provider: "p-" + name})
		in.setRole(name, st)
		v := roleView{Mode: modeDual, Provider: "p-" + name, NextRotation: st.NextRotation, LastRotation: st.LastRotation,
			LastError: st.LastError, NextRetry: st.NextRetry}
		if c := st.Current; c != nil {
			v.CurrentKeyID, v.CurrentKeyCreated, v.ExpiresAt, v.RenewAt = c.ID, c.PromotedAt, c.ExpiresAt, c.RenewAt
		}
		if p := st.Previous; p != nil {
			v.PreviousKeyID, v.PreviousKeyRetires = p.ID, p.RetireAt
		}
		want[name] = v
	}
	in.setRoleConfig("dynamic", &roleEntry{Mode: modeDynamic, Provider: "p"})
	want["dynamic"] = roleView{Mode: modeDynamic, Provider: "p"}

	check := func(when string) {
		t.Helper()
		roles, _ := in.snapshot()
		if len(roles) != len(want) {
			t.Fatalf("%s: %d roles, want %d", when, len(roles), len(want))
		}
		if !sort.SliceIsSorted(roles, func(i, j int) bool { return roles[i].name < roles[j].name }) {
			t.Fatalf("%s: snapshot not sorted by name", when)
		}
		for _, r := range roles {
			if !sameView(r.roleView, want[r.name]) {
				t.Fatalf("%s: role %s shows\n%+v\nwant\n%+v", when, r.name, r.roleView, want[r.name])
			}
			if v, ok := in.role(r.name); !ok || !sameView(v, r.roleView) {
				t.Fatalf("%s: role(%s) = %+v, %v; the snapshot says %+v", when, r.name, v, ok, r.roleView)
			}
		}
	}
	check("after set")

	// A role that had a previous key and an error goes back to the plain
	// record once both are gone; its other fields stay.
	st := *states["previous"]
	st.Previous = nil
	in.setRole("previous", &st)
	v := want["previous"]
	v.PreviousKeyID, v.PreviousKeyRetires = "", time.Time{}
	want["previous"] = v
	// A config write keeps the key state.
	in.setRoleConfig("plain", &roleEntry{Mode: modeDual, Provider: "other"})
	v = want["plain"]
	v.Provider = "other"
	want["plain"] = v
	check("after updates")

	for _, name := range []string{"tiny", "plain", "no-keys", "dynamic", "nonexistent"} {
		in.deleteRole(name)
		delete(want, name)
		check("after deleting " + name)
	}
}

// The scheduler's queue against a model: after any mix of schedule,
// reschedule and unschedule, it holds exactly the model's items, pops them
// in (due, item) order, and a due time past what Unix nanoseconds hold
// sorts after every other.
func TestSchedulerQueueMatchesModel(t *testing.T) {
	c := newFakeClock()
	s := newScheduler(c, func(context.Context, string) time.Time { return time.Time{} })
	base := c.Now()
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]time.Time{}
	for range 5000 {
		item := fmt.Sprintf("role/r%03d", rng.IntN(300))
		var due time.Time
		switch rng.IntN(10) {
		case 0, 1:
			// unschedule
		case 2:
			due = far
		default:
			due = base.Add(time.Duration(rng.IntN(50)) * time.Second)
		}
		s.schedule(item, due)
		if due.IsZero() {
			delete(model, item)
		} else {
			model[item] = due
		}
	}
	if s.len() != len(model) || len(s.pos) != len(model) {
		t.Fatalf("queue holds %d items (%d indexed), the model %d", s.len(), len(s.pos), len(model))
	}
	for item, i := range s.pos {
		if s.queue[i].item != item {
			t.Fatalf("pos[%s] = %d, which holds %s", item, i, s.queue[i].item)
		}
	}
	var want []string
	for item := range model {
		want = append(want, item)
	}
	sort.Slice(want, func(i, j int) bool {
		a, b := model[want[i]], model[want[j]]
		if !a.Equal(b) {
			return a.Before(b)
		}
		return want[i] < want[j]
	})
	for _, w := range want {
		got := s.queue[0].item
		s.removeLocked(0)
		if got != w {
			t.Fatalf("popped %s, want %s", got, w)
		}
	}
}

// fillNonZero sets every exported field of the struct v points to (and
// of the structs its pointer fields point to) to a distinct non-zero
// value, so that a test sees each field travel or not.
func fillNonZero(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range v.NumField() {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		*n++
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(base.Add(time.Duration(*n) * time.Minute)))
		case f.Kind() == reflect.String:
			f.SetString(fmt.Sprintf("v%d", *n))
		case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
			f.SetInt(int64(*n))
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Map && f.Type().Key().Kind() == reflect.String && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf(map[string]string{"k": fmt.Sprintf("v%d", *n)}))
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Struct:
			f.Set(reflect.New(f.Type().Elem()))
			fillNonZero(t, f.Elem(), n)
		default:
			t.Fatalf("fillNonZero: field %s of kind %s: teach this test its values", v.Type().Field(i).Name, f.Kind())
		}
	}
}

// Start-up decodes only part of a dual role's key state (dualHead). For a
// state with every field set, what it loads shows in the inventory and
// the queue exactly as the whole state does; a field the inventory or
// nextDue start to use must be added to dualHead, or this fails.
func TestLoadDecodesWhatInventoryAndQueueUse(t *testing.T) {
	for _, previous := range []bool{true, false} {
		var st dualState
		n := 0
		fillNonZero(t, reflect.ValueOf(&st).Elem(), &n)
		if !previous {
			st.Previous = nil
		}
		e := newEnv(t)
		ctx := context.Background()
		if err := putJSON(ctx, e.storage, rolePrefix+"r", &roleEntry{Mode: modeDual, Provider: "p", NameTemplate: defaultNameTemplate}); err != nil {
			t.Fatal(err)
		}
		if err := putJSON(ctx, e.storage, roleKeysPrefix+"r", &st); err != nil {
			t.Fatal(err)
		}
		l, err := e.b.readRole(ctx, e.storage, "r", nil)
		if err != nil || !l.found || l.st == nil {
			t.Fatalf("readRole: %+v, %v", l, err)
		}
		whole, head := newInventory(), newInventory()
		whole.setRoleConfig("r", &roleEntry{Mode: modeDual, Provider: "p"})
		whole.setRole("r", &st)
		head.loadRoles([]loadedRole{l})
		a, _ := whole.role("r")
		b, _ := head.role("r")
		if !sameView(a, b) {
			t.Fatalf("previous=%v: loaded view\n%+v\nwant\n%+v", previous, b, a)
		}
		if !l.st.nextDue().Equal(st.nextDue()) {
			t.Fatalf("previous=%v: loaded state is due %s, the whole state %s", previous, l.st.nextDue(), st.nextDue())
		}
	}
}

// parallel runs every index once, and stops at the first error, which it
// returns.
func TestParallel(t *testing.T) {
	var seen [1000]atomic.Int32
	if err := parallel(context.Background(), len(seen), 7, func(_ context.Context, i int) error {
		seen[i].Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Fatalf("index %d ran %d times", i, n)
		}
	}
	boom := errors.New("boom")
	var ran atomic.Int32
	err := parallel(context.Background(), 1000, 4, func(ctx context.Context, i int) error {
		ran.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if n := ran.Load(); n == 1000 {
		t.Fatal("parallel went on after an error")
	}
}

// The scheduler has more workers than a provider's max_concurrency (so
// that a provider slot never waits for a worker doing storage work
// between its requests); the provider still never sees more than
// max_concurrency requests at once, and does see that many.
func TestSchedulerWorkersNeverExceedProviderConcurrency(t *testing.T) {
	const limit, roles = 3, 24
	e := newEnv(t)
	if e.b.sched.workers <= limit {
		t.Fatalf("scheduler has %d workers; this test needs more than the provider's %d slots", e.b.sched.workers, limit)
	}
	var mu sync.Mutex
	inflight, most := 0, 0
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			return false
		}
		mu.Lock()
		inflight++
		most = max(most, inflight)
		mu.Unlock()
		// Hold the request, as a provider's latency does, so that
		// requests the workers send at once overlap here.
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		inflight--
		mu.Unlock()
		return false
	})
	e.must(logical.CreateOperation, "providers/p", map[string]any{"type": "demo", "base_url": e.srv.URL, "admin_key": e.adminKey, "max_concurrency": limit})
	for i := range roles {
		e.dualRole(fmt.Sprintf("r%02d", i), map[string]any{"rotation_period": "1h"})
	}
	before := map[string]string{}
	for i := range roles {
		name := fmt.Sprintf("r%02d", i)
		before[name] = e.state(name).Current.ID
	}
	mu.Lock()
	most = 0
	mu.Unlock()
	e.clock.Advance(time.Hour)
	e.b.sched.start()
	e.settle()
	for name, id := range before {
		if e.state(name).Current.ID == id {
			t.Fatalf("role %s did not rotate", name)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most > limit {
		t.Fatalf("the provider saw %d requests at once, max_concurrency is %d", most, limit)
	}
	if most < limit {
		t.Fatalf("the provider saw at most %d requests at once, want its max_concurrency %d (the workers did not overlap)", most, limit)
	}
}
