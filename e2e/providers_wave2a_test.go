//go:build e2e

package e2e

// Wave 2 (part A) provider types for TestProviderTypes (providers_test.go):
// each constructor starts the type's fake and describes its documented
// requests, reusing the pt* helpers.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/confluent/confluenttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/linode/linodetest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mongodbatlas/mongodbatlastest"
)

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
			ptDualLacks("expiry")(t, r, auth)
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
		provider:    map[string]any{"type": "confluent", "api_key": root.ID, "api_secret": root.Secret},
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
		ptEq(t, "provider api_key after rotation", ptS(p["api_key"]), newID)
	}
	return tp
}
