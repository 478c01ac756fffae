package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// Invariant 4: a WAL entry is written before any provider create and names
// the key as soon as it is known; rollback revokes whatever was created but
// never recorded, and never a key that was.

func (e *env) dynamicRole(name string) {
	e.t.Helper()
	e.must(logical.CreateOperation, "roles/"+name, map[string]any{"provider": "p", "mode": "dynamic"})
}

// A dual rotation whose state write fails: the new key is live at the
// provider but not recorded; rollback revokes it and the current key stays.
func TestRollbackRevokesARotatedKeyThatWasNeverStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	before := e.state("r").Current.ID

	e.storage.failPuts("config/keys/", 1)
	if resp, err := e.do(logical.UpdateOperation, "rotate-role/r", nil); err == nil && (resp == nil || !resp.IsError()) {
		t.Fatalf("rotation succeeded although its state write failed: %v", resp)
	}
	if st := e.state("r"); st.Current.ID != before || st.Previous != nil {
		t.Fatalf("stored state changed: current %s previous %v", st.Current.ID, st.Previous)
	}
	var created string
	for _, k := range e.keys(demoserver.StateLive) {
		if k.ID != before {
			created = k.ID
		}
	}
	if created == "" {
		t.Fatal("no new key was created: the test does not exercise rollback")
	}
	if wal := e.walEntries(); len(wal) != 1 || wal[0]["key_id"] != created || wal[0]["purpose"] != purposeDual {
		t.Fatalf("WAL: %v, want one dual entry naming %s", wal, created)
	}

	e.rollback()
	e.wantRevoked(created, "the unrecorded key is %s after rollback, want revoked")
	if live := e.keys(demoserver.StateLive); len(live) != 1 || live[0].ID != before {
		t.Fatalf("live keys after rollback: %v, want only the current %s", live, before)
	}
	if st := e.state("r"); st.Current.ID != before {
		t.Fatalf("current key changed to %s", st.Current.ID)
	}
	e.wantNoWAL(" after rollback")
	if l := e.readCreds("r"); l.keyID != before {
		t.Fatalf("creds hand out %s, want %s", l.keyID, before)
	}
}

// The same failure in a scheduled rotation: whatever the backend ends up
// recording, after rollback every live key is recorded, the recorded
// current key is live, and no WAL entry is left.
func TestScheduledRotationWithAFailedStateWriteLeavesNoOrphan(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "10s", "overlap": "5s"})
	e.clock.Advance(10 * time.Second)
	e.storage.failPuts("config/keys/", 1)
	e.b.roleJob(context.Background(), "r")
	if n := len(e.keys("")); n != 2 {
		t.Fatalf("%d keys created, want 2: the rotation did not reach the provider", n)
	}

	e.rollback()
	st := e.state("r")
	recorded := map[string]bool{st.Current.ID: true}
	if st.Previous != nil {
		recorded[st.Previous.ID] = true
	}
	for _, k := range e.keys(demoserver.StateLive) {
		if !recorded[k.ID] {
			t.Fatalf("key %s is live but recorded nowhere (current %s)", k.ID, st.Current.ID)
		}
	}
	if e.keyState(st.Current.ID) != demoserver.StateLive {
		t.Fatalf("the recorded current key %s is %s", st.Current.ID, e.keyState(st.Current.ID))
	}
	e.wantNoWAL(" after rollback")
}

// Everything was stored but the WAL entries could not be deleted: rollback
// must not revoke the recorded keys.
func TestRollbackKeepsRecordedKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.storage.failDeletes("wal/", -1)
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	first := e.state("r").Current.ID
	second := e.must(logical.UpdateOperation, "rotate-role/r", nil).Data["key_id"].(string)
	e.storage.failDeletes("wal/", 0)
	if n := e.walCount(); n < 2 {
		t.Fatalf("%d WAL entries left, want those of both keys: the test does not exercise rollback", n)
	}

	e.rollback()
	st := e.state("r")
	if st.Current.ID != second || st.Previous == nil || st.Previous.ID != first {
		t.Fatalf("state after rollback: current %s previous %v, want %s and %s", st.Current.ID, st.Previous, second, first)
	}
	for _, id := range []string{first, second} {
		if s := e.keyState(id); s != demoserver.StateLive {
			t.Fatalf("rollback revoked recorded key %s (%s)", id, s)
		}
	}
	e.wantNoWAL(" after rollback")
	if l := e.readCreds("r"); l.keyID != second {
		t.Fatalf("creds hand out %s, want %s", l.keyID, second)
	}
}

// A dual role's first key is created on role create; if the role cannot
// be stored, nothing is, and rollback revokes the key.
func TestRollbackRevokesTheFirstKeyOfARoleNeverStored(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{rolePrefix, roleKeysPrefix} {
		t.Run(strings.TrimSuffix(prefix, "/"), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.provider("p")
			e.storage.failPuts(prefix, 1)
			data := map[string]any{"provider": "p", "mode": "dual", "rotation_period": "1h", "overlap": "10m"}
			if resp, err := e.do(logical.CreateOperation, "roles/r", data); err == nil && (resp == nil || !resp.IsError()) {
				t.Fatalf("role create succeeded although a write failed: %v", resp)
			}
			if r, err := getRole(context.Background(), e.storage, "r"); r != nil || err != nil {
				t.Fatalf("role stored after a failed create: %v %v", r, err)
			}
			if st, err := getDualState(context.Background(), e.storage, "r"); st != nil || err != nil {
				t.Fatalf("role keys stored after a failed create: %v %v", st, err)
			}
			live := e.keys(demoserver.StateLive)
			if len(live) != 1 || e.walCount() != 1 {
				t.Fatalf("%d live keys and %d WAL entries, want the unrecorded key and its entry", len(live), e.walCount())
			}

			e.rollback()
			e.wantRevoked(live[0].ID, "the unrecorded first key is %s after rollback, want revoked")
			e.wantNoWAL(" after rollback")
			e.dualRole("r", nil) // and the name is free again
		})
	}
	t.Run("stored, WAL delete failed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.provider("p")
		e.storage.failDeletes("wal/", -1)
		e.dualRole("r", nil)
		e.storage.failDeletes("wal/", 0)
		cur := e.state("r").Current.ID
		e.rollback()
		if st := e.keyState(cur); st != demoserver.StateLive {
			t.Fatalf("rollback revoked the role's stored first key (%s)", st)
		}
		e.wantNoWAL(" after rollback")
	})
}

// Rollback keeps an entry it cannot settle (the provider answers 503) and
// retries it on the next pass.
func TestRollbackRetriesEntriesItCannotSettle(t *testing.T) {
	t.Parallel()
	kept := func(e *env, id string) {
		e.t.Helper()
		resp := e.rollbackResp()
		if resp == nil || !resp.IsError() {
			e.t.Fatalf("rollback reported success while the provider was down: %v", resp)
		}
		if n := e.walCount(); n != 1 {
			e.t.Fatalf("%d WAL entries after a failed rollback, want the entry kept for a retry", n)
		}
		if st := e.keyState(id); st != demoserver.StateLive {
			e.t.Fatalf("key %s is %s after a failed rollback", id, st)
		}
	}

	t.Run("dual key, provider answers 503", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.provider("p")
		e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
		cur := e.state("r").Current.ID
		e.storage.failPuts("config/keys/", 1)
		if _, err := e.do(logical.UpdateOperation, "rotate-role/r", nil); err == nil {
			t.Fatal("rotation succeeded although its state write failed")
		}
		var created string
		for _, k := range e.keys(demoserver.StateLive) {
			if k.ID != cur {
				created = k.ID
			}
		}
		e.failDelete.Store(true)
		kept(e, created)
		e.failDelete.Store(false)
		e.rollback()
		e.wantRevoked(created, "unrecorded key is %s after the provider recovered")
		if st := e.keyState(cur); st != demoserver.StateLive {
			t.Fatalf("current key is %s", st)
		}
	})
}

// Invariants 3 and 4 together: a new key fails verification and revoking
// it fails too; its WAL entry stays and rollback revokes it.
func TestRollbackRevokesAnUnverifiedKeyThatCouldNotBeRevoked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	cur := e.state("r").Current.ID
	e.rejectVerify.Store(true)
	e.failDelete.Store(true)
	if _, err := e.do(logical.UpdateOperation, "rotate-role/r", nil); err == nil {
		t.Fatal("rotation with a key that fails verification succeeded")
	}
	e.rejectVerify.Store(false)
	e.failDelete.Store(false)
	if n := len(e.keys(demoserver.StateLive)); n != 2 || e.walCount() != 1 {
		t.Fatalf("%d live keys and %d WAL entries, want the unverified key and its entry", n, e.walCount())
	}
	e.rollback()
	if live := e.keys(demoserver.StateLive); len(live) != 1 || live[0].ID != cur {
		t.Fatalf("live keys after rollback: %v, want only the current %s", live, cur)
	}
	e.wantNoWAL("")
}
