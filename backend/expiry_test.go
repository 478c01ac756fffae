package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// expiringAdminKey creates, with the env's admin key, a demo admin key
// that expires after ttl, and returns its value and id.
func (e *env) expiringAdminKey(ttl time.Duration) (secret, id string) {
	e.t.Helper()
	body := `{"name":"expiring","expires_at":"` + e.clock.Now().Add(ttl).UTC().Format(time.RFC3339) + `"}`
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/admin-keys", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.adminKey)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID       string `json:"id"`
		AdminKey string `json:"admin_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("creating an expiring admin key: %d %v", resp.StatusCode, err)
	}
	return out.AdminKey, out.ID
}

// A root expiring in 60s with a 24h rotation period is rotated at two
// thirds of its lifetime (the default renew_before), not after 24h; the
// expiry shows in the provider read, status and metrics, and changes with
// the rotation.
func TestRootRotatedBeforeItsExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret, oldID := e.expiringAdminKey(60 * time.Second)
	set := e.clock.Now()
	e.must(logical.CreateOperation, "providers/p", map[string]any{
		"type": "demo", "base_url": e.srv.URL, "admin_key": secret, "rotation_period": "24h"})
	expires := set.Add(60 * time.Second)
	read := e.must(logical.ReadOperation, "providers/p", nil).Data
	if read["expires_at"] != formatTime(expires) {
		t.Fatalf("expires_at %v, want %s", read["expires_at"], formatTime(expires))
	}
	if want := formatTime(set.Add(40 * time.Second)); read["next_root_rotation"] != want {
		t.Fatalf("next_root_rotation %v, want %s (a third of 60s before the expiry)", read["next_root_rotation"], want)
	}
	st := e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)["p"].(map[string]any)
	if st["expires_at"] != formatTime(expires) || st["expires_in_seconds"] != int64(60) || st["expiry_warning"] != "" {
		t.Fatalf("status %v", st)
	}
	if v := e.metricValue(`thirdparty_secret_expiry_timestamp_seconds{kind="root",name="p"}`); v != float64(expires.Unix()) {
		t.Fatalf("expiry metric %v, want %d", v, expires.Unix())
	}

	e.b.sched.start()
	e.clock.Advance(39 * time.Second)
	e.settle()
	if e.storedProvider("p").RootKeyID != oldID {
		t.Fatal("rotated before the deadline")
	}
	e.clock.Advance(time.Second)
	e.settle()
	stored := e.storedProvider("p")
	if stored.RootKeyID == oldID {
		t.Fatal("the root was not rotated at its expiry deadline")
	}
	if e.keyState(oldID) != demoserver.StateRevoked {
		t.Fatalf("the old root is %s, want revoked", e.keyState(oldID))
	}
	if f := e.metricValue(`thirdparty_rotations_total{kind="root",name="p",result="failure"}`); f != 0 {
		t.Fatalf("%v failed root rotations", f)
	}
	// The new admin key does not expire: no expiry, back to the period.
	if !stored.RootExpiresAt.IsZero() {
		t.Fatalf("new root expiry %s, want none", stored.RootExpiresAt)
	}
	if v := e.metricValue(`thirdparty_secret_expiry_timestamp_seconds{kind="root",name="p"}`); v != 0 {
		t.Fatalf("expiry metric still %v after the rotation", v)
	}
	read = e.must(logical.ReadOperation, "providers/p", nil).Data
	if want := formatTime(stored.RootRotatedAt.Add(24 * time.Hour)); read["next_root_rotation"] != want || read["expires_at"] != "" {
		t.Fatalf("after rotation: next_root_rotation %v (want %s), expires_at %v", read["next_root_rotation"], want, read["expires_at"])
	}
}

// renew_before sets the deadline; a value not below the lifetime falls
// back to the default; a bad value is a 400 naming it that changes nothing.
func TestRootRenewBefore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret, _ := e.expiringAdminKey(60 * time.Second)
	set := e.clock.Now()
	e.must(logical.CreateOperation, "providers/p", map[string]any{
		"type": "demo", "base_url": e.srv.URL, "admin_key": secret, "rotation_period": "24h", "renew_before": "50s"})
	if got := e.must(logical.ReadOperation, "providers/p", nil).Data; got["next_root_rotation"] != formatTime(set.Add(10*time.Second)) || got["renew_before"] != int64(50) {
		t.Fatalf("renew_before 50s: %v", got)
	}
	e.must(logical.UpdateOperation, "providers/p", map[string]any{"renew_before": "90s"})
	if got := e.must(logical.ReadOperation, "providers/p", nil).Data["next_root_rotation"]; got != formatTime(set.Add(40*time.Second)) {
		t.Fatalf("renew_before above the lifetime: next_root_rotation %v, want the default", got)
	}
	before := e.storedProvider("p")
	for _, bad := range []any{"-5s", "soon"} {
		resp, err := e.do(logical.UpdateOperation, "providers/p", map[string]any{"renew_before": bad})
		e.userError(resp, err, "renew_before")
	}
	if after := e.storedProvider("p"); after.RenewBefore != before.RenewBefore {
		t.Fatalf("a refused write changed renew_before to %s", after.RenewBefore)
	}
	// disable_automated_rotation turns the expiry deadline off too.
	e.must(logical.UpdateOperation, "providers/p", map[string]any{"disable_automated_rotation": true})
	if got := e.must(logical.ReadOperation, "providers/p", nil).Data["next_root_rotation"]; got != "" {
		t.Fatalf("disabled: next_root_rotation %v", got)
	}
}

// A rotation that keeps failing as the expiry nears retries with backoff
// (the window does not stop it) and status shows the time left.
func TestFailingExpiryRotationShowsTimeLeft(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret, oldID := e.expiringAdminKey(3 * time.Hour)
	e.must(logical.CreateOperation, "providers/p", map[string]any{
		"type": "demo", "base_url": e.srv.URL, "admin_key": secret, "rotation_schedule": "0 3 * * *", "rotation_window": "1m"})
	forbid := demoserver.DefaultKnobs()
	forbid.Forbid = []string{"POST /v1/admin-keys"}
	if err := e.demo.SetKnobs(forbid); err != nil {
		t.Fatal(err)
	}
	e.b.sched.start()
	e.clock.Advance(2 * time.Hour) // the deadline: a third of 3h before the expiry
	e.settle()
	for i := 0; i < 6; i++ {
		e.clock.Advance(backoffMax)
		e.settle()
	}
	stored := e.storedProvider("p")
	if stored.RootKeyID != oldID || stored.RootFailures < 5 {
		t.Fatalf("root %s, %d failures: want the old root and retries past the window", stored.RootKeyID, stored.RootFailures)
	}
	st := e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)["p"].(map[string]any)
	warn, _ := st["expiry_warning"].(string)
	left := stored.RootExpiresAt.Sub(e.clock.Now()).Truncate(time.Second)
	if !strings.Contains(warn, "expires at the provider in "+left.String()) || st["last_error"] == "" {
		t.Fatalf("status %v: want the time left (%s) in expiry_warning", st, left)
	}
	if err := e.demo.SetKnobs(demoserver.DefaultKnobs()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(backoffMax)
	e.settle()
	if e.storedProvider("p").RootKeyID == oldID {
		t.Fatal("not rotated once the provider recovered")
	}
	st = e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)["p"].(map[string]any)
	if st["expiry_warning"] != "" {
		t.Fatalf("warning left after the rotation: %v", st["expiry_warning"])
	}
}

// A dual key is created to expire at its latest retire time plus the
// margin; the role read shows it; the schedule is unchanged by default.
func TestDualKeyCreatedWithExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	// Off the whole second, as a real clock is: the provider's answer (in
	// whole seconds) must still count as the expiry Vault asked for.
	e.clock.Advance(700 * time.Millisecond)
	start := e.clock.Now()
	e.dualRole("r", nil) // period 10s, overlap 5s
	st := e.state("r")
	want := start.Add(10*time.Second + 5*time.Second + dualExpiryMargin).Truncate(time.Second)
	if !st.Current.RequestedExpiresAt.Equal(want) || !st.Current.ExpiresAt.Equal(want) {
		t.Fatalf("key expiry requested %s, reported %s, want %s", st.Current.RequestedExpiresAt, st.Current.ExpiresAt, want)
	}
	for _, k := range e.keys("live") {
		if !k.ExpiresAt.Equal(want) {
			t.Fatalf("the provider's key expires at %s, want %s", k.ExpiresAt, want)
		}
	}
	if !st.NextRotation.Equal(start.Add(10 * time.Second)) {
		t.Fatalf("next rotation %s moved by the expiry", st.NextRotation)
	}
	read := e.must(logical.ReadOperation, "roles/r", nil).Data
	if read["expires_at"] != formatTime(want) || read["requested_expires_at"] != formatTime(want) {
		t.Fatalf("role read %v", read)
	}
	if v := e.metricValue(`thirdparty_secret_expiry_timestamp_seconds{kind="role",name="r"}`); v != float64(want.Unix()) {
		t.Fatalf("role expiry metric %v", v)
	}
	rs := e.must(logical.ReadOperation, "status", nil).Data["roles"].(map[string]any)["r"].(map[string]any)
	if rs["expires_at"] != formatTime(want) {
		t.Fatalf("status %v", rs)
	}
}

// A role's renew_before brings its rotation forward of the period; a
// dynamic role refuses the field; negative is a 400.
func TestDualRoleRenewBefore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	start := e.clock.Now()
	// The key expires at start+15s+24h; rotate 24h+11s before: at start+4s.
	e.dualRole("r", map[string]any{"renew_before": int((dualExpiryMargin + 11*time.Second).Seconds())})
	first := e.state("r").Current.ID
	if nr := e.state("r").NextRotation; !nr.Equal(start.Add(4 * time.Second)) {
		t.Fatalf("next rotation %s, want start+4s", nr)
	}
	e.b.sched.start()
	e.clock.Advance(4 * time.Second)
	e.settle()
	if e.state("r").Current.ID == first {
		t.Fatal("not rotated at the renew_before deadline")
	}
	resp, err := e.do(logical.UpdateOperation, "roles/r", map[string]any{"renew_before": -1})
	e.userError(resp, err, "renew_before")
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "p", "mode": "dynamic"})
	resp, err = e.do(logical.UpdateOperation, "roles/dyn", map[string]any{"renew_before": "1h"})
	e.userError(resp, err, "renew_before")
}

// No lease of a dual key runs past the key's provider-side expiry.
func TestLeaseEndsByTheKeysExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &dualState{
		Current:  &dualKey{ID: "c", LeaseCapAt: now.Add(time.Hour), ExpiresAt: now.Add(10 * time.Minute)},
		Previous: &dualKey{ID: "p", RetireAt: now.Add(time.Hour), ExpiresAt: now.Add(5 * time.Minute)},
	}
	if end, _ := st.leaseEnd("c", time.Minute, now); !end.Equal(now.Add(10 * time.Minute)) {
		t.Fatalf("current: %s", end)
	}
	if end, _ := st.leaseEnd("p", time.Minute, now); !end.Equal(now.Add(5 * time.Minute)) {
		t.Fatalf("previous: %s", end)
	}
	st.Current.ExpiresAt = time.Time{}
	if end, _ := st.leaseEnd("c", time.Minute, now); !end.Equal(now.Add(time.Hour)) {
		t.Fatalf("no expiry: %s", end)
	}
}

func TestRenewDeadline(t *testing.T) {
	from := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		expires time.Duration
		rb      time.Duration
		want    time.Duration
	}{
		{90 * time.Hour, 0, 60 * time.Hour},
		{90 * time.Hour, 10 * time.Hour, 80 * time.Hour},
		{90 * time.Hour, 90 * time.Hour, 60 * time.Hour},
		{-time.Hour, 0, 0}, // already expired when learned: at once
	} {
		if got := renewDeadline(from.Add(tc.expires), from, tc.rb); !got.Equal(from.Add(tc.want)) {
			t.Errorf("renewDeadline(%s, %s) = %s, want from+%s", tc.expires, tc.rb, got.Sub(from), tc.want)
		}
	}
	if !renewDeadline(time.Time{}, from, 0).IsZero() {
		t.Error("no expiry must give no deadline")
	}
}

// Entries stored before the expiry fields existed (a provider and a dual
// role's keys without them) still load, read and rotate; no migration.
func TestEntriesWithoutExpiryFieldsLoadAndRotate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", nil)
	ctx := context.Background()
	strip := func(key string, fields ...string) {
		ent, err := e.storage.Get(ctx, key)
		if err != nil || ent == nil {
			t.Fatalf("%s: %v", key, err)
		}
		var m map[string]any
		if err := json.Unmarshal(ent.Value, &m); err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			delete(m, f)
			for _, k := range []string{"current", "previous"} {
				if sub, ok := m[k].(map[string]any); ok {
					delete(sub, f)
				}
			}
		}
		raw, _ := json.Marshal(m)
		if strings.Contains(string(raw), "renew_") || strings.Contains(string(raw), "requested_") || strings.Contains(string(raw), "root_expir") {
			t.Fatalf("%s still has a new field: %s", key, raw)
		}
		if err := e.storage.Put(ctx, &logical.StorageEntry{Key: key, Value: raw}); err != nil {
			t.Fatal(err)
		}
	}
	strip(providerPrefix+"p", "root_expires_at", "root_expiry_from", "renew_before")
	strip(roleKeysPrefix+"r", "requested_expires_at", "renew_at")
	strip(rolePrefix+"r", "renew_before")

	e.restart()
	e.must(logical.ReadOperation, "providers/p", nil)
	e.must(logical.ReadOperation, "roles/r", nil)
	e.must(logical.ReadOperation, "creds/r", nil)
	first := e.state("r").Current.ID
	e.clock.Advance(10 * time.Second)
	e.settle()
	if e.state("r").Current.ID == first {
		t.Fatal("the old-shaped role did not rotate on schedule")
	}
	oldRoot := e.storedProvider("p").RootKeyID
	e.must(logical.UpdateOperation, "rotate-root/p", nil)
	if e.storedProvider("p").RootKeyID == oldRoot {
		t.Fatal("the old-shaped provider's root did not rotate")
	}
}

// renew_before on a provider that cannot rotate its root is a 400 naming
// it; dry_run on a roll-style type (whose create kills the stored root) is
// a 400 naming dry_run, and nothing is called or stored.
func TestExpiryAndDryRunRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ms := newMemServer(t)
	resp, err := e.do(logical.CreateOperation, "providers/nr", map[string]any{"type": noRotateType, "base_url": ms.url, "root_token": ms.root, "renew_before": "1h"})
	e.userError(resp, err, "renew_before")
	if p, _ := getProvider(context.Background(), e.storage, "nr"); p != nil {
		t.Fatal("a refused create stored the provider")
	}
	roll := newMemServer(t)
	e.must(logical.CreateOperation, "providers/roll", map[string]any{"type": rollType, "base_url": roll.url, "root_token": roll.root})
	before := e.storedProvider("roll").Fields["root_token"]
	resp, err = e.do(logical.UpdateOperation, "rotate-root/roll", map[string]any{"dry_run": true})
	e.userError(resp, err, "dry_run")
	if id, secret := roll.currentRoot(); id != "root_0" || secret != before || e.storedProvider("roll").Fields["root_token"] != before {
		t.Fatal("a refused rehearsal rolled the root")
	}
	e.wantNoWAL(" after a refused rehearsal")
}

// A dual role whose key reaches its expiry deadline while the provider
// refuses the rotation keeps retrying with backoff past its
// rotation_window (skipping to the next scheduled time would let the key
// expire), and status shows the time left.
func TestFailingRoleExpiryRotationIgnoresTheWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	start := e.clock.Now() // 12:00; the schedule fires at 03:00, 15h later
	// The key expires at 03:00 + 1h overlap + 24h = start+40h; renew_before
	// 39h puts the deadline at start+1h.
	e.dualRole("r", map[string]any{"rotation_period": 0, "rotation_schedule": "0 3 * * *", "rotation_window": "1m",
		"overlap": "1h", "renew_before": int((39 * time.Hour).Seconds())})
	first := e.state("r").Current.ID
	if nr := e.state("r").NextRotation; !nr.Equal(start.Add(time.Hour)) {
		t.Fatalf("next rotation %s, want the deadline start+1h", nr)
	}
	e.forbid("POST /v1/keys")
	e.b.sched.start()
	e.clock.Advance(time.Hour)
	e.settle()
	for i := 0; i < 12; i++ {
		e.clock.Advance(backoffMax)
		e.settle()
	}
	st := e.state("r")
	if st.Current.ID != first || st.Failures < 10 || !st.NextRotation.Equal(start.Add(time.Hour)) {
		t.Fatalf("key %s, %d failures, next rotation %s: want retries past the window on the deadline", st.Current.ID, st.Failures, st.NextRotation)
	}
	rs := e.must(logical.ReadOperation, "status", nil).Data["roles"].(map[string]any)["r"].(map[string]any)
	left := st.Current.ExpiresAt.Sub(e.clock.Now()).Truncate(time.Second)
	if w, _ := rs["expiry_warning"].(string); !strings.Contains(w, "current key expires at the provider in "+left.String()) {
		t.Fatalf("status %v: want the time left (%s) in expiry_warning", rs, left)
	}
	e.forbid()
	e.clock.Advance(backoffMax)
	e.settle()
	if e.state("r").Current.ID == first {
		t.Fatal("not rotated once the provider took creates again")
	}
}
