//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// readerLease is one creds read: which key, and the earliest moment its
// lease can end (the request was sent before Vault stamped its issue time).
type readerLease struct {
	keyID, key string
	sent       time.Time
	ttl        time.Duration
}

func (l readerLease) minEnd() time.Time { return l.sent.Add(l.ttl) }

// dualRole creates a demo provider instance and a dual role on mount.
func dualRole(t *testing.T, c *api.Client, d *demoProvider, mount string, role map[string]any) (provider, name string) {
	t.Helper()
	provider, name = uniq("dp"), uniq("dual")
	write(t, c, mount+"/providers/"+provider, map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey})
	data := map[string]any{"provider": provider, "mode": "dual"}
	for k, v := range role {
		data[k] = v
	}
	write(t, c, mount+"/roles/"+name, data)
	return provider, name
}

// roleKeys returns the live keys of a role at the demo provider (their
// names carry the role's name).
func roleKeys(t testing.TB, d *demoProvider, role, state string) []demoKey {
	var out []demoKey
	for _, k := range d.keys(t, "kind=key&state="+state) {
		if strings.Contains(k.Name, "-"+role+"-") {
			out = append(out, k)
		}
	}
	return out
}

// Issue 3, acceptance 1: readers for 90s across ≥8 rotations. Every key
// handed out works until its lease ends, every previous key is revoked
// within [retire time, retire time + 10s], never more than 2 live keys.
func TestDualRotationWithReaders(t *testing.T) {
	d, err := startDemo("dual-readers")
	if err != nil {
		t.Fatal(err)
	}
	c := sharedVlt.client
	_, role := dualRole(t, c, d, "thirdparty", map[string]any{"rotation_period": "10s", "overlap": "5s", "ttl": "3s"})

	var mu sync.Mutex
	var leases []readerLease
	var failures []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	retire := map[string]time.Time{}
	maxLive := 0
	stop := time.Now().Add(90 * time.Second)
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				sent := time.Now()
				s, err := c.Logical().Read("thirdparty/creds/" + role)
				if err != nil {
					fail("creds read: %v", err)
					continue
				}
				l := readerLease{keyID: s.Data["key_id"].(string), key: s.Data["api_key"].(string), sent: sent, ttl: time.Duration(s.LeaseDuration) * time.Second}
				issued.add(l.key)
				if code := d.whoami(t, l.key); code != http.StatusOK {
					fail("key %s handed out but whoami says %d", l.keyID, code)
				}
				mu.Lock()
				leases = append(leases, l)
				mu.Unlock()
				time.Sleep(150 * time.Millisecond)
			}
		}()
	}
	// The watcher: keys of unexpired leases still work; previous keys' retire
	// times; the number of live keys.
	for time.Now().Before(stop) {
		s := read(t, c, "thirdparty/roles/"+role)
		if id, _ := s.Data["previous_key_id"].(string); id != "" {
			at, _ := time.Parse(time.RFC3339, s.Data["previous_key_retires"].(string))
			retire[id] = at
		}
		if n := len(roleKeys(t, d, role, "live")); n > maxLive {
			maxLive = n
		}
		mu.Lock()
		snapshot := append([]readerLease(nil), leases...)
		mu.Unlock()
		now := time.Now()
		for _, l := range snapshot {
			if l.minEnd().After(now.Add(200 * time.Millisecond)) {
				if code := d.whoami(t, l.key); code != http.StatusOK {
					fail("key %s rejected (%d) while a lease of it runs until at least %s", l.keyID, code, l.minEnd().Format(time.RFC3339Nano))
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if maxLive > 2 {
		t.Errorf("the role had %d live keys at once, want at most 2", maxLive)
	}
	// Revocation times against lease ends and retire times.
	revoked := roleKeys(t, d, role, "revoked")
	if len(revoked) < 7 {
		t.Fatalf("%d keys revoked in 90s at a 10s period, want ≥ 7", len(revoked))
	}
	all := map[string]bool{}
	for _, l := range leases {
		all[l.keyID] = true
	}
	if len(all) < 9 {
		t.Errorf("readers saw %d distinct keys, want ≥ 9 (≥ 8 rotations)", len(all))
	}
	for _, k := range revoked {
		for _, l := range leases {
			if l.keyID == k.ID && k.RevokedAt.Before(l.minEnd()) {
				t.Errorf("key %s revoked at %s before a lease of it ended (%s)", k.ID, k.RevokedAt, l.minEnd())
			}
		}
		ra, ok := retire[k.ID]
		if !ok {
			continue // its retire time fell between two polls of the role
		}
		if k.RevokedAt.Before(ra) || k.RevokedAt.After(ra.Add(10*time.Second)) {
			t.Errorf("key %s revoked at %s, outside [retire %s, +10s]", k.ID, k.RevokedAt.Format(time.RFC3339Nano), ra.Format(time.RFC3339))
		}
	}
	if len(retire) < 5 {
		t.Errorf("only %d retire times observed", len(retire))
	}
	for _, k := range revoked {
		if k.RejectedUses > 0 {
			// Our own watcher never presents a key past its lease; readers
			// only present keys they just got.
			t.Errorf("key %s was presented %d times after revocation", k.ID, k.RejectedUses)
		}
	}
	t.Logf("%d reads, %d keys, %d revoked, max live %d", len(leases), len(all), len(revoked), maxLive)
}

// Issue 3, acceptance 5: the provider answers 503 across ≥3 scheduled
// rotations; nothing is revoked early, status shows the error and next
// retry, metrics count the failures, rotation resumes after recovery.
func TestDualRotationProviderOutage(t *testing.T) {
	d, err := startDemo("outage")
	if err != nil {
		t.Fatal(err)
	}
	c := sharedVlt.client
	_, role := dualRole(t, c, d, "thirdparty", map[string]any{"rotation_period": "5s", "overlap": "2s", "ttl": "2s"})
	time.Sleep(7 * time.Second) // one rotation so there is a previous key
	s := read(t, c, "thirdparty/roles/"+role)
	cur := s.Data["current_key_id"].(string)
	creds := readCreds(t, c, "thirdparty", role)

	d.setKnobs(t, map[string]any{"down": true})
	time.Sleep(18 * time.Second) // ≥ 3 scheduled rotations
	st := statusOf(t, c, role)
	if st["last_error"] == "" || !strings.Contains(st["last_error"].(string), "503") || st["next_retry"] == "" {
		t.Errorf("status during the outage: %v", st)
	}
	if st["current_key_id"] != cur {
		t.Errorf("current key changed during the outage: %v", st["current_key_id"])
	}
	if d.key(t, cur).State != "live" {
		t.Fatal("the current key was revoked during the outage")
	}
	metrics := metricsBody(t, c)
	if !strings.Contains(metrics, `thirdparty_rotations_total{kind="role",name="`+role+`",result="failure"}`) {
		t.Errorf("metrics do not count the failures")
	}
	d.setKnobs(t, map[string]any{"down": false})
	if code := d.whoami(t, creds.Data["api_key"].(string)); code != http.StatusOK {
		t.Errorf("a key handed out before the outage stopped working: %d", code)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if st = statusOf(t, c, role); st["current_key_id"] != cur && st["last_error"] == "" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if st["current_key_id"] == cur || st["last_error"] != "" {
		t.Fatalf("rotation did not resume by itself after recovery: %v", st)
	}
	for _, k := range roleKeys(t, d, role, "revoked") {
		if k.RejectedUses > 0 {
			t.Errorf("key %s was used after revocation", k.ID)
		}
	}
}

func statusOf(t testing.TB, c *api.Client, role string) map[string]any {
	t.Helper()
	s := read(t, c, "thirdparty/status")
	r, _ := s.Data["roles"].(map[string]any)[role].(map[string]any)
	if r == nil {
		t.Fatalf("status has no role %s", role)
	}
	return r
}

func metricsBody(t testing.TB, c *api.Client) string {
	t.Helper()
	resp, err := c.Logical().ReadRaw("thirdparty/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("metrics content type %q", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return string(b)
}

// Issue 3, acceptance 6: rotate-root by hand and on a schedule while 8
// clients read creds: no read fails; the old admin key is rejected, the new
// one works.
func TestRootRotationUnderLoad(t *testing.T) {
	d, err := startDemo("root")
	if err != nil {
		t.Fatal(err)
	}
	c := sharedVlt.client
	provider := uniq("rootp")
	write(t, c, "thirdparty/providers/"+provider, map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey})
	dyn, dual := uniq("rdyn"), uniq("rdual")
	write(t, c, "thirdparty/roles/"+dyn, map[string]any{"provider": provider, "mode": "dynamic", "ttl": "30s"})
	write(t, c, "thirdparty/roles/"+dual, map[string]any{"provider": provider, "mode": "dual", "rotation_period": "1h", "overlap": "10m"})
	firstRoot := read(t, c, "thirdparty/providers/"+provider).Data["root_key_id"].(string)

	var reads, failed sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		role := dyn
		if i%2 == 1 {
			role = dual
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					reads.Store(i, n)
					return
				default:
				}
				s, err := c.Logical().Read("thirdparty/creds/" + role)
				if err != nil {
					failed.Store(time.Now().String(), err.Error())
					continue
				}
				issued.add(s.Data["api_key"].(string))
				if role == dyn {
					_ = c.Sys().Revoke(s.LeaseID)
				}
			}
		}(i)
	}
	time.Sleep(2 * time.Second)
	r := write(t, c, "thirdparty/rotate-root/"+provider, nil)
	manualRoot := r.Data["root_key_id"].(string)
	if manualRoot == firstRoot || r.Data["previous_root_key_id"] != firstRoot {
		t.Errorf("rotate-root response: %v", r.Data)
	}
	// Then on a schedule.
	write(t, c, "thirdparty/providers/"+provider, map[string]any{"rotation_period": "5s"})
	deadline := time.Now().Add(30 * time.Second)
	var scheduledRoot string
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		if id := read(t, c, "thirdparty/providers/"+provider).Data["root_key_id"].(string); id != manualRoot {
			scheduledRoot = id
			break
		}
	}
	write(t, c, "thirdparty/providers/"+provider, map[string]any{"rotation_period": 0})
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	total := 0
	reads.Range(func(_, v any) bool { total += v.(int); return true })
	failed.Range(func(k, v any) bool { t.Errorf("read failed at %s: %s", k, v); return true })
	if scheduledRoot == "" {
		t.Fatal("no scheduled root rotation within 30s of rotation_period=5s")
	}
	if code := d.whoami(t, d.AdminKey); code != http.StatusUnauthorized {
		t.Errorf("the original admin key still works after rotation: %d", code)
	}
	live := 0
	for _, k := range d.keys(t, "kind=admin&state=live") {
		live++
		if k.ID != read(t, c, "thirdparty/providers/"+provider).Data["root_key_id"] {
			t.Errorf("admin key %s is live but is not Vault's root", k.ID)
		}
	}
	if live != 1 {
		t.Errorf("%d live admin keys, want 1 (only Vault's)", live)
	}
	// The new root works: a dynamic read creates and a revoke deletes.
	s := readCreds(t, c, "thirdparty", dyn)
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Errorf("revoke with the new root: %v", err)
	}
	t.Logf("%d reads during root rotations, 0 allowed to fail", total)
}
