package backend

import (
	"math"
	"sort"
	"sync"
	"time"
)

// inventory is the in-memory view of every dual role's and provider's
// rotation state that status and metrics read, so that neither walks
// storage. It is loaded at start and kept current by every write of this
// node. It holds no secret.
//
// A mount may have 100,000 roles, so a role costs little here: its record
// sits in one slice (no allocation of its own), its name is shared with
// the index's key, its mode and provider with every role of the same pair,
// and its times are Unix nanoseconds. What most roles never have (a
// previous key, a failure) costs a pointer until they have it.
type inventory struct {
	mu sync.RWMutex
	// index maps a role's name to its record in roles.
	index map[string]int32
	roles []roleRecord
	// kinds holds one roleKind per (mode, provider) pair seen.
	kinds     map[roleKind]*roleKind
	providers map[string]rootView
}

// roleView is what status and metrics show of a role.
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
	// ExpiresAt and RenewAt: the current key's provider-side expiry and
	// the deadline it is rotated by because of it (zero: none).
	ExpiresAt time.Time
	RenewAt   time.Time
}

// roleKind is a role's mode and provider.
type roleKind struct{ mode, provider string }

// roleRecord is how the inventory keeps a roleView.
type roleRecord struct {
	name         string
	kind         *roleKind
	currentKeyID string
	created      stamp
	next         stamp
	last         stamp
	expires      stamp
	renew        stamp
	// full, when set, is the whole view (mode and provider aside) and the
	// fields above are unused: for a role with a previous key, a failure,
	// or a time a stamp cannot hold.
	full *roleView
}

// stamp is a time as Unix nanoseconds; 0 is the zero time.
type stamp int64

// unixNano returns t as Unix nanoseconds and whether that is exact (t is
// within about 292 years of 1970); outside, it saturates.
func unixNano(t time.Time) (int64, bool) {
	const maxSec = math.MaxInt64/int64(time.Second) - 1
	switch s := t.Unix(); {
	case s > maxSec:
		return math.MaxInt64, false
	case s < -maxSec:
		return math.MinInt64, false
	}
	return t.UnixNano(), true
}

// toStamp returns t as a stamp, ok false when a stamp cannot hold it.
func toStamp(t time.Time) (stamp, bool) {
	if t.IsZero() {
		return 0, true
	}
	n, ok := unixNano(t)
	return stamp(n), ok && n != 0
}

func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(s)).UTC()
}

func newInventory() *inventory {
	return &inventory{index: map[string]int32{}, kinds: map[roleKind]*roleKind{}, providers: map[string]rootView{}}
}

// reserve makes room for n more roles, for a load that knows how many.
func (in *inventory) reserve(n int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.roles) == 0 && n > cap(in.roles) {
		in.roles = make([]roleRecord, 0, n)
		in.index = make(map[string]int32, n)
	}
}

// viewLocked returns the view of the role's record.
func (in *inventory) viewLocked(r *roleRecord) roleView {
	var v roleView
	if r.full != nil {
		v = *r.full
	} else {
		v = roleView{CurrentKeyID: r.currentKeyID, CurrentKeyCreated: r.created.time(), NextRotation: r.next.time(),
			LastRotation: r.last.time(), ExpiresAt: r.expires.time(), RenewAt: r.renew.time()}
	}
	v.Mode, v.Provider = r.kind.mode, r.kind.provider
	return v
}

// putLocked stores v as the role's view.
func (in *inventory) putLocked(name string, v roleView) {
	k := roleKind{v.Mode, v.Provider}
	kind := in.kinds[k]
	if kind == nil {
		kind = &k
		in.kinds[k] = kind
	}
	r := roleRecord{name: name, kind: kind, currentKeyID: v.CurrentKeyID}
	var ok [5]bool
	r.created, ok[0] = toStamp(v.CurrentKeyCreated)
	r.next, ok[1] = toStamp(v.NextRotation)
	r.last, ok[2] = toStamp(v.LastRotation)
	r.expires, ok[3] = toStamp(v.ExpiresAt)
	r.renew, ok[4] = toStamp(v.RenewAt)
	if ok != [5]bool{true, true, true, true, true} || v.PreviousKeyID != "" || !v.PreviousKeyRetires.IsZero() ||
		v.LastError != "" || !v.NextRetry.IsZero() {
		full := v
		full.Mode, full.Provider = "", ""
		r = roleRecord{name: name, kind: kind, full: &full}
	}
	if i, ok := in.index[name]; ok {
		r.name = in.roles[i].name // the index's key
		in.roles[i] = r
		return
	}
	in.index[name] = int32(len(in.roles))
	in.roles = append(in.roles, r)
}

// get returns the role's view; ok is false when there is none.
func (in *inventory) getLocked(name string) (v roleView, ok bool) {
	i, ok := in.index[name]
	if !ok {
		return roleView{}, false
	}
	return in.viewLocked(&in.roles[i]), true
}

// setRoleConfig records a role's mode and provider.
func (in *inventory) setRoleConfig(name string, r *roleEntry) {
	in.mu.Lock()
	defer in.mu.Unlock()
	v, _ := in.getLocked(name)
	v.Mode, v.Provider = r.Mode, r.Provider
	in.putLocked(name, v)
}

// setRole records a dual role's key state.
func (in *inventory) setRole(name string, st *dualState) {
	in.mu.Lock()
	defer in.mu.Unlock()
	old, _ := in.getLocked(name)
	in.putLocked(name, dualView(old.Provider, st))
}

// loadRoles records roles as start-up read them: each one's mode and
// provider and, for a dual role with keys, their state.
func (in *inventory) loadRoles(roles []loadedRole) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, l := range roles {
		v := roleView{Mode: l.head.Mode, Provider: l.head.Provider}
		if l.st != nil {
			v = dualView(l.head.Provider, l.st)
		}
		in.putLocked(l.name, v)
	}
}

// dualView is the view of a dual role with key state st.
func dualView(provider string, st *dualState) roleView {
	v := roleView{Mode: modeDual, Provider: provider, NextRotation: st.NextRotation, LastRotation: st.LastRotation, LastError: st.LastError, NextRetry: st.NextRetry}
	if c := st.Current; c != nil {
		v.CurrentKeyID, v.CurrentKeyCreated = c.ID, c.PromotedAt
		v.ExpiresAt, v.RenewAt = c.ExpiresAt, c.RenewAt
	}
	if p := st.Previous; p != nil {
		v.PreviousKeyID, v.PreviousKeyRetires = p.ID, p.RetireAt
	}
	return v
}

func (in *inventory) deleteRole(name string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	i, ok := in.index[name]
	if !ok {
		return
	}
	last := int32(len(in.roles) - 1)
	if i != last {
		in.roles[i] = in.roles[last]
		in.index[in.roles[i].name] = i
	}
	in.roles[last] = roleRecord{}
	in.roles = in.roles[:last]
	delete(in.index, name)
}

// role is one role's view.
func (in *inventory) role(name string) (roleView, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.getLocked(name)
}

// roleProvider returns a role's provider ("" when the role is unknown).
func (in *inventory) roleProvider(name string) string {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if i, ok := in.index[name]; ok {
		return in.roles[i].kind.provider
	}
	return ""
}

// maxConcurrency returns a provider's max_concurrency (0 when the
// provider is unknown).
func (in *inventory) maxConcurrency(name string) int {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.providers[name].MaxConcurrency
}

func (in *inventory) setProvider(name string, e *providerEntry, next time.Time) {
	v := rootView{Type: e.Type, MaxConcurrency: e.MaxConcurrency, CanRotateRoot: e.CanRotateRoot, RootKeyID: e.RootKeyID, RootAge: later(e.RootSetAt, e.RootRotatedAt), RootRotatedAt: e.RootRotatedAt,
		NextRotation: next, Pending: len(e.PendingRootRevocations), LastError: e.LastRootRotationError, NextRetry: e.RootNextRetry,
		ExpiresAt: e.RootExpiresAt, RenewAt: rootRenewAt(e)}
	in.mu.Lock()
	in.providers[name] = v
	in.mu.Unlock()
}

func (in *inventory) deleteProvider(name string) {
	in.mu.Lock()
	delete(in.providers, name)
	in.mu.Unlock()
}

type rootView struct {
	Type          string
	CanRotateRoot bool
	RootKeyID     string
	RootAge       time.Time // when the current root was set or rotated
	RootRotatedAt time.Time
	NextRotation  time.Time
	Pending       int
	LastError     string
	NextRetry     time.Time
	ExpiresAt     time.Time
	RenewAt       time.Time

	// MaxConcurrency is the provider's max_concurrency: the scheduler's
	// cap on its jobs (providerJobLimit).
	MaxConcurrency int
}

// snapshot copies the views, sorted by name.
func (in *inventory) snapshot() (roles []namedRole, providers []namedRoot) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	roles = make([]namedRole, 0, len(in.roles))
	for i := range in.roles {
		roles = append(roles, namedRole{in.roles[i].name, in.viewLocked(&in.roles[i])})
	}
	providers = make([]namedRoot, 0, len(in.providers))
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
