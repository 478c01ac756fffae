package backend

import (
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// dualExpiryMargin is added to a new dual key's latest possible retire
// time to make its provider-side expiry (where the type supports expiry
// on create): a key Vault fails to revoke still dies at the provider, and a
// rotation that fails at its scheduled time has this long of retries
// before the key expires.
const dualExpiryMargin = 24 * time.Hour

// renewBeforeField is the renew_before schema of providers and roles.
func renewBeforeField(what string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeDurationSecond,
		Description: "Rotate " + what + " at the latest this long before its provider-side expiry, whatever the rotation period or schedule says " +
			"(0 = the default: one third of the lifetime it had left when Vault got it; for a dual key whose expiry Vault chose, its scheduled rotation time plus half of 24h). " +
			"A value not below that lifetime falls back to the default."}
}

// parseRenewBefore reads renew_before: a 400 naming it when negative.
func parseRenewBefore(d *framework.FieldData, old time.Duration) (time.Duration, *logical.Response) {
	v, ok := durationField(d, "renew_before")
	if !ok {
		return old, nil
	}
	if v < 0 {
		return old, logical.ErrorResponse("renew_before must not be negative (0 = the default, one third of the remaining lifetime)")
	}
	return v, nil
}

// renewDeadline is when a secret that expires at expires, and whose
// lifetime Vault learned at from, must be rotated by: renewBefore ahead
// of expires, or with renewBefore 0 (or not below the lifetime) one third
// of the lifetime ahead, as cert-manager renews certificates. Zero when the
// secret does not expire.
func renewDeadline(expires, from time.Time, renewBefore time.Duration) time.Time {
	if expires.IsZero() {
		return time.Time{}
	}
	lifetime := expires.Sub(from)
	if lifetime <= 0 {
		return from
	}
	if renewBefore <= 0 || renewBefore >= lifetime {
		renewBefore = lifetime / 3
	}
	return expires.Add(-renewBefore)
}

// keyRenewAt is when a dual role's key must be rotated by because of its
// provider-side expiry (zero: no such deadline). For a key created to
// expire when Vault asked, the default leaves the schedule alone: the
// deadline falls half the margin after the scheduled rotation, so the old
// key's overlap still ends before the key expires.
func keyRenewAt(role *roleEntry, k *dualKey) time.Time {
	if k == nil || k.ExpiresAt.IsZero() {
		return time.Time{}
	}
	rb := role.RenewBefore
	// Providers round expiry times (to the second, to the day): one
	// within a minute of the request counts as honoured.
	honoured := !k.RequestedExpiresAt.IsZero() && !k.ExpiresAt.Before(k.RequestedExpiresAt.Add(-time.Minute))
	if rb == 0 && honoured {
		rb = role.Overlap + dualExpiryMargin/2
	}
	return renewDeadline(k.ExpiresAt, k.PromotedAt, rb)
}

// rootRenewAt is when the provider's root must be rotated by because of
// its provider-side expiry (zero: no such deadline).
func rootRenewAt(e *providerEntry) time.Time {
	return renewDeadline(e.RootExpiresAt, e.RootExpiryFrom, e.RenewBefore)
}

// earliest is the earlier of two times, a zero one counting as unset.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// requestedKeyExpiry is the provider-side expiry to ask for a new dual key
// promoted about now: the latest moment a lease of it can need it (its
// retire time when the next rotation runs on schedule: next rotation plus
// overlap) plus dualExpiryMargin. Zero when the type cannot set one.
func requestedKeyExpiry(role *roleEntry, canExpire bool, now time.Time) time.Time {
	if !canExpire || role.Mode != modeDual {
		return time.Time{}
	}
	next := role.Rotation.next(now)
	if next.IsZero() {
		return time.Time{}
	}
	// Whole seconds: providers take RFC 3339 times without fractions.
	return next.Add(role.Overlap + dualExpiryMargin).Truncate(time.Second)
}

// expiryWarning is status's note for a secret close to its expiry while
// its rotation is failing or overdue: what expires and the time left.
func expiryWarning(what string, now, expires, renewAt time.Time, lastError string) string {
	if expires.IsZero() || (lastError == "" && (renewAt.IsZero() || now.Before(renewAt))) {
		return ""
	}
	left := expires.Sub(now).Truncate(time.Second)
	if left <= 0 {
		return fmt.Sprintf("the %s expired at the provider at %s", what, formatTime(expires))
	}
	return fmt.Sprintf("rotation is failing or overdue and the %s expires at the provider in %s (at %s)", what, left, formatTime(expires))
}
