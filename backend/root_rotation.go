package backend

// The root engine: replacing a provider's root credential (manually through
// rotate-root, or on the scheduler's timer) and revoking the roots it
// replaced. The path handlers are in path_rotate.go.

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

const walKindRoot = "root"

// walRoot is written before a new root credential is created and names it
// as soon as it exists, so one that was never stored gets discarded.
type walRoot struct {
	Provider string `json:"provider"`
	Name     string `json:"name"`
	RootID   string `json:"root_id"`
}

// rotateRoot replaces a provider's root credential; the caller holds the
// provider's lock. Create-then-delete types: the new root is created,
// verified with itself, stored, and only then is the old one revoked.
// Roll-style types (the old root dies at once): the new root is stored
// before anything else.
func (b *backend) rotateRoot(ctx context.Context, s logical.Storage, name string, e *providerEntry) (*providerEntry, error) {
	pc, err := b.buildClient(name, e)
	if err != nil {
		return nil, err
	}
	pc = pc.withDeadline()
	roll := pc.api.Capabilities().NativeRoll
	now := b.clock.Now()
	wal := walRoot{Provider: name, Name: fmt.Sprintf("vault-root-%s-%d", name, now.UnixNano())}
	walID, err := framework.PutWAL(ctx, s, walKindRoot, &wal)
	if err != nil {
		return nil, fmt.Errorf("writing WAL: %w", err)
	}
	root, err := pc.api.CreateRoot(ctx, wal.Name)
	if err != nil {
		if definitelyNotCreated(err) || roll {
			_ = framework.DeleteWAL(ctx, s, walID)
		}
		return nil, err
	}

	ne := *e
	ne.Fields = make(map[string]string, len(e.Fields)+len(root.Fields))
	maps.Copy(ne.Fields, e.Fields)
	maps.Copy(ne.Fields, root.Fields)
	if root.ID != "" {
		ne.RootKeyID = root.ID
	}
	ne.RootRotatedAt = b.clock.Now()
	ne.RootExpiresAt, ne.RootExpiryFrom = root.ExpiresAt, ne.RootRotatedAt
	ne.LastRootRotationError, ne.RootFailures, ne.RootNextRetry = "", 0, time.Time{}

	if roll {
		// The old root is already dead: nothing may come before storing the
		// new one. Retry the write; if it still fails, say so loudly (the
		// runbook covers recovering a root lost after a roll).
		var perr error
		for attempt := 0; attempt < 5; attempt++ {
			if perr = b.putProvider(ctx, s, name, &ne); perr == nil {
				break
			}
		}
		_ = framework.DeleteWAL(ctx, s, walID)
		if perr != nil {
			b.Logger().Error("ROOT CREDENTIAL LOST: the provider rolled its root but storing the new one failed; see the runbook", "provider", name, "error", perr)
			return nil, fmt.Errorf("the provider rolled the root but storing it failed: %w", perr)
		}
		if err := pc.api.VerifyRoot(ctx, root); err != nil {
			return &ne, fmt.Errorf("the rolled root is stored but failed verification: %w", err)
		}
		return &ne, nil
	}

	walID2, err := b.recordRootInWAL(ctx, s, pc, wal, walID, root)
	if err != nil {
		return nil, err
	}
	if err := pc.api.VerifyRoot(ctx, root); err != nil {
		if b.discardRoot(ctx, pc, root) == nil {
			_ = framework.DeleteWAL(ctx, s, walID2)
		}
		return nil, fmt.Errorf("the new root failed verification; the old one is kept: %w", err)
	}
	ne.PendingRootRevocations = append(append([]string(nil), e.PendingRootRevocations...), e.RootKeyID)
	if err := b.putProvider(ctx, s, name, &ne); err != nil {
		return nil, err // the WAL entry names the new root; rollback settles it
	}
	_ = framework.DeleteWAL(ctx, s, walID2)
	// Operations that picked up the old root finish before it is revoked;
	// later ones build their client from the new root.
	b.rootBarrier(name)
	b.revokeOldRoots(ctx, s, name, &ne)
	return &ne, nil
}

// recordRootInWAL names a new root in its WAL entry, in place of the entry
// written before the create; if that fails the root is discarded.
func (b *backend) recordRootInWAL(ctx context.Context, s logical.Storage, pc *providerClient, wal walRoot, walID string, root clients.Root) (string, error) {
	wal.RootID = root.ID
	walID2, err := framework.PutWAL(ctx, s, walKindRoot, &wal)
	if err != nil {
		b.discardRoot(ctx, pc, root)
		return "", fmt.Errorf("writing WAL: %w", err)
	}
	_ = framework.DeleteWAL(ctx, s, walID)
	return walID2, nil
}

// discardRoot removes a new root that was never stored, using the old one.
func (b *backend) discardRoot(ctx context.Context, pc *providerClient, root clients.Root) error {
	var err error
	if d, ok := pc.api.(clients.RootDiscarder); ok {
		err = d.DiscardRoot(ctx, root)
	} else {
		err = pc.api.RevokeRoot(ctx, root.ID)
	}
	if err != nil {
		b.Logger().Warn("could not discard an unused new root; WAL rollback will retry", "provider", pc.name, "root_key_id", root.ID, "error", err)
	}
	return err
}

// revokeOldRoots revokes replaced roots with the current one; failures stay
// pending and are retried by the scheduler.
func (b *backend) revokeOldRoots(ctx context.Context, s logical.Storage, name string, e *providerEntry) {
	if len(e.PendingRootRevocations) == 0 {
		return
	}
	pc, release, err := b.client(ctx, s, name)
	defer release()
	if err == nil && pc == nil {
		err = fmt.Errorf("provider %q does not exist", name)
	}
	pc = pc.withDeadline()
	var left []string
	for _, id := range e.PendingRootRevocations {
		if err == nil {
			if rerr := pc.api.RevokeRoot(ctx, id); rerr != nil {
				err = rerr
			} else {
				b.Logger().Info("revoked the replaced root credential", "provider", name, "root_key_id", id)
				continue
			}
		}
		left = append(left, id)
	}
	e.PendingRootRevocations = left
	now := b.clock.Now()
	if err != nil {
		e.RootFailures++
		e.LastRootRotationError = "revoking the old root: " + err.Error()
		e.RootNextRetry = now.Add(retryDelay(e.RootFailures, e.Rotation.minInterval(now), err))
	} else {
		e.RootFailures, e.RootNextRetry, e.LastRootRotationError = 0, time.Time{}, ""
	}
	pctx, cancel := persistContext(ctx)
	defer cancel()
	if perr := b.putProvider(pctx, s, name, e); perr != nil {
		b.Logger().Error("storing provider after root revocation", "provider", name, "error", perr)
	}
}

// nextRootRotation is when the provider's root is next rotated on a timer:
// its period or schedule, or earlier its expiry deadline (rootRenewAt).
// disable_automated_rotation turns both off.
func (b *backend) nextRootRotation(e *providerEntry) time.Time {
	if !e.CanRotateRoot || e.Rotation.Disabled {
		return time.Time{}
	}
	var next time.Time
	if e.Rotation.automated() {
		next = e.Rotation.next(later(e.RootSetAt, e.RootRotatedAt))
	}
	return earliest(next, rootRenewAt(e))
}

// rootDue is when the scheduler must next look at the provider: pending
// revocations of old roots first, else the next rotation (after any retry
// wait). A new rotation waits until old roots are revoked, so at most two
// roots live at once.
func (b *backend) rootDue(e *providerEntry) time.Time {
	if len(e.PendingRootRevocations) > 0 {
		return later(e.RootNextRetry, b.clock.Now())
	}
	next := b.nextRootRotation(e)
	if next.IsZero() {
		return next
	}
	return later(next, e.RootNextRetry)
}

// rootJob is the scheduler's work for one provider: retry pending
// revocations of old roots, and rotate the root when due.
func (b *backend) rootJob(ctx context.Context, name string) time.Time {
	defer b.locks.lock(lockKey("provider", name))()
	s := b.storage
	e, err := getProvider(ctx, s, name)
	if err != nil {
		b.Logger().Error("root rotation: reading provider", "provider", name, "error", err)
		return b.clock.Now().Add(30 * backoffBase)
	}
	if e == nil {
		return time.Time{}
	}
	now := b.clock.Now()
	if len(e.PendingRootRevocations) > 0 && !now.Before(e.RootNextRetry) {
		b.revokeOldRoots(ctx, s, name, e)
		return b.rootDue(e)
	}
	next := b.nextRootRotation(e)
	if next.IsZero() || now.Before(next) || now.Before(e.RootNextRetry) {
		return b.rootDue(e)
	}
	ne, err := b.rotateRoot(ctx, s, name, e)
	if err != nil {
		now = b.clock.Now() // after the HTTP layer's own retries
		b.metrics.rotation("root", name, "failure")
		e.RootFailures++
		e.LastRootRotationError = err.Error()
		e.RootNextRetry = now.Add(retryDelay(e.RootFailures, e.Rotation.minInterval(now), err))
		renewAt := rootRenewAt(e)
		expiryDriven := !renewAt.IsZero() && !now.Before(renewAt)
		if w := e.Rotation.Window; w > 0 && e.Rotation.Schedule != "" && !expiryDriven && e.RootNextRetry.After(next.Add(w)) {
			// Past the window: skip to the next scheduled time.
			e.RootSetAt = now
			e.RootNextRetry, e.RootFailures = time.Time{}, 0
			e.LastRootRotationError += " (rotation window passed; waiting for the next scheduled time)"
		}
		b.Logger().Warn("root rotation failed", "provider", name, "error", e.LastRootRotationError)
		// The job's context may be what ran out: store with a fresh one.
		pctx, cancel := persistContext(ctx)
		defer cancel()
		if cur, gerr := getProvider(pctx, s, name); gerr == nil && cur != nil && cur.RootKeyID == e.RootKeyID {
			// Record the failure only on top of the same root (a roll may
			// have stored a new one before failing later).
			if perr := b.putProvider(pctx, s, name, e); perr != nil {
				b.Logger().Error("storing the root rotation failure", "provider", name, "error", perr)
			}
		}
		return b.rootDue(e)
	}
	b.metrics.rotation("root", name, "success")
	b.Logger().Info("rotated root credential", "provider", name, "root_key_id", ne.RootKeyID)
	return b.rootDue(ne)
}
