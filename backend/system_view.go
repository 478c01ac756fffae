package backend

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// systemViewRefresh is how long the values below are reused before they are
// asked of Vault again. A tune of the mount's TTLs takes effect within this
// (Vault itself caps every lease at the mount's max TTL regardless), and so
// does a change of replication state, which Vault follows with a reload of
// the mount anyway.
const systemViewRefresh = time.Second

// systemView answers, from a copy at most systemViewRefresh old, the three
// questions every request puts to Vault: the mount's default and max lease
// TTLs (every creds read) and the replication state (the sdk's framework
// asks it before every operation, to honour ForwardPerformance*). Each is
// otherwise a gRPC round trip from the plugin to Vault and back. Everything
// else goes to Vault's view unchanged.
type systemView struct {
	logical.SystemView
	v atomic.Pointer[systemViewValues]
}

type systemViewValues struct {
	def, max time.Duration
	repl     consts.ReplicationState
	at       time.Time
}

func newSystemView(v logical.SystemView) logical.SystemView {
	if v == nil {
		return nil
	}
	return &systemView{SystemView: v}
}

func (s *systemView) values() *systemViewValues {
	now := time.Now()
	if v := s.v.Load(); v != nil && now.Sub(v.at) < systemViewRefresh && now.Sub(v.at) >= 0 {
		return v
	}
	v := &systemViewValues{
		def:  s.SystemView.DefaultLeaseTTL(),
		max:  s.SystemView.MaxLeaseTTL(),
		repl: s.SystemView.ReplicationState(),
		at:   now,
	}
	s.v.Store(v)
	return v
}

func (s *systemView) DefaultLeaseTTL() time.Duration { return s.values().def }

func (s *systemView) MaxLeaseTTL() time.Duration { return s.values().max }

func (s *systemView) ReplicationState() consts.ReplicationState { return s.values().repl }

// leaseTTLs returns the mount's default and max lease TTLs.
func (b *backend) leaseTTLs() (def, max time.Duration) {
	return b.System().DefaultLeaseTTL(), b.System().MaxLeaseTTL()
}
