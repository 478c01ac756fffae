package mailgun_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mailgun/mailguntest"
)

// ListKeys lists the account's keys (one answer) by description, with
// created_at parsed; the root key is listed under the id RootID returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := mailguntest.NewServer()
	defer srv.Close()
	clienttest.AssertLists(t, rootProvider(t, srv), clienttest.ListCheck{Request: sending(""), Keys: 5, Dated: true, Root: clienttest.RootListed,
		FailNext: srv.FailNext, Secrets: []string{srv.Root().Secret}})
}
