package backend

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// A deleted provider whose incarnation still has keys outstanding (ledger
// entries, orphans tidy has seen, leases issued before the ledger existed,
// replaced roots whose revocation failed) is kept as a tombstone: its
// config, root credential included (seal-wrapped like a live provider),
// under config/tombstones/<name>/<incarnation>, so that the revocations of
// its keys still reach the account that issued them. It is invisible to
// providers/ reads and lists, and goes when its last key does.
const tombstonePrefix = "config/tombstones/"

type tombstone struct {
	Name      string         `json:"name"`
	Provider  *providerEntry `json:"provider"`
	DeletedAt time.Time      `json:"deleted_at"`
}

func tombstoneKey(name, incarnation string) string {
	return tombstonePrefix + name + "/" + incarnation
}

func getTombstone(ctx context.Context, s logical.Storage, name, incarnation string) (*tombstone, error) {
	var t tombstone
	ok, err := getJSON(ctx, s, tombstoneKey(name, incarnation), &t)
	if err != nil || !ok {
		return nil, err
	}
	return &t, nil
}

func putTombstone(ctx context.Context, s logical.Storage, t *tombstone) error {
	return putJSON(ctx, s, tombstoneKey(t.Name, t.Provider.Incarnation), t)
}

// tombstoneRef names one tombstone.
type tombstoneRef struct{ Name, Incarnation string }

// listTombstones lists every tombstone of the mount.
func listTombstones(ctx context.Context, s logical.Storage) ([]tombstoneRef, error) {
	names, err := s.List(ctx, tombstonePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", tombstonePrefix, err)
	}
	var out []tombstoneRef
	for _, n := range names {
		n = strings.TrimSuffix(n, "/")
		incs, err := listAll(ctx, s, tombstonePrefix+n+"/")
		if err != nil {
			return nil, err
		}
		for _, inc := range incs {
			out = append(out, tombstoneRef{n, inc})
		}
	}
	return out, nil
}

// configNeeded reports whether a provider incarnation's config must stay
// (as a tombstone once the provider is deleted): leases issued before the
// ledger existed (held until LegacyLeasesUntil) may still be out, replaced
// roots are left to revoke, or keys are outstanding (hasKeysOutstanding).
func (b *backend) configNeeded(ctx context.Context, s logical.Storage, name string, e *providerEntry) (bool, error) {
	if b.clock.Now().Before(e.LegacyLeasesUntil) || len(e.PendingRootRevocations) > 0 {
		return true, nil
	}
	return hasKeysOutstanding(ctx, s, name, e.Incarnation)
}

// tombstoneDone reports whether a tombstone can go: its config is no
// longer needed.
func (b *backend) tombstoneDone(ctx context.Context, s logical.Storage, t *tombstone) (bool, error) {
	needed, err := b.configNeeded(ctx, s, t.Name, t.Provider)
	return !needed, err
}

// removeTombstoneIfDone deletes a tombstone whose last key is gone. It is
// called after each revocation through a tombstone and by tidy.
func (b *backend) removeTombstoneIfDone(ctx context.Context, s logical.Storage, name, incarnation string) (bool, error) {
	defer b.locks.lock(lockKey("provider", name))()
	t, err := getTombstone(ctx, s, name, incarnation)
	if err != nil || t == nil {
		return false, err
	}
	done, err := b.tombstoneDone(ctx, s, t)
	if err != nil || !done {
		return false, err
	}
	if err := s.Delete(ctx, tombstoneKey(name, incarnation)); err != nil {
		return false, fmt.Errorf("deleting tombstone: %w", err)
	}
	b.dropClient(tombstoneClientKey(name, incarnation))
	b.tombstones.Add(-1)
	b.Logger().Info("removed the tombstone of a deleted provider: its last key is gone", "provider", name, "incarnation", incarnation)
	return true, nil
}

// tombstoneClientKey is the client cache key of a tombstone's client.
func tombstoneClientKey(name, incarnation string) string { return name + "@" + incarnation }
