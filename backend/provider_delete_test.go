package backend

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// deleteRootPending rotates provider p's root while the provider refuses
// deletes, so the replaced root stays pending; it returns the replaced
// root's id and the new one's.
func (e *env) deleteRootPending() (oldID, newID string) {
	e.t.Helper()
	oldID = e.demo.AdminKeyID()
	e.clock.Advance(time.Second) // the rotation comes after the operator's write
	e.failDelete.Store(true)
	newID = e.must(logical.UpdateOperation, "rotate-root/p", nil).Data["root_key_id"].(string)
	e.failDelete.Store(false)
	if got := e.storedProvider("p").PendingRootRevocations; !slices.Equal(got, []string{oldID}) {
		e.t.Fatalf("pending root revocations %v, want [%s]", got, oldID)
	}
	return oldID, newID
}

// deleteKeepingRoot deletes provider p while a replaced root is pending
// and the provider still refuses its revocation; it returns p's
// incarnation, the pending root's id and the delete's answer.
func (e *env) deleteKeepingRoot() (inc, oldID string, resp *logical.Response) {
	e.t.Helper()
	e.provider("p")
	inc = e.storedProvider("p").Incarnation
	oldID, _ = e.deleteRootPending()
	e.failDelete.Store(true)
	return inc, oldID, e.must(logical.DeleteOperation, "providers/p", nil)
}

// statusTombstones returns status's tombstones.
func (e *env) statusTombstones() []map[string]any {
	e.t.Helper()
	return e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)
}

func (e *env) wantPendingRevocations(n int, when string) {
	e.t.Helper()
	if got := e.must(logical.ReadOperation, "status", nil).Data["pending_revocations"]; got != n {
		e.t.Fatalf("%s: status pending_revocations = %v, want %d", when, got, n)
	}
	if got := e.metricValue("thirdparty_pending_revocations"); got != float64(n) {
		e.t.Fatalf("%s: thirdparty_pending_revocations = %v, want %d", when, got, n)
	}
}

// A replaced root whose revocation is still pending is revoked when its
// provider is deleted: without it the old root (only Vault knew it when
// Vault created it) would stay live with nothing left to revoke it.
func TestProviderDeleteRevokesPendingOldRoots(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	oldID, newID := e.deleteRootPending()
	e.wantPendingRevocations(1, "before the delete")

	resp := e.must(logical.DeleteOperation, "providers/p", nil)
	if code := e.whoami(e.adminKey); code != http.StatusUnauthorized {
		t.Fatalf("the replaced root still authenticates after the provider's delete (%d)", code)
	}
	if ids := e.liveAdminIDs(); !slices.Equal(ids, []string{newID}) {
		t.Fatalf("live admin keys %v, want only the current root %s", ids, newID)
	}
	if n := len(e.statusTombstones()); n != 0 {
		t.Fatalf("%d tombstones, want none: nothing is left to revoke", n)
	}
	e.wantPendingRevocations(0, "after the delete")
	// The current root was created by Vault: the answer says it stays live.
	if resp == nil || resp.Data["root_left_live"] != newID || resp.Data["tombstone"] != nil {
		t.Fatalf("delete answered %v, want root_left_live %s and no tombstone", resp, newID)
	}
	if w := strings.Join(resp.Warnings, " "); !strings.Contains(w, newID) || !strings.Contains(w, "only Vault knew") || strings.Contains(w, oldID) {
		t.Fatalf("warnings %q should name the live root %s (and not the revoked %s)", w, newID, oldID)
	}
	if !strings.Contains(e.logs.String(), "deleted a provider whose root credential only Vault knew") {
		t.Fatal("the server log does not name the root left live")
	}
}

// A root the operator wrote (never rotated by Vault) is theirs: deleting
// its provider answers 204 with nothing to warn about.
func TestProviderDeleteOfAnOperatorsRootWarnsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	if resp := e.must(logical.DeleteOperation, "providers/p", nil); resp != nil {
		t.Fatalf("delete answered %v, want no body", resp)
	}
	if code := e.whoami(e.adminKey); code != http.StatusOK {
		t.Fatalf("the operator's root was touched (%d)", code)
	}
}

// When the replaced root cannot be revoked at the delete either, the
// provider's config stays as a tombstone holding it; tidy retries it with
// the tombstone's root (a dry run only lists it), and the tombstone goes
// once it is revoked.
func TestProviderDeleteKeepsFailedRootRevocationsForTidy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	inc, oldID, resp := e.deleteKeepingRoot()
	if resp == nil || resp.Data["tombstone"] != "p/"+inc || !slices.Equal(resp.Data["root_revocations_pending"].([]string), []string{oldID}) {
		t.Fatalf("delete answered %v, want tombstone p/%s with %s pending", resp, inc, oldID)
	}
	if w := strings.Join(resp.Warnings, " "); !strings.Contains(w, oldID) || !strings.Contains(w, "tidy retries") {
		t.Fatalf("warnings %q do not name the pending root %s", w, oldID)
	}
	if got, err := e.do(logical.ReadOperation, "providers/p", nil); err != nil || got != nil {
		t.Fatalf("the deleted provider still reads: %v %v", got, err)
	}
	tombs := e.statusTombstones()
	if len(tombs) != 1 || tombs[0]["pending_root_revocations"] != 1 {
		t.Fatalf("status tombstones %v, want one with 1 pending root revocation", tombs)
	}
	e.wantPendingRevocations(1, "with the tombstone")
	read := e.must(logical.ReadOperation, "tombstones/p/"+inc, nil).Data
	if got := read["root_revocations"].([]string); !slices.Equal(got, []string{oldID}) {
		t.Fatalf("tombstone read root_revocations %v, want [%s]", got, oldID)
	}

	// The provider still fails: tidy keeps the tombstone and says why.
	st := e.tidy(map[string]any{"safety_buffer": 0})
	wantCounts(t, st, map[string]int{"roots_revoked": 0, "tombstones_removed": 0, "error_count": 1})
	wantLines(t, "tidy keys", tidyKeys(st), oldID+" replaced root failed")
	if n := len(e.statusTombstones()); n != 1 {
		t.Fatalf("%d tombstones after a failed tidy, want 1", n)
	}
	e.failDelete.Store(false)

	// A dry run lists the root and what would go, and changes nothing.
	st = e.tidy(map[string]any{"dry_run": true, "safety_buffer": 0})
	wantCounts(t, st, map[string]int{"roots_revoked": 1, "keys_revoked": 1, "tombstones_removed": 1, "error_count": 0})
	wantLines(t, "dry-run keys", tidyKeys(st), oldID+" replaced root would revoke")
	if code := e.whoami(e.adminKey); code != http.StatusOK {
		t.Fatalf("a dry run revoked the replaced root (%d)", code)
	}
	if n := len(e.statusTombstones()); n != 1 {
		t.Fatalf("%d tombstones after a dry run, want 1", n)
	}

	st = e.tidy(map[string]any{"safety_buffer": 0})
	wantCounts(t, st, map[string]int{"roots_revoked": 1, "keys_revoked": 1, "tombstones_removed": 1, "error_count": 0})
	wantLines(t, "tidy keys", tidyKeys(st), oldID+" replaced root revoked")
	if code := e.whoami(e.adminKey); code != http.StatusUnauthorized {
		t.Fatalf("the replaced root still authenticates after tidy (%d)", code)
	}
	if n := len(e.statusTombstones()); n != 0 {
		t.Fatalf("%d tombstones after tidy revoked the root, want none", n)
	}
	e.wantPendingRevocations(0, "after tidy")
}

// A tombstone holding a replaced root survives a restart (status counts
// it again), and forgetting the tombstone names the root it forgot.
func TestTombstoneRootsAfterRestartAndForget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	inc, oldID, _ := e.deleteKeepingRoot()

	e.restart()
	e.wantPendingRevocations(1, "after a restart")

	resp := e.must(logical.DeleteOperation, "tombstones/p/"+inc, nil)
	if got := resp.Data["forgotten_roots"].([]string); !slices.Equal(got, []string{oldID}) {
		t.Fatalf("forgotten_roots %v, want [%s]", got, oldID)
	}
	if w := strings.Join(resp.Warnings, " "); !strings.Contains(w, "1 keys") {
		t.Fatalf("warnings %q do not count the forgotten root", w)
	}
	e.wantPendingRevocations(0, "after the tombstone was forgotten")
	if n := len(e.statusTombstones()); n != 0 {
		t.Fatalf("%d tombstones after the forget, want none", n)
	}
}

// revokeRoots revokes every id in order and stops at the first failure,
// returning it and what is left from there on.
func TestRevokeRootsInOrderUntilAFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.provider("p")
	pc, release, err := e.b.client(ctx, e.storage, "p")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var ids []string
	for range 3 {
		ids = append(ids, e.extraRoot("p", "extra").ID)
	}
	var heard []string
	left, err := revokeRoots(ctx, pc, ids[:2], func(id string) { heard = append(heard, id) })
	if err != nil || left != nil || !slices.Equal(heard, ids[:2]) {
		t.Fatalf("revokeRoots = %v, %v, heard %v; want all of %v revoked", left, err, heard, ids[:2])
	}
	e.failDelete.Store(true)
	left, err = revokeRoots(ctx, pc, ids[2:], func(id string) { t.Errorf("heard %s revoked while deletes fail", id) })
	if err == nil || !slices.Equal(left, ids[2:]) {
		t.Fatalf("revokeRoots with deletes failing = %v, %v; want %v left and the error", left, err, ids[2:])
	}
	if live := e.liveAdminIDs(); slices.Contains(live, ids[0]) || slices.Contains(live, ids[1]) || !slices.Contains(live, ids[2]) {
		t.Fatalf("live admin keys %v; want %v revoked and %s live", live, ids[:2], ids[2])
	}
}
