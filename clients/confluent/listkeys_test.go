package confluent_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/confluent/confluenttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the API keys over pages by display_name, with
// metadata.created_at parsed; the root key is listed under the id RootID
// returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := confluenttest.NewServer(confluenttest.WithMaxPage(3))
	defer srv.Close()
	p := rootProvider(t, srv)
	want := map[string]string{}
	for i := 0; i < 8; i++ {
		k, err := p.CreateKey(ctx, appKey(fmt.Sprintf("vault-k-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = k.Name
	}
	withRoot := clienttest.WithListedRoot(t, p, want)
	if len(withRoot) != len(want)+1 {
		t.Fatal("the root key is not listed under the id RootID returns")
	}
	clienttest.AssertListKeys(t, p, withRoot, true)
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.Root().Secret)
}
