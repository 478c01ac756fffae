package backend

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// orphanByName makes creds/dyn create a key whose id never reaches the
// WAL (the second WAL write fails) while the inline revoke fails too, and
// returns that key.
func (e *env) orphanByName() demoserver.KeyInfo {
	e.t.Helper()
	e.failPutsAfter("wal/", 1, 1) // the entry before the create is written; the one naming the id is not
	e.failDelete.Store(true)
	resp, err := e.do(logical.ReadOperation, "creds/dyn", nil)
	e.failDelete.Store(false)
	e.failPutsAfter("wal/", 0, 0)
	if err == nil {
		e.t.Fatalf("creds succeeded although the WAL entry naming the key was never written: %v", resp)
	}
	live := e.keys(demoserver.StateLive)
	if len(live) != 1 {
		e.t.Fatalf("%d live keys after the failed creds read, want the 1 orphan", len(live))
	}
	wal := e.walEntries()
	if len(wal) != 1 || wal[0]["key_id"] != "" || wal[0]["name"] != live[0].Name {
		e.t.Fatalf("WAL after the failed creds read: %v, want one entry naming %q without an id", wal, live[0].Name)
	}
	return live[0]
}

// The create reached the provider but the lease was never returned, and
// the key's id was never recorded: rollback finds it by name.
func TestRollbackRevokesAnUnleasedDynamicKeyByName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	orphan := e.orphanByName()

	e.rollback()
	e.wantRevoked(orphan.ID, "the orphaned key is %s after rollback, want revoked")
	e.wantNoWAL(" after rollback")
}

// The WAL entry names the key's id, but deleting it failed, and so did the
// inline revoke: rollback revokes the key by its id (listing by name is
// down, so only the recorded id can find it).
func TestRollbackRevokesAnUnleasedDynamicKeyByID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")

	e.failDeletesAfter("wal/", 1, 1) // the name-only entry goes; the one naming the id stays
	e.failDelete.Store(true)
	if resp, err := e.do(logical.ReadOperation, "creds/dyn", nil); err == nil {
		t.Fatalf("creds succeeded although its WAL entry could not be deleted: %v", resp)
	}
	e.failDelete.Store(false)
	e.failDeletesAfter("wal/", 0, 0)
	live := e.keys(demoserver.StateLive)
	if len(live) != 1 {
		t.Fatalf("%d live keys, want the 1 orphan", len(live))
	}
	if wal := e.walEntries(); len(wal) != 1 || wal[0]["key_id"] != live[0].ID {
		t.Fatalf("WAL: %v, want one entry naming key %s", wal, live[0].ID)
	}

	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/keys" {
			http.Error(w, `{"error":{"code":"unavailable","message":"list is down"}}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	e.rollback()
	e.wantRevoked(live[0].ID, "the orphaned key is %s after rollback, want revoked")
	e.wantNoWAL(" after rollback")
}

// A creds read that succeeded must not leave a WAL entry that makes
// rollback revoke the leased key later, even when deleting the entry
// written before the create failed.
func TestRollbackNeverRevokesALeasedDynamicKey(t *testing.T) {

	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")

	e.failDeletesAfter("wal/", 0, 1) // the name-only entry's delete fails
	resp, err := e.do(logical.ReadOperation, "creds/dyn", nil)
	e.failDeletesAfter("wal/", 0, 0)
	if err != nil || resp == nil || resp.IsError() {
		// Failing the read is a correct answer too, if the key is gone.
		if n := len(e.keys(demoserver.StateLive)); n != 0 {
			t.Fatalf("creds failed (%v %v) and left %d live keys", resp, err, n)
		}
		return
	}
	id := resp.Data["key_id"].(string)
	e.rollback()
	if st := e.keyState(id); st != demoserver.StateLive {
		t.Fatalf("rollback revoked key %s, which a lease still holds (state %s)", id, st)
	}
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
// retries it on the next pass; it drops one whose provider no longer
// exists, since nothing can reach that key any more (it expires at the
// provider).
func TestRollbackRetriesOrDropsEntriesItCannotSettle(t *testing.T) {
	t.Parallel()
	unavailable := func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			http.Error(w, `{"error":{"code":"unavailable","message":"down"}}`, http.StatusServiceUnavailable)
			return true
		}
		return false
	}
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

	t.Run("dynamic key, provider answers 503", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.provider("p")
		e.dynamicRole("dyn")
		orphan := e.orphanByName()
		e.setIntercept(unavailable) // listing by name fails
		kept(e, orphan.ID)
		e.setIntercept(nil)
		e.failDelete.Store(true) // listing works, the revoke fails
		kept(e, orphan.ID)
		e.failDelete.Store(false)
		e.rollback()
		e.wantRevoked(orphan.ID, "orphan is %s after the provider recovered")
		e.wantNoWAL("")
	})

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

	t.Run("provider deleted", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.provider("p")
		e.dynamicRole("dyn")
		orphan := e.orphanByName()
		e.must(logical.DeleteOperation, "roles/dyn", nil)
		e.must(logical.DeleteOperation, "providers/p", nil)
		e.rollback()
		e.wantNoWAL(" for a provider that no longer exists")
		if !strings.Contains(e.logs.String(), "provider no longer exists") {
			t.Fatal("rollback dropped the entry without a word in the log")
		}
		// Nothing can revoke it now; it must expire on its own.
		if orphan.ExpiresAt.IsZero() || orphan.ExpiresAt.After(e.clock.Now().Add(24*time.Hour)) {
			t.Fatalf("the orphan expires at %s, want within the mount's max TTL", orphan.ExpiresAt)
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

// readWithLostCreate reads creds/<role> while the provider creates the key
// but its answer is lost (a 502 after the fact); the read must fail.
func (e *env) readWithLostCreate(role string) {
	e.t.Helper()
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/keys" {
			e.demo.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(w, `{"error":{"code":"bad_gateway","message":"upstream reset"}}`, http.StatusBadGateway)
			return true
		}
		return false
	})
	defer e.setIntercept(nil)
	if _, err := e.do(logical.ReadOperation, "creds/"+role, nil); err == nil {
		e.t.Fatal("creds succeeded although the create's answer was lost")
	}
}

// The provider created the key but its answer was lost (a 502 after the
// fact): the HTTP layer does not send the create again (a second key would
// be recorded nowhere), the read fails, and rollback revokes the key
// created under the WAL entry's name.
func TestRollbackRevokesTheKeyOfALostCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	e.readWithLostCreate("dyn")
	created := e.keys(demoserver.StateLive)
	if len(created) != 1 || e.walCount() != 1 {
		t.Fatalf("%d keys created and %d WAL entries, want the one key of the lost create (not repeated) and its entry", len(created), e.walCount())
	}
	e.rollback()
	if live := e.keys(demoserver.StateLive); len(live) != 0 {
		t.Fatalf("%d of the %d keys created by the lost create are still live after rollback", len(live), len(created))
	}
	e.wantNoWAL("")
}

// With a name_template that can repeat a name, rollback must not revoke by
// name: a leased key with the same name would go too. The write warns, the
// lost create's key is left (to expire), and the leased key stays live.
func TestRollbackNeverRevokesByARepeatableName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	resp := e.must(logical.CreateOperation, "roles/fixed", map[string]any{"provider": "p", "mode": "dynamic", "name_template": "app-{{.RoleName}}"})
	if resp == nil || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "name_template") {
		t.Fatalf("writing a role whose key names repeat: %v, want a warning about name_template", resp)
	}
	if resp := e.must(logical.CreateOperation, "roles/uniq", map[string]any{"provider": "p", "mode": "dynamic", "name_template": "app-{{random 8}}"}); resp != nil && len(resp.Warnings) > 0 {
		t.Fatalf("a template with {{random}} was warned about: %v", resp.Warnings)
	}

	leased := e.must(logical.ReadOperation, "creds/fixed", nil).Data["key_id"].(string)
	e.readWithLostCreate("fixed")
	if live := e.keys(demoserver.StateLive); len(live) != 2 || live[0].Name != live[1].Name {
		t.Fatalf("want the leased key and the lost create's key, both named alike; live: %v", live)
	}
	e.rollback()
	if st := e.keyState(leased); st != demoserver.StateLive {
		t.Fatalf("rollback of a lost create revoked the leased key %s that shares its name (now %s)", leased, st)
	}
	e.wantNoWAL("; the entry is dropped once rollback has given up on it")
	if !strings.Contains(e.logs.String(), "does not make names unique") {
		t.Error("rollback did not log why it left the key")
	}
}

// A create answered with a redirect to another host: the HTTP layer
// follows no redirect, so the target gets nothing, and the read fails with
// the status. The origin may have created the key before redirecting, so
// the WAL entry stays and rollback revokes what it made.
func TestRedirectedCreateKeepsTheWAL(t *testing.T) {
	t.Parallel()
	var away atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { away.Add(1) }))
	defer target.Close()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/keys" {
			e.demo.ServeHTTP(httptest.NewRecorder(), r)
			w.Header().Set("Location", target.URL+"/v1/keys")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	_, err := e.do(logical.ReadOperation, "creds/dyn", nil)
	e.setIntercept(nil)
	if err == nil || !strings.Contains(err.Error(), "HTTP 307") {
		t.Fatalf("creds after a redirected create: error %v, want one naming HTTP 307", err)
	}
	if n := away.Load(); n != 0 {
		t.Fatalf("the redirect target received %d requests", n)
	}
	if created := e.keys(demoserver.StateLive); len(created) != 1 || e.walCount() != 1 {
		t.Fatalf("%d keys created and %d WAL entries, want the origin's key and its entry", len(created), e.walCount())
	}
	e.rollback()
	if live := e.keys(demoserver.StateLive); len(live) != 0 {
		t.Fatalf("%d keys live after rollback", len(live))
	}
	e.wantNoWAL("")
}
