package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// walRollbackMinAge must exceed the longest a request can run (Vault's
// max_request_duration defaults to 90s), so rollback never revokes a key a
// request in flight is about to hand out.
const walRollbackMinAge = 2 * time.Minute

const walKindKey = "key"

// Purposes of a key WAL entry.
const (
	purposeDynamic = "dynamic"
	purposeDual    = "dual"
)

// walKey is written before a key is created at a provider and names the
// key's id as soon as the provider returns it.
type walKey struct {
	Provider string `json:"provider"`
	// Incarnation of the provider the key was created at (see walRoot).
	Incarnation string `json:"incarnation,omitempty"`
	Role        string `json:"role"`
	Name        string `json:"name"`
	KeyID       string `json:"key_id"`
	Purpose     string `json:"purpose"`
	// UniqueName says the role's name_template makes every attempt's name
	// unique ({{random}} or {{uuid}}), so that a key whose id was never
	// recorded can be found by name without touching another key.
	UniqueName bool `json:"unique_name"`
}

// walRollback revokes whatever a WAL entry says was created but never
// recorded. An error keeps the entry for the next rollback pass.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data any) error {
	switch kind {
	case walKindKey:
		w, err := decodeWAL[walKey](data)
		if err != nil {
			return err
		}
		return b.rollbackKey(ctx, req.Storage, w)
	case walKindRoot:
		w, err := decodeWAL[walRoot](data)
		if err != nil {
			return err
		}
		return b.rollbackRoot(ctx, req.Storage, w)
	}
	return fmt.Errorf("unknown WAL kind %q", kind)
}

// decodeWAL turns a WAL entry's data (as the framework hands it back: a
// generic map) into its typed form.
func decodeWAL[T any](data any) (T, error) {
	var w T
	raw, err := json.Marshal(data)
	if err != nil {
		return w, err
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return w, fmt.Errorf("decoding WAL entry: %w", err)
	}
	return w, nil
}

func (b *backend) rollbackKey(ctx context.Context, s logical.Storage, w walKey) error {
	// What storage references is read first, and its role lock released,
	// before taking the client (lock order: role, then client use).
	keep, err := b.recordedKeyIDs(ctx, s, w)
	if err != nil {
		return err
	}
	// The config of the incarnation the key was created at: a deleted
	// provider's tombstone stays while the entry does.
	pc, release, err := b.clientFor(ctx, s, w.Provider, w.Incarnation)
	if err != nil {
		return err
	}
	defer release()
	if pc == nil {
		b.Logger().Warn("WAL rollback: provider no longer exists; dropping entry", "provider", w.Provider, "incarnation", w.Incarnation, "key_name", w.Name)
		return nil
	}
	if pc.tombstoned {
		defer b.rolledBackThrough(w.Provider, pc.entry.Incarnation)
	}
	ids := []string{}
	if w.KeyID != "" {
		ids = append(ids, w.KeyID)
	} else if pc.api.Capabilities().ListByName && w.UniqueName {
		keys, err := pc.api.FindKeys(ctx, w.Name)
		if err != nil {
			return fmt.Errorf("WAL rollback: finding key %q: %w", w.Name, err)
		}
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
	} else if !w.UniqueName {
		// Other keys (leased ones, say) may carry the same name: revoking
		// by name could take one of them.
		b.Logger().Warn("WAL rollback: the key's id was never recorded and the role's name_template does not make names unique, so it cannot be told apart by name; it expires at the provider if the type supports expiry",
			"provider", w.Provider, "role", w.Role, "key_name", w.Name)
		return nil
	} else {
		b.Logger().Warn("WAL rollback: the key's id was never recorded and the provider cannot list keys by name; it expires at the provider if the type supports expiry",
			"provider", w.Provider, "key_name", w.Name)
		return nil
	}
	for _, id := range ids {
		if keep[id] {
			continue
		}
		if err := pc.api.RevokeKey(ctx, id); err != nil {
			return fmt.Errorf("WAL rollback: revoking key %s: %w", id, err)
		}
		b.Logger().Info("WAL rollback revoked a key that was created but never handed out", "provider", w.Provider, "role", w.Role, "key_id", id)
	}
	return nil
}

// walOwner returns the config of the provider incarnation a WAL entry was
// written for: the live provider's, else its tombstone's (kept while the
// entry exists; tombstoned says so); nil when neither is left. An entry
// without an incarnation belongs to the live provider, or to the tombstone
// of the provider that held the name at the upgrade from v0.1.0.
func (b *backend) walOwner(ctx context.Context, s logical.Storage, provider, incarnation string) (e *providerEntry, tombstoned bool, err error) {
	if e, err = getProvider(ctx, s, provider); err != nil {
		return nil, false, err
	}
	if e != nil && (incarnation == "" || e.Incarnation == incarnation) {
		return e, false, nil
	}
	if incarnation == "" {
		if incarnation, err = b.legacyTombstone(ctx, s, provider); err != nil || incarnation == "" {
			return nil, false, err
		}
	}
	t, err := getTombstone(ctx, s, provider, incarnation)
	if err != nil || t == nil {
		return nil, false, err
	}
	return t.Provider, true, nil
}

// rolledBackThrough notes a tombstone a WAL rollback went through. The
// framework deletes the WAL entry only after the rollback returns, so the
// next rollback pass (periodic, just before it) removes the tombstone if
// that entry was its last record.
func (b *backend) rolledBackThrough(name, incarnation string) {
	b.rolledBack.Store(tombstoneRef{name, incarnation}, struct{}{})
}

// periodic runs at the start of every rollback pass (each minute, where
// WAL rollback runs): it removes the tombstones the last pass's rollbacks
// went through once nothing of them is left.
func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	var errs []error
	b.rolledBack.Range(func(k, _ any) bool {
		ref := k.(tombstoneRef)
		if _, err := b.removeTombstoneIfDone(ctx, req.Storage, ref.Name, ref.Incarnation); err != nil {
			errs = append(errs, err) // kept for the next pass
			return true
		}
		b.rolledBack.Delete(k)
		return true
	})
	return errors.Join(errs...)
}

// walRef is what a WAL entry says about where its secret lives.
type walRef struct {
	Provider    string `json:"provider"`
	Incarnation string `json:"incarnation"`
}

// walEntriesOf counts the WAL entries (key and root creations not yet
// settled) of a provider incarnation. An entry without an incarnation
// counts for every incarnation of its provider name: it may be any.
func walEntriesOf(ctx context.Context, s logical.Storage, provider, incarnation string) (int, error) {
	ids, err := framework.ListWAL(ctx, s)
	if err != nil {
		return 0, fmt.Errorf("listing WAL entries: %w", err)
	}
	n := 0
	for _, id := range ids {
		entry, err := framework.GetWAL(ctx, s, id)
		if err != nil {
			return 0, fmt.Errorf("reading WAL entry: %w", err)
		}
		if entry == nil {
			continue
		}
		ref, err := decodeWAL[walRef](entry.Data)
		if err != nil {
			return 0, err
		}
		if ref.Provider == provider && (ref.Incarnation == "" || ref.Incarnation == incarnation) {
			n++
		}
	}
	return n, nil
}

// recordedKeyIDs returns the ids that storage references for the WAL's
// role, which rollback must never revoke.
func (b *backend) recordedKeyIDs(ctx context.Context, s logical.Storage, w walKey) (map[string]bool, error) {
	keep := map[string]bool{}
	if w.Purpose != purposeDual {
		return keep, nil
	}
	// Hold the role's lock so a rotation in flight finishes first.
	defer b.locks.rlock(lockKey("role", w.Role))()
	st, err := getDualState(ctx, s, w.Role)
	if err != nil || st == nil {
		return keep, err
	}
	for _, k := range []*dualKey{st.Current, st.Previous} {
		if k != nil {
			keep[k.ID] = true
		}
	}
	return keep, nil
}

// rollbackRoot discards a new root credential that was created but never
// stored, using the stored (old) root.
func (b *backend) rollbackRoot(ctx context.Context, s logical.Storage, w walRoot) error {
	defer b.locks.lock(lockKey("provider", w.Provider))()
	e, tombstoned, err := b.walOwner(ctx, s, w.Provider, w.Incarnation)
	if err != nil {
		return err
	}
	if e == nil {
		b.Logger().Warn("WAL rollback: provider no longer exists; dropping entry", "provider", w.Provider, "incarnation", w.Incarnation, "root_name", w.Name)
		return nil
	}
	if tombstoned {
		defer b.rolledBackThrough(w.Provider, e.Incarnation)
	}
	if w.RootID != "" && e.RootKeyID == w.RootID {
		return nil
	}
	pc, err := b.buildClient(w.Provider, e)
	if err != nil {
		return err
	}
	ids := []string{w.RootID}
	if w.RootID == "" {
		finder, ok := pc.api.(clients.RootFinder)
		if !ok {
			b.Logger().Warn("WAL rollback: a root rotation stopped before the new root's id was known; check the provider for a credential with this name",
				"provider", w.Provider, "name", w.Name)
			return nil
		}
		roots, err := finder.FindRoots(ctx, w.Name)
		if err != nil {
			return fmt.Errorf("WAL rollback: finding root %q: %w", w.Name, err)
		}
		ids = ids[:0]
		for _, r := range roots {
			if r.ID != e.RootKeyID {
				ids = append(ids, r.ID)
			}
		}
	}
	for _, id := range ids {
		if err := b.discardRoot(ctx, pc, clients.Root{ID: id}); err != nil {
			return fmt.Errorf("WAL rollback: discarding root %s: %w", id, err)
		}
		b.Logger().Info("WAL rollback discarded a root credential that was created but never stored", "provider", w.Provider, "root_key_id", id)
	}
	return nil
}
