//go:build e2e

package e2e

// Acceptance of the templated HTTP provider (type=http): a demo provider of
// its own, configured only through vault writes with the first worked
// example of docs/providers/http.md (read from the page itself, so the test
// follows the documentation), driven end to end: dynamic creds, dual
// rotation, root rotation.

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestHTTPTypeDemoExample(t *testing.T) {
	c := sharedVlt.client
	// A demo provider of its own: rotating its admin key must not break the
	// shared one other tests use.
	d, err := startDemo("httptype")
	if err != nil {
		t.Fatal(err)
	}
	issued.add(d.AdminKey)
	mount := uniq("httptype")
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Sys().Unmount(mount); err != nil {
			t.Logf("unmount %s: %v", mount, err)
		}
	})

	name, fields := htDocExample(t)
	// The only values that differ from the page: where this demo listens,
	// and its admin key.
	fields["base_url"] = d.URL
	fields["root_secret"] = d.AdminKey
	for _, f := range []string{"type", "create_path", "create_body", "verify_path", "revoke_path", "list_path",
		"root_create_path", "root_verify_path", "root_verify_id_path", "root_revoke_path"} {
		if fields[f] == nil {
			t.Fatalf("the worked example lacks %s; parsed %v", f, keysOf(fields))
		}
	}
	provPath := mount + "/providers/" + name
	write(t, c, provPath, fields)

	initial := htAdminKeys(t, d, "")
	if len(initial) != 1 {
		t.Fatalf("demo has %d admin keys, want the initial one", len(initial))
	}
	initialID := initial[0].ID
	p := read(t, c, provPath).Data
	if got := ptS(p["root_key_id"]); got != initialID {
		t.Errorf("root_key_id = %q, want the admin key's id %q (asked of whoami through root_verify_id_path)", got, initialID)
	}
	if got := ptS(p["create_body"]); got != fields["create_body"] {
		t.Errorf("templates are not sensitive: create_body reads back %q", got)
	}
	ptNoSecretIn(t, "provider read", p, d.AdminKey)
	if _, ok := p["root_secret"]; ok {
		t.Errorf("provider read returns root_secret")
	}

	// Dynamic: the documented create, whoami works, lease revoke deletes.
	write(t, c, mount+"/roles/dyn", map[string]any{"provider": name, "mode": "dynamic", "ttl": "5m", "max_ttl": "10m", "scopes": "read"})
	t.Run("dynamic", func(t *testing.T) {
		before := htStats(t, d)
		s := readCreds(t, c, mount, "dyn")
		key, id := ptS(s.Data["api_key"]), ptS(s.Data["key_id"])
		htStatsDelta(t, d, before, map[string]int{"POST /v1/keys": 1})
		if got := d.whoami(t, key); got != http.StatusOK {
			t.Fatalf("whoami with the issued key: %d", got)
		}
		k := htKey(t, d, id)
		if k.State != "live" || k.Kind != "key" || k.Name != ptS(s.Data["key_name"]) {
			t.Fatalf("demo inspection of the key: %+v; creds key_name %v", k, s.Data["key_name"])
		}
		if !slices.Equal(k.Scopes, []string{"read"}) {
			t.Errorf("key scopes %v, want [read] (the role's scopes through {{.Scopes}})", k.Scopes)
		}
		if dev := time.Until(k.ExpiresAt) - 10*time.Minute; dev > 5*time.Second || dev < -time.Minute {
			t.Errorf("key expires %s: not the lease's max TTL (10m) from now", k.ExpiresAt)
		}
		if got, err := time.Parse(time.RFC3339, ptS(s.Data["expires_at"])); err != nil || !got.Equal(k.ExpiresAt) {
			t.Errorf("creds expires_at %v, the demo says %s (key_expires_path=expires_at)", s.Data["expires_at"], k.ExpiresAt)
		}
		before = htStats(t, d)
		if err := c.Sys().Revoke(s.LeaseID); err != nil {
			t.Fatalf("lease revoke: %v", err)
		}
		htStatsDelta(t, d, before, map[string]int{"DELETE /v1/keys/{id}": 1})
		if got := d.whoami(t, key); got != http.StatusUnauthorized {
			t.Fatalf("whoami after the lease revoke: %d, want 401", got)
		}
		if k := htKey(t, d, id); k.State != "revoked" {
			t.Fatalf("inspection after revoke: %s, want revoked", k.State)
		}
	})

	// The demo API takes no options: role parameters are a 400 naming them.
	t.Run("parameters-rejected", func(t *testing.T) {
		before := htStats(t, d)
		_, err := c.Logical().Write(mount+"/roles/params", map[string]any{"provider": name, "mode": "dynamic", "parameters": map[string]any{"team": "x"}})
		if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "parameters") || !strings.Contains(err.Error(), "team") {
			t.Fatalf("writing a role with a parameter the templates do not use: %v, want a 400 naming it", err)
		}
		if s, err := c.Logical().Read(mount + "/roles/params"); err != nil || s != nil {
			t.Fatalf("the refused role was stored: %v %v", s, err)
		}
		htStatsDelta(t, d, before, map[string]int{})
	})

	// Dual: rotate (create + verify with the new key), overlap, revoke_previous.
	cur := ""
	t.Run("dual", func(t *testing.T) {
		write(t, c, mount+"/roles/dual", map[string]any{"provider": name, "mode": "dual", "ttl": "5m",
			"rotation_period": "1h", "overlap": "10m", "scopes": "read,write"})
		a := readCreds(t, c, mount, "dual")
		ka, ida := ptS(a.Data["api_key"]), ptS(a.Data["key_id"])
		if d.whoami(t, ka) != http.StatusOK {
			t.Fatalf("whoami with the dual key")
		}
		// Expiry: the key's latest retire time (1h + 10m) plus 24h.
		if k := htKey(t, d, ida); !slices.Equal(k.Scopes, []string{"read", "write"}) || !ptNear(k.ExpiresAt, time.Now().Add(ptDualLifetime)) {
			t.Errorf("dual key at the demo: scopes %v expires %s; want [read write] and about %s from now", k.Scopes, k.ExpiresAt, ptDualLifetime)
		}

		before := htStats(t, d)
		rot := write(t, c, mount+"/rotate-role/dual", map[string]any{})
		idb := ptS(rot.Data["key_id"])
		htStatsDelta(t, d, before, map[string]int{"POST /v1/keys": 1, "GET /v1/whoami": 1})
		b := readCreds(t, c, mount, "dual")
		kb := ptS(b.Data["api_key"])
		if ptS(b.Data["key_id"]) != idb || kb == ka {
			t.Fatalf("creds after rotate-role: %v, want %s", b.Data["key_id"], idb)
		}
		if d.whoami(t, ka) != http.StatusOK || d.whoami(t, kb) != http.StatusOK {
			t.Fatalf("during the overlap both keys must work")
		}
		if k := htKey(t, d, idb); k.Uses < 1 {
			t.Errorf("the new key was never used to verify it before promotion: %+v", k)
		}

		rot = write(t, c, mount+"/rotate-role/dual", map[string]any{"revoke_previous": true})
		cur = ptS(rot.Data["key_id"])
		for _, id := range []string{ida, idb} {
			if k := htKey(t, d, id); k.State != "revoked" {
				t.Errorf("revoke_previous=true: key %s is %s, want revoked", id, k.State)
			}
		}
		if d.whoami(t, ka) != http.StatusUnauthorized || d.whoami(t, kb) != http.StatusUnauthorized {
			t.Errorf("revoked keys still answer whoami")
		}
		cs := readCreds(t, c, mount, "dual")
		if ptS(cs.Data["key_id"]) != cur || d.whoami(t, ptS(cs.Data["api_key"])) != http.StatusOK {
			t.Fatalf("creds after revoke_previous: %v, want working %s", cs.Data["key_id"], cur)
		}
		htOnlyLiveKeys(t, d, cur)
	})

	// Root rotation: create, verify with the new admin key (and its id),
	// store, delete the old one with the new one.
	t.Run("rotate-root", func(t *testing.T) {
		before := htStats(t, d)
		resp := write(t, c, mount+"/rotate-root/"+name, map[string]any{})
		ptNoSecretIn(t, "rotate-root response", resp.Data, d.AdminKey)
		for _, w := range resp.Warnings {
			t.Errorf("rotate-root warning: %s", w)
		}
		newID := ptS(resp.Data["root_key_id"])
		if prev := ptS(resp.Data["previous_root_key_id"]); prev != initialID {
			t.Errorf("previous_root_key_id %q, want %q", prev, initialID)
		}
		htStatsDelta(t, d, before, map[string]int{"POST /v1/admin-keys": 1, "GET /v1/whoami": 1, "DELETE /v1/admin-keys/{id}": 1})
		if got := d.whoami(t, d.AdminKey); got != http.StatusUnauthorized {
			t.Errorf("whoami with the old admin key after rotate-root: %d, want 401", got)
		}
		live := htAdminKeys(t, d, "live")
		if len(live) != 1 || live[0].ID != newID || !strings.HasPrefix(live[0].Name, "vault-root-") {
			t.Fatalf("live admin keys after rotate-root: %+v, want only %s named by Vault", live, newID)
		}
		if k := htKey(t, d, initialID); k.State != "revoked" {
			t.Errorf("the initial admin key is %s, want revoked", k.State)
		}
		p := read(t, c, provPath).Data
		if ptS(p["root_key_id"]) != newID || ptS(p["last_root_rotation_error"]) != "" {
			t.Errorf("provider after rotate-root: root_key_id %v (want %s), last error %q", p["root_key_id"], newID, p["last_root_rotation_error"])
		}

		// The new root works: dynamic creds (create and revoke) and a rotation.
		s := readCreds(t, c, mount, "dyn")
		key := ptS(s.Data["api_key"])
		if d.whoami(t, key) != http.StatusOK {
			t.Fatalf("a key issued with the new root does not work")
		}
		if err := c.Sys().Revoke(s.LeaseID); err != nil {
			t.Fatalf("revoke with the new root: %v", err)
		}
		if d.whoami(t, key) != http.StatusUnauthorized {
			t.Fatalf("revoke with the new root left the key working")
		}
		rot := write(t, c, mount+"/rotate-role/dual", map[string]any{"revoke_previous": true})
		old := cur
		cur = ptS(rot.Data["key_id"])
		if k := htKey(t, d, old); k.State != "revoked" {
			t.Errorf("rotate-role with the new root did not revoke %s", old)
		}
		htOnlyLiveKeys(t, d, cur)
		// The new admin key authenticated all of this.
		if k := htKey(t, d, newID); k.Uses < 3 {
			t.Errorf("new admin key uses %d: it should have made the calls since the rotation", k.Uses)
		}
	})

	t.Run("delete-role", func(t *testing.T) {
		if _, err := lcDeleteRevokingKeys(c, mount+"/roles/dual"); err != nil {
			t.Fatalf("delete dual role: %v", err)
		}
		htOnlyLiveKeys(t, d)
	})
}

// htDocExample reads the first worked example of docs/providers/http.md:
// the provider's name and the fields of its vault write.
func htDocExample(t *testing.T) (string, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs/providers/http.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "## Example 1")
	if i < 0 {
		t.Fatal("docs/providers/http.md has no \"## Example 1\"")
	}
	doc = doc[i:]
	start := strings.Index(doc, "```shell\n")
	if start < 0 {
		t.Fatal("example 1 has no shell block")
	}
	doc = doc[start+len("```shell\n"):]
	end := strings.Index(doc, "```")
	if end < 0 {
		t.Fatal("example 1's shell block does not end")
	}
	cmd := strings.ReplaceAll(doc[:end], "\\\n", " ")
	words, err := htShellWords(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if len(words) < 3 || words[0] != "vault" || words[1] != "write" || !strings.HasPrefix(words[2], "thirdparty/providers/") {
		t.Fatalf("example 1 is not a vault write of a provider: %q", words)
	}
	fields := map[string]any{}
	for _, w := range words[3:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			t.Fatalf("example 1: %q is not key=value", w)
		}
		fields[k] = v
	}
	return strings.TrimPrefix(words[2], "thirdparty/providers/"), fields
}

// htShellWords splits a command line as a POSIX shell would for what the
// examples use: blanks separate words, '…' quotes verbatim, \x escapes x.
func htShellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errUnterminated
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

type htError string

func (e htError) Error() string { return string(e) }

const errUnterminated = htError("unterminated single quote")

// htDemoKey is a key as the demo's inspection endpoint shows it.
type htDemoKey struct {
	demoKey
	Scopes []string `json:"scopes"`
}

func htKeys(t *testing.T, d *demoProvider, query string) []htDemoKey {
	t.Helper()
	var out struct {
		Keys []htDemoKey `json:"keys"`
	}
	d.getJSON(t, "/_demo/keys?"+query, &out)
	return out.Keys
}

func htKey(t *testing.T, d *demoProvider, id string) htDemoKey {
	t.Helper()
	for _, k := range htKeys(t, d, "") {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("the demo provider has no key %s", id)
	return htDemoKey{}
}

func htAdminKeys(t *testing.T, d *demoProvider, state string) []htDemoKey {
	t.Helper()
	q := "kind=admin"
	if state != "" {
		q += "&state=" + state
	}
	return htKeys(t, d, q)
}

// htOnlyLiveKeys checks the demo's live normal keys are exactly ids.
func htOnlyLiveKeys(t *testing.T, d *demoProvider, ids ...string) {
	t.Helper()
	var live []string
	for _, k := range htKeys(t, d, "kind=key&state=live") {
		live = append(live, k.ID)
	}
	slices.Sort(live)
	want := slices.Clone(ids)
	slices.Sort(want)
	if !slices.Equal(live, want) {
		t.Errorf("live keys at the demo %v, want exactly %v", live, want)
	}
}

func htStats(t *testing.T, d *demoProvider) map[string]int {
	t.Helper()
	var out struct {
		Requests map[string]int `json:"requests"`
	}
	d.getJSON(t, "/_demo/stats", &out)
	if out.Requests == nil {
		out.Requests = map[string]int{}
	}
	return out.Requests
}

// htStatsDelta checks the /v1 requests the demo counted since before are
// exactly want (route pattern → count).
func htStatsDelta(t *testing.T, d *demoProvider, before, want map[string]int) {
	t.Helper()
	after := htStats(t, d)
	got := map[string]int{}
	for k, v := range after {
		if n := v - before[k]; n != 0 {
			got[k] = n
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("demo requests since the call: %v, want %v", got, want)
			return
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("demo requests since the call: %v, want %v", got, want)
			return
		}
	}
}
