package gitlab

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/gitlab/gitlabtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the target's active tokens over pages with created_at
// parsed; revoked ones are left out, and a root token of the same target
// is listed under the id RootID returns.
func TestListKeys(t *testing.T) {
	for _, target := range []string{"project", "group", "user"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			srv := gitlabtest.NewServer(gitlabtest.WithMaxPerPage(3))
			defer srv.Close()
			p := newClient(t, srv.URL, targetFields(srv, target))
			ctx := context.Background()
			want := map[string]string{}
			for i := 0; i < 8; i++ {
				k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i)})
				if err != nil {
					t.Fatal(err)
				}
				want[k.ID] = k.Name
				if i == 7 {
					if err := p.RevokeKey(ctx, k.ID); err != nil {
						t.Fatal(err)
					}
					delete(want, k.ID)
				}
			}
			clienttest.AssertListKeys(t, p, clienttest.WithListedRoot(t, p, want), true)
			clienttest.AssertListFailures(t, p, srv.FailNext, srv.RootToken())
		})
	}
}
