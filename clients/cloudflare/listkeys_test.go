package cloudflare_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/cloudflare/cloudflaretest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists every token over pages with issued_on parsed; the root
// token is listed under the id RootID stores (tidy never revokes it).
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := cloudflaretest.NewServer(cloudflaretest.WithTokenLimit("user", 200))
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	want := map[string]string{}
	for i := 0; i < 120; i++ { // three pages of 50
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i), Parameters: map[string]string{"policies": dnsPolicies}})
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = k.Name
	}
	withRoot := clienttest.WithListedRoot(t, p, want)
	if len(withRoot) != len(want)+1 {
		t.Fatal("the root token is not listed under the id RootID returns")
	}
	clienttest.AssertListKeys(t, p, withRoot, true)
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.RootToken())
}
