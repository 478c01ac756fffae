//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// issued remembers every secret the suite saw, for the log scan at the end.
var issued secretsSeen

type secretsSeen struct{ list []string }

func (s *secretsSeen) add(v string) {
	seqMu.Lock()
	defer seqMu.Unlock()
	s.list = append(s.list, v)
}

func (s *secretsSeen) all() []string {
	seqMu.Lock()
	defer seqMu.Unlock()
	return append([]string(nil), s.list...)
}

// readCreds reads creds/<role> and checks the response's shape.
func readCreds(t testing.TB, c *api.Client, mount, role string) *api.Secret {
	t.Helper()
	s := read(t, c, mount+"/creds/"+role)
	if s == nil || s.LeaseID == "" {
		t.Fatalf("creds/%s: no lease: %#v", role, s)
	}
	key, _ := s.Data["api_key"].(string)
	id, _ := s.Data["key_id"].(string)
	if key == "" || id == "" {
		t.Fatalf("creds/%s: missing api_key or key_id: %v", role, keysOf(s.Data))
	}
	issued.add(key)
	return s
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func setupDynamic(t *testing.T, c *api.Client, d *demoProvider, roleExtra map[string]any) (provider, role string) {
	t.Helper()
	provider, role = uniq("demo"), uniq("dyn")
	writeDemoProvider(t, c, "thirdparty", provider, d)
	data := map[string]any{"provider": provider, "mode": "dynamic", "ttl": "60s", "max_ttl": "10m"}
	for k, v := range roleExtra {
		data[k] = v
	}
	write(t, c, "thirdparty/roles/"+role, data)
	return provider, role
}

// Acceptance 3: whoami accepts the key; renew moves the TTL; revoke makes
// the key rejected and the inspection endpoint shows it revoked.
func TestDynamicLeaseLifecycle(t *testing.T) {
	c, d := sharedVlt.client, sharedDemo
	_, role := setupDynamic(t, c, d, nil)

	s := readCreds(t, c, "thirdparty", role)
	key, id := s.Data["api_key"].(string), s.Data["key_id"].(string)
	if s.LeaseDuration != 60 || !s.Renewable {
		t.Fatalf("lease: duration %d renewable %v, want 60 true", s.LeaseDuration, s.Renewable)
	}
	for _, f := range []string{"key_name", "provider", "role", "mode", "expires_at"} {
		if _, ok := s.Data[f]; !ok {
			t.Errorf("creds response lacks %s", f)
		}
	}
	if got := d.whoami(t, key); got != http.StatusOK {
		t.Fatalf("whoami with the issued key: %d, want 200", got)
	}
	k := d.key(t, id)
	if k.State != "live" || k.ExpiresAt.IsZero() {
		t.Fatalf("provider key: %+v, want live with an expiry", k)
	}
	// The key is created to expire at the lease's max TTL.
	if dev := time.Until(k.ExpiresAt) - 10*time.Minute; dev > 5*time.Second || dev < -30*time.Second {
		t.Errorf("provider-side expiry %s is not ~10m (max_ttl) from now", k.ExpiresAt)
	}

	before := leaseTTL(t, c, s.LeaseID)
	time.Sleep(2 * time.Second)
	renewed, err := c.Sys().Renew(s.LeaseID, 120)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	after := leaseTTL(t, c, s.LeaseID)
	if renewed.LeaseDuration < 100 || after <= before {
		t.Fatalf("renew did not move the TTL: before %ds, renew answered %ds, after %ds", before, renewed.LeaseDuration, after)
	}

	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if got := d.whoami(t, key); got != http.StatusUnauthorized {
		t.Fatalf("whoami after revoke: %d, want 401", got)
	}
	if k := d.key(t, id); k.State != "revoked" {
		t.Fatalf("inspection after revoke: state %q, want revoked", k.State)
	}
}

func leaseTTL(t testing.TB, c *api.Client, leaseID string) int64 {
	t.Helper()
	s, err := c.Sys().Lookup(leaseID)
	if err != nil {
		t.Fatalf("lease lookup: %v", err)
	}
	n, _ := s.Data["ttl"].(json.Number).Int64()
	return n
}

// Acceptance 4: 100 leases, one prefix revoke, no live key left.
func TestRevokePrefixLeavesNoLiveKeys(t *testing.T) {
	c, d := sharedVlt.client, sharedDemo
	_, role := setupDynamic(t, c, d, nil)
	ids := map[string]bool{}
	for i := 0; i < 100; i++ {
		s := readCreds(t, c, "thirdparty", role)
		ids[s.Data["key_id"].(string)] = true
	}
	if n := countLive(t, d, ids); n != 100 {
		t.Fatalf("live keys before revoke: %d, want 100", n)
	}
	if err := c.Sys().RevokePrefix("thirdparty/creds/" + role); err != nil {
		t.Fatalf("revoke -prefix: %v", err)
	}
	// Prefix revocation is queued; wait for Vault to work through it.
	deadline := time.Now().Add(60 * time.Second)
	for countLive(t, d, ids) != 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	if n := countLive(t, d, ids); n != 0 {
		t.Fatalf("live keys after revoke -prefix: %d, want 0", n)
	}
	for _, k := range d.keys(t, "state=live&kind=key") {
		if strings.Contains(k.Name, role+"-") {
			t.Errorf("a live key still carries the role's name: %s %s", k.ID, k.Name)
		}
	}
}

func countLive(t testing.TB, d *demoProvider, ids map[string]bool) int {
	n := 0
	for _, k := range d.keys(t, "state=live") {
		if ids[k.ID] {
			n++
		}
	}
	return n
}

// Acceptance 5: a key deleted behind Vault's back still revokes cleanly, and
// the mount can then be disabled.
func TestRevokeKeyAlreadyGone(t *testing.T) {
	c, d := sharedVlt.client, sharedDemo
	mount := uniq("gone")
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	write(t, c, mount+"/providers/p", map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey})
	write(t, c, mount+"/roles/r", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h"})
	a := readCreds(t, c, mount, "r")
	b := readCreds(t, c, mount, "r")
	left := readCreds(t, c, mount, "r") // left for the disable to revoke

	for _, s := range []*api.Secret{a, b} {
		deleteAtProvider(t, d, s.Data["key_id"].(string))
	}
	if err := c.Sys().Revoke(a.LeaseID); err != nil {
		t.Fatalf("revoking a lease whose key is already gone: %v", err)
	}
	if err := c.Sys().Unmount(mount); err != nil {
		t.Fatalf("disabling the mount with a gone key among its leases: %v", err)
	}
	for _, s := range []*api.Secret{a, b, left} {
		if k := d.key(t, s.Data["key_id"].(string)); k.State != "revoked" {
			t.Errorf("key %s is %s after the mount was disabled, want revoked", k.ID, k.State)
		}
	}
}

func deleteAtProvider(t testing.TB, d *demoProvider, id string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, d.URL+"/v1/keys/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+d.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete at provider: %d", resp.StatusCode)
	}
}
