//go:build e2e

package e2e

// Acceptance of the issue "Real providers": every provider type is driven
// through the real Vault against its in-process fake (clients/<t>/<t>test),
// which the plugin inside Vault reaches over loopback. For each type:
//
//  1. dynamic role: the documented create request, a live key, lease revoke
//     = the documented delete, the key dead;
//  2. dual role: rotate-role = create + verify with the new key,
//     revoke_previous deletes the old keys, rotate-root follows the type's
//     documented strategy and the old root is dead while creds keep working;
//  3. a 429 with Retry-After is waited out (2 attempts, not a burst), and a
//     5xx in the middle of a rotation (on the create, then on the verify)
//     loses nothing and orphans nothing;
//  4. (TestProviderTypesBadInput) type-specific bad input is a 400 naming
//     the field.
//
// Helpers here are prefixed pt so they do not collide with other files.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/all"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/cloudflare/cloudflaretest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/datadog/datadogtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/gitlab/gitlabtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/grafana/grafanatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/openai/openaitest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/sendgrid/sendgridtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/twilio/twiliotest"
)

// ptReq is one request a fake saw, in one shape for every fake. Auth is the
// fake's own label of the credential that authenticated the request
// ("root", "key:<id>", …; datadog: "<DD-API-KEY label>|<DD-APPLICATION-KEY
// label>"), never the credential itself.
type ptReq struct {
	Method string
	Path   string
	Query  url.Values
	Auth   string
	// OnBehalfOf is SendGrid's subuser header.
	OnBehalfOf string
	Body       map[string]any
}

func (r ptReq) String() string {
	s := r.Method + " " + r.Path
	if len(r.Query) > 0 {
		s += "?" + r.Query.Encode()
	}
	s += " auth=" + r.Auth
	if r.OnBehalfOf != "" {
		s += " on-behalf-of=" + r.OnBehalfOf
	}
	return s
}

// ptType describes one provider type: its fake, the provider and role
// configuration that exercises its documented mapping, and the documented
// requests.
type ptType struct {
	name string
	url  string // the fake's URL (base_url is url+baseSuffix)
	// baseSuffix is appended to a URL to make base_url (openai: /v1).
	baseSuffix string

	reqs     func() []ptReq
	isLive   func(secret string) bool
	failNext func(n, status int)
	// liveIssued lists the ids (as Vault's key_id) of the live keys that are
	// not root credentials.
	liveIssued func() []string

	// provider is the providers/<n> write (base_url and type included).
	provider map[string]any
	// rootID is the root_key_id Vault must learn on the provider write.
	rootID string
	// rootSecrets are the root credential(s) as configured.
	rootSecrets []string
	// rootLabel is the fake's Auth label of the root whose id (Vault's
	// root_key_id) is given.
	rootLabel func(rootKeyID string) string

	dynRole  map[string]any // scopes/parameters/name_template of the dynamic role
	dualRole map[string]any // of the dual role

	isCreate func(r ptReq) bool
	// checkCreate checks the documented create of a dynamic key (r) against
	// the creds that came of it, made with the root labelled auth.
	checkCreate func(t *testing.T, r ptReq, creds *api.Secret, auth string)
	// checkDualCreate checks the create of a dual role's key.
	checkDualCreate func(t *testing.T, r ptReq, auth string)
	// isDelete: r is the documented delete of the key with Vault key_id id.
	isDelete func(r ptReq, id string) bool
	// anyDelete: r deletes some key (default: any DELETE request), for
	// APIs that delete with a POST (databricks' token/delete).
	anyDelete func(r ptReq) bool
	// isVerify: r is the documented verify of key id, made with that key.
	isVerify func(r ptReq, id string) bool
	// verifyPath is the path (GET) of the verify request, for the fault
	// proxy; one ending in "/" is the prefix of the key's own path.
	// verifyReq, when set, picks the verify requests instead (a verify that
	// is not a GET); it may read the body if it puts it back.
	verifyPath string
	verifyReq  func(*http.Request) bool

	// checkRoot checks the calls of rotate-root (reqs since the call) given
	// its response, the old root's id and the new one's.
	checkRoot func(t *testing.T, reqs []ptReq, oldID, newID string)
	// newRoots returns the root credential(s) live at the fake after the
	// rotation (read from the fake's accessors).
	newRoots func(t *testing.T) []string
	// afterRoot checks the provider read after a root rotation.
	afterRoot func(t *testing.T, provider map[string]any, newID string)

	// extra runs after the dynamic step, before any root rotation.
	extra func(t *testing.T, c *api.Client, mount string)

	// rootRoll: root rotation is a roll (the new root is stored first).
	rootRoll bool
	// noRootRotation: the type cannot rotate its root; rotate-root must be
	// refused (ptRootUnsupported) and the root-rotation steps are skipped.
	noRootRotation bool
	// serverError is the 5xx the rotation-failure steps inject (default 503).
	serverError int
}

// ptTypes holds the driver of each provider type; a file that adds types
// registers its drivers in an init func.
var ptTypes = map[string]func(*testing.T) *ptType{
	"sendgrid": ptSendgrid, "twilio": ptTwilio, "datadog": ptDatadog, "cloudflare": ptCloudflare,
	"gitlab": ptGitlab, "grafana": ptGrafana, "openai": ptOpenAI,
}

// ptOwnSuites are the types driven by suites of their own: demo by every
// other e2e test, http by httptype_test.go.
var ptOwnSuites = map[string]bool{"demo": true, "http": true}

// TestProviderTypes drives every registered provider type (the plugin's
// registry, not a list kept here) end to end; a type without a driver
// fails. The types run in parallel as subtests of this one test, so the
// suite's final log scan (a later top-level test) still runs after all of
// them.
func TestProviderTypes(t *testing.T) {
	for _, typ := range clients.Types() {
		name := typ.Name
		if ptOwnSuites[name] {
			continue
		}
		mk, ok := ptTypes[name]
		if !ok {
			t.Errorf("provider type %q has no driver in ptTypes", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			ptRun(t, mk(t))
			t.Logf("%s: %s", name, time.Since(start).Round(time.Millisecond))
		})
	}
}

func ptRun(t *testing.T, tp *ptType) {
	c := sharedVlt.client
	// The fake was started (and its Close registered) by the constructor;
	// the mount's cleanup is registered after, so it runs first and can
	// still reach the fake to revoke leftover leases.
	mount := uniq("pt-" + tp.name)
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Sys().Unmount(mount); err != nil {
			t.Logf("unmount %s: %v", mount, err)
		}
	})
	for _, s := range tp.rootSecrets {
		issued.add(s)
	}
	prov := tp.name + "-prov"
	provPath := mount + "/providers/" + prov
	// Vault reaches the fake's base_url through a fault proxy from the
	// start (unarmed, it passes everything on): pointing base_url at a
	// proxy later would need the root credential in the same write.
	serverError := tp.serverError
	if serverError == 0 {
		serverError = http.StatusServiceUnavailable
	}
	px := ptNewFaultProxy(t, tp.url, serverError)
	provData := maps.Clone(tp.provider)
	provData["base_url"] = px.URL + tp.baseSuffix
	write(t, c, provPath, provData)
	p := read(t, c, provPath).Data
	if got := ptS(p["root_key_id"]); got != tp.rootID {
		t.Fatalf("provider root_key_id = %q, want %q (the root as the fake knows it)", got, tp.rootID)
	}
	ptNoSecretIn(t, "provider read", p, tp.rootSecrets...)
	rootAuth := tp.rootLabel(tp.rootID)

	dyn, dual := "dyn", "dual"
	dynData := map[string]any{"provider": prov, "mode": "dynamic", "ttl": "5m", "max_ttl": "10m"}
	for k, v := range tp.dynRole {
		dynData[k] = v
	}
	write(t, c, mount+"/roles/"+dyn, dynData)

	// 1. dynamic: create, live, revoke = delete.
	ok := t.Run("dynamic", func(t *testing.T) {
		mark := len(tp.reqs())
		s := readCreds(t, c, mount, dyn)
		key, id := ptS(s.Data["api_key"]), ptS(s.Data["key_id"])
		seen := tp.reqs()[mark:]
		creates := ptFilter(seen, tp.isCreate)
		if len(creates) != 1 {
			t.Fatalf("creds made %d create requests, want 1:\n%s", len(creates), ptDump(seen))
		}
		tp.checkCreate(t, creates[0], s, rootAuth)
		if !tp.isLive(key) {
			t.Fatalf("the issued api_key is not live at the fake")
		}
		if !slices.Contains(tp.liveIssued(), id) {
			t.Fatalf("key_id %s is not among the fake's live keys %v", id, tp.liveIssued())
		}

		mark = len(tp.reqs())
		if err := c.Sys().Revoke(s.LeaseID); err != nil {
			t.Fatalf("lease revoke: %v", err)
		}
		seen = tp.reqs()[mark:]
		if dels := ptFilter(seen, func(r ptReq) bool { return tp.isDelete(r, id) }); len(dels) != 1 {
			t.Fatalf("lease revoke: want the documented delete of %s once, saw:\n%s", id, ptDump(seen))
		} else if dels[0].Auth != rootAuth {
			t.Errorf("delete authenticated as %q, want the root (%q)", dels[0].Auth, rootAuth)
		}
		if tp.isLive(key) {
			t.Fatalf("the key still works at the fake after the lease was revoked")
		}
		if slices.Contains(tp.liveIssued(), id) {
			t.Fatalf("key %s still live at the fake after revoke", id)
		}
	})
	if !ok {
		return
	}
	if tp.extra != nil {
		if !t.Run("extra", func(t *testing.T) { tp.extra(t, c, mount) }) {
			return
		}
	}

	// 2. dual: first key, rotate, revoke_previous.
	var cur string // the dual role's current key id
	ok = t.Run("dual", func(t *testing.T) {
		mark := len(tp.reqs())
		data := map[string]any{"provider": prov, "mode": "dual", "ttl": "5m", "rotation_period": "1h", "overlap": "10m"}
		for k, v := range tp.dualRole {
			data[k] = v
		}
		write(t, c, mount+"/roles/"+dual, data)
		r := read(t, c, mount+"/roles/"+dual).Data
		id1 := ptS(r["current_key_id"])
		if id1 == "" {
			t.Fatalf("dual role has no current key after create: %v", r)
		}
		seen := tp.reqs()[mark:]
		ptExpectSeq(t, "dual role create", seen,
			ptM("create", func(r ptReq) bool { return tp.isCreate(r) }),
			ptM("verify with the new key "+id1, func(r ptReq) bool { return tp.isVerify(r, id1) }))
		if tp.checkDualCreate != nil {
			tp.checkDualCreate(t, ptFilter(seen, tp.isCreate)[0], rootAuth)
		}

		s1 := readCreds(t, c, mount, dual)
		k1 := ptS(s1.Data["api_key"])
		if got := ptS(s1.Data["key_id"]); got != id1 {
			t.Fatalf("creds key_id %s, role current_key_id %s", got, id1)
		}
		if !tp.isLive(k1) {
			t.Fatalf("dual creds: key not live at the fake")
		}

		mark = len(tp.reqs())
		rot := write(t, c, mount+"/rotate-role/"+dual, map[string]any{})
		id2 := ptS(rot.Data["key_id"])
		ptNoSecretIn(t, "rotate-role response", rot.Data, k1)
		seen = tp.reqs()[mark:]
		ptExpectSeq(t, "rotate-role", seen,
			ptM("create with the root", func(r ptReq) bool { return tp.isCreate(r) && r.Auth == rootAuth }),
			ptM("verify with the new key "+id2, func(r ptReq) bool { return tp.isVerify(r, id2) }))
		if ptS(rot.Data["previous_key_id"]) != id1 {
			t.Errorf("rotate-role previous_key_id = %v, want %s", rot.Data["previous_key_id"], id1)
		}
		s2 := readCreds(t, c, mount, dual)
		k2 := ptS(s2.Data["api_key"])
		if ptS(s2.Data["key_id"]) != id2 || k2 == k1 {
			t.Fatalf("creds after rotate-role: key_id %v, want the new key %s", s2.Data["key_id"], id2)
		}
		if !tp.isLive(k1) || !tp.isLive(k2) {
			t.Fatalf("during the overlap both keys must work: old live %v, new live %v", tp.isLive(k1), tp.isLive(k2))
		}
		ptRoleKeys(t, c, mount, dual, id2, id1)

		mark = len(tp.reqs())
		rot = write(t, c, mount+"/rotate-role/"+dual, map[string]any{"revoke_previous": true})
		id3 := ptS(rot.Data["key_id"])
		seen = tp.reqs()[mark:]
		for _, id := range []string{id1, id2} {
			if len(ptFilter(seen, func(r ptReq) bool { return tp.isDelete(r, id) })) != 1 {
				t.Errorf("rotate-role revoke_previous=true: no documented delete of %s:\n%s", id, ptDump(seen))
			}
		}
		ptExpectSeq(t, "rotate-role revoke_previous", seen,
			ptM("create", tp.isCreate),
			ptM("verify with the new key "+id3, func(r ptReq) bool { return tp.isVerify(r, id3) }))
		if tp.isLive(k1) || tp.isLive(k2) {
			t.Fatalf("revoke_previous=true: old keys still live (first %v, second %v)", tp.isLive(k1), tp.isLive(k2))
		}
		ptRoleKeys(t, c, mount, dual, id3, "")
		s3 := readCreds(t, c, mount, dual)
		if ptS(s3.Data["key_id"]) != id3 || !tp.isLive(ptS(s3.Data["api_key"])) {
			t.Fatalf("creds after revoke_previous: %v (want live key %s)", s3.Data["key_id"], id3)
		}
		ptExactlyLive(t, tp, id3)
		cur = id3
	})
	if !ok {
		return
	}

	// 2b. rotate-root.
	newRootID := ""
	var roots []string // the root credential(s) after rotate-root
	rootStep := func(t *testing.T) {
		mark := len(tp.reqs())
		resp := write(t, c, mount+"/rotate-root/"+prov, map[string]any{})
		if resp == nil {
			t.Fatal("rotate-root returned nothing")
		}
		for _, w := range resp.Warnings {
			t.Errorf("rotate-root warning: %s", w)
		}
		ptNoSecretIn(t, "rotate-root response", resp.Data, tp.rootSecrets...)
		newRootID = ptS(resp.Data["root_key_id"])
		if prev := ptS(resp.Data["previous_root_key_id"]); prev != tp.rootID {
			t.Errorf("previous_root_key_id = %q, want %q", prev, tp.rootID)
		}
		if newRootID == "" || newRootID == tp.rootID {
			t.Fatalf("root_key_id after rotation = %q (old %q)", newRootID, tp.rootID)
		}
		seen := tp.reqs()[mark:]
		tp.checkRoot(t, seen, tp.rootID, newRootID)
		for i, old := range tp.rootSecrets {
			if tp.isLive(old) {
				t.Errorf("the old root credential #%d still works at the fake", i)
			}
		}
		roots = tp.newRoots(t)
		for _, r := range roots {
			issued.add(r)
			if slices.Contains(tp.rootSecrets, r) {
				t.Errorf("the new root equals the old one")
			}
		}
		p := read(t, c, provPath).Data
		if got := ptS(p["root_key_id"]); got != newRootID {
			t.Errorf("provider root_key_id = %q, want %q", got, newRootID)
		}
		if e := ptS(p["last_root_rotation_error"]); e != "" {
			t.Errorf("last_root_rotation_error = %q", e)
		}
		if n := ptS(p["pending_root_revocations"]); n != "0" {
			t.Errorf("pending_root_revocations = %s, want 0", n)
		}
		ptNoSecretIn(t, "provider read", p, append(roots, tp.rootSecrets...)...)
		if tp.afterRoot != nil {
			tp.afterRoot(t, p, newRootID)
		}
		rootAuth = tp.rootLabel(newRootID)

		// Creds still work, made with the new root.
		mark = len(tp.reqs())
		s := readCreds(t, c, mount, dyn)
		seen = tp.reqs()[mark:]
		creates := ptFilter(seen, tp.isCreate)
		if len(creates) != 1 {
			t.Fatalf("creds after rotate-root: %d creates:\n%s", len(creates), ptDump(seen))
		}
		tp.checkCreate(t, creates[0], s, rootAuth)
		if !tp.isLive(ptS(s.Data["api_key"])) {
			t.Fatalf("creds after rotate-root: key not live")
		}
		if err := c.Sys().Revoke(s.LeaseID); err != nil {
			t.Fatalf("revoke with the new root: %v", err)
		}
		if tp.isLive(ptS(s.Data["api_key"])) {
			t.Fatalf("revoke with the new root left the key live")
		}
		// The dual role rotates with the new root too.
		mark = len(tp.reqs())
		rot := write(t, c, mount+"/rotate-role/"+dual, map[string]any{"revoke_previous": true})
		next := ptS(rot.Data["key_id"])
		seen = tp.reqs()[mark:]
		ptExpectSeq(t, "rotate-role after rotate-root", seen,
			ptM("create with the new root", func(r ptReq) bool { return tp.isCreate(r) && r.Auth == rootAuth }),
			ptM("verify with the new key", func(r ptReq) bool { return tp.isVerify(r, next) }),
			ptM("delete of the replaced key "+cur, func(r ptReq) bool { return tp.isDelete(r, cur) && r.Auth == rootAuth }))
		cur = next
		if s := readCreds(t, c, mount, dual); ptS(s.Data["key_id"]) != cur || !tp.isLive(ptS(s.Data["api_key"])) {
			t.Fatalf("dual creds after rotate-root: %v, want live %s", s.Data["key_id"], cur)
		}
		ptExactlyLive(t, tp, cur)
	}
	if tp.noRootRotation {
		ok = t.Run("rotate-root-unsupported", func(t *testing.T) { ptRootUnsupported(t, c, tp, mount, prov) })
	} else {
		ok = t.Run("rotate-root", rootStep)
	}
	if !ok {
		return
	}

	// 3a. A 429 with Retry-After before a create is waited out.
	t.Run("429-retry-after", func(t *testing.T) {
		if took := ptRetriedOnce(t, c, tp, mount, dyn, http.StatusTooManyRequests); took < 900*time.Millisecond {
			t.Errorf("the retry came %s after the 429, before its Retry-After: 1", took)
		}
	})

	// 3a'. A single 503 (no Retry-After) is retried after the ordinary
	// backoff, not after some rate-limit window.
	t.Run("503-once", func(t *testing.T) {
		if took := ptRetriedOnce(t, c, tp, mount, dyn, http.StatusServiceUnavailable); took > 5*time.Second {
			t.Errorf("a single 503 was retried only after %s; the first backoff is well under a second", took.Round(time.Second))
		}
	})

	status := strconv.Itoa(serverError)

	// 3b. A 5xx on every attempt of the create during a rotation. A 503
	// says nothing was done, so the create is tried again (4 retries); after
	// any other 5xx the key may exist, so it is not (clients/httpx).
	t.Run("5xx-on-create", func(t *testing.T) {
		key := ptS(readCreds(t, c, mount, dual).Data["api_key"])
		mark := len(tp.reqs())
		attempts := 1
		if serverError == http.StatusServiceUnavailable {
			attempts = 5
		}
		tp.failNext(attempts, serverError)
		_, err := c.Logical().Write(mount+"/rotate-role/"+dual, map[string]any{})
		if err == nil {
			t.Fatalf("rotate-role succeeded through %d %ss", attempts, status)
		}
		ptErrNamesStatus(t, err, prov, status, key)
		seen := tp.reqs()[mark:]
		if len(ptFilter(seen, tp.isCreate)) != attempts || len(seen) != attempts {
			t.Errorf("want %d create attempts and nothing else, saw:\n%s", attempts, ptDump(seen))
		}
		ptKeptCurrent(t, c, tp, mount, dual, cur, "rotation")
	})

	// 3c. A 5xx on every verify of the new key: the key was created, must
	// not be promoted, and must be deleted again.
	t.Run("5xx-on-verify", func(t *testing.T) {
		defer px.arm(nil)
		px.arm(func(r *http.Request) bool {
			if tp.verifyReq != nil {
				return tp.verifyReq(r)
			}
			// A verifyPath ending in "/" is the prefix of a path naming the key.
			return r.Method == http.MethodGet && (r.URL.Path == tp.verifyPath ||
				strings.HasSuffix(tp.verifyPath, "/") && strings.HasPrefix(r.URL.Path, tp.verifyPath))
		})
		mark := len(tp.reqs())
		_, err := c.Logical().Write(mount+"/rotate-role/"+dual, map[string]any{})
		px.arm(nil)
		if err == nil {
			t.Fatalf("rotate-role succeeded although every verify answered %s", status)
		}
		ptErrNamesStatus(t, err, prov, status)
		if n := px.failures(); n < 2 {
			t.Errorf("the verify was tried %d times; want retries", n)
		} else {
			t.Logf("verify answered %s %d times", status, n)
		}
		seen := tp.reqs()[mark:]
		creates := ptFilter(seen, tp.isCreate)
		if len(creates) != 1 {
			t.Fatalf("want one create, saw:\n%s", ptDump(seen))
		}
		anyDelete := tp.anyDelete
		if anyDelete == nil {
			anyDelete = func(r ptReq) bool { return r.Method == http.MethodDelete }
		}
		dels := ptFilter(seen, anyDelete)
		if len(dels) != 1 || tp.isDelete(dels[0], cur) {
			t.Fatalf("the unverified new key must be deleted (and only it), saw:\n%s", ptDump(seen))
		}
		ptKeptCurrent(t, c, tp, mount, dual, cur, "verify")
	})

	// 3d. A 5xx on every request made with the new root during a root
	// rotation (its verification): create-then-delete types keep the old
	// root and discard the new one; a roll (gitlab) has stored the new root
	// before verifying, so the plugin is not stranded either way.
	t.Run("5xx-on-root-verify", func(t *testing.T) {
		if tp.noRootRotation {
			t.Skip("the type cannot rotate its root")
		}
		defer px.arm(nil)
		px.arm(func(r *http.Request) bool {
			if len(ptRequestCredentials(r)) == 0 {
				return false // a Digest challenge round trip (mongodbatlas) is nobody's yet
			}
			for _, v := range ptRequestCredentials(r) {
				if slices.Contains(roots, v) {
					return false
				}
			}
			return true
		})
		mark := len(tp.reqs())
		_, err := c.Logical().Write(mount+"/rotate-root/"+prov, map[string]any{})
		px.arm(nil)
		if err == nil {
			t.Fatalf("rotate-root succeeded although the new root's verification answered %s", status)
		}
		ptErrNamesStatus(t, err, prov, status, roots...)
		if px.failures() == 0 {
			t.Fatalf("no request with the new root reached the proxy")
		}
		seen := tp.reqs()[mark:]
		p := read(t, c, provPath).Data
		if tp.rootRoll {
			// The roll killed the old root at once; the new one is stored.
			now := tp.newRoots(t)
			for _, r := range now {
				issued.add(r)
			}
			for _, old := range roots {
				if tp.isLive(old) {
					t.Errorf("the rolled root still works")
				}
			}
			if ptS(p["root_key_id"]) == newRootID {
				t.Errorf("root_key_id still names the rolled root %s", newRootID)
			}
			roots, newRootID = now, ptS(p["root_key_id"])
		} else {
			if got := ptS(p["root_key_id"]); got != newRootID {
				t.Errorf("root_key_id %q after a failed rotation, want the kept root %q", got, newRootID)
			}
			for _, old := range roots {
				if !tp.isLive(old) {
					t.Errorf("the kept root does not work at the fake")
				}
			}
			// The discarded root is gone: the fake's roots are the kept ones.
			if now := tp.newRoots(t); !ptSameSet(now, roots) {
				t.Errorf("after the failed rotation the fake has %d root credential(s), not just the kept one(s); calls:\n%s", len(now), ptDump(seen))
				for _, r := range now {
					issued.add(r)
				}
			}
		}
		if n := ptS(p["pending_root_revocations"]); n != "0" {
			t.Errorf("pending_root_revocations = %s", n)
		}
		px.arm(nil)
		s := readCreds(t, c, mount, dyn)
		if !tp.isLive(ptS(s.Data["api_key"])) {
			t.Fatalf("creds after the failed root rotation: key not live")
		}
		if err := c.Sys().Revoke(s.LeaseID); err != nil {
			t.Fatalf("revoke after the failed root rotation: %v", err)
		}
		ptExactlyLive(t, tp, cur)
	})

	// Deleting the dual role with revoke_keys=true deletes its key at the
	// provider at once.
	t.Run("delete-role", func(t *testing.T) {
		if _, err := lcDeleteRevokingKeys(c, mount+"/roles/"+dual); err != nil {
			t.Fatalf("delete dual role: %v", err)
		}
		ptExactlyLive(t, tp)
	})
}

// ptRetriedOnce makes creds of role while the fake answers the first create
// with status: the create is tried exactly twice and the key works (it is
// revoked again). It returns how long the creds took.
func ptRetriedOnce(t *testing.T, c *api.Client, tp *ptType, mount, role string, status int) time.Duration {
	t.Helper()
	mark := len(tp.reqs())
	tp.failNext(1, status)
	start := time.Now()
	s := readCreds(t, c, mount, role)
	took := time.Since(start)
	seen := tp.reqs()[mark:]
	if len(seen) != 2 || !tp.isCreate(seen[0]) || !tp.isCreate(seen[1]) {
		t.Errorf("a %d then success: want exactly 2 create attempts, saw:\n%s", status, ptDump(seen))
	}
	if !tp.isLive(ptS(s.Data["api_key"])) {
		t.Errorf("key created after the %d is not live", status)
	}
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	return took
}

// ptKeptCurrent checks that after a failed rotation (of what) the dual role
// still has the current key cur, alone, and its creds give it, live.
func ptKeptCurrent(t *testing.T, c *api.Client, tp *ptType, mount, role, cur, what string) {
	t.Helper()
	ptRoleKeys(t, c, mount, role, cur, "")
	s := readCreds(t, c, mount, role)
	if ptS(s.Data["key_id"]) != cur || !tp.isLive(ptS(s.Data["api_key"])) {
		t.Fatalf("after the failed %s creds give %v (live %v), want the live current key %s",
			what, s.Data["key_id"], tp.isLive(ptS(s.Data["api_key"])), cur)
	}
	ptExactlyLive(t, tp, cur)
}

// ---- sendgrid ----

func ptSendgrid(t *testing.T) *ptType {
	f := sendgridtest.NewServer()
	t.Cleanup(f.Close)
	const subuser = "e2e-subuser"
	seeded := f.RootKeyID()
	tp := &ptType{
		name: "sendgrid", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r sendgridtest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Query: r.Query, Auth: r.Auth, OnBehalfOf: r.OnBehalfOf, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptNotRoots(f.LiveKeys(), func(k sendgridtest.Key) (string, string) { return k.Name, k.ID })
		},
		provider:    map[string]any{"type": "sendgrid", "base_url": f.URL, "api_key": f.RootKey(), "on_behalf_of": subuser},
		rootID:      seeded,
		rootSecrets: []string{f.RootKey()},
		rootLabel:   ptRootLabel(seeded, "key:"),
		dynRole:     map[string]any{"scopes": []string{"mail.send", "stats.read"}},
		dualRole:    map[string]any{"scopes": []string{"mail.send"}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, "/v3/api_keys") },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create auth (Authorization: Bearer <root>)", r.Auth, auth)
			ptEq(t, "create on-behalf-of", r.OnBehalfOf, subuser)
			ptEq(t, "create body name", ptS(r.Body["name"]), ptS(s.Data["key_name"]))
			ptEqList(t, "create body scopes", ptL(r.Body["scopes"]), []string{"mail.send", "stats.read"})
		},
		checkDualCreate: func(t *testing.T, r ptReq, auth string) {
			ptEqList(t, "dual create scopes", ptL(r.Body["scopes"]), []string{"mail.send"})
		},
		isDelete: func(r ptReq, id string) bool {
			return r.at(http.MethodDelete, "/v3/api_keys/"+id) && r.OnBehalfOf == subuser
		},
		isVerify: func(r ptReq, id string) bool {
			return r.is(http.MethodGet, "/v3/scopes", "key:"+id) && r.OnBehalfOf == ""
		},
		verifyPath: "/v3/scopes",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "sendgrid root rotation", seen,
			ptM("GET /v3/scopes with the root", func(r ptReq) bool {
				return r.is("GET", "/v3/scopes", "root") && r.OnBehalfOf == ""
			}),
			ptM("POST /v3/api_keys on the parent account with the root's scopes", func(r ptReq) bool {
				return r.is("POST", "/v3/api_keys", "root") && r.OnBehalfOf == "" &&
					ptVaultRoot(r.Body["name"]) && ptSameSet(ptL(r.Body["scopes"]), sendgridtest.AllScopes)
			}),
			ptM("GET /v3/scopes with the new key", func(r ptReq) bool { return r.is("GET", "/v3/scopes", "key:"+newID) }),
			ptM("DELETE /v3/api_keys/<old> with the new key", func(r ptReq) bool {
				return r.is("DELETE", "/v3/api_keys/"+oldID, "key:"+newID) && r.OnBehalfOf == ""
			}))
	}
	tp.newRoots = func(t *testing.T) []string {
		admins := f.AdminKeys()
		if len(admins) != 1 {
			t.Fatalf("the fake has %d root-capable keys after rotation, want 1", len(admins))
		}
		return admins
	}
	return tp
}

// ---- twilio ----

func ptTwilio(t *testing.T) *ptType {
	f := twiliotest.NewServer()
	t.Cleanup(f.Close)
	sid := f.AccountSID()
	acct := "/2010-04-01/Accounts/" + sid
	fingerprint := func(token string) string {
		sum := sha256.Sum256([]byte(sid + ":" + token))
		return "authtoken-" + hex.EncodeToString(sum[:6])
	}
	perms := []string{"/twilio/messaging/messages/create", "/twilio/messaging/messages/read"}
	const namePrefix = "vault-e2e-twilio-restricted-messaging-dyn-"
	tp := &ptType{
		name: "twilio", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r twiliotest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Query: r.Query, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:     f.IsLive,
		failNext:   f.FailNext,
		liveIssued: func() []string { return ptMap(f.LiveKeys(), func(k twiliotest.Key) string { return k.SID }) },
		provider: map[string]any{"type": "twilio", "base_url": f.URL, "iam_base_url": f.URL, "accounts_base_url": f.URL,
			"account_sid": sid, "auth_token": f.AuthToken()},
		rootID:      fingerprint(f.AuthToken()),
		rootSecrets: []string{f.AuthToken()},
		rootLabel:   func(string) string { return "auth_token" },
		// A restricted key: scopes become the Policy; the name template
		// renders 63 characters, just within Twilio's FriendlyName limit (a
		// longer one is refused at role write).
		dynRole: map[string]any{"scopes": perms, "parameters": map[string]any{"key_type": "restricted"},
			"name_template": "vault-e2e-twilio-restricted-messaging-{{.RoleName}}-{{unix_time}}-{{random 10}}"},
		dualRole: map[string]any{}, // a standard key
		isCreate: func(r ptReq) bool {
			return r.at(http.MethodPost, "/v1/Keys") || r.at(http.MethodPost, acct+"/Keys.json")
		},
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "restricted create path (IAM host)", r.Path, "/v1/Keys")
			ptEq(t, "create auth (Basic AccountSid:AuthToken)", r.Auth, auth)
			ptEq(t, "create form AccountSid", ptS(r.Body["AccountSid"]), sid)
			ptEq(t, "create form KeyType", ptS(r.Body["KeyType"]), "restricted")
			var pol struct {
				Allow []string `json:"allow"`
			}
			if err := json.Unmarshal([]byte(ptS(r.Body["Policy"])), &pol); err != nil {
				t.Errorf("create form Policy is not JSON: %v", err)
			}
			ptEqList(t, "create Policy.allow", pol.Allow, perms)
			name := ptS(r.Body["FriendlyName"])
			if len(name) != 63 || !strings.HasPrefix(name, namePrefix) {
				t.Errorf("FriendlyName %q: want the whole rendered name (63 characters)", name)
			}
			ptEq(t, "creds key_name", ptS(s.Data["key_name"]), name)
			ptEq(t, "creds sid", ptS(s.Data["sid"]), ptS(s.Data["key_id"]))
			ptEq(t, "creds key_type", ptS(s.Data["key_type"]), "restricted")
		},
		checkDualCreate: func(t *testing.T, r ptReq, auth string) {
			ptEq(t, "standard key create path", r.Path, acct+"/Keys.json")
			ptEq(t, "standard key create auth", r.Auth, auth)
			if r.Body["FriendlyName"] == nil || r.Body["Policy"] != nil {
				t.Errorf("standard key create form: %v", r.Body)
			}
		},
		isDelete:   func(r ptReq, id string) bool { return r.at(http.MethodDelete, acct+"/Keys/"+id+".json") },
		isVerify:   func(r ptReq, id string) bool { return r.is(http.MethodGet, acct+"/Applications.json", "key:"+id) },
		verifyPath: acct + "/Applications.json",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "twilio auth token rotation", seen,
			ptM("POST /v1/AuthTokens/Secondary with the primary", func(r ptReq) bool {
				return r.is("POST", "/v1/AuthTokens/Secondary", "auth_token")
			}),
			ptM("GET Account with the secondary", func(r ptReq) bool {
				return r.is("GET", acct+".json", "auth_token:secondary")
			}),
			ptM("POST /v1/AuthTokens/Promote with the secondary", func(r ptReq) bool {
				return r.is("POST", "/v1/AuthTokens/Promote", "auth_token:secondary")
			}))
		for _, r := range seen {
			if r.Method == "DELETE" {
				t.Errorf("rotation must promote, not delete: %s", r)
			}
		}
		if want := fingerprint(f.AuthToken()); newID != want {
			t.Errorf("root_key_id %s is not the new primary's fingerprint %s", newID, want)
		}
	}
	tp.newRoots = func(t *testing.T) []string {
		if sec := f.SecondaryAuthToken(); sec != "" {
			t.Errorf("a secondary auth token is left after the rotation")
		}
		return []string{f.AuthToken()}
	}
	return tp
}

// ---- datadog ----

func ptDatadog(t *testing.T) *ptType {
	f := datadogtest.NewServer()
	t.Cleanup(f.Close)
	seededAPI, seededApp := f.RootAPIKeyID(), f.RootAppKeyID()
	apiLabel, appLabel := ptRootLabel(seededAPI, "key:"), ptRootLabel(seededApp, "key:")
	parse := func(rootID string) (app, apiID string) {
		for _, part := range strings.Split(rootID, ",") {
			k, v, _ := strings.Cut(part, ":")
			if k == "app_key" {
				app = v
			} else if k == "api_key" {
				apiID = v
			}
		}
		return app, apiID
	}
	tp := &ptType{
		name: "datadog", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r datadogtest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Query: r.Query, Auth: r.APIKey + "|" + r.AppKey, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptNotRoots(f.LiveKeys(), func(k datadogtest.Key) (string, string) {
				if k.Kind == "application_key" {
					return k.Name, "app:" + k.ID
				}
				return k.Name, k.ID
			})
		},
		provider:    map[string]any{"type": "datadog", "base_url": f.URL, "api_key": f.RootAPIKey(), "app_key": f.RootAppKey()},
		rootID:      "app_key:" + seededApp + ",api_key:" + seededAPI,
		rootSecrets: []string{f.RootAPIKey(), f.RootAppKey()},
		rootLabel: func(id string) string {
			app, apiID := parse(id)
			return apiLabel(apiID) + "|" + appLabel(app)
		},
		// Dynamic: application keys with scopes; dual: API keys with an attribute.
		dynRole:  map[string]any{"scopes": []string{"dashboards_read", "metrics_read"}, "parameters": map[string]any{"key_kind": "application_key"}},
		dualRole: map[string]any{"parameters": map[string]any{"remote_config_read_enabled": "true"}},
		isCreate: func(r ptReq) bool {
			return r.at(http.MethodPost, "/api/v2/api_keys") || r.at(http.MethodPost, "/api/v2/current_user/application_keys")
		},
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "application key create path", r.Path, "/api/v2/current_user/application_keys")
			ptEq(t, "create auth (DD-API-KEY|DD-APPLICATION-KEY)", r.Auth, auth)
			ptEq(t, "create data.type", ptS(ptGet(r.Body, "data", "type")), "application_keys")
			ptEq(t, "create data.attributes.name", ptS(ptGet(r.Body, "data", "attributes", "name")), ptS(s.Data["key_name"]))
			ptEqList(t, "create data.attributes.scopes", ptL(ptGet(r.Body, "data", "attributes", "scopes")), []string{"dashboards_read", "metrics_read"})
			if id := ptS(s.Data["key_id"]); !strings.HasPrefix(id, "app:") {
				t.Errorf("application key key_id %q lacks the app: prefix", id)
			}
			ptEq(t, "creds key_kind", ptS(s.Data["key_kind"]), "application_key")
		},
		checkDualCreate: func(t *testing.T, r ptReq, auth string) {
			ptEq(t, "API key create path", r.Path, "/api/v2/api_keys")
			ptEq(t, "API key create data.type", ptS(ptGet(r.Body, "data", "type")), "api_keys")
			if v := ptGet(r.Body, "data", "attributes", "remote_config_read_enabled"); v != true {
				t.Errorf("remote_config_read_enabled = %v, want true", v)
			}
		},
		isDelete: func(r ptReq, id string) bool {
			if app, ok := strings.CutPrefix(id, "app:"); ok {
				return r.at(http.MethodDelete, "/api/v2/current_user/application_keys/"+app)
			}
			return r.at(http.MethodDelete, "/api/v2/api_keys/"+id)
		},
		isVerify:   func(r ptReq, id string) bool { return r.is(http.MethodGet, "/api/v1/validate", "key:"+id+"|") },
		verifyPath: "/api/v1/validate",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		oldApp, oldAPI := parse(oldID)
		newApp, newAPI := parse(newID)
		newAuth := "key:" + newAPI + "|key:" + newApp
		// postRoot: a root-made POST to path creating a vault-root- key.
		postRoot := func(path string) func(ptReq) bool {
			return func(r ptReq) bool {
				return r.is("POST", path, "root|root") && ptVaultRoot(ptGet(r.Body, "data", "attributes", "name"))
			}
		}
		ptExpectSeq(t, "datadog root pair rotation", seen,
			ptM("GET the root application key", func(r ptReq) bool {
				return r.is("GET", "/api/v2/current_user/application_keys/"+oldApp, "root|root")
			}),
			ptM("POST an application key", postRoot("/api/v2/current_user/application_keys")),
			ptM("POST an API key", postRoot("/api/v2/api_keys")),
			ptM("GET /api/v2/validate_keys with the new pair", func(r ptReq) bool {
				return r.is("GET", "/api/v2/validate_keys", newAuth)
			}),
			ptM("DELETE the old application key with the new pair", func(r ptReq) bool {
				return r.is("DELETE", "/api/v2/current_user/application_keys/"+oldApp, newAuth)
			}),
			ptM("DELETE the old API key with the new pair", func(r ptReq) bool {
				return r.is("DELETE", "/api/v2/api_keys/"+oldAPI, newAuth)
			}))
	}
	tp.newRoots = func(t *testing.T) []string {
		return ptLiveRoots(t, f.LiveKeys(), 2, func(k datadogtest.Key) (string, string) { return k.Name, k.Secret })
	}
	return tp
}

// ptLiveRoots returns the secrets of the live keys Vault created as roots
// (named vault-root-…), which must number want.
func ptLiveRoots[K any](t *testing.T, keys []K, want int, nameSecret func(K) (string, string)) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		if name, secret := nameSecret(k); strings.HasPrefix(name, "vault-root") {
			out = append(out, secret)
		}
	}
	if len(out) != want {
		t.Errorf("want exactly %d root credential(s) live, have %d", want, len(out))
	}
	return out
}

// ---- cloudflare ----

func ptCloudflare(t *testing.T) *ptType {
	f := cloudflaretest.NewServer()
	t.Cleanup(f.Close)
	seeded := f.RootTokenID()
	policies := `[{"effect":"allow","permission_groups":[{"id":"` + cloudflaretest.PermDNSEdit + `"}],` +
		`"resources":{"com.cloudflare.api.account.zone.0123456789abcdef0123456789abcdef":"*"}}]`
	condition := `{"request_ip":{"in":["127.0.0.0/8"]}}`
	tp := &ptType{
		name: "cloudflare", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r cloudflaretest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Query: r.Query, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptNotRoots(f.LiveKeys(), func(k cloudflaretest.Token) (string, string) { return k.Name, k.ID })
		},
		provider:    map[string]any{"type": "cloudflare", "base_url": f.URL, "api_token": f.RootToken()},
		rootID:      seeded,
		rootSecrets: []string{f.RootToken()},
		rootLabel:   ptRootLabel(seeded, "token:"),
		dynRole:     map[string]any{"parameters": map[string]any{"policies": policies, "condition": condition}},
		dualRole:    map[string]any{"parameters": map[string]any{"policies": policies}},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, "/user/tokens") },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptCreateAuthName(t, r, s, auth, "Authorization: Bearer <root>")
			pols, _ := r.Body["policies"].([]any)
			if len(pols) != 1 {
				t.Fatalf("create policies: %v", r.Body["policies"])
			}
			p0, _ := pols[0].(map[string]any)
			ptEq(t, "policy effect", ptS(p0["effect"]), "allow")
			groups, _ := p0["permission_groups"].([]any)
			if len(groups) != 1 || ptS(ptGet(groups[0].(map[string]any), "id")) != cloudflaretest.PermDNSEdit {
				t.Errorf("policy permission_groups: %v", p0["permission_groups"])
			}
			ptEqList(t, "condition.request_ip.in", ptL(ptGet(r.Body, "condition", "request_ip", "in")), []string{"127.0.0.0/8"})
			exp, err := time.Parse(time.RFC3339, ptS(r.Body["expires_on"]))
			if err != nil {
				t.Fatalf("create expires_on %v: %v", r.Body["expires_on"], err)
			}
			if d := time.Until(exp) - 10*time.Minute; d > 5*time.Second || d < -time.Minute {
				t.Errorf("expires_on %s is not the lease's max TTL (10m) from now", exp)
			}
			got, err := time.Parse(time.RFC3339, ptS(s.Data["expires_at"]))
			if err != nil || !got.Equal(exp) {
				t.Errorf("creds expires_at %v, want %s", s.Data["expires_at"], exp)
			}
		},
		checkDualCreate: ptDualExpiresOn("expires_on"),
		isDelete:        func(r ptReq, id string) bool { return r.at(http.MethodDelete, "/user/tokens/"+id) },
		isVerify:        func(r ptReq, id string) bool { return r.is(http.MethodGet, "/user/tokens/verify", "token:"+id) },
		verifyPath:      "/user/tokens/verify",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "cloudflare root token rotation", seen,
			ptM("GET verify with the root", func(r ptReq) bool { return r.is("GET", "/user/tokens/verify", "root") }),
			ptM("GET the root token's details", func(r ptReq) bool { return r.is("GET", "/user/tokens/"+oldID, "root") }),
			ptM("POST a token with the root's policies, no expiry", func(r ptReq) bool {
				_, exp := r.Body["expires_on"]
				b, _ := json.Marshal(r.Body["policies"])
				return r.is("POST", "/user/tokens", "root") && !exp && ptVaultRoot(r.Body["name"]) &&
					strings.Contains(string(b), cloudflaretest.PermTokensWrite) && strings.Contains(string(b), cloudflaretest.PermDNSEdit)
			}),
			ptM("GET verify with the new token", func(r ptReq) bool {
				return r.is("GET", "/user/tokens/verify", "token:"+newID)
			}),
			ptM("GET the new token's details with itself", func(r ptReq) bool {
				return r.is("GET", "/user/tokens/"+newID, "token:"+newID)
			}),
			ptM("DELETE the old token with the new one", func(r ptReq) bool {
				return r.is("DELETE", "/user/tokens/"+oldID, "token:"+newID)
			}))
		for _, r := range seen {
			if r.Method == "PUT" {
				t.Errorf("root rotation used the roll endpoint: %s", r)
			}
		}
	}
	tp.newRoots = func(t *testing.T) []string {
		return ptLiveRoots(t, f.LiveKeys(), 1, func(k cloudflaretest.Token) (string, string) { return k.Name, k.Value })
	}
	return tp
}

// ---- gitlab ----

func ptGitlab(t *testing.T) *ptType {
	f := gitlabtest.NewServer()
	t.Cleanup(f.Close)
	proj := strconv.Itoa(gitlabtest.DefaultProjectID)
	tokens := "/api/v4/projects/" + proj + "/access_tokens"
	today := func() time.Time { return time.Now().UTC().Truncate(24 * time.Hour) }
	day := func(d time.Time) string { return d.Format("2006-01-02") }
	tp := &ptType{
		name: "gitlab", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r gitlabtest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Query: r.Query, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptMap(f.LiveKeys(), func(k gitlabtest.Token) string { return strconv.FormatInt(k.ID, 10) })
		},
		provider: map[string]any{"type": "gitlab", "base_url": f.URL, "token": f.RootToken(),
			"target_type": "project", "target_id": proj},
		rootID:      f.RootID(),
		rootSecrets: []string{f.RootToken()},
		rootLabel:   func(string) string { return "root" },
		dynRole: map[string]any{"scopes": []string{"read_api", "read_repository"},
			"parameters": map[string]any{"access_level": "30", "description": "e2e dynamic"}},
		dualRole: map[string]any{"parameters": map[string]any{"expires_in_days": "7"}},
		isCreate: func(r ptReq) bool {
			return r.Method == http.MethodPost && (r.Path == tokens || strings.HasSuffix(r.Path, "/personal_access_tokens"))
		},
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptEq(t, "create path", r.Path, tokens)
			ptCreateAuthName(t, r, s, auth, "PRIVATE-TOKEN <root>")
			ptEqList(t, "create scopes", ptL(r.Body["scopes"]), []string{"read_api", "read_repository"})
			ptEq(t, "create access_level", ptS(r.Body["access_level"]), "30")
			ptEq(t, "create description", ptS(r.Body["description"]), "e2e dynamic")
			// The lease's max TTL (10m) rounded up to the next midnight UTC.
			want := day(time.Now().Add(10*time.Minute).UTC().Truncate(24*time.Hour).AddDate(0, 0, 1))
			if got := ptS(r.Body["expires_at"]); got != want && got != day(today().AddDate(0, 0, 1)) {
				t.Errorf("create expires_at %s, want %s", got, want)
			}
			if got := ptS(s.Data["expires_at"]); !strings.HasPrefix(got, ptS(r.Body["expires_at"])+"T00:00:00") {
				t.Errorf("creds expires_at %s, want midnight of %s", got, r.Body["expires_at"])
			}
			ptEq(t, "creds target_type", ptS(s.Data["target_type"]), "project")
			ptEq(t, "creds target_id", ptS(s.Data["target_id"]), proj)
			ptEq(t, "creds access_level", ptS(s.Data["access_level"]), "30")
			ptEq(t, "creds scopes", ptS(s.Data["scopes"]), "read_api,read_repository")
		},
		checkDualCreate: func(t *testing.T, r ptReq, auth string) {
			ptEqList(t, "dual create scopes (default)", ptL(r.Body["scopes"]), []string{"read_api"})
			// Vault asks for an expiry (its latest retire time plus 24h), so
			// expires_in_days does not apply; GitLab's date is that instant
			// rounded up to midnight UTC.
			at := time.Now().UTC().Add(ptDualLifetime)
			want := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
			if got := ptS(r.Body["expires_at"]); got != day(want) && got != day(want.AddDate(0, 0, 1)) {
				t.Errorf("dual create expires_at %s, want %s (about %s from now, rounded up to a date)", got, day(want), ptDualLifetime)
			}
		},
		isDelete: func(r ptReq, id string) bool { return r.at(http.MethodDelete, tokens+"/"+id) },
		isVerify: func(r ptReq, id string) bool {
			return r.is(http.MethodGet, "/api/v4/personal_access_tokens/self", "key:"+id)
		},
		verifyPath: "/api/v4/personal_access_tokens/self",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "gitlab root roll", seen,
			ptM("GET self with the root (its lifetime)", func(r ptReq) bool {
				return r.is("GET", "/api/v4/personal_access_tokens/self", "root")
			}),
			ptM("POST self/rotate with the root and an explicit expires_at (same 30-day lifetime)", func(r ptReq) bool {
				return r.is("POST", "/api/v4/personal_access_tokens/self/rotate", "root") &&
					ptS(r.Body["expires_at"]) == day(today().AddDate(0, 0, 30))
			}),
			ptM("GET self with the new token", func(r ptReq) bool {
				return r.is("GET", "/api/v4/personal_access_tokens/self", "root")
			}))
		if n := len(ptFilter(seen, func(r ptReq) bool { return strings.HasSuffix(r.Path, "/rotate") })); n != 1 {
			t.Errorf("the roll was sent %d times; it must be sent once", n)
		}
		for _, r := range seen {
			if r.Method == "DELETE" {
				t.Errorf("a roll needs no delete: %s", r)
			}
		}
		ptEq(t, "root_key_id", newID, f.RootID())
	}
	tp.newRoots = func(t *testing.T) []string { return []string{f.RootToken()} }
	// The fake, like GitLab, sends RateLimit-Reset (the end of the rate-limit
	// window) on every answer; 503-once checks that a 503 is not held back
	// until then. The rotation-failure steps use a 502, a create that is not
	// sent again.
	tp.rootRoll = true
	tp.serverError = http.StatusBadGateway
	// User target: personal access tokens of a user, with the admin root.
	tp.extra = func(t *testing.T, c *api.Client, mount string) {
		user := strconv.Itoa(gitlabtest.DefaultUserID)
		write(t, c, mount+"/providers/pu", map[string]any{"type": "gitlab", "base_url": f.URL, "token": f.RootToken(),
			"target_type": "user", "target_id": user})
		write(t, c, mount+"/roles/user-dyn", map[string]any{"provider": "pu", "mode": "dynamic", "ttl": "5m", "max_ttl": "10m",
			"scopes": "read_api"})
		mark := len(tp.reqs())
		s := readCreds(t, c, mount, "user-dyn")
		id := ptS(s.Data["key_id"])
		seen := tp.reqs()[mark:]
		ptExpectSeq(t, "user target create", seen, ptM("POST /users/<id>/personal_access_tokens", func(r ptReq) bool {
			return r.is("POST", "/api/v4/users/"+user+"/personal_access_tokens", "root") &&
				ptS(r.Body["name"]) == ptS(s.Data["key_name"])
		}))
		if !f.IsLive(ptS(s.Data["api_key"])) {
			t.Fatalf("personal access token not live")
		}
		mark = len(tp.reqs())
		if err := c.Sys().Revoke(s.LeaseID); err != nil {
			t.Fatal(err)
		}
		ptExpectSeq(t, "user target revoke", tp.reqs()[mark:], ptM("DELETE /personal_access_tokens/<id>", func(r ptReq) bool {
			return r.is("DELETE", "/api/v4/personal_access_tokens/"+id, "root")
		}))
		if f.IsLive(ptS(s.Data["api_key"])) {
			t.Fatalf("personal access token live after revoke")
		}
		if _, err := c.Logical().Delete(mount + "/roles/user-dyn"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Logical().Delete(mount + "/providers/pu"); err != nil {
			t.Fatal(err)
		}
	}
	return tp
}

// ---- grafana ----

func ptGrafana(t *testing.T) *ptType {
	f := grafanatest.NewServer()
	t.Cleanup(f.Close)
	seeded := f.RootTokenID()
	keys := "/api/serviceaccounts/" + strconv.Itoa(grafanatest.KeyAccountID) + "/tokens"
	roots := "/api/serviceaccounts/" + strconv.Itoa(grafanatest.RootAccountID) + "/tokens"
	tp := &ptType{
		name: "grafana", url: f.URL,
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r grafanatest.Recorded) ptReq {
				return ptReq{Method: r.Method, Path: r.Path, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:   f.IsLive,
		failNext: f.FailNext,
		liveIssued: func() []string {
			return ptMap(f.LiveKeysOn(grafanatest.KeyAccountID), func(k grafanatest.Token) string { return strconv.FormatInt(k.ID, 10) })
		},
		provider: map[string]any{"type": "grafana", "base_url": f.URL, "token": f.RootToken(),
			"service_account_id": strconv.Itoa(grafanatest.KeyAccountID), "root_service_account_id": strconv.Itoa(grafanatest.RootAccountID),
			"token_id": seeded},
		rootID:      seeded,
		rootSecrets: []string{f.RootToken()},
		rootLabel:   ptRootLabel(seeded, "token:"),
		dynRole:     map[string]any{}, // grafana takes neither scopes nor parameters
		dualRole:    map[string]any{},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, keys) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptCreateAuthName(t, r, s, auth, "Authorization: Bearer <root>")
			ttl, err := strconv.Atoi(ptS(r.Body["secondsToLive"]))
			if err != nil || ttl < 590 || ttl > 601 {
				t.Errorf("create secondsToLive %v, want the lease's max TTL (600)", r.Body["secondsToLive"])
			}
			ptEq(t, "creds service_account_id", ptS(s.Data["service_account_id"]), strconv.Itoa(grafanatest.KeyAccountID))
			if ptS(s.Data["expires_at"]) == "" {
				t.Errorf("creds lack expires_at")
			}
		},
		checkDualCreate: func(t *testing.T, r ptReq, auth string) {
			ttl, err := strconv.Atoi(ptS(r.Body["secondsToLive"]))
			if d := time.Duration(ttl)*time.Second - ptDualLifetime; err != nil || d < -time.Minute || d > time.Minute {
				t.Errorf("dual create secondsToLive %v, want about %s", r.Body["secondsToLive"], ptDualLifetime)
			}
		},
		isDelete:   func(r ptReq, id string) bool { return r.at(http.MethodDelete, keys+"/"+id) },
		isVerify:   func(r ptReq, id string) bool { return r.is(http.MethodGet, "/api/org", "token:"+id) },
		verifyPath: "/api/org",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "grafana root token rotation", seen,
			ptM("POST a non-expiring token on the root's account", func(r ptReq) bool {
				_, ttl := r.Body["secondsToLive"]
				return r.is("POST", roots, "root") && !ttl && ptVaultRoot(r.Body["name"])
			}),
			ptM("GET the root account's tokens with the new token", func(r ptReq) bool {
				return r.is("GET", roots, "token:"+newID)
			}),
			ptM("DELETE the old token with the new one", func(r ptReq) bool {
				return r.is("DELETE", roots+"/"+oldID, "token:"+newID)
			}))
	}
	tp.newRoots = func(t *testing.T) []string {
		return ptOneRoot(t, f.LiveKeysOn(grafanatest.RootAccountID), "token on the root account",
			func(k grafanatest.Token) string { return k.Secret })
	}
	tp.afterRoot = func(t *testing.T, p map[string]any, newID string) {
		ptEq(t, "provider token_id after rotation", ptS(p["token_id"]), newID)
	}
	return tp
}

// ---- openai ----

func ptOpenAI(t *testing.T) *ptType {
	f := openaitest.NewServer()
	t.Cleanup(f.Close)
	seeded := f.RootKeyID()
	accounts := "/v1/organization/projects/" + openaitest.DefaultProjectID + "/service_accounts"
	tp := &ptType{
		name: "openai", url: f.URL, baseSuffix: "/v1",
		reqs: func() []ptReq {
			return ptMap(f.Requests(), func(r openaitest.Recorded) ptReq {
				q := url.Values{}
				for k, v := range r.Query {
					q.Set(k, v)
				}
				return ptReq{Method: r.Method, Path: r.Path, Query: q, Auth: r.Auth, Body: r.Body}
			})
		},
		isLive:     f.IsLive,
		failNext:   f.FailNext,
		liveIssued: func() []string { return ptMap(f.LiveKeys(), func(k openaitest.ServiceAccount) string { return k.ID }) },
		// No admin_key_id: Vault finds the root's id by its redacted value.
		provider:    map[string]any{"type": "openai", "base_url": f.URL + "/v1", "admin_key": f.RootKey(), "project_id": openaitest.DefaultProjectID},
		rootID:      seeded,
		rootSecrets: []string{f.RootKey()},
		rootLabel:   ptRootLabel(seeded, "admin:"),
		dynRole:     map[string]any{},
		dualRole:    map[string]any{},
		isCreate:    func(r ptReq) bool { return r.at(http.MethodPost, accounts) },
		checkCreate: func(t *testing.T, r ptReq, s *api.Secret, auth string) {
			t.Helper()
			ptCreateAuthName(t, r, s, auth, "Authorization: Bearer <admin key>")
			if len(r.Body) != 1 {
				t.Errorf("create body has more than a name: %v", r.Body)
			}
			ptEq(t, "creds service_account_id", ptS(s.Data["service_account_id"]), ptS(s.Data["key_id"]))
			ptEq(t, "creds project_id", ptS(s.Data["project_id"]), openaitest.DefaultProjectID)
			if !strings.HasPrefix(ptS(s.Data["api_key_id"]), "key_") {
				t.Errorf("creds api_key_id %v", s.Data["api_key_id"])
			}
		},
		isDelete:   func(r ptReq, id string) bool { return r.at(http.MethodDelete, accounts+"/"+id) },
		isVerify:   func(r ptReq, id string) bool { return r.is(http.MethodGet, "/v1/models", "key:"+id) },
		verifyPath: "/v1/models",
	}
	tp.checkRoot = func(t *testing.T, seen []ptReq, oldID, newID string) {
		ptExpectSeq(t, "openai admin key rotation", seen,
			ptM("GET admin_api_keys with the root (find its id)", func(r ptReq) bool {
				return r.is("GET", "/v1/organization/admin_api_keys", "root")
			}),
			ptM("POST admin_api_keys", func(r ptReq) bool {
				return r.is("POST", "/v1/organization/admin_api_keys", "root") && ptVaultRoot(r.Body["name"])
			}),
			ptM("GET admin_api_keys?limit=1 with the new key", func(r ptReq) bool {
				return r.is("GET", "/v1/organization/admin_api_keys", "admin:"+newID) && r.Query.Get("limit") == "1"
			}),
			ptM("DELETE the old admin key with the new one", func(r ptReq) bool {
				return r.is("DELETE", "/v1/organization/admin_api_keys/"+oldID, "admin:"+newID)
			}))
	}
	tp.newRoots = func(t *testing.T) []string {
		return ptOneRoot(t, f.LiveAdminKeys(), "admin key", func(k openaitest.AdminKey) string { return k.Value })
	}
	tp.afterRoot = func(t *testing.T, p map[string]any, newID string) {
		ptEq(t, "provider admin_key_id after rotation", ptS(p["admin_key_id"]), newID)
	}
	return tp
}

// ---- 4. bad type-specific input ----

// TestProviderTypesBadInput: type-specific bad input is a 400 that names
// the field, and nothing is stored.
func TestProviderTypesBadInput(t *testing.T) {
	c := sharedVlt.client
	sid := "AC" + strings.Repeat("0123456789abcdef", 2)
	keySID := "SK" + strings.Repeat("0123456789abcdef", 2)
	cases := []struct {
		name string
		data map[string]any
		want []string
	}{
		{"datadog without site or base_url", map[string]any{"type": "datadog", "api_key": "k0123456789", "app_key": "a0123456789"},
			[]string{"site"}},
		{"datadog unknown site", map[string]any{"type": "datadog", "site": "datadoghq.moon", "api_key": "k0123456789", "app_key": "a0123456789"},
			[]string{"site", "datadoghq.moon"}},
		{"gitlab target_id not a number", map[string]any{"type": "gitlab", "base_url": "http://127.0.0.1:9", "token": "glpat-x",
			"target_type": "project", "target_id": "group/project"}, []string{"target_id"}},
		{"grafana service_account_id not a number", map[string]any{"type": "grafana", "base_url": "http://127.0.0.1:9", "token": "glsa_x",
			"service_account_id": "keys"}, []string{"service_account_id"}},
		{"twilio with both auth forms", map[string]any{"type": "twilio", "account_sid": sid, "auth_token": "tok0123456789",
			"api_key_sid": keySID, "api_key_secret": "sec0123456789"}, []string{"auth_token", "api_key_sid"}},
		{"twilio with neither auth form", map[string]any{"type": "twilio", "account_sid": sid}, []string{"auth_token"}},
		{"twilio api_key_sid without its secret", map[string]any{"type": "twilio", "account_sid": sid, "api_key_sid": keySID},
			[]string{"api_key_secret"}},
		{"http template that does not parse", map[string]any{"type": "http", "base_url": "http://127.0.0.1:9", "root_secret": "r0123456789",
			"create_path": "/v1/keys", "create_body": "{\n  \"name\": {{.Key.Name}\n}",
			"verify_path": "/v1/whoami", "revoke_path": "/v1/keys/{{.Key.ID}}", "key_id_path": "id", "key_secret_path": "key"},
			[]string{"create_body", "line 2"}},
		{"http template with a variable the request lacks", map[string]any{"type": "http", "base_url": "http://127.0.0.1:9", "root_secret": "r0123456789",
			"create_path": "/v1/keys", "create_body": "{\"name\": {{.Key.Name}},\n \"s\": {{.Key.Secret}}}",
			"verify_path": "/v1/whoami", "revoke_path": "/v1/keys/{{.Key.ID}}", "key_id_path": "id", "key_secret_path": "key"},
			[]string{"create_body", "line 2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := "thirdparty/providers/" + uniq("bad")
			_, err := c.Logical().Write(path, tc.data)
			ptWant400(t, err, tc.want...)
			if s, _ := c.Logical().Read(path); s != nil {
				t.Errorf("a rejected write stored %s", path)
			}
		})
	}
}

// ---- helpers ----

// ptFaultProxy forwards to a fake and answers the requests the armed
// predicate picks with status instead.
type ptFaultProxy struct {
	*httptest.Server
	mu     sync.Mutex
	pick   func(*http.Request) bool
	failed int
}

func ptNewFaultProxy(t *testing.T, target string, status int) *ptFaultProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &ptFaultProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		hit := p.pick != nil && p.pick(r)
		if hit {
			p.failed++
		}
		p.mu.Unlock()
		if hit {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"message":"injected by the e2e fault proxy"}`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// ptRequestCredentials lists the credentials a request carries (bearer
// tokens, API-key headers, a Basic password).
func ptRequestCredentials(r *http.Request) []string {
	var out []string
	for _, h := range []string{"Authorization", "DD-API-KEY", "DD-APPLICATION-KEY", "PRIVATE-TOKEN"} {
		v := r.Header.Get(h)
		if v == "" {
			continue
		}
		out = append(out, v)
		if tok, ok := strings.CutPrefix(v, "Bearer "); ok {
			out = append(out, tok)
		}
	}
	if _, pass, ok := r.BasicAuth(); ok {
		out = append(out, pass)
	}
	if params, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Digest "); ok {
		out = append(out, ptDigestUser(params))
	}
	return out
}

func (p *ptFaultProxy) arm(pick func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pick = pick
}

func (p *ptFaultProxy) failures() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// ptMatcher names a predicate for ptExpectSeq.
type ptMatcher struct {
	what string
	ok   func(ptReq) bool
}

func ptM(what string, ok func(ptReq) bool) ptMatcher { return ptMatcher{what, ok} }

// ptExpectSeq checks that reqs contain requests matching ms, in that order.
func ptExpectSeq(t *testing.T, what string, reqs []ptReq, ms ...ptMatcher) {
	t.Helper()
	i := 0
	for _, m := range ms {
		for i < len(reqs) && !m.ok(reqs[i]) {
			i++
		}
		if i == len(reqs) {
			t.Errorf("%s: no request %q (in order); the fake saw:\n%s", what, m.what, ptDump(reqs))
			return
		}
		i++
	}
}

func ptFilter(reqs []ptReq, ok func(ptReq) bool) []ptReq {
	var out []ptReq
	for _, r := range reqs {
		if ok(r) {
			out = append(out, r)
		}
	}
	return out
}

func ptDump(reqs []ptReq) string {
	if len(reqs) == 0 {
		return "  (no requests)"
	}
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	return b.String()
}

// ptRoleKeys checks a dual role's current and previous key ids.
func ptRoleKeys(t *testing.T, c *api.Client, mount, role, current, previous string) {
	t.Helper()
	r := read(t, c, mount+"/roles/"+role).Data
	if got := ptS(r["current_key_id"]); got != current {
		t.Errorf("role current_key_id = %q, want %q", got, current)
	}
	if got := ptS(r["previous_key_id"]); got != previous {
		t.Errorf("role previous_key_id = %q, want %q", got, previous)
	}
}

// ptExactlyLive checks that the fake's live non-root keys are exactly ids
// (what Vault references): nothing orphaned, nothing lost.
func ptExactlyLive(t *testing.T, tp *ptType, ids ...string) {
	t.Helper()
	live := tp.liveIssued()
	sort.Strings(live)
	want := append([]string(nil), ids...)
	sort.Strings(want)
	if !slices.Equal(live, want) {
		t.Errorf("live keys at the fake %v, want exactly the ones Vault references %v", live, want)
	}
}

// ptErrNamesStatus checks a provider error: it names the provider and the
// HTTP status and carries none of the given secrets.
func ptErrNamesStatus(t *testing.T, err error, provider, status string, secrets ...string) {
	t.Helper()
	msg := err.Error()
	if !strings.Contains(msg, provider) || !strings.Contains(msg, status) {
		t.Errorf("error %q does not name the provider %q and status %s", msg, provider, status)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error carries a secret")
		}
	}
}

func ptNoSecretIn(t *testing.T, what string, data map[string]any, secrets ...string) {
	t.Helper()
	b, _ := json.Marshal(data)
	for _, s := range secrets {
		if s != "" && strings.Contains(string(b), s) {
			t.Errorf("%s contains a secret", what)
		}
	}
}

func ptS(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// ptL turns a decoded JSON list into strings.
func ptL(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, ptS(x))
	}
	return out
}

func ptGet(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func ptEq(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func ptEqList(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func ptSameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// at: r is a method request to path.
func (r ptReq) at(method, path string) bool { return r.Method == method && r.Path == path }

// is: r is a method request to path, authenticated as auth.
func (r ptReq) is(method, path, auth string) bool { return r.at(method, path) && r.Auth == auth }

// ptVaultRoot: a key name is one Vault gives the roots it creates.
func ptVaultRoot(name any) bool { return strings.HasPrefix(ptS(name), "vault-root-") }

// ptMap returns f of each element of in.
func ptMap[T, U any](in []T, f func(T) U) []U {
	var out []U
	for _, x := range in {
		out = append(out, f(x))
	}
	return out
}

// ptNotRoots returns the ids of the keys that are not roots Vault created
// (named vault-root…), the complement of ptLiveRoots.
func ptNotRoots[K any](keys []K, nameID func(K) (string, string)) []string {
	var out []string
	for _, k := range keys {
		if name, id := nameID(k); !strings.HasPrefix(name, "vault-root") {
			out = append(out, id)
		}
	}
	return out
}

// ptOneRoot returns the secret of the one live root credential, what
// naming it in the failure.
func ptOneRoot[K any](t *testing.T, live []K, what string, secret func(K) string) []string {
	t.Helper()
	if len(live) != 1 {
		t.Fatalf("want one live %s, have %d", what, len(live))
	}
	return []string{secret(live[0])}
}

// ptRootLabel is a fake's Auth label of a root: "root" for the seeded one,
// prefix+id for one Vault created.
func ptRootLabel(seeded, prefix string) func(id string) string {
	return func(id string) string {
		if id == seeded {
			return "root"
		}
		return prefix + id
	}
}

// ptCreateAuthName checks a create's credential (scheme describes how it is
// sent) and that it names the key as the creds do.
func ptCreateAuthName(t *testing.T, r ptReq, s *api.Secret, auth, scheme string) {
	t.Helper()
	ptEq(t, "create auth ("+scheme+")", r.Auth, auth)
	ptEq(t, "create name", ptS(r.Body["name"]), ptS(s.Data["key_name"]))
}

// ptDualLifetime is the provider-side lifetime Vault asks for a dual key of
// the runner's role (rotation_period 1h, overlap 10m): its latest retire
// time plus the 24h margin (see docs/api/roles.md#expiry).
const ptDualLifetime = time.Hour + 10*time.Minute + 24*time.Hour

// ptNear reports whether got is want give or take a minute (the create
// ran moments before the check).
func ptNear(got, want time.Time) bool {
	d := got.Sub(want)
	return d > -time.Minute && d < time.Minute
}

// ptDualExpiresOn checks that a dual key's create asked for ptDualLifetime
// in the RFC 3339 field.
func ptDualExpiresOn(field string) func(t *testing.T, r ptReq, auth string) {
	return ptDualExpiry(field, 0, func(v any) (time.Time, bool) {
		at, err := time.Parse(time.RFC3339, ptS(v))
		return at, err == nil
	})
}

// ptWant400 checks that err is a 400 whose message names every want, and
// returns the message.
func ptWant400(t *testing.T, err error, want ...string) string {
	t.Helper()
	re, ok := err.(*api.ResponseError)
	if !ok || re.StatusCode != 400 {
		t.Fatalf("want a 400, got %v", err)
	}
	msg := strings.Join(re.Errors, "; ")
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not name %q", msg, w)
		}
	}
	return msg
}

// ptDualExpiry checks that a dual key's create asked for ptDualLifetime in
// field, decoded by at into the expiry it means (false: unreadable), give or
// take slack (a type that counts in whole days rounds up).
func ptDualExpiry(field string, slack time.Duration, at func(v any) (time.Time, bool)) func(t *testing.T, r ptReq, auth string) {
	return func(t *testing.T, r ptReq, auth string) {
		want := time.Now().Add(ptDualLifetime)
		got, ok := at(r.Body[field])
		if !ok || got.Before(want.Add(-time.Minute)) || got.After(want.Add(slack+time.Minute)) {
			t.Errorf("a dual key's create has %s %v, want about %s from now", field, r.Body[field], ptDualLifetime)
		}
	}
}

// ptFromNow reads a number of units from now.
func ptFromNow(unit time.Duration) func(v any) (time.Time, bool) {
	return func(v any) (time.Time, bool) {
		n, ok := ptNumber(v)
		return time.Now().Add(time.Duration(n) * unit), ok
	}
}

// ptNumber reads a number of a request body: a JSON number (a float64, or
// a json.Number where the fake decodes with UseNumber) or a form value.
func ptNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		return i, err == nil
	}
	return 0, false
}
