//go:build e2e

package e2e

// Provider types of wave 2, part B (vercel, dockerhub, npm, elasticsearch,
// tailscale), driven by ptRun in providers_test.go.

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/dockerhub/dockerhubtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/elasticsearch/elasticsearchtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/npm/npmtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/tailscale/tailscaletest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/vercel/verceltest"
)

func init() {
	for name, mk := range map[string]func(*testing.T) *ptType{
		"vercel": ptVercel, "dockerhub": ptDockerhub, "npm": ptNpm, "elasticsearch": ptElasticsearch, "tailscale": ptTailscale,
	} {
		ptTypes[name] = mk
	}
}

// ptRootUnsupported: rotate-root on a provider whose type cannot rotate its
// root is a 400 that says so and reaches nothing; status shows root
// rotation unsupported; an automated root rotation cannot be set up.
func ptRootUnsupported(t *testing.T, c *api.Client, tp *ptType, mount, prov string) {
	t.Helper()
	mark := len(tp.reqs())
	_, err := c.Logical().Write(mount+"/rotate-root/"+prov, map[string]any{})
	re, ok := err.(*api.ResponseError)
	if !ok || re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, "; "), "cannot rotate its root") {
		t.Fatalf("rotate-root on a type that cannot rotate its root: want a 400 saying so, got %v", err)
	}
	if seen := tp.reqs()[mark:]; len(seen) != 0 {
		t.Errorf("the refused rotate-root reached the provider:\n%s", ptDump(seen))
	}
	st := read(t, c, mount+"/status").Data
	if got := ptS(ptGet(st, "providers", prov, "root_rotation")); got != "unsupported" {
		t.Errorf("status providers.%s.root_rotation = %q, want unsupported", prov, got)
	}
	if got := ptS(ptGet(st, "providers", prov, "next_root_rotation")); got != "" {
		t.Errorf("status providers.%s.next_root_rotation = %q, want none", prov, got)
	}
	_, err = c.Logical().Write(mount+"/providers/"+prov, map[string]any{"rotation_period": "720h"})
	if re, ok := err.(*api.ResponseError); !ok || re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, "; "), "rotation_period") {
		t.Errorf("rotation_period on a type that cannot rotate its root: want a 400 naming it, got %v", err)
	}
}

// ---- vercel ----

func ptVercel(t *testing.T) *ptType {
	f := verceltest.NewServer()
	t.Cleanup(f.Close)
	seeded := f.RootTokenID()
	const tokens = "/v3/user/tokens"
	tp := &ptType{
		name: "vercel", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r verceltest.Recorded) ptReq {
				q := url.Values{}
				if r.TeamID != "" {
					q.Set("teamId", r.TeamID)
				}
				return ptReq{Method: r.Method, Path: r.Path, Query: q, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptNotRoots(f.LiveTokens(), func(k verceltest.Token) (string, string) {
				if k.ID == seeded {
					return "vault-root", k.ID
				}
				return k.Name, k.ID
			})
		},
		provider:    map[string]any{"type": "vercel", "api_token": f.RootToken(), "team_id": verceltest.TeamID},
		rootID:      seeded,
		rootSecrets: []string{f.RootToken()},
		rootLabel:   ptRootLabel(seeded, "token:"),
		dynRole:     map[string]any{},
		dualRole:    map[string]any{},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, tokens) && !ptVaultRoot(r.Body["name"]) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptCreateAuthName(t, r, s, auth, "Authorization: Bearer <token>")
			ptEq(t, "create teamId", r.Query.Get("teamId"), verceltest.TeamID)
			ms, err := strconv.ParseInt(ptS(r.Body["expiresAt"]), 10, 64)
			if left := time.Until(time.UnixMilli(ms)); err != nil || left < 590*time.Second || left > 601*time.Second {
				t.Errorf("create expiresAt %v (epoch ms), want the lease's max TTL (600s) from now", r.Body["expiresAt"])
			}
			ptEq(t, "creds team_id", ptS(s.Data["team_id"]), verceltest.TeamID)
			if ptS(s.Data["expires_at"]) == "" {
				t.Errorf("creds lack expires_at")
			}
		},
		checkDualCreate: ptDualExpiry("expiresAt", 0, func(v any) (time.Time, bool) { ms, ok := ptNumber(v); return time.UnixMilli(ms), ok }),
		isDelete: func(r ptReq, id string) bool {
			return r.at(http.MethodDelete, tokens+"/"+id) && r.Query.Get("teamId") == verceltest.TeamID
		},
		isVerify:   func(r ptReq, id string) bool { return r.is(http.MethodGet, "/v2/user", "token:"+id) },
		verifyPath: "/v2/user",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "vercel token rotation", seen,
			ptM("POST a non-expiring token", func(r ptReq) bool {
				_, exp := r.Body["expiresAt"]
				return r.is("POST", tokens, "root") && !exp && ptVaultRoot(r.Body["name"])
			}),
			ptM("GET /v5/user/tokens/current with the new token", func(r ptReq) bool {
				return r.is("GET", "/v5/user/tokens/current", "token:"+newID)
			}),
			ptM("DELETE the old token with the new one", func(r ptReq) bool {
				return r.is("DELETE", tokens+"/"+oldID, "token:"+newID)
			}))
	}
	tp.newRoots = func(t *testing.T) []string {
		return ptLiveRoots(t, f.LiveTokens(), 1, func(k verceltest.Token) (string, string) { return k.Name, k.Secret })
	}
	return tp
}

// ---- dockerhub ----

func ptDockerhub(t *testing.T) *ptType {
	f := dockerhubtest.NewServer()
	t.Cleanup(f.Close)
	const tokens = "/v2/access-tokens"
	return &ptType{
		name: "dockerhub", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r dockerhubtest.Recorded) ptReq {
				q, _ := url.ParseQuery(r.Query)
				return ptReq{Method: r.Method, Path: r.Path, Query: q, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:      f.IsLive,
		failNext:    f.FailNext,
		liveIssued:  func() []string { return ptMap(f.LiveTokens(), func(k dockerhubtest.Token) string { return k.UUID }) },
		provider:    map[string]any{"type": "dockerhub", "username": dockerhubtest.Username, "password": f.Password()},
		rootID:      "", // a password has no id
		rootSecrets: []string{f.Password()},
		rootLabel:   func(string) string { return "jwt:password" },
		dynRole:     map[string]any{"scopes": []string{"repo:read"}},
		dualRole:    map[string]any{"scopes": []string{"repo:write", "repo:read"}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, tokens) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create auth (Bearer <JWT from the password>)", r.Auth, auth)
			ptEq(t, "create token_label", ptS(r.Body["token_label"]), ptS(s.Data["key_name"]))
			ptEqList(t, "create scopes", ptL(r.Body["scopes"]), []string{"repo:read"})
			exp, err := time.Parse(time.RFC3339, ptS(r.Body["expires_at"]))
			if left := time.Until(exp); err != nil || left < 585*time.Second || left > 601*time.Second {
				t.Errorf("create expires_at %v, want the lease's max TTL (600s) from now", r.Body["expires_at"])
			}
			ptEq(t, "creds username", ptS(s.Data["username"]), dockerhubtest.Username)
		},
		checkDualCreate: ptDualExpiresOn("expires_at"),
		isDelete:        func(r ptReq, id string) bool { return r.at(http.MethodDelete, tokens+"/"+id) },
		// The new token is verified by exchanging it for a JWT.
		isVerify: func(r ptReq, id string) bool { return r.is(http.MethodPost, "/v2/auth/token", "pat:"+id) },
		verifyReq: func(r *http.Request) bool {
			if r.Method != http.MethodPost || r.URL.Path != "/v2/auth/token" {
				return false
			}
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			return bytes.Contains(b, []byte("dckr_pat_"))
		},
		noRootRotation: true,
	}
}

// ---- npm ----

func ptNpm(t *testing.T) *ptType {
	f := npmtest.NewServer(npmtest.WithTwoFactor())
	t.Cleanup(f.Close)
	const tokens = "/-/npm/v1/tokens"
	return &ptType{
		name: "npm", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r npmtest.Recorded) ptReq {
				q := url.Values{}
				if r.OTP != "" {
					q.Set("npm-otp", r.OTP) // shown in dumps; the fake checked it
				}
				return ptReq{Method: r.Method, Path: r.Path, Query: q, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:      f.IsLive,
		failNext:    f.FailNext,
		liveIssued:  func() []string { return ptMap(f.LiveTokens(), func(k npmtest.Token) string { return k.Key }) },
		provider:    map[string]any{"type": "npm", "token": f.SessionToken(), "password": f.Password(), "otp_secret": f.OTPSecret()},
		rootID:      "",
		rootSecrets: []string{f.SessionToken(), f.Password(), f.OTPSecret()},
		rootLabel:   func(string) string { return "root" },
		dynRole:     map[string]any{"scopes": []string{"@acme"}, "parameters": map[string]any{"packages": "left-pad"}},
		dualRole:    map[string]any{"parameters": map[string]any{"packages": "@acme/ui", "packages_and_scopes_permission": "read-write"}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, tokens) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptCreateAuthName(t, r, s, auth, "Authorization: Bearer <token>, npm-otp")
			if r.Query.Get("npm-otp") == "" || r.Body["password"] == nil {
				t.Errorf("create without npm-otp or password")
			}
			ptEq(t, "create expires (days)", ptS(r.Body["expires"]), "1")
			ptEqList(t, "create scopes", ptL(r.Body["scopes"]), []string{"@acme"})
			ptEqList(t, "create packages", ptL(r.Body["packages"]), []string{"left-pad"})
			ptEq(t, "create packages_and_scopes_permission", ptS(r.Body["packages_and_scopes_permission"]), "read-only")
			if ptS(s.Data["expires_at"]) == "" {
				t.Errorf("creds lack expires_at")
			}
		},
		checkDualCreate: ptDualExpiry("expires", 24*time.Hour, ptFromNow(24*time.Hour)),
		isDelete: func(r ptReq, id string) bool {
			return r.at(http.MethodDelete, tokens+"/token/"+id) && r.Query.Get("npm-otp") != ""
		},
		isVerify:       func(r ptReq, id string) bool { return r.is(http.MethodGet, "/-/whoami", "token:"+id) },
		verifyPath:     "/-/whoami",
		noRootRotation: true,
	}
}

// ---- elasticsearch ----

const ptESRoles = `{"logs-reader":{"indices":[{"names":["logs-*"],"privileges":["read"]}]}}`

func ptElasticsearch(t *testing.T) *ptType {
	f := elasticsearchtest.NewServer()
	t.Cleanup(f.Close)
	const keys = "/_security/api_key"
	user := "user:" + elasticsearchtest.Username
	return &ptType{
		name: "elasticsearch", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r elasticsearchtest.Recorded) ptReq {
				q, _ := url.ParseQuery(r.Query)
				return ptReq{Method: r.Method, Path: r.Path, Query: q, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:      f.IsLive,
		failNext:    f.FailNext,
		liveIssued:  func() []string { return ptMap(f.LiveKeys(), func(k elasticsearchtest.APIKey) string { return k.ID }) },
		provider:    map[string]any{"type": "elasticsearch", "username": elasticsearchtest.Username, "password": f.Password()},
		rootID:      "", // a password has no id
		rootSecrets: []string{f.Password()},
		rootLabel:   func(string) string { return user },
		dynRole:     map[string]any{"parameters": map[string]any{"role_descriptors": ptESRoles, "metadata": `{"issued_by":"vault"}`}},
		dualRole:    map[string]any{"parameters": map[string]any{"role_descriptors": ptESRoles}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, keys) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptCreateAuthName(t, r, s, auth, "Basic <username:password>")
			secs, err := strconv.Atoi(strings.TrimSuffix(ptS(r.Body["expiration"]), "s"))
			if err != nil || secs < 590 || secs > 601 {
				t.Errorf("create expiration %v, want the lease's max TTL (600s)", r.Body["expiration"])
			}
			if rd, _ := r.Body["role_descriptors"].(map[string]any); rd["logs-reader"] == nil {
				t.Errorf("create role_descriptors %v, want the role's", r.Body["role_descriptors"])
			}
			if md, _ := r.Body["metadata"].(map[string]any); md["issued_by"] != "vault" {
				t.Errorf("create metadata %v, want the role's", r.Body["metadata"])
			}
			ptEq(t, "creds api_key_id", ptS(s.Data["api_key_id"]), ptS(s.Data["key_id"]))
			if ptS(s.Data["expires_at"]) == "" {
				t.Errorf("creds lack expires_at")
			}
		},
		checkDualCreate: ptDualExpiry("expiration", 0, func(v any) (time.Time, bool) {
			d, err := time.ParseDuration(ptS(v))
			return time.Now().Add(d), err == nil
		}),
		isDelete: func(r ptReq, id string) bool {
			return r.at(http.MethodDelete, keys) && slices.Equal(ptL(r.Body["ids"]), []string{id})
		},
		isVerify:       func(r ptReq, id string) bool { return r.is(http.MethodGet, "/_security/_authenticate", "key:"+id) },
		verifyPath:     "/_security/_authenticate",
		noRootRotation: true,
	}
}

// ---- tailscale ----

func ptTailscale(t *testing.T) *ptType {
	f := tailscaletest.NewServer()
	t.Cleanup(f.Close)
	keys := "/api/v2/tailnet/" + tailscaletest.Tailnet + "/keys"
	return &ptType{
		name: "tailscale", url: f.URL, baseSuffix: "/api/v2",
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r tailscaletest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:      f.IsLive,
		failNext:    f.FailNext,
		liveIssued:  func() []string { return ptMap(f.LiveKeys(), func(k tailscaletest.AuthKey) string { return k.ID }) },
		provider:    map[string]any{"type": "tailscale", "api_key": f.RootToken(), "tailnet": tailscaletest.Tailnet},
		rootID:      "", // an access token's id is not needed: Vault never rotates it
		rootSecrets: []string{f.RootToken()},
		rootLabel:   func(string) string { return "root" },
		dynRole:     map[string]any{"scopes": []string{"tag:ci"}, "parameters": map[string]any{"ephemeral": "true", "preauthorized": "true"}},
		dualRole:    map[string]any{"scopes": []string{"tag:server"}, "parameters": map[string]any{"reusable": "true"}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, keys) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create auth (Authorization: Bearer <access token>)", r.Auth, auth)
			ptEq(t, "create description", ptS(r.Body["description"]), ptS(s.Data["key_name"]))
			create, _ := ptGet(r.Body, "capabilities", "devices", "create").(map[string]any)
			if create["ephemeral"] != true || create["preauthorized"] != true || create["reusable"] != false ||
				!slices.Equal(ptL(create["tags"]), []string{"tag:ci"}) {
				t.Errorf("create capabilities %v, want the role's tags and parameters", create)
			}
			secs, err := strconv.Atoi(ptS(r.Body["expirySeconds"]))
			if err != nil || secs < 590 || secs > 601 {
				t.Errorf("create expirySeconds %v, want the lease's max TTL (600)", r.Body["expirySeconds"])
			}
			ptEq(t, "creds tailnet", ptS(s.Data["tailnet"]), tailscaletest.Tailnet)
			if ptS(s.Data["expires_at"]) == "" {
				t.Errorf("creds lack expires_at")
			}
		},
		checkDualCreate: ptDualExpiry("expirySeconds", 0, ptFromNow(time.Second)),
		isDelete:        func(r ptReq, id string) bool { return r.at(http.MethodDelete, keys+"/"+id) },
		// An auth key cannot call the API: it is read back by id with the token.
		isVerify:       func(r ptReq, id string) bool { return r.is(http.MethodGet, keys+"/"+id, "root") },
		verifyPath:     keys + "/",
		noRootRotation: true,
	}
}

// TestProviderTypesWave2BBadInput: type-specific bad input of this wave's
// types is a 400 naming the field, and nothing is stored.
func TestProviderTypesWave2BBadInput(t *testing.T) {
	c := sharedVlt.client
	f := tailscaletest.NewServer()
	t.Cleanup(f.Close)
	vf := verceltest.NewServer()
	t.Cleanup(vf.Close)
	ef := elasticsearchtest.NewServer()
	t.Cleanup(ef.Close)
	df := dockerhubtest.NewServer()
	t.Cleanup(df.Close)
	nf := npmtest.NewServer(npmtest.WithTwoFactor())
	t.Cleanup(nf.Close)
	cases := []struct {
		name string
		path string // "" for a provider write
		data map[string]any
		want []string
	}{
		{"vercel team_id with a query", "", map[string]any{"type": "vercel", "base_url": vf.URL, "api_token": vf.RootToken(),
			"team_id": "team_a&slug=b"}, []string{"team_id"}},
		{"vercel team the token cannot act for", "", map[string]any{"type": "vercel", "base_url": vf.URL, "api_token": vf.RootToken(),
			"team_id": "team_other"}, []string{"api_token", "403", "permission to access this team"}},
		{"vercel scopes", "role:vercel", map[string]any{"mode": "dynamic", "scopes": []string{"read"}}, []string{"scopes"}},
		{"dockerhub password that is a personal access token", "", map[string]any{"type": "dockerhub", "base_url": df.URL,
			"username": dockerhubtest.Username, "password": "dckr_pat_0123456789"}, []string{"password", "personal access token"}},
		{"dockerhub wrong password", "", map[string]any{"type": "dockerhub", "base_url": df.URL, "username": dockerhubtest.Username,
			"password": "wrong0123456789"}, []string{"password", "401", "incorrect username or password"}},
		{"dockerhub without scopes", "role:dockerhub", map[string]any{"mode": "dynamic"}, []string{"scopes", "repo:read"}},
		{"dockerhub unknown scope", "role:dockerhub", map[string]any{"mode": "dual", "scopes": []string{"repo:delete"}},
			[]string{"scopes", "repo:delete"}},
		{"npm otp_secret not base32", "", map[string]any{"type": "npm", "base_url": nf.URL, "token": nf.SessionToken(),
			"password": nf.Password(), "otp_secret": "123456"}, []string{"otp_secret", "base32"}},
		{"npm without password", "", map[string]any{"type": "npm", "base_url": nf.URL, "token": nf.SessionToken()}, []string{"password"}},
		{"npm scope without @", "role:npm", map[string]any{"mode": "dynamic", "scopes": []string{"acme"}}, []string{"scopes", "package scope"}},
		{"npm bad permission", "role:npm", map[string]any{"mode": "dual", "parameters": map[string]any{"orgs_permission": "owner"}},
			[]string{"parameters", "orgs_permission"}},
		{"elasticsearch without base_url", "", map[string]any{"type": "elasticsearch", "username": "u", "password": "p0123456789"},
			[]string{"base_url"}},
		{"elasticsearch both root forms", "", map[string]any{"type": "elasticsearch", "base_url": ef.URL, "api_key": ef.RootAPIKey(),
			"username": elasticsearchtest.Username, "password": ef.Password()}, []string{"api_key", "username and password"}},
		{"elasticsearch api_key not encoded", "", map[string]any{"type": "elasticsearch", "base_url": ef.URL, "api_key": "ui2lp2axTNmsyakw9tvNnw"},
			[]string{"api_key", "encoded"}},
		{"elasticsearch password without username", "", map[string]any{"type": "elasticsearch", "base_url": ef.URL, "password": ef.Password()},
			[]string{"username"}},
		{"elasticsearch wrong password", "", map[string]any{"type": "elasticsearch", "base_url": ef.URL, "username": elasticsearchtest.Username,
			"password": "wrong0123456789"}, []string{"401", "security_exception"}},
		{"elasticsearch role_descriptors not JSON", "role:elasticsearch", map[string]any{"mode": "dynamic",
			"parameters": map[string]any{"role_descriptors": "read"}}, []string{"parameters", "role_descriptors"}},
		{"elasticsearch privileges on a key derived from an API key root", "role:elasticsearch-apikey", map[string]any{"mode": "dynamic",
			"parameters": map[string]any{"role_descriptors": ptESRoles}}, []string{"parameters", "username and password"}},
		{"tailscale tailnet with a slash", "", map[string]any{"type": "tailscale", "base_url": f.URL + "/api/v2", "api_key": f.RootToken(),
			"tailnet": "a/../b"}, []string{"tailnet"}},
		{"tailscale wrong token", "", map[string]any{"type": "tailscale", "base_url": f.URL + "/api/v2", "api_key": "tskey-api-wrong",
			"tailnet": "-"}, []string{"api_key", "401", "API token invalid"}},
		{"tailscale automated root rotation", "", map[string]any{"type": "tailscale", "base_url": f.URL + "/api/v2", "api_key": f.RootToken(),
			"rotation_period": "720h"}, []string{"rotation_period", "cannot rotate its root"}},
		{"tailscale tag without tag:", "role:tailscale", map[string]any{"mode": "dynamic", "scopes": []string{"ci"}}, []string{"scopes", "ACL tag"}},
		{"tailscale unknown parameter", "role:tailscale", map[string]any{"mode": "dynamic", "parameters": map[string]any{"expiry": "1"}},
			[]string{"parameters", "expiry"}},
	}
	provs := map[string]string{}
	provider := func(typ string) string {
		if p, ok := provs[typ]; ok {
			return p
		}
		p := uniq("good-" + typ)
		switch typ {
		case "npm":
			write(t, c, "thirdparty/providers/"+p, map[string]any{"type": "npm", "base_url": nf.URL, "token": nf.SessionToken(),
				"password": nf.Password(), "otp_secret": nf.OTPSecret()})
		case "dockerhub":
			write(t, c, "thirdparty/providers/"+p, map[string]any{"type": "dockerhub", "base_url": df.URL,
				"username": dockerhubtest.Username, "password": df.Password()})
		case "elasticsearch":
			write(t, c, "thirdparty/providers/"+p, map[string]any{"type": "elasticsearch", "base_url": ef.URL,
				"username": elasticsearchtest.Username, "password": ef.Password()})
		case "elasticsearch-apikey":
			write(t, c, "thirdparty/providers/"+p, map[string]any{"type": "elasticsearch", "base_url": ef.URL, "api_key": ef.RootAPIKey()})
		case "vercel":
			write(t, c, "thirdparty/providers/"+p, map[string]any{"type": "vercel", "base_url": vf.URL, "api_token": vf.RootToken()})
		case "tailscale":
			write(t, c, "thirdparty/providers/"+p, map[string]any{"type": "tailscale", "base_url": f.URL + "/api/v2", "api_key": f.RootToken()})
		}
		t.Cleanup(func() { _, _ = c.Logical().Delete("thirdparty/providers/" + p) })
		provs[typ] = p
		return p
	}
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
			ptNoSecretIn(t, "error", map[string]any{"e": msg}, f.RootToken(), vf.RootToken(), ef.Password(), ef.RootAPIKey(), df.Password(), nf.Password(), nf.OTPSecret())
			if s, _ := c.Logical().Read(path); s != nil {
				t.Errorf("a rejected write stored %s", path)
			}
		})
	}
}
