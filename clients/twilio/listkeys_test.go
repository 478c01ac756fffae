package twilio_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/twilio/twiliotest"
)

// ListKeys lists every key over pages with date_created parsed; a Main key
// configured as the root is not listed (tidy must never revoke it).
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer(twiliotest.WithMainKey())
	defer srv.Close()
	sid, secret := srv.MainKey()
	p := newProvider(t, srv, map[string]string{"account_sid": srv.AccountSID(), "api_key_sid": sid, "api_key_secret": secret})
	want := map[string]string{}
	for i := 0; i < 120; i++ { // two pages of 100
		k, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = k.Name
	}
	old := srv.AddKey("vault-old", time.Date(2020, 5, 1, 10, 0, 0, 0, time.UTC))
	want[old.SID] = old.FriendlyName
	got := clienttest.AssertListKeys(t, p, want, true)
	if c := got[old.SID].CreatedAt; !c.Equal(old.Created) {
		t.Fatalf("CreatedAt of a key made in 2020 = %v, want %v", c, old.Created)
	}
	if _, listed := got[sid]; listed {
		t.Fatal("the Main key configured as the root is listed")
	}
	clienttest.AssertListFailures(t, p, srv.FailNext, secret)
}
