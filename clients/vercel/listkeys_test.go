package vercel

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/vercel/verceltest"
)

// ListKeys lists the user's tokens over pages with createdAt (epoch
// milliseconds) parsed; the root token is listed under the id RootID
// returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := verceltest.NewServer()
	defer srv.Close()
	srv.SetMaxPage(3)
	clienttest.AssertLists(t, newClient(t, srv, srv.RootToken(), ""), clienttest.ListCheck{Keys: 8, Dated: true, Root: clienttest.RootListed, FailNext: srv.FailNext, Secrets: []string{srv.RootToken()}})
}
