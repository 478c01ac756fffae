package elasticsearch

import (
	"context"
	"fmt"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/elasticsearch/elasticsearchtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// ListKeys lists the valid API keys the root's user owns, with creation
// (epoch milliseconds) parsed; invalidated keys are left out, and a root
// API key is listed under the id RootID returns.
func TestListKeys(t *testing.T) {
	ctx := context.Background()
	for name, rootByKey := range map[string]bool{"password": false, "api key": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := elasticsearchtest.NewServer()
			defer srv.Close()
			f, secret := basicFields(srv), srv.Password()
			if rootByKey {
				f, secret = keyFields(srv), srv.RootAPIKey()
			}
			p := newClient(t, srv, f)
			want := map[string]string{}
			for i := 0; i < 4; i++ {
				k, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("vault-k-%d", i)})
				if err != nil {
					t.Fatal(err)
				}
				want[k.ID] = k.Name
				if i == 3 {
					if err := p.RevokeKey(ctx, k.ID); err != nil {
						t.Fatal(err)
					}
					delete(want, k.ID)
				}
			}
			if !rootByKey { // the fake's seeded key is just another key of the user
				want[srv.RootAPIKeyID()] = "vault-root-key"
			}
			withRoot := clienttest.WithListedRoot(t, p, want)
			if rootByKey != (len(withRoot) == len(want)+1) {
				t.Fatalf("root API key listed: %v", len(withRoot) == len(want)+1)
			}
			clienttest.AssertListKeys(t, p, withRoot, true)
			if q := last(srv).Query; q != "owner=true" {
				t.Fatalf("list query = %q, want owner=true", q)
			}
			clienttest.AssertListFailures(t, p, srv.FailNext, secret)
		})
	}
}
