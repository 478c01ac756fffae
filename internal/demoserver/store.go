package demoserver

import (
	"cmp"
	"crypto/sha256"
	"slices"
	"time"
)

// Kind tells normal API keys from admin keys.
type Kind string

const (
	KindKey   Kind = "key"
	KindAdmin Kind = "admin"
)

// States of a key, as KeyInfo and GET /_demo/keys report them.
const (
	StateLive    = "live"
	StateRevoked = "revoked"
	StateExpired = "expired"
)

// record is everything the server knows about one key. The secret value
// itself is not kept, only its hash: what is not stored cannot leak through
// a log line or an inspection response.
type record struct {
	id        string
	kind      Kind
	name      string
	scopes    []string // never modified after creation, so copies may share it
	hash      [sha256.Size]byte
	seq       uint64    // creation order; breaks created_at ties under a fake clock
	createdAt time.Time // all times are UTC
	expiresAt time.Time // zero: never expires
	revokedAt time.Time // zero: not revoked

	uses           int
	lastUsedAt     time.Time
	rejectedUses   int
	lastRejectedAt time.Time
}

// state is computed on every access rather than by a background sweeper, so
// a test that moves the fake clock sees expiry at once.
func (r *record) state(now time.Time) string {
	switch {
	case !r.revokedAt.IsZero():
		return StateRevoked
	case !r.expiresAt.IsZero() && !now.Before(r.expiresAt):
		return StateExpired
	default:
		return StateLive
	}
}

// nowUTC reads the injectable clock.
func (s *Server) nowUTC() time.Time { return s.now().UTC() }

// addLocked stores a new key whose value is secret. The caller holds s.mu.
func (s *Server) addLocked(k Kind, name, secret string, scopes []string, expiresAt time.Time) *record {
	prefix := keyIDPrefix
	if k == KindAdmin {
		prefix = adminIDPrefix
	}
	id := prefix + randomHex(idBytes)
	for s.keys[id] != nil { // 48 random bits rarely collide, but cheap to rule out
		id = prefix + randomHex(idBytes)
	}
	if scopes == nil {
		scopes = []string{} // so JSON shows [] rather than null
	}
	s.seq++
	rec := &record{
		id:        id,
		kind:      k,
		name:      name,
		scopes:    scopes,
		hash:      hashSecret(secret),
		seq:       s.seq,
		createdAt: s.nowUTC(),
		expiresAt: expiresAt,
	}
	s.keys[id] = rec
	s.byHash[rec.hash] = rec
	return rec
}

// liveLocked returns the key with this id and kind if it is live, else nil.
// The caller holds s.mu.
func (s *Server) liveLocked(id string, k Kind) *record {
	rec := s.keys[id]
	if rec == nil || rec.kind != k || rec.state(s.nowUTC()) != StateLive {
		return nil
	}
	return rec
}

// selectLocked returns the keys that keep accepts, oldest first. The caller
// holds s.mu.
func (s *Server) selectLocked(keep func(*record) bool) []*record {
	var out []*record
	for _, rec := range s.keys {
		if keep(rec) {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// formatTime renders t as RFC3339 UTC, or "" (omitted in JSON) when zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
