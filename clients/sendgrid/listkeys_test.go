package sendgrid_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/sendgrid/sendgridtest"
)

// ListKeys lists the account's keys (all in one answer, SendGrid holds 100
// at most) without a creation time, which SendGrid's list does not give;
// the root key is listed under the id RootID returns.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := sendgridtest.NewServer()
	defer srv.Close()
	clienttest.AssertLists(t, newProvider(t, srv, rootFields(srv)), clienttest.ListCheck{Keys: 99, Root: clienttest.RootListed, FailNext: srv.FailNext, Secrets: []string{srv.RootKey()}})
}
