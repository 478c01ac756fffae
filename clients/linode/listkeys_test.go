package linode_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/linode/linodetest"
)

// ListKeys lists the profile's tokens over pages by label, with created
// parsed; the root token is listed under the id RootID returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := linodetest.NewServer(linodetest.WithMaxPage(3))
	defer srv.Close()
	clienttest.AssertLists(t, newProvider(t, srv, srv.RootToken()), clienttest.ListCheck{Request: clients.KeyRequest{Scopes: []string{"*"}}, Keys: 8, Dated: true, Root: clienttest.RootListed,
		FailNext: srv.FailNext, Secrets: []string{srv.RootToken()}})
}
