package backend

// The root engine: replacing a provider's root credential (manually through
// rotate-root, or on the scheduler's timer) and revoking the roots it
// replaced. The path handlers are in path_rotate.go.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

const walKindRoot = "root"

// walRoot is written before a new root credential is created and names it
// as soon as it exists, so one that was never stored gets discarded.
type walRoot struct {
	Provider string `json:"provider"`
	// Incarnation of the provider the root was created for, so that
	// rollback reaches its account even after the provider was deleted
	// (its tombstone) or created again. Entries written before it was
	// recorded have none: they belong to the live provider.
	Incarnation string `json:"incarnation,omitempty"`
	Name        string `json:"name"`
	RootID      string `json:"root_id"`
}

// newRootAttempt names a provider's next root credential (label says
// what for: "root", "rehearsal") and prepares its WAL record and the
// provider calls on it. A roll-style type's failed create never leaves a
// spare root to discard.
func (b *backend) newRootAttempt(s logical.Storage, pc *providerClient, name, label string) (*walJournal, secretOps[clients.Root]) {
	wal := &walRoot{Provider: name, Incarnation: pc.entry.Incarnation, Name: fmt.Sprintf("vault-%s-%s-%d", label, name, b.clock.Now().UnixNano())}
	notCreated := definitelyNotCreated
	if pc.api.Capabilities().NativeRoll {
		notCreated = func(error) bool { return true }
	}
	return b.newWALJournal(s, walKindRoot, wal), secretOps[clients.Root]{
		what:       "root",
		create:     func(ctx context.Context) (clients.Root, error) { return pc.api.CreateRoot(ctx, wal.Name) },
		id:         func(r clients.Root) string { return r.ID },
		verify:     func(ctx context.Context, r clients.Root) error { return pc.api.VerifyRoot(ctx, r) },
		discard:    func(ctx context.Context, r clients.Root) error { return b.discardRoot(ctx, pc, r) },
		notCreated: notCreated,
	}
}

// errOldRootLive refuses a root rotation while the root replaced by the
// last one is still live (its revocation keeps failing).
type errOldRootLive struct{ err string }

func (e errOldRootLive) Error() string {
	return "the root replaced by the last rotation is not revoked yet (" + e.err + "); retry once it is"
}

// rotateRoot replaces a provider's root credential; the caller holds the
// provider's lock. The kind-specific part of the rotation job: the new root
// becomes the provider's (its fields replace the old ones), and the old
// root has no overlap: it is revoked as soon as the new one is stored and
// the operations that picked it up have finished. It returns the stored
// entry (also when the rolled root failed its verification).
func (b *backend) rotateRoot(ctx context.Context, s logical.Storage, name string, e *providerEntry) (*providerEntry, error) {
	pc, err := b.buildClient(name, e)
	if err != nil {
		return nil, err
	}
	pc = pc.withDeadline()
	j, ops := b.newRootAttempt(s, pc, name, "root")
	cur := e // the entry as stored
	job := rotationJob[clients.Root]{
		ops:          ops,
		journal:      j,
		roll:         pc.api.Capabilities().NativeRoll,
		retireAtOnce: true,
		old: func() (string, time.Time, bool) {
			if n := len(cur.PendingRootRevocations); n > 0 {
				return cur.PendingRootRevocations[n-1], time.Time{}, true
			}
			return "", time.Time{}, false
		},
		retire: func(ctx context.Context) error {
			// Operations that picked up the old root finish before it is
			// revoked; later ones build their client from the new root.
			b.rootBarrier(name)
			return b.retireOldRoots(ctx, s, name, cur)
		},
		promote: func(ctx context.Context, root clients.Root) error {
			ne := b.rootReplacedBy(cur, root, !pc.api.Capabilities().NativeRoll)
			if err := b.putProvider(ctx, s, name, ne); err != nil {
				return err
			}
			cur = ne
			return nil
		},
		lost: func(err error) {
			b.Logger().Error("ROOT CREDENTIAL LOST: the provider rolled its root but storing the new one failed; see the runbook", "provider", name, "error", err)
		},
	}
	_, err = job.run(ctx, b.clock.Now(), false)
	var afterErr errRetireAfterRotation
	if errors.As(err, &afterErr) {
		err = nil // the old root stays pending: revokeOldRoots recorded it for status and the retry
	}
	if err != nil && cur == e {
		return nil, err
	}
	return cur, err
}

// attempts is the provider's root rotation failure bookkeeping.
func (e *providerEntry) attempts() attempts {
	return attempts{failures: &e.RootFailures, lastError: &e.LastRootRotationError, nextRetry: &e.RootNextRetry}
}

// rootReplacedBy is e with root as its current root credential; the old one
// is pending revocation unless a roll killed it already.
func (b *backend) rootReplacedBy(e *providerEntry, root clients.Root, revokeOld bool) *providerEntry {
	ne := *e
	ne.Fields = make(map[string]string, len(e.Fields)+len(root.Fields))
	maps.Copy(ne.Fields, e.Fields)
	maps.Copy(ne.Fields, root.Fields)
	if root.ID != "" {
		ne.RootKeyID = root.ID
	}
	ne.RootRotatedAt = b.clock.Now()
	ne.RootExpiresAt, ne.RootExpiryFrom = root.ExpiresAt, ne.RootRotatedAt
	ne.attempts().clear()
	if revokeOld {
		ne.PendingRootRevocations = append(append([]string(nil), e.PendingRootRevocations...), e.RootKeyID)
	}
	return &ne
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

// retireOldRoots is the root kind's retire step: revokeOldRoots, failing
// while an old root is still live.
func (b *backend) retireOldRoots(ctx context.Context, s logical.Storage, name string, e *providerEntry) error {
	b.revokeOldRoots(ctx, s, name, e)
	if len(e.PendingRootRevocations) > 0 {
		return errOldRootLive{err: e.LastRootRotationError}
	}
	return nil
}

// revokeRoots revokes replaced roots in order with pc, whose root is the one
// that replaced them, stopping at the first failure: it returns the ids
// left and that failure. revoked hears of each root revoked.
func revokeRoots(ctx context.Context, pc *providerClient, ids []string, revoked func(id string)) ([]string, error) {
	for i, id := range ids {
		if err := pc.api.RevokeRoot(ctx, id); err != nil {
			return slices.Clone(ids[i:]), err
		}
		revoked(id)
	}
	return nil, nil
}

// tryOldRoots revokes a live provider's replaced roots with its current
// one; what fails stays pending in e, with the failure and the backoff
// recorded. It stores nothing.
func (b *backend) tryOldRoots(ctx context.Context, s logical.Storage, name string, e *providerEntry) {
	pc, release, err := b.client(ctx, s, name)
	defer release()
	if err == nil && pc == nil {
		err = fmt.Errorf("provider %q does not exist", name)
	}
	if err == nil {
		e.PendingRootRevocations, err = revokeRoots(ctx, pc.withDeadline(), e.PendingRootRevocations, func(id string) {
			b.Logger().Info("revoked the replaced root credential", "provider", name, "root_key_id", id)
		})
	}
	if err != nil {
		e.attempts().backoff(b.clock.Now(), e.Rotation, "revoking the old root: "+err.Error(), err)
	} else {
		e.attempts().clear()
	}
}

// revokeOldRoots revokes replaced roots with the current one and stores
// the provider; failures stay pending and are retried by the scheduler.
func (b *backend) revokeOldRoots(ctx context.Context, s logical.Storage, name string, e *providerEntry) {
	if len(e.PendingRootRevocations) == 0 {
		return
	}
	b.tryOldRoots(ctx, s, name, e)
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
	return b.scheduledJob(ctx, "provider", name, func(ctx context.Context, s logical.Storage) (*ownerTurn, error) {
		e, err := getProvider(ctx, s, name)
		if err != nil || e == nil {
			return nil, err
		}
		next := b.nextRootRotation(e)
		return &ownerTurn{
			kind: "root", name: name,
			retireDue: len(e.PendingRootRevocations) > 0 && !b.clock.Now().Before(e.RootNextRetry),
			retire:    func(ctx context.Context) error { return b.retireOldRoots(ctx, s, name, e) },
			rotateDue: func(now time.Time) bool {
				return len(e.PendingRootRevocations) == 0 && !next.IsZero() && !now.Before(next) && !now.Before(e.RootNextRetry)
			},
			rotate: func(ctx context.Context) error {
				ne, err := b.rotateRoot(ctx, s, name, e)
				if err == nil {
					e = ne
				}
				return err
			},
			fail: func(ctx context.Context, now time.Time, err error) {
				if e.attempts().failRotation(now, e.Rotation, next, rootRenewAt(e), err.Error(), err) {
					e.RootSetAt = now // past the window: wait for the next scheduled time
				}
				b.Logger().Warn("root rotation failed", "provider", name, "error", e.LastRootRotationError)
				b.storeRootFailure(ctx, s, name, e.RootKeyID, func(cur *providerEntry) { *cur = *e })
			},
			rotatedMsg: "rotated root credential",
			rotated:    func() []any { return []any{"provider", name, "root_key_id", e.RootKeyID} },
			nextDue:    func() time.Time { return b.rootDue(e) },
		}, nil
	})
}

// storeRootFailure records a failed root rotation (set changes the stored
// entry) on top of the same root only: a roll may have stored a new one
// before failing later. The job's context may be what ran out: it stores
// with a fresh one.
func (b *backend) storeRootFailure(ctx context.Context, s logical.Storage, name, rootID string, set func(cur *providerEntry)) {
	pctx, cancel := persistContext(ctx)
	defer cancel()
	cur, err := getProvider(pctx, s, name)
	if err != nil || cur == nil || cur.RootKeyID != rootID {
		return
	}
	set(cur)
	if err := b.putProvider(pctx, s, name, cur); err != nil {
		b.Logger().Error("storing the root rotation failure", "provider", name, "error", err)
	}
}
