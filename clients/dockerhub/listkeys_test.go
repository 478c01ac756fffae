package dockerhub

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/dockerhub/dockerhubtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the access tokens over pages by token_label, with
// created_at parsed.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := dockerhubtest.NewServer()
	defer srv.Close()
	srv.SetMaxPage(3)
	clienttest.AssertLists(t, newClient(t, srv), clienttest.ListCheck{Request: clients.KeyRequest{Scopes: []string{"repo:read"}}, Keys: 8, Dated: true, FailNext: srv.FailNext, Secrets: []string{srv.Password()}})
}
