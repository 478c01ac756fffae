package auth0

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/auth0/auth0test"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the tenant's applications over pages, without a creation
// time (Auth0 gives none), and never the root's own client.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := auth0test.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	want := map[string]string{}
	for i := 0; i < 120; i++ { // two pages of 100
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i), Parameters: apiParams})
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = k.Name
	}
	clienttest.AssertListKeys(t, p, want, false)
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.RootSecret())
}
