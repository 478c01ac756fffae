package demoserver

import (
	"net/http"
	"reflect"
	"regexp"
	"testing"
	"time"
)

var (
	adminIDPattern    = regexp.MustCompile(`^adm_[0-9a-f]{12}$`)
	adminValuePattern = regexp.MustCompile(`^demoadm_[0-9a-f]{32}$`)
)

func TestWhoamiAndRejectedUses(t *testing.T) {
	h := newHarness(t)
	k := h.createKey(map[string]any{"name": "app", "scopes": []string{"read"}})

	var who whoamiJSON
	h.must(http.StatusOK, "GET", "/v1/whoami", k.Key, nil).decode(t, &who)
	if who != (whoamiJSON{ID: k.ID, Name: "app", Kind: KindKey}) {
		t.Errorf("whoami = %+v", who)
	}
	h.clock.Advance(time.Minute)
	h.must(http.StatusOK, "GET", "/v1/whoami", k.Key, nil)

	var adminWho whoamiJSON
	h.must(http.StatusOK, "GET", "/v1/whoami", h.admin, nil).decode(t, &adminWho)
	if adminWho.Kind != KindAdmin || adminWho.Name != "initial" || !adminIDPattern.MatchString(adminWho.ID) {
		t.Errorf("admin whoami = %+v", adminWho)
	}

	got := h.inspect("")[k.ID]
	if got.State != StateLive || got.Uses != 2 || got.LastUsedAt != "2030-01-02T03:05:05Z" ||
		got.RejectedUses != 0 || got.LastRejectedAt != "" {
		t.Errorf("before delete: %+v", got)
	}

	h.clock.Advance(time.Minute)
	h.must(http.StatusNoContent, "DELETE", "/v1/keys/"+k.ID, h.admin, nil)
	h.clock.Advance(time.Minute)
	for range 3 {
		r := h.must(http.StatusUnauthorized, "GET", "/v1/whoami", k.Key, nil)
		if e := r.apiErr(t); e.Code != "unauthorized" {
			t.Errorf("code %q", e.Code)
		}
		if r.header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
	}

	got = h.inspect("")[k.ID]
	want := inspectJSON{
		ID: k.ID, Name: "app", Kind: KindKey, State: StateRevoked, Scopes: []string{"read"},
		CreatedAt: "2030-01-02T03:04:05Z", RevokedAt: "2030-01-02T03:06:05Z",
		Uses: 2, LastUsedAt: "2030-01-02T03:05:05Z",
		RejectedUses: 3, LastRejectedAt: "2030-01-02T03:07:05Z",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after delete:\n got %+v\nwant %+v", got, want)
	}
}

func TestAuthFailures(t *testing.T) {
	h := newHarness(t)
	normal := h.createKey(map[string]any{"name": "normal"})
	revoked := h.createKey(map[string]any{"name": "revoked"})
	h.must(http.StatusNoContent, "DELETE", "/v1/keys/"+revoked.ID, h.admin, nil)

	endpoints := []struct{ method, path, body string }{
		{"POST", "/v1/keys", `{"name":"x"}`},
		{"GET", "/v1/keys", ""},
		{"GET", "/v1/keys/" + normal.ID, ""},
		{"DELETE", "/v1/keys/" + normal.ID, ""},
		{"POST", "/v1/admin-keys", `{}`},
		{"GET", "/v1/admin-keys", ""},
		{"DELETE", "/v1/admin-keys/adm_000000000000", ""},
	}
	callers := []struct {
		name   string
		header string // full Authorization header, "" for none
		status int
		code   string
	}{
		{"no header", "", http.StatusUnauthorized, "unauthorized"},
		{"not bearer", "Basic " + testAdminKey, http.StatusUnauthorized, "unauthorized"},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, "unauthorized"},
		{"unknown key", "Bearer demoadm_ffffffffffffffffffffffffffffffff", http.StatusUnauthorized, "unauthorized"},
		{"admin key prefix only", "Bearer " + testAdminKey[:20], http.StatusUnauthorized, "unauthorized"},
		{"revoked key", "Bearer " + revoked.Key, http.StatusUnauthorized, "unauthorized"},
		{"normal key", "Bearer " + normal.Key, http.StatusForbidden, "forbidden"},
	}
	for _, c := range callers {
		for _, ep := range endpoints {
			t.Run(c.name+"/"+ep.method+" "+ep.path, func(t *testing.T) {
				req, err := http.NewRequest(ep.method, h.url+ep.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if c.header != "" {
					req.Header.Set("Authorization", c.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != c.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, c.status)
				}
			})
		}
	}
	// The forbidden attempts did not change anything.
	h.must(http.StatusOK, "GET", "/v1/keys/"+normal.ID, h.admin, nil)
	if n := len(h.inspect("?kind=admin")); n != 1 {
		t.Errorf("%d admin keys, want 1", n)
	}
	// "bearer" is case-insensitive, as RFC 7235 says auth schemes are.
	req, _ := http.NewRequest("GET", h.url+"/v1/whoami", nil)
	req.Header.Set("Authorization", "bearer "+normal.Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("lower-case bearer: status %d", resp.StatusCode)
	}
	if got := h.inspect("")[revoked.ID].RejectedUses; got != len(endpoints) {
		t.Errorf("revoked key rejected_uses = %d, want %d", got, len(endpoints))
	}
}

func TestAdminKeyRotation(t *testing.T) {
	h := newHarness(t)
	oldID := h.initialAdminID()

	var created adminKeyJSON
	h.must(http.StatusCreated, "POST", "/v1/admin-keys", h.admin, map[string]string{"name": "rotated"}).decode(t, &created)
	if !adminIDPattern.MatchString(created.ID) || !adminValuePattern.MatchString(created.AdminKey) || created.Name != "rotated" {
		t.Fatalf("created admin key = id %q name %q value-format-ok %v",
			created.ID, created.Name, adminValuePattern.MatchString(created.AdminKey))
	}
	newKey := created.AdminKey

	// Until deleted, the old key keeps working alongside the new one.
	h.must(http.StatusOK, "GET", "/v1/admin-keys", h.admin, nil)
	var list struct {
		AdminKeys []adminKeyJSON `json:"admin_keys"`
	}
	h.must(http.StatusOK, "GET", "/v1/admin-keys", newKey, nil).decode(t, &list)
	if len(list.AdminKeys) != 2 || list.AdminKeys[0].ID != oldID || list.AdminKeys[1].ID != created.ID {
		t.Fatalf("admin keys = %+v", list.AdminKeys)
	}
	for _, k := range list.AdminKeys {
		if k.AdminKey != "" {
			t.Error("list shows an admin key value")
		}
	}

	h.must(http.StatusNoContent, "DELETE", "/v1/admin-keys/"+oldID, newKey, nil)
	h.must(http.StatusUnauthorized, "GET", "/v1/whoami", h.admin, nil)
	h.must(http.StatusUnauthorized, "POST", "/v1/keys", h.admin, `{"name":"x"}`)
	h.createKeyWith(newKey, "after rotation")

	h.must(http.StatusOK, "GET", "/v1/admin-keys", newKey, nil).decode(t, &list)
	if len(list.AdminKeys) != 1 || list.AdminKeys[0].ID != created.ID {
		t.Errorf("admin keys after rotation = %+v", list.AdminKeys)
	}
	h.must(http.StatusNotFound, "DELETE", "/v1/admin-keys/"+oldID, newKey, nil)
	h.must(http.StatusNotFound, "DELETE", "/v1/admin-keys/adm_000000000000", newKey, nil)

	if e := h.must(http.StatusConflict, "DELETE", "/v1/admin-keys/"+created.ID, newKey, nil).apiErr(t); e.Code != "conflict" {
		t.Errorf("deleting the last admin key: code %q", e.Code)
	}
	h.must(http.StatusOK, "GET", "/v1/whoami", newKey, nil)

	old := h.inspect("")[oldID]
	if old.State != StateRevoked || old.RejectedUses != 2 {
		t.Errorf("old admin key inspection = %+v", old)
	}

	// The body is optional when creating an admin key.
	var unnamed adminKeyJSON
	h.must(http.StatusCreated, "POST", "/v1/admin-keys", newKey, nil).decode(t, &unnamed)
	if unnamed.Name != "" || unnamed.AdminKey == "" {
		t.Errorf("unnamed admin key = %+v", unnamed)
	}
	if e := h.must(http.StatusBadRequest, "POST", "/v1/admin-keys", newKey, `{"name":7}`).apiErr(t); e.Message != "name must be a string" {
		t.Errorf("bad admin name: %+v", e)
	}
}

func (h *harness) createKeyWith(adminKey, name string) {
	h.t.Helper()
	h.must(http.StatusCreated, "POST", "/v1/keys", adminKey, map[string]string{"name": name})
}
