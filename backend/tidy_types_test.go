package backend

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
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
