package datadog_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/datadog/datadogtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists API and application keys over pages with created_at
// parsed, application key ids as RevokeKey takes them, and never the
// configured root's two keys (their root id matches no key id).
func TestListKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := datadogtest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	want := map[string]string{}
	for i := 0; i < 230; i++ { // API keys over three pages, application keys over two
		req := clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i)}
		if i%2 == 1 {
			req.Parameters = map[string]string{"key_kind": "application_key"}
		}
		k, err := p.CreateKey(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		want[k.ID] = k.Name
	}
	got := clienttest.AssertListKeys(t, p, want, true)
	for _, k := range got {
		if err := p.RevokeKey(ctx, k.ID); err != nil {
			t.Fatalf("RevokeKey(%s) of a listed key: %v", k.ID, err)
		}
	}
	if !srv.IsLive(srv.RootAPIKey()) || !srv.IsLive(srv.RootAppKey()) {
		t.Fatal("the root's keys were listed")
	}
	// With the root's ids configured, the same.
	p = newProvider(t, srv, clienttest.Merge(rootFields(srv), map[string]string{"api_key_id": srv.RootAPIKeyID(), "app_key_id": srv.RootAppKeyID()}))
	clienttest.AssertListKeys(t, p, map[string]string{}, true)
	clienttest.AssertListFailures(t, p, srv.FailNext, srv.RootAPIKey(), srv.RootAppKey())
}
