package mongodbatlas_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mongodbatlas/mongodbatlastest"
)

// ListKeys lists the organization's API keys over pages by desc, without a
// creation time (Atlas gives none); the root key is listed under the id
// RootID returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mongodbatlastest.NewServer(mongodbatlastest.WithMaxPage(3))
	defer srv.Close()
	p := newProvider(t, srv, srv.Root())
	want := map[string]string{}
	for i := 0; i < 8; i++ {
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i), Scopes: []string{"ORG_MEMBER"}})
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = k.Name
	}
	withRoot := clienttest.WithListedRoot(t, p, want)
	if len(withRoot) != len(want)+1 {
		t.Fatal("the root key is not listed under the id RootID returns")
	}
	clienttest.AssertListKeys(t, p, withRoot, false)
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.Root().PrivateKey)
}
