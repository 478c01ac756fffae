package backend

import (
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

// A type whose key list gives no creation time (SendGrid): an orphan is
// reported, never revoked, and, since no later tidy will find it old
// enough, the server log names it once per tidy for the operator.
func TestTidyLogsOrphansOfUnknownAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := sendgridtest.NewServer()
	t.Cleanup(f.Close)
	e.must(logical.CreateOperation, "providers/sg", map[string]any{"type": "sendgrid", "base_url": f.URL, "api_key": f.RootKey()})
	orphan := e.createKey("sg", "vault-"+e.marker()+"-lost")
	byHand := e.createKey("sg", "made-by-hand")

	st := e.tidy(map[string]any{"safety_buffer": "0s"})
	wantCounts(t, st, map[string]int{"orphans_found": 1, "orphans_revoked": 0, "keys_revoked": 0, "error_count": 0})
	wantLines(t, "orphans", tidyKeys(st), orphan.ID+" orphan reported")
	live := map[string]bool{}
	for _, k := range f.LiveKeys() {
		live[k.ID] = true
	}
	if !live[orphan.ID] || !live[byHand.ID] {
		t.Fatalf("tidy revoked a key of unknown age: live %v", live)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "orphan key of unknown age") || !strings.Contains(logs, orphan.ID) {
		t.Fatalf("the server log does not name the orphan of unknown age %s", orphan.ID)
	}
	if strings.Contains(logs, byHand.ID) {
		t.Fatal("the server log names a key without the mount's marker")
	}
}
