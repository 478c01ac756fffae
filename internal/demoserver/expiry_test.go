package demoserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAdminKeyExpiry: an admin key created with expires_at (and the
// initial one with AdminKeyTTL) reports it and stops working at that time.
func TestAdminKeyExpiry(t *testing.T) {
	h := newHarness(t)
	at := h.clock.Now().Add(time.Minute).Format(time.RFC3339)
	var created adminKeyJSON
	h.must(http.StatusCreated, "POST", "/v1/admin-keys", h.admin, map[string]any{"name": "short", "expires_at": at}).decode(t, &created)
	if created.ExpiresAt != at {
		t.Fatalf("expires_at = %q, want %q", created.ExpiresAt, at)
	}
	var who whoamiJSON
	h.must(http.StatusOK, "GET", "/v1/whoami", created.AdminKey, nil).decode(t, &who)
	if who.ExpiresAt != at {
		t.Errorf("whoami expires_at = %q, want %q", who.ExpiresAt, at)
	}
	h.clock.Advance(time.Minute)
	if r := h.do("GET", "/v1/whoami", created.AdminKey, nil); r.status != http.StatusUnauthorized {
		t.Errorf("expired admin key: status %d, want 401", r.status)
	}
	if e := h.do("POST", "/v1/admin-keys", h.admin, map[string]any{"expires_at": "yesterday"}).apiErr(t); !strings.Contains(e.Message, "expires_at") {
		t.Errorf("bad expires_at: %+v", e)
	}

	clock := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv := New(Options{AdminKey: testAdminKey, AdminKeyTTL: time.Minute, Now: clock.Now})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	h2 := &harness{t: t, url: ts.URL, admin: testAdminKey, clock: clock, srv: srv}
	h2.must(http.StatusOK, "GET", "/v1/whoami", testAdminKey, nil).decode(t, &who)
	if want := clock.Now().Add(time.Minute).Format(time.RFC3339); who.ExpiresAt != want {
		t.Errorf("initial admin key expires_at = %q, want %q", who.ExpiresAt, want)
	}
	clock.Advance(time.Minute)
	if r := h2.do("GET", "/v1/whoami", testAdminKey, nil); r.status != http.StatusUnauthorized {
		t.Errorf("initial admin key after its TTL: status %d, want 401", r.status)
	}
}

// TestForbidKnob: a forbidden route answers 403 naming the route to a key
// that authenticates; other routes keep working; bad routes are refused.
func TestForbidKnob(t *testing.T) {
	h := newHarness(t)
	h.setKnobs(`{"forbid":["POST /v1/keys"]}`)
	r := h.do("POST", "/v1/keys", h.admin, map[string]any{"name": "k"})
	if r.status != http.StatusForbidden {
		t.Fatalf("forbidden create: status %d, want 403", r.status)
	}
	if e := r.apiErr(t); e.Code != "forbidden" || !strings.Contains(e.Message, "POST /v1/keys") {
		t.Errorf("error %+v", e)
	}
	if n := len(h.inspect("?kind=key")); n != 0 {
		t.Errorf("%d keys created despite the knob", n)
	}
	h.must(http.StatusOK, "GET", "/v1/keys", h.admin, nil)
	if r := h.do("POST", "/_demo/knobs", "", `{"forbid":["POST /v1/nope"]}`); r.status != http.StatusBadRequest || !strings.Contains(r.apiErr(t).Message, "forbid") {
		t.Errorf("unknown route: status %d body %s", r.status, r.body)
	}
	h.setKnobs(`{"forbid":[]}`)
	h.createKey(map[string]any{"name": "k"})
}
