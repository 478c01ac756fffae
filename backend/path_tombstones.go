package backend

import (
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

// describeTombstone is a tombstone as status and tombstones/ show it:
// name, incarnation, type, when the provider was deleted, keys outstanding
// and the earliest lease end among them, orphans pending, and (withKeys)
// those keys. nil when there is no such tombstone. Never a secret.
func describeTombstone(ctx context.Context, s logical.Storage, r tombstoneRef, withKeys bool) (map[string]any, error) {
	t, err := getTombstone(ctx, s, r.Name, r.Incarnation)
	if err != nil || t == nil {
		return nil, err
	}
	ids, err := ledgerIDs(ctx, s, r.Name, r.Incarnation)
	if err != nil {
		return nil, err
	}
	var oldest time.Time
	keys := []map[string]any{}
	for _, id := range ids {
		e, err := getLedger(ctx, s, r.Name, r.Incarnation, id)
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue
		}
		if oldest.IsZero() || e.ExpiresAt.Before(oldest) {
			oldest = e.ExpiresAt
		}
		keys = append(keys, map[string]any{"key_id": e.KeyID, "key_name": e.Name, "role": e.Role, "lease_end": formatTime(e.ExpiresAt)})
	}
	var seen sightings
	if _, err := getJSON(ctx, s, sightingsKey(r.Name, r.Incarnation), &seen); err != nil {
		return nil, err
	}
	v := map[string]any{
		"name":                r.Name,
		"incarnation":         r.Incarnation,
		"type":                t.Provider.Type,
		"deleted_at":          formatTime(t.DeletedAt),
		"keys_outstanding":    len(ids),
		"oldest_expiry":       formatTime(oldest),
		"orphans_pending":     len(seen.Keys),
		"legacy_leases_until": formatTime(t.Provider.LegacyLeasesUntil),
	}
	if withKeys {
		orphans := []map[string]any{}
		for _, id := range slices.Sorted(maps.Keys(seen.Keys)) {
			orphans = append(orphans, map[string]any{"key_id": id, "first_seen": formatTime(seen.Keys[id])})
		}
		v["keys"], v["orphans"] = keys, orphans
	}
	return v, nil
}

func (b *backend) tombstoneList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	refs, err := listTombstones(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	var keys []string
	info := map[string]any{}
	for _, r := range refs {
		v, err := describeTombstone(ctx, req.Storage, r, false)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		k := r.Name + "/" + r.Incarnation
		keys = append(keys, k)
		info[k] = v
	}
	return logical.ListResponseWithInfo(keys, info), nil
}

func (b *backend) tombstoneRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	v, err := describeTombstone(ctx, req.Storage, tombstoneRef{d.Get("name").(string), d.Get("incarnation").(string)}, true)
	if err != nil || v == nil {
		return nil, err
	}
	return &logical.Response{Data: v}, nil
}

// tombstoneDelete forgets a tombstone: its ledger entries, the orphans
// tidy had pending at its account, and its config. The keys stay live at
// the provider; the answer and the server log name them. Leases of those
// keys still revoke in Vault, without calling any provider. Refused while
// leases issued before the ledger existed may be out (their revocations
// would fall to a live provider of the same name).
func (b *backend) tombstoneDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	ref := tombstoneRef{d.Get("name").(string), d.Get("incarnation").(string)}
	defer b.locks.lock(lockKey("provider", ref.Name))()
	t, err := getTombstone(ctx, req.Storage, ref.Name, ref.Incarnation)
	if err != nil || t == nil {
		return nil, err
	}
	if until := t.Provider.LegacyLeasesUntil; b.clock.Now().Before(until) {
		return logical.ErrorResponse("legacy_leases_until: leases issued by v0.1.0 may be outstanding until %s, and without the tombstone their revocations would go to a provider created later under the name %q; delete it after that", formatTime(until), ref.Name), nil
	}
	desc, err := describeTombstone(ctx, req.Storage, ref, true)
	if err != nil {
		return nil, err
	}
	// Entries first, the tombstone last: a delete cut short is finished
	// by the next one.
	ids, err := ledgerIDs(ctx, req.Storage, ref.Name, ref.Incarnation)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		e, err := getLedger(ctx, req.Storage, ref.Name, ref.Incarnation, id)
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue // revoked meanwhile
		}
		if err := deleteLedger(ctx, req.Storage, ref.Name, ref.Incarnation, id); err != nil {
			return nil, err
		}
		b.ledgerCounts.add(ref.Name, -1)
	}
	if err := req.Storage.Delete(ctx, sightingsKey(ref.Name, ref.Incarnation)); err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, tombstoneKey(ref.Name, ref.Incarnation)); err != nil {
		return nil, fmt.Errorf("deleting tombstone: %w", err)
	}
	b.dropClient(tombstoneClientKey(ref.Name, ref.Incarnation))
	b.tombstones.Add(-1)

	keys, orphans := desc["keys"].([]map[string]any), desc["orphans"].([]map[string]any)
	resp := &logical.Response{Data: map[string]any{"forgotten_keys": keys, "forgotten_orphans": orphans}}
	if n := len(keys) + len(orphans); n > 0 {
		var named []string
		for _, k := range append(slices.Clone(keys), orphans...) {
			if id, _ := k["key_id"].(string); id != "" {
				named = append(named, id)
			} else {
				named = append(named, fmt.Sprint(k["key_name"]))
			}
		}
		b.Logger().Warn("deleted the tombstone of a provider whose keys were still outstanding: Vault will not revoke them; delete them at the provider",
			"provider", ref.Name, "incarnation", ref.Incarnation, "keys", len(keys), "orphans", len(orphans), "key_ids_or_names", named)
		resp.AddWarning(fmt.Sprintf("%d keys of this account are no longer revoked by Vault (forgotten_keys, forgotten_orphans): delete them at the provider", n))
		return resp, nil
	}
	b.Logger().Info("deleted the tombstone of a deleted provider", "provider", ref.Name, "incarnation", ref.Incarnation)
	return nil, nil
}

const tombstonesHelp = `
A provider deleted while keys it issued are outstanding (leased dynamic keys,
orphans tidy has yet to revoke, leases from before the upgrade to v0.2.0) is
kept as a tombstone, so that their revocations still reach its account; it
goes by itself with its last key. LIST tombstones/ shows them as
<name>/<incarnation>; a read shows one with its keys (ids and names, never a
secret).

DELETE tombstones/<name>/<incarnation> is for an account that is gone for
good, whose keys can no longer be revoked: it forgets the tombstone and its
keys (their ledger entries and tidy's pending orphans), answers with those
keys, and logs them. Vault will not revoke them any more: delete them at the
provider if they still work. Their leases still revoke in Vault, without
calling any provider. Refused while leases issued by v0.1.0 may be
outstanding (legacy_leases_until).
`
