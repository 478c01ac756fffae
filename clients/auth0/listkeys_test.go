package auth0

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/auth0/auth0test"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the tenant's applications over pages (100 each), without a
// creation time (Auth0 gives none), and never the root's own client.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := auth0test.NewServer()
	defer srv.Close()
	clienttest.AssertLists(t, newClient(t, srv, fields(srv)), clienttest.ListCheck{Request: clients.KeyRequest{Parameters: apiParams}, Keys: 120, FailNext: srv.FailNext, Secrets: []string{srv.RootSecret()}})
}
