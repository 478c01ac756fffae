package cloudflare_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/cloudflare"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/cloudflare/cloudflaretest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

func newProvider(t *testing.T, srv *cloudflaretest.Server, fields map[string]string) clients.Provider {
	t.Helper()
	return clienttest.New(t, cloudflare.TypeName, srv.URL, fields)
}

func rootFields(srv *cloudflaretest.Server) map[string]string {
	f := map[string]string{"api_token": srv.RootToken()}
	if id := srv.AccountID(); id != "" {
		f["account_id"] = id
	}
	return f
}

func tokensPath(srv *cloudflaretest.Server) string {
	if id := srv.AccountID(); id != "" {
		return "/accounts/" + id + "/tokens"
	}
	return "/user/tokens"
}

func lastRequest(t *testing.T, srv *cloudflaretest.Server, method, path string) cloudflaretest.Recorded {
	t.Helper()
	return clienttest.Last(t, srv.Requests(), method+" "+path, func(r cloudflaretest.Recorded) bool { return r.Method == method && r.Path == path })
}

func jsonValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

const dnsPolicies = `[{"effect":"allow","permission_groups":[{"id":"` + cloudflaretest.PermDNSEdit + `"}],` +
	`"resources":{"com.cloudflare.api.account.zone.023e105f4ecef8ad9ca31a8372d0c353":"*"}}]`

// clock is a settable clock for the fake's expiry checks.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	expires := time.Now().Add(48 * time.Hour).Truncate(time.Second).UTC()
	tests := []struct {
		name      string
		account   bool
		params    map[string]string
		expiresAt time.Time
		wantBody  map[string]string // JSON-encoded expected body fields
	}{
		{
			name:      "user token with expiry",
			params:    map[string]string{"policies": dnsPolicies},
			expiresAt: expires.Add(300 * time.Millisecond),
			wantBody:  map[string]string{"policies": dnsPolicies, "expires_on": `"` + expires.Format(time.RFC3339) + `"`},
		},
		{
			name:     "account token without expiry",
			account:  true,
			params:   map[string]string{"policies": dnsPolicies},
			wantBody: map[string]string{"policies": dnsPolicies},
		},
		{
			name: "condition and not_before",
			params: map[string]string{
				"policies":   dnsPolicies,
				"condition":  `{"request_ip":{"in":["192.0.2.0/24"]}}`,
				"not_before": "2020-01-01T00:00:00Z",
			},
			wantBody: map[string]string{
				"condition":  `{"request_ip":{"in":["192.0.2.0/24"]}}`,
				"not_before": `"2020-01-01T00:00:00Z"`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var opts []cloudflaretest.Option
			if tc.account {
				opts = append(opts, cloudflaretest.WithAccountRoot())
			}
			srv := cloudflaretest.NewServer(opts...)
			defer srv.Close()
			p := newProvider(t, srv, rootFields(srv))
			base := tokensPath(srv)

			key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Parameters: tc.params, ExpiresAt: tc.expiresAt})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if key.ID == "" || key.Secret == "" || key.Name != "vault-app-1" {
				t.Fatalf("unexpected key %+v", key)
			}
			if tc.expiresAt.IsZero() != key.ExpiresAt.IsZero() || (!tc.expiresAt.IsZero() && !key.ExpiresAt.Equal(expires)) {
				t.Errorf("ExpiresAt = %v, want %v", key.ExpiresAt, expires)
			}
			create := lastRequest(t, srv, http.MethodPost, base)
			if create.Auth != "root" {
				t.Errorf("create authenticated as %q", create.Auth)
			}
			if create.Body["name"] != "vault-app-1" {
				t.Errorf("name = %v", create.Body["name"])
			}
			for field, want := range tc.wantBody {
				if got := create.Body[field]; !reflect.DeepEqual(got, jsonValue(t, want)) {
					t.Errorf("%s = %v, want %s", field, got, want)
				}
			}
			if _, sent := create.Body["expires_on"]; sent && tc.expiresAt.IsZero() {
				t.Error("expires_on sent without an expiry")
			}

			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			if got := lastRequest(t, srv, http.MethodGet, base+"/verify").Auth; got != "token:"+key.ID {
				t.Errorf("verify authenticated as %q", got)
			}

			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			if got := lastRequest(t, srv, http.MethodDelete, base+"/"+key.ID).Auth; got != "root" {
				t.Errorf("delete authenticated as %q", got)
			}
			clienttest.AssertRevoked(t, p, key, srv.IsLive)
		})
	}
}

func TestExpiredTokenFailsVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &clock{now: time.Now()}
	srv := cloudflaretest.NewServer(cloudflaretest.WithClock(clk.Now))
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "short", Parameters: map[string]string{"policies": dnsPolicies}, ExpiresAt: clk.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey before expiry: %v", err)
	}
	clk.Set(clk.Now().Add(2 * time.Hour))
	if err := p.VerifyKey(ctx, key); err == nil {
		t.Fatal("VerifyKey accepted an expired token")
	}
}

func TestFindKeysPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := cloudflaretest.NewServer(cloudflaretest.WithTokenLimit("user", 200))
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	var want []string
	for i := 0; i < 70; i++ {
		name := fmt.Sprintf("filler-%d", i)
		if i%30 == 0 {
			name = "vault-wal-1"
		}
		k, err := p.CreateKey(ctx, clients.KeyRequest{Name: name, Parameters: map[string]string{"policies": dnsPolicies}})
		if err != nil {
			t.Fatal(err)
		}
		if name == "vault-wal-1" {
			want = append(want, k.ID)
		}
	}
	found, err := p.FindKeys(ctx, "vault-wal-1")
	if err != nil {
		t.Fatalf("FindKeys: %v", err)
	}
	if len(found) != len(want) {
		t.Fatalf("FindKeys found %d tokens, want %d", len(found), len(want))
	}
	got := map[string]bool{}
	for _, k := range found {
		got[k.ID] = true
	}
	for _, id := range want {
		if !got[id] {
			t.Errorf("token %s not found", id)
		}
	}
}

func TestRootRotation(t *testing.T) {
	t.Parallel()
	for _, account := range []bool{false, true} {
		t.Run(fmt.Sprintf("account=%v", account), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			opts := []cloudflaretest.Option{cloudflaretest.WithRootCondition(`{"request_ip":{"in":["198.51.100.0/24"]}}`)}
			if account {
				opts = append(opts, cloudflaretest.WithAccountRoot())
			}
			srv := cloudflaretest.NewServer(opts...)
			defer srv.Close()
			base := tokensPath(srv)
			oldFields := rootFields(srv)
			oldToken := oldFields["api_token"]
			old := newProvider(t, srv, oldFields)

			oldID, err := old.RootID(ctx)
			if err != nil || oldID != srv.RootTokenID() {
				t.Fatalf("RootID = %q, %v; want %q", oldID, err, srv.RootTokenID())
			}
			root, err := old.CreateRoot(ctx, "vault-root-2")
			if err != nil {
				t.Fatalf("CreateRoot: %v", err)
			}
			newToken := root.Fields["api_token"]
			if root.ID == "" || root.ID == oldID || newToken == "" {
				t.Fatalf("unexpected root %q", root.ID)
			}
			create := lastRequest(t, srv, http.MethodPost, base)
			policies, _ := create.Body["policies"].([]any)
			if len(policies) != 1 {
				t.Fatalf("new root policies = %v", create.Body["policies"])
			}
			p0, _ := policies[0].(map[string]any)
			groups, _ := p0["permission_groups"].([]any)
			var ids []string
			for _, g := range groups {
				gm, _ := g.(map[string]any)
				ids = append(ids, fmt.Sprint(gm["id"]))
				if _, hasName := gm["name"]; hasName {
					t.Errorf("permission group sent with its read-only name: %v", gm)
				}
			}
			if want := []string{cloudflaretest.PermTokensWrite, cloudflaretest.PermDNSEdit}; !reflect.DeepEqual(ids, want) {
				t.Errorf("permission groups = %v, want the root's %v", ids, want)
			}
			if _, hasID := p0["id"]; hasID {
				t.Error("policy sent with its read-only id")
			}
			if !reflect.DeepEqual(create.Body["condition"], jsonValue(t, `{"request_ip":{"in":["198.51.100.0/24"]}}`)) {
				t.Errorf("condition = %v, want the root's", create.Body["condition"])
			}
			if err := old.VerifyRoot(ctx, root); err != nil {
				t.Fatalf("VerifyRoot: %v", err)
			}
			if got := lastRequest(t, srv, http.MethodGet, base+"/verify").Auth; got != "token:"+root.ID {
				t.Errorf("VerifyRoot authenticated as %q", got)
			}
			if !srv.IsLive(oldToken) {
				t.Fatal("old root died before the new one was persisted")
			}

			fields := map[string]string{"api_token": newToken}
			if account {
				fields["account_id"] = srv.AccountID()
			}
			fresh := newProvider(t, srv, fields)
			if err := fresh.RevokeRoot(ctx, root.ID); err == nil {
				t.Fatal("RevokeRoot accepted the id of the token in use")
			}
			if err := fresh.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("RevokeRoot: %v", err)
			}
			if srv.IsLive(oldToken) {
				t.Fatal("old root still live")
			}
			if err := fresh.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"api_token": oldToken}}); err == nil {
				t.Fatal("old root still accepted")
			}
			if err := fresh.RevokeRoot(ctx, oldID); err != nil {
				t.Fatalf("repeated RevokeRoot: %v", err)
			}
			for _, r := range srv.Requests() {
				if r.Method == http.MethodPut {
					t.Errorf("the roll endpoint was used: %s", r.Path)
				}
			}
			if _, err := fresh.CreateKey(ctx, clients.KeyRequest{Name: "after", Parameters: map[string]string{"policies": dnsPolicies}}); err != nil {
				t.Fatalf("new root cannot issue tokens: %v", err)
			}
		})
	}
}

func TestAbandonedRootRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := cloudflaretest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	root, err := p.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatal(err)
	}
	if err := newProvider(t, srv, rootFields(srv)).RevokeRoot(ctx, root.ID); err != nil {
		t.Fatalf("RevokeRoot(new) with the old root: %v", err)
	}
	if srv.IsLive(root.Fields["api_token"]) || !srv.IsLive(srv.RootToken()) {
		t.Fatal("wrong token deleted")
	}
	if err := p.RevokeRoot(ctx, ""); err == nil {
		t.Fatal("RevokeRoot with an unknown id must fail")
	}
}

func TestTokenLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := cloudflaretest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	for i := 0; i < cloudflaretest.UserTokenLimit-1; i++ { // the root is token 1 of 50
		if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: map[string]string{"policies": dnsPolicies}}); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "one-too-many", Parameters: map[string]string{"policies": dnsPolicies}})
	var he *httpx.Error
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("51st token: %v, want a 400 naming the limit", err)
	}
}

func TestRetriesRateLimit(t *testing.T) {
	t.Parallel()
	srv := cloudflaretest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	srv.FailNext(2, http.StatusTooManyRequests)
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "after-429", Parameters: map[string]string{"policies": dnsPolicies}}); err != nil {
		t.Fatalf("CreateKey after 429s: %v", err)
	}
	posts := clienttest.Count(srv.Requests(), func(r cloudflaretest.Recorded) bool { return r.Method == http.MethodPost })
	if posts != 3 {
		t.Fatalf("%d attempts, want 3", posts)
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := cloudflaretest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Parameters: map[string]string{"policies": dnsPolicies}})
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.CreateRoot(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{srv.RootToken(), key.Secret, root.Fields["api_token"]}
	srv.FailNext(1000, http.StatusServiceUnavailable)
	calls := map[string]func() error{
		"create": func() error {
			_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "x", Parameters: map[string]string{"policies": dnsPolicies}})
			return err
		},
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "x"); return err },
		"verify_root": func() error { return p.VerifyRoot(ctx, root) },
		"revoke_root": func() error { return p.RevokeRoot(ctx, root.ID) },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, secrets...)
}

func TestKeyOptionsRejected(t *testing.T) {
	t.Parallel()
	srv := cloudflaretest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"no policies", nil, nil, "parameters", "policies is required"},
		{"policies not JSON", nil, map[string]string{"policies": "dns:edit"}, "parameters", "JSON array"},
		{"policies empty", nil, map[string]string{"policies": "[]"}, "parameters", "at least one"},
		{"policies an object", nil, map[string]string{"policies": `{"effect":"allow"}`}, "parameters", "JSON array"},
		{"bad effect", nil, map[string]string{"policies": `[{"effect":"permit","permission_groups":[{"id":"x"}],"resources":{"a":"*"}}]`}, "parameters", "effect"},
		{"no permission groups", nil, map[string]string{"policies": `[{"effect":"allow","permission_groups":[],"resources":{"a":"*"}}]`}, "parameters", "permission_groups"},
		{"no resources", nil, map[string]string{"policies": `[{"effect":"allow","permission_groups":[{"id":"x"}]}]`}, "parameters", "resources"},
		{"unknown parameter", nil, map[string]string{"policies": dnsPolicies, "ttl": "1h"}, "parameters", "ttl"},
		{"condition not an object", nil, map[string]string{"policies": dnsPolicies, "condition": "[1]"}, "parameters", "condition"},
		{"bad not_before", nil, map[string]string{"policies": dnsPolicies, "not_before": "tomorrow"}, "parameters", "not_before"},
		{"scopes", []string{"dns:edit"}, map[string]string{"policies": dnsPolicies}, "scopes", "policies"},
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	typ, _ := clients.Lookup(cloudflare.TypeName)
	clienttest.AssertValidate(t, cloudflare.TypeName, nil, []clienttest.FieldsCase{
		{"user token", map[string]string{"api_token": "abc"}, ""},
		{"account token", map[string]string{"api_token": "abc", "account_id": "023e105f4ecef8ad9ca31a8372d0c353"}, ""},
		{"missing token", map[string]string{"api_token": ""}, "api_token"},
		{"token with newline", map[string]string{"api_token": "abc\n"}, "api_token"},
		{"bad account id", map[string]string{"api_token": "abc", "account_id": "my-account"}, "account_id"},
	})
	if !typ.Capabilities.Expiry || !typ.Capabilities.ListByName || !typ.Capabilities.RootRotation || typ.Capabilities.NativeRoll {
		t.Errorf("capabilities = %+v", typ.Capabilities)
	}
}

// The root token's expires_on is what InspectRoot reports; a rotated root
// (created without one) reports none.
func TestInspectRootExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	srv := cloudflaretest.NewServer(cloudflaretest.WithRootExpiry(at))
	defer srv.Close()
	p := newProvider(t, srv, rootFields(srv))
	ri, ok := p.(clients.RootInspector)
	if !ok {
		t.Fatal("cloudflare does not implement RootInspector")
	}
	root, err := ri.InspectRoot(ctx)
	if err != nil || root.ID != srv.RootTokenID() || !root.ExpiresAt.Equal(at) {
		t.Fatalf("InspectRoot = %+v, %v; want id %s expiring %s", root, err, srv.RootTokenID(), at)
	}
	created, err := p.CreateRoot(ctx, "vault-root-2")
	if err != nil || !created.ExpiresAt.IsZero() {
		t.Fatalf("CreateRoot = expiry %s, %v; want none", created.ExpiresAt, err)
	}
}
