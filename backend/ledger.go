package backend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-uuid"
	"github.com/hashicorp/vault/sdk/logical"
)

// The ledger records every dynamic key this mount creates, from before the
// provider call until its lease is revoked, under
// ledger/<provider>/<incarnation>/<id>. An entry whose lease expiry has
// passed by tidy's safety buffer is a key whose lease Vault never persisted
// (a crash between the answer and the lease) or failed to revoke: tidy
// revokes it with the config of the incarnation that created it.
const ledgerPrefix = "ledger/"

// ledgerEntry is one issued (or being issued) dynamic key. It holds no
// secret.
type ledgerEntry struct {
	ID          string `json:"id"`
	Provider    string `json:"provider"`
	Incarnation string `json:"incarnation"`
	Role        string `json:"role"`
	// Name is the attempt's key name at the provider.
	Name string `json:"name"`
	// UniqueName: the role's name_template makes every attempt's name
	// unique, so a key whose id was never recorded can be found by name.
	UniqueName bool `json:"unique_name"`
	// KeyID is the provider's id of the key, once known. Types that list
	// keys by name with a unique template skip recording it on the fast
	// path: the name finds the key.
	KeyID   string    `json:"key_id,omitempty"`
	Created time.Time `json:"created"`
	// ExpiresAt is when the key's lease ends (moved on renew). Until then
	// plus the safety buffer, tidy leaves the key alone. For a deleted dual
	// role's key (retire.go), the latest end of any lease of it.
	ExpiresAt time.Time `json:"expires_at"`
	// Failed revocations of a deleted dual role's key, the last one's
	// error, and when the next attempt is due.
	Failures  int       `json:"failures,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	NextRetry time.Time `json:"next_retry,omitempty"`
}

func ledgerKey(provider, incarnation, id string) string {
	return ledgerPrefix + provider + "/" + incarnation + "/" + id
}

// newLedgerEntry starts an entry for a key about to be created.
func newLedgerEntry(provider, incarnation, role, name string, unique bool, now, expires time.Time) (*ledgerEntry, error) {
	id, err := uuid.GenerateUUID()
	if err != nil {
		return nil, fmt.Errorf("ledger id: %w", err)
	}
	return &ledgerEntry{ID: id, Provider: provider, Incarnation: incarnation, Role: role, Name: name,
		UniqueName: unique, Created: now, ExpiresAt: expires}, nil
}

func putLedger(ctx context.Context, s logical.Storage, e *ledgerEntry) error {
	return putJSON(ctx, s, ledgerKey(e.Provider, e.Incarnation, e.ID), e)
}

func getLedger(ctx context.Context, s logical.Storage, provider, incarnation, id string) (*ledgerEntry, error) {
	return getEntry[ledgerEntry](ctx, s, ledgerKey(provider, incarnation, id))
}

func deleteLedger(ctx context.Context, s logical.Storage, provider, incarnation, id string) error {
	if err := s.Delete(ctx, ledgerKey(provider, incarnation, id)); err != nil {
		return fmt.Errorf("deleting ledger entry: %w", err)
	}
	return nil
}

// ledgerEntryGone updates the in-memory views after an entry's delete.
func (b *backend) ledgerEntryGone(provider, incarnation, id string) {
	b.ledgerCounts.add(provider, -1)
	if isRetiring(id) {
		b.retiring.drop(provider, incarnation, id)
	}
}

// ledgerIDs lists the entry ids of one provider incarnation.
func ledgerIDs(ctx context.Context, s logical.Storage, provider, incarnation string) ([]string, error) {
	return listAll(ctx, s, ledgerPrefix+provider+"/"+incarnation+"/")
}

// ledgerIncarnations lists, per provider name, the incarnations that have
// ledger entries.
func ledgerIncarnations(ctx context.Context, s logical.Storage) (map[string][]string, error) {
	return providerIncarnations(ctx, s, ledgerPrefix)
}

// providerIncarnations lists, per provider name, the incarnations found
// under prefix<provider>/<incarnation>.
func providerIncarnations(ctx context.Context, s logical.Storage, prefix string) (map[string][]string, error) {
	providers, err := s.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	out := map[string][]string{}
	for _, p := range providers {
		p = strings.TrimSuffix(p, "/")
		incs, err := s.List(ctx, prefix+p+"/")
		if err != nil {
			return nil, fmt.Errorf("listing %s%s/: %w", prefix, p, err)
		}
		for _, inc := range incs {
			out[p] = append(out[p], strings.TrimSuffix(inc, "/"))
		}
	}
	return out, nil
}

// hasLedgerEntries reports whether an incarnation has ledger entries.
func hasLedgerEntries(ctx context.Context, s logical.Storage, provider, incarnation string) (bool, error) {
	ids, err := ledgerIDs(ctx, s, provider, incarnation)
	return len(ids) > 0, err
}

// hasKeysOutstanding reports whether keys of an incarnation may still be
// live at its account: ledger entries, orphans tidy has seen and not yet
// revoked, or WAL entries of creations WAL rollback has yet to settle.
// Such an incarnation's config is kept (a tombstone) when its provider is
// deleted.
func hasKeysOutstanding(ctx context.Context, s logical.Storage, provider, incarnation string) (bool, error) {
	if has, err := hasLedgerEntries(ctx, s, provider, incarnation); has || err != nil {
		return has, err
	}
	if n, err := orphansPending(ctx, s, provider, incarnation); n > 0 || err != nil {
		return n > 0, err
	}
	n, err := walEntriesOf(ctx, s, provider, incarnation)
	return n > 0, err
}

// newIncarnation is the id of one creation of providers/<name>.
func newIncarnation() (string, error) {
	id, err := uuid.GenerateUUID()
	if err != nil {
		return "", fmt.Errorf("incarnation id: %w", err)
	}
	// Short enough for paths and status, random enough never to repeat
	// within one provider name.
	return strings.ReplaceAll(id, "-", "")[:16], nil
}

// ledgerCounter counts ledger entries per provider for metrics and status,
// without a lock shared by every creds read.
type ledgerCounter struct{ m sync.Map } // provider -> *atomic.Int64

func (c *ledgerCounter) add(provider string, d int64) {
	v, ok := c.m.Load(provider)
	if !ok {
		v, _ = c.m.LoadOrStore(provider, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(d)
}

// reset replaces the counts with ones read from storage.
func (c *ledgerCounter) reset(counts map[string]int64) {
	c.m.Range(func(k, _ any) bool { c.m.Delete(k); return true })
	for p, n := range counts {
		c.add(p, n)
	}
}

func (c *ledgerCounter) snapshot() map[string]int64 {
	out := map[string]int64{}
	c.m.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Load(); n > 0 {
			out[k.(string)] = n
		}
		return true
	})
	return out
}

// ledgerRef names one ledger entry.
type ledgerRef struct{ provider, incarnation, id string }

// countLedger counts the entries in storage, per provider, and names those
// of deleted dual roles' keys (retiring).
func countLedger(ctx context.Context, s logical.Storage) (counts map[string]int64, retiring []ledgerRef, err error) {
	incs, err := ledgerIncarnations(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	counts = map[string]int64{}
	for p, list := range incs {
		for _, inc := range list {
			ids, err := ledgerIDs(ctx, s, p, inc)
			if err != nil {
				return nil, nil, err
			}
			counts[p] += int64(len(ids))
			for _, id := range ids {
				if isRetiring(id) {
					retiring = append(retiring, ledgerRef{p, inc, id})
				}
			}
		}
	}
	return counts, retiring, nil
}

// ledgerJournal is the rotation job's record (journal) for a dynamic key:
// its ledger entry, which stays after the create until the lease is
// revoked. Tidy revokes what an expired entry names.
type ledgerJournal struct {
	b     *backend
	s     logical.Storage
	entry *ledgerEntry
	// byName: the key's name finds it again (a type that lists keys by
	// name, a template that never repeats one), so its id is not written.
	byName bool
}

func (j *ledgerJournal) open(ctx context.Context) error {
	if err := putLedger(ctx, j.s, j.entry); err != nil {
		return err
	}
	j.b.ledgerCounts.add(j.entry.Provider, 1)
	return nil
}

func (j *ledgerJournal) record(ctx context.Context, id string) error {
	if j.byName {
		return nil
	}
	j.entry.KeyID = id
	return putLedger(ctx, j.s, j.entry)
}

// settle: a key that will not be handed out. Its entry goes when the key
// certainly does not exist, else it names the key and is due for tidy at
// once (abandonEntry).
func (j *ledgerJournal) settle(id string, gone bool) {
	if id != "" {
		j.entry.KeyID = id
	}
	j.b.abandonEntry(j.s, j.entry, gone)
}
