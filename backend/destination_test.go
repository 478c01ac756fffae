package backend

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/datadog/datadogtest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/twilio/twiliotest"
)

// A field that selects the site (Datadog's site) is a destination like
// base_url: changing it needs the root credential in the same write, and
// with it the change is verified and stored.
func TestDestinationFieldNeedsTheCredential(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ms := newMemServer(t)
	dd := datadogtest.NewServer()
	t.Cleanup(dd.Close)
	creds := map[string]any{"api_key": dd.RootAPIKey(), "app_key": dd.RootAppKey()}
	fields := map[string]any{"type": "datadog", "base_url": dd.URL, "site": "datadoghq.com"}
	for k, v := range creds {
		fields[k] = v
	}
	e.must(logical.CreateOperation, "providers/dd", fields)

	before := e.mountState(ms, "providers/dd")
	resp, err := e.do(logical.UpdateOperation, "providers/dd", map[string]any{"site": "datadoghq.eu"})
	e.userError(resp, err, "api_key, app_key: required in the same write")
	resp, err = e.do(logical.UpdateOperation, "providers/dd", map[string]any{"site": "datadoghq.eu", "api_key": dd.RootAPIKey()})
	e.userError(resp, err, "app_key: required")
	if after := e.mountState(ms, "providers/dd"); !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused site change changed the mount:\nbefore %+v\nafter  %+v", before, after)
	}

	calls := len(dd.Requests())
	e.must(logical.UpdateOperation, "providers/dd", map[string]any{"site": "datadoghq.eu", "api_key": creds["api_key"], "app_key": creds["app_key"]})
	if got := e.must(logical.ReadOperation, "providers/dd", nil).Data["site"]; got != "datadoghq.eu" {
		t.Fatalf("site after an update with the credential: %v", got)
	}
	if len(dd.Requests()) == calls {
		t.Fatal("the new destination was stored without a verify call")
	}
	// Writing the same destination again (as Terraform does on every
	// apply) is no change and needs nothing.
	e.must(logical.UpdateOperation, "providers/dd", map[string]any{"site": "datadoghq.eu", "base_url": dd.URL})
}

// base_url's transport rules: https, or http to loopback, or http with
// allow_insecure_http=true (which is shown by reads, needs the credential
// to turn on, and being turned off again re-checks the stored URL). A URL
// with a user name or password is refused without repeating it.
func TestBaseURLTransportRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ms := newMemServer(t)
	plain := "http://plain-" + hostLabel(t.Name()) + ".mem.invalid"
	memServers.Store(plain, ms)
	t.Cleanup(func() { memServers.Delete(plain) })

	create := map[string]any{"type": noRotateType, "base_url": plain, "root_token": ms.root}
	resp, err := e.do(logical.CreateOperation, "providers/m", create)
	e.userError(resp, err, "base_url: must be https")
	create["allow_insecure_http"] = true
	e.must(logical.CreateOperation, "providers/m", create)
	if got := e.must(logical.ReadOperation, "providers/m", nil).Data["allow_insecure_http"]; got != true {
		t.Fatalf("allow_insecure_http reads %v", got)
	}
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "m", "mode": "dynamic"})
	e.must(logical.ReadOperation, "creds/dyn", nil)

	resp, err = e.do(logical.UpdateOperation, "providers/m", map[string]any{"allow_insecure_http": false})
	e.userError(resp, err, "base_url: must be https")

	for _, u := range []string{"https://admin:hunter2secret@127.0.0.1", "https://admin:hunter2secret%zz@127.0.0.1", "http://hunter2secret@[::1"} {
		resp, err = e.do(logical.UpdateOperation, "providers/m", map[string]any{"base_url": u, "root_token": ms.root})
		e.userError(resp, err, "base_url")
		if msg := resp.Error().Error(); strings.Contains(msg, "hunter2secret") {
			t.Fatalf("the error repeats the URL's password: %q", msg)
		}
	}

	// Loopback hosts may be plain http without the flag.
	for _, u := range []string{"http://127.0.0.1:8200", "http://127.9.9.9", "http://[::1]:8200", "http://localhost:8200", "http://LOCALHOST"} {
		if msg := checkTransport(u, false); msg != "" {
			t.Errorf("%s refused: %s", u, msg)
		}
	}
	for _, u := range []string{"http://10.0.0.1", "http://169.254.169.254", "http://localhost.example.com", "http://[::2]", "http://0.0.0.0"} {
		if msg := checkTransport(u, false); msg == "" {
			t.Errorf("%s accepted without allow_insecure_http", u)
		}
	}
}

// A provider stored before the transport rules (plain http to a host that
// is not loopback, no allow_insecure_http) keeps working: reads, creds and
// partial updates that do not touch base_url or allow_insecure_http are
// not refused for its URL; a write of base_url is held to the rules.
func TestProviderStoredBeforeTheRulesKeepsWorking(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ms := newMemServer(t)
	plain := "http://old-" + hostLabel(t.Name()) + ".mem.invalid"
	memServers.Store(plain, ms)
	t.Cleanup(func() { memServers.Delete(plain) })
	// As v0.1.0 stored it: no allow_insecure_http in the entry.
	old := `{"type":"` + noRotateType + `","base_url":"` + plain + `","request_timeout":30000000000,"max_concurrency":8,"tls_ca_cert":"","fields":{"root_token":"` + ms.root + `"},"rotation":{"period":0,"schedule":"","window":0,"disabled":false},"can_rotate_root":false,"root_key_id":"root_0"}`
	if err := e.storage.Put(context.Background(), &logical.StorageEntry{Key: providerPrefix + "old", Value: []byte(old)}); err != nil {
		t.Fatal(err)
	}
	if got := e.must(logical.ReadOperation, "providers/old", nil).Data; got["base_url"] != plain || got["allow_insecure_http"] != false {
		t.Fatalf("read of the old entry: %v", got)
	}
	e.must(logical.UpdateOperation, "providers/old", map[string]any{"max_concurrency": 4})
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "old", "mode": "dynamic"})
	e.must(logical.ReadOperation, "creds/dyn", nil)
	resp, err := e.do(logical.UpdateOperation, "providers/old", map[string]any{"base_url": plain, "root_token": ms.root})
	e.userError(resp, err, "base_url: must be https")
}

// Twilio's other API URLs are destinations and URLs: held to base_url's
// rules, and their change needs the credential.
func TestTwilioURLFieldsAreDestinations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp, err := e.do(logical.CreateOperation, "providers/tw", map[string]any{"type": "twilio", "account_sid": "AC" + strings.Repeat("0", 32),
		"auth_token": "tok", "iam_base_url": "http://iam.example.com"})
	e.userError(resp, err, "iam_base_url: must be https")
	resp, err = e.do(logical.CreateOperation, "providers/tw", map[string]any{"type": "twilio", "account_sid": "AC" + strings.Repeat("0", 32),
		"auth_token": "tok", "accounts_base_url": "https://u:p4ssw0rdx@accounts.example.com"})
	e.userError(resp, err, "accounts_base_url: must not contain a user name")
}

// A provider type's documented key name limit (Twilio: 64) holds at role
// write: a template whose longest name is longer is refused, and a role
// created without one gets the short default, which fits.
func TestNameTemplateFitsTheTypesLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := twiliotest.NewServer()
	t.Cleanup(f.Close)
	e.must(logical.CreateOperation, "providers/tw", map[string]any{"type": "twilio", "base_url": f.URL, "iam_base_url": f.URL,
		"accounts_base_url": f.URL, "account_sid": f.AccountSID(), "auth_token": f.AuthToken()})
	resp, err := e.do(logical.CreateOperation, "roles/a-role-name-longer-than-32-characters", map[string]any{"provider": "tw", "mode": "dynamic", "name_template": defaultNameTemplate})
	e.userError(resp, err, `provider type "twilio" allows 64`)
	const dflt = "another-role-name-longer-than-32-characters"
	e.must(logical.CreateOperation, "roles/"+dflt, map[string]any{"provider": "tw", "mode": "dynamic"})
	if got := e.must(logical.ReadOperation, "roles/"+dflt, nil).Data["name_template"]; got != shortNameTemplate {
		t.Fatalf("name_template of a twilio role created without one: %v", got)
	}
	s := e.must(logical.ReadOperation, "creds/"+dflt, nil)
	if name, _ := s.Data["key_name"].(string); name == "" || len(name) > 64 {
		t.Fatalf("key_name %q", name)
	}
	// Other types keep the usual default.
	e.provider("p")
	e.must(logical.CreateOperation, "roles/"+dflt+"-demo", map[string]any{"provider": "p", "mode": "dynamic"})
	if got := e.must(logical.ReadOperation, "roles/"+dflt+"-demo", nil).Data["name_template"]; got != defaultNameTemplate {
		t.Fatalf("name_template of a demo role created without one: %v", got)
	}
}

// What a name template renders is bounded whatever the display name: the
// template sees at most 128 characters of it, so the write-time check of
// the longest name holds at creds time.
func TestRenderedNameIsBoundedByTheWriteCheck(t *testing.T) {
	t.Parallel()
	const tmpl = "k-{{.DisplayName}}-{{random 6}}"
	n, err := longestKeyName(tmpl, "r")
	if err != nil {
		t.Fatal(err)
	}
	name, err := renderKeyName(tmpl, nameVars{Role: "r", Display: strings.Repeat("x", 5000), Marker: markerPlaceholder})
	if err != nil {
		t.Fatal(err)
	}
	if len(name) != n || n != 2+maxDisplayNameLength+1+6 {
		t.Fatalf("rendered %d characters with a 5000-character display name; the write check found %d", len(name), n)
	}
}

// Templates a Vault user writes still work under the bounds.
func TestNameTemplatesWithinBoundsRender(t *testing.T) {
	t.Parallel()
	for _, tmpl := range []string{
		defaultNameTemplate, shortNameTemplate,
		"{{.DisplayName | truncate_sha256 30}}-{{uuid}}",
		"{{.RoleName | uppercase | replace \"-\" \"_\"}}_{{unix_time_millis}}_{{random 64}}",
		"{{if .DisplayName}}{{.DisplayName | truncate 8}}{{else}}anon{{end}}-{{random 6}}",
		"{{with .RoleName}}{{. | lowercase}}{{end}}-{{timestamp \"20060102\"}}-{{.RoleName | sha256 | truncate 8}}-{{.RoleName | base64}}",
	} {
		if _, err := renderKeyName(tmpl, nameVars{Role: "role", Display: "token-someone", Marker: markerPlaceholder}); err != nil {
			t.Errorf("%s: %v", tmpl, err)
		}
	}
	for tmpl, want := range map[string]string{
		"{{random 65}}":                       "random",
		"{{.RoleName | truncate_sha256 999}}": "truncate_sha256",
		"{{$x := .RoleName}}{{$x}}":           "not allowed",
		"{{index . \"RoleName\"}}":            "index",
		"{{.RoleName.Len}}":                   "unknown field",
	} {
		if _, err := renderKeyName(tmpl, nameVars{Role: "role", Display: "d", Marker: markerPlaceholder}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %q", tmpl, err, want)
		}
	}
}

// Vault asks whether a path exists before a write; for a name with ".."
// that must not be a storage lookup (Vault's barrier refuses the key: a
// 500), so the write itself can answer the 400.
func TestExistenceCheckOfABadNameIsNotAnError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, p := range []string{"providers/a..", "roles/a..", "roles/" + strings.Repeat("n", 200)} {
		found, exists, err := e.b.HandleExistenceCheck(context.Background(), &logical.Request{Operation: logical.CreateOperation, Path: p, Storage: e.storage})
		if err != nil || !found || exists {
			t.Errorf("existence check of %s: found %v exists %v err %v", p, found, exists, err)
		}
	}
}

// A provider write whose root check meets a 404 (base_url where the API is
// not) says so, with the provider's account of what was not found, instead
// of blaming the credential; nothing is stored.
func TestRootCheckNotFoundIsNotARefusal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dd := datadogtest.NewServer()
	t.Cleanup(dd.Close)
	resp, err := e.do(logical.CreateOperation, "providers/dd", map[string]any{"type": "datadog", "base_url": dd.URL + "/elsewhere",
		"site": "datadoghq.com", "api_key": dd.RootAPIKey(), "app_key": dd.RootAppKey()})
	e.userError(resp, err, "api_key, app_key: the root credential could not be checked, the provider answered 404 Not Found")
	msg := resp.Error().Error()
	if !strings.Contains(msg, "key listing /api/v2/current_user/application_keys was not found") || strings.Contains(msg, "did not accept") {
		t.Fatalf("error = %q", msg)
	}
	if strings.Contains(msg, dd.RootAPIKey()) || strings.Contains(msg, dd.RootAppKey()) {
		t.Fatal("the error carries a credential")
	}
	if got := e.must(logical.ReadOperation, "providers/dd", nil); got != nil && len(got.Data) > 0 {
		t.Fatalf("a refused write stored the provider: %v", got.Data)
	}
}
