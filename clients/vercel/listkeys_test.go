package vercel

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/vercel/verceltest"
)

// ListKeys lists the user's tokens over pages with createdAt (epoch
// milliseconds) parsed; the root token is listed under the id RootID
// returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := verceltest.NewServer()
	defer srv.Close()
	srv.SetMaxPage(3)
	p := newClient(t, srv, srv.RootToken(), "")
	want := map[string]string{}
	for i := 0; i < 8; i++ {
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i)})
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
