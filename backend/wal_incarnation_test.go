package backend

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// strandedKeyWAL creates a key at provider p's account as a rotation of
// role d would, and leaves the WAL entry that names it, as a rotation cut
// short (or a discard that failed) does.
func (e *env) strandedKeyWAL() (keyID string) {
	e.t.Helper()
	k := e.createKey("p", "vault-"+e.marker()+"-d-stranded")
	w := &walKey{Provider: "p", Incarnation: e.storedProvider("p").Incarnation, Role: "d", Name: k.Name, KeyID: k.ID, Purpose: purposeDual, UniqueName: true}
	if _, err := framework.PutWAL(context.Background(), e.storage, walKindKey, w); err != nil {
		e.t.Fatal(err)
	}
	return k.ID
}

func (e *env) tombstone(inc string) map[string]any {
	e.t.Helper()
	resp, err := e.do(logical.ReadOperation, "tombstones/p/"+inc, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp == nil {
		return nil
	}
	return resp.Data
}

// A WAL entry naming a key at a provider's account keeps that provider's
// config as a tombstone when the provider is deleted; rollback revokes the
// key with it, and the next rollback pass removes the tombstone. Before,
// rollback found no provider and dropped the entry: the key stayed live.
func TestRollbackRevokesThroughTheDeletedProvidersTombstone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	inc := e.storedProvider("p").Incarnation
	id := e.strandedKeyWAL()

	// The answer names the tombstone; nothing is left live, so no warning.
	if resp := e.must(logical.DeleteOperation, "providers/p", nil); resp == nil || resp.Data["tombstone"] != "p/"+inc || len(resp.Warnings) != 0 {
		t.Fatalf("delete answered %v; want the tombstone p/%s and no warning", resp, inc)
	}
	if tomb := e.tombstone(inc); tomb == nil || tomb["wal_entries"] != 1 {
		t.Fatalf("tombstone p/%s: %v; want one holding 1 WAL entry", inc, tomb)
	}
	e.rollback()
	e.wantRevoked(id, "the stranded key is %s after rollback, want revoked")
	e.wantNoWAL(" after rollback")
	e.rollback() // the next pass removes the tombstone
	if tomb := e.tombstone(inc); tomb != nil {
		t.Fatalf("tombstone p/%s still there after the pass following the rollback: %v", inc, tomb)
	}
	if n := len(e.statusTombstones()); n != 0 {
		t.Fatalf("status shows %d tombstones, want none", n)
	}
}

// The same for a root a rotation created and never stored.
func TestRollbackDiscardsARootOfTheDeletedProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.provider("p")
	inc := e.storedProvider("p").Incarnation
	root := e.extraRoot("p", "vault-root-p-stranded")
	if _, err := framework.PutWAL(ctx, e.storage, walKindRoot, &walRoot{Provider: "p", Incarnation: inc, Name: "vault-root-p-stranded", RootID: root.ID}); err != nil {
		t.Fatal(err)
	}

	e.must(logical.DeleteOperation, "providers/p", nil)
	if tomb := e.tombstone(inc); tomb == nil || tomb["wal_entries"] != 1 {
		t.Fatalf("tombstone p/%s: %v; want one holding 1 WAL entry", inc, tomb)
	}
	e.rollback()
	if slices.Contains(e.liveAdminIDs(), root.ID) {
		t.Fatalf("the stranded root %s is still live after rollback", root.ID)
	}
	if code := e.whoami(e.adminKey); code != http.StatusOK {
		t.Fatalf("rollback touched the deleted provider's own root (%d)", code)
	}
	e.rollback()
	if tomb := e.tombstone(inc); tomb != nil {
		t.Fatalf("tombstone p/%s still there after the pass following the rollback: %v", inc, tomb)
	}
}

// A provider deleted and created again for another account: the old
// incarnation's WAL entry is rolled back at the old account, and the new
// one receives nothing. Before, rollback sent the revocation to the new
// account and the key stayed live at the old one.
func TestRollbackUsesTheIncarnationThatCreatedTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	id := e.strandedKeyWAL()
	e.must(logical.DeleteOperation, "providers/p", nil)
	otherAdmin := demoserver.NewAdminKey()
	other, calls := countingServer(t, demoserver.New(demoserver.Options{AdminKey: otherAdmin}))
	e.must(logical.CreateOperation, "providers/p", map[string]any{"type": "demo", "base_url": other.URL, "admin_key": otherAdmin})
	before := calls.Load()

	e.rollback()
	e.wantRevoked(id, "the key at the old account is %s after rollback, want revoked")
	if n := calls.Load() - before; n != 0 {
		t.Fatalf("the new account received %d requests from the rollback, want 0", n)
	}
}

// An update pointing a provider at another account is refused while a WAL
// entry names a key whose creation rollback has yet to settle there.
func TestAccountSwitchIsRefusedWhileAWALEntryNamesAKeyThere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.strandedKeyWAL()
	other, _ := countingServer(t, demoserver.New(demoserver.Options{AdminKey: e.adminKey}))
	resp, err := e.do(logical.UpdateOperation, "providers/p", map[string]any{"base_url": other.URL, "admin_key": e.adminKey})
	e.userError(resp, err, "WAL entries")
	e.userError(resp, err, "base_url")
	if got := e.storedProvider("p").BaseURL; got != e.srv.URL {
		t.Fatalf("base_url stored %s after the refusal, want %s", got, e.srv.URL)
	}
	e.rollback()
	e.must(logical.UpdateOperation, "providers/p", map[string]any{"base_url": other.URL, "admin_key": e.adminKey})
}

// Through the real rotation paths: a rotation whose new key (or root)
// failed verification and could not be discarded leaves its WAL entry; the
// role and the provider are deleted; rollback still revokes it at the
// deleted provider's account.
func TestRotationLeftoversOfADeletedProviderAreRolledBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	inc := e.storedProvider("p").Incarnation
	e.dualRole("d", nil)
	first := e.state("d").Current.ID

	e.rejectVerify.Store(true)
	e.failDelete.Store(true)
	if _, err := e.do(logical.UpdateOperation, "rotate-role/d", nil); err == nil {
		t.Fatal("a rotation whose new key fails verification succeeded")
	}
	e.rejectVerify.Store(false)
	e.rejectNewRoot.Store(true)
	if resp, err := e.do(logical.UpdateOperation, "rotate-root/p", nil); err == nil && !resp.IsError() {
		t.Fatal("a root rotation whose new root fails verification succeeded")
	}
	e.rejectNewRoot.Store(false)
	e.failDelete.Store(false)
	if n := e.walCount(); n != 2 {
		t.Fatalf("%d WAL entries after two failed discards, want 2", n)
	}
	var strandedKey string
	for _, k := range e.keys(demoserver.StateLive) {
		if k.ID != first {
			strandedKey = k.ID
		}
	}
	liveRoots := e.liveAdminIDs()
	if strandedKey == "" || len(liveRoots) != 2 {
		t.Fatalf("stranded key %q, live roots %v; want a second key and two roots", strandedKey, liveRoots)
	}

	e.must(logical.DeleteOperation, "roles/d", map[string]any{"revoke_keys": true})
	e.must(logical.DeleteOperation, "providers/p", nil)
	if tomb := e.tombstone(inc); tomb == nil || tomb["wal_entries"] != 2 {
		t.Fatalf("tombstone p/%s: %v; want one holding 2 WAL entries", inc, tomb)
	}
	e.rollback()
	e.wantRevoked(strandedKey, "the stranded key is %s after rollback, want revoked")
	if ids := e.liveAdminIDs(); len(ids) != 1 {
		t.Fatalf("live roots after rollback %v, want only the provider's own", ids)
	}
	e.wantNoWAL(" after rollback")
	e.rollback()
	if tomb := e.tombstone(inc); tomb != nil {
		t.Fatalf("tombstone p/%s still there after the pass following the rollback: %v", inc, tomb)
	}
}

// WAL entries written before the incarnation was recorded (v0.1.0) still
// roll back, against the live provider.
func TestRollbackOfARootEntryWithoutIncarnation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.provider("p")
	root := e.extraRoot("p", "vault-root-p-old")
	// As v0.1.0 wrote it: no incarnation field at all.
	if _, err := framework.PutWAL(ctx, e.storage, walKindRoot, map[string]any{"provider": "p", "name": "vault-root-p-old", "root_id": root.ID}); err != nil {
		t.Fatal(err)
	}
	e.rollback()
	if slices.Contains(e.liveAdminIDs(), root.ID) {
		t.Fatalf("the root %s named by a WAL entry without incarnation is still live after rollback", root.ID)
	}
	if code := e.whoami(e.adminKey); code != http.StatusOK {
		t.Fatalf("rollback touched the provider's own root (%d)", code)
	}
	e.wantNoWAL(" after rollback")
}
