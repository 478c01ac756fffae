//go:build e2e

package e2e

// Wave 3 provider types (openrouter, okta, databricks, auth0) for
// TestProviderTypes, and the Okta acceptance (TestOkta…).

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openrouter/openroutertest"
)

// ptRootUnsupported checks a type that cannot rotate its root: rotate-root
// is a 400 saying so, nothing is sent to the provider, and status shows
// root rotation as unsupported.
func ptRootUnsupported(t *testing.T, c *api.Client, tp *ptType, mount, prov string) {
	t.Helper()
	mark := len(tp.reqs())
	_, err := c.Logical().Write(mount+"/rotate-root/"+prov, map[string]any{})
	re, ok := err.(*api.ResponseError)
	if !ok || re.StatusCode != http.StatusBadRequest || !strings.Contains(strings.Join(re.Errors, " "), "cannot rotate its root") {
		t.Fatalf("rotate-root of a type that cannot rotate its root: want a 400 saying so, got %v", err)
	}
	if seen := tp.reqs()[mark:]; len(seen) != 0 {
		t.Errorf("rotate-root sent requests:\n%s", ptDump(seen))
	}
	st := read(t, c, mount+"/status").Data
	if got := ptS(ptGet(st, "providers", prov, "root_rotation")); got != "unsupported" {
		t.Errorf("status root_rotation = %q, want unsupported", got)
	}
	if got := ptS(ptGet(st, "providers", prov, "next_root_rotation")); got != "" {
		t.Errorf("status next_root_rotation = %q, want none", got)
	}
}

func ptQuery(q map[string]string) url.Values {
	out := url.Values{}
	for k, v := range q {
		out.Set(k, v)
	}
	return out
}

// ---- openrouter ----

func ptOpenRouter(t *testing.T) *ptType {
	f := openroutertest.NewServer()
	t.Cleanup(f.Close)
	tp := &ptType{
		name: "openrouter", url: f.URL, baseSuffix: "/api/v1",
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r openroutertest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Query: ptQuery(r.Query), Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:      f.IsLive,
		failNext:    f.FailNext,
		liveIssued:  func() []string { return ptMap(f.LiveKeys(), func(k openroutertest.Key) string { return k.Hash }) },
		provider:    map[string]any{"type": "openrouter", "management_key": f.ManagementKey()},
		rootID:      "",
		rootSecrets: []string{f.ManagementKey()},
		rootLabel:   func(string) string { return "root" },
		// A spending cap per lease; the key expires at OpenRouter with the
		// lease's max TTL.
		dynRole:  map[string]any{"parameters": map[string]any{"limit": "2.5", "limit_reset": "daily"}},
		dualRole: map[string]any{"parameters": map[string]any{"limit": "100", "expires_at": "2160h"}},
		isCreate: func(r ptReq) bool { return r.at(http.MethodPost, "/api/v1/keys") },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptCreateAuthName(t, r, s, auth, "Authorization: Bearer <management key>")
			ptEq(t, "create limit", ptS(r.Body["limit"]), "2.5")
			ptEq(t, "create limit_reset", ptS(r.Body["limit_reset"]), "daily")
			exp, err := time.Parse(time.RFC3339, ptS(r.Body["expires_at"]))
			if err != nil || !strings.HasSuffix(ptS(r.Body["expires_at"]), "Z") {
				t.Fatalf("create expires_at %v: %v", r.Body["expires_at"], err)
			}
			// max_ttl is 10m: the key dies at OpenRouter with the lease.
			if d := time.Until(exp); d < 9*time.Minute || d > 11*time.Minute {
				t.Errorf("create expires_at %s is not the lease's max TTL (10m) away", exp)
			}
			ptEq(t, "creds expires_at", ptS(s.Data["expires_at"]), exp.Format(time.RFC3339))
			ptEq(t, "creds key_hash", ptS(s.Data["key_hash"]), ptS(s.Data["key_id"]))
			ptEq(t, "creds limit", ptS(s.Data["limit"]), "2.5")
		},
		checkDualCreate: func(t *testing.T, r ptReq, auth string) {
			ptEq(t, "dual create limit", ptS(r.Body["limit"]), "100")
			exp, err := time.Parse(time.RFC3339, ptS(r.Body["expires_at"]))
			if err != nil || time.Until(exp) < 2159*time.Hour {
				t.Errorf("dual create expires_at %v (want 2160h from now): %v", r.Body["expires_at"], err)
			}
		},
		isDelete:        func(r ptReq, id string) bool { return r.at(http.MethodDelete, "/api/v1/keys/"+id) },
		isVerify:        func(r ptReq, id string) bool { return r.is(http.MethodGet, "/api/v1/key", "key:"+id) },
		verifyPath:      "/api/v1/key",
		rootUnsupported: true,
	}
	return tp
}
