//go:build e2e

package e2e

// Wave 2 (part A) provider types for TestProviderTypes (providers_test.go):
// each constructor starts the type's fake and describes its documented
// requests, reusing the pt* helpers.

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/algolia"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/algolia/algoliatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/confluent/confluenttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/linode/linodetest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mailgun/mailguntest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mongodbatlas/mongodbatlastest"
)

func init() {
	ptTypes["linode"] = ptLinode
	ptTypes["mongodbatlas"] = ptMongoDBAtlas
	ptTypes["confluent"] = ptConfluent
	ptTypes["algolia"] = ptAlgolia
	ptTypes["mailgun"] = ptMailgun
}

// ---- linode ----

func ptLinode(t *testing.T) *ptType {
	f := linodetest.NewServer()
	t.Cleanup(f.Close)
	seeded := f.RootTokenID()
	const tokens = "/v4/profile/tokens"
	tp := &ptType{
		name: "linode", url: f.URL, baseSuffix: "/v4",
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r linodetest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptNotRoots(f.LiveTokens(), func(k linodetest.Token) (string, string) { return k.Label, ptS(k.ID) })
		},
		provider:    map[string]any{"type": "linode", "token": f.RootToken()},
		rootID:      seeded,
		rootSecrets: []string{f.RootToken()},
		rootLabel:   ptRootLabel(seeded, "token:"),
		dynRole:     map[string]any{"scopes": []string{"linodes:read_only", "domains:read_write"}},
		dualRole:    map[string]any{"scopes": []string{"*"}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, tokens) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create auth (Authorization: Bearer <root>)", r.Auth, auth)
			ptEq(t, "create label", ptS(r.Body["label"]), ptS(s.Data["key_name"]))
			ptEq(t, "create scopes", ptS(r.Body["scopes"]), "linodes:read_only,domains:read_write")
			exp, err := time.Parse(time.RFC3339, ptS(r.Body["expiry"]))
			if d := time.Until(exp); err != nil || d < 9*time.Minute || d > 11*time.Minute {
				t.Errorf("create expiry %v, want the lease's max TTL (10m) from now", r.Body["expiry"])
			}
			if ptS(s.Data["expires_at"]) == "" {
				t.Errorf("creds lack expires_at")
			}
		},
		checkDualCreate: func(t *testing.T, r ptReq, auth string) {
			ptDualExpiresOn("expiry")(t, r, auth)
			ptEq(t, "dual create scopes", ptS(r.Body["scopes"]), "*")
		},
		isDelete:   func(r ptReq, id string) bool { return r.at(http.MethodDelete, tokens+"/"+id) },
		isVerify:   func(r ptReq, id string) bool { return r.is(http.MethodGet, "/v4/profile", "token:"+id) },
		verifyPath: "/v4/profile",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "linode root token rotation", seen,
			ptM("GET /profile/tokens with the root (find its id and scopes)", func(r ptReq) bool { return r.is("GET", tokens, "root") }),
			ptM("POST /profile/tokens with the root's scopes and no expiry", func(r ptReq) bool {
				exp, set := r.Body["expiry"]
				return r.is("POST", tokens, "root") && ptVaultRoot(r.Body["label"]) && ptS(r.Body["scopes"]) == "*" && set && exp == nil
			}),
			ptM("GET /profile/tokens with the new token", func(r ptReq) bool { return r.is("GET", tokens, "token:"+newID) }),
			ptM("DELETE the old token with the new one", func(r ptReq) bool { return r.is("DELETE", tokens+"/"+oldID, "token:"+newID) }))
	}
	tp.newRoots = func(t *testing.T) []string {
		var roots []linodetest.Token
		for _, k := range f.LiveTokens() {
			if strings.HasPrefix(k.Label, "vault-root") {
				roots = append(roots, k)
			}
		}
		return ptOneRoot(t, roots, "root token", func(k linodetest.Token) string { return k.Secret })
	}
	return tp
}

// ---- mongodbatlas ----

func ptMongoDBAtlas(t *testing.T) *ptType {
	f := mongodbatlastest.NewServer()
	t.Cleanup(f.Close)
	root := f.Root()
	org := "/api/atlas/v2/orgs/" + mongodbatlastest.DefaultOrgID
	keys := org + "/apiKeys"
	tp := &ptType{
		name: "mongodbatlas", url: f.URL,
		// The Digest challenge round trips (no credential) are left out:
		// the documented calls are the authenticated ones.
		reqs: func() []ptReq {
			var out []ptReq
			for _, r := range f.Requests() {
				if !r.Challenge {
					out = append(out, ptReq{Method: r.Method, Path: r.Path, Auth: r.Auth, Body: r.Body})
				}
			}
			return out
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptNotRoots(f.LiveKeys(), func(k mongodbatlastest.Key) (string, string) { return k.Desc, k.ID })
		},
		provider: map[string]any{"type": "mongodbatlas", "public_key": root.PublicKey, "private_key": root.PrivateKey,
			"org_id": mongodbatlastest.DefaultOrgID},
		rootID:      root.ID,
		rootSecrets: []string{root.PrivateKey, root.PublicKey},
		rootLabel:   ptRootLabel(root.ID, "key:"),
		dynRole:     map[string]any{"scopes": []string{"ORG_READ_ONLY", "ORG_MEMBER"}},
		dualRole:    map[string]any{"scopes": []string{"ORG_MEMBER"}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, keys) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create auth (Digest with the root pair)", r.Auth, auth)
			ptEq(t, "create desc", ptS(r.Body["desc"]), ptS(s.Data["key_name"]))
			ptEqList(t, "create roles", ptL(r.Body["roles"]), []string{"ORG_READ_ONLY", "ORG_MEMBER"})
			if !f.IsLive(ptS(s.Data["public_key"])) {
				t.Errorf("creds public_key %v is not the issued key's", s.Data["public_key"])
			}
			ptEq(t, "creds org_id", ptS(s.Data["org_id"]), mongodbatlastest.DefaultOrgID)
		},
		isDelete:   func(r ptReq, id string) bool { return r.at(http.MethodDelete, keys+"/"+id) },
		isVerify:   func(r ptReq, id string) bool { return r.is(http.MethodGet, org, "key:"+id) },
		verifyPath: org,
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "atlas root key pair rotation", seen,
			ptM("GET apiKeys with the root (find its id and roles)", func(r ptReq) bool { return r.is("GET", keys, "root") }),
			ptM("POST apiKeys with the root's roles", func(r ptReq) bool {
				return r.is("POST", keys, "root") && ptVaultRoot(r.Body["desc"]) && ptSameSet(ptL(r.Body["roles"]), []string{"ORG_OWNER"})
			}),
			ptM("GET apiKeys with the new pair", func(r ptReq) bool { return r.is("GET", keys, "key:"+newID) }),
			ptM("DELETE the old key with the new pair", func(r ptReq) bool { return r.is("DELETE", keys+"/"+oldID, "key:"+newID) }))
	}
	tp.newRoots = func(t *testing.T) []string {
		var roots []mongodbatlastest.Key
		for _, k := range f.LiveKeys() {
			if strings.HasPrefix(k.Desc, "vault-root") {
				roots = append(roots, k)
			}
		}
		one := ptOneRoot(t, roots, "root key pair", func(k mongodbatlastest.Key) string { return k.PrivateKey })
		return append(one, roots[0].PublicKey)
	}
	return tp
}

// ptDigestUser is the user name of a Digest Authorization header's
// parameters (the Atlas public key), for ptRequestCredentials.
func ptDigestUser(params string) string {
	for _, part := range strings.Split(params, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "username="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// ---- confluent ----

func ptConfluent(t *testing.T) *ptType {
	f := confluenttest.NewServer()
	t.Cleanup(f.Close)
	root := f.Root()
	const keys = "/iam/v2/api-keys"
	spec := func(r ptReq, field string) string { return ptS(ptGet(r.Body, "spec", field)) }
	tp := &ptType{
		name: "confluent", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r confluenttest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptNotRoots(f.LiveKeys(), func(k confluenttest.Key) (string, string) { return k.DisplayName, k.ID })
		},
		provider:    map[string]any{"type": "confluent", "cloud_api_key": root.ID, "cloud_api_secret": root.Secret},
		rootID:      root.ID,
		rootSecrets: []string{root.Secret},
		rootLabel:   ptRootLabel(root.ID, "key:"),
		dynRole:     map[string]any{"parameters": map[string]any{"owner": confluenttest.AppAccount, "description": "e2e"}},
		dualRole:    map[string]any{"parameters": map[string]any{"owner": confluenttest.AppAccount}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, keys) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create auth (Basic <root key>:<secret>)", r.Auth, auth)
			ptEq(t, "create display_name", spec(r, "display_name"), ptS(s.Data["key_name"]))
			ptEq(t, "create owner", ptS(ptGet(r.Body, "spec", "owner", "id")), confluenttest.AppAccount)
			ptEq(t, "create description", spec(r, "description"), "e2e")
			ptEq(t, "creds owner", ptS(s.Data["owner"]), confluenttest.AppAccount)
		},
		isDelete: func(r ptReq, id string) bool { return r.at(http.MethodDelete, keys+"/"+id) },
		// A Cloud API key proves itself by listing keys (a 403: it
		// authenticated, its owner lacks IAM rights).
		isVerify:   func(r ptReq, id string) bool { return r.is(http.MethodGet, keys, "key:"+id) },
		verifyPath: keys,
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "confluent Cloud API key rotation", seen,
			ptM("GET the root key (its owner)", func(r ptReq) bool { return r.is("GET", keys+"/"+oldID, "root") }),
			ptM("POST a Cloud API key for the root's owner", func(r ptReq) bool {
				return r.is("POST", keys, "root") && ptVaultRoot(spec(r, "display_name")) &&
					ptS(ptGet(r.Body, "spec", "owner", "id")) == confluenttest.AdminAccount && ptGet(r.Body, "spec", "resource") == nil
			}),
			ptM("list keys with the new key", func(r ptReq) bool { return r.is("GET", keys, "key:"+newID) }),
			ptM("DELETE the old key with the new one", func(r ptReq) bool { return r.is("DELETE", keys+"/"+oldID, "key:"+newID) }))
	}
	tp.newRoots = func(t *testing.T) []string {
		var roots []confluenttest.Key
		for _, k := range f.LiveKeys() {
			if strings.HasPrefix(k.DisplayName, "vault-root") {
				roots = append(roots, k)
			}
		}
		return ptOneRoot(t, roots, "root key", func(k confluenttest.Key) string { return k.Secret })
	}
	tp.afterRoot = func(t *testing.T, p map[string]any, newID string) {
		ptEq(t, "provider cloud_api_key after rotation", ptS(p["cloud_api_key"]), newID)
	}
	return tp
}

// ---- algolia ----

func ptAlgolia(t *testing.T) *ptType {
	f := algoliatest.NewServer()
	t.Cleanup(f.Close)
	// The fake labels a key by its description; Vault's key_id for a key
	// is a digest of its value (the value is Algolia's identifier).
	idOf := func(desc string) string {
		for _, k := range f.LiveKeys() {
			if k.Description == desc {
				return algolia.KeyID(k.Value)
			}
		}
		return ""
	}
	labelled := func(label, id string) bool {
		desc, ok := strings.CutPrefix(label, "key:")
		return ok && idOf(desc) == id
	}
	deleted := map[string]string{} // key_id of a deleted key by its description
	tp := &ptType{
		name: "algolia", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r algoliatest.Recorded) ptReq {
				q := map[string][]string{}
				if r.KeyInPath != "" {
					q["key"] = []string{r.KeyInPath}
				}
				return ptReq{Method: r.Method, Path: r.Path, Query: q, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptMap(f.LiveKeys(), func(k algoliatest.Key) string { return algolia.KeyID(k.Value) })
		},
		provider:    map[string]any{"type": "algolia", "application_id": algoliatest.AppID, "admin_key": f.AdminKey()},
		rootID:      "",
		rootSecrets: []string{f.AdminKey()},
		rootLabel:   func(string) string { return "admin" },
		dynRole: map[string]any{"scopes": []string{"search", "browse"},
			"parameters": map[string]any{"indexes": "products,orders", "maxQueriesPerIPPerHour": "100"}},
		dualRole: map[string]any{"scopes": []string{"search"}},
		isCreate: func(r ptReq) bool { return r.at(http.MethodPost, "/1/keys") },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create auth (x-algolia-api-key: <admin key>)", r.Auth, auth)
			ptEq(t, "create description", ptS(r.Body["description"]), ptS(s.Data["key_name"]))
			ptEqList(t, "create acl", ptL(r.Body["acl"]), []string{"search", "browse"})
			ptEqList(t, "create indexes", ptL(r.Body["indexes"]), []string{"products", "orders"})
			if v, err := time.ParseDuration(ptS(r.Body["validity"]) + "s"); err != nil || v < 590*time.Second || v > 600*time.Second {
				t.Errorf("create validity %v, want the lease's max TTL (600s)", r.Body["validity"])
			}
			if ptS(s.Data["expires_at"]) == "" {
				t.Errorf("creds lack expires_at")
			}
			if id := ptS(s.Data["key_id"]); id != algolia.KeyID(ptS(s.Data["api_key"])) || strings.Contains(id, ptS(s.Data["api_key"])) {
				t.Errorf("creds key_id %q is not the digest of the key", id)
			}
		},
		checkDualCreate: ptDualExpiry("validity", 0, ptFromNow(time.Second)),
		// A delete names the key by value in the path (the fake labels it).
		isDelete: func(r ptReq, id string) bool {
			if !r.at(http.MethodDelete, "/1/keys/{key}") {
				return false
			}
			desc, _ := strings.CutPrefix(strings.Join(r.Query["key"], ""), "key:")
			return deleted[desc] == id || idOf(desc) == id
		},
		isVerify: func(r ptReq, id string) bool {
			return r.at(http.MethodGet, "/1/keys/{key}") && labelled(r.Auth, id) && slices.Contains(r.Query["key"], r.Auth)
		},
		// A key reads itself: GET /1/keys/<its value> with it.
		verifyReq: func(r *http.Request) bool {
			v, ok := strings.CutPrefix(r.URL.Path, "/1/keys/")
			return r.Method == http.MethodGet && ok && v != "" && v == r.Header.Get("X-Algolia-API-Key")
		},
		noRootRotation: true,
	}
	// A deleted key is gone from the fake's live list: remember the ids of
	// keys while they live, so isDelete can name them afterwards.
	prev := tp.reqs
	tp.reqs = func() []ptReq {
		for _, k := range f.LiveKeys() {
			deleted[k.Description] = algolia.KeyID(k.Value)
		}
		return prev()
	}
	return tp
}

// ---- mailgun ----

func ptMailgun(t *testing.T) *ptType {
	f := mailguntest.NewServer()
	t.Cleanup(f.Close)
	root := f.Root()
	tp := &ptType{
		name: "mailgun", url: f.URL,
		// The multipart form's fields stand in for a JSON body.
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r mailguntest.Recorded) ptReq {
				body := map[string]any{}
				for k, v := range r.Form {
					body[k] = v
				}
				if r.Method == http.MethodPost && !strings.HasPrefix(r.ContentType, "multipart/form-data") {
					body["_not_multipart"] = r.ContentType
				}
				return ptReq{Method: r.Method, Path: r.Path, Auth: r.Auth, Body: body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptNotRoots(f.LiveKeys(), func(k mailguntest.Key) (string, string) { return k.Description, k.ID })
		},
		provider:    map[string]any{"type": "mailgun", "api_key": root.Secret, "api_key_id": root.ID},
		rootID:      root.ID,
		rootSecrets: []string{root.Secret},
		rootLabel:   ptRootLabel(root.ID, "key:"),
		dynRole:     map[string]any{"parameters": map[string]any{"role": "sending", "domain_name": mailguntest.Domain}},
		dualRole:    map[string]any{"parameters": map[string]any{"role": "basic"}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, "/v1/keys") },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create auth (Basic api:<root key>)", r.Auth, auth)
			if _, bad := r.Body["_not_multipart"]; bad {
				t.Errorf("create body is not multipart/form-data: %v", r.Body["_not_multipart"])
			}
			ptEq(t, "create description", ptS(r.Body["description"]), ptS(s.Data["key_name"]))
			ptEq(t, "create role", ptS(r.Body["role"]), "sending")
			ptEq(t, "create kind", ptS(r.Body["kind"]), "domain")
			ptEq(t, "create domain_name", ptS(r.Body["domain_name"]), mailguntest.Domain)
			if secs, err := time.ParseDuration(ptS(r.Body["expiration"]) + "s"); err != nil || secs < 590*time.Second || secs > 600*time.Second {
				t.Errorf("create expiration %v, want the lease's max TTL (600s)", r.Body["expiration"])
			}
			if ptS(s.Data["expires_at"]) == "" {
				t.Errorf("creds lack expires_at")
			}
		},
		checkDualCreate: func(t *testing.T, r ptReq, auth string) {
			ptDualExpiry("expiration", 0, ptFromNow(time.Second))(t, r, auth)
			ptEq(t, "dual create kind", ptS(r.Body["kind"]), "user")
		},
		isDelete:   func(r ptReq, id string) bool { return r.at(http.MethodDelete, "/v1/keys/"+id) },
		isVerify:   func(r ptReq, id string) bool { return r.is(http.MethodGet, "/v3/domains", "key:"+id) },
		verifyPath: "/v3/domains",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "mailgun admin key rotation", seen,
			ptM("GET /v1/keys with the root (its id is listed)", func(r ptReq) bool { return r.is("GET", "/v1/keys", "root") }),
			ptM("POST /v1/keys role=admin kind=user", func(r ptReq) bool {
				return r.is("POST", "/v1/keys", "root") && ptVaultRoot(r.Body["description"]) && r.Body["role"] == "admin" && r.Body["kind"] == "user"
			}),
			ptM("GET /v1/keys with the new key", func(r ptReq) bool { return r.is("GET", "/v1/keys", "key:"+newID) }),
			ptM("DELETE the old key with the new one", func(r ptReq) bool { return r.is("DELETE", "/v1/keys/"+oldID, "key:"+newID) }))
	}
	tp.newRoots = func(t *testing.T) []string {
		var roots []mailguntest.Key
		for _, k := range f.LiveKeys() {
			if strings.HasPrefix(k.Description, "vault-root") {
				roots = append(roots, k)
			}
		}
		return ptOneRoot(t, roots, "admin key", func(k mailguntest.Key) string { return k.Secret })
	}
	tp.afterRoot = func(t *testing.T, p map[string]any, newID string) {
		ptEq(t, "provider api_key_id after rotation", ptS(p["api_key_id"]), newID)
	}
	return tp
}

// TestWave2aBadInput: type-specific bad input of the wave 2 (part A) types
// is a 400 naming the field, and nothing is stored.
func TestWave2aBadInput(t *testing.T) {
	c := sharedVlt.client
	al := algoliatest.NewServer()
	t.Cleanup(al.Close)
	okAlgolia := map[string]any{"type": "algolia", "base_url": al.URL, "application_id": algoliatest.AppID, "admin_key": al.AdminKey()}
	mount := uniq("w2a-bad")
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Sys().Unmount(mount) })
	write(t, c, mount+"/providers/al", okAlgolia)

	providers := []struct {
		name string
		data map[string]any
		want []string
	}{
		{"mongodbatlas org_id not hex", map[string]any{"type": "mongodbatlas", "public_key": "abcdefgh", "private_key": "p-0123456789",
			"org_id": "my-org"}, []string{"org_id"}},
		{"mongodbatlas without private_key", map[string]any{"type": "mongodbatlas", "public_key": "abcdefgh",
			"org_id": "5a0a1e7e0f2912c554080adc"}, []string{"private_key"}},
		{"algolia application_id a host", map[string]any{"type": "algolia", "application_id": "evil.example/x", "admin_key": "k0123456789"},
			[]string{"application_id"}},
		{"algolia with a rotation period", map[string]any{"type": "algolia", "base_url": al.URL, "application_id": algoliatest.AppID,
			"admin_key": al.AdminKey(), "rotation_period": "720h"}, []string{"rotation_period", "cannot rotate its root"}},
		{"confluent cloud_api_key not a key id", map[string]any{"type": "confluent", "cloud_api_key": "abc/../x", "cloud_api_secret": "s0123456789"},
			[]string{"cloud_api_key"}},
		{"mailgun api_key_id with a slash", map[string]any{"type": "mailgun", "api_key": "k0123456789", "api_key_id": "a/b"},
			[]string{"api_key_id"}},
		{"linode with a field of another type", map[string]any{"type": "linode", "token": "t0123456789", "org_id": "x"},
			[]string{"org_id"}},
	}
	for _, tc := range providers {
		t.Run(tc.name, func(t *testing.T) {
			path := mount + "/providers/" + uniq("bad")
			_, err := c.Logical().Write(path, tc.data)
			ptWant400(t, err, tc.want...)
			if s, _ := c.Logical().Read(path); s != nil {
				t.Errorf("a rejected write stored %s", path)
			}
		})
	}

	roles := []struct {
		name string
		data map[string]any
		want []string
	}{
		{"algolia without an ACL", map[string]any{"mode": "dynamic"}, []string{"scopes", "ACL"}},
		{"algolia unknown ACL", map[string]any{"mode": "dynamic", "scopes": "search,admin"}, []string{"scopes", `"admin"`}},
		{"algolia unknown parameter", map[string]any{"mode": "dual", "scopes": "search", "parameters": map[string]any{"validity": "60"}},
			[]string{"parameters", "validity"}},
	}
	for _, tc := range roles {
		t.Run(tc.name, func(t *testing.T) {
			path := mount + "/roles/" + uniq("bad")
			tc.data["provider"] = "al"
			_, err := c.Logical().Write(path, tc.data)
			ptWant400(t, err, tc.want...)
			if s, _ := c.Logical().Read(path); s != nil {
				t.Errorf("a rejected write stored %s", path)
			}
		})
	}
	if len(al.LiveKeys()) != 0 {
		t.Errorf("a rejected role created keys at the provider")
	}
}
