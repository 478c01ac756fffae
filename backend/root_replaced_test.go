package backend

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// A root Vault created is known only to Vault: when an operator writes
// another credential over it, it is revoked with the new one instead of
// being left live with nobody able to use or revoke it. A root an operator
// wrote is left alone (they know it, and may use it elsewhere).
func TestWrittenCredentialRevokesTheRootOnlyVaultKnew(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.b.sched.start()
	e.provider("p")
	handKey, handID := e.expiringAdminKey(24 * time.Hour) // made in the console
	e.clock.Advance(time.Minute)
	vaultRoot := e.must(logical.UpdateOperation, "rotate-root/p", nil).Data["root_key_id"].(string)
	e.settle()
	if ids := slices.Sorted(slices.Values(e.liveAdminIDs())); !slices.Equal(ids, slices.Sorted(slices.Values([]string{handID, vaultRoot}))) {
		t.Fatalf("live admin keys after the rotation %v, want %s and %s", ids, handID, vaultRoot)
	}

	e.clock.Advance(time.Minute)
	e.must(logical.UpdateOperation, "providers/p", map[string]any{"admin_key": handKey})
	e.settle()
	if ids := e.liveAdminIDs(); !slices.Equal(ids, []string{handID}) {
		t.Fatalf("live admin keys after writing the console's key %v, want only %s (Vault's root %s revoked)", ids, handID, vaultRoot)
	}
	if p := e.must(logical.ReadOperation, "providers/p", nil).Data; p["pending_root_revocations"] != 0 || p["root_key_id"] != handID {
		t.Fatalf("provider after the write: %v", p)
	}
}

func TestWrittenCredentialLeavesAWrittenRootAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.b.sched.start()
	e.provider("p")
	firstID := e.demo.AdminKeyID()
	handKey, handID := e.expiringAdminKey(24 * time.Hour)
	e.clock.Advance(time.Minute)
	e.must(logical.UpdateOperation, "providers/p", map[string]any{"admin_key": handKey})
	e.settle()
	if ids := slices.Sorted(slices.Values(e.liveAdminIDs())); !slices.Equal(ids, slices.Sorted(slices.Values([]string{firstID, handID}))) {
		t.Fatalf("live admin keys %v, want the operator's first key %s kept beside %s", ids, firstID, handID)
	}
}
