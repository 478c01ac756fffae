//go:build e2e

package e2e

import (
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

// Issue 3, acceptance 3: Vault on persistent (Raft) storage is killed with
// SIGKILL at random moments across ≥ 20 rotations, restarted and unsealed
// each time. The demo provider's latency widens every window. At the end
// the provider holds no live key that Vault does not reference, every role
// serves a working key, and the root (itself rotated throughout) works.
func TestCrashRecovery(t *testing.T) {
	d, err := startDemo("crash", "-latency", "150ms")
	if err != nil {
		t.Fatal(err)
	}
	rc := startRaftCluster(t, "crash", 1)
	c := rc.client(1)
	write(t, c, "thirdparty/providers/p", map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey, "rotation_period": "7s"})
	roles := []string{"crash-a", "crash-b"}
	write(t, c, "thirdparty/roles/crash-a", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "5s", "overlap": "2s", "ttl": "2s"})
	write(t, c, "thirdparty/roles/crash-b", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "6s", "overlap": "3s", "ttl": "2s"})

	seen := map[string]bool{}
	observe := func() {
		for _, r := range roles {
			if s, err := c.Logical().Read("thirdparty/roles/" + r); err == nil && s != nil {
				seen[s.Data["current_key_id"].(string)] = true
			}
		}
	}
	rotations := func() int {
		n := 0
		for _, r := range roles {
			n += len(roleKeys(t, d, r, "live")) + len(roleKeys(t, d, r, "revoked"))
		}
		return n - len(roles) // the first key of each role is not a rotation
	}
	kills := 0
	for (rotations() < 24 || len(seen) < 20) && kills < 40 {
		time.Sleep(time.Duration(300+rand.IntN(4000)) * time.Millisecond)
		observe()
		rc.kill(1)
		kills++
		rc.start(1)
		rc.waitReady(1, "thirdparty/roles/crash-a", 90*time.Second)
		observe()
	}
	t.Logf("%d kills, %d keys created by rotations, %d seen current", kills, rotations(), len(seen))
	if rotations() < 20 {
		t.Fatalf("only %d rotations across %d kills", rotations(), kills)
	}

	// Two kills at chosen moments, so that the rollback paths run whatever
	// the random kills hit: while a scheduled role rotation's new key waits
	// for verification, and while a scheduled root rotation's new admin key
	// does. Each leaves a key live at the provider that Vault's state does
	// not reference, known only to a WAL entry.
	forced := []string{
		killDuringVerify(t, rc, d, func() []demoKey { return roleKeys(t, d, "crash-a", "live") }),
		killDuringVerify(t, rc, d, func() []demoKey { return d.keys(t, "kind=admin&state=live") }),
	}
	kills += len(forced)
	t.Logf("killed Vault while keys %v awaited verification", forced)

	// Recovery: WAL rollback (entries older than 2 minutes, checked every
	// minute) and the scheduler's retries settle what the kills left.
	deadline := time.Now().Add(5 * time.Minute)
	var orphans []string
	recovery, first := time.Now(), -1
	for {
		orphans = orphans[:0]
		for _, r := range roles {
			s := read(t, c, "thirdparty/roles/"+r)
			ref := map[string]bool{s.Data["current_key_id"].(string): true, s.Data["previous_key_id"].(string): true}
			for _, k := range roleKeys(t, d, r, "live") {
				if !ref[k.ID] {
					orphans = append(orphans, r+":"+k.ID)
				}
			}
		}
		root := read(t, c, "thirdparty/providers/p").Data["root_key_id"].(string)
		for _, k := range d.keys(t, "kind=admin&state=live") {
			if k.ID != root {
				orphans = append(orphans, "admin:"+k.ID)
			}
		}
		if first < 0 {
			first = len(orphans)
		}
		if len(orphans) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Second)
	}
	if len(orphans) > 0 {
		t.Fatalf("live at the provider but not referenced by Vault after recovery: %v", orphans)
	}
	t.Logf("%d unreferenced keys right after the last restart, 0 after %s", first, time.Since(recovery).Round(time.Second))
	if first < 1 {
		t.Errorf("no unreferenced key after the forced kills: the rollback path was not exercised")
	}
	for _, id := range forced {
		if k := d.key(t, id); k.State != "revoked" {
			t.Errorf("key %s, created before a kill and never recorded, is %s after recovery, want revoked", id, k.State)
		}
	}
	for _, r := range roles {
		s := readCreds(t, c, "thirdparty", r)
		if code := d.whoami(t, s.Data["api_key"].(string)); code != http.StatusOK {
			t.Errorf("role %s serves a key the provider rejects: %d", r, code)
		}
	}
	write(t, c, "thirdparty/providers/p", map[string]any{"rotation_period": 0})
	old := read(t, c, "thirdparty/providers/p").Data["root_key_id"].(string)
	r := write(t, c, "thirdparty/rotate-root/p", nil)
	if r.Data["root_key_id"] == old {
		t.Fatal("rotate-root after the crashes did not change the root")
	}
	if live := d.keys(t, "kind=admin&state=live"); len(live) != 1 || live[0].ID != r.Data["root_key_id"] {
		t.Fatalf("admin keys live after a final rotate-root: %v", live)
	}
	for _, k := range d.keys(t, "kind=key&state=revoked") {
		if k.RejectedUses > 0 {
			t.Errorf("key %s was presented after its revocation", k.ID)
		}
	}
}

// killDuringVerify holds every whoami at the demo provider, waits for a key
// that live() did not list before (a scheduled rotation's new key, now
// waiting to be verified), SIGKILLs the Vault node, lifts the hold and
// restarts it. It returns the new key's id.
func killDuringVerify(t *testing.T, rc *raftCluster, d *demoProvider, live func() []demoKey) string {
	t.Helper()
	before := map[string]bool{}
	for _, k := range live() {
		before[k.ID] = true
	}
	d.setKnobs(t, map[string]any{"latency_ms": 60000, "latency_path": "/v1/whoami"})
	id := ""
	for deadline := time.Now().Add(90 * time.Second); id == ""; time.Sleep(50 * time.Millisecond) {
		for _, k := range live() {
			if !before[k.ID] {
				id = k.ID
			}
		}
		if id == "" && time.Now().After(deadline) {
			t.Fatal("no scheduled rotation created a key within 90s")
		}
	}
	rc.kill(1)
	d.setKnobs(t, map[string]any{"latency_ms": 150, "latency_path": ""})
	rc.start(1)
	rc.waitReady(1, "thirdparty/roles/crash-a", 90*time.Second)
	return id
}
