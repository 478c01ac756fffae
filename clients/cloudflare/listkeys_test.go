package cloudflare_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/cloudflare/cloudflaretest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists every token over pages (50 each) with issued_on parsed;
// the root token is listed under the id RootID stores (tidy never revokes it).
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := cloudflaretest.NewServer(cloudflaretest.WithTokenLimit("user", 200))
	defer srv.Close()
	clienttest.AssertLists(t, newProvider(t, srv, rootFields(srv)), clienttest.ListCheck{Request: clients.KeyRequest{Parameters: map[string]string{"policies": dnsPolicies}}, Keys: 120, Dated: true,
		Root: clienttest.RootListed, FailNext: srv.FailNext, Secrets: []string{srv.RootToken()}})
}
