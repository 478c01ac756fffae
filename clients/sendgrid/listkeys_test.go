package sendgrid_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/sendgrid/sendgridtest"
)

// ListKeys lists the account's keys (all in one answer, SendGrid holds 100
// at most) without a creation time, which SendGrid's list does not give;
// the root key is listed under the id RootID returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := sendgridtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	want := map[string]string{}
	for i := 0; i < 99; i++ { // the account's limit, with the root
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i)})
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
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.RootKey())
}
