package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// Invariant 2 through a dual role's delete: an application may hold a lease
// of either key, so each is revoked only once no lease of it can still run.

// deleteDualWithLeases makes role r with a previous key (A) and a current
// key (B), a lease of each, and deletes the role. It returns the leases and
// the delete's retiring_keys.
func (e *env) deleteDualWithLeases() (a, b lease, retiring []map[string]any) {
	e.t.Helper()
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m", "ttl": "30m"})
	a = e.readCreds("r")
	e.clock.Advance(time.Minute)
	e.must(logical.UpdateOperation, "rotate-role/r", nil)
	b = e.readCreds("r")
	resp := e.must(logical.DeleteOperation, "roles/r", nil)
	if resp == nil {
		e.t.Fatal("deleting a dual role with live keys answered nothing; want retiring_keys")
	}
	retiring, _ = resp.Data["retiring_keys"].([]map[string]any)
	return a, b, retiring
}

// revokeAt is the revoke_at of key id in a retiring_keys list.
func revokeAt(t *testing.T, retiring []map[string]any, id string) time.Time {
	t.Helper()
	for _, k := range retiring {
		if k["key_id"] == id {
			at, err := time.Parse(time.RFC3339, k["revoke_at"].(string))
			if err != nil {
				t.Fatal(err)
			}
			return at
		}
	}
	t.Fatalf("key %s is not among the retiring keys %v", id, retiring)
	return time.Time{}
}

func (e *env) statusRetiring() []map[string]any {
	e.t.Helper()
	return e.must(logical.ReadOperation, "status", nil).Data["retiring_keys"].([]map[string]any)
}

func TestDeletedDualRoleKeysLiveUntilTheirLeasesEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.b.sched.start()
	a, b, retiring := e.deleteDualWithLeases()
	if a.keyID == b.keyID || len(retiring) != 2 {
		t.Fatalf("leases of %s and %s, retiring %v; want both keys retiring", a.keyID, b.keyID, retiring)
	}
	if st := e.keyState(a.keyID) + "/" + e.keyState(b.keyID); st != "live/live" {
		t.Fatalf("keys of a deleted dual role are %s at once; leases of them still run (invariant 2)", st)
	}
	atA, atB := revokeAt(t, retiring, a.keyID), revokeAt(t, retiring, b.keyID)
	if atA.Before(a.end) || atB.Before(b.end) {
		t.Fatalf("revoke times %s / %s before the leases' ends %s / %s", atA, atB, a.end, b.end)
	}
	if got := e.statusRetiring(); len(got) != 2 || got[0]["key_id"] != a.keyID {
		t.Fatalf("status retiring_keys = %v; want A then B", got)
	}
	if n := e.metricValue(`thirdparty_retiring_keys{state="waiting"}`); n != 2 {
		t.Fatalf(`thirdparty_retiring_keys{state="waiting"} = %v, want 2`, n)
	}
	if resp, _ := e.do(logical.ReadOperation, "roles/r", nil); resp != nil {
		t.Fatalf("the deleted role still reads: %v", resp.Data)
	}
	// Tidy counts them as accounted for, however short its buffer.
	e.tidy(map[string]any{"safety_buffer": 0})
	if st := e.keyState(a.keyID) + "/" + e.keyState(b.keyID); st != "live/live" {
		t.Fatalf("tidy left the retiring keys %s", st)
	}

	e.clock.Advance(atA.Sub(e.clock.Now()) - time.Second)
	e.settle()
	if st := e.keyState(a.keyID); st != demoserver.StateLive {
		t.Fatalf("key A is %s before its last lease could end", st)
	}
	e.clock.Advance(time.Second + revokeGrace)
	e.settle()
	e.wantRevoked(a.keyID, "key A is %s after its revoke time")
	if st := e.keyState(b.keyID); st != demoserver.StateLive {
		t.Fatalf("key B is %s before its last lease could end", st)
	}
	e.clock.Advance(atB.Sub(e.clock.Now()) + revokeGrace)
	e.settle()
	e.wantRetired(a, b, "after its revoke time")
	if n := e.metricValue(`thirdparty_keys_revoked_total{role="r"}`); n != 2 {
		t.Fatalf("keys_revoked_total = %v, want 2", n)
	}
}

// A revocation that fails is retried, across a restart, and the key is
// never dropped.
func TestRetiringKeyOutlivesAnOutageAndARestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.b.sched.start()
	a, b, retiring := e.deleteDualWithLeases()
	e.failDelete.Store(true)
	e.clock.Advance(revokeAt(t, retiring, b.keyID).Sub(e.clock.Now()) + revokeGrace)
	e.settle()
	if st := e.keyState(b.keyID); st != demoserver.StateLive {
		t.Fatalf("key B is %s while the provider refuses deletes", st)
	}
	var failed map[string]any
	for _, k := range e.statusRetiring() {
		if k["key_id"] == b.keyID {
			failed = k
		}
	}
	if msg, _ := failed["last_error"].(string); !strings.Contains(msg, "503") || failed["next_retry"] == "" {
		t.Fatalf("status shows the failed retirement as %v", failed)
	}
	// Both keys' revocations were due (A's before B's) and failed.
	if n := e.metricValue(`thirdparty_retiring_keys{state="failing"}`); n != 2 {
		t.Fatalf(`thirdparty_retiring_keys{state="failing"} = %v, want 2`, n)
	}
	if len(e.ledger()) != 2 {
		t.Fatalf("%d ledger entries after failed revocations, want 2", len(e.ledger()))
	}

	// A new active node (or a reload) finds them again.
	e.restart()
	if got := e.statusRetiring(); len(got) != 2 {
		t.Fatalf("after a restart status shows %d retiring keys, want 2", len(got))
	}
	e.failDelete.Store(false)
	e.clock.Advance(backoffMax)
	e.settle()
	e.wantRetired(a, b, "after the provider came back")
}

// The provider can be deleted once the role is: its config stays as a
// tombstone until the retiring keys are revoked with it.
func TestRetiringKeysKeepTheirProvidersTombstone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.b.sched.start()
	a, b, retiring := e.deleteDualWithLeases()
	e.must(logical.DeleteOperation, "providers/p", nil)
	tombs := e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)
	if len(tombs) != 1 || tombs[0]["keys_outstanding"] != 2 {
		t.Fatalf("status tombstones %v; want p with the 2 retiring keys", tombs)
	}
	e.clock.Advance(revokeAt(t, retiring, b.keyID).Sub(e.clock.Now()) + revokeGrace)
	e.settle()
	e.wantRetired(a, b, "retired through the tombstone")
}

// wantRetired checks that the deleted role's keys a and b are revoked and
// nothing is left of them: no ledger entry, no retiring key, no tombstone.
func (e *env) wantRetired(a, b lease, how string) {
	e.t.Helper()
	e.wantRevoked(a.keyID, "key A is %s: "+how)
	e.wantRevoked(b.keyID, "key B is %s: "+how)
	if l := e.ledger(); len(l) != 0 {
		e.t.Fatalf("%d ledger entries left", len(l))
	}
	st := e.must(logical.ReadOperation, "status", nil).Data
	if r, tombs := st["retiring_keys"].([]map[string]any), st["tombstones"].([]map[string]any); len(r) != 0 || len(tombs) != 0 {
		e.t.Fatalf("status after the keys were revoked: retiring_keys %v, tombstones %v", r, tombs)
	}
	if n := st["ledger_entries"].(map[string]any)["p"]; n != nil {
		e.t.Fatalf("status ledger_entries[p] = %v, want none", n)
	}
}

// revoke_keys=true is the old, deliberate behaviour: both keys now.
func TestDeleteDualRoleRevokeKeysNow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	a := e.readCreds("r")
	e.must(logical.UpdateOperation, "rotate-role/r", nil)
	b := e.readCreds("r")

	// Bad input first: nothing changes.
	e.dynamicRole("dyn")
	resp, err := e.do(logical.DeleteOperation, "roles/dyn", map[string]any{"revoke_keys": true})
	e.userError(resp, err, "revoke_keys")
	e.must(logical.ReadOperation, "roles/dyn", nil)
	resp, err = e.do(logical.UpdateOperation, "roles/r", map[string]any{"revoke_keys": true})
	e.userError(resp, err, "revoke_keys")

	if resp := e.must(logical.DeleteOperation, "roles/r", map[string]any{"revoke_keys": true}); resp != nil {
		t.Fatalf("delete with revoke_keys answered %v", resp.Data)
	}
	e.wantRetired(a, b, "after delete revoke_keys=true")
}

// A delete with revoke_keys=true of a role already deleted revokes at once
// the keys still waiting for their leases (a key found leaked, say).
func TestRevokeKeysOfAnAlreadyDeletedRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.b.sched.start()
	a, b, _ := e.deleteDualWithLeases()
	e.must(logical.DeleteOperation, "providers/p", nil)
	e.must(logical.DeleteOperation, "roles/r", map[string]any{"revoke_keys": true})
	e.wantRetired(a, b, "revoke_keys on the deleted role")
}

// Keys stored by v0.1.0 carry no incarnation: they belong to the
// provider's current one, and retire through it.
func TestDeletedDualRoleKeysOfV010Retire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.b.sched.start()
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	e.must(logical.UpdateOperation, "rotate-role/r", nil)
	st := e.state("r")
	st.Current.Incarnation, st.Previous.Incarnation = "", ""
	if err := putJSON(ctx, e.storage, roleKeysPrefix+"r", st); err != nil {
		t.Fatal(err)
	}
	e.b.cache.drop(roleKeysPrefix + "r")
	inc := e.storedProvider("p").Incarnation

	retiring := e.must(logical.DeleteOperation, "roles/r", nil).Data["retiring_keys"].([]map[string]any)
	for _, k := range retiring {
		if k["incarnation"] != inc {
			t.Fatalf("retiring key %v; want the provider's incarnation %s", k, inc)
		}
	}
	e.clock.Advance(revokeAt(t, retiring, st.Current.ID).Sub(e.clock.Now()) + revokeGrace)
	e.settle()
	e.wantRetired(lease{keyID: st.Previous.ID}, lease{keyID: st.Current.ID}, "a v0.1.0 key retired")
}
