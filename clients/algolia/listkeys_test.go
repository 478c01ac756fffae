package algolia_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/algolia/algoliatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the application's keys (one answer) by description, with
// createdAt (epoch seconds) parsed, under the ids RevokeKey takes.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := algoliatest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv)
	want := map[string]string{}
	for i := 0; i < 5; i++ {
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i), Scopes: []string{"search"}})
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = k.Name
	}
	clienttest.AssertListKeys(t, p, want, true)
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.AdminKey())
}
