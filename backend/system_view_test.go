package backend

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// countingSystemView counts the questions that are round trips to Vault in
// a real plugin.
type countingSystemView struct {
	logical.StaticSystemView
	repl, def, max atomic.Int64
}

func (c *countingSystemView) ReplicationState() consts.ReplicationState {
	c.repl.Add(1)
	return c.StaticSystemView.ReplicationState()
}

func (c *countingSystemView) DefaultLeaseTTL() time.Duration {
	c.def.Add(1)
	return c.StaticSystemView.DefaultLeaseTTL()
}

func (c *countingSystemView) MaxLeaseTTL() time.Duration {
	c.max.Add(1)
	return c.StaticSystemView.MaxLeaseTTL()
}

// The sdk's framework asks the replication state before every operation
// and every creds read needs the mount's TTLs: the backend Vault runs asks
// Vault once per refresh, not once per request.
func TestSystemViewAsksVaultOncePerRefresh(t *testing.T) {
	t.Parallel()
	sys := &countingSystemView{StaticSystemView: logical.StaticSystemView{
		DefaultLeaseTTLVal: time.Hour, MaxLeaseTTLVal: 2 * time.Hour,
	}}
	storage := &logical.InmemStorage{}
	lb, err := Factory(context.Background(), &logical.BackendConfig{
		System: sys, StorageView: storage, Logger: hclog.NewNullLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	b := lb.(*backend)
	defer b.Cleanup(context.Background())
	sys.repl.Store(0)
	sys.def.Store(0)
	sys.max.Store(0)
	start := time.Now()
	for range 50 {
		if _, err := b.HandleRequest(context.Background(), &logical.Request{
			Operation: logical.ListOperation, Path: "roles/", Storage: storage,
		}); err != nil {
			t.Fatal(err)
		}
		if def, max := b.leaseTTLs(); def != time.Hour || max != 2*time.Hour {
			t.Fatalf("leaseTTLs = %s, %s; want 1h, 2h", def, max)
		}
	}
	// Each refresh asks each question once; the loop may straddle a
	// refresh boundary.
	refreshes := int64(time.Since(start)/systemViewRefresh) + 1
	for name, n := range map[string]int64{"ReplicationState": sys.repl.Load(), "DefaultLeaseTTL": sys.def.Load(), "MaxLeaseTTL": sys.max.Load()} {
		if n > refreshes {
			t.Errorf("50 requests asked Vault %s %d times, want at most %d", name, n, refreshes)
		}
	}
}
