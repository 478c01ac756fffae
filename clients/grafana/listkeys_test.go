package grafana

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/grafana/grafanatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the key account's tokens (Grafana answers them all at
// once) with created parsed; the root account's tokens are not listed,
// and with keys and root on one account the root is listed under token_id,
// the id RootID returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := grafanatest.NewServer()
	defer srv.Close()
	for _, tc := range []struct {
		name string
		f    map[string]string
		root clienttest.RootListing
	}{
		{"two accounts", fields(srv), clienttest.RootNotListed},
		{"one account", clienttest.Merge(fields(srv), map[string]string{"service_account_id": fmt.Sprint(grafanatest.RootAccountID)}), clienttest.RootListed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newClient(t, srv.URL, tc.f)
			got := clienttest.AssertLists(t, p, clienttest.ListCheck{Keys: 5, Dated: true, Root: tc.root, FailNext: srv.FailNext, Secrets: []string{srv.RootToken()}})
			for id := range got {
				if id != srv.RootTokenID() {
					if err := p.RevokeKey(context.Background(), id); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}
