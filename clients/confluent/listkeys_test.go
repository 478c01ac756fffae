package confluent_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/confluent/confluenttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the API keys over pages by display_name, with
// metadata.created_at parsed; the root key is listed under the id RootID
// returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := confluenttest.NewServer(confluenttest.WithMaxPage(3))
	defer srv.Close()
	clienttest.AssertLists(t, rootProvider(t, srv), clienttest.ListCheck{Request: appKey(""), Keys: 8, Dated: true, Root: clienttest.RootListed,
		FailNext: srv.FailNext, Secrets: []string{srv.Root().Secret}})
}
