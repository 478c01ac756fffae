package mongodbatlas_test

import (
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
	srv := mongodbatlastest.NewServer(mongodbatlastest.WithMaxPage(3))
	defer srv.Close()
	clienttest.AssertLists(t, newProvider(t, srv, srv.Root()), clienttest.ListCheck{Request: clients.KeyRequest{Scopes: []string{"ORG_MEMBER"}}, Keys: 8, Root: clienttest.RootListed,
		FailNext: srv.FailNext, Secrets: []string{srv.Root().PrivateKey}})
}
