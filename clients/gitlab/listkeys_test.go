package gitlab

import (
	"context"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/gitlab/gitlabtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the target's active tokens over pages with created_at
// parsed; a revoked one is left out, and a root token of the same target
// is listed under the id RootID returns.
func TestListKeys(t *testing.T) {
	for _, target := range []string{"project", "group", "user"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			srv := gitlabtest.NewServer(gitlabtest.WithMaxPerPage(3))
			defer srv.Close()
			p := newClient(t, srv.URL, targetFields(srv, target))
			revoked, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "vault-revoked"})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.RevokeKey(context.Background(), revoked.ID); err != nil {
				t.Fatal(err)
			}
			clienttest.AssertLists(t, p, clienttest.ListCheck{Keys: 7, Dated: true, Root: clienttest.RootMayBeListed,
				FailNext: srv.FailNext, Secrets: []string{srv.RootToken()}})
		})
	}
}
