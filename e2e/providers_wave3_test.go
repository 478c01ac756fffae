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

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/auth0/auth0test"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/databricks/databrickstest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/okta/oktatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openrouter/openroutertest"
)

func init() {
	ptTypes["openrouter"] = ptOpenRouter
	ptTypes["databricks"] = ptDatabricks
	// Driven by suites of their own: okta issues in dual mode only (no
	// dynamic step), auth0 verifies with a POST and creates in two calls
	// (application, then grant).
	ptOwnSuites["okta"] = true  // TestOktaDualRotations
	ptOwnSuites["auth0"] = true // TestAuth0Clients
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
			// The earlier of the parameter (2160h) and what Vault asks for
			// a dual key (its latest retire time plus a margin: about a day
			// for a 1h period).
			exp, err := time.Parse(time.RFC3339, ptS(r.Body["expires_at"]))
			if err != nil || time.Until(exp) < time.Hour || time.Until(exp) > 2160*time.Hour {
				t.Errorf("dual create expires_at %v (want between the role's retire time and 2160h): %v", r.Body["expires_at"], err)
			}
		},
		isDelete:       func(r ptReq, id string) bool { return r.at(http.MethodDelete, "/api/v1/keys/"+id) },
		isVerify:       func(r ptReq, id string) bool { return r.is(http.MethodGet, "/api/v1/key", "key:"+id) },
		verifyPath:     "/api/v1/key",
		noRootRotation: true,
	}
	return tp
}

// ---- okta ----

// TestOktaDualRotations: an Okta app's client secrets as a dual role
// through a real Vault. Scheduled rotations (three of them) never put more
// than two secrets on the app, and every lease's secret authenticates
// until its lease ends; a rotate-role during the overlap is a 400 unless
// revoke_previous=true; a dynamic role is refused; the service app's key
// rotates through its JWKS; an SSWS root cannot rotate.
func TestOktaDualRotations(t *testing.T) {
	t.Parallel()
	c := sharedVlt.client
	f := oktatest.NewServer()
	t.Cleanup(f.Close)
	mount := uniq("okta")
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Sys().Unmount(mount) })
	pemKey, kid := f.ServiceKey()
	issued.add(pemKey)
	issued.add(f.APIToken())
	write(t, c, mount+"/providers/okta", map[string]any{"type": "okta", "base_url": f.URL, "app_id": oktatest.AppID,
		"client_id": oktatest.ServiceClientID, "private_key": pemKey, "private_key_id": kid, "verify_scope": "vault.verify"})
	p := read(t, c, mount+"/providers/okta").Data
	ptNoSecretIn(t, "provider read", p, pemKey)
	if got := ptS(p["root_key_id"]); got != kid {
		t.Fatalf("root_key_id = %q, want the service app's kid %q", got, kid)
	}

	// Two secret slots cannot serve a lease each.
	_, err := c.Logical().Write(mount+"/roles/dyn", map[string]any{"provider": "okta", "mode": "dynamic"})
	if re, ok := err.(*api.ResponseError); !ok || re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, " "), "mode") {
		t.Fatalf("dynamic okta role: want a 400 naming mode, got %v", err)
	}

	// Three scheduled rotations, creds read all along.
	write(t, c, mount+"/roles/app", map[string]any{"provider": "okta", "mode": "dual", "rotation_period": "5s", "overlap": "2s", "ttl": "3s"})
	type lease struct {
		id, secret string
		end        time.Time
	}
	var leases []lease
	keys := map[string]bool{}
	deadline := time.Now().Add(60 * time.Second)
	for len(keys) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d keys after 60s of 5s rotations", len(keys))
		}
		start := time.Now()
		s := readCreds(t, c, mount, "app")
		l := lease{ptS(s.Data["key_id"]), ptS(s.Data["api_key"]), start.Add(time.Duration(s.LeaseDuration) * time.Second)}
		if ptS(s.Data["client_id"]) != oktatest.AppID {
			t.Fatalf("creds client_id = %v", s.Data["client_id"])
		}
		leases = append(leases, l)
		keys[l.id] = true
		if n := len(f.Secrets()); n > 2 {
			t.Fatalf("the app holds %d client secrets", n)
		}
		now := time.Now()
		for _, x := range leases {
			if now.Before(x.end) && !f.IsLive(x.secret) {
				t.Fatalf("the secret %s of a lease ending %s no longer authenticates (now %s)", x.id, x.end.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if m := f.MaxSecrets(); m > 2 {
		t.Fatalf("the app held %d client secrets at once", m)
	}
	t.Logf("%d leases over %d keys; at most %d secrets on the app", len(leases), len(keys), f.MaxSecrets())

	// Manual rotations: stop the schedule, wait for the previous key to
	// retire, then rotate by hand.
	write(t, c, mount+"/roles/app", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	for end := time.Now().Add(20 * time.Second); ptS(read(t, c, mount+"/roles/app").Data["previous_key_id"]) != ""; {
		if time.Now().After(end) {
			t.Fatal("the previous key never retired")
		}
		time.Sleep(200 * time.Millisecond)
	}
	rot := write(t, c, mount+"/rotate-role/app", map[string]any{})
	if len(f.Secrets()) != 2 {
		t.Fatalf("%d secrets after a rotation, want 2", len(f.Secrets()))
	}
	before := len(f.Requests())
	_, err = c.Logical().Write(mount+"/rotate-role/app", map[string]any{})
	if re, ok := err.(*api.ResponseError); !ok || re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, " "), "revoke_previous=true") {
		t.Fatalf("rotate-role during the overlap: want a 400 naming revoke_previous, got %v", err)
	}
	if seen := f.Requests()[before:]; len(seen) != 0 {
		t.Fatalf("the refused rotation sent %d requests", len(seen))
	}
	old := ptS(rot.Data["previous_key_id"])
	rot = write(t, c, mount+"/rotate-role/app", map[string]any{"revoke_previous": true})
	if secrets := f.Secrets(); len(secrets) != 1 || secrets[0].ID != ptS(rot.Data["key_id"]) || f.MaxSecrets() > 2 {
		t.Fatalf("after revoke_previous: %d secrets (max %d), want only %s", len(secrets), f.MaxSecrets(), rot.Data["key_id"])
	}
	for _, x := range leases {
		if x.id == old && f.IsLive(x.secret) {
			t.Fatal("revoke_previous left the previous secret working")
		}
	}

	// rotate-root: add a key to the service app's JWKS, sign with it,
	// deactivate and delete the old one.
	rr := write(t, c, mount+"/rotate-root/okta", map[string]any{})
	newKid := ptS(rr.Data["root_key_id"])
	jwks := f.JWKS()
	if newKid == "" || newKid == kid || len(jwks) != 1 || jwks[0].Kid != newKid || f.IsLive(pemKey) {
		t.Fatalf("after rotate-root: kid %q, JWKS %v, old key live %v", newKid, jwks, f.IsLive(pemKey))
	}
	mark := len(f.Requests())
	rot = write(t, c, mount+"/rotate-role/app", map[string]any{"revoke_previous": true})
	auth := map[string]bool{}
	for _, r := range f.Requests()[mark:] {
		if strings.HasPrefix(r.Path, "/api/v1/") {
			auth[r.Auth] = true
		}
	}
	if len(auth) != 1 || !auth["jwk:"+newKid] {
		t.Fatalf("rotate-role after rotate-root authenticated as %v, want jwk:%s", auth, newKid)
	}
	if s := readCreds(t, c, mount, "app"); !f.IsLive(ptS(s.Data["api_key"])) || ptS(s.Data["key_id"]) != ptS(rot.Data["key_id"]) {
		t.Fatal("creds after rotate-root do not authenticate")
	}

	// An Okta 429 (X-Rate-Limit-Reset, no Retry-After) is waited out.
	f.FailNext(1, http.StatusTooManyRequests)
	start := time.Now()
	write(t, c, mount+"/rotate-role/app", map[string]any{"revoke_previous": true})
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("the retry after Okta's 429 came after %s, before its X-Rate-Limit-Reset", took)
	}

	// An SSWS root is not rotatable: 400, and status says so.
	write(t, c, mount+"/providers/ssws", map[string]any{"type": "okta", "base_url": f.URL, "app_id": oktatest.AppID, "api_token": f.APIToken()})
	_, err = c.Logical().Write(mount+"/rotate-root/ssws", map[string]any{})
	if re, ok := err.(*api.ResponseError); !ok || re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, " "), "cannot rotate its root") {
		t.Fatalf("rotate-root of an SSWS root: want a 400 saying it cannot rotate, got %v", err)
	}
	st := read(t, c, mount+"/status").Data
	if got := ptS(ptGet(st, "providers", "ssws", "root_rotation")); got != "unsupported" {
		t.Errorf("status root_rotation of the SSWS provider = %q", got)
	}
	if got := ptS(ptGet(st, "providers", "okta", "root_rotation")); got != "supported" {
		t.Errorf("status root_rotation of the service-app provider = %q", got)
	}

	// Okta keeps one active secret per app: deleting the role with
	// revoke_keys=true cannot revoke the last one, and says why instead of
	// dropping it silently.
	_, err = lcDeleteRevokingKeys(c, mount+"/roles/app")
	if err == nil || !strings.Contains(err.Error(), "only active secret") {
		t.Fatalf("delete of the role holding the app's only secret = %v", err)
	}
	if len(f.Secrets()) != 1 {
		t.Fatalf("%d secrets after the refused delete", len(f.Secrets()))
	}
}

// ---- databricks ----

// ptDatabricks: a PAT root issuing PATs (dynamic, with lifetime_seconds
// = the lease's max TTL; dual), rotated by minting its successor; extra
// drives a dual role of service-principal OAuth secrets.
func ptDatabricks(t *testing.T) *ptType {
	f := databrickstest.NewServer()
	t.Cleanup(f.Close)
	rootValue, seeded := f.RootPAT()
	isPATDelete := func(r ptReq) bool { return r.at(http.MethodPost, "/api/2.0/token/delete") }
	tp := &ptType{
		name: "databricks", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r databrickstest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Query: ptQuery(r.Query), Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptNotRoots(f.LivePATs(), func(k databrickstest.PAT) (string, string) { return k.Comment, "pat:" + k.ID })
		},
		provider:    map[string]any{"type": "databricks", "token": rootValue, "token_id": seeded},
		rootID:      seeded,
		rootSecrets: []string{rootValue},
		rootLabel: func(id string) string {
			if id == seeded {
				return "root"
			}
			return "pat:" + id
		},
		dynRole:  map[string]any{"scopes": []string{"sql"}},
		dualRole: map[string]any{"parameters": map[string]any{"lifetime_seconds": "7776000"}},
		isCreate: func(r ptReq) bool { return r.at(http.MethodPost, "/api/2.0/token/create") },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create auth (Bearer <root PAT>)", r.Auth, auth)
			ptEq(t, "create comment", ptS(r.Body["comment"]), ptS(s.Data["key_name"]))
			ptEqList(t, "create scopes", ptL(r.Body["scopes"]), []string{"sql"})
			// max_ttl is 10m: the token dies at Databricks with the lease.
			if n, _ := r.Body["lifetime_seconds"].(float64); n < 590 || n > 610 {
				t.Errorf("create lifetime_seconds = %v, want the lease's max TTL (600)", r.Body["lifetime_seconds"])
			}
			ptEq(t, "creds kind", ptS(s.Data["kind"]), "pat")
			ptEq(t, "creds key_id", ptS(s.Data["key_id"]), "pat:"+ptS(s.Data["token_id"]))
			if exp, err := time.Parse(time.RFC3339, ptS(s.Data["expires_at"])); err != nil || time.Until(exp) > 11*time.Minute {
				t.Errorf("creds expires_at %v: %v", s.Data["expires_at"], err)
			}
		},
		checkDualCreate: func(t *testing.T, r ptReq, auth string) {
			// The earlier of the parameter (90 days) and the expiry Vault
			// asks for a dual key (about a day for a 1h period).
			if n, _ := r.Body["lifetime_seconds"].(float64); n < 3600 || n > 7776000 {
				t.Errorf("dual create lifetime_seconds = %v", r.Body["lifetime_seconds"])
			}
		},
		isDelete: func(r ptReq, id string) bool {
			return isPATDelete(r) && "pat:"+ptS(r.Body["token_id"]) == id
		},
		anyDelete: func(r ptReq) bool { return isPATDelete(r) || r.Method == http.MethodDelete },
		isVerify: func(r ptReq, id string) bool {
			return r.at(http.MethodGet, "/api/2.0/preview/scim/v2/Me") && "pat:"+strings.TrimPrefix(r.Auth, "pat:") == id && r.Auth != "root"
		},
		verifyPath: "/api/2.0/preview/scim/v2/Me",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "databricks PAT root rotation", seen,
			ptM("POST token/create with the root", func(r ptReq) bool {
				return r.is("POST", "/api/2.0/token/create", "root") && ptVaultRoot(r.Body["comment"]) && r.Body["lifetime_seconds"] == float64(7776000)
			}),
			ptM("GET scim Me with the new PAT", func(r ptReq) bool { return r.is("GET", "/api/2.0/preview/scim/v2/Me", "pat:"+newID) }),
			ptM("POST token/delete of the old PAT with the new one", func(r ptReq) bool {
				return r.is("POST", "/api/2.0/token/delete", "pat:"+newID) && ptS(r.Body["token_id"]) == oldID
			}))
	}
	tp.newRoots = func(t *testing.T) []string {
		return ptLiveRoots(t, f.LivePATs(), 1, func(k databrickstest.PAT) (string, string) { return k.Comment, k.Value })
	}
	tp.afterRoot = func(t *testing.T, p map[string]any, newID string) {
		ptEq(t, "provider token_id after rotation", ptS(p["token_id"]), newID)
	}
	// A dual role of service-principal OAuth secrets: create + verify at
	// the OIDC token endpoint, rotate, revoke_previous; the quota of five.
	tp.extra = func(t *testing.T, c *api.Client, mount string) {
		role := mount + "/roles/sp"
		write(t, c, role, map[string]any{"provider": "databricks-prov", "mode": "dual", "rotation_period": "1h", "overlap": "10m",
			"parameters": map[string]any{"kind": "oauth_secret", "service_principal_id": databrickstest.AppSPID,
				"application_id": databrickstest.AppSPAppID, "lifetime_seconds": "86400"}})
		s := readCreds(t, c, mount, "sp")
		if ptS(s.Data["client_id"]) != databrickstest.AppSPAppID || !f.IsLive(ptS(s.Data["api_key"])) ||
			!strings.HasPrefix(ptS(s.Data["key_id"]), "sp:"+databrickstest.AppSPID+":") {
			t.Fatalf("oauth secret creds = %v", s.Data["key_id"])
		}
		write(t, c, mount+"/rotate-role/sp", map[string]any{})
		if n := len(f.Secrets(databrickstest.AppSPID)); n != 2 {
			t.Fatalf("%d secrets after a rotation, want 2", n)
		}
		// Secrets made by hand fill the quota: revoke_previous frees a
		// slot first and succeeds; then, at five, a rotation fails clearly
		// without asking for a sixth.
		for i := 0; i < 3; i++ {
			issued.add(f.AddSecret(databrickstest.AppSPID).Value)
		}
		write(t, c, mount+"/rotate-role/sp", map[string]any{"revoke_previous": true})
		if n := len(f.Secrets(databrickstest.AppSPID)); n != 4 {
			t.Fatalf("%d secrets after revoke_previous, want 4", n)
		}
		issued.add(f.AddSecret(databrickstest.AppSPID).Value)
		mark := len(f.Requests())
		_, err := c.Logical().Write(mount+"/rotate-role/sp", map[string]any{})
		if err == nil || !strings.Contains(err.Error(), "already has 5 OAuth secrets") {
			t.Fatalf("rotate-role at the quota = %v", err)
		}
		for _, r := range f.Requests()[mark:] {
			if r.Method == http.MethodPost {
				t.Fatalf("a sixth secret was asked for: %s %s", r.Method, r.Path)
			}
		}
		if _, err := lcDeleteRevokingKeys(c, role); err != nil {
			t.Fatalf("delete sp role: %v", err)
		}
		if n := len(f.Secrets(databrickstest.AppSPID)); n != 4 {
			t.Fatalf("%d secrets after the role's delete, want the 4 made by hand", n)
		}
	}
	return tp
}

// ---- auth0 ----

// TestAuth0Clients: Auth0 M2M applications through a real Vault. A dynamic
// lease is an application granted the role's scopes on the API, deleted
// on revoke; a dual role rotates to a new application; a 429 is waited
// out; rotate-root rolls Vault's own client secret (stored first) and
// waits out Auth0's propagation delay in verification; creds work with
// the new root.
func TestAuth0Clients(t *testing.T) {
	t.Parallel()
	c := sharedVlt.client
	f := auth0test.NewServer()
	t.Cleanup(f.Close)
	mount := uniq("auth0")
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Sys().Unmount(mount) })
	root := f.RootSecret()
	issued.add(root)
	write(t, c, mount+"/providers/a0", map[string]any{"type": "auth0", "base_url": f.URL, "client_id": auth0test.RootClientID, "client_secret": root})
	p := read(t, c, mount+"/providers/a0").Data
	ptNoSecretIn(t, "provider read", p, root)
	oldRootID := ptS(p["root_key_id"])
	if !strings.HasPrefix(oldRootID, "secret-") {
		t.Fatalf("root_key_id = %q", oldRootID)
	}
	params := map[string]any{"audience": auth0test.API}
	_, err := c.Logical().Write(mount+"/roles/bad", map[string]any{"provider": "a0", "mode": "dynamic"})
	if re, ok := err.(*api.ResponseError); !ok || re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, " "), "audience is required") {
		t.Fatalf("a role without audience: want a 400 naming it, got %v", err)
	}

	// Dynamic: one application per lease, deleted on revoke.
	write(t, c, mount+"/roles/dyn", map[string]any{"provider": "a0", "mode": "dynamic", "ttl": "5m", "scopes": []string{"read:orders"}, "parameters": params})
	mark := len(f.Requests())
	s := readCreds(t, c, mount, "dyn")
	id, secret := ptS(s.Data["key_id"]), ptS(s.Data["api_key"])
	if ptS(s.Data["client_id"]) != id || ptS(s.Data["audience"]) != auth0test.API || !f.IsLive(secret) {
		t.Fatalf("creds: client_id %v audience %v live %v", s.Data["client_id"], s.Data["audience"], f.IsLive(secret))
	}
	var paths []string
	for _, r := range f.Requests()[mark:] {
		paths = append(paths, r.Method+" "+r.Path+" "+r.Auth)
	}
	got := strings.Join(paths, "\n")
	for _, want := range []string{"POST /api/v2/clients root", "POST /api/v2/client-grants root"} {
		if !strings.Contains(got, want) {
			t.Fatalf("creds requests lack %q:\n%s", want, got)
		}
	}
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatal(err)
	}
	if f.IsLive(secret) || len(f.LiveClients()) != 0 {
		t.Fatalf("after revoke: secret live %v, %d applications", f.IsLive(secret), len(f.LiveClients()))
	}

	// A 429 is waited out (Retry-After: 1).
	f.FailNext(1, http.StatusTooManyRequests)
	start := time.Now()
	s = readCreds(t, c, mount, "dyn")
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("the retry after a 429 came after %s", took)
	}
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatal(err)
	}

	// Dual: a new application per rotation; revoke_previous deletes the old.
	write(t, c, mount+"/roles/dual", map[string]any{"provider": "a0", "mode": "dual", "rotation_period": "1h", "overlap": "10m", "parameters": params})
	k1 := readCreds(t, c, mount, "dual")
	mark = len(f.Requests())
	rot := write(t, c, mount+"/rotate-role/dual", map[string]any{})
	verified := false
	for _, r := range f.Requests()[mark:] {
		verified = verified || (r.Path == "/oauth/token" && r.Auth == "client:"+ptS(rot.Data["key_id"]) && r.Form["audience"] == auth0test.API && r.Status == 200)
	}
	if !verified {
		t.Fatal("rotate-role did not verify the new application with a token for its audience")
	}
	k2 := readCreds(t, c, mount, "dual")
	if ptS(k2.Data["key_id"]) != ptS(rot.Data["key_id"]) || !f.IsLive(ptS(k1.Data["api_key"])) || !f.IsLive(ptS(k2.Data["api_key"])) {
		t.Fatal("during the overlap both applications must work")
	}
	write(t, c, mount+"/rotate-role/dual", map[string]any{"revoke_previous": true})
	if f.IsLive(ptS(k1.Data["api_key"])) || f.IsLive(ptS(k2.Data["api_key"])) || len(f.LiveClients()) != 1 {
		t.Fatalf("revoke_previous left %d applications", len(f.LiveClients()))
	}

	// rotate-root: a roll, stored first, verified through the propagation.
	f.SetPropagation(1)
	rr := write(t, c, mount+"/rotate-root/a0", map[string]any{})
	for _, w := range rr.Warnings {
		t.Errorf("rotate-root warning: %s", w)
	}
	newRoot := f.RootSecret()
	issued.add(newRoot)
	ptNoSecretIn(t, "rotate-root response", rr.Data, root, newRoot)
	if id := ptS(rr.Data["root_key_id"]); id == oldRootID || id == "" || f.IsLive(root) {
		t.Fatalf("after rotate-root: root_key_id %q (old %q), old secret live %v", id, oldRootID, f.IsLive(root))
	}
	p = read(t, c, mount+"/providers/a0").Data
	if e := ptS(p["last_root_rotation_error"]); e != "" {
		t.Fatalf("last_root_rotation_error = %q", e)
	}
	mark = len(f.Requests())
	s = readCreds(t, c, mount, "dyn")
	if !f.IsLive(ptS(s.Data["api_key"])) {
		t.Fatal("creds after rotate-root do not work")
	}
	for _, r := range f.Requests()[mark:] {
		if strings.HasPrefix(r.Path, "/api/v2/") && r.Auth != "mgmt:"+auth0test.Fingerprint(newRoot) {
			t.Fatalf("a Management API call after rotate-root authenticated as %q", r.Auth)
		}
	}
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatal(err)
	}
	if _, err := lcDeleteRevokingKeys(c, mount+"/roles/dual"); err != nil {
		t.Fatal(err)
	}
	if n := len(f.LiveClients()); n != 0 {
		t.Fatalf("%d applications left", n)
	}
}

// TestProviderTypesWave3BadInput: the wave-3 types' bad input is a 400
// naming the field (a wrong root included: the provider write checks it),
// with no secret in it, and nothing is stored.
func TestProviderTypesWave3BadInput(t *testing.T) {
	c := sharedVlt.client
	of := openroutertest.NewServer()
	t.Cleanup(of.Close)
	kf := oktatest.NewServer()
	t.Cleanup(kf.Close)
	df := databrickstest.NewServer()
	t.Cleanup(df.Close)
	af := auth0test.NewServer()
	t.Cleanup(af.Close)
	pemKey, kid := kf.ServiceKey()
	dbPAT, _ := df.RootPAT()
	goodProviders := map[string]map[string]any{
		"openrouter": {"type": "openrouter", "base_url": of.URL + "/api/v1", "management_key": of.ManagementKey()},
		"okta":       {"type": "okta", "base_url": kf.URL, "app_id": oktatest.AppID, "api_token": kf.APIToken()},
		"databricks": {"type": "databricks", "base_url": df.URL, "token": dbPAT},
		"auth0":      {"type": "auth0", "base_url": af.URL, "client_id": auth0test.RootClientID, "client_secret": af.RootSecret()},
	}
	cases := []struct {
		name string
		path string // "" for a provider write, "role:<type>" for a role on a good provider
		data map[string]any
		want []string
	}{
		{"openrouter wrong management key", "", map[string]any{"type": "openrouter", "base_url": of.URL + "/api/v1",
			"management_key": "sk-or-v1-wrong0000"}, []string{"management_key", "401"}},
		{"openrouter automated root rotation", "", map[string]any{"type": "openrouter", "base_url": of.URL + "/api/v1",
			"management_key": of.ManagementKey(), "rotation_period": "720h"}, []string{"rotation_period"}},
		{"openrouter negative limit", "role:openrouter", map[string]any{"mode": "dynamic", "parameters": map[string]any{"limit": "-5"}},
			[]string{"parameters", "limit"}},
		{"openrouter past expires_at", "role:openrouter", map[string]any{"mode": "dual", "parameters": map[string]any{"expires_at": "2001-01-01T00:00:00Z"}},
			[]string{"parameters", "expires_at"}},
		{"okta both root forms", "", map[string]any{"type": "okta", "base_url": kf.URL, "app_id": oktatest.AppID, "api_token": kf.APIToken(),
			"client_id": oktatest.ServiceClientID, "private_key": pemKey, "private_key_id": kid}, []string{"api_token"}},
		{"okta private_key not PEM", "", map[string]any{"type": "okta", "base_url": kf.URL, "app_id": oktatest.AppID,
			"client_id": oktatest.ServiceClientID, "private_key": "not a key", "private_key_id": kid}, []string{"private_key"}},
		{"okta wrong app", "", map[string]any{"type": "okta", "base_url": kf.URL, "app_id": "0oamissing", "api_token": kf.APIToken()},
			[]string{"api_token", "404"}},
		{"okta dynamic role", "role:okta", map[string]any{"mode": "dynamic"}, []string{"mode", "use mode=dual"}},
		{"databricks PAT at the account", "", map[string]any{"type": "databricks", "base_url": df.URL, "token": dbPAT,
			"account_id": databrickstest.AccountID}, []string{"account_id"}},
		{"databricks wrong PAT", "", map[string]any{"type": "databricks", "base_url": df.URL, "token": "dapiwrong0000"},
			[]string{"token", "401"}},
		{"databricks oauth secret without a service principal", "role:databricks", map[string]any{"mode": "dual",
			"parameters": map[string]any{"kind": "oauth_secret"}}, []string{"parameters", "service_principal_id"}},
		{"auth0 wrong secret", "", map[string]any{"type": "auth0", "base_url": af.URL, "client_id": auth0test.RootClientID,
			"client_secret": "wrong0000"}, []string{"client_secret", "401"}},
		{"auth0 role without audience", "role:auth0", map[string]any{"mode": "dynamic"}, []string{"parameters", "audience"}},
	}
	provs := map[string]string{}
	provider := func(typ string) string {
		if p, ok := provs[typ]; ok {
			return p
		}
		p := uniq("good-" + typ)
		write(t, c, "thirdparty/providers/"+p, goodProviders[typ])
		t.Cleanup(func() { _, _ = c.Logical().Delete("thirdparty/providers/" + p) })
		provs[typ] = p
		return p
	}
	secrets := []string{of.ManagementKey(), kf.APIToken(), pemKey, dbPAT, af.RootSecret(), "sk-or-v1-wrong0000", "dapiwrong0000", "wrong0000"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := "thirdparty/providers/" + uniq("bad")
			data := tc.data
			if typ, ok := strings.CutPrefix(tc.path, "role:"); ok {
				path = "thirdparty/roles/" + uniq("bad")
				data = map[string]any{"provider": provider(typ)}
				for k, v := range tc.data {
					data[k] = v
				}
			}
			_, err := c.Logical().Write(path, data)
			msg := ptWant400(t, err, tc.want...)
			ptNoSecretIn(t, "error", map[string]any{"e": msg}, secrets...)
			if s, _ := c.Logical().Read(path); s != nil {
				t.Errorf("a rejected write stored %s", path)
			}
		})
	}
}
