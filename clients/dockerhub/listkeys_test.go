package dockerhub

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/dockerhub/dockerhubtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the access tokens over pages by token_label, with
// created_at parsed.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	srv.SetMaxPage(3)
	p := newClient(t, srv)
	want := map[string]string{}
	for i := 0; i < 8; i++ {
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i), Scopes: []string{"repo:read"}})
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = k.Name
	}
	clienttest.AssertListKeys(t, p, want, true)
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.Password())
}
