package openai

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openai/openaitest"
)

// ListKeys lists the project's service accounts over pages with created_at
// (epoch seconds) parsed; admin keys (roots) are not listed.
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := openaitest.NewServer()
	defer srv.Close()
	p := newClient(t, srv, fields(srv))
	want := map[string]string{}
	for i := 0; i < 230; i++ { // three pages of 100
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = k.Name
	}
	clienttest.AssertListKeys(t, p, want, true)
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.RootKey())
}
