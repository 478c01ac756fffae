package elasticsearch

import (
	"context"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/elasticsearch/elasticsearchtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the valid API keys the root's user owns (owner=true), with
// creation (epoch milliseconds) parsed; an invalidated key is left out, and
// a root API key is listed under the id RootID returns.
func TestListKeys(t *testing.T) {
	for name, rootByKey := range map[string]bool{"password": false, "api key": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := elasticsearchtest.NewServer()
			defer srv.Close()
			f, secret, root := basicFields(srv), srv.Password(), clienttest.RootNotListed
			if rootByKey {
				f, secret, root = keyFields(srv), srv.RootAPIKey(), clienttest.RootListed
			}
			p := newClient(t, srv, f)
			revoked, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "vault-revoked"})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.RevokeKey(context.Background(), revoked.ID); err != nil {
				t.Fatal(err)
			}
			if !rootByKey { // the fake's seeded API key is a key of the user like any other: revoke it
				if err := p.RevokeKey(context.Background(), srv.RootAPIKeyID()); err != nil {
					t.Fatal(err)
				}
			}
			clienttest.AssertLists(t, p, clienttest.ListCheck{Keys: 4, Dated: true, Root: root, FailNext: srv.FailNext, Secrets: []string{secret}})
			for _, r := range srv.Requests() {
				if r.Method == "GET" && r.Path == "/_security/api_key" && r.Query != "owner=true" {
					t.Fatalf("list query = %q, want owner=true", r.Query)
				}
			}
		})
	}
}
