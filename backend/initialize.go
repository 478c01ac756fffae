package backend

import (
	"context"
	"fmt"
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
	roles, providers, err := b.load(ctx, b.storage)
	if err != nil {
		return err
	}
	if err := b.scheduleAutoTidy(ctx, b.storage); err != nil {
		return err
	}
	if !b.WriteSafeReplicationState() {
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
	return roles, providers, nil
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
