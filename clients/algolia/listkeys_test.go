package algolia_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/algolia/algoliatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the application's keys (one answer) by description, with
// createdAt (epoch seconds) parsed, under the ids RevokeKey takes.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := algoliatest.NewServer()
	defer srv.Close()
	clienttest.AssertLists(t, newProvider(t, srv), clienttest.ListCheck{Request: clients.KeyRequest{Scopes: []string{"search"}}, Keys: 5, Dated: true, FailNext: srv.FailNext, Secrets: []string{srv.AdminKey()}})
}
