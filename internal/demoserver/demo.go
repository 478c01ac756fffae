package demoserver

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"
)

// The /_demo endpoints are the test harness's view into and control over
// the fake provider. They have no authentication on purpose: the server is
// meant to listen on loopback only (see docs/demo-provider.md).

// GET /_demo/knobs
func (s *Server) handleGetKnobs(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	view := s.knobs.view()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, view)
}

// POST /_demo/knobs: a partial update; all fields are checked before any
// is applied, so a rejected request changes nothing.
func (s *Server) handleSetKnobs(w http.ResponseWriter, r *http.Request) {
	var patch knobsPatch
	// Strict: a misspelt knob silently doing nothing would make tests lie.
	if err := decodeBody(w, r, &patch, false, true); err != nil {
		badRequest(w, err)
		return
	}
	s.mu.Lock()
	next, err := patch.apply(s.knobs)
	if err == nil {
		if patch.RateLimitEvery != nil {
			s.rateCount = 0 // "every Nth" counts from when the knob was set
		}
		if patch.RateLimitRPS != nil {
			s.bucket = newBucket(next.RateLimitRPS) // a full bucket from when the knob was set
		}
		s.knobs = next
	}
	view := s.knobs.view()
	s.mu.Unlock()

	if err != nil {
		badRequest(w, err)
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// Knobs returns the current fault-injection settings.
func (s *Server) Knobs() Knobs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.knobs
}

// SetKnobs replaces all the knobs, as POST /_demo/knobs does field by
// field; start from Knobs() or DefaultKnobs() to change only some. An out
// of range setting (ErrorStatus 0 included) changes nothing and returns
// an error naming it. The rate-limit count restarts and the token bucket
// starts full.
func (s *Server) SetKnobs(k Knobs) error {
	if err := k.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.knobs = k
	s.rateCount = 0
	s.bucket = newBucket(k.RateLimitRPS)
	return nil
}

// KeyInfo is one key as the inspection view shows it: everything except
// the value, which the server does not keep.
type KeyInfo struct {
	ID    string
	Name  string
	Kind  Kind
	State string // StateLive, StateRevoked or StateExpired, by the server's clock
	// Scopes is empty, not nil, for a key created without scopes.
	Scopes    []string
	CreatedAt time.Time
	RevokedAt time.Time // zero when not revoked
	ExpiresAt time.Time // zero when the key never expires
	// Uses counts authentications while the key was live, RejectedUses those
	// after it was revoked or had expired.
	Uses           int
	LastUsedAt     time.Time
	RejectedUses   int
	LastRejectedAt time.Time
}

// Keys returns every key ever created, admin keys included, oldest first:
// the view that GET /_demo/keys serves, for tests in the same process.
func (s *Server) Keys() []KeyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowUTC()
	var infos []KeyInfo
	for _, rec := range s.selectLocked(func(*record) bool { return true }) {
		infos = append(infos, KeyInfo{
			ID:             rec.id,
			Name:           rec.name,
			Kind:           rec.kind,
			State:          rec.state(now),
			Scopes:         slices.Clone(rec.scopes), // the caller may modify its copy
			CreatedAt:      rec.createdAt,
			RevokedAt:      rec.revokedAt,
			ExpiresAt:      rec.expiresAt,
			Uses:           rec.uses,
			LastUsedAt:     rec.lastUsedAt,
			RejectedUses:   rec.rejectedUses,
			LastRejectedAt: rec.lastRejectedAt,
		})
	}
	return infos
}

// inspectJSON is KeyInfo on the wire.
type inspectJSON struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Kind           Kind     `json:"kind"`
	State          string   `json:"state"`
	Scopes         []string `json:"scopes"`
	CreatedAt      string   `json:"created_at"`
	RevokedAt      string   `json:"revoked_at,omitempty"`
	ExpiresAt      string   `json:"expires_at,omitempty"`
	Uses           int      `json:"uses"`
	LastUsedAt     string   `json:"last_used_at,omitempty"`
	RejectedUses   int      `json:"rejected_uses"`
	LastRejectedAt string   `json:"last_rejected_at,omitempty"`
}

// GET /_demo/keys[?state=][&kind=][&name=]
func (s *Server) inspectKeys(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, kindFilter := q.Get("state"), Kind(q.Get("kind"))
	switch state {
	case "", StateLive, StateRevoked, StateExpired:
	default:
		badRequest(w, fmt.Errorf("state must be one of %s, %s, %s", StateLive, StateRevoked, StateExpired))
		return
	}
	switch kindFilter {
	case "", KindKey, KindAdmin:
	default:
		badRequest(w, fmt.Errorf("kind must be %s or %s", KindKey, KindAdmin))
		return
	}
	name, byName := q["name"]

	views := []inspectJSON{}
	for _, k := range s.Keys() {
		if (state != "" && k.State != state) || (kindFilter != "" && k.Kind != kindFilter) || (byName && k.Name != name[0]) {
			continue
		}
		views = append(views, inspectJSON{
			ID:             k.ID,
			Name:           k.Name,
			Kind:           k.Kind,
			State:          k.State,
			Scopes:         k.Scopes,
			CreatedAt:      formatTime(k.CreatedAt),
			RevokedAt:      formatTime(k.RevokedAt),
			ExpiresAt:      formatTime(k.ExpiresAt),
			Uses:           k.Uses,
			LastUsedAt:     formatTime(k.LastUsedAt),
			RejectedUses:   k.RejectedUses,
			LastRejectedAt: formatTime(k.LastRejectedAt),
		})
	}
	writeJSON(w, http.StatusOK, map[string][]inspectJSON{"keys": views})
}

// GET /_demo/stats
func (s *Server) getStats(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	// Copy so encoding happens outside the lock without racing new counts.
	snapshot := stats{Requests: maps.Clone(s.stats.Requests), Status: maps.Clone(s.stats.Status), RateLimited: s.stats.RateLimited}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, snapshot)
}

// POST /_demo/reset: forget every key except live admin keys (so the
// harness keeps its credentials), zero the stats and turn all knobs off.
func (s *Server) reset(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	now := s.nowUTC()
	for id, rec := range s.keys {
		if rec.kind == KindAdmin && rec.state(now) == StateLive {
			continue
		}
		delete(s.keys, id)
		delete(s.byHash, rec.hash)
	}
	s.stats = newStats()
	s.knobs = DefaultKnobs()
	s.rateCount = 0
	s.bucket = nil
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// GET /healthz
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}
