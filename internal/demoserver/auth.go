package demoserver

import (
	"net/http"
	"slices"
	"strings"
)

// bearerToken extracts the key from "Authorization: Bearer <key>".
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func unauthorized(w http.ResponseWriter, message string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="demo-provider"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", message)
}

// authenticate resolves the presented key and books the attempt on it: a
// use when live, a rejected use when revoked or expired. E2e tests read
// those counters to prove that nobody kept using a key after revocation.
// On failure it has already written the 401 and returns false. The record
// returned is a copy, safe to read without the lock.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (record, bool) {
	token, ok := bearerToken(r)
	if !ok {
		unauthorized(w, `missing or malformed Authorization header; want "Bearer <key>"`)
		return record{}, false
	}

	s.mu.Lock()
	now := s.nowUTC()
	rec := s.byHash[hashSecret(token)]
	message := "unknown API key"
	if rec != nil {
		switch rec.state(now) {
		case StateLive:
			rec.uses++
			rec.lastUsedAt = now
			caller := *rec
			forbidden := slices.Contains(s.knobs.Forbid, r.Pattern)
			s.mu.Unlock()
			if forbidden {
				writeError(w, http.StatusForbidden, "forbidden", "this key lacks the permission for "+r.Pattern+" (demo knob forbid)")
				return record{}, false
			}
			return caller, true
		case StateRevoked:
			message = "API key has been revoked"
		case StateExpired:
			message = "API key has expired"
		}
		rec.rejectedUses++
		rec.lastRejectedAt = now
	}
	s.mu.Unlock()

	unauthorized(w, message)
	return record{}, false
}

// authenticateAdmin is authenticate plus a 403 for a live normal key. That
// key's use is still counted: it was live and it was presented.
func (s *Server) authenticateAdmin(w http.ResponseWriter, r *http.Request) (record, bool) {
	caller, ok := s.authenticate(w, r)
	if !ok {
		return record{}, false
	}
	if caller.kind != KindAdmin {
		writeError(w, http.StatusForbidden, "forbidden", "this endpoint needs an admin key")
		return record{}, false
	}
	return caller, true
}
