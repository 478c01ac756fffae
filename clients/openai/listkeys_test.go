package openai

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openai/openaitest"
)

// ListKeys lists the project's service accounts over pages (100 each) with
// created_at (epoch seconds) parsed; admin keys (roots) are not listed.
func TestListKeys(t *testing.T) {
	t.Parallel()
	srv := openaitest.NewServer()
	defer srv.Close()
	clienttest.AssertLists(t, newClient(t, srv, fields(srv)), clienttest.ListCheck{Keys: 230, Dated: true, FailNext: srv.FailNext, Secrets: []string{srv.RootKey()}})
}
