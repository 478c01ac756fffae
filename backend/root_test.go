package backend

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// Invariant 7: root rotation never strands the plugin. A new root is
// created, verified, stored, and only then is the old one revoked.

func (e *env) statusProvider(name string) map[string]any {
	e.t.Helper()
	p, _ := e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)[name].(map[string]any)
	if p == nil {
		e.t.Fatalf("status has no provider %s", name)
	}
	return p
}

// extraRoot makes another admin key at provider's account with its own
// client, as a root rotation does before it stores the new root.
func (e *env) extraRoot(provider, name string) clients.Root {
	e.t.Helper()
	ctx := context.Background()
	pc, release, err := e.b.client(ctx, e.storage, provider)
	if err != nil {
		e.t.Fatal(err)
	}
	defer release()
	r, err := pc.api.CreateRoot(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) liveAdminIDs() []string {
	var ids []string
	for _, k := range e.adminKeys(demoserver.StateLive) {
		ids = append(ids, k.ID)
	}
	return ids
}

func TestRotateRootReplacesTheAdminKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	oldID := e.demo.AdminKeyID()
	if got := e.storedProvider("p").RootKeyID; got != oldID {
		t.Fatalf("root_key_id %q after create, want the admin key's id %q", got, oldID)
	}

	e.clock.Advance(time.Minute)
	resp := e.must(logical.UpdateOperation, "rotate-root/p", nil)
	newID, _ := resp.Data["root_key_id"].(string)
	if newID == "" || newID == oldID || resp.Data["previous_root_key_id"] != oldID {
		t.Fatalf("rotate-root response: %v", resp.Data)
	}
	for k, v := range resp.Data {
		if s, ok := v.(string); ok && strings.Contains(s, "demoadm_") {
			t.Fatalf("rotate-root returned a secret in %s", k)
		}
	}
	if len(resp.Warnings) != 0 {
		t.Fatalf("warnings on a clean rotation: %v", resp.Warnings)
	}

	stored := e.storedProvider("p")
	newKey := stored.Fields["admin_key"]
	if stored.RootKeyID != newID || newKey == "" || newKey == e.adminKey {
		t.Fatalf("stored root: id %s, a new key: %v", stored.RootKeyID, newKey != e.adminKey)
	}
	if code := e.whoami(e.adminKey); code != http.StatusUnauthorized {
		t.Fatalf("the old admin key still authenticates (%d)", code)
	}
	if code := e.whoami(newKey); code != http.StatusOK {
		t.Fatalf("the stored new admin key does not authenticate (%d)", code)
	}
	if ids := e.liveAdminIDs(); len(ids) != 1 || ids[0] != newID {
		t.Fatalf("live admin keys %v, want only %s", ids, newID)
	}
	creds := e.must(logical.ReadOperation, "creds/dyn", nil)
	if e.keyState(creds.Data["key_id"].(string)) != demoserver.StateLive {
		t.Fatal("creds issued after the rotation are not live")
	}
	read := e.must(logical.ReadOperation, "providers/p", nil).Data
	if read["root_key_id"] != newID || read["root_rotated_at"] != formatTime(e.clock.Now()) ||
		read["pending_root_revocations"] != 0 || read["last_root_rotation_error"] != "" {
		t.Fatalf("provider read after rotation: %v", read)
	}
	if n := e.metricValue(`thirdparty_rotations_total{kind="root",name="p",result="success"}`); n != 1 {
		t.Fatalf("%v successful root rotations counted, want 1", n)
	}
}

// Invariant 3 for roots: a new root that fails verification is discarded
// at the provider and the old one stays.
func TestRotateRootKeepsTheOldRootWhenTheNewOneFailsVerification(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	oldID := e.demo.AdminKeyID()

	e.rejectNewRoot.Store(true)
	resp, err := e.do(logical.UpdateOperation, "rotate-root/p", nil)
	if err == nil && (resp == nil || !resp.IsError()) {
		t.Fatalf("rotation with a root that fails verification succeeded: %v", resp)
	}
	e.rejectNewRoot.Store(false)
	stored := e.storedProvider("p")
	if stored.RootKeyID != oldID || stored.Fields["admin_key"] != e.adminKey || len(stored.PendingRootRevocations) != 0 {
		t.Fatalf("stored root changed: id %s pending %v", stored.RootKeyID, stored.PendingRootRevocations)
	}
	if code := e.whoami(e.adminKey); code != http.StatusOK {
		t.Fatalf("the old admin key no longer authenticates (%d)", code)
	}
	admins := e.adminKeys("")
	if len(admins) != 2 {
		t.Fatalf("%d admin keys, want the original and the rejected one", len(admins))
	}
	for _, k := range admins {
		if k.ID != oldID && k.State != demoserver.StateRevoked {
			t.Fatalf("the rejected new admin key %s is %s, want revoked", k.ID, k.State)
		}
	}
	e.wantNoWAL(" after the new root was discarded")
	e.must(logical.ReadOperation, "creds/dyn", nil)
	if n := e.metricValue(`thirdparty_rotations_total{kind="root",name="p",result="failure"}`); n != 1 {
		t.Fatalf("%v failed root rotations counted, want 1", n)
	}
}

// Revoking the old root fails: the rotation stands (the new root is
// stored), the old one is pending and the scheduler revokes it later.
func TestRotateRootRetriesTheOldRootsRevocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	oldID := e.demo.AdminKeyID()

	e.failDelete.Store(true)
	resp := e.must(logical.UpdateOperation, "rotate-root/p", nil)
	e.failDelete.Store(false)
	newID := resp.Data["root_key_id"].(string)
	if len(resp.Warnings) == 0 || !strings.Contains(strings.Join(resp.Warnings, " "), "revoking the old one failed") {
		t.Fatalf("no warning about the failed revocation: %v", resp.Warnings)
	}
	stored := e.storedProvider("p")
	if stored.RootKeyID != newID || stored.Fields["admin_key"] == e.adminKey {
		t.Fatal("the new root was not stored")
	}
	if len(stored.PendingRootRevocations) != 1 || stored.PendingRootRevocations[0] != oldID {
		t.Fatalf("pending root revocations %v, want [%s]", stored.PendingRootRevocations, oldID)
	}
	if ids := e.must(logical.ReadOperation, "providers/p", nil).Data["root_revocations"].([]string); !slices.Equal(ids, []string{oldID}) {
		t.Fatalf("provider read root_revocations %v, want [%s]", ids, oldID)
	}
	if n := e.must(logical.ReadOperation, "providers/p", nil).Data["pending_root_revocations"]; n != 1 {
		t.Fatalf("provider read shows %v pending root revocations, want 1", n)
	}
	if p := e.statusProvider("p"); p["pending_root_revocations"] != 1 || p["last_error"] == "" {
		t.Fatalf("status does not show the pending revocation: %v", p)
	}
	if code := e.whoami(stored.Fields["admin_key"]); code != http.StatusOK {
		t.Fatalf("the new root does not work (%d)", code)
	}

	e.b.sched.start()
	e.clock.Advance(2 * time.Second) // past the first retry (at most 1s)
	e.settle()
	stored = e.storedProvider("p")
	if len(stored.PendingRootRevocations) != 0 {
		t.Fatalf("pending root revocations %v after recovery", stored.PendingRootRevocations)
	}
	if code := e.whoami(e.adminKey); code != http.StatusUnauthorized {
		t.Fatalf("the old admin key still authenticates after the retry (%d)", code)
	}
	if ids := e.liveAdminIDs(); len(ids) != 1 || ids[0] != newID {
		t.Fatalf("live admin keys %v, want only %s", ids, newID)
	}
	if n := e.must(logical.ReadOperation, "providers/p", nil).Data["pending_root_revocations"]; n != 0 {
		t.Fatalf("provider read shows %v pending root revocations after recovery", n)
	}
	if st := e.must(logical.ReadOperation, "status", nil).Data; st["pending_revocations"] != 0 {
		t.Fatalf("status shows %v pending revocations after recovery", st["pending_revocations"])
	}
}

// At most two roots live: while the root replaced by the last rotation
// cannot be revoked, a manual rotation first retries its revocation and,
// when that fails again, is refused with a 400 before creating anything.
// Once it can be revoked, the rotation revokes it and goes ahead.
func TestRotateRootWaitsForTheOldRootsRevocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	oldID := e.demo.AdminKeyID()
	e.failDelete.Store(true)
	second := e.must(logical.UpdateOperation, "rotate-root/p", nil).Data["root_key_id"].(string)
	resp, err := e.do(logical.UpdateOperation, "rotate-root/p", nil)
	e.userError(resp, err, "not revoked yet")
	if ids := e.liveAdminIDs(); len(ids) != 2 {
		t.Fatalf("live admin keys %v after a refused rotation, want the old and the current one", ids)
	}
	if stored := e.storedProvider("p"); stored.RootKeyID != second || len(stored.PendingRootRevocations) != 1 {
		t.Fatalf("stored root %s pending %v, want %s with %s pending", stored.RootKeyID, stored.PendingRootRevocations, second, oldID)
	}
	e.wantNoWAL(" after a refused rotation")

	e.failDelete.Store(false)
	third := e.must(logical.UpdateOperation, "rotate-root/p", nil).Data["root_key_id"].(string)
	if ids := e.liveAdminIDs(); len(ids) != 1 || ids[0] != third {
		t.Fatalf("live admin keys %v, want only %s", ids, third)
	}
}

// Once the pending revocation succeeds, nothing is failing any more: the
// error must not stay on status and the failing gauge.
func TestRootErrorClearsOnceTheOldRootIsRevoked(t *testing.T) {

	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.failDelete.Store(true)
	e.must(logical.UpdateOperation, "rotate-root/p", nil)
	e.failDelete.Store(false)
	e.b.sched.start()
	e.clock.Advance(2 * time.Second)
	e.settle()
	if n := len(e.storedProvider("p").PendingRootRevocations); n != 0 {
		t.Fatalf("%d pending root revocations after recovery", n)
	}
	if msg := e.must(logical.ReadOperation, "providers/p", nil).Data["last_root_rotation_error"]; msg != "" {
		t.Fatalf("last_root_rotation_error %q after the old root was revoked", msg)
	}
	if v := e.metricValue(`thirdparty_rotation_failing{kind="root",name="p"}`); v != 0 {
		t.Fatalf("thirdparty_rotation_failing is %v after the old root was revoked", v)
	}
}

// The root WAL: a verified new root whose write fails is discarded by
// rollback with the old root (and kept for a retry while the provider is
// down); a new root that was stored is never discarded.
func TestRootWALRollback(t *testing.T) {
	t.Parallel()
	t.Run("new root never stored", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.provider("p")
		e.dynamicRole("dyn")
		oldID := e.demo.AdminKeyID()
		e.storage.failPuts(providerPrefix, 1)
		if resp, err := e.do(logical.UpdateOperation, "rotate-root/p", nil); err == nil && (resp == nil || !resp.IsError()) {
			t.Fatalf("rotation succeeded although storing the new root failed: %v", resp)
		}
		stored := e.storedProvider("p")
		if stored.RootKeyID != oldID || stored.Fields["admin_key"] != e.adminKey {
			t.Fatal("the stored root changed")
		}
		var created string
		for _, id := range e.liveAdminIDs() {
			if id != oldID {
				created = id
			}
		}
		if created == "" {
			t.Fatal("no unstored admin key is live: the test does not exercise rollback")
		}
		if wal := e.walEntries(); len(wal) != 1 || wal[0]["root_id"] != created {
			t.Fatalf("WAL %v, want one entry naming %s", wal, created)
		}

		e.failDelete.Store(true)
		if resp := e.rollbackResp(); resp == nil || !resp.IsError() || e.walCount() != 1 {
			t.Fatalf("rollback with the provider down: %v, %d WAL entries; want an error and the entry kept", resp, e.walCount())
		}
		e.failDelete.Store(false)
		e.rollback()
		if ids := e.liveAdminIDs(); len(ids) != 1 || ids[0] != oldID {
			t.Fatalf("live admin keys after rollback %v, want only the stored %s", ids, oldID)
		}
		if code := e.whoami(e.adminKey); code != http.StatusOK {
			t.Fatalf("the stored root no longer works (%d)", code)
		}
		e.wantNoWAL("")
		e.must(logical.ReadOperation, "creds/dyn", nil)
	})
	t.Run("new root stored, WAL delete failed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.provider("p")
		e.dynamicRole("dyn")
		e.storage.failDeletes("wal/", -1)
		newID := e.must(logical.UpdateOperation, "rotate-root/p", nil).Data["root_key_id"].(string)
		e.storage.failDeletes("wal/", 0)
		if n := e.walCount(); n == 0 {
			t.Fatal("no WAL entry left: the test does not exercise rollback")
		}
		e.rollback()
		stored := e.storedProvider("p")
		if stored.RootKeyID != newID {
			t.Fatalf("stored root %s, want %s", stored.RootKeyID, newID)
		}
		if ids := e.liveAdminIDs(); len(ids) != 1 || ids[0] != newID {
			t.Fatalf("live admin keys %v after rollback, want the stored %s", ids, newID)
		}
		if code := e.whoami(stored.Fields["admin_key"]); code != http.StatusOK {
			t.Fatalf("rollback discarded the stored root (%d)", code)
		}
		e.wantNoWAL("")
		e.must(logical.ReadOperation, "creds/dyn", nil)
	})
}

// rotation_period on a provider rotates its root on the scheduler; every
// replaced root is revoked.
func TestScheduledRootRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(logical.CreateOperation, "providers/p", map[string]any{
		"type": "demo", "base_url": e.srv.URL, "admin_key": e.adminKey, "rotation_period": "10s"})
	e.dynamicRole("dyn")
	e.b.sched.start()
	for i := 0; i < 35; i++ {
		e.clock.Advance(time.Second)
		e.settle()
	}
	n := e.metricValue(`thirdparty_rotations_total{kind="root",name="p",result="success"}`)
	if n < 3 {
		t.Fatalf("%v root rotations in 35s at a 10s period, want at least 3", n)
	}
	stored := e.storedProvider("p")
	if ids := e.liveAdminIDs(); len(ids) != 1 || ids[0] != stored.RootKeyID {
		t.Fatalf("live admin keys %v, want only the stored %s", ids, stored.RootKeyID)
	}
	if total := len(e.adminKeys("")); float64(total) != n+1 {
		t.Fatalf("%d admin keys ever, want %v (the original plus one per rotation)", total, n+1)
	}
	if code := e.whoami(stored.Fields["admin_key"]); code != http.StatusOK {
		t.Fatalf("the stored root does not work (%d)", code)
	}
	read := e.must(logical.ReadOperation, "providers/p", nil).Data
	if want := formatTime(stored.RootRotatedAt.Add(10 * time.Second)); read["next_root_rotation"] != want {
		t.Fatalf("next_root_rotation %v, want %s", read["next_root_rotation"], want)
	}
	e.must(logical.ReadOperation, "creds/dyn", nil)
}

// Roll-style providers: the old root dies as the new one is created, so the
// new one is stored before anything else, the write is retried, and a root
// that could not be stored is reported loudly (never with its value).
func TestRollStyleRootRotation(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*env, *memServer) {
		e := newEnv(t)
		ms := newMemServer(t)
		e.must(logical.CreateOperation, "providers/m", map[string]any{"type": rollType, "base_url": ms.url, "root_token": ms.root})
		e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "m", "mode": "dynamic"})
		return e, ms
	}
	check := func(e *env, ms *memServer, resp *logical.Response) {
		e.t.Helper()
		id, secret := ms.currentRoot()
		if resp.Data["root_key_id"] != id || id == "root_0" {
			e.t.Fatalf("rotate-root answered %v, the provider's root is %s", resp.Data, id)
		}
		if stored := e.storedProvider("m"); stored.RootKeyID != id || stored.Fields["root_token"] != secret {
			e.t.Fatal("the stored root is not the provider's current root")
		}
		e.must(logical.ReadOperation, "creds/dyn", nil)
		if ms.liveKeys() != 1 {
			e.t.Fatal("creds did not create a key with the new root")
		}
	}

	t.Run("stores the new root", func(t *testing.T) {
		t.Parallel()
		e, ms := setup(t)
		check(e, ms, e.must(logical.UpdateOperation, "rotate-root/m", nil))
	})
	t.Run("retries a failed write", func(t *testing.T) {
		t.Parallel()
		e, ms := setup(t)
		e.storage.failPuts(providerPrefix, 1)
		check(e, ms, e.must(logical.UpdateOperation, "rotate-root/m", nil))
	})
	t.Run("says when the root is lost", func(t *testing.T) {
		t.Parallel()
		e, ms := setup(t)
		e.storage.failPuts(providerPrefix, -1)
		resp, err := e.do(logical.UpdateOperation, "rotate-root/m", nil)
		if err == nil {
			t.Fatalf("rotate-root succeeded although the new root could not be stored: %v", resp)
		}
		_, secret := ms.currentRoot()
		if !strings.Contains(err.Error(), "rolled") || !strings.Contains(err.Error(), "storing it failed") {
			t.Fatalf("the error does not say the rolled root was not stored: %v", err)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "ROOT CREDENTIAL LOST") {
			t.Fatalf("no log line says the root was lost:\n%s", logs)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(logs, secret) {
			t.Fatal("the lost root's value is in the error or the log")
		}
	})
}

// rotate-root on a provider whose type cannot rotate its root is refused.
func TestRotateRootOnAProviderThatCannotRotate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ms := newMemServer(t)
	e.must(logical.CreateOperation, "providers/nr", map[string]any{"type": noRotateType, "base_url": ms.url, "root_token": ms.root})
	resp, err := e.do(logical.UpdateOperation, "rotate-root/nr", nil)
	e.userError(resp, err, "cannot rotate")
	if id, secret := ms.currentRoot(); id != "root_0" || e.storedProvider("nr").Fields["root_token"] != secret {
		t.Fatal("the root changed")
	}
	// status says so, and says the opposite for a type that can.
	e.provider("p")
	providers := e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)
	if got := providers["nr"].(map[string]any)["root_rotation"]; got != "unsupported" {
		t.Fatalf("status root_rotation of nr = %v, want unsupported", got)
	}
	if got := providers["p"].(map[string]any)["root_rotation"]; got != "supported" {
		t.Fatalf("status root_rotation of p = %v, want supported", got)
	}
}

// The dual-role analog: a previous key whose revocation failed is revoked
// on the retry; then the role is next due at its rotation, not at the
// retry time already past (which would make the scheduler run the job
// again at once, in a loop, until the rotation is due), and the resolved
// error is cleared.
func TestRetriedPreviousKeyRevocationSettles(t *testing.T) {

	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	e.clock.Advance(30 * time.Minute)
	e.must(logical.UpdateOperation, "rotate-role/r", nil)
	st := e.state("r")
	prev := st.Previous.ID

	e.failDelete.Store(true)
	e.clock.Advance(st.Previous.RetireAt.Sub(e.clock.Now()) + 2*time.Second)
	e.b.roleJob(context.Background(), "r")
	e.failDelete.Store(false)
	st = e.state("r")
	if st.Previous == nil || st.LastError == "" || !st.NextRetry.After(e.clock.Now()) {
		t.Fatalf("after a failed revocation: previous %v, last error %q, next retry %s", st.Previous, st.LastError, st.NextRetry)
	}

	e.clock.Advance(st.NextRetry.Sub(e.clock.Now()) + time.Second)
	next := e.b.roleJob(context.Background(), "r")
	st = e.state("r")
	if e.keyState(prev) != demoserver.StateRevoked || st.Previous != nil {
		t.Fatalf("the retry did not revoke the previous key (%s)", e.keyState(prev))
	}
	if !next.After(e.clock.Now()) {
		t.Fatalf("the role is next due at %s, not after now (%s): the scheduler would run it again at once, forever", next, e.clock.Now())
	}
	if !next.Equal(st.NextRotation) {
		t.Fatalf("the role is next due at %s, want its next rotation %s", next, st.NextRotation)
	}
	if st.LastError != "" {
		t.Fatalf("last_rotation_error %q after the failed step succeeded", st.LastError)
	}
}
