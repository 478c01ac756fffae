package backend

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Deleting a dual role does not revoke its keys at once: applications may
// hold leases of them (invariant 2: no consumer holds a revoked key). Each
// live key becomes a ledger entry whose expiry is the latest end of any
// lease of it, and a scheduler item ("retire/<provider>/<incarnation>/<id>")
// revokes it then with the config of the incarnation that created it. The
// ledger makes everything else follow: a provider deleted meanwhile keeps
// a tombstone, tidy counts the key as accounted for (and revokes it, as a
// backstop, once its end has passed by the safety buffer), status and
// tombstones/ show it.
//
// The entry's id starts with retireIDPrefix, so a start-up finds these
// entries among the ledger ids it already lists, without reading the
// dynamic keys' entries.
const retireIDPrefix = "retire-"

func retireItem(provider, incarnation, id string) string {
	return "retire/" + provider + "/" + incarnation + "/" + id
}

// parseRetireItem splits the name of a retire item (after "retire/").
func parseRetireItem(name string) (ref ledgerRef, ok bool) {
	parts := strings.SplitN(name, "/", 3)
	if len(parts) != 3 {
		return ledgerRef{}, false
	}
	return ledgerRef{parts[0], parts[1], parts[2]}, true
}

// isRetiring reports whether a ledger id is a deleted dual role's key.
func isRetiring(id string) bool { return strings.HasPrefix(id, retireIDPrefix) }

// retireDualKeys hands a dual role's live keys to the ledger as it is
// deleted: each is revoked once no lease of it can still run. Nothing is
// asked of the provider here, so a provider outage does not block the
// delete.
func (b *backend) retireDualKeys(ctx context.Context, s logical.Storage, name string, r *roleEntry) ([]*ledgerEntry, error) {
	st, err := getDualState(ctx, s, name)
	if err != nil || st == nil {
		return nil, err
	}
	now := b.clock.Now()
	var entries []*ledgerEntry
	for _, k := range []*dualKey{st.Previous, st.Current} {
		if k == nil {
			continue
		}
		inc := k.Incarnation
		if inc == "" {
			// A key written by v0.1.0 belongs to the provider's current
			// incarnation (the provider exists: roles block its delete).
			if inc, err = b.currentIncarnation(ctx, s, r.Provider); err != nil {
				return nil, err
			}
		}
		end, _ := st.leaseEnd(k.ID, r.Overlap, now)
		e, err := newLedgerEntry(r.Provider, inc, name, k.Name, false, now, end)
		if err != nil {
			return nil, err
		}
		e.ID, e.KeyID = retireIDPrefix+e.ID, k.ID
		entries = append(entries, e)
	}
	for _, e := range entries {
		if err := putLedger(ctx, s, e); err != nil {
			return nil, err // the role and its state are still there
		}
		b.ledgerCounts.add(e.Provider, 1)
	}
	if err := s.Delete(ctx, roleKeysPrefix+name); err != nil {
		return nil, err
	}
	b.inventory.deleteRole(name)
	b.sched.unschedule(roleItem(name))
	for _, e := range entries {
		b.retiring.set(e)
		b.sched.schedule(retireItem(e.Provider, e.Incarnation, e.ID), e.retireDue())
		b.Logger().Info("dual role deleted: its key is revoked once its leases have ended", "role", name,
			"provider", e.Provider, "key_id", e.KeyID, "revoke_at", formatTime(e.ExpiresAt))
	}
	return entries, nil
}

// currentIncarnation is the live provider's incarnation ("" without one).
func (b *backend) currentIncarnation(ctx context.Context, s logical.Storage, provider string) (string, error) {
	p, err := getProvider(ctx, s, provider)
	if err != nil || p == nil {
		return "", err
	}
	return p.Incarnation, nil
}

// retireDue is when the job of a deleted dual role's key runs: after its
// last lease's end, or at the retry after a failure.
func (e *ledgerEntry) retireDue() time.Time {
	if !e.NextRetry.IsZero() {
		return e.NextRetry
	}
	return e.ExpiresAt.Add(revokeGrace)
}

// retireJob revokes the key of a deleted dual role once its leases have
// ended, and removes its ledger entry. A failure is recorded on the entry
// (status shows it) and retried with backoff; the key is never dropped.
func (b *backend) retireJob(ctx context.Context, ref string) time.Time {
	r, ok := parseRetireItem(ref)
	if !ok {
		return time.Time{}
	}
	provider, inc, id := r.provider, r.incarnation, r.id
	e, err := getLedger(ctx, b.storage, provider, inc, id)
	if err != nil {
		b.Logger().Error("retirement: reading ledger entry", "provider", provider, "error", err)
		return b.clock.Now().Add(30 * backoffBase)
	}
	if e == nil {
		b.retiring.drop(provider, inc, id)
		return time.Time{} // revoked by tidy, or forgotten with its tombstone
	}
	now := b.clock.Now()
	if due := e.retireDue(); now.Before(due) {
		return due
	}
	if err := b.revokeRetiring(ctx, b.storage, e); err != nil {
		return b.retireFailed(ctx, e, err)
	}
	return time.Time{}
}

// retireFailed records a failed revocation on the entry, if it is still
// there (a delete with revoke_keys may have revoked it meanwhile), and
// returns when to try again.
func (b *backend) retireFailed(ctx context.Context, e *ledgerEntry, err error) time.Time {
	defer b.locks.lock(lockKey("retire", e.ID))()
	pctx, cancel := persistContext(ctx)
	defer cancel()
	cur, gerr := getLedger(pctx, b.storage, e.Provider, e.Incarnation, e.ID)
	if gerr != nil {
		b.Logger().Warn("could not record the failed revocation", "error", gerr)
		return b.clock.Now().Add(30 * backoffBase)
	}
	if cur == nil {
		b.retiring.drop(e.Provider, e.Incarnation, e.ID)
		return time.Time{}
	}
	cur.Failures++
	cur.LastError = err.Error()
	cur.NextRetry = b.clock.Now().Add(retryDelay(cur.Failures, 0, err))
	b.Logger().Warn("could not revoke a key of a deleted dual role; retrying", "role", cur.Role, "provider", cur.Provider,
		"key_id", cur.KeyID, "error", err, "next_retry", formatTime(cur.NextRetry))
	if perr := putLedger(pctx, b.storage, cur); perr != nil {
		b.Logger().Warn("could not record the failed revocation", "error", perr)
	}
	b.retiring.set(cur)
	return cur.NextRetry
}

// revokeRetiring revokes a deleted dual role's key with the config of the
// incarnation that created it, and removes its ledger entry (and the
// tombstone, if that was its last key). A key already gone counts as
// revoked, so a retry after a failed delete of the entry succeeds.
func (b *backend) revokeRetiring(ctx context.Context, s logical.Storage, e *ledgerEntry) error {
	// The job and a delete with revoke_keys may meet here: one revokes,
	// the other finds the entry gone.
	defer b.locks.lock(lockKey("retire", e.ID))()
	if cur, err := getLedger(ctx, s, e.Provider, e.Incarnation, e.ID); err != nil || cur == nil {
		return err
	}
	pc, release, err := b.clientFor(ctx, s, e.Provider, e.Incarnation)
	if err == nil && pc == nil {
		err = fmt.Errorf("neither provider %q nor a tombstone of its incarnation %s is left", e.Provider, e.Incarnation)
	}
	if err == nil {
		err = b.revokeRoleKey(ctx, pc.withDeadline(), e.Role, e.KeyID)
	}
	tombstoned := pc != nil && pc.tombstoned
	release()
	if err != nil {
		return err
	}
	b.Logger().Info("revoked a key of a deleted dual role", "role", e.Role, "provider", e.Provider, "key_id", e.KeyID)
	pctx, cancel := persistContext(ctx)
	defer cancel()
	if err := deleteLedger(pctx, s, e.Provider, e.Incarnation, e.ID); err != nil {
		return fmt.Errorf("key %s revoked, but: %w", e.KeyID, err)
	}
	b.ledgerEntryGone(e.Provider, e.Incarnation, e.ID)
	if tombstoned {
		if _, err := b.removeTombstoneIfDone(pctx, s, e.Provider, e.Incarnation); err != nil {
			b.Logger().Warn("could not check the tombstone of a deleted provider; tidy will", "provider", e.Provider, "error", err)
		}
	}
	return nil
}

// revokeRetiringOf revokes at once the retiring keys of every earlier
// dual role named role (roles/<name> delete with revoke_keys=true).
func (b *backend) revokeRetiringOf(ctx context.Context, s logical.Storage, role string) (int, error) {
	n := 0
	for _, e := range b.retiring.snapshot() {
		if e.Role != role {
			continue
		}
		if err := b.revokeRetiring(ctx, s, e); err != nil {
			return n, fmt.Errorf("revoking key %s of deleted role %q: %w", e.KeyID, role, err)
		}
		n++
	}
	return n, nil
}

// scheduleRetirements queues the job of every deleted dual role's key in
// the ledger (start-up, or a new active node).
func (b *backend) scheduleRetirements(ctx context.Context, s logical.Storage, refs []ledgerRef) error {
	for _, r := range refs {
		e, err := getLedger(ctx, s, r.provider, r.incarnation, r.id)
		if err != nil {
			return err
		}
		if e != nil {
			b.retiring.set(e)
			b.sched.schedule(retireItem(r.provider, r.incarnation, r.id), e.retireDue())
		}
	}
	return nil
}

// retiringKeys is the in-memory view of the deleted dual roles' keys still
// to revoke, by ledger key.
type retiringKeys struct {
	mu sync.Mutex
	m  map[string]ledgerEntry
}

func (r *retiringKeys) set(e *ledgerEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]ledgerEntry{}
	}
	r.m[ledgerKey(e.Provider, e.Incarnation, e.ID)] = *e
}

func (r *retiringKeys) drop(provider, incarnation, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, ledgerKey(provider, incarnation, id))
}

// counts is how many wait, and how many of them last failed.
func (r *retiringKeys) counts() (waiting, failing int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.m {
		if e.LastError != "" {
			failing++
		} else {
			waiting++
		}
	}
	return waiting, failing
}

// snapshot lists them, soonest revocation first.
func (r *retiringKeys) snapshot() []*ledgerEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*ledgerEntry, 0, len(r.m))
	for _, k := range slices.Sorted(maps.Keys(r.m)) {
		e := r.m[k]
		out = append(out, &e)
	}
	slices.SortStableFunc(out, func(a, b *ledgerEntry) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return out
}
