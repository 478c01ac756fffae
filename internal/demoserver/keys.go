package demoserver

import (
	"errors"
	"net/http"
	"slices"
	"time"
)

// keyJSON is a normal key as the /v1 API shows it.
type keyJSON struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Key       string   `json:"key,omitempty"` // the secret: only in the create response
	Scopes    []string `json:"scopes"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt string   `json:"expires_at,omitempty"`
}

func keyView(rec *record) keyJSON {
	return keyJSON{
		ID:        rec.id,
		Name:      rec.name,
		Scopes:    rec.scopes,
		CreatedAt: formatTime(rec.createdAt),
		ExpiresAt: formatTime(rec.expiresAt),
	}
}

type createKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// A pointer so that a present-but-empty value is an error, not "no expiry".
	ExpiresAt *string `json:"expires_at"`
}

// POST /v1/keys
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticateAdmin(w, r); !ok {
		return
	}
	var req createKeyRequest
	if err := decodeBody(w, r, &req, false, false); err != nil {
		badRequest(w, err)
		return
	}
	if err := checkName(req.Name, true); err != nil {
		badRequest(w, err)
		return
	}
	if err := checkScopes(req.Scopes); err != nil {
		badRequest(w, err)
		return
	}
	expiresAt, err := s.parseExpiry(req.ExpiresAt)
	if err != nil {
		badRequest(w, err)
		return
	}

	secret := newSecret(KindKey)
	s.mu.Lock()
	view := keyView(s.addLocked(KindKey, req.Name, secret, slices.Clone(req.Scopes), expiresAt))
	s.mu.Unlock()

	view.Key = secret
	writeJSON(w, http.StatusCreated, view)
}

// parseExpiry checks an optional expires_at of a create request: absent is
// no expiry; present, it must be an RFC3339 time in the future.
func (s *Server) parseExpiry(v *string) (time.Time, error) {
	if v == nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		return time.Time{}, errors.New("expires_at must be an RFC3339 timestamp such as 2030-01-02T15:04:05Z")
	}
	if !t.After(s.nowUTC()) {
		return time.Time{}, errors.New("expires_at must be in the future")
	}
	return t.UTC(), nil
}

// GET /v1/keys[?name=]
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticateAdmin(w, r); !ok {
		return
	}
	name, byName := r.URL.Query()["name"]
	views := []keyJSON{}
	s.mu.Lock()
	now := s.nowUTC()
	for _, rec := range s.selectLocked(func(rec *record) bool {
		return rec.kind == KindKey && rec.state(now) == StateLive && (!byName || rec.name == name[0])
	}) {
		views = append(views, keyView(rec))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string][]keyJSON{"keys": views})
}

// GET /v1/keys/{id}
func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticateAdmin(w, r); !ok {
		return
	}
	s.mu.Lock()
	rec := s.liveLocked(r.PathValue("id"), KindKey)
	var view keyJSON
	if rec != nil {
		view = keyView(rec)
	}
	s.mu.Unlock()

	if rec == nil {
		writeError(w, http.StatusNotFound, "not_found", "no live key with this id")
		return
	}
	writeJSON(w, http.StatusOK, view)
}

// DELETE /v1/keys/{id}
func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticateAdmin(w, r); !ok {
		return
	}
	s.mu.Lock()
	rec := s.liveLocked(r.PathValue("id"), KindKey)
	if rec != nil {
		rec.revokedAt = s.nowUTC()
	}
	s.mu.Unlock()

	if rec == nil {
		writeError(w, http.StatusNotFound, "not_found", "no live key with this id")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
