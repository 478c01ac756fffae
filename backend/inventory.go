package backend

import (
	"sort"
	"sync"
	"time"
)

// inventory is the in-memory view of every dual role's and provider's
// rotation state that status and metrics read, so that neither walks
// storage. It is loaded at start and kept current by every write of this
// node. It holds no secret.
type inventory struct {
	mu        sync.RWMutex
	roles     map[string]roleView
	providers map[string]rootView
}

type roleView struct {
	Mode               string
	Provider           string
	CurrentKeyID       string
	CurrentKeyCreated  time.Time
	PreviousKeyID      string
	PreviousKeyRetires time.Time
	NextRotation       time.Time
	LastRotation       time.Time
	LastError          string
	NextRetry          time.Time
}

type rootView struct {
	Type string
	// CanRotateRoot is false for a type (as configured) whose root
	// credential Vault cannot rotate.
	CanRotateRoot bool
	RootKeyID     string
	RootAge       time.Time // when the current root was set or rotated
	RootRotatedAt time.Time
	NextRotation  time.Time
	Pending       int
	LastError     string
	NextRetry     time.Time
}

func newInventory() *inventory {
	return &inventory{roles: map[string]roleView{}, providers: map[string]rootView{}}
}

// setRoleConfig records a role's mode and provider.
func (in *inventory) setRoleConfig(name string, r *roleEntry) {
	in.mu.Lock()
	v := in.roles[name]
	v.Mode, v.Provider = r.Mode, r.Provider
	in.roles[name] = v
	in.mu.Unlock()
}

// setRole records a dual role's key state.
func (in *inventory) setRole(name string, st *dualState) {
	in.mu.Lock()
	defer in.mu.Unlock()
	old := in.roles[name]
	v := roleView{Mode: modeDual, Provider: old.Provider, NextRotation: st.NextRotation, LastRotation: st.LastRotation, LastError: st.LastError, NextRetry: st.NextRetry}
	if c := st.Current; c != nil {
		v.CurrentKeyID, v.CurrentKeyCreated = c.ID, c.PromotedAt
	}
	if p := st.Previous; p != nil {
		v.PreviousKeyID, v.PreviousKeyRetires = p.ID, p.RetireAt
	}
	in.roles[name] = v
}

func (in *inventory) deleteRole(name string) {
	in.mu.Lock()
	delete(in.roles, name)
	in.mu.Unlock()
}

func (in *inventory) setProvider(name string, e *providerEntry, next time.Time) {
	v := rootView{Type: e.Type, CanRotateRoot: e.CanRotateRoot, RootKeyID: e.RootKeyID, RootAge: later(e.RootSetAt, e.RootRotatedAt), RootRotatedAt: e.RootRotatedAt,
		NextRotation: next, Pending: len(e.PendingRootRevocations), LastError: e.LastRootRotationError, NextRetry: e.RootNextRetry}
	in.mu.Lock()
	in.providers[name] = v
	in.mu.Unlock()
}

func (in *inventory) deleteProvider(name string) {
	in.mu.Lock()
	delete(in.providers, name)
	in.mu.Unlock()
}

// snapshot copies the views, sorted by name.
func (in *inventory) snapshot() (roles []namedRole, providers []namedRoot) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	for n, v := range in.roles {
		roles = append(roles, namedRole{n, v})
	}
	for n, v := range in.providers {
		providers = append(providers, namedRoot{n, v})
	}
	sort.Slice(roles, func(i, j int) bool { return roles[i].name < roles[j].name })
	sort.Slice(providers, func(i, j int) bool { return providers[i].name < providers[j].name })
	return roles, providers
}

type namedRole struct {
	name string
	roleView
}

type namedRoot struct {
	name string
	rootView
}
