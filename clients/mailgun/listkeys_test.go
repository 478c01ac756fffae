package mailgun_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mailgun/mailguntest"
)

// ListKeys lists the account's keys (one answer) by description, with
// created_at parsed; the root key is listed under the id RootID returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := mailguntest.NewServer()
	defer srv.Close()
	p := rootProvider(t, srv)
	want := map[string]string{}
	for i := 0; i < 5; i++ {
		k, err := p.CreateKey(ctx, sending(fmt.Sprintf("vault-k-%d", i)))
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
