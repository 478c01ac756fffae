package demoserver

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestGoAPIMatchesHTTP checks that the Go view of the server (for tests in
// other packages) agrees with what its HTTP endpoints say.
func TestGoAPIMatchesHTTP(t *testing.T) {
	h := newHarness(t)
	if id := h.srv.AdminKeyID(); id != h.initialAdminID() || !adminIDPattern.MatchString(id) {
		t.Errorf("AdminKeyID() = %q, whoami says %q", id, h.initialAdminID())
	}

	expires := h.clock.Now().Add(time.Hour)
	k := h.createKey(map[string]any{"name": "app", "scopes": []string{"read"}, "expires_at": expires.Format(time.RFC3339)})
	h.must(http.StatusOK, "GET", "/v1/whoami", k.Key, nil)
	h.clock.Advance(time.Minute)
	h.must(http.StatusNoContent, "DELETE", "/v1/keys/"+k.ID, h.admin, nil)
	h.must(http.StatusUnauthorized, "GET", "/v1/whoami", k.Key, nil)
	var rotated adminKeyJSON
	h.must(http.StatusCreated, "POST", "/v1/admin-keys", h.admin, nil).decode(t, &rotated)
	h.must(http.StatusNoContent, "DELETE", "/v1/admin-keys/"+h.srv.AdminKeyID(), rotated.AdminKey, nil)
	if got := h.srv.AdminKeyID(); got != h.inspect("?kind=admin&state=revoked")[got].ID {
		t.Errorf("AdminKeyID() = %q after the initial key was deleted; want it unchanged", got)
	}

	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	want := []KeyInfo{
		// Used four times: whoami above, creating and deleting "app", creating the new admin key.
		{ID: h.srv.AdminKeyID(), Name: "initial", Kind: KindAdmin, State: StateRevoked, Scopes: []string{},
			CreatedAt: start, RevokedAt: start.Add(time.Minute), Uses: 4, LastUsedAt: start.Add(time.Minute)},
		{ID: k.ID, Name: "app", Kind: KindKey, State: StateRevoked, Scopes: []string{"read"},
			CreatedAt: start, RevokedAt: start.Add(time.Minute), ExpiresAt: expires,
			Uses: 1, LastUsedAt: start, RejectedUses: 1, LastRejectedAt: start.Add(time.Minute)},
		{ID: rotated.ID, Kind: KindAdmin, State: StateLive, Scopes: []string{},
			CreatedAt: start.Add(time.Minute), Uses: 1, LastUsedAt: start.Add(time.Minute)},
	}
	got := h.srv.Keys()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Keys() =\n%+v\nwant\n%+v", got, want)
	}
	// The same keys, in the same order and state, as GET /_demo/keys.
	var wire struct{ Keys []inspectJSON }
	h.must(http.StatusOK, "GET", "/_demo/keys", "", nil).decode(t, &wire)
	for i, w := range wire.Keys {
		if i >= len(got) || w.ID != got[i].ID || w.State != got[i].State || w.Uses != got[i].Uses {
			t.Errorf("/_demo/keys[%d] = %+v, Keys() has %+v", i, w, got)
		}
	}

	// A caller changing its copy changes nothing on the server.
	got[1].Scopes[0] = "admin"
	if s := h.srv.Keys()[1].Scopes[0]; s != "read" {
		t.Errorf("modifying the result of Keys() changed the server: scope %q", s)
	}
}

func TestNewAppliesOptions(t *testing.T) {
	s := New(Options{AdminKey: testAdminKey, Latency: time.Second, ErrorRate: 0.5, RateLimitEvery: 4, RetryAfter: 9})
	want := Knobs{Latency: time.Second, ErrorRate: 0.5, ErrorStatus: 503, RateLimitEvery: 4, RetryAfter: 9}
	if got := s.Knobs(); !reflect.DeepEqual(got, want) {
		t.Errorf("Knobs() = %+v, want %+v", got, want)
	}
	if keys := s.Keys(); len(keys) != 1 || keys[0].ID != s.AdminKeyID() || keys[0].Name != "initial" || keys[0].Kind != KindAdmin {
		t.Errorf("a new server holds %+v, want only the initial admin key", keys)
	}
	if v := NewAdminKey(); !adminValuePattern.MatchString(v) || v == NewAdminKey() {
		t.Errorf("NewAdminKey() = %q: wrong format or not random", v)
	}
}

func TestNewPanicsOnBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no admin key", Options{}, "AdminKey"},
		{"negative latency", Options{AdminKey: testAdminKey, Latency: -1}, "latency"},
		{"error rate above 1", Options{AdminKey: testAdminKey, ErrorRate: 2}, "error_rate"},
		{"negative rate limit", Options{AdminKey: testAdminKey, RateLimitEvery: -1}, "rate_limit_every"},
		{"negative retry after", Options{AdminKey: testAdminKey, RetryAfter: -1}, "retry_after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if msg, _ := r.(string); !strings.Contains(msg, tc.want) {
					t.Errorf("panic %v, want one naming %s", r, tc.want)
				}
			}()
			New(tc.opts)
		})
	}
}

func TestSetKnobs(t *testing.T) {
	h := newHarness(t)
	h.must(http.StatusOK, "GET", "/v1/whoami", h.admin, nil) // counts towards a rate limit set before

	k := h.srv.Knobs()
	k.RateLimitEvery, k.RetryAfter = 2, 5
	if err := h.srv.SetKnobs(k); err != nil {
		t.Fatal(err)
	}
	var view knobsJSON
	h.must(http.StatusOK, "GET", "/_demo/knobs", "", nil).decode(t, &view)
	if !reflect.DeepEqual(view, k.view()) {
		t.Errorf("GET /_demo/knobs = %+v after SetKnobs(%+v)", view, k)
	}
	// The count restarts: the first request passes, the second is limited.
	h.must(http.StatusOK, "GET", "/v1/whoami", h.admin, nil)
	if r := h.must(http.StatusTooManyRequests, "GET", "/v1/whoami", h.admin, nil); r.header.Get("Retry-After") != "5" {
		t.Errorf("Retry-After %q, want 5", r.header.Get("Retry-After"))
	}

	for _, bad := range []Knobs{{}, {ErrorStatus: 503, ErrorRate: -1}, {ErrorStatus: 200}} {
		if err := h.srv.SetKnobs(bad); err == nil {
			t.Errorf("SetKnobs(%+v) accepted", bad)
		}
	}
	if got := h.srv.Knobs(); !reflect.DeepEqual(got, k) {
		t.Errorf("rejected SetKnobs calls changed the knobs to %+v", got)
	}
	h.srv.SetKnobs(Knobs{ErrorStatus: 502, Down: true})
	h.must(http.StatusBadGateway, "GET", "/v1/whoami", h.admin, nil)
}
