//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// runTidy starts a tidy on mount, waits for it to end and returns
// tidy-status.
func runTidy(t *testing.T, c *api.Client, mount string, data map[string]any) map[string]any {
	t.Helper()
	s := write(t, c, mount+"/tidy", data)
	if s == nil || len(s.Warnings) == 0 || !strings.Contains(s.Warnings[0], "tidy started; see tidy-status") {
		t.Fatalf("tidy answered %+v, want the warning pointing at tidy-status", s)
	}
	return waitTidy(t, c, mount, 2*time.Minute)
}

// waitTidy polls tidy-status until no tidy is running.
func waitTidy(t *testing.T, c *api.Client, mount string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := read(t, c, mount+"/tidy-status").Data
		if st["state"] != "Running" && st["state"] != "Cancelling" {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("tidy still running after %s: %v", timeout, st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tidyKeyLines returns tidy-status's keys as "key_id reason action",
// sorted.
func tidyKeyLines(st map[string]any) []string {
	var out []string
	keys, _ := st["keys"].([]any)
	for _, k := range keys {
		m := k.(map[string]any)
		out = append(out, fmt.Sprintf("%s %s %s", m["key_id"], m["reason"], m["action"]))
	}
	sort.Strings(out)
	return out
}

func wantTidyKeys(t *testing.T, what string, st map[string]any, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := tidyKeyLines(st); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: tidy-status keys\n got %q\nwant %q\nstatus %v", what, got, want, st)
	}
}

func tidyCount(st map[string]any, field string) int64 {
	n, _ := st[field].(json.Number).Int64()
	return n
}

// createDemoKey creates a key at the demo provider by hand, as someone at
// its console would, and returns its id.
func createDemoKey(t *testing.T, d *demoProvider, name string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name})
	req, _ := http.NewRequest(http.MethodPost, d.URL+"/v1/keys", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var k struct {
		ID string `json:"id"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&k) != nil || k.ID == "" {
		t.Fatalf("creating key %q at the demo provider: %d", name, resp.StatusCode)
	}
	return k.ID
}

// demoKeyStates maps every key id of the demo provider to its state.
func demoKeyStates(t *testing.T, d *demoProvider) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range d.keys(t, "kind=key") {
		out[k.ID] = k.State
	}
	return out
}

// mountMarker learns a mount's marker the way an operator would: from the
// name of a key issued with the default name_template
// (vault-<marker>-<role>-...).
func mountMarker(t *testing.T, c *api.Client, mount, role string) (marker string, leaseID string) {
	t.Helper()
	s := read(t, c, mount+"/creds/"+role)
	name := s.Data["key_name"].(string)
	parts := strings.Split(name, "-")
	if len(parts) < 3 || parts[0] != "vault" || !strings.HasPrefix(parts[1], "tp") {
		t.Fatalf("key name %q does not start with vault-<marker>-", name)
	}
	return parts[1], s.LeaseID
}

// Issue 10, acceptance "crash window": Vault (persistent Raft storage) is
// SIGKILLed while a dynamic create is in flight at the demo provider, after
// the key was created and before its id reached Vault (the demo provider
// holds the answer, latency_after). No lease exists for that key; after a restart, tidy
// leaves it alone while its lease would still run, then revokes it once the
// lease's end plus the safety buffer has passed. In the end no key is live
// at the provider that no lease accounts for.
func TestTidyRevokesTheKeyOfACrashedCreate(t *testing.T) {
	d, err := startDemo("tidy-crash")
	if err != nil {
		t.Fatal(err)
	}
	rc := startRaftCluster(t, "tidy-crash", 1)
	c := rc.client(1)
	writeDemoProvider(t, c, "thirdparty", "p", d)
	write(t, c, "thirdparty/roles/cw", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "30s", "max_ttl": "1h"})
	leased := read(t, c, "thirdparty/creds/cw").Data["key_id"].(string)

	d.setKnobs(t, map[string]any{"latency_ms": 60000, "latency_path": "/v1/keys", "latency_after": true})
	before := demoKeyStates(t, d)
	go func() { c.Logical().Read("thirdparty/creds/cw") }() // never answered
	lost := ""
	for deadline := time.Now().Add(30 * time.Second); lost == ""; time.Sleep(50 * time.Millisecond) {
		for id, st := range demoKeyStates(t, d) {
			if _, ok := before[id]; !ok && st == "live" {
				lost = id
			}
		}
		if lost == "" && time.Now().After(deadline) {
			t.Fatal("the creds read created no key within 30s")
		}
	}
	rc.kill(1)
	issuedAt := time.Now()
	d.setKnobs(t, map[string]any{"latency_ms": 0, "latency_path": "", "latency_after": false})
	rc.start(1)
	rc.waitReady(1, "thirdparty/roles/cw", 90*time.Second)
	restart := time.Since(issuedAt)
	if st := d.key(t, lost).State; st != "live" {
		t.Fatalf("the key whose answer was lost is %s after the restart, want live (nothing knew it)", st)
	}

	// While its lease would still run, tidy leaves it alone, even with no
	// buffer: its ledger entry accounts for it.
	if time.Since(issuedAt) < 25*time.Second {
		st := runTidy(t, c, "thirdparty", map[string]any{"safety_buffer": "0s"})
		if tidyCount(st, "keys_revoked") != 0 || tidyCount(st, "error_count") != 0 || d.key(t, lost).State != "live" {
			t.Fatalf("tidy before the lease's end: %v; key %s", st, d.key(t, lost).State)
		}
	} else {
		t.Logf("the restart took %s: no tidy before the lease's end", time.Since(issuedAt).Round(time.Second))
	}

	// After the lease's end (30s) plus the safety buffer (5s), long before
	// the key would expire at the provider by itself (max_ttl 1h).
	time.Sleep(time.Until(issuedAt.Add(37 * time.Second)))
	st := runTidy(t, c, "thirdparty", map[string]any{"safety_buffer": "5s"})
	if st["state"] != "Finished" || tidyCount(st, "error_count") != 0 {
		t.Fatalf("tidy-status %v", st)
	}
	wantTidyKeys(t, "tidy after the lease's end", st, lost+" expired ledger entry revoked")
	if k := d.key(t, lost); k.State != "revoked" {
		t.Fatalf("the lost key is %s after tidy, want revoked", k.State)
	}
	// The leased key went with its lease (Vault revokes it at its end).
	for deadline := time.Now().Add(30 * time.Second); d.key(t, leased).State != "revoked"; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the leased key is %s 30s after its lease ended", d.key(t, leased).State)
		}
	}
	if live := d.keys(t, "kind=key&state=live"); len(live) != 0 {
		t.Fatalf("keys live at the provider with no lease: %v", live)
	}
	t.Logf("killed Vault with key %s created and its answer held; restarted in %s; tidy revoked it %s after the crash",
		lost, restart.Round(100*time.Millisecond), time.Since(issuedAt).Round(time.Second))
}

// Issue 10, acceptance: tidy dry_run=true changes nothing and lists what a
// real run revokes; a key created at the demo provider by hand (no marker)
// survives every tidy, and so does a key with another mount's marker.
func TestTidyDryRunAndKeysMadeByHand(t *testing.T) {
	d, err := startDemo("tidy-dry")
	if err != nil {
		t.Fatal(err)
	}
	c := sharedVlt.client
	mount := uniq("tidy-dry")
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Sys().Unmount(mount) })
	writeDemoProvider(t, c, mount, "p", d)
	write(t, c, mount+"/roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	write(t, c, mount+"/roles/dual", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "24h", "overlap": "1h"})
	marker, _ := mountMarker(t, c, mount, "dyn")
	read(t, c, mount+"/creds/dual")

	byHand := createDemoKey(t, d, "made-by-hand")
	otherMount := createDemoKey(t, d, "vault-tpzzzzzzzz-app-token-1")
	orphan := createDemoKey(t, d, "vault-"+marker+"-lost-token-1") // carries our marker, nothing accounts for it
	time.Sleep(1100 * time.Millisecond)                            // the demo provider's clock has seconds

	before := demoKeyStates(t, d)
	dry := runTidy(t, c, mount, map[string]any{"dry_run": true, "safety_buffer": "0s"})
	if dry["dry_run"] != true || dry["state"] != "Finished" {
		t.Fatalf("dry run status %v", dry)
	}
	wantTidyKeys(t, "dry run", dry, orphan+" orphan would revoke")
	after := demoKeyStates(t, d)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("the dry run changed keys at the provider:\nbefore %v\nafter  %v", before, after)
	}

	real := runTidy(t, c, mount, map[string]any{"safety_buffer": "0s"})
	wantTidyKeys(t, "real run", real, orphan+" orphan revoked")
	for _, f := range []string{"orphans_found", "orphans_revoked", "keys_revoked"} {
		if tidyCount(dry, f) != tidyCount(real, f) {
			t.Errorf("%s: dry run %v, real run %v", f, dry[f], real[f])
		}
	}
	for i := 0; i < 2; i++ {
		runTidy(t, c, mount, map[string]any{"safety_buffer": "0s"})
	}
	states := demoKeyStates(t, d)
	if states[orphan] != "revoked" {
		t.Fatalf("orphan %s is %s", orphan, states[orphan])
	}
	for id, st := range states {
		if id != orphan && st != "live" {
			t.Errorf("key %s is %s after three tidies: only the orphan may go (hand-made %s, other mount %s)", id, st, byHand, otherMount)
		}
	}
	t.Logf("marker %s; %d keys at the provider, 1 orphan revoked, hand-made and other-mount keys live", marker, len(states))
}

// tidy-cancel, through Vault's API: a tidy held by a slow provider (its
// key list takes 5 s) is stopped, tidy-status goes Cancelling → Cancelled,
// the orphans it had not reached stay live, and the next tidy revokes them.
// With no tidy running, tidy-cancel answers with a warning.
func TestTidyCancel(t *testing.T) {
	c := sharedVlt.client
	d := lcDemo(t, "tidy-cancel")
	mount := lcMount(t, sharedVlt, "tidy-cancel")
	writeDemoProvider(t, c, mount, "p", d)
	write(t, c, mount+"/roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	marker, lease := mountMarker(t, c, mount, "dyn")
	var orphans []string
	for i := range 3 {
		orphans = append(orphans, createDemoKey(t, d, fmt.Sprintf("vault-%s-lost-%d", marker, i)))
	}
	time.Sleep(1100 * time.Millisecond) // the demo provider's clock has seconds

	d.setKnobs(t, map[string]any{"latency_ms": 5000})
	write(t, c, mount+"/tidy", map[string]any{"safety_buffer": "0s"})
	s := write(t, c, mount+"/tidy-cancel", nil)
	if st := s.Data["state"]; st != "Cancelling" && st != "Cancelled" {
		t.Fatalf("tidy-cancel answered state %v, want Cancelling", st)
	}
	st := waitTidy(t, c, mount, time.Minute)
	d.setKnobs(t, map[string]any{"latency_ms": 0})
	if st["state"] != "Cancelled" || tidyCount(st, "keys_revoked") != 0 {
		t.Fatalf("tidy-status after tidy-cancel: %v; want Cancelled, nothing revoked", st)
	}
	states := demoKeyStates(t, d)
	for _, id := range orphans {
		if states[id] != "live" {
			t.Fatalf("orphan %s is %s after a cancelled tidy, want live", id, states[id])
		}
	}

	s = write(t, c, mount+"/tidy-cancel", nil)
	if s == nil || len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "no tidy is running") || s.Data["state"] != "Cancelled" {
		t.Fatalf("tidy-cancel with no tidy running answered %+v", s)
	}

	real := runTidy(t, c, mount, map[string]any{"safety_buffer": "0s"})
	wantTidyKeys(t, "the next tidy", real, orphans[0]+" orphan revoked", orphans[1]+" orphan revoked", orphans[2]+" orphan revoked")
	if err := c.Sys().Revoke(lease); err != nil {
		t.Fatal(err)
	}
}

// Issue 10, acceptance "bad input": a 400 naming the field, nothing stored
// changed.
func TestTidyBadInput(t *testing.T) {
	c := sharedVlt.client
	mount := uniq("tidy-bad")
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Sys().Unmount(mount) })
	for _, existing := range []bool{false, true} {
		if existing {
			write(t, c, mount+"/config/auto-tidy", map[string]any{"interval": "2h", "safety_buffer": "1h"})
		}
		before := read(t, c, mount+"/config/auto-tidy").Data
		for _, tc := range []struct {
			path, field string
			data        map[string]any
		}{
			{"tidy", "safety_buffer", map[string]any{"safety_buffer": "-1s"}},
			{"config/auto-tidy", "interval", map[string]any{"enabled": true, "interval": "30s"}},
			{"config/auto-tidy", "safety_buffer", map[string]any{"enabled": true, "safety_buffer": "-1s"}},
		} {
			_, err := c.Logical().Write(mount+"/"+tc.path, tc.data)
			var re *api.ResponseError
			if err == nil || !asResponseError(err, &re) || re.StatusCode != 400 || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("%s %v: %v, want a 400 naming %s", tc.path, tc.data, err, tc.field)
			}
			if after := read(t, c, mount+"/config/auto-tidy").Data; fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("%s %v changed config/auto-tidy: %v → %v", tc.path, tc.data, before, after)
			}
		}
	}
	if st := read(t, c, mount+"/tidy-status").Data; st["state"] != "Inactive" {
		t.Fatalf("a refused tidy ran: %v", st)
	}
}

func asResponseError(err error, out **api.ResponseError) bool {
	re, ok := err.(*api.ResponseError)
	if ok {
		*out = re
	}
	return ok
}

// Issue 10, acceptance: auto-tidy runs on the active node of a 3-node Raft
// cluster only.
func TestAutoTidyRunsOnTheActiveNodeOnly(t *testing.T) {
	d, err := startDemo("tidy-auto")
	if err != nil {
		t.Fatal(err)
	}
	rc := startRaftCluster(t, "tidy-auto", 3)
	lead := rc.leader(30 * time.Second)
	c := rc.client(lead)
	writeDemoProvider(t, c, "thirdparty", "p", d)
	write(t, c, "thirdparty/roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	marker, lease := mountMarker(t, c, "thirdparty", "dyn")
	orphan := createDemoKey(t, d, "vault-"+marker+"-lost-token-1")
	byHand := createDemoKey(t, d, "made-by-hand")

	write(t, c, "thirdparty/config/auto-tidy", map[string]any{"enabled": true, "interval": "1m", "safety_buffer": "0s"})
	cfg := read(t, c, "thirdparty/config/auto-tidy").Data
	if cfg["enabled"] != true || cfg["next_run"] == "" {
		t.Fatalf("config/auto-tidy %v", cfg)
	}

	// Within the interval and a margin, the orphan goes; tidy-status, read
	// through a standby (forwarded), shows the automatic run.
	standby := lead%3 + 1
	deadline := time.Now().Add(100 * time.Second)
	for d.key(t, orphan).State != "revoked" {
		if time.Now().After(deadline) {
			t.Fatalf("auto-tidy did not revoke the orphan within 100s; config %v", read(t, c, "thirdparty/config/auto-tidy").Data)
		}
		time.Sleep(time.Second)
	}
	st := waitTidy(t, rc.client(standby), "thirdparty", time.Minute)
	if st["auto"] != true || st["state"] != "Finished" || tidyCount(st, "orphans_revoked") != 1 {
		t.Fatalf("tidy-status after auto-tidy: %v", st)
	}
	if d.key(t, byHand).State != "live" {
		t.Fatal("auto-tidy revoked the hand-made key")
	}
	if l := write(t, c, "sys/leases/lookup", map[string]any{"lease_id": lease}); l == nil || l.Data["id"] != lease {
		t.Fatalf("the lease issued before auto-tidy: %v", l)
	}

	// Only the active node ran it: every "tidy finished" line of a node's
	// log falls while that node was active, and only the leader has any.
	runs := 0
	for i := 1; i <= 3; i++ {
		log := rc.log(i)
		if bad := tidiesWhileStandby(log); bad != "" {
			t.Errorf("node %d ran a tidy while standby: %s", i, bad)
		}
		n := strings.Count(log, "tidy finished")
		if i != lead && n > 0 {
			t.Errorf("node %d (standby) logged %d tidies", i, n)
		}
		runs += n
	}
	if runs < 1 {
		t.Fatal("no node logged a tidy")
	}
	t.Logf("auto-tidy (interval 1m) ran %d time(s) on node %d, the active node; orphan %s revoked", runs, lead, orphan)

	// After a leader change, the new active node takes auto-tidy over, on
	// the schedule kept in storage; the old leader, back as a standby,
	// runs none.
	orphan2 := createDemoKey(t, d, "vault-"+marker+"-lost-token-2")
	old := lead
	rc.kill(old)
	lead = rc.leader(60 * time.Second)
	if lead == old {
		t.Fatalf("node %d still leads after being killed", old)
	}
	rc.waitReady(lead, "thirdparty/config/auto-tidy", 60*time.Second)
	rc.start(old)
	deadline = time.Now().Add(150 * time.Second)
	for d.key(t, orphan2).State != "revoked" {
		if time.Now().After(deadline) {
			t.Fatalf("auto-tidy did not run on the new leader (node %d) within 150s", lead)
		}
		time.Sleep(time.Second)
	}
	if st := waitTidy(t, rc.client(lead), "thirdparty", time.Minute); st["auto"] != true || tidyCount(st, "orphans_revoked") != 1 {
		t.Fatalf("tidy-status on the new leader: %v", st)
	}
	leaders := 0
	for i := 1; i <= 3; i++ {
		log := rc.log(i)
		if bad := tidiesWhileStandby(log); bad != "" {
			t.Errorf("node %d ran a tidy while standby: %s", i, bad)
		}
		if strings.Contains(log, "tidy finished") {
			leaders++
		}
	}
	if leaders != 2 {
		t.Errorf("tidies logged on %d nodes, want 2 (the first leader and its successor)", leaders)
	}
	t.Logf("after the failover, node %d ran auto-tidy and revoked orphan %s", lead, orphan2)
}

// tidiesWhileStandby walks a node's log and returns the first tidy line
// logged while the node was not the active node, or "".
func tidiesWhileStandby(log string) string {
	active := false
	for _, line := range strings.Split(log, "\n") {
		switch {
		case strings.Contains(line, "==> Vault server configuration"):
			active = false
		case strings.Contains(line, "acquired lock, enabling active operation"):
			active = true
		case strings.Contains(line, "entering standby mode"):
			active = false
		case strings.Contains(line, "tidy finished"), strings.Contains(line, "tidy revoked"):
			if !active {
				return line
			}
		}
	}
	return ""
}
