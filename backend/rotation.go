package backend

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

const (
	// revokeGrace is added to a retire time before the key is revoked: it
	// covers the moment between a promotion's timestamp and its write.
	revokeGrace = time.Second
	// Retry backoff of failed rotations: exponential with jitter.
	backoffBase = time.Second
	backoffMax  = 5 * time.Minute
	// jobTimeout bounds one scheduled job; it stays under walRollbackMinAge
	// so rollback never races a job still in flight.
	jobTimeout = 90 * time.Second
)

// errPreviousNotRetired refuses a rotation that would make three live keys.
type errPreviousNotRetired struct {
	id       string
	retireAt time.Time
}

func (e errPreviousNotRetired) Error() string {
	return fmt.Sprintf("the previous key %s retires at %s; rotate after that, or pass revoke_previous=true to revoke it now", e.id, formatTime(e.retireAt))
}

// createVerifiedKey creates a key at the provider and verifies it with the
// key itself before anyone may use it. A WAL entry names the key from
// before the create; the caller deletes it (finishKeyWAL) once the key is
// recorded in storage. A key that fails verification is revoked.
func (b *backend) createVerifiedKey(ctx context.Context, s logical.Storage, pc *providerClient, roleName string, role *roleEntry, purpose string) (*dualKey, error) {
	key, requested, walID2, err := b.createKeyUnderWAL(ctx, s, pc, roleName, role, purpose, "rotation")
	if err != nil {
		return nil, err
	}
	if err := b.verifyKey(ctx, pc, key); err != nil {
		if rerr := pc.api.RevokeKey(ctx, key.ID); rerr == nil {
			_ = framework.DeleteWAL(ctx, s, walID2)
		}
		return nil, fmt.Errorf("the new key failed verification and was not promoted: %w", err)
	}
	return &dualKey{ID: key.ID, Name: key.Name, Secret: key.Secret, Extra: key.Extra, ExpiresAt: key.ExpiresAt,
		RequestedExpiresAt: requested, Incarnation: pc.entry.Incarnation, walID: walID2}, nil
}

// createKeyUnderWAL creates a role's key at the provider (named with
// display as the template's DisplayName, with the same scopes, parameters
// and requested expiry as any rotation) under a WAL entry that names the
// key once it exists. It returns the key, the expiry asked for, and the
// entry's id, which the caller deletes once the key is recorded or
// revoked.
func (b *backend) createKeyUnderWAL(ctx context.Context, s logical.Storage, pc *providerClient, roleName string, role *roleEntry, purpose, display string) (clients.Key, time.Time, string, error) {
	marker, err := b.mountMarker(ctx, s)
	if err != nil {
		return clients.Key{}, time.Time{}, "", err
	}
	name, err := renderKeyName(role.NameTemplate, nameVars{Role: roleName, Display: display, Marker: marker})
	if err != nil {
		return clients.Key{}, time.Time{}, "", fmt.Errorf("name_template: %w", err)
	}
	wal := walKey{Provider: role.Provider, Role: roleName, Name: name, Purpose: purpose, UniqueName: nameTemplateUnique(role.NameTemplate)}
	walID, err := framework.PutWAL(ctx, s, walKindKey, &wal)
	if err != nil {
		return clients.Key{}, time.Time{}, "", fmt.Errorf("writing WAL: %w", err)
	}
	requested := requestedKeyExpiry(role, pc.api.Capabilities().Expiry, b.clock.Now())
	key, err := pc.api.CreateKey(ctx, clients.KeyRequest{Name: name, Scopes: role.Scopes, Parameters: role.Parameters, ExpiresAt: requested})
	if err != nil {
		if definitelyNotCreated(err) {
			_ = framework.DeleteWAL(ctx, s, walID)
		}
		return clients.Key{}, time.Time{}, "", err
	}
	wal.KeyID = key.ID
	walID2, err := framework.PutWAL(ctx, s, walKindKey, &wal)
	if err != nil {
		if rerr := b.revokeNow(pc, key.ID); rerr != nil {
			b.Logger().Warn("could not revoke an abandoned key; WAL rollback will retry", "provider", pc.name, "key_id", key.ID, "error", rerr)
		}
		return clients.Key{}, time.Time{}, "", fmt.Errorf("writing WAL: %w", err)
	}
	_ = framework.DeleteWAL(ctx, s, walID)
	return key, requested, walID2, nil
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

// finishKeyWAL drops the WAL entry of a key now recorded in storage.
func (b *backend) finishKeyWAL(ctx context.Context, s logical.Storage, k *dualKey) {
	if k.walID == "" {
		return
	}
	if err := framework.DeleteWAL(ctx, s, k.walID); err != nil {
		// Harmless: rollback sees the key recorded and only drops the entry.
		b.Logger().Warn("could not delete a WAL entry", "error", err)
	}
	k.walID = ""
}

type rotateOptions struct {
	manual         bool
	revokePrevious bool
}

// rotateRole rotates a dual role's key; the caller holds the role's lock.
// The new key is created, verified, then promoted; the old key becomes
// previous and retires after the overlap (or at once with revokePrevious).
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
	if p := st.Previous; p != nil {
		if !opt.revokePrevious && b.clock.Now().Before(p.RetireAt) {
			return errPreviousNotRetired{id: p.ID, retireAt: p.RetireAt}
		}
		if err := b.revokeRoleKey(ctx, pc, name, p.ID); err != nil {
			return err
		}
		st.Previous = nil
		if err := b.putDualState(ctx, s, name, st); err != nil {
			return err
		}
	}

	key, err := b.createVerifiedKey(ctx, s, pc, name, role, purposeDual)
	if err != nil {
		return err
	}
	before := st.copy()
	promoted := b.clock.Now()
	scheduled := st.NextRotation
	if opt.manual || scheduled.IsZero() {
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
		return err   // the WAL entry names the new key; rollback settles it
	}
	b.finishKeyWAL(ctx, s, key)

	if opt.revokePrevious && old != nil {
		if err := b.revokeRoleKey(ctx, pc, name, old.ID); err != nil {
			return fmt.Errorf("rotated, but revoking the previous key failed (it stays recorded and will be retried): %w", err)
		}
		st.Previous = nil
		if err := b.putDualState(ctx, s, name, st); err != nil {
			return err
		}
	}
	return nil
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
// previous key, rotate when due, and record failures with a backoff. It
// returns when the role next needs attention (zero: never).
func (b *backend) roleJob(ctx context.Context, name string) time.Time {
	defer b.locks.lock(lockKey("role", name))()
	s := b.storage
	role, err := getRole(ctx, s, name)
	if err != nil {
		b.Logger().Error("rotation: reading role", "role", name, "error", err)
		return b.clock.Now().Add(backoffBase * 30)
	}
	if role == nil || role.Mode != modeDual {
		return time.Time{}
	}
	st, err := getDualState(ctx, s, name)
	if err != nil || st == nil {
		if err != nil {
			b.Logger().Error("rotation: reading role keys", "role", name, "error", err)
			return b.clock.Now().Add(backoffBase * 30)
		}
		return time.Time{}
	}
	now := b.clock.Now()

	if p := st.Previous; p != nil && !now.Before(p.RetireAt.Add(revokeGrace)) {
		pc, release, err := b.client(ctx, s, role.Provider)
		if err == nil && pc == nil {
			err = fmt.Errorf("provider %q does not exist", role.Provider)
		}
		if err == nil {
			err = b.revokeRoleKey(ctx, pc.withDeadline(), name, p.ID)
		}
		release()
		if err != nil {
			b.recordRoleFailure(ctx, name, role, st, "revoking the previous key: ", err)
			b.metrics.rotation("role", name, "failure")
			return st.nextDue()
		}
		st.Previous = nil
		st.clearFailure()
		pctx, cancel := persistContext(ctx)
		defer cancel()
		if err := b.putDualState(pctx, s, name, st); err != nil {
			b.Logger().Error("rotation: storing role keys", "role", name, "error", err)
		}
	}

	due := !st.NextRotation.IsZero() && !now.Before(st.NextRotation) && (st.NextRetry.IsZero() || !now.Before(st.NextRetry))
	if due && st.Previous == nil {
		if err := b.rotateRole(ctx, s, name, role, st, rotateOptions{}); err != nil {
			b.recordRoleFailure(ctx, name, role, st, "", err)
			b.metrics.rotation("role", name, "failure")
		} else {
			b.metrics.rotation("role", name, "success")
			b.Logger().Info("rotated role key", "role", name, "key_id", st.Current.ID, "next_rotation", formatTime(st.NextRotation))
		}
	}
	return st.nextDue()
}

// recordRoleFailure stores a failed rotation step with its next retry:
// exponential backoff with jitter, at least what a 429 asked for, and,
// with a rotation_window, no retries past the window (the role then waits
// for its next scheduled time). Keys are never revoked because of it.
func (b *backend) recordRoleFailure(ctx context.Context, name string, role *roleEntry, st *dualState, prefix string, err error) {
	now := b.clock.Now() // after the HTTP layer's own retries
	st.Failures++
	st.LastError, st.LastErrorAt = prefix+err.Error(), now
	st.NextRetry = now.Add(retryDelay(st.Failures, role.Rotation.minInterval(now), err))
	// The window does not apply once the key's expiry deadline has come:
	// skipping to the next scheduled time would let the key expire.
	renewAt := keyRenewAt(role, st.Current)
	expiryDriven := !renewAt.IsZero() && !now.Before(renewAt)
	if w := role.Rotation.Window; w > 0 && role.Rotation.Schedule != "" && !expiryDriven && st.NextRetry.After(st.NextRotation.Add(w)) {
		st.NextRotation = role.Rotation.next(now)
		st.NextRetry, st.Failures = time.Time{}, 0
		st.LastError += " (rotation window passed; waiting for the next scheduled time)"
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

// retryDelay is the wait before retry number n: exponential from
// backoffBase with full jitter in its upper half, capped at backoffMax
// and at the rotation interval, and never shorter than a Retry-After.
func retryDelay(n int, interval time.Duration, err error) time.Duration {
	ceiling := backoffMax
	if interval > 0 && interval < ceiling {
		ceiling = interval
	}
	d := backoffBase << min(n-1, 20)
	if d > ceiling || d <= 0 {
		d = ceiling
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	var he *httpx.Error
	if errors.As(err, &he) && he.RetryAfter > d {
		d = he.RetryAfter
	}
	return d
}
