//go:build e2e

package e2e

// Issue 10: no key stays live at a provider once Vault has lost track of
// it. A provider deleted while its dynamic leases are outstanding is kept
// as a tombstone until the last of them is revoked or expires; a provider
// recreated under the same name is a new incarnation whose account never
// sees the old keys' revocations; and a mount upgraded in place from
// v0.1.0 revokes everything the old version issued. All through the public
// API of a real Vault, checked at the demo provider's inspection endpoints.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// The plugin as released in v0.1.0: the commit before issue 10's work.
const (
	releasedCommit  = "14ab4024456a32cdcf5420cfc8939a2ccd60349f"
	releasedVersion = "v0.1.0"
	upgradeVersion  = "v0.2.0"
)

// TestProviderDeleteKeepsTombstone: 5 outstanding dynamic leases, the role
// and then the provider deleted. The delete succeeds and leaves a
// tombstone (in status, without any secret) whose config still revokes the
// 5 keys, whether the leases are revoked by prefix or left to expire; the
// tombstone goes with the last of them.
func TestProviderDeleteKeepsTombstone(t *testing.T) {
	for _, tc := range []struct {
		name string
		role map[string]any
		end  func(t *testing.T, c *api.Client, mount string)
	}{
		{"revoke-prefix", map[string]any{"ttl": "1h", "max_ttl": "2h"}, func(t *testing.T, c *api.Client, mount string) {
			if err := c.Sys().RevokePrefix(mount + "/creds/r"); err != nil {
				t.Fatalf("revoke -prefix %s/creds/r: %v", mount, err)
			}
		}},
		// max_ttl well above ttl: the demo key's own expiry (set at
		// max_ttl) must not be what ends it.
		{"expire", map[string]any{"ttl": "12s", "max_ttl": "1h"}, func(*testing.T, *api.Client, string) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sharedVlt.client
			d := lcDemo(t, "tomb")
			mount := lcMount(t, sharedVlt, "tomb")
			writeDemoProvider(t, c, mount, "p", d)
			inc := lcIncarnation(t, c, mount, "p")
			role := map[string]any{"provider": "p", "mode": "dynamic"}
			for k, v := range tc.role {
				role[k] = v
			}
			write(t, c, mount+"/roles/r", role)

			ids := map[string]bool{}
			secrets := []string{d.AdminKey}
			var leaseEnd time.Time
			for i := 0; i < 5; i++ {
				s := readCreds(t, c, mount, "r")
				ids[ptS(s.Data["key_id"])] = true
				secrets = append(secrets, ptS(s.Data["api_key"]))
				leaseEnd = time.Now().Add(time.Duration(s.LeaseDuration) * time.Second)
			}
			lcDelete(t, c, mount+"/roles/r")
			lcDelete(t, c, mount+"/providers/p")

			// Gone for providers/ reads and list, kept for its keys.
			if s := read(t, c, mount+"/providers/p"); s != nil {
				t.Errorf("providers/p still reads after its delete: %v", s.Data)
			}
			if l, err := c.Logical().List(mount + "/providers/"); err != nil {
				t.Fatal(err)
			} else if l != nil && slices.Contains(ptL(l.Data["keys"]), "p") {
				t.Errorf("providers/ lists %v after the delete", l.Data["keys"])
			}
			tombs, raw := lcTombstones(t, c, mount)
			if len(tombs) != 1 || tombs[0].Name != "p" || tombs[0].Incarnation != inc || tombs[0].KeysOutstanding != 5 {
				t.Fatalf("status tombstones after deleting p with 5 leases out: %+v; want p (incarnation %s) with keys_outstanding 5", tombs, inc)
			}
			deleted, err1 := time.Parse(time.RFC3339, tombs[0].DeletedAt)
			oldest, err2 := time.Parse(time.RFC3339, tombs[0].OldestExpiry)
			if err1 != nil || err2 != nil || time.Since(deleted) > time.Minute || time.Since(deleted) < -5*time.Second ||
				oldest.Before(time.Now().Add(-5*time.Second)) || oldest.After(leaseEnd.Add(5*time.Second)) {
				t.Errorf("tombstone deleted_at %q, oldest_expiry %q: want now and within the leases' ttl", tombs[0].DeletedAt, tombs[0].OldestExpiry)
			}
			if tombs[0].LegacyLeasesUntil != "" {
				t.Errorf("tombstone of a provider created by this version has legacy_leases_until %q, want none", tombs[0].LegacyLeasesUntil)
			}
			lcNoSecret(t, "status", raw, secrets)
			if m := lcMetrics(t, c, mount); !regexp.MustCompile(`(?m)^thirdparty_tombstones 1$`).MatchString(m) {
				t.Errorf("metrics do not show thirdparty_tombstones 1:\n%s", lcGrep(m, "tombstone"))
			}
			// Deleting the provider revoked nothing: the leases are still good.
			if n := countLive(t, d, ids); n != 5 {
				t.Fatalf("%d of 5 keys live right after the provider's delete, want 5", n)
			}

			tc.end(t, c, mount)
			wait := time.Minute + time.Until(leaseEnd)
			lcWait(t, wait, "every key revoked at the demo provider", func() bool { return countLive(t, d, ids) == 0 })
			for _, k := range d.keys(t, "kind=key") {
				if ids[k.ID] && k.State != "revoked" {
					t.Errorf("key %s is %s, want revoked (by the plugin, not expired)", k.ID, k.State)
				}
			}
			lcWait(t, 30*time.Second, "the tombstone gone from status", func() bool {
				tombs, _ := lcTombstones(t, c, mount)
				return len(tombs) == 0
			})
			if n := lcLedgerEntries(t, c, mount)["p"]; n != 0 {
				t.Errorf("status ledger_entries[p] = %d after every lease ended, want 0", n)
			}
			if m := lcMetrics(t, c, mount); !regexp.MustCompile(`(?m)^thirdparty_tombstones 0$`).MatchString(m) {
				t.Errorf("metrics do not show thirdparty_tombstones 0 once the tombstone is gone:\n%s", lcGrep(m, "tombstone"))
			}
			t.Logf("%s: 5 keys revoked through the tombstone of incarnation %s, %d delete calls at the provider", tc.name, inc, lcDeleteCalls(t, d))
		})
	}
}

// TestTombstoneOfAGoneAccountIsForgotten: a provider deleted with leases
// out, whose account then refuses every delete (gone for good). The leases
// cannot be revoked, so the tombstone would stay forever. The operator
// reads it under tombstones/, force-revokes the leases in Vault, and
// deletes the tombstone: the answer names the forgotten keys, status and
// metrics drop it, and tidy has nothing left to retry.
func TestTombstoneOfAGoneAccountIsForgotten(t *testing.T) {
	c := sharedVlt.client
	d := lcDemo(t, "gone")
	mount := lcMount(t, sharedVlt, "gone")
	writeDemoProvider(t, c, mount, "p", d)
	inc := lcIncarnation(t, c, mount, "p")
	write(t, c, mount+"/roles/r", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	names := map[string]bool{}
	secrets := []string{d.AdminKey}
	for range 2 {
		s := readCreds(t, c, mount, "r")
		names[ptS(s.Data["key_name"])] = true
		secrets = append(secrets, ptS(s.Data["api_key"]))
	}
	lcDelete(t, c, mount+"/roles/r")
	lcDelete(t, c, mount+"/providers/p")

	l, err := c.Logical().List(mount + "/tombstones/")
	if err != nil || l == nil || !slices.Equal(ptL(l.Data["keys"]), []string{"p/" + inc}) {
		t.Fatalf("list tombstones/: %v %v; want [p/%s]", l, err, inc)
	}
	tomb := read(t, c, mount+"/tombstones/p/"+inc)
	raw, _ := json.Marshal(tomb.Data)
	lcNoSecret(t, "tombstones/p/"+inc, string(raw), secrets)
	if n, _ := tomb.Data["keys_outstanding"].(json.Number).Int64(); n != 2 {
		t.Fatalf("tombstone read %s; want keys_outstanding 2", raw)
	}

	d.setKnobs(t, map[string]any{"forbid": []string{"DELETE /v1/keys/{id}"}})
	if err := c.Sys().RevokePrefix(mount + "/creds/r"); err == nil {
		t.Fatal("revoke -prefix succeeded at an account that refuses every delete")
	}
	if err := c.Sys().RevokeForce(mount + "/creds/r"); err != nil {
		t.Fatalf("revoke -force: %v", err)
	}
	if tombs, _ := lcTombstones(t, c, mount); len(tombs) != 1 {
		t.Fatalf("tombstones after revoke -force: %+v; want the one still holding its 2 keys", tombs)
	}

	s, err := c.Logical().Delete(mount + "/tombstones/p/" + inc)
	if err != nil || s == nil || len(s.Warnings) != 1 {
		t.Fatalf("delete tombstones/p/%s: %v %v; want the forgotten keys and a warning", inc, s, err)
	}
	forgotten, _ := s.Data["forgotten_keys"].([]any)
	for _, k := range forgotten {
		delete(names, k.(map[string]any)["key_name"].(string))
	}
	if len(forgotten) != 2 || len(names) != 0 {
		t.Fatalf("forgotten_keys %v; want the 2 issued keys", s.Data["forgotten_keys"])
	}
	if tombs, _ := lcTombstones(t, c, mount); len(tombs) != 0 {
		t.Fatalf("status tombstones after the delete: %+v", tombs)
	}
	if m := lcMetrics(t, c, mount); !regexp.MustCompile(`(?m)^thirdparty_tombstones 0$`).MatchString(m) {
		t.Errorf("metrics do not show thirdparty_tombstones 0:\n%s", lcGrep(m, "tombstone"))
	}
	st := runTidy(t, c, mount, map[string]any{"safety_buffer": "0s"})
	if tidyCount(st, "error_count") != 0 || tidyCount(st, "entries_examined") != 0 {
		t.Fatalf("tidy after the tombstone was forgotten: %v; want nothing to examine, no error", st)
	}
	t.Logf("tombstone p/%s forgotten with its 2 keys; %d delete calls refused at the provider", inc, lcDeleteCalls(t, d))
}

// TestDeletedDualRoleKeyRetiresWithItsLeases: deleting a dual role (and
// then its provider) while an application holds a lease of its key leaves
// the key working until the lease cap, then revokes it through the
// provider's tombstone. Invariant 2 through a delete, on a real Vault.
func TestDeletedDualRoleKeyRetiresWithItsLeases(t *testing.T) {
	c := sharedVlt.client
	d := lcDemo(t, "retire")
	mount := lcMount(t, sharedVlt, "retire")
	writeDemoProvider(t, c, mount, "p", d)
	// The current key's leases are capped at its next rotation + overlap:
	// 12 s after the create.
	write(t, c, mount+"/roles/r", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "10s", "overlap": "2s", "ttl": "1h"})
	s := readCreds(t, c, mount, "r")
	id := ptS(s.Data["key_id"])
	leaseEnd := time.Now().Add(time.Duration(s.LeaseDuration) * time.Second)

	del, err := c.Logical().Delete(mount + "/roles/r")
	if err != nil || del == nil {
		t.Fatalf("delete of the dual role: %v %v; want its retiring_keys", del, err)
	}
	retiring, _ := del.Data["retiring_keys"].([]any)
	if len(retiring) != 1 || retiring[0].(map[string]any)["key_id"] != id {
		t.Fatalf("delete answered retiring_keys %v; want the current key %s", del.Data["retiring_keys"], id)
	}
	at, err := time.Parse(time.RFC3339, ptS(retiring[0].(map[string]any)["revoke_at"]))
	if err != nil || at.Before(leaseEnd.Add(-time.Second)) {
		t.Fatalf("revoke_at %v (%v) is before the lease's end %s", retiring[0], err, leaseEnd)
	}
	lcDelete(t, c, mount+"/providers/p")
	if k := d.key(t, id); k.State != "live" {
		t.Fatalf("the deleted role's key is %s while a lease of it runs until %s", k.State, leaseEnd)
	}
	if tombs, _ := lcTombstones(t, c, mount); len(tombs) != 1 {
		t.Fatalf("tombstones after deleting the provider: %+v; want one holding the retiring key", tombs)
	}
	lcWait(t, time.Until(at)+20*time.Second, "the retiring key revoked after its lease cap", func() bool {
		return d.key(t, id).State == "revoked"
	})
	if time.Now().Before(leaseEnd) {
		t.Fatalf("key revoked before its lease's end %s", leaseEnd)
	}
	lcWait(t, 10*time.Second, "the tombstone removed", func() bool {
		tombs, _ := lcTombstones(t, c, mount)
		return len(tombs) == 0
	})
	list, _ := read(t, c, mount+"/status").Data["retiring_keys"].([]any)
	if len(list) != 0 || lcLedgerEntries(t, c, mount)["p"] != 0 {
		t.Fatalf("status after the revocation: retiring_keys %v, ledger %v", list, lcLedgerEntries(t, c, mount))
	}
	t.Logf("key %s revoked %s after its lease cap %s", id, time.Since(at).Round(100*time.Millisecond), at.Format(time.RFC3339))
}

// TestDecommissionLeavesNothingLive follows "Decommissioning a mount" in
// docs/operations.md: after its steps and the disable, the only live key at
// the provider is the administrator's own.
func TestDecommissionLeavesNothingLive(t *testing.T) {
	v := sharedVlt
	c := v.client
	d := lcDemo(t, "decom")
	mount := uniq("decom")
	if err := v.mount(mount); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Sys().Unmount(mount) })
	// The account's administrator, outside Vault.
	consoleKey, consoleID := demoAdminKey(t, d, 24*time.Hour)
	writeDemoProvider(t, c, mount, "p", d)
	write(t, c, mount+"/rotate-root/p", nil) // now only Vault knows the root
	write(t, c, mount+"/roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	write(t, c, mount+"/roles/dual", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "24h", "overlap": "1h"})
	write(t, c, mount+"/rotate-role/dual", nil) // a previous key too
	for range 2 {
		readCreds(t, c, mount, "dyn")
		readCreds(t, c, mount, "dual")
	}

	// The runbook: note the root, revoke the dual role's keys now.
	root := ptS(ptGet(read(t, c, mount+"/status").Data, "providers", "p", "root_key_id"))
	if _, err := lcDeleteRevokingKeys(c, mount+"/roles/dual"); err != nil {
		t.Fatal(err)
	}
	st := read(t, c, mount+"/status").Data
	if retiring, _ := st["retiring_keys"].([]any); len(retiring) != 0 || lcLedgerEntries(t, c, mount)["p"] != 2 {
		t.Fatalf("status after revoke_keys: retiring_keys %v, ledger %v; want none and the 2 dynamic keys", retiring, lcLedgerEntries(t, c, mount))
	}

	// The disable revokes the dynamic leases itself; when that fails it
	// stops, and the tainted mount answers nothing until a disable
	// succeeds.
	d.setKnobs(t, map[string]any{"forbid": []string{"DELETE /v1/keys/{id}"}})
	if err := c.Sys().Unmount(mount); err == nil {
		t.Fatal("secrets disable succeeded while every key delete was refused")
	}
	if s, err := c.Logical().Read(mount + "/status"); err != nil || s != nil {
		t.Fatalf("status of a mount whose disable failed: %v %v; want nothing (tainted)", s, err)
	}
	d.setKnobs(t, map[string]any{"forbid": []string{}})
	if err := c.Sys().Unmount(mount); err != nil {
		t.Fatalf("secrets disable, again: %v", err)
	}
	if n := len(d.keys(t, "kind=key&state=live")); n != 0 {
		t.Fatalf("%d keys live after the disable", n)
	}
	req, _ := http.NewRequest(http.MethodDelete, d.URL+"/v1/admin-keys/"+root, nil)
	req.Header.Set("Authorization", "Bearer "+consoleKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("deleting the noted root %s as the administrator: %d", root, resp.StatusCode)
	}
	if left := lcLiveIDs(t, d); !slices.Equal(left, []string{consoleID}) {
		t.Fatalf("live at the provider after decommissioning: %v; want only the administrator's key %s", left, consoleID)
	}
}

// TestProviderDeleteKeepsReplacedRootsForTidy: an old root whose
// revocation failed after a rotation is not forgotten when its provider is
// deleted. The delete tries it again; while the account still refuses, a
// tombstone keeps it and tidy revokes it once the account accepts. The
// delete's answer also names the current root, which only Vault knew and
// which stays live.
func TestProviderDeleteKeepsReplacedRootsForTidy(t *testing.T) {
	c := sharedVlt.client
	d := lcDemo(t, "delroot")
	mount := lcMount(t, sharedVlt, "delroot")
	writeDemoProvider(t, c, mount, "p", d)
	inc := lcIncarnation(t, c, mount, "p")
	first := ptS(read(t, c, mount+"/providers/p").Data["root_key_id"])
	d.setKnobs(t, map[string]any{"forbid": []string{"DELETE /v1/admin-keys/{id}"}})
	second := ptS(write(t, c, mount+"/rotate-root/p", nil).Data["root_key_id"])
	if n := ptGet(read(t, c, mount+"/status").Data, "providers", "p", "pending_root_revocations"); fmt.Sprint(n) != "1" {
		t.Fatalf("pending_root_revocations %v after a rotation whose old root could not be deleted, want 1", n)
	}
	if ids := read(t, c, mount+"/providers/p").Data["root_revocations"]; fmt.Sprint(ids) != "["+first+"]" {
		t.Fatalf("provider read root_revocations %v, want [%s]", ids, first)
	}

	s, err := c.Logical().Delete(mount + "/providers/p")
	if err != nil || s == nil {
		t.Fatalf("delete providers/p: %v %v", s, err)
	}
	if s.Data["tombstone"] != "p/"+inc || fmt.Sprint(s.Data["root_revocations_pending"]) != "["+first+"]" || s.Data["root_left_live"] != second {
		t.Fatalf("delete answered %v; want tombstone p/%s, root_revocations_pending [%s], root_left_live %s", s.Data, inc, first, second)
	}
	if len(s.Warnings) != 2 {
		t.Fatalf("delete warned %q; want the pending old root and the live root", s.Warnings)
	}
	if n := read(t, c, mount+"/status").Data["pending_revocations"]; fmt.Sprint(n) != "1" {
		t.Fatalf("status pending_revocations %v with the tombstone's old root, want 1", n)
	}
	tomb := read(t, c, mount+"/tombstones/p/"+inc).Data
	if fmt.Sprint(tomb["root_revocations"]) != "["+first+"]" {
		t.Fatalf("tombstone read root_revocations %v, want [%s]", tomb["root_revocations"], first)
	}

	d.setKnobs(t, map[string]any{"forbid": []string{}})
	st := runTidy(t, c, mount, map[string]any{"safety_buffer": "0s"})
	if fmt.Sprint(st["roots_revoked"]) != "1" || fmt.Sprint(st["tombstones_removed"]) != "1" || fmt.Sprint(st["error_count"]) != "0" {
		t.Fatalf("tidy-status %v; want 1 root revoked, 1 tombstone removed, no error", st)
	}
	if tombs, _ := lcTombstones(t, c, mount); len(tombs) != 0 {
		t.Fatalf("tombstones after tidy: %+v, want none", tombs)
	}
	if live := lcLiveIDs(t, d); !slices.Equal(live, []string{second}) {
		t.Fatalf("live at the provider: %v; want only the root Vault made, %s (named by the delete)", live, second)
	}
}

// TestRollbackReachesADeletedProvidersAccount: a rotation whose new key
// could not be discarded leaves a WAL entry naming it; the role and the
// provider are deleted before Vault's rollback manager gets to it. The
// provider's config stays as a tombstone, rollback revokes the key with
// it, and the next rollback pass removes the tombstone. It takes about
// four minutes (entries are rolled back once 2 minutes old, in passes a
// minute apart), so it runs in parallel with the other parallel tests.
func TestRollbackReachesADeletedProvidersAccount(t *testing.T) {
	t.Parallel()
	c := sharedVlt.client
	d := lcDemo(t, "walrb")
	mount := lcMount(t, sharedVlt, "walrb")
	writeDemoProvider(t, c, mount, "p", d)
	inc := lcIncarnation(t, c, mount, "p")
	write(t, c, mount+"/roles/dual", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "24h"})
	first := ptS(read(t, c, mount+"/roles/dual").Data["current_key_id"])

	d.setKnobs(t, map[string]any{"forbid": []string{"GET /v1/whoami", "DELETE /v1/keys/{id}"}})
	if _, err := c.Logical().Write(mount+"/rotate-role/dual", nil); err == nil {
		t.Fatal("a rotation whose new key could not be verified succeeded")
	}
	var stranded string
	for _, k := range roleKeys(t, d, "dual", "live") {
		if k.ID != first {
			stranded = k.ID
		}
	}
	d.setKnobs(t, map[string]any{"forbid": []string{}})
	if stranded == "" {
		t.Fatal("the failed rotation left no new key at the provider")
	}
	if _, err := lcDeleteRevokingKeys(c, mount+"/roles/dual"); err != nil {
		t.Fatal(err)
	}
	s, err := c.Logical().Delete(mount + "/providers/p")
	if err != nil {
		t.Fatal(err)
	}
	if s == nil || s.Data["tombstone"] != "p/"+inc {
		t.Fatalf("provider delete answered %v; want the tombstone p/%s", s, inc)
	}
	if n := read(t, c, mount+"/tombstones/p/"+inc).Data["wal_entries"]; fmt.Sprint(n) != "1" {
		t.Fatalf("tombstone wal_entries %v, want 1", n)
	}

	start := time.Now()
	for d.key(t, stranded).State != "revoked" {
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("key %s, known only to a WAL entry of the deleted provider, still live after %s", stranded, time.Since(start).Round(time.Second))
		}
		time.Sleep(5 * time.Second)
	}
	revoked := time.Since(start)
	for {
		tombs, _ := lcTombstones(t, c, mount)
		if len(tombs) == 0 {
			break
		}
		if time.Since(start) > 7*time.Minute {
			t.Fatalf("tombstones still %+v %s after the rollback", tombs, time.Since(start)-revoked)
		}
		time.Sleep(5 * time.Second)
	}
	t.Logf("WAL rollback revoked the key through the tombstone after %s; the tombstone went %s later", revoked.Round(time.Second), (time.Since(start) - revoked).Round(time.Second))
}

// TestProviderRecreatedRevokesOnOldAccount: leases issued by provider p on
// demo provider A; the role and p deleted, p recreated on demo provider B
// (a new incarnation). Revoking the old leases deletes their keys at A and
// sends B nothing; the new p keeps working.
func TestProviderRecreatedRevokesOnOldAccount(t *testing.T) {
	c := sharedVlt.client
	a, b := lcDemo(t, "acct-a"), lcDemo(t, "acct-b")
	mount := lcMount(t, sharedVlt, "recreate")
	writeDemoProvider(t, c, mount, "p", a)
	incA := lcIncarnation(t, c, mount, "p")
	write(t, c, mount+"/roles/r", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	var old []*api.Secret
	ids := map[string]bool{}
	for i := 0; i < 3; i++ {
		s := readCreds(t, c, mount, "r")
		old = append(old, s)
		ids[ptS(s.Data["key_id"])] = true
	}
	lcDelete(t, c, mount+"/roles/r")
	lcDelete(t, c, mount+"/providers/p")

	writeDemoProvider(t, c, mount, "p", b)
	incB := lcIncarnation(t, c, mount, "p")
	if incB == incA {
		t.Fatalf("recreated provider p has incarnation %s, the same as before its delete", incB)
	}
	if got := ptS(read(t, c, mount+"/providers/p").Data["base_url"]); got != b.URL {
		t.Fatalf("recreated p has base_url %s, want B's %s", got, b.URL)
	}
	tombs, _ := lcTombstones(t, c, mount)
	if len(tombs) != 1 || tombs[0].Name != "p" || tombs[0].Incarnation != incA || tombs[0].KeysOutstanding != 3 {
		t.Fatalf("status tombstones after recreating p: %+v; want p's old incarnation %s with keys_outstanding 3", tombs, incA)
	}
	// The new incarnation issues on B.
	write(t, c, mount+"/roles/r", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	fresh := readCreds(t, c, mount, "r")
	if k := b.key(t, ptS(fresh.Data["key_id"])); k.State != "live" {
		t.Fatalf("a key issued by the new p is %s at B, want live", k.State)
	}

	for _, s := range old {
		if err := c.Sys().Revoke(s.LeaseID); err != nil {
			t.Fatalf("revoking a lease of p's old incarnation: %v", err)
		}
	}
	for _, k := range a.keys(t, "kind=key") {
		if ids[k.ID] && k.State != "revoked" {
			t.Errorf("key %s of the old incarnation is %s at A after its lease's revoke, want revoked", k.ID, k.State)
		}
	}
	if n := lcDeleteCalls(t, b); n != 0 {
		t.Errorf("B received %d delete calls for keys it never issued, want 0", n)
	}
	if k := b.key(t, ptS(fresh.Data["key_id"])); k.State != "live" {
		t.Errorf("the new incarnation's key is %s at B after the old leases' revokes, want live", k.State)
	}
	lcWait(t, 30*time.Second, "the old incarnation's tombstone gone from status", func() bool {
		tombs, _ := lcTombstones(t, c, mount)
		return len(tombs) == 0
	})
	// Removing the tombstone left the live provider alone.
	if got := lcIncarnation(t, c, mount, "p"); got != incB {
		t.Errorf("providers/p has incarnation %s after the tombstone's removal, want %s", got, incB)
	}
	if err := c.Sys().Revoke(fresh.LeaseID); err != nil {
		t.Fatalf("revoking the new incarnation's lease: %v", err)
	}
	if k := b.key(t, ptS(fresh.Data["key_id"])); k.State != "revoked" {
		t.Errorf("the new incarnation's key is %s at B after its revoke, want revoked", k.State)
	}
	if n := lcDeleteCalls(t, a); n != 3 {
		t.Errorf("A received %d delete calls, want 3 (one per old lease)", n)
	}
	t.Logf("incarnations %s (A) -> %s (B); A: 3 keys revoked; B: %d delete call (its own key)", incA, incB, lcDeleteCalls(t, b))
}

// TestUpgradeFromV010: v0.1.0, built from the commit before issue 10,
// issues dynamic and dual leases; the mount is switched to the current
// build (register, tune, reload) and everything the old version issued
// still renews and revokes, including through the tombstone of a provider
// deleted right after the upgrade. At the end no key is live at the demo
// providers and Vault's log has no error.
func TestUpgradeFromV010(t *testing.T) {
	oldCmd, newCmd := pluginName+"-"+releasedVersion, pluginName+"-"+upgradeVersion
	oldSHA := buildPluginAt(t, releasedCommit, releasedVersion, oldCmd)
	if err := goBuild(filepath.Join(pluginDir, newCmd), "./cmd/"+pluginName, "-ldflags", "-X "+module+"/internal/version.Version="+upgradeVersion); err != nil {
		t.Fatal(err)
	}
	newSHA, err := fileSHA256(filepath.Join(pluginDir, newCmd))
	if err != nil {
		t.Fatal(err)
	}

	v, err := startDevVault(uniq("upgrade"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.stop(syscall.SIGTERM) })
	c := v.client
	if err := c.Sys().Unmount("thirdparty"); err != nil {
		t.Fatal(err)
	}
	vaultCLI(t, v, "plugin", "register", "-sha256="+oldSHA, "-command="+oldCmd, "-version="+releasedVersion, "secret", pluginName)
	vaultCLI(t, v, "secrets", "enable", "-path=thirdparty", "-plugin-version="+releasedVersion, pluginName)
	if ver, sha := lcRunning(t, c, "thirdparty"); ver != releasedVersion || sha != oldSHA {
		t.Fatalf("thirdparty/ runs %s (%s), want %s (%s)", ver, sha, releasedVersion, oldSHA)
	}

	d, gone := lcDemo(t, "upgrade"), lcDemo(t, "upgrade-gone")
	writeDemoProvider(t, c, "thirdparty", "p", d)
	writeDemoProvider(t, c, "thirdparty", "q", gone)
	write(t, c, "thirdparty/roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	write(t, c, "thirdparty/roles/dual", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "1h", "overlap": "10m"})
	write(t, c, "thirdparty/roles/qdyn", map[string]any{"provider": "q", "mode": "dynamic", "ttl": "1h"})
	var oldDyn, oldQ []*api.Secret
	for i := 0; i < 3; i++ {
		oldDyn = append(oldDyn, readCreds(t, c, "thirdparty", "dyn"))
	}
	for i := 0; i < 2; i++ {
		oldQ = append(oldQ, readCreds(t, c, "thirdparty", "qdyn"))
	}
	dualBefore := readCreds(t, c, "thirdparty", "dual")
	readCreds(t, c, "thirdparty", "dual")
	if n := len(d.keys(t, "kind=key&state=live")); n != 4 {
		t.Fatalf("%d keys live at the demo provider under v0.1.0, want 4 (3 dynamic, 1 dual)", n)
	}

	// The upgrade, as docs/operations.md gives it.
	vaultCLI(t, v, "plugin", "register", "-sha256="+newSHA, "-command="+newCmd, "-version="+upgradeVersion, "secret", pluginName)
	vaultCLI(t, v, "secrets", "tune", "-plugin-version="+upgradeVersion, "thirdparty/")
	out := vaultCLI(t, v, "plugin", "reload", "-type=secret", "-plugin="+pluginName)
	if !strings.Contains(out, "Reloaded plugin: "+pluginName) {
		t.Errorf("plugin reload said %q", out)
	}
	if ver, sha := lcRunning(t, c, "thirdparty"); ver != upgradeVersion || sha != newSHA {
		t.Fatalf("after register, tune and reload thirdparty/ runs %s (%s), want %s (%s)", ver, sha, upgradeVersion, newSHA)
	}

	// The migration gave each v0.1.0 provider an incarnation.
	incP, incQ := lcIncarnation(t, c, "thirdparty", "p"), lcIncarnation(t, c, "thirdparty", "q")
	if incP == incQ {
		t.Errorf("providers p and q share incarnation %s", incP)
	}
	migrated := func() int {
		return strings.Count(v.log(), newCmd+": storage migration: provider given an incarnation")
	}
	if n := migrated(); n != 2 {
		t.Errorf("Vault's log shows %d providers migrated by %s, want 2 (p and q)", n, upgradeVersion)
	}
	if sv, ok := read(t, c, "thirdparty/status").Data["schema_version"]; ok && fmt.Sprint(sv) != "2" {
		t.Errorf("status schema_version %v after the upgrade, want 2", sv)
	}
	// The migration runs once: another reload changes nothing.
	vaultCLI(t, v, "plugin", "reload", "-type=secret", "-plugin="+pluginName)
	if n, inc := migrated(), lcIncarnation(t, c, "thirdparty", "p"); n != 2 || inc != incP {
		t.Errorf("a second reload migrated again: %d migration lines, p's incarnation %s then %s", n, incP, inc)
	}
	lcWait(t, 30*time.Second, "the scheduler running after the reload", func() bool {
		return read(t, c, "thirdparty/status").Data["scheduler_running"] == true
	})

	// What v0.1.0 issued keeps working: its leases renew, the dual role
	// serves the same key.
	if _, err := c.Sys().Renew(oldDyn[0].LeaseID, 1800); err != nil {
		t.Errorf("renewing a lease issued by v0.1.0: %v", err)
	}
	if after := readCreds(t, c, "thirdparty", "dual"); after.Data["key_id"] != dualBefore.Data["key_id"] {
		t.Errorf("the dual role serves key %v after the upgrade, %v before", after.Data["key_id"], dualBefore.Data["key_id"])
	}
	// A new dynamic lease works and is in the ledger.
	fresh := readCreds(t, c, "thirdparty", "dyn")
	if code := d.whoami(t, ptS(fresh.Data["api_key"])); code != http.StatusOK {
		t.Errorf("a key issued after the upgrade answers whoami %d, want 200", code)
	}
	if n := lcLedgerEntries(t, c, "thirdparty")["p"]; n != 1 {
		t.Errorf("status ledger_entries[p] = %d after one dynamic read on v0.2.0, want 1 (v0.1.0's leases predate the ledger)", n)
	}
	// A rotation after the upgrade, so the dual role has a previous key too.
	write(t, c, "thirdparty/rotate-role/dual", map[string]any{})

	// q deleted right after the upgrade while v0.1.0's leases are out:
	// they are in no ledger, so only the migration's LegacyLeasesUntil
	// keeps q's config for them.
	lcDelete(t, c, "thirdparty/roles/qdyn")
	lcDelete(t, c, "thirdparty/providers/q")
	if s := read(t, c, "thirdparty/providers/q"); s != nil {
		t.Errorf("providers/q still reads after its delete")
	}
	tombs, raw := lcTombstones(t, c, "thirdparty")
	if len(tombs) != 1 || tombs[0].Name != "q" || tombs[0].Incarnation != incQ {
		t.Fatalf("status tombstones after deleting q with v0.1.0 leases out: %+v; want q (incarnation %s)", tombs, incQ)
	}
	// Held for the mount's max lease TTL (768h on a dev server) from the
	// migration: no v0.1.0 lease can outlive that.
	if until, err := time.Parse(time.RFC3339, tombs[0].LegacyLeasesUntil); err != nil || time.Until(until) < 767*time.Hour || time.Until(until) > 769*time.Hour {
		t.Errorf("q's tombstone has legacy_leases_until %q, want the migration time + 768h", tombs[0].LegacyLeasesUntil)
	}
	if tombs[0].KeysOutstanding != 0 {
		t.Errorf("q's tombstone counts %d keys outstanding; v0.1.0's leases are in no ledger, want 0", tombs[0].KeysOutstanding)
	}
	lcNoSecret(t, "status", raw, []string{gone.AdminKey, ptS(oldQ[0].Data["api_key"]), ptS(oldQ[1].Data["api_key"])})
	for _, s := range oldQ {
		if err := c.Sys().Revoke(s.LeaseID); err != nil {
			t.Errorf("revoking a v0.1.0 lease of the deleted provider q: %v", err)
		}
		if k := gone.key(t, ptS(s.Data["key_id"])); k.State != "revoked" {
			t.Errorf("key %s of a v0.1.0 lease of the deleted provider q is %s after its revoke, want revoked", k.ID, k.State)
		}
	}

	// Revoke everything, old and new, then delete the dual role.
	if err := c.Sys().RevokePrefix("thirdparty/creds/"); err != nil {
		t.Fatalf("revoke -prefix thirdparty/creds/: %v", err)
	}
	lcWait(t, time.Minute, "no lease left under thirdparty/creds/", func() bool {
		l, err := c.Logical().List("sys/leases/lookup/thirdparty/creds/")
		return err == nil && (l == nil || len(ptL(l.Data["keys"])) == 0)
	})
	for _, s := range append(oldDyn, fresh) {
		if k := d.key(t, ptS(s.Data["key_id"])); k.State != "revoked" {
			t.Errorf("dynamic key %s is %s after revoke -prefix, want revoked", k.ID, k.State)
		}
	}
	// The dual role's key was stored by v0.1.0 (no incarnation): deleted,
	// it retires through the provider's current incarnation; revoke_keys
	// then revokes it at once.
	del, err := c.Logical().Delete("thirdparty/roles/dual")
	if err != nil || del == nil {
		t.Fatalf("delete of the upgraded dual role: %v %v", del, err)
	}
	retiring, _ := del.Data["retiring_keys"].([]any)
	inc := lcIncarnation(t, c, "thirdparty", "p")
	found := false
	for _, k := range retiring {
		m := k.(map[string]any)
		found = found || (m["key_id"] == dualBefore.Data["key_id"] && m["incarnation"] == inc)
	}
	if !found {
		t.Fatalf("retiring_keys %v; want the v0.1.0 key %v, of incarnation %s", del.Data["retiring_keys"], dualBefore.Data["key_id"], inc)
	}
	if _, err := lcDeleteRevokingKeys(c, "thirdparty/roles/dual"); err != nil {
		t.Fatal(err)
	}
	for _, dp := range []*demoProvider{d, gone} {
		if live := dp.keys(t, "kind=key&state=live"); len(live) != 0 {
			t.Errorf("%d keys left live at %s: %v", len(live), dp.name, live)
		}
	}
	if n := lcLedgerEntries(t, c, "thirdparty")["p"]; n != 0 {
		t.Errorf("status ledger_entries[p] = %d after every lease was revoked, want 0", n)
	}
	st := read(t, c, "thirdparty/status")
	if e := ptS(ptGet(st.Data, "providers", "p", "last_error")); e != "" {
		t.Errorf("provider p's last_error: %s", e)
	}
	errs := lcErrorLines(v.log())
	if len(errs) > 0 {
		t.Errorf("Vault's log has %d error or plugin warning lines:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	t.Logf("v0.1.0 issued %d dynamic + 2 dual leases; after the upgrade: %d keys revoked at %s, %d at %s; %d live; %d error lines",
		len(oldDyn)+len(oldQ), len(d.keys(t, "kind=key&state=revoked")), d.name, len(gone.keys(t, "kind=key&state=revoked")), gone.name,
		len(d.keys(t, "kind=key&state=live"))+len(gone.keys(t, "kind=key&state=live")), len(errs))
}

// buildPluginAt builds the plugin from commit of this repository's history
// into the plugin directory as command, reporting version, and returns its
// sha256.
func buildPluginAt(t *testing.T, commit, version, command string) string {
	t.Helper()
	// A shallow clone lacks the old commit: fetch just it, and skip (saying
	// why) only when that is impossible.
	if exec.Command("git", "-C", repoRoot, "cat-file", "-e", commit+"^{commit}").Run() != nil {
		if out, err := exec.Command("git", "-C", repoRoot, "fetch", "--depth=1", "origin", commit).CombinedOutput(); err != nil {
			t.Skipf("commit %s (v0.1.0) is not in this clone and could not be fetched, so the upgrade from it cannot be tested here (clone with history): %v\n%s", commit, err, out)
		}
	}
	src, tarball := t.TempDir(), filepath.Join(t.TempDir(), "src.tar")
	for _, args := range [][]string{
		{"git", "-C", repoRoot, "archive", "--format=tar", "-o", tarball, commit},
		{"tar", "-xf", tarball, "-C", src},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("extracting commit %s (the upgrade test needs the repository's git history): %s: %v\n%s", commit, strings.Join(args, " "), err, out)
		}
	}
	out := filepath.Join(pluginDir, command)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X "+module+"/internal/version.Version="+version, "-o", out, "./cmd/"+pluginName)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the plugin at %s: %v\n%s", commit, err, b)
	}
	sum, err := fileSHA256(out)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// ---- helpers ----

func lcDemo(t *testing.T, name string) *demoProvider {
	t.Helper()
	d, err := startDemo(uniq(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop(syscall.SIGTERM) })
	return d
}

// lcMount mounts the plugin at a fresh path of v for one test, so that its
// status holds only what the test made.
func lcMount(t *testing.T, v *vaultServer, prefix string) string {
	t.Helper()
	m := uniq(prefix)
	if err := v.mount(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.client.Sys().Unmount(m) })
	return m
}

func lcDelete(t *testing.T, c *api.Client, path string) {
	t.Helper()
	s, err := c.Logical().Delete(path)
	if err != nil {
		t.Fatalf("delete %s: %v", path, err)
	}
	if s != nil && len(s.Warnings) > 0 {
		t.Logf("delete %s warns: %v", path, s.Warnings)
	}
}

// lcLiveIDs lists the ids of every key and admin key live at d.
func lcLiveIDs(t *testing.T, d *demoProvider) []string {
	t.Helper()
	var ids []string
	for _, k := range d.keys(t, "state=live") {
		ids = append(ids, k.ID)
	}
	return ids
}

// lcDeleteRevokingKeys deletes a role with revoke_keys=true: a dual role's
// keys are revoked at once instead of when their leases can have ended.
func lcDeleteRevokingKeys(c *api.Client, path string) (*api.Secret, error) {
	return c.Logical().DeleteWithData(path, map[string][]string{"revoke_keys": {"true"}})
}

func lcIncarnation(t *testing.T, c *api.Client, mount, provider string) string {
	t.Helper()
	s := read(t, c, mount+"/providers/"+provider)
	if s == nil {
		t.Fatalf("providers/%s does not read", provider)
	}
	inc := ptS(s.Data["incarnation"])
	if inc == "" {
		t.Fatalf("providers/%s read has no incarnation: %v", provider, keysOf(s.Data))
	}
	return inc
}

type lcTombstone struct {
	Name            string `json:"name"`
	Incarnation     string `json:"incarnation"`
	DeletedAt       string `json:"deleted_at"`
	KeysOutstanding int    `json:"keys_outstanding"`
	OldestExpiry    string `json:"oldest_expiry"`
	// LegacyLeasesUntil is set for providers migrated from v0.1.0 only.
	LegacyLeasesUntil string `json:"legacy_leases_until"`
}

// lcTombstones returns status's tombstones and the whole status as JSON.
func lcTombstones(t testing.TB, c *api.Client, mount string) ([]lcTombstone, string) {
	t.Helper()
	s := read(t, c, mount+"/status")
	raw, err := json.Marshal(s.Data)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := s.Data["tombstones"]
	if !ok {
		t.Fatalf("status has no tombstones field: %v", keysOf(s.Data))
	}
	b, _ := json.Marshal(v)
	var out []lcTombstone
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("status tombstones %s: %v", b, err)
	}
	return out, string(raw)
}

// lcLedgerEntries returns status's ledger entry count per provider.
func lcLedgerEntries(t testing.TB, c *api.Client, mount string) map[string]int {
	t.Helper()
	s := read(t, c, mount+"/status")
	v, ok := s.Data["ledger_entries"]
	if !ok {
		t.Fatalf("status has no ledger_entries field: %v", keysOf(s.Data))
	}
	b, _ := json.Marshal(v)
	out := map[string]int{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("status ledger_entries %s: %v", b, err)
	}
	return out
}

func lcMetrics(t testing.TB, c *api.Client, mount string) string {
	t.Helper()
	resp, err := c.Logical().ReadRaw(mount + "/metrics")
	if err != nil {
		t.Fatalf("%s/metrics: %v", mount, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s/metrics: %v", mount, err)
	}
	return string(b)
}

func lcGrep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func lcNoSecret(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains a secret (%s…)", what, s[:8])
		}
	}
}

// lcDeleteCalls counts the key deletes the demo provider received.
func lcDeleteCalls(t testing.TB, d *demoProvider) int {
	t.Helper()
	var st struct {
		Requests map[string]int `json:"requests"`
	}
	d.getJSON(t, "/_demo/stats", &st)
	return st.Requests["DELETE /v1/keys/{id}"]
}

func lcRunning(t testing.TB, c *api.Client, mount string) (version, sha string) {
	t.Helper()
	s, err := c.Logical().Read("sys/mounts/" + mount)
	if err != nil || s == nil {
		t.Fatalf("sys/mounts/%s: %v", mount, err)
	}
	return ptS(s.Data["running_plugin_version"]), ptS(s.Data["running_sha256"])
}

func lcWait(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout.Round(time.Second), what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lcErrorLines returns the error lines of a Vault log, and the plugin's
// warnings (such as a revocation that found no provider and left a key).
// lcErrorLines returns the plugin's error and warning lines, and Vault's
// own error lines about the mount or leases (Vault's unrelated start-up
// noise, such as the activity log's, is left out).
func lcErrorLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		ours := strings.Contains(l, pluginName) || strings.Contains(l, "thirdparty") || strings.Contains(l, "expiration")
		if ours && (strings.Contains(l, "[ERROR]") || strings.Contains(l, "[WARN]")) {
			out = append(out, l)
		}
	}
	return out
}
