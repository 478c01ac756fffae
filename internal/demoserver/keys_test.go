package demoserver

import (
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	keyIDPattern    = regexp.MustCompile(`^key_[0-9a-f]{12}$`)
	keyValuePattern = regexp.MustCompile(`^demo_[0-9a-f]{40}$`)
)

func TestKeyLifecycle(t *testing.T) {
	h := newHarness(t)

	first := h.createKey(map[string]any{"name": "ci", "scopes": []string{"read", "write"}})
	h.clock.Advance(time.Second)
	// Names are not unique: a second live key may share one.
	second := h.createKey(map[string]any{"name": "ci"})
	h.clock.Advance(time.Second)
	other := h.createKey(map[string]any{"name": "other"})

	for _, k := range []keyJSON{first, second, other} {
		if !keyIDPattern.MatchString(k.ID) {
			t.Errorf("id %q does not match %s", k.ID, keyIDPattern)
		}
		if !keyValuePattern.MatchString(k.Key) {
			t.Errorf("key value for %s does not match %s", k.ID, keyValuePattern)
		}
		if _, err := time.Parse(time.RFC3339, k.CreatedAt); err != nil || !strings.HasSuffix(k.CreatedAt, "Z") {
			t.Errorf("created_at %q is not RFC3339 UTC", k.CreatedAt)
		}
	}
	if first.ID == second.ID || first.Key == second.Key {
		t.Fatal("two keys share an id or value")
	}
	if !slices.Equal(first.Scopes, []string{"read", "write"}) || second.Scopes == nil || len(second.Scopes) != 0 {
		t.Errorf("scopes: first %v, second %#v", first.Scopes, second.Scopes)
	}
	if first.CreatedAt != "2030-01-02T03:04:05Z" {
		t.Errorf("created_at %q does not come from the injected clock", first.CreatedAt)
	}

	listIDs := func(query string) []string {
		t.Helper()
		var out struct{ Keys []keyJSON }
		r := h.must(http.StatusOK, "GET", "/v1/keys"+query, h.admin, nil)
		if strings.Contains(string(r.body), `"key"`) {
			t.Errorf("list shows a secret: %s", r.body)
		}
		r.decode(t, &out)
		var ids []string
		for _, k := range out.Keys {
			ids = append(ids, k.ID)
		}
		return ids
	}
	if got, want := listIDs(""), []string{first.ID, second.ID, other.ID}; !slices.Equal(got, want) {
		t.Errorf("list = %v, want %v (creation order)", got, want)
	}
	if got, want := listIDs("?name=ci"), []string{first.ID, second.ID}; !slices.Equal(got, want) {
		t.Errorf("list ?name=ci = %v, want %v", got, want)
	}
	if got := listIDs("?name=nobody"); len(got) != 0 {
		t.Errorf("list ?name=nobody = %v, want none", got)
	}

	var got keyJSON
	h.must(http.StatusOK, "GET", "/v1/keys/"+first.ID, h.admin, nil).decode(t, &got)
	first.Key = ""
	if !reflect.DeepEqual(got, first) {
		t.Errorf("get = %+v, want %+v", got, first)
	}

	h.must(http.StatusNoContent, "DELETE", "/v1/keys/"+first.ID, h.admin, nil)
	if e := h.must(http.StatusNotFound, "GET", "/v1/keys/"+first.ID, h.admin, nil).apiErr(t); e.Code != "not_found" {
		t.Errorf("get after delete: code %q", e.Code)
	}
	if e := h.must(http.StatusNotFound, "DELETE", "/v1/keys/"+first.ID, h.admin, nil).apiErr(t); e.Code != "not_found" {
		t.Errorf("second delete: code %q", e.Code)
	}
	h.must(http.StatusNotFound, "DELETE", "/v1/keys/key_000000000000", h.admin, nil)
	// An admin key id is not a normal key id.
	h.must(http.StatusNotFound, "GET", "/v1/keys/"+h.initialAdminID(), h.admin, nil)
	if got, want := listIDs(""), []string{second.ID, other.ID}; !slices.Equal(got, want) {
		t.Errorf("list after delete = %v, want %v", got, want)
	}
}

func TestKeyExpiry(t *testing.T) {
	h := newHarness(t)
	expires := h.clock.Now().Add(time.Hour)
	k := h.createKey(map[string]any{"name": "short", "expires_at": expires.Format(time.RFC3339)})
	forever := h.createKey(map[string]any{"name": "forever"})
	if k.ExpiresAt != "2030-01-02T04:04:05Z" {
		t.Errorf("expires_at = %q", k.ExpiresAt)
	}
	if strings.Contains(string(h.must(http.StatusOK, "GET", "/v1/keys/"+forever.ID, h.admin, nil).body), "expires_at") {
		t.Error("a key without expiry shows expires_at")
	}

	var who whoamiJSON
	h.must(http.StatusOK, "GET", "/v1/whoami", k.Key, nil).decode(t, &who)
	if who.ExpiresAt != k.ExpiresAt {
		t.Errorf("whoami expires_at = %q, want %q", who.ExpiresAt, k.ExpiresAt)
	}

	h.clock.Advance(time.Hour - time.Second)
	h.must(http.StatusOK, "GET", "/v1/whoami", k.Key, nil)
	h.clock.Advance(time.Second) // exactly at expires_at: expired

	if e := h.must(http.StatusUnauthorized, "GET", "/v1/whoami", k.Key, nil).apiErr(t); e.Code != "unauthorized" {
		t.Errorf("whoami after expiry: code %q", e.Code)
	}
	h.must(http.StatusNotFound, "GET", "/v1/keys/"+k.ID, h.admin, nil)
	h.must(http.StatusNotFound, "DELETE", "/v1/keys/"+k.ID, h.admin, nil)
	var list struct{ Keys []keyJSON }
	h.must(http.StatusOK, "GET", "/v1/keys", h.admin, nil).decode(t, &list)
	if len(list.Keys) != 1 || list.Keys[0].ID != forever.ID {
		t.Errorf("list after expiry = %+v, want only %s", list.Keys, forever.ID)
	}

	got := h.inspect("")[k.ID]
	if got.State != StateExpired || got.Uses != 2 || got.RejectedUses != 1 || got.LastRejectedAt != "2030-01-02T04:04:05Z" {
		t.Errorf("inspection of expired key = %+v", got)
	}
	if got.RevokedAt != "" {
		t.Errorf("expired key has revoked_at %q", got.RevokedAt)
	}
}

func TestCreateKeyValidation(t *testing.T) {
	h := newHarness(t)
	past := h.clock.Now().Add(-time.Minute).Format(time.RFC3339)
	now := h.clock.Now().Format(time.RFC3339)
	tests := []struct {
		name     string
		body     string
		wantText string // the message must contain this (names the field)
	}{
		{"empty body", ``, "JSON object"},
		{"not json", `{"name":`, "not valid JSON"},
		{"garbage", `name=x`, "not valid JSON"},
		{"array", `["x"]`, "JSON object"},
		{"trailing data", `{"name":"a"} {"name":"b"}`, "single JSON object"},
		{"missing name", `{"scopes":["a"]}`, "name is required"},
		{"empty name", `{"name":""}`, "name is required"},
		{"long name", `{"name":"` + strings.Repeat("x", 201) + `"}`, "name must be at most 200"},
		{"name not string", `{"name":5}`, "name must be a string"},
		{"scopes not array", `{"name":"a","scopes":"read"}`, "scopes must be an array of strings"},
		{"scope not string", `{"name":"a","scopes":[1]}`, "scopes must be an array of strings"},
		{"empty scope", `{"name":"a","scopes":["ok",""]}`, "scopes[1]"},
		{"expires_at not a time", `{"name":"a","expires_at":"tomorrow"}`, "expires_at must be an RFC3339"},
		{"expires_at empty", `{"name":"a","expires_at":""}`, "expires_at must be an RFC3339"},
		{"expires_at not string", `{"name":"a","expires_at":12}`, "expires_at must be a string"},
		{"expires_at past", `{"name":"a","expires_at":"` + past + `"}`, "expires_at must be in the future"},
		{"expires_at now", `{"name":"a","expires_at":"` + now + `"}`, "expires_at must be in the future"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := h.must(http.StatusBadRequest, "POST", "/v1/keys", h.admin, tc.body).apiErr(t)
			if e.Code != "invalid_request" || !strings.Contains(e.Message, tc.wantText) {
				t.Errorf("error = %+v, want invalid_request mentioning %q", e, tc.wantText)
			}
		})
	}
	// 200 characters is still fine, counted as characters, not bytes.
	h.createKey(map[string]any{"name": strings.Repeat("é", 200)})
	if n := len(h.inspect("?kind=key")); n != 1 {
		t.Errorf("%d keys exist after the bad requests, want 1", n)
	}
}

func TestUnknownRoutesAnswerJSON(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		method, path string
		status       int
		code         string
		allow        string
	}{
		{"GET", "/v2/keys", http.StatusNotFound, "not_found", ""},
		{"GET", "/v1/nothing", http.StatusNotFound, "not_found", ""},
		{"PUT", "/v1/keys", http.StatusMethodNotAllowed, "method_not_allowed", "POST, GET"},
		{"POST", "/v1/keys/key_000000000000", http.StatusMethodNotAllowed, "method_not_allowed", "GET, DELETE"},
		{"DELETE", "/_demo/knobs", http.StatusMethodNotAllowed, "method_not_allowed", "GET, POST"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := h.must(tc.status, tc.method, tc.path, h.admin, nil)
			if e := r.apiErr(t); e.Code != tc.code {
				t.Errorf("code %q, want %q", e.Code, tc.code)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}
