package demoserver

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNoSecretLeaks exercises every endpoint, keys in every state, and
// error paths, then checks that no response other than the one that
// created a key, and no log line, contains a key value.
func TestNoSecretLeaks(t *testing.T) {
	h := newHarness(t)
	secrets := []string{h.admin}
	var bodies []string
	record := func(r response) { bodies = append(bodies, string(r.body)) }

	live := h.createKey(map[string]any{"name": "live", "scopes": []string{"s"}})
	revoked := h.createKey(map[string]any{"name": "revoked"})
	expiring := h.createKey(map[string]any{"name": "expiring", "expires_at": h.clock.Now().Add(time.Minute).Format(time.RFC3339)})
	var admin2 adminKeyJSON
	h.must(http.StatusCreated, "POST", "/v1/admin-keys", h.admin, `{"name":"second"}`).decode(t, &admin2)
	var admin3 adminKeyJSON
	h.must(http.StatusCreated, "POST", "/v1/admin-keys", h.admin, `{"name":"third"}`).decode(t, &admin3)
	secrets = append(secrets, live.Key, revoked.Key, expiring.Key, admin2.AdminKey, admin3.AdminKey)

	record(h.must(http.StatusNoContent, "DELETE", "/v1/keys/"+revoked.ID, h.admin, nil))
	record(h.must(http.StatusNoContent, "DELETE", "/v1/admin-keys/"+admin3.ID, h.admin, nil))
	h.clock.Advance(time.Hour)
	for _, key := range secrets {
		record(h.do("GET", "/v1/whoami", key, nil))
		record(h.do("GET", "/v1/keys", key, nil))
	}
	// Keys sent where they do not belong: in the URL, in a body, as a
	// name. None may be echoed back or logged.
	record(h.do("GET", "/v1/keys/"+live.Key, h.admin, nil))
	record(h.do("DELETE", "/v1/admin-keys/"+admin2.AdminKey, h.admin, nil))
	record(h.do("GET", "/v1/"+live.Key, "", nil))
	record(h.do("POST", "/v1/keys", h.admin, `{"name":5,"scopes":"`+live.Key+`"}`))
	record(h.do("POST", "/v1/keys", h.admin, `{"name":"x","expires_at":"`+live.Key+`"}`))
	record(h.do("POST", "/v1/keys", h.admin, `{"name":"`+live.Key+``))
	record(h.do("POST", "/_demo/knobs", "", `{"`+live.Key+`":1}`))
	record(h.do("GET", "/_demo/keys?name="+live.Key, "", nil))

	for _, path := range []string{"/_demo/keys", "/_demo/keys?state=live", "/_demo/stats", "/_demo/knobs"} {
		record(h.must(http.StatusOK, "GET", path, "", nil))
	}
	record(h.must(http.StatusOK, "GET", "/v1/keys", admin2.AdminKey, nil))
	record(h.must(http.StatusOK, "GET", "/v1/keys/"+live.ID, admin2.AdminKey, nil))
	record(h.must(http.StatusOK, "GET", "/v1/admin-keys", admin2.AdminKey, nil))

	// The inspection endpoint lists all six keys with their states.
	states := map[string]string{}
	for id, k := range h.inspect("") {
		states[id] = k.State
	}
	wantStates := map[string]string{
		h.initialAdminID(): StateLive, admin2.ID: StateLive, admin3.ID: StateRevoked,
		live.ID: StateLive, revoked.ID: StateRevoked, expiring.ID: StateExpired,
	}
	if !reflect.DeepEqual(states, wantStates) {
		t.Errorf("inspection states = %v, want %v", states, wantStates)
	}

	logText := h.log.String()
	if !strings.Contains(logText, "GET /v1/whoami 401") || !strings.Contains(logText, "GET /v1/keys/[redacted]") {
		t.Errorf("request log lacks the expected lines:\n%s", logText)
	}
	for i, secret := range secrets {
		for _, body := range bodies {
			if strings.Contains(body, secret) {
				t.Errorf("secret #%d appears in a response: %s", i, body)
			}
		}
		if strings.Contains(logText, secret) {
			t.Errorf("secret #%d appears in the request log", i)
		}
		// Not even a recognisable part of one.
		if strings.Contains(logText, secret[len(secret)-16:]) {
			t.Errorf("the tail of secret #%d appears in the request log", i)
		}
	}
}

func TestInspectionFilters(t *testing.T) {
	h := newHarness(t)
	a := h.createKey(map[string]any{"name": "a"})
	b := h.createKey(map[string]any{"name": "b"})
	a2 := h.createKey(map[string]any{"name": "a"})
	h.must(http.StatusNoContent, "DELETE", "/v1/keys/"+b.ID, h.admin, nil)
	adminID := h.initialAdminID()

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{adminID, a.ID, b.ID, a2.ID}},
		{"?kind=key", []string{a.ID, b.ID, a2.ID}},
		{"?kind=admin", []string{adminID}},
		{"?state=live", []string{adminID, a.ID, a2.ID}},
		{"?state=revoked", []string{b.ID}},
		{"?state=expired", nil},
		{"?name=a", []string{a.ID, a2.ID}},
		{"?name=a&state=live&kind=key", []string{a.ID, a2.ID}},
		{"?name=initial&kind=key", nil},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			var out struct{ Keys []inspectJSON }
			h.must(http.StatusOK, "GET", "/_demo/keys"+tc.query, "", nil).decode(t, &out)
			var got []string
			for _, k := range out.Keys {
				got = append(got, k.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ids = %v, want %v (in creation order)", got, tc.want)
			}
		})
	}
	for _, bad := range []struct{ query, field string }{{"?state=dead", "state"}, {"?kind=root", "kind"}} {
		if e := h.must(http.StatusBadRequest, "GET", "/_demo/keys"+bad.query, "", nil).apiErr(t); !strings.HasPrefix(e.Message, bad.field) {
			t.Errorf("%s: message %q does not name %s", bad.query, e.Message, bad.field)
		}
	}
}

func TestStats(t *testing.T) {
	h := newHarness(t)
	k := h.createKey(map[string]any{"name": "a"})
	h.createKey(map[string]any{"name": "b"})
	h.must(http.StatusBadRequest, "POST", "/v1/keys", h.admin, `{}`)
	h.must(http.StatusOK, "GET", "/v1/keys/"+k.ID, h.admin, nil)
	h.must(http.StatusNoContent, "DELETE", "/v1/keys/"+k.ID, h.admin, nil)
	h.must(http.StatusNotFound, "DELETE", "/v1/keys/"+k.ID, h.admin, nil)
	h.must(http.StatusUnauthorized, "GET", "/v1/whoami", k.Key, nil)
	h.setKnobs(`{"down":true}`)
	h.must(http.StatusServiceUnavailable, "GET", "/v1/whoami", h.admin, nil)
	h.must(http.StatusServiceUnavailable, "GET", "/v1/admin-keys", h.admin, nil)
	h.setKnobs(`{"down":false,"rate_limit_every":1}`)
	h.must(http.StatusTooManyRequests, "GET", "/v1/whoami", h.admin, nil)
	// Neither the harness endpoints nor unknown routes are counted.
	h.must(http.StatusOK, "GET", "/healthz", "", nil)
	h.must(http.StatusNotFound, "GET", "/v1/unknown", "", nil)

	var got stats
	h.must(http.StatusOK, "GET", "/_demo/stats", "", nil).decode(t, &got)
	want := stats{
		Requests: map[string]int{
			"POST /v1/keys":        3,
			"GET /v1/keys/{id}":    1,
			"DELETE /v1/keys/{id}": 2,
			"GET /v1/whoami":       3,
			"GET /v1/admin-keys":   1,
		},
		Status: map[int]int{201: 2, 400: 1, 200: 1, 204: 1, 404: 1, 401: 1, 503: 2, 429: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats =\n%+v\nwant\n%+v", got, want)
	}
	// Status keys are strings in JSON.
	if body := string(h.must(http.StatusOK, "GET", "/_demo/stats", "", nil).body); !strings.Contains(body, `"503":2`) {
		t.Errorf("stats body %s", body)
	}
}

func TestReset(t *testing.T) {
	h := newHarness(t)
	k := h.createKey(map[string]any{"name": "a"})
	var second adminKeyJSON
	h.must(http.StatusCreated, "POST", "/v1/admin-keys", h.admin, nil).decode(t, &second)
	var gone adminKeyJSON
	h.must(http.StatusCreated, "POST", "/v1/admin-keys", h.admin, nil).decode(t, &gone)
	h.must(http.StatusNoContent, "DELETE", "/v1/admin-keys/"+gone.ID, h.admin, nil)
	h.setKnobs(`{"latency_ms":1,"error_rate":0.5,"error_status":500,"rate_limit_every":9,"retry_after":4}`)

	h.must(http.StatusNoContent, "POST", "/_demo/reset", "", nil)

	var kn knobsJSON
	h.must(http.StatusOK, "GET", "/_demo/knobs", "", nil).decode(t, &kn)
	if !reflect.DeepEqual(kn, DefaultKnobs().view()) {
		t.Errorf("knobs after reset = %+v", kn)
	}
	var st stats
	h.must(http.StatusOK, "GET", "/_demo/stats", "", nil).decode(t, &st)
	if len(st.Requests) != 0 || len(st.Status) != 0 {
		t.Errorf("stats after reset = %+v", st)
	}
	left := h.inspect("")
	if _, ok := left[second.ID]; len(left) != 2 || !ok {
		t.Errorf("keys after reset = %v, want the two live admin keys", left)
	}
	h.must(http.StatusOK, "GET", "/v1/whoami", h.admin, nil)
	h.must(http.StatusOK, "GET", "/v1/whoami", second.AdminKey, nil)
	h.must(http.StatusUnauthorized, "GET", "/v1/whoami", k.Key, nil)
	h.must(http.StatusUnauthorized, "GET", "/v1/whoami", gone.AdminKey, nil)
}

func TestHealthz(t *testing.T) {
	h := newHarness(t)
	h.setKnobs(`{"down":true}`)
	if r := h.must(http.StatusOK, "GET", "/healthz", "", nil); strings.TrimSpace(string(r.body)) != "ok" {
		t.Errorf("healthz body %q", r.body)
	}
}

// TestConcurrentUse is for the race detector: clients, knob changes and
// inspection all at once.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				name := fmt.Sprintf("w%d-%d", w, i)
				r := h.do("POST", "/v1/keys", h.admin, map[string]string{"name": name})
				if r.status != http.StatusCreated {
					continue // a knob may have answered
				}
				var k keyJSON
				r.decode(t, &k)
				h.do("GET", "/v1/whoami", k.Key, nil)
				h.do("DELETE", "/v1/keys/"+k.ID, h.admin, nil)
				h.do("GET", "/v1/whoami", k.Key, nil)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 30 {
			h.do("POST", "/_demo/knobs", "", fmt.Sprintf(`{"rate_limit_every":%d,"latency_ms":%d}`, i%4, i%2))
			h.do("GET", "/_demo/keys", "", nil)
			h.do("GET", "/_demo/stats", "", nil)
			h.clock.Advance(time.Second)
		}
	}()
	wg.Wait()

	// No key was ever accepted after it was revoked.
	for _, k := range h.inspect("?kind=key") {
		if k.State == StateLive {
			continue
		}
		if k.LastUsedAt > k.RevokedAt {
			t.Errorf("%s used at %s after revocation at %s", k.ID, k.LastUsedAt, k.RevokedAt)
		}
	}
}
