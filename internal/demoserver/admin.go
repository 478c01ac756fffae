package demoserver

import (
	"net/http"
)

// adminKeyJSON is an admin key as the /v1 API shows it.
type adminKeyJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	AdminKey  string `json:"admin_key,omitempty"` // the secret: only in the create response
	CreatedAt string `json:"created_at"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

func adminKeyView(rec *record) adminKeyJSON {
	return adminKeyJSON{ID: rec.id, Name: rec.name, CreatedAt: formatTime(rec.createdAt), ExpiresAt: formatTime(rec.expiresAt)}
}

// POST /v1/admin-keys
func (s *Server) createAdminKey(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticateAdmin(w, r); !ok {
		return
	}
	var req struct {
		Name      string  `json:"name"`
		ExpiresAt *string `json:"expires_at"`
	}
	// The body is optional: an unnamed admin key is fine.
	if err := decodeBody(w, r, &req, true, false); err != nil {
		badRequest(w, err)
		return
	}
	if err := checkName(req.Name, false); err != nil {
		badRequest(w, err)
		return
	}
	expiresAt, err := s.parseExpiry(req.ExpiresAt)
	if err != nil {
		badRequest(w, err)
		return
	}

	secret := newSecret(KindAdmin)
	s.mu.Lock()
	view := adminKeyView(s.addLocked(KindAdmin, req.Name, secret, nil, expiresAt))
	s.mu.Unlock()

	view.AdminKey = secret
	writeJSON(w, http.StatusCreated, view)
}

// GET /v1/admin-keys
func (s *Server) listAdminKeys(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticateAdmin(w, r); !ok {
		return
	}
	views := []adminKeyJSON{}
	s.mu.Lock()
	for _, rec := range s.liveAdminsLocked() {
		views = append(views, adminKeyView(rec))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string][]adminKeyJSON{"admin_keys": views})
}

// DELETE /v1/admin-keys/{id}
func (s *Server) deleteAdminKey(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticateAdmin(w, r); !ok {
		return
	}
	s.mu.Lock()
	rec := s.liveLocked(r.PathValue("id"), KindAdmin)
	// Refusing to delete the last one keeps the demo from locking itself out.
	last := rec != nil && len(s.liveAdminsLocked()) == 1
	if rec != nil && !last {
		rec.revokedAt = s.nowUTC()
	}
	s.mu.Unlock()

	switch {
	case rec == nil:
		writeError(w, http.StatusNotFound, "not_found", "no live admin key with this id")
	case last:
		writeError(w, http.StatusConflict, "conflict", "cannot delete the last live admin key; create another one first")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// liveAdminsLocked lists live admin keys, oldest first. The caller holds s.mu.
func (s *Server) liveAdminsLocked() []*record {
	now := s.nowUTC()
	return s.selectLocked(func(rec *record) bool {
		return rec.kind == KindAdmin && rec.state(now) == StateLive
	})
}

type whoamiJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Kind      Kind   `json:"kind"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

// GET /v1/whoami: the cheapest way for a client to check that a key works.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	caller, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, whoamiJSON{
		ID:        caller.id,
		Name:      caller.name,
		Kind:      caller.kind,
		ExpiresAt: formatTime(caller.expiresAt),
	})
}
