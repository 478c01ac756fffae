package backend

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// initialize loads the inventory and the rotation queue from storage and,
// where this node may write (the active node of the primary, invariant 5),
// starts the scheduler. A rotation missed while Vault was down is due at
// once.
func (b *backend) initialize(ctx context.Context, req *logical.InitializationRequest) error {
	b.setStorage(req.Storage)
	start := time.Now()
	writable := b.WriteSafeReplicationState()
	var mig *migration
	if writable {
		var err error
		if mig, err = b.migrate(ctx, b.storage); err != nil {
			return err
		}
	}
	roles, providers, err := b.load(ctx, b.storage, mig)
	if err != nil {
		return err
	}
	if err := b.finishMigration(ctx, b.storage, mig); err != nil {
		return err
	}
	if err := b.scheduleAutoTidy(ctx, b.storage); err != nil {
		return err
	}
	if !writable {
		b.Logger().Info("not starting the rotation scheduler: this node cannot write (standby or secondary)")
		return nil
	}
	b.sched.start()
	b.Logger().Info("rotation scheduler started", "roles", roles, "providers", providers,
		"queued", b.sched.len(), "load_time", time.Since(start).String())
	return nil
}

// loadReaders bounds the storage reads start-up keeps in flight. Each is a
// round trip to Vault's storage; one at a time, 100,000 roles would make
// start-up wait mostly on those.
const loadReaders = 16

// loadChunk is how many roles a start-up reader reads before it records
// them.
const loadChunk = 256

// roleHead is the part of a stored role start-up needs: the inventory's
// mode and provider.
type roleHead struct {
	Provider string `json:"provider"`
	Mode     string `json:"mode"`
}

// migratingRoleHead adds the template a pending migration looks at.
type migratingRoleHead struct {
	roleHead
	NameTemplate string `json:"name_template"`
}

// dualHead is the part of a dual role's stored key state that the
// inventory and the queue need (inventory.setRole, dualState.nextDue):
// start-up decodes it instead of the whole dualState.
type dualHead struct {
	Current      *keyHead  `json:"current"`
	Previous     *keyHead  `json:"previous"`
	NextRotation time.Time `json:"next_rotation"`
	LastRotation time.Time `json:"last_rotation"`
	LastError    string    `json:"last_error"`
	NextRetry    time.Time `json:"next_retry"`
}

type keyHead struct {
	ID         string    `json:"id"`
	ExpiresAt  time.Time `json:"expires_at"`
	RenewAt    time.Time `json:"renew_at"`
	PromotedAt time.Time `json:"promoted_at"`
	RetireAt   time.Time `json:"retire_at"`
}

func (k *keyHead) key() *dualKey {
	if k == nil {
		return nil
	}
	return &dualKey{ID: k.ID, ExpiresAt: k.ExpiresAt, RenewAt: k.RenewAt, PromotedAt: k.PromotedAt, RetireAt: k.RetireAt}
}

// state is the head as a dualState with only those fields set.
func (h *dualHead) state() *dualState {
	return &dualState{Current: h.Current.key(), Previous: h.Previous.key(), NextRotation: h.NextRotation,
		LastRotation: h.LastRotation, LastError: h.LastError, NextRetry: h.NextRetry}
}

// loadedRole is one role as start-up read it (found false: gone
// meanwhile).
type loadedRole struct {
	name  string
	found bool
	head  roleHead
	st    *dualState // a dual role's keys, if it has any
}

// readRole reads what start-up needs of one role, and applies the role
// step of a pending migration to it.
func (b *backend) readRole(ctx context.Context, s logical.Storage, name string, mig *migration) (loadedRole, error) {
	var h migratingRoleHead
	var into any = &h.roleHead // the template only when it matters
	if mig != nil {
		into = &h
	}
	if ok, err := getJSON(ctx, s, rolePrefix+name, into); err != nil || !ok {
		return loadedRole{}, err
	}
	if mig != nil {
		if err := b.migrateRole(ctx, s, name, h.NameTemplate); err != nil {
			return loadedRole{}, err
		}
	}
	out := loadedRole{name: name, found: true, head: h.roleHead}
	if h.Mode != modeDual {
		return out, nil
	}
	var d dualHead
	ok, err := getJSON(ctx, s, roleKeysPrefix+name, &d)
	if err != nil {
		return loadedRole{}, err
	}
	if ok {
		out.st = d.state()
	}
	return out, nil
}

// load reads every role and provider into the inventory and the queue,
// and applies mig's role step (when not nil) on the way.
func (b *backend) load(ctx context.Context, s logical.Storage, mig *migration) (roles, providers int, err error) {
	names, err := listAll(ctx, s, rolePrefix)
	if err != nil {
		return 0, 0, err
	}
	b.inventory.reserve(len(names))
	b.sched.reserve(len(names))
	// Readers take the names a chunk at a time and record each chunk
	// under one lock of the inventory and one of the queue: a lock per
	// role, sixteen readers contending for it, was most of the wall time.
	chunks := (len(names) + loadChunk - 1) / loadChunk
	var n atomic.Int64
	err = parallel(ctx, chunks, loadReaders, func(ctx context.Context, c int) error {
		batch := make([]loadedRole, 0, loadChunk)
		for _, name := range names[c*loadChunk : min(len(names), (c+1)*loadChunk)] {
			l, err := b.readRole(ctx, s, name, mig)
			if err != nil {
				return err
			}
			if l.found {
				batch = append(batch, l)
			}
		}
		n.Add(int64(len(batch)))
		b.inventory.loadRoles(batch)
		dual := batch[:0]
		for _, l := range batch {
			if l.st != nil {
				dual = append(dual, l)
			}
		}
		b.sched.scheduleMany(len(dual), func(i int) (string, time.Time) { return roleItem(dual[i].name), dual[i].st.nextDue() })
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	roles = int(n.Load())
	names, err = listAll(ctx, s, providerPrefix)
	if err != nil {
		return 0, 0, err
	}
	for _, n := range names {
		e, err := getProvider(ctx, s, n)
		if err != nil {
			return 0, 0, err
		}
		if e == nil {
			continue
		}
		providers++
		b.inventory.setProvider(n, e, b.nextRootRotation(e))
		b.sched.schedule(rootItem(n), b.rootDue(e))
	}
	counts, retiring, err := countLedger(ctx, s)
	if err != nil {
		return 0, 0, err
	}
	b.ledgerCounts.reset(counts)
	if err := b.scheduleRetirements(ctx, s, retiring); err != nil {
		return 0, 0, err
	}
	tombs, err := listTombstones(ctx, s)
	if err != nil {
		return 0, 0, err
	}
	b.tombstones.Store(int64(len(tombs)))
	roots := 0
	for _, r := range tombs {
		t, err := getTombstone(ctx, s, r.Name, r.Incarnation)
		if err != nil {
			return 0, 0, err
		}
		if t != nil {
			roots += len(t.Provider.PendingRootRevocations)
		}
	}
	b.tombstoneRoots.Store(int64(roots))
	return roles, providers, nil
}

// parallel runs f(0) … f(n-1) on up to width goroutines and returns the
// first error (the others' context is then cancelled).
func parallel(ctx context.Context, n, width int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, width) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// migration is a storage migration under way: migrate has done the
// providers, load does the roles, finishMigration records it.
type migration struct {
	config *mountConfig
	from   int
}

// migrate brings storage written by an earlier release to schemaVersion,
// once, on the active node. Every step checks before it writes, so a
// migration cut short by a crash is finished by the next start (the
// schema version is stored last, by finishMigration). It does the
// providers and returns the migration for load to do the roles (nil:
// nothing to do).
func (b *backend) migrate(ctx context.Context, s logical.Storage) (*migration, error) {
	c, err := getMountConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if c != nil && c.SchemaVersion >= schemaVersion && c.Marker != "" {
		return nil, nil
	}
	if c == nil {
		c = &mountConfig{SchemaVersion: 1}
	}
	from := c.SchemaVersion
	names, err := listAll(ctx, s, providerPrefix)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	for _, n := range names {
		e, err := getProvider(ctx, s, n)
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue
		}
		changed, err := b.adoptLegacyProvider(e, now)
		if err != nil {
			return nil, err
		}
		// v0.1.0 took plain http to any host and any request_timeout; v0.2.0
		// refuses both at write. The entry keeps working as it did, and a
		// read shows the choice: allow_insecure_http=true.
		if u, err := url.Parse(e.BaseURL); err == nil && u.Scheme == "http" && !loopbackHost(u.Hostname()) && !e.AllowInsecureHTTP {
			e.AllowInsecureHTTP, changed = true, true
			b.Logger().Warn("storage migration: provider sends its root credential over plain http; allow_insecure_http set to keep it working (use https)", "provider", n)
		}
		if e.RequestTimeout > maxRequestTimeout {
			e.RequestTimeout, changed = maxRequestTimeout, true
			b.Logger().Info("storage migration: request_timeout capped", "provider", n, "request_timeout", maxRequestTimeout.String())
		}
		if !changed {
			continue
		}
		if err := putJSON(ctx, s, providerPrefix+n, e); err != nil {
			return nil, err
		}
		b.Logger().Info("storage migration: provider given an incarnation; leases issued before the upgrade belong to it",
			"provider", n, "incarnation", e.Incarnation, "legacy_leases_until", formatTime(e.LegacyLeasesUntil))
	}
	return &migration{config: c, from: from}, nil
}

// migrateRole is the migration's role step, for one role as load read it.
// A role that kept v0.1.0's default template gets the new default, so
// tidy can tell its keys from others; custom ones are left alone.
func (b *backend) migrateRole(ctx context.Context, s logical.Storage, name, template string) error {
	if template != v010NameTemplate {
		return nil
	}
	r, err := getRole(ctx, s, name)
	if err != nil || r == nil || r.NameTemplate != v010NameTemplate {
		return err
	}
	r.NameTemplate = defaultNameTemplate
	if err := putJSON(ctx, s, rolePrefix+name, r); err != nil {
		return err
	}
	b.Logger().Info("storage migration: role's default name_template now carries the mount marker", "role", name)
	return nil
}

// finishMigration stores the schema version once every step is done.
func (b *backend) finishMigration(ctx context.Context, s logical.Storage, mig *migration) error {
	if mig == nil {
		return nil
	}
	c := mig.config
	if c.Marker == "" {
		var err error
		if c.Marker, err = newMarker(); err != nil {
			return err
		}
	}
	c.SchemaVersion, c.MigratedAt = schemaVersion, b.clock.Now()
	if err := putJSON(ctx, s, mountConfigKey, c); err != nil {
		return err
	}
	b.Logger().Info("storage migrated", "from_schema", mig.from, "to_schema", schemaVersion)
	return nil
}

// adoptLegacyProvider gives a provider stored by v0.1.0 an incarnation.
// Its leases carry none and are not in the ledger, so a delete keeps its
// config as a tombstone until they can no longer be outstanding (the
// mount's max lease TTL from now). It reports whether e changed.
func (b *backend) adoptLegacyProvider(e *providerEntry, now time.Time) (bool, error) {
	if e.Incarnation != "" {
		return false, nil
	}
	inc, err := newIncarnation()
	if err != nil {
		return false, err
	}
	e.Incarnation = inc
	e.LegacyLeasesUntil = now.Add(b.System().MaxLeaseTTL())
	return true, nil
}

// listAll lists the names directly under prefix.
func listAll(ctx context.Context, s logical.Storage, prefix string) ([]string, error) {
	names, err := s.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	out := names[:0]
	for _, n := range names {
		if !strings.HasSuffix(n, "/") {
			out = append(out, n)
		}
	}
	return out, nil
}

// runItem runs one scheduler item and says when it is next due.
func (b *backend) runItem(ctx context.Context, item string) time.Time {
	kind, name, _ := strings.Cut(item, "/")
	switch kind {
	case "role":
		return b.roleJob(ctx, name)
	case "root":
		return b.rootJob(ctx, name)
	case "tidy":
		return b.autoTidyJob(ctx)
	case "retire":
		return b.retireJob(ctx, name)
	}
	return time.Time{}
}

// itemProvider names the provider a scheduler item's job calls: a role's
// provider, a root's own; none for auto-tidy (tidy/auto).
func (b *backend) itemProvider(item string) string {
	kind, name, _ := strings.Cut(item, "/")
	switch kind {
	case "role":
		return b.inventory.roleProvider(name)
	case "root":
		return name
	case "retire":
		r, _ := parseRetireItem(name)
		return r.provider
	}
	return ""
}

// jobLimit is how many scheduled jobs of a provider run at once, from its
// max_concurrency as last written (see providerJobLimit).
func (b *backend) jobLimit(provider string) int {
	return providerJobLimit(b.inventory.maxConcurrency(provider))
}
