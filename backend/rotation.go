package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// revokeGrace is added to a retire time before the key is revoked: it
// covers the moment between a promotion's timestamp and its write.
const revokeGrace = time.Second

// keyAttempt is the next key of a role: its name, the WAL record that
// names it, the provider calls on it and the expiry asked for.
type keyAttempt struct {
	journal   *walJournal
	ops       secretOps[clients.Key]
	requested time.Time
}

// newKeyAttempt names a role's next key (display is the template's
// DisplayName) with the same scopes, parameters and requested expiry as
// any rotation.
func (b *backend) newKeyAttempt(ctx context.Context, s logical.Storage, pc *providerClient, roleName string, role *roleEntry, purpose, display string) (*keyAttempt, error) {
	marker, err := b.mountMarker(ctx, s)
	if err != nil {
		return nil, err
	}
	name, err := renderKeyName(role.NameTemplate, nameVars{Role: roleName, Display: display, Marker: marker})
	if err != nil {
		return nil, fmt.Errorf("name_template: %w", err)
	}
	requested := requestedKeyExpiry(role, pc.api.Capabilities().Expiry, b.clock.Now())
	wal := &walKey{Provider: role.Provider, Incarnation: pc.entry.Incarnation, Role: roleName, Name: name, Purpose: purpose, UniqueName: nameTemplateUnique(role.NameTemplate)}
	return &keyAttempt{
		journal:   b.newWALJournal(s, walKindKey, wal),
		requested: requested,
		ops: secretOps[clients.Key]{
			what: "key",
			create: func(ctx context.Context) (clients.Key, error) {
				return pc.api.CreateKey(ctx, clients.KeyRequest{Name: name, Scopes: role.Scopes, Parameters: role.Parameters, ExpiresAt: requested})
			},
			id:         func(k clients.Key) string { return k.ID },
			verify:     func(ctx context.Context, k clients.Key) error { return b.verifyKey(ctx, pc, k) },
			discard:    b.discardKey(pc),
			notCreated: definitelyNotCreated,
		},
	}, nil
}

// newDualKey is the stored form of a role's new key.
func (a *keyAttempt) newDualKey(key clients.Key, incarnation string) *dualKey {
	return &dualKey{ID: key.ID, Name: key.Name, Secret: key.Secret, Extra: key.Extra, ExpiresAt: key.ExpiresAt,
		RequestedExpiresAt: a.requested, Incarnation: incarnation}
}

// verifyKey checks a new key, retrying briefly: some providers take a
// moment before a new key is accepted everywhere.
func (b *backend) verifyKey(ctx context.Context, pc *providerClient, key clients.Key) error {
	var err error
	for attempt := 0; attempt < b.verifyAttempts; attempt++ {
		if err = pc.api.VerifyKey(ctx, key); err == nil {
			return nil
		}
		if attempt+1 < b.verifyAttempts {
			select {
			case <-time.After(b.verifyWait << attempt):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return err
}

type rotateOptions struct {
	manual         bool
	revokePrevious bool
}

// rotateRole rotates a dual role's key; the caller holds the role's lock.
// The kind-specific part of the rotation job: the old key becomes previous
// and retires after the overlap (or at once with revokePrevious), and the
// lease caps and next rotation follow from the promotion.
func (b *backend) rotateRole(ctx context.Context, s logical.Storage, name string, role *roleEntry, st *dualState, opt rotateOptions) error {
	pc, release, err := b.client(ctx, s, role.Provider)
	if err != nil {
		return err
	}
	defer release()
	if pc == nil {
		return fmt.Errorf("provider %q does not exist", role.Provider)
	}
	pc = pc.withDeadline()
	att, err := b.newKeyAttempt(ctx, s, pc, name, role, purposeDual, "rotation")
	if err != nil {
		return err
	}
	job := rotationJob[clients.Key]{
		ops:     att.ops,
		journal: att.journal,
		old: func() (string, time.Time, bool) {
			if p := st.Previous; p != nil {
				return p.ID, p.RetireAt, true
			}
			return "", time.Time{}, false
		},
		retire: func(ctx context.Context) error { return b.retirePrevious(ctx, s, pc, name, st) },
		promote: func(ctx context.Context, k clients.Key) error {
			return b.promoteRoleKey(ctx, s, name, role, st, att.newDualKey(k, pc.entry.Incarnation), opt.manual)
		},
	}
	_, err = job.run(ctx, b.clock.Now(), opt.revokePrevious)
	return err
}

// promoteRoleKey makes key the role's current key and the old one previous,
// retiring once no lease of it can still run. When the write fails, st is
// left as it was.
func (b *backend) promoteRoleKey(ctx context.Context, s logical.Storage, name string, role *roleEntry, st *dualState, key *dualKey, manual bool) error {
	before := st.copy()
	promoted := b.clock.Now()
	scheduled := st.NextRotation
	if manual || scheduled.IsZero() {
		scheduled = promoted // a manual rotation resets the schedule from now
	}
	key.PromotedAt = promoted
	key.RenewAt = keyRenewAt(role, key)
	next := earliest(role.Rotation.next(promoted), key.RenewAt)
	key.LeaseCapAt = next.Add(role.Overlap)
	old := st.Current
	if old != nil {
		// The old key's leases end by its lease cap, and none outlives the
		// longest lease Vault allows from the moment it stopped being handed
		// out; the overlap after the scheduled time is the least.
		capAt := old.LeaseCapAt
		if m := promoted.Add(b.dualMaxLease(role)); m.Before(capAt) {
			capAt = m
		}
		old.RetireAt = later(later(promoted, scheduled).Add(role.Overlap), capAt)
	}
	st.Current, st.Previous = key, old
	st.NextRotation, st.LastRotation = next, promoted
	st.clearFailure()
	if err := b.putDualState(ctx, s, name, st); err != nil {
		*st = before // not stored: the caller keeps the state as it was
		return err
	}
	return nil
}

// retirePrevious revokes the role's previous key and stores that it is
// gone (a successful step: any failure is forgotten). The write runs on a
// fresh context: the job's may be what ran out.
func (b *backend) retirePrevious(ctx context.Context, s logical.Storage, pc *providerClient, name string, st *dualState) error {
	if err := b.revokeRoleKey(ctx, pc, name, st.Previous.ID); err != nil {
		return err
	}
	st.Previous = nil
	st.clearFailure()
	pctx, cancel := persistContext(ctx)
	defer cancel()
	return b.putDualState(pctx, s, name, st)
}

func (b *backend) revokeRoleKey(ctx context.Context, pc *providerClient, role, id string) error {
	if err := pc.api.RevokeKey(ctx, id); err != nil {
		return fmt.Errorf("revoking key %s: %w", id, err)
	}
	b.metrics.keyRevoked(role)
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// roleJob is the scheduler's work for one dual role: revoke a retired
// previous key, rotate when due, and record failures with a backoff.
func (b *backend) roleJob(ctx context.Context, name string) time.Time {
	return b.scheduledJob(ctx, "role", name, func(ctx context.Context, s logical.Storage) (*ownerTurn, error) {
		role, err := getRole(ctx, s, name)
		if err != nil || role == nil || role.Mode != modeDual {
			return nil, err
		}
		st, err := getDualState(ctx, s, name)
		if err != nil || st == nil {
			return nil, err
		}
		p := st.Previous
		return &ownerTurn{
			kind: "role", name: name,
			retireDue: p != nil && !b.clock.Now().Before(p.RetireAt.Add(revokeGrace)),
			retire: func(ctx context.Context) error {
				pc, release, err := b.client(ctx, s, role.Provider)
				if err == nil && pc == nil {
					err = fmt.Errorf("provider %q does not exist", role.Provider)
				}
				if err == nil {
					err = b.retirePrevious(ctx, s, pc.withDeadline(), name, st)
				}
				release()
				if err != nil && st.Previous != nil {
					b.recordRoleFailure(ctx, name, role, st, "revoking the previous key: ", err)
					return err
				}
				if err != nil {
					b.Logger().Error("rotation: storing role keys", "role", name, "error", err)
				}
				return nil
			},
			rotateDue: func(now time.Time) bool {
				return st.Previous == nil && !st.NextRotation.IsZero() && !now.Before(st.NextRotation) && (st.NextRetry.IsZero() || !now.Before(st.NextRetry))
			},
			rotate: func(ctx context.Context) error { return b.rotateRole(ctx, s, name, role, st, rotateOptions{}) },
			fail: func(ctx context.Context, _ time.Time, err error) {
				b.recordRoleFailure(ctx, name, role, st, "", err)
			},
			rotatedMsg: "rotated role key",
			rotated: func() []any {
				return []any{"role", name, "key_id", st.Current.ID, "next_rotation", formatTime(st.NextRotation)}
			},
			nextDue: st.nextDue,
		}, nil
	})
}

// recordRoleFailure stores a failed rotation step with its next retry
// (attempts.failRotation); keys are never revoked because of it.
func (b *backend) recordRoleFailure(ctx context.Context, name string, role *roleEntry, st *dualState, prefix string, err error) {
	now := b.clock.Now() // after the HTTP layer's own retries
	st.LastErrorAt = now
	if st.attempts().failRotation(now, role.Rotation, st.NextRotation, keyRenewAt(role, st.Current), prefix+err.Error(), err) {
		st.NextRotation = role.Rotation.next(now)
	}
	b.Logger().Warn("rotation failed", "role", name, "error", st.LastError, "next_retry", formatTime(st.nextDue()))
	// The job's context may be what ran out: store with a fresh one, so a
	// stuck provider shows as last_error.
	pctx, cancel := persistContext(ctx)
	defer cancel()
	if perr := b.putDualState(pctx, b.storage, name, st); perr != nil {
		b.Logger().Error("rotation: storing the failure", "role", name, "error", perr)
	}
}
