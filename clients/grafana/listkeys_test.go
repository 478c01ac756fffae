package grafana

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/grafana/grafanatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the key account's tokens (Grafana answers them all at
// once) with created parsed; the root account's tokens are not listed,
// and with keys and root on one account the root keeps the id RootID
// returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := grafanatest.NewServer()
	defer srv.Close()
	for name, f := range map[string]map[string]string{
		"two accounts": fields(srv),
		"one account":  clienttest.Merge(fields(srv), map[string]string{"service_account_id": fmt.Sprint(grafanatest.RootAccountID)}),
	} {
		t.Run(name, func(t *testing.T) {
			p := newClient(t, srv.URL, f)
			want := map[string]string{}
			for i := 0; i < 5; i++ {
				k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-%s-%d", name, i)})
				if err != nil {
					t.Fatal(err)
				}
				want[k.ID] = k.Name
			}
			got := clienttest.AssertListKeys(t, p, clienttest.WithListedRoot(t, p, want), true)
			if _, listed := got[srv.RootTokenID()]; listed != (name == "one account") {
				t.Fatalf("root token listed: %v", listed)
			}
			clienttest.AssertListFailures(t, p, srv.FailNext, srv.RootToken())
			for id := range want {
				if err := p.RevokeKey(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
