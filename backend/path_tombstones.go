package backend

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The operator's view of tombstones, and the way out when a deleted
// provider's account is gone for good: its keys can no longer be revoked,
// so tidy would retry them (and report failure) forever. Deleting the
// tombstone forgets them, as `vault lease revoke -force` forgets a lease:
// nothing in Vault will revoke those keys any more.
func pathTombstones(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "tombstones/?$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.tombstoneList,
					Summary: "List the deleted providers kept as tombstones, as <name>/<incarnation>."},
			},
			HelpSynopsis:    "List tombstones: deleted providers whose keys are still outstanding.",
			HelpDescription: tombstonesHelp,
		},
		{
			Pattern: "tombstones/" + nameRegex("name") + "/" + nameRegex("incarnation") + "$",
			Fields: map[string]*framework.FieldSchema{
				"name":        {Type: framework.TypeLowerCaseString, Required: true, Description: "Name of the deleted provider."},
				"incarnation": {Type: framework.TypeString, Required: true, Description: "Incarnation of the deleted provider."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.tombstoneRead,
					Summary: "A tombstone and the keys it still holds (ids and names, never a secret)."},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.tombstoneDelete,
					Summary:                   "Forget a tombstone and its outstanding keys: Vault no longer revokes them.",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
			},
			HelpSynopsis:    "Read a tombstone, or forget it when its account is gone.",
			HelpDescription: tombstonesHelp,
		},
	}
}

// tombstoneView is one tombstone as read from storage: its config, its
// ledger entries and the orphans tidy has pending at its account.
type tombstoneView struct {
	ref     tombstoneRef
	t       *tombstone
	ids     []string       // ledger entry ids
	entries []*ledgerEntry // those still there when read
	orphans map[string]time.Time
	wal     int // WAL entries of creations rollback has yet to settle
}

// readTombstone reads a tombstone with its keys; nil when there is none.
func readTombstone(ctx context.Context, s logical.Storage, r tombstoneRef) (*tombstoneView, error) {
	t, err := getTombstone(ctx, s, r.Name, r.Incarnation)
	if err != nil || t == nil {
		return nil, err
	}
	v := &tombstoneView{ref: r, t: t}
	if v.ids, err = ledgerIDs(ctx, s, r.Name, r.Incarnation); err != nil {
		return nil, err
	}
	for _, id := range v.ids {
		e, err := getLedger(ctx, s, r.Name, r.Incarnation, id)
		if err != nil {
			return nil, err
		}
		if e != nil {
			v.entries = append(v.entries, e)
		}
	}
	if v.orphans, err = getSightings(ctx, s, r.Name, r.Incarnation); err != nil {
		return nil, err
	}
	if v.wal, err = walEntriesOf(ctx, s, r.Name, r.Incarnation); err != nil {
		return nil, err
	}
	return v, nil
}

// fields is the tombstone as status and tombstones/ show it: name,
// incarnation, type, when the provider was deleted, keys outstanding and
// the earliest lease end among them, orphans pending, and (withKeys)
// those keys. Never a secret.
func (v *tombstoneView) fields(withKeys bool) map[string]any {
	var oldest time.Time
	for _, e := range v.entries {
		if oldest.IsZero() || e.ExpiresAt.Before(oldest) {
			oldest = e.ExpiresAt
		}
	}
	out := map[string]any{
		"name":                v.ref.Name,
		"incarnation":         v.ref.Incarnation,
		"type":                v.t.Provider.Type,
		"deleted_at":          formatTime(v.t.DeletedAt),
		"keys_outstanding":    len(v.ids),
		"oldest_expiry":       formatTime(oldest),
		"orphans_pending":     len(v.orphans),
		"legacy_leases_until": formatTime(v.t.Provider.LegacyLeasesUntil),
		// Replaced roots whose revocation failed; tidy retries them.
		"pending_root_revocations": len(v.t.Provider.PendingRootRevocations),
		// Keys or roots created at its account whose WAL entry rollback
		// has yet to settle.
		"wal_entries": v.wal,
	}
	if withKeys {
		out["keys"], out["orphans"], out["root_revocations"] = v.keyFields(), v.orphanFields(), v.rootIDs()
	}
	return out
}

// keyFields lists the ledger entries: id (if recorded), name, role, lease
// end.
func (v *tombstoneView) keyFields() []map[string]any {
	keys := []map[string]any{}
	for _, e := range v.entries {
		keys = append(keys, map[string]any{"key_id": e.KeyID, "key_name": e.Name, "role": e.Role, "lease_end": formatTime(e.ExpiresAt)})
	}
	return keys
}

// rootIDs lists the ids of the replaced roots not yet revoked.
func (v *tombstoneView) rootIDs() []string {
	return append([]string{}, v.t.Provider.PendingRootRevocations...)
}

// orphanFields lists the pending orphans: id and when first seen.
func (v *tombstoneView) orphanFields() []map[string]any {
	orphans := []map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(v.orphans)) {
		orphans = append(orphans, map[string]any{"key_id": id, "first_seen": formatTime(v.orphans[id])})
	}
	return orphans
}

func (b *backend) tombstoneList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	refs, err := listTombstones(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	var keys []string
	info := map[string]any{}
	for _, r := range refs {
		v, err := readTombstone(ctx, req.Storage, r)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		k := r.Name + "/" + r.Incarnation
		keys = append(keys, k)
		info[k] = v.fields(false)
	}
	return logical.ListResponseWithInfo(keys, info), nil
}

func (b *backend) tombstoneRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	v, err := readTombstone(ctx, req.Storage, tombstoneRef{d.Get("name").(string), d.Get("incarnation").(string)})
	if err != nil || v == nil {
		return nil, err
	}
	return &logical.Response{Data: v.fields(true)}, nil
}

// tombstoneDelete forgets a tombstone: its ledger entries, the orphans
// tidy had pending at its account, its replaced roots, and its config. The keys stay live at
// the provider; the answer and the server log name them. Leases of those
// keys still revoke in Vault, without calling any provider. Refused while
// leases issued before the ledger existed may be out (their revocations
// would fall to a live provider of the same name).
func (b *backend) tombstoneDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	ref := tombstoneRef{d.Get("name").(string), d.Get("incarnation").(string)}
	defer b.locks.lock(lockKey("provider", ref.Name))()
	v, err := readTombstone(ctx, req.Storage, ref)
	if err != nil || v == nil {
		return nil, err
	}
	if until := v.t.Provider.LegacyLeasesUntil; b.clock.Now().Before(until) {
		return logical.ErrorResponse("legacy_leases_until: leases issued by v0.1.0 may be outstanding until %s, and without the tombstone their revocations would go to a provider created later under the name %q; delete it after that", formatTime(until), ref.Name), nil
	}
	// Entries first, the tombstone last: a delete cut short is finished
	// by the next one.
	for _, e := range v.entries {
		if err := deleteLedger(ctx, req.Storage, ref.Name, ref.Incarnation, e.ID); err != nil {
			return nil, err
		}
		b.ledgerEntryGone(ref.Name, ref.Incarnation, e.ID)
	}
	if err := req.Storage.Delete(ctx, sightingsKey(ref.Name, ref.Incarnation)); err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, tombstoneKey(ref.Name, ref.Incarnation)); err != nil {
		return nil, fmt.Errorf("deleting tombstone: %w", err)
	}
	b.dropClient(tombstoneClientKey(ref.Name, ref.Incarnation))
	b.tombstones.Add(-1)
	roots := v.rootIDs()
	b.tombstoneRoots.Add(-int64(len(roots)))

	// WAL entries stay: rollback, finding no config, drops them.
	resp := &logical.Response{Data: map[string]any{"forgotten_keys": v.keyFields(), "forgotten_orphans": v.orphanFields(), "forgotten_roots": roots,
		"forgotten_wal_entries": v.wal}}
	if n := len(v.entries) + len(v.orphans) + len(roots) + v.wal; n > 0 {
		var named []string
		for _, e := range v.entries {
			named = append(named, cmp.Or(e.KeyID, e.Name))
		}
		named = append(named, slices.Sorted(maps.Keys(v.orphans))...)
		named = append(named, roots...)
		b.Logger().Warn("deleted the tombstone of a provider whose keys were still outstanding: Vault will not revoke them; delete them at the provider",
			"provider", ref.Name, "incarnation", ref.Incarnation, "keys", len(v.entries), "orphans", len(v.orphans), "roots", len(roots), "wal_entries", v.wal, "key_ids_or_names", named)
		resp.AddWarning(fmt.Sprintf("%d keys of this account are no longer revoked by Vault (forgotten_keys, forgotten_orphans, forgotten_roots, forgotten_wal_entries): delete them at the provider", n))
		return resp, nil
	}
	b.Logger().Info("deleted the tombstone of a deleted provider", "provider", ref.Name, "incarnation", ref.Incarnation)
	return nil, nil
}

const tombstonesHelp = `
A provider deleted while keys it issued are outstanding (leased dynamic keys,
orphans tidy has yet to revoke, leases from before the upgrade to v0.2.0,
replaced roots whose revocation failed, which tidy retries) is kept as a
tombstone, so that their revocations still reach its account; it goes by
itself with its last key. LIST tombstones/ shows them as
<name>/<incarnation>; a read shows one with its keys (ids and names, never a
secret).

DELETE tombstones/<name>/<incarnation> is for an account that is gone for
good, whose keys can no longer be revoked: it forgets the tombstone and its
keys (their ledger entries, tidy's pending orphans and replaced roots),
answers with those keys, and logs them. Vault will not revoke them any more:
delete them at the provider if they still work. Their leases still revoke in
Vault, without calling any provider. Refused while leases issued by v0.1.0
may be outstanding (legacy_leases_until).
`
