package backend

import (
	"context"
	"fmt"
	"net/url"
	"strings"
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
	if writable {
		if err := b.migrate(ctx, b.storage); err != nil {
			return err
		}
	}
	roles, providers, err := b.load(ctx, b.storage)
	if err != nil {
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

// load reads every role and provider into the inventory and the queue.
func (b *backend) load(ctx context.Context, s logical.Storage) (roles, providers int, err error) {
	names, err := listAll(ctx, s, rolePrefix)
	if err != nil {
		return 0, 0, err
	}
	for _, n := range names {
		r, err := getRole(ctx, s, n)
		if err != nil {
			return 0, 0, err
		}
		if r == nil {
			continue
		}
		roles++
		b.inventory.setRoleConfig(n, r)
		if r.Mode != modeDual {
			continue
		}
		st, err := getDualState(ctx, s, n)
		if err != nil {
			return 0, 0, err
		}
		if st != nil {
			b.inventory.setRole(n, st)
			b.sched.schedule(roleItem(n), st.nextDue())
		}
	}
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
	counts, err := countLedger(ctx, s)
	if err != nil {
		return 0, 0, err
	}
	b.ledgerCounts.reset(counts)
	tombs, err := listTombstones(ctx, s)
	if err != nil {
		return 0, 0, err
	}
	b.tombstones.Store(int64(len(tombs)))
	return roles, providers, nil
}

// migrate brings storage written by an earlier release to schemaVersion,
// once, on the active node. Every step checks before it writes, so a
// migration cut short by a crash is finished by the next start.
func (b *backend) migrate(ctx context.Context, s logical.Storage) error {
	c, err := getMountConfig(ctx, s)
	if err != nil {
		return err
	}
	if c != nil && c.SchemaVersion >= schemaVersion && c.Marker != "" {
		return nil
	}
	if c == nil {
		c = &mountConfig{SchemaVersion: 1}
	}
	from := c.SchemaVersion
	names, err := listAll(ctx, s, providerPrefix)
	if err != nil {
		return err
	}
	now := b.clock.Now()
	for _, n := range names {
		e, err := getProvider(ctx, s, n)
		if err != nil {
			return err
		}
		if e == nil {
			continue
		}
		changed, err := b.adoptLegacyProvider(e, now)
		if err != nil {
			return err
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
			return err
		}
		b.Logger().Info("storage migration: provider given an incarnation; leases issued before the upgrade belong to it",
			"provider", n, "incarnation", e.Incarnation, "legacy_leases_until", formatTime(e.LegacyLeasesUntil))
	}
	roles, err := listAll(ctx, s, rolePrefix)
	if err != nil {
		return err
	}
	for _, n := range roles {
		r, err := getRole(ctx, s, n)
		if err != nil {
			return err
		}
		// A role that kept v0.1.0's default template gets the new default,
		// so tidy can tell its keys from others; custom ones are left alone.
		if r == nil || r.NameTemplate != v010NameTemplate {
			continue
		}
		r.NameTemplate = defaultNameTemplate
		if err := putJSON(ctx, s, rolePrefix+n, r); err != nil {
			return err
		}
		b.Logger().Info("storage migration: role's default name_template now carries the mount marker", "role", n)
	}
	if c.Marker == "" {
		if c.Marker, err = newMarker(); err != nil {
			return err
		}
	}
	c.SchemaVersion, c.MigratedAt = schemaVersion, now
	if err := putJSON(ctx, s, mountConfigKey, c); err != nil {
		return err
	}
	b.Logger().Info("storage migrated", "from_schema", from, "to_schema", schemaVersion)
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
	}
	return time.Time{}
}
