package backend

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// The provider client cache and the use-locks that let a root rotation wait
// for the operations still holding the old root. Both are on every creds
// read, so neither takes a lock shared by the whole mount: the cache is a
// sync.Map and each provider has its own RWMutex.

// useLocks hold one RWMutex per provider name. They are never dropped: a
// mount has few provider names, and dropping one safely would need the
// mount-wide bookkeeping this avoids.
type useLocks struct{ m sync.Map } // name -> *sync.RWMutex

func (u *useLocks) get(name string) *sync.RWMutex {
	if v, ok := u.m.Load(name); ok {
		return v.(*sync.RWMutex)
	}
	v, _ := u.m.LoadOrStore(name, new(sync.RWMutex))
	return v.(*sync.RWMutex)
}

// rlock is taken by each operation using the provider's client.
func (u *useLocks) rlock(name string) func() {
	l := u.get(name)
	l.RLock()
	return l.RUnlock
}

// lock waits until no operation holds the provider's client.
func (u *useLocks) lock(name string) func() {
	l := u.get(name)
	l.Lock()
	return l.Unlock
}

// providerClient is a built client for one provider instance; it is cached
// until the provider's config changes.
type providerClient struct {
	name  string
	entry *providerEntry
	typ   *clients.Type
	api   clients.Provider
	// budget is the provider's request budget, shared by all its clients.
	budget *httpx.Budget
	// tombstoned: built from the tombstone of a deleted provider.
	tombstoned bool
}

func (b *backend) buildClient(name string, e *providerEntry) (*providerClient, error) {
	typ, ok := clients.Lookup(e.Type)
	if !ok {
		return nil, fmt.Errorf("provider %q has unknown type %q", name, e.Type)
	}
	budget := b.budget(name, typ, e)
	hc, err := httpx.New(httpx.Options{
		Provider:        name,
		Timeout:         e.RequestTimeout,
		MaxConcurrency:  e.MaxConcurrency,
		TLSCACert:       e.TLSCACert,
		Observe:         b.observeProviderRequest(name),
		ObserveAnswer:   b.observeProviderAnswer(name),
		Budget:          budget,
		ObserveThrottle: b.observeProviderThrottle(name),
	})
	if err != nil {
		return nil, err
	}
	api, err := typ.Build(clients.Config{Name: name, BaseURL: e.BaseURL, Fields: e.Fields, HTTP: hc})
	if err != nil {
		return nil, err
	}
	return &providerClient{budget: budget, name: name, entry: e, typ: typ, api: api}, nil
}

// client returns the cached client of a provider, building it on first use,
// and a release func to call once done with it; until then a root rotation
// of the provider does not revoke the root the client holds. It returns a
// nil client when the provider does not exist.
func (b *backend) client(ctx context.Context, s logical.Storage, name string) (*providerClient, func(), error) {
	release := b.useLocks.rlock(name)
	pc, err := b.cachedClient(ctx, s, name)
	if err != nil || pc == nil {
		release()
		return nil, func() {}, err
	}
	return pc, release, nil
}

// clientFor returns the client of the provider incarnation that created a
// key: the live provider when the incarnation is its own, else the
// tombstone of that incarnation. A record without an incarnation (written
// by v0.1.0) belongs to the incarnation that held the provider's name at
// the upgrade (the one with LegacyLeasesUntil set), live or tombstoned. It
// returns a nil client when no config is left.
func (b *backend) clientFor(ctx context.Context, s logical.Storage, name, incarnation string) (*providerClient, func(), error) {
	pc, release, err := b.client(ctx, s, name)
	if err != nil {
		return nil, release, err
	}
	if pc != nil && (pc.entry.Incarnation == incarnation ||
		(incarnation == "" && (!pc.entry.LegacyLeasesUntil.IsZero() || pc.entry.Incarnation == ""))) {
		return pc, release, nil
	}
	release()
	if incarnation == "" {
		if incarnation, err = b.legacyTombstone(ctx, s, name); err != nil || incarnation == "" {
			// No tombstone holds legacy leases: the live provider, if any.
			return b.client(ctx, s, name)
		}
	}
	key := tombstoneClientKey(name, incarnation)
	if v, ok := b.clients.Load(key); ok {
		pc = v.(*providerClient)
	} else {
		t, err := getTombstone(ctx, s, name, incarnation)
		if err != nil || t == nil {
			return nil, func() {}, err
		}
		if pc, err = b.buildClient(name, t.Provider); err != nil {
			return nil, func() {}, err
		}
		pc.tombstoned = true
		b.clients.Store(key, pc)
	}
	return pc, func() {}, nil
}

// legacyTombstone returns the incarnation of the tombstone of name that
// holds leases issued before the upgrade to incarnations, or "".
func (b *backend) legacyTombstone(ctx context.Context, s logical.Storage, name string) (string, error) {
	incs, err := listAll(ctx, s, tombstonePrefix+name+"/")
	if err != nil {
		return "", err
	}
	for _, inc := range incs {
		t, err := getTombstone(ctx, s, name, inc)
		if err != nil {
			return "", err
		}
		if t != nil && !t.Provider.LegacyLeasesUntil.IsZero() {
			return inc, nil
		}
	}
	return "", nil
}

// rootBarrier returns once every operation that may hold a client of the
// provider built before now has released it.
func (b *backend) rootBarrier(name string) {
	b.useLocks.lock(name)()
}

func (b *backend) cachedClient(ctx context.Context, s logical.Storage, name string) (*providerClient, error) {
	if v, ok := b.clients.Load(name); ok {
		return v.(*providerClient), nil
	}
	// The generation is taken before the provider is read: if its config
	// changes (an update, a root rotation, another node's write) between
	// that read and the store below, the client built here holds the old
	// config, and must serve this one operation only, never the cache.
	g := b.clientGen(name)
	gen := g.current()
	e, err := getProvider(ctx, s, name)
	if err != nil || e == nil {
		return nil, err
	}
	pc, err := b.buildClient(name, e)
	if err != nil {
		return nil, err
	}
	// The stored config sets the budget's rate (a write changing
	// max_requests_per_second dropped the cached client).
	pc.budget.SetRate(effectiveRequestsPerSecond(pc.typ, e))
	if b.testHookClientBuilt != nil {
		b.testHookClientBuilt(name)
	}
	g.store(gen, func() { b.clients.Store(name, pc) })
	return pc, nil
}

// dropClient forgets the cached client of a provider whose stored config
// has just changed; a client being built from the old config is not cached
// either (see cachedClient).
func (b *backend) dropClient(name string) {
	b.clientGen(name).bump(func() { b.clients.Delete(name) })
}

// clientGeneration counts the changes of one provider's config seen by
// this node. Only cache misses and changes take its lock; a creds read
// whose client is cached never does.
type clientGeneration struct {
	mu sync.Mutex
	n  uint64
}

func (b *backend) clientGen(name string) *clientGeneration {
	if v, ok := b.clientGens.Load(name); ok {
		return v.(*clientGeneration)
	}
	v, _ := b.clientGens.LoadOrStore(name, new(clientGeneration))
	return v.(*clientGeneration)
}

func (g *clientGeneration) current() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n
}

// store runs f if no change happened since gen was read.
func (g *clientGeneration) store(gen uint64, f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == gen {
		f()
	}
}

// bump records a change, running f under the same lock.
func (g *clientGeneration) bump(f func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n++
	f()
}
