package backend

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/sendgrid/sendgridtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/twilio/twiliotest"
)

// Tidy's orphan scan covers every type that lists its keys, not only the
// demo provider: through Twilio's fake, a key carrying the mount's marker
// that nothing accounts for, made two days ago (date_created), is revoked;
// one made by hand without the marker, one the ledger accounts for and one
// younger than the buffer stay live.
func TestTidyOrphanScanOfAListingType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := twiliotest.NewServer()
	t.Cleanup(f.Close)
	e.must(logical.CreateOperation, "providers/tw", map[string]any{"type": "twilio", "base_url": f.URL, "iam_base_url": f.URL,
		"accounts_base_url": f.URL, "account_sid": f.AccountSID(), "auth_token": f.AuthToken()})
	m := e.marker()
	old := e.clock.Now().Add(-48 * time.Hour)

	orphan := f.AddKey("vault-"+m+"-lost", old)
	byHand := f.AddKey("made-by-hand", old)
	otherMount := f.AddKey("vault-tpzzzzzzzz-other-mount", old)
	leased := f.AddKey("vault-"+m+"-leased", old)
	e.ledgerEntry("tw", clients.Key{ID: leased.SID, Name: leased.FriendlyName}, false, e.clock.Now().Add(100*time.Hour))
	young := f.AddKey("vault-"+m+"-young", e.clock.Now().Add(-10*time.Minute))

	st := e.tidy(map[string]any{"safety_buffer": "1h"})
	wantCounts(t, st, map[string]int{"orphans_found": 2, "orphans_revoked": 1, "keys_revoked": 1, "error_count": 0})
	wantLines(t, "orphans", tidyKeys(st), orphan.SID+" orphan revoked", young.SID+" orphan reported")
	live := map[string]bool{}
	for _, k := range f.LiveKeys() {
		live[k.SID] = true
	}
	if live[orphan.SID] {
		t.Fatal("the orphan is still live at Twilio after tidy")
	}
	for _, k := range []twiliotest.Key{byHand, otherMount, leased, young} {
		if !live[k.SID] {
			t.Fatalf("tidy revoked %s %q", k.SID, k.FriendlyName)
		}
	}
	if got := e.metricValue(`thirdparty_orphans_revoked_total{provider="tw"}`); got != 1 {
		t.Fatalf("thirdparty_orphans_revoked_total = %v, want 1", got)
	}
}

// sendgridEnv is an env with provider "sg" on a SendGrid fake: a type whose
// key list gives no creation time.
func sendgridEnv(t *testing.T) (*env, *sendgridtest.Server) {
	e := newEnv(t)
	f := sendgridtest.NewServer()
	t.Cleanup(f.Close)
	e.must(logical.CreateOperation, "providers/sg", map[string]any{"type": "sendgrid", "base_url": f.URL, "api_key": f.RootKey()})
	return e, f
}

// sightedOrphan makes an orphan at "sg" and a tidy that sees it for the
// first time (so reports it).
func (e *env) sightedOrphan(name string) clients.Key {
	e.t.Helper()
	k := e.createKey("sg", "vault-"+e.marker()+"-"+name)
	st := e.tidy(map[string]any{"safety_buffer": "1h"})
	wantLines(e.t, "first sighting", tidyKeys(st), k.ID+" orphan reported")
	return k
}

// A type whose key list gives no creation time (SendGrid): an orphan is
// reported, and the server log names it, until it has been seen for the
// safety buffer by real runs; then it is revoked.
func TestTidyRevokesAnOrphanOfUnknownAgeOnceSeenForTheBuffer(t *testing.T) {
	t.Parallel()
	e, f := sendgridEnv(t)
	orphan := e.createKey("sg", "vault-"+e.marker()+"-lost")
	byHand := e.createKey("sg", "made-by-hand")
	live := func() map[string]bool {
		m := map[string]bool{}
		for _, k := range f.LiveKeys() {
			m[k.ID] = true
		}
		return m
	}
	sightings := func() []string {
		keys, err := e.storage.List(context.Background(), tidySeenPrefix+"sg/")
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}

	// A dry run records no sighting: it changes nothing.
	st := e.tidy(map[string]any{"safety_buffer": "0s", "dry_run": true})
	wantLines(t, "dry run", tidyKeys(st), orphan.ID+" orphan reported")
	if got := sightings(); len(got) != 0 {
		t.Fatalf("a dry run stored sightings %v", got)
	}

	// First seen now: too young, whatever the buffer.
	st = e.tidy(map[string]any{"safety_buffer": "1h"})
	wantCounts(t, st, map[string]int{"orphans_found": 1, "orphans_revoked": 0, "keys_revoked": 0, "error_count": 0})
	wantLines(t, "first sighting", tidyKeys(st), orphan.ID+" orphan reported")
	logs := e.logs.String()
	if !strings.Contains(logs, "orphan key of unknown age") || !strings.Contains(logs, orphan.ID) {
		t.Fatalf("the server log does not name the orphan of unknown age %s", orphan.ID)
	}
	if got := sightings(); len(got) != 1 {
		t.Fatalf("sightings stored under %v, want one entry for sg's incarnation", got)
	}

	// Seen 59 minutes ago: still inside the 1h buffer.
	e.clock.Advance(59 * time.Minute)
	st = e.tidy(map[string]any{"safety_buffer": "1h"})
	wantLines(t, "inside the buffer", tidyKeys(st), orphan.ID+" orphan reported")
	if l := live(); !l[orphan.ID] || !l[byHand.ID] {
		t.Fatalf("tidy revoked a key seen for less than safety_buffer: live %v", l)
	}

	// Seen over an hour ago: a dry run says it would go, and leaves it.
	e.clock.Advance(2 * time.Minute)
	st = e.tidy(map[string]any{"safety_buffer": "1h", "dry_run": true})
	wantLines(t, "dry run past the buffer", tidyKeys(st), orphan.ID+" orphan would revoke")
	if l := live(); !l[orphan.ID] {
		t.Fatal("a dry run revoked the orphan")
	}

	// A real run revokes it and forgets the sighting; the key without the
	// marker stays.
	st = e.tidy(map[string]any{"safety_buffer": "1h"})
	wantCounts(t, st, map[string]int{"orphans_found": 1, "orphans_revoked": 1, "keys_revoked": 1, "error_count": 0})
	wantLines(t, "past the buffer", tidyKeys(st), orphan.ID+" orphan revoked")
	if l := live(); l[orphan.ID] || !l[byHand.ID] {
		t.Fatalf("live keys %v: want %s revoked and %s (no marker) kept", l, orphan.ID, byHand.ID)
	}
	if got := sightings(); len(got) != 0 {
		t.Fatalf("sightings %v left after the orphan was revoked", got)
	}
	if strings.Contains(e.logs.String(), byHand.ID) {
		t.Fatal("the server log names a key without the mount's marker")
	}
}

// A sighting ends when the key is no longer an orphan: accounted for (here
// a ledger entry names it), it is forgotten, and an orphan again later it
// starts a new wait.
func TestTidyForgetsASightingOnceTheKeyIsAccountedFor(t *testing.T) {
	t.Parallel()
	e, _ := sendgridEnv(t)
	k := e.sightedOrphan("late")

	entry := e.ledgerEntry("sg", k, true, e.clock.Now().Add(24*time.Hour))
	e.clock.Advance(2 * time.Hour)
	st := e.tidy(map[string]any{"safety_buffer": "1h"})
	wantLines(t, "accounted for", tidyKeys(st))
	if keys, _ := e.storage.List(context.Background(), tidySeenPrefix+"sg/"); len(keys) != 0 {
		t.Fatalf("sightings %v kept for a key the ledger accounts for", keys)
	}

	if err := deleteLedger(context.Background(), e.storage, "sg", entry.Incarnation, entry.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	st = e.tidy(map[string]any{"safety_buffer": "1h"})
	wantLines(t, "an orphan again", tidyKeys(st), k.ID+" orphan reported")
}

// A provider deleted while tidy has an orphan of its account pending (no
// ledger entry left) keeps a tombstone: the orphan is still revoked with its
// config once the buffer has passed, and the tombstone goes with it.
func TestDeletedProviderWithAnOrphanPendingKeepsATombstone(t *testing.T) {
	t.Parallel()
	e, f := sendgridEnv(t)
	k := e.sightedOrphan("lost")
	inc := e.storedProvider("sg").Incarnation
	e.must(logical.DeleteOperation, "providers/sg", nil)
	tombs := e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)
	if len(tombs) != 1 || tombs[0]["incarnation"] != inc || tombs[0]["keys_outstanding"] != 0 || tombs[0]["orphans_pending"] != 1 {
		t.Fatalf("status tombstones %v; want sg@%s with 0 keys outstanding and 1 orphan pending", tombs, inc)
	}

	e.clock.Advance(2 * time.Hour)
	before := e.mountState(newMemServer(t))
	st := e.tidy(map[string]any{"safety_buffer": "1h", "dry_run": true})
	wantCounts(t, st, map[string]int{"orphans_revoked": 1, "tombstones_removed": 1})
	wantLines(t, "dry run", tidyKeys(st), k.ID+" orphan would revoke")
	if after := e.mountState(newMemServer(t)); !mountStatesEqual(before, after) {
		t.Fatal("a dry run changed storage")
	}

	st = e.tidy(map[string]any{"safety_buffer": "1h"})
	wantCounts(t, st, map[string]int{"orphans_revoked": 1, "tombstones_removed": 1, "error_count": 0})
	for _, l := range f.LiveKeys() {
		if l.ID == k.ID {
			t.Fatalf("the orphan %s of a deleted provider is still live after tidy", k.ID)
		}
	}
	if refs, _ := listTombstones(context.Background(), e.storage); len(refs) != 0 {
		t.Fatalf("tombstones left after their last orphan was revoked: %v", refs)
	}
	if keys, _ := e.storage.List(context.Background(), tidySeenPrefix+"sg/"); len(keys) != 0 {
		t.Fatalf("sightings %v left after the orphan was revoked", keys)
	}
}

// Sightings of a provider incarnation that has neither a provider nor a
// tombstone (an earlier release deleted providers without looking at
// them) go with the next real tidy: nothing can list or revoke its keys.
func TestTidyDropsTheSightingsOfADeletedProvider(t *testing.T) {
	t.Parallel()
	e, _ := sendgridEnv(t)
	e.sightedOrphan("lost")
	if err := e.storage.Delete(context.Background(), providerPrefix+"sg"); err != nil {
		t.Fatal(err)
	}
	e.b.dropClient("sg")
	e.tidy(map[string]any{"safety_buffer": "1h", "dry_run": true})
	if keys, _ := e.storage.List(context.Background(), tidySeenPrefix+"sg/"); len(keys) != 1 {
		t.Fatalf("a dry run changed the sightings: %v", keys)
	}
	e.tidy(map[string]any{"safety_buffer": "1h"})
	if keys, _ := e.storage.List(context.Background(), tidySeenPrefix+"sg/"); len(keys) != 0 {
		t.Fatalf("sightings %v kept for a deleted provider", keys)
	}
}

// A provider deleted while a tidy is scanning its account (no key of it
// outstanding yet) keeps a tombstone: the scan's orphans are revoked with
// its config, and the same tidy then removes the tombstone. Without it
// the orphan would be found with no config left to revoke it.
func TestProviderDeletedDuringATidyKeepsATombstone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	orphan := e.createKey("p", "vault-"+e.marker()+"-orphan")
	e.clock.Advance(2 * time.Hour)

	listing, unblock := e.holdRequests(func(r *http.Request) bool {
		return r.Method == http.MethodGet && r.URL.Path == "/v1/keys"
	})
	e.must(logical.UpdateOperation, "tidy", map[string]any{"safety_buffer": "1h"})
	waitFor(t, "the tidy to list the provider's keys", took(listing))
	e.must(logical.DeleteOperation, "providers/p", nil)
	if n := len(e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)); n != 1 {
		t.Fatalf("%d tombstones for a provider deleted during a tidy, want 1", n)
	}
	unblock()
	e.b.tidy.wait()

	st := e.tidyStatus()
	wantCounts(t, st, map[string]int{"orphans_revoked": 1, "tombstones_removed": 1, "error_count": 0})
	e.wantRevoked(orphan.ID, "the orphan of a provider deleted during the tidy is %s, want revoked")
	if refs, _ := listTombstones(context.Background(), e.storage); len(refs) != 0 {
		t.Fatalf("tombstones left after the tidy: %v", refs)
	}
}
