package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// tidy runs a tidy through the API, waits for it to end and returns
// tidy-status.
func (e *env) tidy(data map[string]any) map[string]any {
	e.t.Helper()
	resp := e.must(logical.UpdateOperation, "tidy", data)
	if code := resp.Data[logical.HTTPStatusCode]; code != http.StatusAccepted {
		e.t.Fatalf("tidy answered %v, want 202", code)
	}
	if body, _ := resp.Data[logical.HTTPRawBody].(string); !strings.Contains(body, "tidy started; see tidy-status") {
		e.t.Fatalf("tidy answered %s, want the warning pointing at tidy-status", body)
	}
	e.b.tidy.wait()
	return e.tidyStatus()
}

func (e *env) tidyStatus() map[string]any {
	e.t.Helper()
	return e.must(logical.ReadOperation, "tidy-status", nil).Data
}

// marker is the mount's marker.
func (e *env) marker() string {
	e.t.Helper()
	m, err := e.b.mountMarker(context.Background(), e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// createKey creates a key named name at provider p's account, as a creds
// read would, and returns it.
func (e *env) createKey(provider, name string) clients.Key {
	e.t.Helper()
	pc, release, err := e.b.client(context.Background(), e.storage, provider)
	if err != nil || pc == nil {
		e.t.Fatalf("provider %s: %v", provider, err)
	}
	defer release()
	k, err := pc.api.CreateKey(context.Background(), clients.KeyRequest{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// ledgerEntry stores a ledger entry for a key of provider p's current
// incarnation whose lease ends at expires.
func (e *env) ledgerEntry(provider string, k clients.Key, unique bool, expires time.Time) *ledgerEntry {
	e.t.Helper()
	le, err := newLedgerEntry(provider, e.storedProvider(provider).Incarnation, "dyn", k.Name, unique, e.clock.Now(), expires)
	if err != nil {
		e.t.Fatal(err)
	}
	le.KeyID = k.ID
	if err := putLedger(context.Background(), e.storage, le); err != nil {
		e.t.Fatal(err)
	}
	return le
}

func (e *env) ledgerLeft(le *ledgerEntry) bool {
	e.t.Helper()
	got, err := getLedger(context.Background(), e.storage, le.Provider, le.Incarnation, le.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got != nil
}

// tidyKeys returns tidy-status's keys as "key_id reason action" lines,
// sorted.
func tidyKeys(st map[string]any) []string {
	var out []string
	for _, k := range st["keys"].([]map[string]any) {
		out = append(out, k["key_id"].(string)+" "+k["reason"].(string)+" "+k["action"].(string))
	}
	sort.Strings(out)
	return out
}

func wantLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func wantCounts(t *testing.T, st map[string]any, want map[string]int) {
	t.Helper()
	for k, v := range want {
		if st[k] != v {
			t.Errorf("tidy-status %s = %v, want %d (status %v)", k, st[k], v, st)
		}
	}
}

// The crash window, by hand: a key whose ledger entry outlives its
// lease (Vault never registered the lease, so nothing will call revoke) is
// revoked by tidy once the lease's end plus the safety buffer has passed,
// and not before.
func TestTidyRevokesKeysOfExpiredLedgerEntries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	m := e.marker()
	now := e.clock.Now()
	byID := e.createKey("p", "vault-"+m+"-by-id")
	le1 := e.ledgerEntry("p", byID, false, now.Add(time.Hour))
	// The fast path of types that list by name: no id recorded, a unique name.
	byName := e.createKey("p", "vault-"+m+"-by-name")
	le2 := e.ledgerEntry("p", clients.Key{Name: byName.Name}, true, now.Add(time.Hour))
	// No id and a name other keys may share: tidy cannot tell it apart.
	lost := e.createKey("p", "shared-name")
	le3 := e.ledgerEntry("p", clients.Key{Name: lost.Name}, false, now.Add(time.Hour))
	// A lease still running.
	live := e.createKey("p", "vault-"+m+"-live")
	le4 := e.ledgerEntry("p", live, false, now.Add(48*time.Hour))

	st := e.tidy(map[string]any{"safety_buffer": "0s"})
	wantCounts(t, st, map[string]int{"entries_examined": 4, "keys_revoked": 0, "error_count": 0})
	if st["state"] != tidyFinished || st["dry_run"] != false || st["safety_buffer"] != int64(0) {
		t.Fatalf("tidy-status %v", st)
	}

	e.clock.Advance(2 * time.Hour) // three leases ended an hour ago
	st = e.tidy(map[string]any{"safety_buffer": "2h"})
	wantCounts(t, st, map[string]int{"entries_examined": 4, "keys_revoked": 0})
	if len(e.keys(demoserver.StateRevoked)) != 0 {
		t.Fatal("tidy revoked a key within the safety buffer")
	}

	st = e.tidy(map[string]any{"safety_buffer": "30m"})
	wantCounts(t, st, map[string]int{"entries_examined": 4, "keys_revoked": 2, "error_count": 0, "orphans_found": 0})
	wantLines(t, "tidy-status keys", tidyKeys(st),
		byID.ID+" expired ledger entry revoked",
		byName.ID+" expired ledger entry revoked",
		" expired ledger entry reported")
	e.wantRevoked(byID.ID, "key of the expired entry: %s, want revoked")
	e.wantRevoked(byName.ID, "key found by its unique name: %s, want revoked")
	if e.keyState(lost.ID) != demoserver.StateLive || e.keyState(live.ID) != demoserver.StateLive {
		t.Fatal("tidy revoked a key it cannot tell apart, or one whose lease runs")
	}
	if e.ledgerLeft(le1) || e.ledgerLeft(le2) || e.ledgerLeft(le3) || !e.ledgerLeft(le4) {
		t.Fatal("ledger after tidy: want only the running lease's entry left")
	}
	if !strings.Contains(e.logs.String(), "shared-name") {
		t.Fatal("the key tidy cannot revoke is not named in the log")
	}
	if got := e.metricValue(`thirdparty_keys_revoked_total{role="dyn"}`); got != 2 {
		t.Fatalf("thirdparty_keys_revoked_total = %v, want 2", got)
	}
	if got := e.metricValue(`thirdparty_tidy_runs_total{result="success"}`); got != 3 {
		t.Fatalf("thirdparty_tidy_runs_total{success} = %v, want 3", got)
	}
}

// refuseDeletes makes the provider answer deletes with a 403 (not retried,
// unlike env.failDelete's 503).
func (e *env) refuseDeletes(on bool) {
	if !on {
		e.setIntercept(nil)
		return
	}
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodDelete {
			return false
		}
		http.Error(w, `{"error":{"code":"forbidden","message":"no"}}`, http.StatusForbidden)
		return true
	})
}

// holdRequests holds every request to the demo provider that match
// selects until release is called (then the provider answers it) or its
// client gives it up (then the provider never sees it), and sends on
// reached for each one it holds. release is idempotent and also runs
// at cleanup, before the env's own, so a failing test does not hang.
func (e *env) holdRequests(match func(*http.Request) bool) (reached chan struct{}, release func()) {
	reached, released := make(chan struct{}, 16), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	e.t.Cleanup(release)
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) {
			return false
		}
		reached <- struct{}{}
		select {
		case <-released:
			return false // on to the provider
		case <-r.Context().Done():
			return true // given up: the provider never sees it
		}
	})
	return reached, release
}

// took is a condition for waitFor: ch has delivered (one value taken).
func took(ch <-chan struct{}) func() bool {
	return func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}

// A failed revocation keeps the entry for the next tidy and counts as an
// error; the run goes on with the other keys.
func TestTidyRetriesFailedRevocations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	k := e.createKey("p", "vault-x")
	le := e.ledgerEntry("p", k, false, e.clock.Now())
	e.clock.Advance(time.Minute)

	e.refuseDeletes(true)
	st := e.tidy(map[string]any{"safety_buffer": "0s"})
	e.refuseDeletes(false)
	wantCounts(t, st, map[string]int{"keys_revoked": 0, "error_count": 1})
	if st["state"] != tidyFinished || !strings.Contains(st["last_error"].(string), k.ID) {
		t.Fatalf("tidy-status %v, want Finished with the error naming the key", st)
	}
	wantLines(t, "keys", tidyKeys(st), k.ID+" expired ledger entry failed")
	if !e.ledgerLeft(le) || e.keyState(k.ID) != demoserver.StateLive {
		t.Fatal("a failed revocation lost the entry or the key")
	}
	if got := e.metricValue(`thirdparty_tidy_runs_total{result="failure"}`); got != 1 {
		t.Fatalf("thirdparty_tidy_runs_total{failure} = %v, want 1", got)
	}

	st = e.tidy(map[string]any{"safety_buffer": "0s"})
	wantCounts(t, st, map[string]int{"keys_revoked": 1, "error_count": 0})
	e.wantRevoked(k.ID, "after the retry: %s, want revoked")
	if e.ledgerLeft(le) {
		t.Fatal("entry left after its key was revoked")
	}
}

// tidy-cancel stops a running tidy where it is: the revocation it was
// waiting on is cut short, its ledger entry stays, no later entry is
// touched, and the next tidy finishes the work. With no tidy running it
// answers tidy-status with a warning.
func TestTidyCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	k1, k2 := e.createKey("p", "vault-one"), e.createKey("p", "vault-two")
	le1, le2 := e.ledgerEntry("p", k1, false, e.clock.Now()), e.ledgerEntry("p", k2, false, e.clock.Now())
	e.clock.Advance(time.Minute)

	// Deletes hang until the tidy gives up on them.
	deleting, _ := e.holdRequests(func(r *http.Request) bool { return r.Method == http.MethodDelete })
	e.must(logical.UpdateOperation, "tidy", map[string]any{"safety_buffer": "0s"})
	waitFor(t, "the tidy to reach the provider", took(deleting))
	resp := e.must(logical.UpdateOperation, "tidy-cancel", nil)
	if st := resp.Data["state"]; st != tidyCancelling && st != tidyCancelled {
		t.Fatalf("tidy-cancel answered state %v, want Cancelling (or Cancelled)", st)
	}
	if len(resp.Warnings) != 0 {
		t.Fatalf("tidy-cancel of a running tidy warned %v", resp.Warnings)
	}
	e.b.tidy.wait()
	e.setIntercept(nil)
	st := e.tidyStatus()
	if st["state"] != tidyCancelled || st["keys_revoked"] != 0 || st["error_count"] != 0 {
		t.Fatalf("tidy-status after the cancel: %v; want Cancelled with nothing revoked and no error", st)
	}
	if keys, _ := st["keys"].([]map[string]any); len(keys) != 1 || keys[0]["action"] != actionCancelled {
		t.Fatalf("tidy-status keys after the cancel: %v; want the one cut short, action cancelled", st["keys"])
	}
	if len(deleting) != 0 {
		t.Fatal("the cancelled tidy went on to the next key")
	}
	if !e.ledgerLeft(le1) || !e.ledgerLeft(le2) || e.keyState(k1.ID) != demoserver.StateLive || e.keyState(k2.ID) != demoserver.StateLive {
		t.Fatal("the cancelled tidy lost a ledger entry or revoked a key")
	}
	if got := e.metricValue(`thirdparty_tidy_runs_total{result="cancelled"}`); got != 1 {
		t.Fatalf(`thirdparty_tidy_runs_total{result="cancelled"} = %v, want 1`, got)
	}

	// Nothing running: tidy-status and a warning, nothing changed.
	resp = e.must(logical.UpdateOperation, "tidy-cancel", nil)
	if resp.Data["state"] != tidyCancelled || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "no tidy is running") {
		t.Fatalf("tidy-cancel with no tidy running: %v %v", resp.Data["state"], resp.Warnings)
	}

	st = e.tidy(map[string]any{"safety_buffer": "0s"})
	wantCounts(t, st, map[string]int{"keys_revoked": 2, "error_count": 0})
	if st["state"] != tidyFinished || e.ledgerLeft(le1) || e.ledgerLeft(le2) {
		t.Fatalf("the next tidy: %v; want Finished with both entries gone", st)
	}
	e.wantRevoked(k1.ID, "after the next tidy: %s, want revoked")
	e.wantRevoked(k2.ID, "after the next tidy: %s, want revoked")
}

// tombstoneOn stores a tombstone of provider name whose config points at
// another demo provider account, and returns that account.
func (e *env) tombstoneOn(name, incarnation string, legacyUntil time.Time) (*demoserver.Server, *atomic.Int32) {
	e.t.Helper()
	admin := demoserver.NewAdminKey()
	other := demoserver.New(demoserver.Options{AdminKey: admin, Now: e.clock.Now})
	var deletes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deletes.Add(1)
		}
		other.ServeHTTP(w, r)
	}))
	e.t.Cleanup(srv.Close)
	live := e.storedProvider(name)
	if live.Incarnation == "" {
		// A provider created before incarnations existed stands for any.
		live.Incarnation = "liveinc"
		if err := putJSON(context.Background(), e.storage, providerPrefix+name, live); err != nil {
			e.t.Fatal(err)
		}
		e.b.dropClient(name)
	}
	p := *live
	p.Incarnation, p.LegacyLeasesUntil = incarnation, legacyUntil
	p.BaseURL, p.Fields = srv.URL, map[string]string{"admin_key": admin}
	if err := putTombstone(context.Background(), e.storage, &tombstone{Name: name, Provider: &p, DeletedAt: e.clock.Now()}); err != nil {
		e.t.Fatal(err)
	}
	return other, &deletes
}

// A key of a deleted provider's incarnation is revoked with the tombstone's
// config (its account), never the live provider's of the same name; the
// tombstone goes with its last key, one holding legacy leases stays.
func TestTidyRevokesThroughTombstonesAndRemovesThem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	old, oldDeletes := e.tombstoneOn("p", "oldinc", time.Time{})
	e.tombstoneOn("p", "legacyinc", e.clock.Now().Add(24*time.Hour))
	pc, release, err := e.b.clientFor(context.Background(), e.storage, "p", "oldinc")
	if err != nil || pc == nil {
		t.Fatalf("tombstone client: %v", err)
	}
	k, err := pc.api.CreateKey(context.Background(), clients.KeyRequest{Name: "vault-old"})
	release()
	if err != nil {
		t.Fatal(err)
	}
	le, err := newLedgerEntry("p", "oldinc", "dyn", k.Name, false, e.clock.Now(), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	le.KeyID = k.ID
	if err := putLedger(context.Background(), e.storage, le); err != nil {
		t.Fatal(err)
	}
	var liveDeletes atomic.Int32
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodDelete {
			liveDeletes.Add(1)
		}
		return false
	})
	e.clock.Advance(time.Minute)

	st := e.tidy(map[string]any{"safety_buffer": "0s", "dry_run": true})
	wantCounts(t, st, map[string]int{"keys_revoked": 1, "tombstones_removed": 1})
	wantLines(t, "dry run", tidyKeys(st), k.ID+" expired ledger entry would revoke")
	if refs, _ := listTombstones(context.Background(), e.storage); len(refs) != 2 || oldDeletes.Load() != 0 {
		t.Fatalf("the dry run removed a tombstone (%v) or revoked a key (%d deletes)", refs, oldDeletes.Load())
	}

	st = e.tidy(map[string]any{"safety_buffer": "0s"})
	wantCounts(t, st, map[string]int{"keys_revoked": 1, "tombstones_removed": 1, "error_count": 0})
	for _, info := range old.Keys() {
		if info.ID == k.ID && info.State != demoserver.StateRevoked {
			t.Fatalf("the old account's key is %s, want revoked", info.State)
		}
	}
	if oldDeletes.Load() != 1 || liveDeletes.Load() != 0 {
		t.Fatalf("deletes: %d at the old account (want 1), %d at the live provider's (want 0)", oldDeletes.Load(), liveDeletes.Load())
	}
	refs, err := listTombstones(context.Background(), e.storage)
	if err != nil || len(refs) != 1 || refs[0].Incarnation != "legacyinc" {
		t.Fatalf("tombstones after tidy: %v %v, want only the one holding legacy leases", refs, err)
	}
	e.clock.Advance(25 * time.Hour)
	st = e.tidy(map[string]any{"safety_buffer": "0s"})
	wantCounts(t, st, map[string]int{"tombstones_removed": 1})
	if refs, _ := listTombstones(context.Background(), e.storage); len(refs) != 0 {
		t.Fatalf("tombstones left: %v", refs)
	}
}

// The orphan scan: keys carrying the mount's marker that nothing in storage
// accounts for are revoked once older than the safety buffer (reported
// before); keys without the marker, and keys a ledger entry, a dual role or
// a WAL entry names, are never touched.
func TestTidyOrphanScan(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	ctx := context.Background()
	m := e.marker()
	e.must(logical.CreateOperation, "roles/d", map[string]any{"provider": "p", "mode": "dual",
		"name_template": "vault-" + m + "-{{.RoleName}}-{{unix_time}}", "rotation_period": "24h", "overlap": "1h"})
	dual := e.state("d").Current

	orphan := e.createKey("p", "vault-"+m+"-orphan")
	byHand := e.createKey("p", "made-by-hand")
	otherMount := e.createKey("p", "vault-tpzzzzzzzz-other-mount")
	leased := e.createKey("p", "vault-"+m+"-leased")
	e.ledgerEntry("p", leased, false, e.clock.Now().Add(100*time.Hour))
	leasedByName := e.createKey("p", "vault-"+m+"-leased-by-name")
	e.ledgerEntry("p", clients.Key{Name: leasedByName.Name}, true, e.clock.Now().Add(100*time.Hour))
	inFlight := e.createKey("p", "vault-"+m+"-rotating")
	if _, err := framework.PutWAL(ctx, e.storage, walKindKey, &walKey{Provider: "p", Role: "d", Name: inFlight.Name, Purpose: purposeDual}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	young := e.createKey("p", "vault-"+m+"-young")

	st := e.tidy(map[string]any{"safety_buffer": "1h"})
	wantCounts(t, st, map[string]int{"orphans_found": 2, "orphans_revoked": 1, "keys_revoked": 1, "error_count": 0})
	wantLines(t, "orphans", tidyKeys(st), orphan.ID+" orphan revoked", young.ID+" orphan reported")
	e.wantRevoked(orphan.ID, "orphan: %s, want revoked")
	for _, k := range []clients.Key{byHand, otherMount, leased, leasedByName, inFlight, young, {ID: dual.ID}} {
		if s := e.keyState(k.ID); s != demoserver.StateLive {
			t.Fatalf("key %s %q is %s after tidy, want live", k.ID, k.Name, s)
		}
	}
	if got := e.metricValue(`thirdparty_orphans_revoked_total{provider="p"}`); got != 1 {
		t.Fatalf("thirdparty_orphans_revoked_total = %v, want 1", got)
	}

	// Every tidy, whatever its buffer, leaves the hand-made key alone.
	e.clock.Advance(1000 * time.Hour)
	e.tidy(map[string]any{"safety_buffer": "0s"})
	if e.keyState(byHand.ID) != demoserver.StateLive || e.keyState(otherMount.ID) != demoserver.StateLive {
		t.Fatal("tidy revoked a key without this mount's marker")
	}
}

// dry_run changes nothing (storage, keys at the provider) and lists exactly
// what the real run then revokes.
func TestTidyDryRunListsWhatARealRunDoes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	m := e.marker()
	expired := e.createKey("p", "vault-"+m+"-expired")
	e.ledgerEntry("p", expired, false, e.clock.Now())
	byName := e.createKey("p", "vault-"+m+"-lost-id")
	e.ledgerEntry("p", clients.Key{Name: byName.Name}, true, e.clock.Now())
	orphan := e.createKey("p", "vault-"+m+"-orphan")
	e.createKey("p", "by-hand")
	// An entry tidy cannot resolve (no id, a name others may share) is
	// reported and dropped; its key, carrying the marker, is then an orphan.
	unresolved := e.createKey("p", "vault-"+m+"-shared")
	e.ledgerEntry("p", clients.Key{Name: unresolved.Name}, false, e.clock.Now())
	e.tombstoneOn("p", "gone", time.Time{})
	e.clock.Advance(time.Hour)

	before := e.mountState(newMemServer(t))
	dry := e.tidy(map[string]any{"dry_run": true, "safety_buffer": "10m"})
	if after := e.mountState(newMemServer(t)); !mountStatesEqual(before, after) {
		t.Fatal("dry run changed storage or the provider's keys")
	}
	if len(e.keys(demoserver.StateRevoked)) != 0 {
		t.Fatal("dry run revoked a key")
	}
	if dry["dry_run"] != true {
		t.Fatalf("tidy-status dry_run = %v", dry["dry_run"])
	}
	wantLines(t, "dry run", tidyKeys(dry),
		expired.ID+" expired ledger entry would revoke",
		byName.ID+" expired ledger entry would revoke",
		" expired ledger entry reported",
		orphan.ID+" orphan would revoke",
		unresolved.ID+" orphan would revoke")

	real := e.tidy(map[string]any{"safety_buffer": "10m"})
	var want []string
	for _, l := range tidyKeys(dry) {
		want = append(want, strings.Replace(l, "would revoke", "revoked", 1))
	}
	wantLines(t, "real run", tidyKeys(real), want...)
	for _, k := range []string{"entries_examined", "keys_revoked", "tombstones_removed", "orphans_found", "orphans_revoked"} {
		if dry[k] != real[k] {
			t.Errorf("%s: dry run %v, real run %v", k, dry[k], real[k])
		}
	}
	if n := len(e.keys(demoserver.StateRevoked)); n != 4 {
		t.Fatalf("%d keys revoked by the real run, want 4", n)
	}
}

func mountStatesEqual(a, b mountState) bool {
	ja, _ := json.Marshal(a.storage)
	jb, _ := json.Marshal(b.storage)
	return string(ja) == string(jb) && a.demoKeys == b.demoKeys
}

// One tidy at a time: a second one while the first runs is a 400.
func TestTidyOneAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	entered, release := make(chan struct{}), make(chan struct{})
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/keys" {
			close(entered)
			<-release
		}
		return false
	})
	e.must(logical.UpdateOperation, "tidy", nil)
	<-entered
	if st := e.tidyStatus(); st["state"] != tidyRunning || st["time_started"] == "" || st["time_finished"] != "" {
		t.Fatalf("tidy-status while running: %v", st)
	}
	resp, err := e.do(logical.UpdateOperation, "tidy", nil)
	e.userError(resp, err, "a tidy is already running")
	close(release)
	e.b.tidy.wait()
	e.setIntercept(nil)
	if st := e.tidyStatus(); st["state"] != tidyFinished || st["time_finished"] == "" {
		t.Fatalf("tidy-status after the run: %v", st)
	}
	e.tidy(nil) // and the next one starts
}

func TestTidyStatusBeforeAnyRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := e.tidyStatus()
	if st["state"] != tidyInactive || st["time_started"] != "" || len(st["keys"].([]map[string]any)) != 0 {
		t.Fatalf("tidy-status before any tidy: %v", st)
	}
}

// Bad input is a 400 naming the field and changes nothing stored.
func TestTidyBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	ms := newMemServer(t)
	for _, tc := range []struct {
		path, field string
		data        map[string]any
	}{
		{"tidy", "safety_buffer", map[string]any{"safety_buffer": "-1s"}},
		{"config/auto-tidy", "interval", map[string]any{"enabled": true, "interval": "30s"}},
		{"config/auto-tidy", "safety_buffer", map[string]any{"enabled": true, "safety_buffer": "-1h"}},
	} {
		for _, existing := range []bool{false, true} {
			if existing {
				e.must(logical.UpdateOperation, "config/auto-tidy", map[string]any{"interval": "2h"})
			}
			before := e.mountState(ms, "config/auto-tidy")
			resp, err := e.do(logical.UpdateOperation, tc.path, tc.data)
			e.userError(resp, err, tc.field)
			if after := e.mountState(ms, "config/auto-tidy"); !mountStatesEqual(before, after) ||
				!jsonEqual(before.reads, after.reads) {
				t.Fatalf("%s %v changed what is stored", tc.path, tc.data)
			}
			if e.b.sched.len() != 0 {
				t.Fatalf("%s %v scheduled auto-tidy", tc.path, tc.data)
			}
		}
	}
	if st := e.tidyStatus(); st["state"] != tidyInactive {
		t.Fatalf("a refused tidy started one: %v", st)
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestAutoTidyConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	got := e.must(logical.ReadOperation, "config/auto-tidy", nil).Data
	if got["enabled"] != false || got["interval"] != int64(12*3600) || got["safety_buffer"] != int64(72*3600) || got["next_run"] != "" {
		t.Fatalf("defaults: %v", got)
	}
	e.must(logical.CreateOperation, "config/auto-tidy", map[string]any{"enabled": true, "interval": "1h"})
	e.must(logical.UpdateOperation, "config/auto-tidy", map[string]any{"safety_buffer": "5m"}) // partial
	got = e.must(logical.ReadOperation, "config/auto-tidy", nil).Data
	want := formatTime(e.clock.Now().Add(time.Hour))
	if got["enabled"] != true || got["interval"] != int64(3600) || got["safety_buffer"] != int64(300) || got["next_run"] != want {
		t.Fatalf("after writes: %v, want next_run %s", got, want)
	}
}

// Auto-tidy runs every interval from the scheduler, which runs only where
// the node may write (the active node); the time of the last run survives a
// restart.
func TestAutoTidyRunsOnTheActiveNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	m := e.marker()
	k := e.createKey("p", "vault-"+m+"-expired")
	e.ledgerEntry("p", k, false, e.clock.Now())
	e.must(logical.CreateOperation, "config/auto-tidy", map[string]any{"enabled": true, "interval": "1h", "safety_buffer": "0s"})
	if err := e.b.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(59 * time.Minute)
	e.settle()
	e.b.tidy.wait()
	if st := e.tidyStatus(); st["state"] != tidyInactive {
		t.Fatalf("auto-tidy ran before its interval: %v", st)
	}
	e.clock.Advance(time.Minute)
	e.settle()
	e.b.tidy.wait()
	st := e.tidyStatus()
	if st["state"] != tidyFinished || st["auto"] != true || st["keys_revoked"] != 1 {
		t.Fatalf("tidy-status after the interval: %v", st)
	}
	e.wantRevoked(k.ID, "after auto-tidy: %s, want revoked")
	ran := e.clock.Now()
	if got := e.must(logical.ReadOperation, "config/auto-tidy", nil).Data; got["last_run"] != formatTime(ran) ||
		got["next_run"] != formatTime(ran.Add(time.Hour)) {
		t.Fatalf("config/auto-tidy after a run: %v", got)
	}

	// A new backend on the same storage (a restart, a new leader) keeps the
	// schedule; on a node that cannot write, nothing runs.
	e.b.sched.stop()
	for _, standby := range []bool{true, false} {
		b2 := newBackend(e.clock)
		if err := b2.Setup(context.Background(), &logical.BackendConfig{Logger: e.b.Logger(), System: e.sys, StorageView: e.storage}); err != nil {
			t.Fatal(err)
		}
		e.sys.ReplicationStateVal = 0
		if standby {
			e.sys.ReplicationStateVal = consts.ReplicationPerformanceStandby
		}
		if err := b2.Initialize(context.Background(), &logical.InitializationRequest{Storage: e.storage}); err != nil {
			t.Fatal(err)
		}
		old := e.b
		e.b = b2
		e.clock.Advance(time.Hour)
		e.settle()
		b2.tidy.wait()
		// (A standby forwards tidy-status to the active node; read its own.)
		st := b2.tidy.snapshot()
		if standby && st.State != tidyInactive {
			t.Fatalf("auto-tidy ran on a node that cannot write: %+v", st)
		}
		if !standby && (st.State != tidyFinished || !st.Auto) {
			t.Fatalf("auto-tidy did not run after a restart: %+v", st)
		}
		b2.Clean(context.Background())
		e.b = old
	}

	e.must(logical.UpdateOperation, "config/auto-tidy", map[string]any{"enabled": false})
	if e.b.sched.len() != 0 {
		t.Fatal("disabled auto-tidy is still scheduled")
	}
}

// No secret in tidy-status or in the log of a tidy that revoked keys.
func TestTidyNeverShowsASecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	m := e.marker()
	k := e.createKey("p", "vault-"+m+"-expired")
	e.ledgerEntry("p", k, false, e.clock.Now())
	e.createKey("p", "vault-"+m+"-orphan")
	e.clock.Advance(time.Hour)
	e.refuseDeletes(true) // errors too
	e.tidy(map[string]any{"safety_buffer": "0s"})
	e.refuseDeletes(false)
	st := e.tidy(map[string]any{"safety_buffer": "0s"})
	body, _ := json.Marshal(st)
	for _, s := range e.issuedSecrets() {
		if strings.Contains(string(body), s) || strings.Contains(e.logs.String(), s) {
			t.Fatal("a secret appears in tidy-status or the log")
		}
	}
}

// The exact crash window, through the real creds path: the handler
// answered, Vault never registered the lease (nothing will ever call
// revoke), the entry's lease end passes, and tidy revokes the key after the
// safety buffer, and not before. A lease renewed meanwhile keeps its key.
func TestTidyRevokesTheKeyOfALeaseVaultNeverRegistered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.sys.MaxLeaseTTLVal = 100 * time.Hour // the renewed lease outlives the buffer
	e.provider("p")
	e.dynamicRole("dyn")
	lost := e.lease("dyn") // answered; the lease is never registered
	renewed := e.lease("dyn")
	lostKey, renewedKey := lost.InternalData["key_id"].(string), renewed.InternalData["key_id"].(string)
	if n := e.metricValue(`thirdparty_ledger_entries{provider="p"}`); n != 2 {
		t.Fatalf("thirdparty_ledger_entries = %v, want 2", n)
	}

	// Past the 1h lease end, up to the end of the default 72h buffer:
	// nothing happens.
	for i := 0; i < 73; i++ {
		e.clock.Advance(time.Hour)
		if err := e.renew(&lease{secret: renewed}); err != nil {
			t.Fatal(err)
		}
		if i == 1 || i == 72 {
			st := e.tidy(nil)
			wantCounts(t, st, map[string]int{"entries_examined": 2, "keys_revoked": 0, "error_count": 0})
		}
	}
	e.clock.Advance(time.Second) // 72h and 1s after the lease's end
	st := e.tidy(nil)
	if st["safety_buffer"] != int64(72*3600) {
		t.Fatalf("default safety_buffer %v", st["safety_buffer"])
	}
	wantCounts(t, st, map[string]int{"entries_examined": 2, "keys_revoked": 1, "orphans_found": 0, "error_count": 0})
	wantLines(t, "tidy-status keys", tidyKeys(st), lostKey+" expired ledger entry revoked")
	e.wantRevoked(lostKey, "the key of the lease Vault never registered is %s after tidy, want revoked")
	if e.keyState(renewedKey) != demoserver.StateLive {
		t.Fatal("tidy revoked the key of a lease being renewed")
	}
	if l := e.ledger(); len(l) != 1 || l[0].ID != renewed.InternalData["ledger_id"] {
		t.Fatalf("ledger after tidy: %+v, want only the renewed lease's entry", l)
	}
	if n := e.metricValue(`thirdparty_ledger_entries{provider="p"}`); n != 1 {
		t.Fatalf("thirdparty_ledger_entries = %v after tidy, want 1", n)
	}
	// The renewed lease is still revoked normally.
	if err := e.revoke(renewed); err != nil {
		t.Fatal(err)
	}
	e.wantRevoked(renewedKey, "renewed lease's key after its revocation: %s")
	if live := e.keys(demoserver.StateLive); len(live) != 0 {
		t.Fatalf("keys live with no lease: %v", live)
	}
}

// A create whose answer was lost leaves an entry due at once (the key's id
// was never learnt): tidy finds the key by its unique name and revokes it.
func TestTidyRevokesALostCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	e.readWithLostCreate("dyn")
	created := e.keys(demoserver.StateLive)
	if len(created) != 1 {
		t.Fatalf("%d live keys after the lost create", len(created))
	}
	e.clock.Advance(time.Minute)
	st := e.tidy(map[string]any{"safety_buffer": "30s"})
	wantLines(t, "tidy-status keys", tidyKeys(st), created[0].ID+" expired ledger entry revoked")
	e.wantRevoked(created[0].ID, "the lost create's key is %s after tidy")
	if l := e.ledger(); len(l) != 0 {
		t.Fatalf("ledger after tidy: %+v", l)
	}
}

// A lease tidy revoked (its end long past) cannot be renewed afterwards.
func TestRenewAfterTidyRevokedTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	s := e.lease("dyn")
	e.clock.Advance(2 * time.Hour)
	e.tidy(map[string]any{"safety_buffer": "30m"})
	if err := e.renew(&lease{secret: s}); err == nil || !strings.Contains(err.Error(), "no longer recorded") {
		t.Fatalf("renew after tidy: %v, want an error saying the key is gone", err)
	}
}

// A tidy cut short (the plugin stopped, a seal, a leader change) ends in
// state Error and counts as a failed run; nothing is half-revoked.
func TestTidyStoppedByCleanIsAnError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	entered, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/keys" && once.CompareAndSwap(false, true) {
			close(entered)
			<-release
		}
		return false
	})
	defer close(release)
	e.must(logical.UpdateOperation, "tidy", nil)
	<-entered
	e.b.Clean(context.Background()) // returns once the tidy has stopped
	st := e.b.tidy.snapshot()
	if st.State != tidyError || st.ErrorCount == 0 || !strings.Contains(st.LastError, "context canceled") || st.Finished.IsZero() {
		t.Fatalf("tidy-status after Clean: %+v, want Error with the cancellation", st)
	}
	if got := e.metricValue(`thirdparty_tidy_runs_total{result="failure"}`); got != 1 {
		t.Fatalf("thirdparty_tidy_runs_total{failure} = %v, want 1", got)
	}
}
