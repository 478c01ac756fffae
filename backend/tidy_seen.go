package backend

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Tidy remembers the orphans it has seen and not yet revoked (too young,
// or their revocation failed) under tidy/seen/<provider>/<incarnation>,
// with the time it first saw each, for two reasons:
//
//   - Some types list keys without a creation time (sendgrid, auth0,
//     mongodbatlas): such an orphan has no age to hold against tidy's
//     cutoff. Tidy stands in the time it first saw it: the key is at least
//     that old, so an orphan first seen before the cutoff is revoked as one
//     created then would be. It takes two real runs at least safety_buffer
//     apart.
//   - An incarnation with orphans pending still has keys at its account: a
//     delete of the provider keeps its config as a tombstone, and the
//     tombstone stays until tidy has revoked them (or no longer finds them),
//     as it does for ledger entries.
//
// A dry run reads the sightings and records none.
const tidySeenPrefix = "tidy/seen/"

// sightings is one provider incarnation's orphans pending: key id → when
// a real tidy first saw it unaccounted for.
type sightings struct {
	Keys map[string]time.Time `json:"keys"`
}

func sightingsKey(provider, incarnation string) string {
	return tidySeenPrefix + provider + "/" + incarnation
}

// firstSeen is one tidy's view of the sightings: what storage held for
// each source the run listed, and what it saw this time.
type firstSeen struct {
	stored map[string]map[string]time.Time // source key → id → first seen
	now    map[string]map[string]time.Time
}

func newFirstSeen() *firstSeen {
	return &firstSeen{stored: map[string]map[string]time.Time{}, now: map[string]map[string]time.Time{}}
}

// load reads the sightings of a source the run listed.
func (f *firstSeen) load(ctx context.Context, s logical.Storage, provider, incarnation string) error {
	k := sightingsKey(provider, incarnation)
	if _, ok := f.stored[k]; ok {
		return nil
	}
	keys, err := getSightings(ctx, s, provider, incarnation)
	if err != nil {
		return err
	}
	f.stored[k] = keys
	f.now[k] = map[string]time.Time{}
	return nil
}

// see returns when an orphan was first seen (at, if never before) and
// keeps it for save: it is pending until forgotten.
func (f *firstSeen) see(provider, incarnation, id string, at time.Time) time.Time {
	k := sightingsKey(provider, incarnation)
	first, ok := f.stored[k][id]
	if !ok {
		first = at
	}
	if f.now[k] == nil {
		f.now[k] = map[string]time.Time{}
	}
	f.now[k][id] = first
	return first
}

// save stores, for each source listed, the orphans this run left pending:
// a key revoked, no longer listed, or accounted for since, is forgotten.
func (f *firstSeen) save(ctx context.Context, s logical.Storage) error {
	for k, seen := range f.now {
		if maps.Equal(seen, f.stored[k]) {
			continue
		}
		if len(seen) == 0 {
			if err := s.Delete(ctx, k); err != nil {
				return err
			}
			continue
		}
		if err := putJSON(ctx, s, k, sightings{Keys: seen}); err != nil {
			return err
		}
	}
	return nil
}

// forget drops a revoked orphan from this run's sightings.
func (f *firstSeen) forget(provider, incarnation, id string) {
	delete(f.now[sightingsKey(provider, incarnation)], id)
}

// pending returns the number of orphans of a source left pending: as this
// run leaves them for a source it listed, else as stored.
func (f *firstSeen) pending(ctx context.Context, s logical.Storage, provider, incarnation string) (int, error) {
	if now, ok := f.now[sightingsKey(provider, incarnation)]; ok {
		return len(now), nil
	}
	return orphansPending(ctx, s, provider, incarnation)
}

// orphansPending returns the number of orphans tidy has seen at an
// incarnation's account and not yet revoked.
func orphansPending(ctx context.Context, s logical.Storage, provider, incarnation string) (int, error) {
	keys, err := getSightings(ctx, s, provider, incarnation)
	return len(keys), err
}

// getSightings reads an incarnation's orphans pending: key id → first
// seen (nil when none).
func getSightings(ctx context.Context, s logical.Storage, provider, incarnation string) (map[string]time.Time, error) {
	var st sightings
	if _, err := getJSON(ctx, s, sightingsKey(provider, incarnation), &st); err != nil {
		return nil, err
	}
	return st.Keys, nil
}

// dropStaleSightings removes the sightings of provider incarnations that
// are gone (no provider of that incarnation, no tombstone): nothing lists
// or revokes their keys any more. A source this run listed is live and is
// not read again.
func dropStaleSightings(ctx context.Context, s logical.Storage, listed []tidySource) error {
	incs, err := providerIncarnations(ctx, s, tidySeenPrefix)
	if err != nil {
		return err
	}
	for p, list := range incs {
		var live *providerEntry
		for _, inc := range list {
			if slices.Contains(listed, tidySource{p, inc}) {
				continue
			}
			if live == nil {
				if live, err = getProvider(ctx, s, p); err != nil {
					return err
				}
				if live == nil {
					live = &providerEntry{}
				}
			}
			if live.Incarnation == inc {
				continue
			}
			ts, err := getTombstone(ctx, s, p, inc)
			if err != nil {
				return err
			}
			if ts != nil {
				continue
			}
			if err := s.Delete(ctx, sightingsKey(p, inc)); err != nil {
				return err
			}
		}
	}
	return nil
}
