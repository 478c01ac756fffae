package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathStatus(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "status$",
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.statusRead,
				Summary: "The inventory: every provider and role with key ages, last and next rotation, pending revocations and last error."},
		},
		HelpSynopsis:    "Show every provider's root and every role's keys: ages, rotations, errors. Never a secret.",
		HelpDescription: statusHelp,
	}}
}

func (b *backend) statusRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	now := b.clock.Now()
	roles, providers := b.inventory.snapshot()
	pending := 0
	pd := make(map[string]any, len(providers))
	for _, p := range providers {
		pending += p.Pending
		rotation := "supported"
		if !p.CanRotateRoot {
			rotation = "unsupported"
		}
		pd[p.name] = map[string]any{
			"type":                     p.Type,
			"root_rotation":            rotation,
			"root_key_id":              p.RootKeyID,
			"root_age_seconds":         ageSeconds(now, p.RootAge),
			"root_rotated_at":          formatTime(p.RootRotatedAt),
			"next_root_rotation":       formatTime(p.NextRotation),
			"pending_root_revocations": p.Pending,
			"last_error":               p.LastError,
			"next_retry":               formatTime(p.NextRetry),
			"expires_at":               formatTime(p.ExpiresAt),
			"expires_in_seconds":       untilSeconds(now, p.ExpiresAt),
			"renew_at":                 formatTime(p.RenewAt),
			"expiry_warning":           expiryWarning("root", now, p.ExpiresAt, p.RenewAt, p.LastError),
			"throttled_until":          formatTime(b.budgetHeldUntil(p.name)),
		}
	}
	rd := make(map[string]any, len(roles))
	for _, r := range roles {
		v := map[string]any{"mode": r.Mode, "provider": r.Provider}
		if r.Mode == modeDual {
			if r.PreviousKeyID != "" {
				pending++
			}
			v["current_key_id"] = r.CurrentKeyID
			v["current_key_created"] = formatTime(r.CurrentKeyCreated)
			v["current_key_age_seconds"] = ageSeconds(now, r.CurrentKeyCreated)
			v["previous_key_id"] = r.PreviousKeyID
			v["previous_key_retires"] = formatTime(r.PreviousKeyRetires)
			v["last_rotation"] = formatTime(r.LastRotation)
			v["next_rotation"] = formatTime(r.NextRotation)
			v["last_error"] = r.LastError
			v["next_retry"] = formatTime(r.NextRetry)
			v["expires_at"] = formatTime(r.ExpiresAt)
			v["expires_in_seconds"] = untilSeconds(now, r.ExpiresAt)
			v["renew_at"] = formatTime(r.RenewAt)
			v["expiry_warning"] = expiryWarning("current key", now, r.ExpiresAt, r.RenewAt, r.LastError)
		}
		rd[r.name] = v
	}
	// Replaced roots of deleted providers, kept with their tombstones.
	pending += int(b.tombstoneRoots.Load())
	tombs, err := b.tombstoneStatus(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	retiring := b.retiring.snapshot()
	ledger := map[string]any{}
	for p, n := range b.ledgerCounts.snapshot() {
		ledger[p] = n
	}
	return &logical.Response{Data: map[string]any{
		"schema_version":      b.schemaVersion(ctx, req.Storage),
		"tombstones":          tombs,
		"ledger_entries":      ledger,
		"retiring_keys":       retiringView(retiring),
		"providers":           pd,
		"roles":               rd,
		"pending_revocations": pending,
		"scheduler_running":   b.sched.isRunning(),
		"scheduled_items":     b.sched.len(),
	}}, nil
}

// untilSeconds is the time left until t in seconds (0 when t is unset).
func untilSeconds(now, t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return int64(t.Sub(now).Seconds())
}

func ageSeconds(now, since time.Time) int64 {
	if since.IsZero() {
		return 0
	}
	return int64(now.Sub(since).Seconds())
}

const statusHelp = `
Lists every provider and role of the mount. Providers: type, root_key_id,
root age, last and next root rotation, pending revocations of replaced roots,
last error and next retry. Roles: mode and provider; for dual roles the
current key's id and age, the previous key's id and retire time, last and
next rotation, last error and next retry. retiring_keys lists the keys of
deleted dual roles, each revoked at its revoke_at (once no lease of it can
still run). Both show the secret's
provider-side expiry (expires_at, expires_in_seconds), the deadline it is
rotated by because of it (renew_at) and, while a rotation fails or is
overdue for that deadline, expiry_warning with the time left.
pending_revocations counts previous
keys and replaced roots waiting to be revoked (those of deleted providers,
kept with their tombstones, included). Never contains a secret.
`

// tombstoneStatus describes every tombstone (tombstoneView.fields). Tombstones
// are few and short-lived, so this reads storage.
func (b *backend) tombstoneStatus(ctx context.Context, s logical.Storage) ([]map[string]any, error) {
	refs, err := listTombstones(ctx, s)
	if err != nil {
		return nil, err
	}
	out := []map[string]any{}
	for _, r := range refs {
		v, err := readTombstone(ctx, s, r)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, v.fields(false))
		}
	}
	return out, nil
}

// schemaVersion is the storage schema version the status shows (1: not
// migrated yet).
func (b *backend) schemaVersion(ctx context.Context, s logical.Storage) int {
	c, err := getMountConfig(ctx, s)
	if err != nil || c == nil {
		return 1
	}
	return c.SchemaVersion
}
