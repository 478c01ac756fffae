package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// roleKeysPrefix holds each dual role's keys (seal-wrapped).
const roleKeysPrefix = "config/keys/"

// minOverlap keeps a lease of a current key from being zero-length.
const minOverlap = time.Second

// dualKey is one key of a dual role.
type dualKey struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Secret    string            `json:"secret"`
	Extra     map[string]string `json:"extra,omitempty"`
	ExpiresAt time.Time         `json:"expires_at"`
	// RequestedExpiresAt is the expiry Vault asked for at create (zero
	// where the type has no expiry on create, and for keys written before
	// it was recorded).
	RequestedExpiresAt time.Time `json:"requested_expires_at,omitempty"`
	// RenewAt is the key's expiry deadline (keyRenewAt) as of its
	// promotion or the role's last write; zero when it does not expire.
	RenewAt time.Time `json:"renew_at,omitempty"`
	// PromotedAt is when the key became current.
	PromotedAt time.Time `json:"promoted_at"`
	// LeaseCapAt is the latest end of any lease handed out (or that may be
	// handed out before the next rotation) while the key is current:
	// max over its life of (scheduled next rotation + overlap). The key is
	// never retired before it.
	LeaseCapAt time.Time `json:"lease_cap_at"`
	// RetireAt is set once the key is previous: it is revoked after it.
	RetireAt time.Time `json:"retire_at"`
	// Incarnation of the provider that created the key ("" for keys
	// written by v0.1.0: the provider's current incarnation).
	Incarnation string `json:"incarnation,omitempty"`
}

// dualState is a dual role's keys and rotation bookkeeping.
type dualState struct {
	Current      *dualKey  `json:"current"`
	Previous     *dualKey  `json:"previous"`
	NextRotation time.Time `json:"next_rotation"`
	LastRotation time.Time `json:"last_rotation"`
	LastError    string    `json:"last_error"`
	LastErrorAt  time.Time `json:"last_error_at"`
	NextRetry    time.Time `json:"next_retry"`
	Failures     int       `json:"failures"`
}

func getDualState(ctx context.Context, s logical.Storage, role string) (*dualState, error) {
	return getEntry[dualState](ctx, s, roleKeysPrefix+role)
}

// putDualState stores a dual role's state and reschedules the role.
func (b *backend) putDualState(ctx context.Context, s logical.Storage, role string, st *dualState) error {
	if err := putJSON(ctx, s, roleKeysPrefix+role, st); err != nil {
		return err
	}
	b.inventory.setRole(role, st)
	b.sched.schedule(roleItem(role), st.nextDue())
	return nil
}

// attempts is the role's failure bookkeeping.
func (st *dualState) attempts() attempts {
	return attempts{failures: &st.Failures, lastError: &st.LastError, nextRetry: &st.NextRetry}
}

// clearFailure forgets a failure once a step has succeeded.
func (st *dualState) clearFailure() {
	st.attempts().clear()
	st.LastErrorAt = time.Time{}
}

// copy is a copy whose keys can be changed without touching st's.
func (st *dualState) copy() dualState {
	c := *st
	if st.Current != nil {
		k := *st.Current
		c.Current = &k
	}
	if st.Previous != nil {
		k := *st.Previous
		c.Previous = &k
	}
	return c
}

// nextDue is when the scheduler must next look at the role: the previous
// key's retirement, the next rotation, or the next retry.
func (st *dualState) nextDue() time.Time {
	due := st.NextRotation
	if !st.NextRetry.IsZero() {
		due = st.NextRetry
	}
	if st.Previous != nil {
		if r := st.Previous.RetireAt.Add(revokeGrace); due.IsZero() || r.Before(due) {
			due = r
		}
	}
	return due
}

// leaseEnd is the one place that decides how long a lease of a dual key
// may run: while the key is current, until max(next rotation, now) +
// overlap (at least its recorded cap); once previous, until its retire
// time. ok is false when the key is neither.
//
// No lease runs past the key's provider-side expiry: the key dies then
// whatever Vault does.
func (st *dualState) leaseEnd(keyID string, overlap time.Duration, now time.Time) (end time.Time, ok bool) {
	var k *dualKey
	switch {
	case st.Current != nil && st.Current.ID == keyID:
		k = st.Current
		end = now.Add(overlap)
		if k.LeaseCapAt.After(end) {
			end = k.LeaseCapAt
		}
	case st.Previous != nil && st.Previous.ID == keyID:
		k = st.Previous
		end = k.RetireAt
	default:
		return time.Time{}, false
	}
	if !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(end) {
		end = k.ExpiresAt
	}
	return end, true
}

// applyDualFields checks and applies the dual-only fields of a role.
func (b *backend) applyDualFields(d *framework.FieldData, r *roleEntry, creating bool) *logical.Response {
	rot, resp := parseRotation(d, r.Rotation, creating, true)
	if resp != nil {
		return resp
	}
	r.Rotation = rot
	p := r.Rotation.minInterval(b.clock.Now())
	if v, ok := durationField(d, "overlap"); ok {
		r.Overlap = v
	} else if creating {
		r.Overlap = defaultOverlap
		if p > 0 && r.Overlap >= p {
			r.Overlap = p / 2
		}
	}
	if r.Overlap < minOverlap {
		return logical.ErrorResponse("overlap must be at least %s", minOverlap)
	}
	if r.Overlap >= p {
		return logical.ErrorResponse("overlap (%s) must be less than the rotation interval (%s)", r.Overlap, p)
	}
	r.RenewBefore, resp = parseRenewBefore(d, r.RenewBefore)
	return resp
}

// writeDualRole stores a dual role: on create it first issues, verifies and
// stores the role's first key, so creds work as soon as the write returns.
func (b *backend) writeDualRole(ctx context.Context, s logical.Storage, name string, r *roleEntry, creating bool) (*logical.Response, error) {
	if creating {
		pc, release, err := b.client(ctx, s, r.Provider)
		if err != nil {
			return nil, err
		}
		defer release()
		att, err := b.newKeyAttempt(ctx, s, pc, name, r, purposeDual, "rotation")
		var k clients.Key
		if err == nil {
			k, err = createVerified(ctx, att.journal, att.ops)
		}
		if err != nil {
			if resp := fieldErrorResponse(err); resp != nil {
				return resp, nil
			}
			return nil, fmt.Errorf("creating the role's first key: %w", err)
		}
		if err := putJSON(ctx, s, rolePrefix+name, r); err != nil {
			return nil, err // the WAL entry still names the key: rollback revokes it
		}
		if err := b.promoteRoleKey(ctx, s, name, r, &dualState{}, att.newDualKey(k, pc.entry.Incarnation), true); err != nil {
			_ = s.Delete(ctx, rolePrefix+name)
			return nil, err
		}
		att.journal.close(ctx)
		return nil, nil
	}
	st, err := getDualState(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if err := putJSON(ctx, s, rolePrefix+name, r); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, nil
	}
	// A new period or schedule counts from the last rotation; leases already
	// handed out keep their end (LeaseCapAt only grows).
	if st.Current != nil {
		st.Current.RenewAt = keyRenewAt(r, st.Current)
	}
	st.NextRotation = earliest(r.Rotation.next(st.LastRotation), keyRenewAt(r, st.Current))
	if st.Current != nil {
		if c := st.NextRotation.Add(r.Overlap); c.After(st.Current.LeaseCapAt) {
			st.Current.LeaseCapAt = c
		}
	}
	return nil, b.putDualState(ctx, s, name, st)
}

func (b *backend) fillDualRead(ctx context.Context, s logical.Storage, name string, r *roleEntry, data map[string]any) error {
	r.Rotation.fill(data)
	data["overlap"] = int64(r.Overlap.Seconds())
	st, err := getDualState(ctx, s, name)
	if err != nil {
		return err
	}
	if st == nil {
		st = &dualState{}
	}
	data["renew_before"] = int64(r.RenewBefore.Seconds())
	data["current_key_id"], data["current_key_created"], data["current_key_age"] = "", "", int64(0)
	data["expires_at"], data["requested_expires_at"], data["renew_at"] = "", "", ""
	if c := st.Current; c != nil {
		data["current_key_id"] = c.ID
		data["current_key_created"] = formatTime(c.PromotedAt)
		data["current_key_age"] = int64(b.clock.Now().Sub(c.PromotedAt).Seconds())
		data["expires_at"] = formatTime(c.ExpiresAt)
		data["requested_expires_at"] = formatTime(c.RequestedExpiresAt)
		data["renew_at"] = formatTime(c.RenewAt)
	}
	data["previous_key_id"], data["previous_key_retires"], data["previous_key_expires_at"] = "", "", ""
	if p := st.Previous; p != nil {
		data["previous_key_id"] = p.ID
		data["previous_key_retires"] = formatTime(p.RetireAt)
		data["previous_key_expires_at"] = formatTime(p.ExpiresAt)
	}
	data["next_rotation"] = formatTime(st.NextRotation)
	data["last_rotation"] = formatTime(st.LastRotation)
	data["last_rotation_error"] = st.LastError
	data["next_retry"] = formatTime(st.NextRetry)
	return nil
}

// deleteDualKeys revokes a dual role's keys at the provider before the role
// goes. What was revoked is recorded, so a failure part-way loses nothing.
func (b *backend) deleteDualKeys(ctx context.Context, s logical.Storage, name string, r *roleEntry) error {
	st, err := getDualState(ctx, s, name)
	if err != nil || st == nil {
		return err
	}
	pc, release, err := b.client(ctx, s, r.Provider)
	if err != nil {
		return err
	}
	defer release()
	if pc != nil {
		for _, k := range []**dualKey{&st.Previous, &st.Current} {
			if *k == nil {
				continue
			}
			if err := pc.api.RevokeKey(ctx, (*k).ID); err != nil {
				_ = b.putDualState(ctx, s, name, st)
				return fmt.Errorf("revoking key %s of role %q: %w", (*k).ID, name, err)
			}
			b.metrics.keyRevoked(name)
			*k = nil
		}
	}
	if err := s.Delete(ctx, roleKeysPrefix+name); err != nil {
		return err
	}
	b.inventory.deleteRole(name)
	b.sched.unschedule(roleItem(name))
	return nil
}

// issueDual hands out the role's current key. It writes nothing to storage,
// so performance standbys serve it.
func (b *backend) issueDual(ctx context.Context, req *logical.Request, roleName string, role *roleEntry) (*logical.Response, error) {
	// now is taken before the read: a rotation that this read does not see
	// is promoted after now, so the lease cap stays before the retire time.
	now := b.clock.Now()
	st, err := b.cachedDualState(ctx, req.Storage, roleName)
	if err != nil {
		return nil, err
	}
	if st == nil || st.Current == nil {
		msg := "role has no current key"
		if st != nil && st.LastError != "" {
			msg += "; last rotation error: " + st.LastError
		}
		return nil, fmt.Errorf("role %q: %s", roleName, msg)
	}
	cur := st.Current
	end, _ := st.leaseEnd(cur.ID, role.Overlap, now)
	ttl, maxTTL := b.dualTTLs(role, now, now, end)
	if ttl <= 0 {
		return nil, fmt.Errorf("role %q: the current key's leases cannot run any longer; rotation is due", roleName)
	}
	key := clients.Key{ID: cur.ID, Name: cur.Name, Secret: cur.Secret, ExpiresAt: cur.ExpiresAt, Extra: cur.Extra}
	resp := b.Secret(secretKeyType).Response(keyData(key, role.Provider, roleName, modeDual), map[string]any{
		"provider": role.Provider, "role": roleName, "mode": modeDual, "key_id": cur.ID, "key_name": cur.Name,
	})
	resp.Secret.TTL, resp.Secret.MaxTTL, resp.Secret.Renewable = ttl, maxTTL, true
	b.metrics.keyIssued(roleName)
	return resp, nil
}

// dualMaxLease is the longest a dual lease can run: the role's max_ttl
// within the mount's.
func (b *backend) dualMaxLease(role *roleEntry) time.Duration {
	_, m := b.leaseTTLs()
	if role.MaxTTL > 0 && role.MaxTTL < m {
		m = role.MaxTTL
	}
	return m
}

// dualTTLs turns a lease end into a TTL (the role's ttl at most) and a max
// TTL counted from the lease's issue time, both in whole seconds.
func (b *backend) dualTTLs(role *roleEntry, now, issued, end time.Time) (ttl, maxTTL time.Duration) {
	ttl = role.TTL
	if ttl == 0 {
		ttl, _ = b.leaseTTLs()
	}
	if left := end.Sub(now).Truncate(time.Second); left < ttl {
		ttl = left
	}
	maxTTL = end.Sub(issued).Truncate(time.Second)
	if role.MaxTTL > 0 && role.MaxTTL < maxTTL {
		maxTTL = role.MaxTTL
	}
	// Rounded separately, the TTL could reach past issued + maxTTL.
	if left := issued.Add(maxTTL).Sub(now).Truncate(time.Second); ttl > left {
		ttl = left
	}
	return ttl, maxTTL
}

func (b *backend) renewDual(ctx context.Context, req *logical.Request, roleName string, role *roleEntry) (*logical.Response, error) {
	now := b.clock.Now()
	st, err := b.cachedDualState(ctx, req.Storage, roleName)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("role %q has no keys; the lease cannot be renewed", roleName)
	}
	end, ok := st.leaseEnd(internalString(req, "key_id"), role.Overlap, now)
	if !ok {
		return nil, fmt.Errorf("the key of this lease has been retired; read creds/%s again", roleName)
	}
	ttl, maxTTL := b.dualTTLs(role, now, req.Secret.IssueTime, end)
	if ttl <= 0 {
		return nil, fmt.Errorf("the key of this lease retires at %s; read creds/%s again", formatTime(end), roleName)
	}
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL, resp.Secret.MaxTTL = ttl, maxTTL
	return resp, nil
}
