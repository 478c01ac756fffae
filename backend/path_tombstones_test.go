package backend

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// A deleted provider whose account is gone for good: its leases cannot be
// revoked at the provider, so the tombstone would stay (and tidy fail)
// forever. tombstones/ lists and reads it without a secret; deleting it
// forgets its keys (the answer and the log name them), after which the
// leases revoke in Vault without calling any provider.
func TestDeletingATombstoneForgetsItsKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	leases, inc := e.deletedWithLeases(2)
	path := "tombstones/p/" + inc

	list := e.must(logical.ListOperation, "tombstones/", nil).Data
	if keys, _ := list["keys"].([]string); !slices.Equal(keys, []string{"p/" + inc}) {
		t.Fatalf("tombstones/ lists %v, want [p/%s]", list["keys"], inc)
	}
	read := e.must(logical.ReadOperation, path, nil).Data
	// The demo type finds keys by name: the ledger names them (no id).
	var names []string
	for _, k := range read["keys"].([]map[string]any) {
		names = append(names, k["key_name"].(string))
	}
	want := []string{leases[0].InternalData["key_name"].(string), leases[1].InternalData["key_name"].(string)}
	slices.Sort(names)
	slices.Sort(want)
	if read["keys_outstanding"] != 2 || !slices.Equal(names, want) {
		t.Fatalf("tombstone read %v; want 2 keys outstanding, names %v", read, want)
	}
	if strings.Contains(jsonString(t, list)+jsonString(t, read), e.adminKey) {
		t.Fatal("a tombstone's root credential shows in tombstones/")
	}

	// The account is gone: every delete there fails.
	var deletes atomic.Int32
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodDelete {
			return false
		}
		deletes.Add(1)
		http.Error(w, `{"error":{"code":"unauthorized","message":"no such account"}}`, http.StatusUnauthorized)
		return true
	})
	if err := e.revoke(leases[0]); err == nil {
		t.Fatal("a revocation at an account that refuses succeeded")
	}

	resp := e.must(logical.DeleteOperation, path, nil)
	var forgotten []string
	for _, k := range resp.Data["forgotten_keys"].([]map[string]any) {
		forgotten = append(forgotten, k["key_name"].(string))
	}
	slices.Sort(forgotten)
	if !slices.Equal(forgotten, want) || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "2 keys") {
		t.Fatalf("delete answered %v %v; want the 2 keys forgotten and a warning", resp.Data, resp.Warnings)
	}
	if !strings.Contains(e.logs.String(), "Vault will not revoke them") || !strings.Contains(e.logs.String(), want[0]) {
		t.Fatal("the server log does not name the forgotten keys")
	}
	if n := len(e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)); n != 0 {
		t.Fatalf("%d tombstones in status after the delete", n)
	}
	if len(e.ledger()) != 0 || e.metricValue("thirdparty_tombstones") != 0 || e.metricValue(`thirdparty_ledger_entries{provider="p"}`) != 0 {
		t.Fatal("ledger entries or gauges left after the tombstone was deleted")
	}

	// The leases now revoke without a provider call; the keys stay live
	// at the account (that is what forgetting them means).
	before := deletes.Load()
	for _, l := range leases {
		if err := e.revoke(l); err != nil {
			t.Fatalf("revoking a lease of a forgotten tombstone: %v", err)
		}
	}
	if deletes.Load() != before {
		t.Fatal("a revocation after the delete still called the provider")
	}
	for _, l := range leases {
		if id := l.InternalData["key_id"].(string); e.keyState(id) != demoserver.StateLive {
			t.Fatalf("forgotten key %s is %s, want live", id, e.keyState(id))
		}
	}
	st := e.tidy(map[string]any{"safety_buffer": "0s"})
	wantCounts(t, st, map[string]int{"error_count": 0, "keys_revoked": 0})

	// Gone: a read finds nothing, a delete again is a no-op.
	if resp, err := e.do(logical.ReadOperation, path, nil); err != nil || resp != nil {
		t.Fatalf("read of a deleted tombstone: %v %v", resp, err)
	}
	e.must(logical.DeleteOperation, path, nil)
}

// A tombstone that may still hold leases issued by v0.1.0 cannot be
// deleted: without it their revocations would go to a provider created
// later under the same name.
func TestTombstoneHoldingLegacyLeasesIsNotDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.tombstoneOn("p", "legacyinc", e.clock.Now().Add(24*time.Hour))
	resp, err := e.do(logical.DeleteOperation, "tombstones/p/legacyinc", nil)
	e.userError(resp, err, "legacy_leases_until")
	if refs, _ := listTombstones(t.Context(), e.storage); len(refs) != 1 {
		t.Fatalf("tombstones after a refused delete: %v", refs)
	}
	e.clock.Advance(25 * time.Hour)
	e.must(logical.DeleteOperation, "tombstones/p/legacyinc", nil)
	if refs, _ := listTombstones(t.Context(), e.storage); len(refs) != 0 {
		t.Fatalf("tombstones after the delete: %v", refs)
	}
}
