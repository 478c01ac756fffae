package gitlab

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/gitlab/gitlabtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// newClient builds the provider the way the backend does: defaults merged,
// Validate, then New.
func newClient(t *testing.T, baseURL string, fields map[string]string) *provider {
	t.Helper()
	return clienttest.New(t, "gitlab", baseURL, fields).(*provider)
}

func targetFields(srv *gitlabtest.Server, targetType string) map[string]string {
	id := map[string]int{"project": gitlabtest.DefaultProjectID, "group": gitlabtest.DefaultGroupID, "user": gitlabtest.DefaultUserID}[targetType]
	return map[string]string{"token": srv.RootToken(), "target_type": targetType, "target_id": fmt.Sprint(id)}
}

func today() time.Time {
	n := time.Now().UTC()
	return time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC)
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, "gitlab")
	if !typ.BaseURLRequired || typ.DefaultBaseURL != "" {
		t.Fatal("gitlab must require base_url")
	}
	caps := typ.Capabilities
	if !caps.Expiry || !caps.ListByName || !caps.RootRotation || !caps.NativeRoll {
		t.Fatalf("capabilities = %+v", caps)
	}
	for _, f := range typ.Fields {
		if f.Name == "token" && (!f.Sensitive || !f.Required) {
			t.Fatal("token must be sensitive and required")
		}
		if f.Name != "token" && f.Sensitive {
			t.Fatalf("%s must not be sensitive", f.Name)
		}
		if f.Description == "" {
			t.Fatalf("%s has no description", f.Name)
		}
	}
}

func TestValidate(t *testing.T) {
	good := map[string]string{"token": "glpat-x", "target_type": "project", "target_id": "7", "root_token_lifetime_days": ""}
	clienttest.AssertValidate(t, "gitlab", good, []clienttest.FieldsCase{
		{"ok project", nil, ""},
		{"ok group", map[string]string{"target_type": "group"}, ""},
		{"ok user with lifetime", map[string]string{"target_type": "user", "root_token_lifetime_days": "90"}, ""},
		{"unknown target type", map[string]string{"target_type": "namespace"}, "target_type"},
		{"empty target type", map[string]string{"target_type": ""}, "target_type"},
		{"target id not a number", map[string]string{"target_id": "group/project"}, "target_id"},
		{"target id zero", map[string]string{"target_id": "0"}, "target_id"},
		{"target id negative", map[string]string{"target_id": "-3"}, "target_id"},
		{"target id empty", map[string]string{"target_id": ""}, "target_id"},
		{"lifetime not a number", map[string]string{"root_token_lifetime_days": "1y"}, "root_token_lifetime_days"},
		{"lifetime zero", map[string]string{"root_token_lifetime_days": "0"}, "root_token_lifetime_days"},
		{"token empty", map[string]string{"token": " "}, "token"},
	})
}

func TestExpiryDate(t *testing.T) {
	now := time.Date(2025, 3, 10, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		want time.Time
		days int
		date string
	}{
		{"zero uses default days", time.Time{}, 30, "2025-04-09"},
		{"rounded up to next day", time.Date(2025, 3, 12, 0, 0, 1, 0, time.UTC), 30, "2025-03-13"},
		{"midnight stays", time.Date(2025, 3, 12, 0, 0, 0, 0, time.UTC), 30, "2025-03-12"},
		{"other zone converted to UTC", time.Date(2025, 3, 12, 23, 30, 0, 0, time.FixedZone("x", -2*3600)), 30, "2025-03-14"},
		{"today becomes tomorrow", now.Add(time.Hour), 30, "2025-03-11"},
		{"past becomes tomorrow", now.Add(-48 * time.Hour), 30, "2025-03-11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			date, at := expiryDate(tt.want, now, tt.days)
			if date != tt.date {
				t.Fatalf("date = %s, want %s", date, tt.date)
			}
			if at.Format(dateLayout) != date || at.Hour() != 0 || at.Location() != time.UTC {
				t.Fatalf("instant %v does not match date %s", at, date)
			}
			if !tt.want.IsZero() && at.Before(tt.want) && tt.want.After(now) {
				t.Fatalf("expiry %v is before the wanted %v", at, tt.want)
			}
		})
	}
}

func TestKeyLifecycle(t *testing.T) {
	tests := []struct {
		target     string
		params     map[string]string
		createPath string
		revokePath func(id string) string
	}{
		{"project", map[string]string{"access_level": "30", "description": "ci reader"},
			"/api/v4/projects/100/access_tokens", func(id string) string { return "/api/v4/projects/100/access_tokens/" + id }},
		{"group", map[string]string{"access_level": "10"},
			"/api/v4/groups/200/access_tokens", func(id string) string { return "/api/v4/groups/200/access_tokens/" + id }},
		{"user", map[string]string{"description": "for a bot"},
			"/api/v4/users/300/personal_access_tokens", func(id string) string { return "/api/v4/personal_access_tokens/" + id }},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			t.Parallel()
			srv := gitlabtest.NewServer()
			defer srv.Close()
			p := newClient(t, srv.URL, targetFields(srv, tt.target))
			ctx := context.Background()
			expires := time.Now().Add(36 * time.Hour)
			wantDate, _ := expiryDate(expires, time.Now(), 30)

			key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: []string{"read_api", "read_repository"},
				Parameters: tt.params, ExpiresAt: expires})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if key.ID == "" || !strings.HasPrefix(key.Secret, "glpat-") || key.Name != "vault-app-1" {
				t.Fatalf("key = %+v", key)
			}
			if key.ExpiresAt.Format(dateLayout) != wantDate || key.ExpiresAt.Before(expires) {
				t.Fatalf("key expires %v, want date %s after %v", key.ExpiresAt, wantDate, expires)
			}
			if key.Extra["target_type"] != tt.target || key.Extra["scopes"] != "read_api,read_repository" {
				t.Fatalf("extra = %v", key.Extra)
			}

			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("want 1 request, got %d", len(reqs))
			}
			c := reqs[0]
			if c.Method != http.MethodPost || c.Path != tt.createPath || c.Auth != "root" {
				t.Fatalf("create request = %s %s auth=%s", c.Method, c.Path, c.Auth)
			}
			if c.Header["Content-Type"] != "application/json" {
				t.Fatalf("content type %q", c.Header["Content-Type"])
			}
			if c.Body["name"] != "vault-app-1" || c.Body["expires_at"] != wantDate {
				t.Fatalf("create body = %v", c.Body)
			}
			scopes, _ := c.Body["scopes"].([]any)
			if len(scopes) != 2 || scopes[0] != "read_api" || scopes[1] != "read_repository" {
				t.Fatalf("scopes sent = %v", c.Body["scopes"])
			}
			if lvl, ok := tt.params["access_level"]; ok && fmt.Sprint(c.Body["access_level"]) != lvl {
				t.Fatalf("access_level sent = %v", c.Body["access_level"])
			}
			if d, ok := tt.params["description"]; ok && c.Body["description"] != d {
				t.Fatalf("description sent = %v", c.Body["description"])
			}
			if tok, _ := srv.TokenByID(key.ID); tok.ExpiresAt != wantDate {
				t.Fatalf("server holds expiry %s", tok.ExpiresAt)
			}

			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			reqs = srv.Requests()
			if v := reqs[len(reqs)-1]; v.Path != "/api/v4/personal_access_tokens/self" || v.Auth != "key:"+key.ID {
				t.Fatalf("verify request = %s auth=%s", v.Path, v.Auth)
			}

			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			reqs = srv.Requests()
			if r := reqs[len(reqs)-1]; r.Method != http.MethodDelete || r.Path != tt.revokePath(key.ID) || r.Status != http.StatusNoContent {
				t.Fatalf("revoke request = %s %s -> %d", r.Method, r.Path, r.Status)
			}
			if len(srv.LiveKeys()) != 0 {
				t.Fatal("key still live after revoke")
			}
			err = clienttest.AssertRevoked(t, p, key, srv.IsLive, srv.RootToken())
			if !strings.Contains(err.Error(), "401") {
				t.Fatalf("verify error should name the status: %v", err)
			}
			if r := srv.Requests(); r[len(r)-1].Status != http.StatusNotFound {
				t.Fatalf("second revoke got %d, want the server's 404", r[len(r)-1].Status)
			}
		})
	}
}

func TestDefaultScopesAndExpiry(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL, targetFields(srv, "project"))
	ctx := context.Background()

	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	body := srv.Requests()[0].Body
	want := today().AddDate(0, 0, 30)
	if body["expires_at"] != want.Format(dateLayout) || !key.ExpiresAt.Equal(want) {
		t.Fatalf("expires_at = %v / %v, want %s", body["expires_at"], key.ExpiresAt, want.Format(dateLayout))
	}
	if s, _ := body["scopes"].([]any); len(s) != 1 || s[0] != "read_api" {
		t.Fatalf("default scopes = %v", body["scopes"])
	}
	if _, ok := body["access_level"]; ok {
		t.Fatal("access_level sent although the role did not set it")
	}

	srv.ResetRequests()
	key, err = p.CreateKey(ctx, clients.KeyRequest{Name: "k2", Parameters: map[string]string{"expires_in_days": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests()[0].Body["expires_at"]; got != today().AddDate(0, 0, 7).Format(dateLayout) {
		t.Fatalf("expires_in_days not applied: %v", got)
	}
	// An explicit expiry wins over expires_in_days.
	srv.ResetRequests()
	at := time.Now().Add(50 * time.Hour)
	if _, err = p.CreateKey(ctx, clients.KeyRequest{Name: "k3", ExpiresAt: at, Parameters: map[string]string{"expires_in_days": "7"}}); err != nil {
		t.Fatal(err)
	}
	if d, _ := expiryDate(at, time.Now(), 0); srv.Requests()[0].Body["expires_at"] != d {
		t.Fatalf("request expiry not used: %v", srv.Requests()[0].Body["expires_at"])
	}
}

func TestVerifyNarrowScopeKey(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL, targetFields(srv, "project"))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "repo-only", Scopes: []string{"read_repository"}})
	if err != nil {
		t.Fatal(err)
	}
	// The server answers 403 insufficient_scope: the token authenticated.
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if r := srv.Requests(); r[len(r)-1].Status != http.StatusForbidden {
		t.Fatalf("expected the server to answer 403, got %d", r[len(r)-1].Status)
	}
	// A wrong secret is still a failure.
	if err := p.VerifyKey(ctx, clients.Key{ID: key.ID, Secret: "glpat-not-a-token"}); err == nil {
		t.Fatal("VerifyKey accepted an unknown token")
	}
}

func TestBadParameters(t *testing.T) {
	tests := []struct {
		name   string
		target string
		scopes []string
		params map[string]string
		field  string
		text   string
	}{
		{"unknown parameter", "project", nil, map[string]string{"access_level": "30", "colour": "red"}, "parameters", `"colour"`},
		{"bad access level", "project", nil, map[string]string{"access_level": "35"}, "parameters", "access_level"},
		{"access level on user", "user", nil, map[string]string{"access_level": "30"}, "parameters", "access_level"},
		{"bad expires_in_days", "group", nil, map[string]string{"expires_in_days": "soon"}, "parameters", "expires_in_days"},
		{"empty scope", "group", []string{"api", ""}, nil, "scopes", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := gitlabtest.NewServer()
			defer srv.Close()
			p := newClient(t, srv.URL, targetFields(srv, tt.target))
			_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "x", Scopes: tt.scopes, Parameters: tt.params})
			clienttest.AssertFieldError(t, err, tt.field, tt.text)
			if n := len(srv.Requests()); n != 0 {
				t.Fatalf("%d requests sent for a bad request", n)
			}
		})
	}
}

func TestFindKeys(t *testing.T) {
	for _, target := range []string{"project", "group", "user"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			srv := gitlabtest.NewServer(gitlabtest.WithMaxPerPage(2))
			defer srv.Close()
			p := newClient(t, srv.URL, targetFields(srv, target))
			ctx := context.Background()
			var want []string
			for i := 0; i < 5; i++ {
				k, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-1"})
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, k.ID)
			}
			// Same prefix, different name: must not match.
			if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-wal-10"}); err != nil {
				t.Fatal(err)
			}
			if err := p.RevokeKey(ctx, want[4]); err != nil {
				t.Fatal(err)
			}
			want = want[:4]

			srv.ResetRequests()
			keys, err := p.FindKeys(ctx, "vault-wal-1")
			if err != nil {
				t.Fatalf("FindKeys: %v", err)
			}
			var got []string
			for _, k := range keys {
				if k.Name != "vault-wal-1" || k.ExpiresAt.IsZero() {
					t.Fatalf("found key %+v", k)
				}
				got = append(got, k.ID)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("FindKeys = %v, want %v", got, want)
			}
			reqs := srv.Requests()
			if len(reqs) < 2 {
				t.Fatalf("expected paging over several requests, got %d", len(reqs))
			}
			for _, r := range reqs {
				if r.Method != http.MethodGet || r.Auth != "root" {
					t.Fatalf("list request %s %s auth=%s", r.Method, r.Path, r.Auth)
				}
				if target == "user" && (r.Path != "/api/v4/personal_access_tokens" || r.Query.Get("user_id") != "300") {
					t.Fatalf("user list request = %s ?%v", r.Path, r.Query)
				}
			}
			none, err := p.FindKeys(ctx, "nothing-by-this-name")
			if err != nil || len(none) != 0 {
				t.Fatalf("FindKeys(unknown) = %v, %v", none, err)
			}
		})
	}
}

func TestRootRotation(t *testing.T) {
	tests := []struct {
		name     string
		opts     []gitlabtest.Option
		lifetime string
		wantDays int
	}{
		{"copies the current lifetime", []gitlabtest.Option{gitlabtest.WithRootLifetime(10, 80)}, "", 90},
		{"configured lifetime", nil, "7", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := gitlabtest.NewServer(tt.opts...)
			defer srv.Close()
			ctx := context.Background()
			fields := targetFields(srv, "project")
			fields["root_token_lifetime_days"] = tt.lifetime
			old := newClient(t, srv.URL, fields)
			oldSecret, oldID := srv.RootToken(), srv.RootID()

			id, err := old.RootID(ctx)
			if err != nil || id != oldID {
				t.Fatalf("RootID = %q, %v; want %s", id, err, oldID)
			}

			srv.ResetRequests()
			root, err := old.CreateRoot(ctx, "vault-root-2")
			if err != nil {
				t.Fatalf("CreateRoot: %v", err)
			}
			newSecret := root.Fields["token"]
			if root.ID == "" || root.ID == oldID || newSecret == "" || newSecret == oldSecret {
				t.Fatalf("root = id %q (old %s)", root.ID, oldID)
			}
			var rotate *gitlabtest.Recorded
			for _, r := range srv.Requests() {
				if r.Path == "/api/v4/personal_access_tokens/self/rotate" {
					rotate = &r
				}
			}
			if rotate == nil || rotate.Method != http.MethodPost || rotate.Auth != "root" {
				t.Fatalf("rotate request = %+v", rotate)
			}
			if want := today().AddDate(0, 0, tt.wantDays).Format(dateLayout); rotate.Body["expires_at"] != want {
				t.Fatalf("new root expires_at = %v, want %s", rotate.Body["expires_at"], want)
			}
			if want := today().AddDate(0, 0, tt.wantDays); !root.ExpiresAt.Equal(want) {
				t.Fatalf("CreateRoot reports expiry %s, want %s", root.ExpiresAt, want)
			}

			// Roll semantics: the old token is dead at once.
			if srv.IsLive(oldSecret) {
				t.Fatal("old root still live after the roll")
			}
			err = old.VerifyRoot(ctx, clients.Root{ID: oldID, Fields: map[string]string{"token": oldSecret}})
			if err == nil {
				t.Fatal("VerifyRoot accepted the old root")
			}
			clienttest.AssertNoSecret(t, err, oldSecret, newSecret)
			if err := old.VerifyRoot(ctx, root); err != nil {
				t.Fatalf("VerifyRoot(new): %v", err)
			}

			fields["token"] = newSecret
			cur := newClient(t, srv.URL, fields)
			if err := cur.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot: %v", err)
			}
			if id, err := cur.RootID(ctx); err != nil || id != root.ID {
				t.Fatalf("RootID after rotation = %q, %v", id, err)
			}
			if got, err := cur.InspectRoot(ctx); err != nil || !got.ExpiresAt.Equal(root.ExpiresAt) {
				t.Fatalf("InspectRoot after rotation = %+v, %v; want expiry %s", got, err, root.ExpiresAt)
			}
			if _, err := cur.CreateKey(ctx, clients.KeyRequest{Name: "after-rotation"}); err != nil {
				t.Fatalf("CreateKey with the new root: %v", err)
			}
			_, err = old.CreateKey(ctx, clients.KeyRequest{Name: "with-old-root"})
			if err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("CreateKey with the old root: %v", err)
			}
			clienttest.AssertNoSecret(t, err, oldSecret, newSecret)
		})
	}
}

func TestRootRotationRejected(t *testing.T) {
	// A token without api/self_rotate scope cannot roll itself: the error
	// says so and the token keeps working.
	srv := gitlabtest.NewServer(gitlabtest.WithRootScopes("read_api"))
	defer srv.Close()
	p := newClient(t, srv.URL, map[string]string{"token": srv.RootToken(), "target_type": "project", "target_id": "100",
		"root_token_lifetime_days": "30"})
	_, err := p.CreateRoot(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "insufficient_scope") {
		t.Fatalf("CreateRoot = %v", err)
	}
	clienttest.AssertNoSecret(t, err, srv.RootToken())
	if !srv.IsLive(srv.RootToken()) {
		t.Fatal("root revoked by a failed rotation")
	}
}

func TestRateLimitRetried(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL, targetFields(srv, "group"))
	srv.FailNext(2, http.StatusTooManyRequests)
	key, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "after-429"})
	if err != nil {
		t.Fatalf("CreateKey after 429s: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 3 || reqs[0].Status != 429 || reqs[1].Status != 429 || reqs[2].Status != http.StatusCreated {
		t.Fatalf("requests = %+v", reqs)
	}
	if len(srv.LiveKeys()) != 1 || !srv.IsLive(key.Secret) {
		t.Fatal("expected exactly one live key")
	}
}

func TestErrorsNameProviderAndStatusWithoutSecrets(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL, targetFields(srv, "project"))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	root := srv.RootToken()

	srv.FailNext(100, http.StatusBadGateway)
	calls := map[string]func() error{
		"create": func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2"}); return err },
		"verify": func() error { return p.VerifyKey(ctx, key) },
		"revoke": func() error { return p.RevokeKey(ctx, key.ID) },
		"list":   func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"root":   func() error { _, err := p.CreateRoot(ctx, "r"); return err },
	}
	clienttest.AssertFailures(t, calls, http.StatusBadGateway, root, key.Secret)
	srv.FailNext(0, 0)

	// A GitLab validation error comes back with GitLab's message.
	_, err = p.CreateKey(ctx, clients.KeyRequest{Name: "k", ExpiresAt: time.Now().AddDate(2, 0, 0)})
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "expires_at must be before") {
		t.Fatalf("validation error = %v", err)
	}
	clienttest.AssertNoSecret(t, err, root, key.Secret)
}

func TestAPIMessage(t *testing.T) {
	tests := map[string]string{
		`{"message":"401 Unauthorized"}`:                            "401 Unauthorized",
		`{"message":{"name":["has already been taken"]}}`:           "name has already been taken",
		`{"error":"insufficient_scope","error_description":"more"}`: "insufficient_scope: more",
		"Retry later\n":                         "Retry later",
		"<html><body>Bad gateway</body></html>": "",
	}
	for in, want := range tests {
		if got := apiMessage([]byte(in)); got != want {
			t.Errorf("apiMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBaseURLWithAPIPath(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	p := newClient(t, srv.URL+"/api/v4", targetFields(srv, "project"))
	if _, err := p.RootID(context.Background()); err != nil {
		t.Fatalf("base_url ending in /api/v4: %v", err)
	}
}
