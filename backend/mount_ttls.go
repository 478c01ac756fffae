package backend

import (
	"sync/atomic"
	"time"
)

// mountTTLRefresh is how long the mount's default and max lease TTLs are
// reused before they are asked of Vault again. Each ask is a round trip
// from the plugin to Vault; every creds read needs both values. A tune of
// the mount's TTLs takes effect within this, and Vault itself caps every
// lease at the mount's max TTL regardless.
const mountTTLRefresh = time.Second

// mountTTLs caches the mount's lease TTLs without a lock.
type mountTTLs struct {
	v atomic.Pointer[mountTTLValues]
}

type mountTTLValues struct {
	def, max time.Duration
	at       time.Time
}

// leaseTTLs returns the mount's default and max lease TTLs.
func (b *backend) leaseTTLs() (def, max time.Duration) {
	now := time.Now()
	if v := b.ttls.v.Load(); v != nil && now.Sub(v.at) < mountTTLRefresh && now.Sub(v.at) >= 0 {
		return v.def, v.max
	}
	v := &mountTTLValues{def: b.System().DefaultLeaseTTL(), max: b.System().MaxLeaseTTL(), at: now}
	b.ttls.v.Store(v)
	return v.def, v.max
}
