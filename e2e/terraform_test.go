//go:build e2e

package e2e

// Terraform compatibility (docs/terraform.md, docs/terraform/main.tf). The
// hashicorp/vault provider cannot be downloaded here, so these tests replay
// what its vault_generic_endpoint resource does (vault/resource_generic_endpoint.go):
//
//   - create/update: PUT data_json (decoded into a map, so numbers are
//     float64), then read;
//   - read (disable_read = false, ignore_absent_fields = true): GET the path;
//     nil removes the resource from the state; otherwise the new state's
//     data_json is the old one with every key that the read returned
//     replaced by the read's value (keys the read lacks, such as write-only
//     secrets, keep their value; keys not in data_json are ignored);
//   - plan: the configured data_json, normalized (decode, encode: sorted keys),
//     against the refreshed state; any difference is an update;
//   - delete: DELETE the path.
//
// For providers of type demo, http (the worked example of
// docs/providers/http.md) and sendgrid, with a dynamic and a dual role each:
// create, the read gives back every non-sensitive field unchanged and no
// secret, a second apply plans nothing, the same data_json written again
// changes nothing (no rotation, no new key, same root), a changed field is
// one update that rotates nothing, and delete leaves a 404.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/all"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/sendgrid/sendgridtest"
)

// ---- the replay of vault_generic_endpoint ----

// tfResource is one vault_generic_endpoint resource and its Terraform state.
type tfResource struct {
	c    *api.Client
	path string
	// disableRead and disableDelete mirror the resource's arguments.
	disableRead, disableDelete bool
	// state is data_json in the state; "" when the resource is not in it.
	state string
	// writeData is write_data: the write_fields found in the write response.
	writeData map[string]string
	// writes counts the PUTs this resource made.
	writes int
}

// tfNormalize is the provider's NormalizeDataJSON.
func tfNormalize(t testing.TB, dataJSON string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(dataJSON), &m); err != nil {
		t.Fatalf("data_json %s: %v", dataJSON, err)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// tfJSON is jsonencode(config).
func tfJSON(t testing.TB, config map[string]any) string {
	t.Helper()
	b, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// write is genericEndpointResourceWrite: PUT, keep write_fields, read.
func (r *tfResource) write(t testing.TB, dataJSON string, writeFields ...string) error {
	t.Helper()
	var data map[string]any
	if err := json.Unmarshal([]byte(dataJSON), &data); err != nil {
		t.Fatalf("data_json: %v", err)
	}
	resp, err := r.c.Logical().Write(r.path, data)
	r.writes++
	if err != nil {
		return err
	}
	r.writeData = map[string]string{}
	if resp != nil {
		for _, f := range writeFields {
			if v, ok := resp.Data[f]; ok {
				if s, ok := v.(string); ok {
					r.writeData[f] = s
				} else {
					b, _ := json.Marshal(v)
					r.writeData[f] = string(b)
				}
			}
		}
	}
	// The provider keeps the configured data_json (normalized) in the state
	// and then reads.
	r.state = tfNormalize(t, dataJSON)
	r.refresh(t)
	return nil
}

// refresh is genericEndpointResourceRead with ignore_absent_fields = true.
// It returns false when the resource left the state (the path is gone).
func (r *tfResource) refresh(t testing.TB) bool {
	t.Helper()
	if r.state == "" {
		return false
	}
	if r.disableRead {
		return true
	}
	s, err := r.c.Logical().Read(r.path)
	if err != nil {
		t.Fatalf("refresh %s: %v", r.path, err)
	}
	if s == nil {
		r.state = ""
		return false
	}
	var supplied map[string]any
	if err := json.Unmarshal([]byte(r.state), &supplied); err != nil {
		t.Fatal(err)
	}
	for k, v := range s.Data {
		if _, ok := supplied[k]; ok {
			supplied[k] = v
		}
	}
	b, err := json.Marshal(supplied)
	if err != nil {
		t.Fatal(err)
	}
	r.state = string(b)
	return true
}

// plan refreshes and returns the keys whose configured value differs from
// the state (all keys when the resource is not in the state).
func (r *tfResource) plan(t testing.TB, config map[string]any) []string {
	t.Helper()
	if !r.refresh(t) {
		return []string{"(create)"}
	}
	want, got := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	_ = json.Unmarshal([]byte(tfNormalize(t, tfJSON(t, config))), &want)
	_ = json.Unmarshal([]byte(r.state), &got)
	var diff []string
	for k := range want {
		if string(want[k]) != string(got[k]) {
			diff = append(diff, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, k)
		}
	}
	sort.Strings(diff)
	return diff
}

// apply is `terraform apply` of one resource: plan, and write when the plan
// is not empty. It returns the planned differences.
func (r *tfResource) apply(t testing.TB, config map[string]any, writeFields ...string) []string {
	t.Helper()
	diff := r.plan(t, config)
	if len(diff) > 0 {
		if err := r.write(t, tfJSON(t, config), writeFields...); err != nil {
			t.Fatalf("apply %s (changes %v): %v", r.path, diff, err)
		}
	}
	return diff
}

// destroy is genericEndpointResourceDelete; the refresh after it must find
// nothing (a 404 from Vault, nil from the client).
func (r *tfResource) destroy(t testing.TB) {
	t.Helper()
	if !r.disableDelete {
		if _, err := r.c.Logical().Delete(r.path); err != nil {
			t.Fatalf("destroy %s: %v", r.path, err)
		}
	}
	r.state = ""
}

// ---- checks ----

// tfSensitive lists the write-only fields of a provider type, from the
// provider registry the plugin itself uses.
func tfSensitive(t testing.TB, typ string) map[string]bool {
	t.Helper()
	ty, ok := clients.Lookup(typ)
	if !ok {
		t.Fatalf("no provider type %q", typ)
	}
	out := map[string]bool{}
	for _, f := range ty.Fields {
		if f.Sensitive {
			out[f.Name] = true
		}
	}
	return out
}

// tfCheckReadBack checks that a read returns every non-sensitive field of
// config unchanged (same JSON) and no sensitive one.
func tfCheckReadBack(t testing.TB, c *api.Client, path string, config map[string]any, sensitive map[string]bool) map[string]any {
	t.Helper()
	s := read(t, c, path)
	if s == nil {
		t.Fatalf("read %s: nothing", path)
	}
	wantAll := map[string]json.RawMessage{}
	_ = json.Unmarshal([]byte(tfJSON(t, config)), &wantAll)
	for k, want := range wantAll {
		got, present := s.Data[k]
		if sensitive[k] {
			if present {
				t.Errorf("read %s returns the sensitive field %s", path, k)
			}
			continue
		}
		if !present {
			t.Errorf("read %s lacks the written field %s: Terraform would keep its value but never see drift", path, k)
			continue
		}
		gb, _ := json.Marshal(got)
		if string(gb) != tfNormalizeValue(t, want) {
			t.Errorf("read %s: %s = %s, written %s (Terraform would show drift)", path, k, gb, want)
		}
	}
	return s.Data
}

func tfNormalizeValue(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// tfStable drops the fields of a read that change with the clock alone.
func tfStable(data map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range data {
		if strings.HasSuffix(k, "_age") {
			continue
		}
		out[k] = v
	}
	return out
}

func tfSameRead(t testing.TB, what string, before, after map[string]any) {
	t.Helper()
	b, a := tfStable(before), tfStable(after)
	if reflect.DeepEqual(b, a) {
		return
	}
	for k := range b {
		if fmt.Sprint(b[k]) != fmt.Sprint(a[k]) {
			t.Errorf("%s: %s changed from %v to %v", what, k, b[k], a[k])
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			t.Errorf("%s: new field %s = %v", what, k, a[k])
		}
	}
}

// ---- the cases ----

type tfCase struct {
	typ      string
	provider map[string]any
	// dynamic and dual are the roles' data_json without "provider".
	dynamic, dual map[string]any
	// liveKeys returns the ids of every live key at the provider, root
	// credentials included.
	liveKeys func(t testing.TB) []string
}

func TestTerraformGenericEndpoint(t *testing.T) {
	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		d, err := startDemo(uniq("tf-demo"))
		if err != nil {
			t.Fatal(err)
		}
		issued.add(d.AdminKey)
		// The values of docs/terraform/main.tf.
		tfRun(t, tfCase{
			typ: "demo",
			provider: map[string]any{
				"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey,
				"request_timeout": 30, "max_concurrency": 8,
				"rotation_period": 2592000, "disable_automated_rotation": false,
			},
			dynamic:  map[string]any{"mode": "dynamic", "ttl": 3600, "max_ttl": 86400, "scopes": []string{"read"}},
			dual:     map[string]any{"mode": "dual", "ttl": 3600, "max_ttl": 86400, "scopes": []string{"read", "write"}, "rotation_period": 2592000, "overlap": 86400},
			liveKeys: tfDemoLive(d),
		})
	})
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		d, err := startDemo(uniq("tf-http"))
		if err != nil {
			t.Fatal(err)
		}
		issued.add(d.AdminKey)
		p := tfHTTPDocExample(t)
		p["base_url"], p["root_secret"] = d.URL, d.AdminKey
		p["request_timeout"], p["rotation_period"] = 20, 604800
		tfRun(t, tfCase{
			typ:      "http",
			provider: p,
			dynamic:  map[string]any{"mode": "dynamic", "ttl": 600, "max_ttl": 3600, "scopes": []string{"read", "write"}},
			dual:     map[string]any{"mode": "dual", "ttl": 600, "scopes": []string{"read"}, "rotation_schedule": "0 3 * * SAT", "rotation_window": 3600, "overlap": 7200},
			liveKeys: tfDemoLive(d),
		})
	})
	t.Run("sendgrid", func(t *testing.T) {
		t.Parallel()
		f := sendgridtest.NewServer()
		t.Cleanup(f.Close)
		issued.add(f.RootKey())
		tfRun(t, tfCase{
			typ: "sendgrid",
			provider: map[string]any{
				"type": "sendgrid", "base_url": f.URL, "api_key": f.RootKey(),
				"on_behalf_of": "tf-subuser", "max_concurrency": 4,
			},
			dynamic: map[string]any{"mode": "dynamic", "ttl": 300, "max_ttl": 3600, "scopes": []string{"mail.send", "stats.read"}},
			dual:    map[string]any{"mode": "dual", "ttl": 300, "scopes": []string{"mail.send"}, "rotation_period": 86400, "overlap": 3600},
			liveKeys: func(testing.TB) []string {
				var ids []string
				for _, k := range f.LiveKeys() {
					ids = append(ids, k.ID)
				}
				sort.Strings(ids)
				return ids
			},
		})
	})
}

func tfDemoLive(d *demoProvider) func(testing.TB) []string {
	return func(t testing.TB) []string {
		var ids []string
		for _, k := range d.keys(t, "state=live") {
			ids = append(ids, k.ID)
		}
		sort.Strings(ids)
		return ids
	}
}

func tfRun(t *testing.T, tc tfCase) {
	c := sharedVlt.client
	sensitive := tfSensitive(t, tc.typ)
	if len(sensitive) == 0 {
		t.Fatalf("type %s has no sensitive field", tc.typ)
	}
	provName := uniq("tf-" + tc.typ)
	prov := &tfResource{c: c, path: "thirdparty/providers/" + provName}
	names := map[string]string{"dynamic": uniq("tf-" + tc.typ + "-dyn"), "dual": uniq("tf-" + tc.typ + "-dual")}
	roleCfg := map[string]map[string]any{}
	roles := map[string]*tfResource{}
	for kind, cfg := range map[string]map[string]any{"dynamic": tc.dynamic, "dual": tc.dual} {
		m := map[string]any{"provider": provName}
		for k, v := range cfg {
			m[k] = v
		}
		roleCfg[kind] = m
		roles[kind] = &tfResource{c: c, path: "thirdparty/roles/" + names[kind]}
	}
	baseline := tc.liveKeys(t)

	// 1. terraform apply: create the provider, then the roles.
	if diff := prov.apply(t, tc.provider); !reflect.DeepEqual(diff, []string{"(create)"}) {
		t.Fatalf("first apply of the provider planned %v", diff)
	}
	provRead := tfCheckReadBack(t, c, prov.path, tc.provider, sensitive)
	rootID, _ := provRead["root_key_id"].(string)
	for k := range sensitive {
		if _, written := tc.provider[k]; written && !strings.Contains(prov.state, fmt.Sprintf("%q:", k)) {
			t.Errorf("provider state lost the write-only field %s", k)
		}
	}
	for _, kind := range []string{"dynamic", "dual"} {
		roles[kind].apply(t, roleCfg[kind])
		tfCheckReadBack(t, c, roles[kind].path, roleCfg[kind], nil)
	}
	dualRead := read(t, c, roles["dual"].path).Data
	dualKey, _ := dualRead["current_key_id"].(string)
	if dualKey == "" {
		t.Fatalf("dual role has no current key: %v", dualRead)
	}
	for _, kind := range []string{"dynamic", "dual"} {
		s := readCreds(t, c, "thirdparty", names[kind])
		if kind == "dual" && s.Data["key_id"] != dualKey {
			t.Errorf("dual creds key %v, role's current key %s", s.Data["key_id"], dualKey)
		}
		if err := c.Sys().Revoke(s.LeaseID); err != nil {
			t.Fatalf("revoke: %v", err)
		}
	}
	afterCreate := tc.liveKeys(t)
	if len(afterCreate) != len(baseline)+1 {
		t.Errorf("live keys after create: %d, want %d (+ the dual role's current key)", len(afterCreate), len(baseline)+1)
	}

	// 2. A second terraform apply plans nothing (no drift) and writes nothing.
	for what, r := range map[string]*tfResource{"provider": prov, "dynamic role": roles["dynamic"], "dual role": roles["dual"]} {
		cfg := tc.provider
		if what != "provider" {
			cfg = roleCfg[strings.TrimSuffix(what, " role")]
		}
		writes := r.writes
		if diff := r.apply(t, cfg); len(diff) > 0 {
			t.Errorf("second apply of the %s plans changes to %v (drift)\nstate:  %s\nconfig: %s", what, diff, r.state, tfNormalize(t, tfJSON(t, cfg)))
		}
		if r.writes != writes {
			t.Errorf("second apply wrote the %s", what)
		}
	}

	// 3. The same data_json written again (an update Terraform makes when
	// another resource's change forces it, or by hand) changes nothing: same
	// root, same current key, no key created or revoked at the provider.
	for what, r := range map[string]*tfResource{"provider": prov, "dynamic role": roles["dynamic"], "dual role": roles["dual"]} {
		cfg := tc.provider
		if what != "provider" {
			cfg = roleCfg[strings.TrimSuffix(what, " role")]
		}
		before := read(t, c, r.path).Data
		if err := r.write(t, tfJSON(t, cfg)); err != nil {
			t.Fatalf("rewrite %s: %v", what, err)
		}
		after := read(t, c, r.path).Data
		tfSameRead(t, "rewrite of the "+what, before, after)
		if diff := r.plan(t, cfg); len(diff) > 0 {
			t.Errorf("after the rewrite the %s plans %v", what, diff)
		}
	}
	if got, _ := read(t, c, prov.path).Data["root_key_id"].(string); got != rootID {
		t.Errorf("provider root_key_id %q after the rewrite, was %q (a root change)", got, rootID)
	}
	if got, _ := read(t, c, roles["dual"].path).Data["current_key_id"].(string); got != dualKey {
		t.Errorf("dual current_key_id %q after the rewrite, was %q (a rotation)", got, dualKey)
	}
	if got := tc.liveKeys(t); !reflect.DeepEqual(got, afterCreate) {
		t.Errorf("live keys at the provider changed with the rewrite:\nbefore %v\nafter  %v", afterCreate, got)
	}

	// 4. A changed field is one planned update of that field, and a role's
	// config change does not rotate its key.
	changed := map[string]any{}
	for k, v := range roleCfg["dual"] {
		changed[k] = v
	}
	changed["ttl"] = 1200
	if diff := roles["dual"].apply(t, changed); !reflect.DeepEqual(diff, []string{"ttl"}) {
		t.Errorf("changing ttl planned %v, want [ttl]", diff)
	}
	if diff := roles["dual"].plan(t, changed); len(diff) > 0 {
		t.Errorf("after the update the dual role plans %v", diff)
	}
	if got, _ := read(t, c, roles["dual"].path).Data["current_key_id"].(string); got != dualKey {
		t.Errorf("dual current_key_id %q after a ttl change, was %q", got, dualKey)
	}
	provChanged := map[string]any{}
	for k, v := range tc.provider {
		provChanged[k] = v
	}
	provChanged["max_concurrency"] = 16
	if diff := prov.apply(t, provChanged); !reflect.DeepEqual(diff, []string{"max_concurrency"}) {
		t.Errorf("changing max_concurrency planned %v", diff)
	}
	if got, _ := read(t, c, prov.path).Data["root_key_id"].(string); got != rootID {
		t.Errorf("root_key_id %q after a provider update, was %q", got, rootID)
	}
	// same_account in data_json: one update, then no drift (it is not
	// stored, so the read never returns it).
	provChanged["same_account"] = true
	if diff := prov.apply(t, provChanged); !reflect.DeepEqual(diff, []string{"same_account"}) {
		t.Errorf("adding same_account planned %v", diff)
	}
	if diff := prov.plan(t, provChanged); len(diff) > 0 {
		t.Errorf("after adding same_account the provider plans %v", diff)
	}
	readCreds(t, c, "thirdparty", names["dual"])

	// 5. terraform destroy: roles first (depends_on), then the provider;
	// each path then reads as nothing and leaves the state.
	for _, r := range []*tfResource{roles["dynamic"], roles["dual"], prov} {
		saved := r.state
		r.destroy(t)
		s, err := c.Logical().Read(r.path)
		if err != nil || s != nil {
			t.Errorf("read %s after destroy: %v, %v; want nothing (404)", r.path, s, err)
		}
		// A refresh of a state that still holds the resource (deleted behind
		// Terraform's back) drops it, so the next apply re-creates it.
		r.state = saved
		if r.refresh(t) {
			t.Errorf("%s stays in the state after it was deleted", r.path)
		}
	}
	// The dual role's key outlives the destroy until no lease of it can
	// still run (its lease cap, weeks away here): status lists it, and a
	// delete with revoke_keys=true revokes it at once.
	if got, want := tc.liveKeys(t), append(slices.Clone(baseline), dualKey); !reflect.DeepEqual(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("live keys after destroy %v, want the initial %v and the retiring dual key %s", got, baseline, dualKey)
	}
	retiring := false
	list, _ := read(t, c, "thirdparty/status").Data["retiring_keys"].([]any)
	for _, k := range list {
		m, _ := k.(map[string]any)
		retiring = retiring || (m["key_id"] == dualKey && m["role"] == names["dual"])
	}
	if !retiring {
		t.Errorf("status retiring_keys does not list the destroyed dual role's key %s", dualKey)
	}
	if _, err := lcDeleteRevokingKeys(c, roles["dual"].path); err != nil {
		t.Fatalf("revoke_keys on the destroyed dual role: %v", err)
	}
	if got := tc.liveKeys(t); !reflect.DeepEqual(got, baseline) {
		t.Errorf("live keys after revoke_keys %v, want the initial %v", got, baseline)
	}
}

// tfHTTPDocExample reads the provider fields of Example 1 of
// docs/providers/http.md (the `vault write thirdparty/providers/demo-http …`
// block) as data_json.
func tfHTTPDocExample(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs/providers/http.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "vault write thirdparty/providers/demo-http ")
	if start < 0 {
		t.Fatal("docs/providers/http.md: no `vault write thirdparty/providers/demo-http` example")
	}
	end := strings.Index(doc[start:], "```")
	cmd := strings.ReplaceAll(doc[start:start+end], "\\\n", " ")
	words, err := tfShellWords(cmd)
	if err != nil {
		t.Fatalf("http.md example: %v", err)
	}
	out := map[string]any{}
	for _, w := range words[3:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			t.Fatalf("http.md example: %q is not key=value", w)
		}
		out[k] = v
	}
	if out["type"] != "http" || out["create_path"] == nil || out["root_secret"] == nil {
		t.Fatalf("http.md example parsed as %v", out)
	}
	return out
}

// tfShellWords splits a command line with plain words, '…' and "…" quoting.
func tfShellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\'' || ch == '"':
			j := strings.IndexByte(s[i+1:], ch)
			if j < 0 {
				return nil, fmt.Errorf("unterminated %c quote", ch)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
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

// Writing a duration as text ("1h") is stored fine, but the read returns
// seconds (3600): with ignore_absent_fields the value is compared, so every
// plan shows a change. docs/terraform.md says to write seconds; this pins
// why.
func TestTerraformDurationTextDrifts(t *testing.T) {
	c := sharedVlt.client
	prov := uniq("tf-dur")
	writeDemoProvider(t, c, "thirdparty", prov, sharedDemo)
	t.Cleanup(func() { c.Logical().Delete("thirdparty/providers/" + prov) })
	role := &tfResource{c: c, path: "thirdparty/roles/" + uniq("tf-dur")}
	t.Cleanup(func() { c.Logical().Delete(role.path) })
	text := map[string]any{"provider": prov, "mode": "dynamic", "ttl": "1h"}
	role.apply(t, text)
	if diff := role.plan(t, text); !reflect.DeepEqual(diff, []string{"ttl"}) {
		t.Errorf("ttl=\"1h\" plans %v on the next apply; docs/terraform.md expects [ttl] (the read says 3600)", diff)
	}
	seconds := map[string]any{"provider": prov, "mode": "dynamic", "ttl": 3600}
	role.apply(t, seconds)
	if diff := role.plan(t, seconds); len(diff) > 0 {
		t.Errorf("ttl=3600 plans %v", diff)
	}
}

// The provider pattern of docs/terraform/main.tf: a seed resource that
// writes the root credential once (ignore_changes = [data_json],
// disable_delete), a settings resource without secrets, and a rotate-root
// resource (disable_read, write_fields). After the root rotation the seed's
// admin key is dead: writing it again (what a single resource holding both
// would do on any change) is refused and changes nothing, while the
// settings resource keeps working, and no apply rotates again.
func TestTerraformProviderRootPattern(t *testing.T) {
	c := sharedVlt.client
	d, err := startDemo(uniq("tf-root"))
	if err != nil {
		t.Fatal(err)
	}
	issued.add(d.AdminKey)
	name := uniq("tf-root")
	path := "thirdparty/providers/" + name
	seed := &tfResource{c: c, path: path, disableDelete: true}
	settings := &tfResource{c: c, path: path}
	rotate := &tfResource{c: c, path: "thirdparty/rotate-root/" + name, disableRead: true, disableDelete: true}
	roleRes := &tfResource{c: c, path: "thirdparty/roles/" + uniq("tf-root-dual")}

	seedCfg := map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey}
	settingsCfg := map[string]any{"type": "demo", "base_url": d.URL, "request_timeout": 30, "max_concurrency": 8,
		"rotation_period": 2592000, "disable_automated_rotation": false}
	roleCfg := map[string]any{"provider": name, "mode": "dual", "ttl": 3600, "max_ttl": 86400, "scopes": []string{"read", "write"},
		"rotation_period": 2592000, "overlap": 86400}
	writeFields := []string{"root_key_id", "root_rotated_at", "next_root_rotation"}

	apply := func(first bool) {
		t.Helper()
		// ignore_changes = [data_json]: only the create is ever planned.
		if seed.state == "" {
			seed.apply(t, seedCfg)
		} else {
			seed.refresh(t)
		}
		if diff := settings.apply(t, settingsCfg); !first && len(diff) > 0 {
			t.Errorf("settings plan %v on a later apply", diff)
		}
		if diff := rotate.apply(t, map[string]any{}, writeFields...); !first && len(diff) > 0 {
			t.Errorf("rotate-root planned %v on a later apply (a rotation per apply)", diff)
		}
		if diff := roleRes.apply(t, roleCfg); !first && len(diff) > 0 {
			t.Errorf("role plan %v on a later apply", diff)
		}
	}
	apply(true)
	newRoot := rotate.writeData["root_key_id"]
	if newRoot == "" {
		t.Fatalf("rotate-root write_data has no root_key_id: %v", rotate.writeData)
	}
	for k, v := range rotate.writeData {
		if strings.Contains(v, "demoadm_") {
			t.Errorf("rotate-root write_data %s holds an admin key", k)
		}
	}
	if got := read(t, c, path).Data["root_key_id"]; got != newRoot {
		t.Errorf("root_key_id %v, rotate-root said %s", got, newRoot)
	}
	if code := d.whoami(t, d.AdminKey); code != 401 {
		t.Errorf("the seeded admin key still works after the rotation on create: whoami %d", code)
	}
	readCreds(t, c, "thirdparty", strings.TrimPrefix(roleRes.path, "thirdparty/roles/"))

	// Second apply: nothing planned, nothing written, no rotation.
	writes := rotate.writes + settings.writes + seed.writes + roleRes.writes
	apply(false)
	if got := rotate.writes + settings.writes + seed.writes + roleRes.writes; got != writes {
		t.Errorf("second apply made %d writes", got-writes)
	}
	if got := read(t, c, path).Data["root_key_id"]; got != newRoot {
		t.Errorf("root_key_id %v after the second apply, want %s", got, newRoot)
	}

	// A settings change is written without the secret and works.
	settingsCfg["request_timeout"] = 45
	if diff := settings.apply(t, settingsCfg); !reflect.DeepEqual(diff, []string{"request_timeout"}) {
		t.Errorf("request_timeout change planned %v", diff)
	}
	if got := read(t, c, path).Data["root_key_id"]; got != newRoot {
		t.Errorf("root_key_id %v after a settings change, want %s", got, newRoot)
	}

	// The seed written again (single-resource setups do this on any change)
	// is refused: the stored root stays, creds keep working.
	err = seed.write(t, tfJSON(t, seedCfg))
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !strings.Contains(err.Error(), "root credential") {
		t.Errorf("rewriting the dead seed admin key: %v, want a 400 about the root credential", err)
	} else if strings.Contains(err.Error(), d.AdminKey) {
		t.Errorf("the error shows the admin key")
	}
	if got := read(t, c, path).Data["root_key_id"]; got != newRoot {
		t.Errorf("root_key_id %v after the refused write, want %s", got, newRoot)
	}
	readCreds(t, c, "thirdparty", strings.TrimPrefix(roleRes.path, "thirdparty/roles/"))

	// Destroy: the role, the rotate and seed resources delete nothing, the
	// settings resource deletes the provider.
	roleRes.destroy(t)
	rotate.destroy(t)
	settings.destroy(t)
	seed.destroy(t)
	if s, err := c.Logical().Read(path); err != nil || s != nil {
		t.Errorf("provider after destroy: %v, %v", s, err)
	}
}
