package backend

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// mountState is everything a failed request must leave unchanged: every
// storage entry, what reads of the provider and role paths return, and
// the keys at the providers.
type mountState struct {
	storage   map[string]string
	reads     map[string]map[string]any
	demoKeys  int
	memKeys   int
	walPrefix int
}

func (e *env) mountState(ms *memServer, paths ...string) mountState {
	e.t.Helper()
	ctx := context.Background()
	s := mountState{storage: map[string]string{}, reads: map[string]map[string]any{}, demoKeys: len(e.demo.Keys()), memKeys: ms.liveKeys()}
	keys, err := logical.CollectKeys(ctx, e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range keys {
		entry, err := e.storage.Get(ctx, k)
		if err != nil || entry == nil {
			e.t.Fatalf("storage %s: %v", k, err)
		}
		s.storage[k] = string(entry.Value)
		if strings.HasPrefix(k, "wal/") {
			s.walPrefix++
		}
	}
	for _, p := range paths {
		resp, err := e.do(logical.ReadOperation, p, nil)
		if err != nil || (resp != nil && resp.IsError()) {
			e.t.Fatalf("read %s: %v %v", p, resp, err)
		}
		if resp != nil {
			s.reads[p] = resp.Data
		} else {
			s.reads[p] = nil
		}
	}
	return s
}

// Bad input: a 400 whose message names the field (or what is wrong), and
// nothing stored changes: no storage entry, no read, no key at a provider.
func TestBadInputIs400AndChangesNothing(t *testing.T) {
	t.Parallel()
	const url = "http://demo.invalid" // replaced by the provider's URL
	// Replaced by the same provider at another loopback name (a new
	// destination), and by the demo provider's admin key.
	const url2, adminKey = "http://other.invalid", "the-admin-key"
	long := strings.Repeat("n", 129)
	cases := []struct {
		name string
		op   logical.Operation
		path string
		data map[string]any
		want []string // each must appear in the error
	}{
		// Providers.
		{"unknown type", logical.CreateOperation, "providers/new", map[string]any{"type": "nosuch", "base_url": url, "admin_key": "k"}, []string{"type", "nosuch"}},
		{"missing type", logical.CreateOperation, "providers/new", map[string]any{"base_url": url, "admin_key": "k"}, []string{"type is required"}},
		{"another type's field on create", logical.CreateOperation, "providers/new", map[string]any{"type": "demo", "base_url": url, "admin_key": "k", "root_secret": "x"}, []string{"root_secret"}},
		{"another type's field on update", logical.UpdateOperation, "providers/p", map[string]any{"api_key": "x"}, []string{"api_key"}},
		{"unknown field", logical.UpdateOperation, "providers/p", map[string]any{"bogus": "x"}, []string{"bogus"}},
		{"missing admin_key", logical.CreateOperation, "providers/new", map[string]any{"type": "demo", "base_url": url}, []string{"admin_key"}},
		{"missing base_url", logical.CreateOperation, "providers/new", map[string]any{"type": "demo", "admin_key": "k"}, []string{"base_url"}},
		{"base_url not http", logical.UpdateOperation, "providers/p", map[string]any{"base_url": "ftp://x"}, []string{"base_url"}},
		{"base_url without host", logical.UpdateOperation, "providers/p", map[string]any{"base_url": "http://"}, []string{"base_url"}},
		{"base_url with a query", logical.UpdateOperation, "providers/p", map[string]any{"base_url": "http://h/x?y=1"}, []string{"base_url"}},
		{"base_url not a URL", logical.CreateOperation, "providers/new", map[string]any{"type": "demo", "base_url": "http://[::1", "admin_key": "k"}, []string{"base_url"}},
		{"base_url relative", logical.CreateOperation, "providers/new", map[string]any{"type": "demo", "base_url": "demo.example.com", "admin_key": "k"}, []string{"base_url"}},
		{"bad request_timeout", logical.UpdateOperation, "providers/p", map[string]any{"request_timeout": "soon"}, []string{"request_timeout"}},
		{"zero request_timeout", logical.UpdateOperation, "providers/p", map[string]any{"request_timeout": "0"}, []string{"request_timeout"}},
		{"max_concurrency 0", logical.UpdateOperation, "providers/p", map[string]any{"max_concurrency": 0}, []string{"max_concurrency"}},
		{"max_concurrency 1000", logical.UpdateOperation, "providers/p", map[string]any{"max_concurrency": 1000}, []string{"max_concurrency"}},
		{"max_requests_per_second negative", logical.UpdateOperation, "providers/p", map[string]any{"max_requests_per_second": -1}, []string{"max_requests_per_second"}},
		{"max_requests_per_second too large", logical.UpdateOperation, "providers/p", map[string]any{"max_requests_per_second": 1e9}, []string{"max_requests_per_second"}},
		{"max_requests_per_second not a number", logical.UpdateOperation, "providers/p", map[string]any{"max_requests_per_second": "fast"}, []string{"max_requests_per_second"}},
		{"max_requests_per_second negative on create", logical.CreateOperation, "providers/new", map[string]any{"type": "demo", "base_url": url, "admin_key": adminKey, "max_requests_per_second": -0.5}, []string{"max_requests_per_second"}},
		{"bad tls_ca_cert", logical.UpdateOperation, "providers/p", map[string]any{"tls_ca_cert": "not a PEM"}, []string{"tls_ca_cert"}},
		{"bad root cron", logical.UpdateOperation, "providers/p", map[string]any{"rotation_schedule": "61 * * * *"}, []string{"rotation_schedule"}},
		{"bad root rotation_period", logical.UpdateOperation, "providers/p", map[string]any{"rotation_period": "often"}, []string{"rotation_period"}},
		{"root rotation_period under 5s", logical.UpdateOperation, "providers/p", map[string]any{"rotation_period": "4s"}, []string{"rotation_period"}},
		{"root rotation_period and rotation_schedule", logical.UpdateOperation, "providers/p", map[string]any{"rotation_period": "1h", "rotation_schedule": "@daily"}, []string{"rotation_period", "rotation_schedule"}},
		{"root rotation_schedule more often than 5s", logical.UpdateOperation, "providers/p", map[string]any{"rotation_schedule": "@every 1s"}, []string{"rotation_schedule"}},
		{"root rotation_window without schedule", logical.UpdateOperation, "providers/p", map[string]any{"rotation_window": "1h"}, []string{"rotation_window"}},
		{"changing type", logical.UpdateOperation, "providers/p", map[string]any{"type": "http"}, []string{"type", "immutable"}},
		{"root rotation on a type that cannot", logical.UpdateOperation, "providers/nr", map[string]any{"rotation_period": "1h"}, []string{"rotation_period"}},
		{"root rotation on a new provider that cannot", logical.CreateOperation, "providers/new", map[string]any{"type": noRotateType, "base_url": "mem", "root_token": "mem", "rotation_period": "1h"}, []string{"rotation_period"}},
		{"admin_key the provider rejects", logical.UpdateOperation, "providers/p", map[string]any{"admin_key": "demoadm_00000000000000000000000000000000"}, []string{`"p"`, "401"}},
		{"http template error", logical.CreateOperation, "providers/new", map[string]any{"type": "http", "base_url": url, "root_secret": "s",
			"create_path": "/v1/keys", "revoke_path": "/v1/keys/{{.Key.ID", "verify_path": "/v1/whoami", "key_id_path": "id", "key_secret_path": "key"}, []string{"revoke_path"}},
		{"deleting a provider in use", logical.DeleteOperation, "providers/p", nil, []string{"dyn", "dual"}},
		{"provider name with ..", logical.CreateOperation, "providers/a..", map[string]any{"type": "demo", "base_url": url, "admin_key": adminKey}, []string{"name", `".."`}},
		{"provider name over 128 characters", logical.CreateOperation, "providers/" + long, map[string]any{"type": "demo", "base_url": url, "admin_key": adminKey}, []string{"name", "128"}},
		{"read of a provider named ..", logical.ReadOperation, "providers/a..", nil, []string{"name", "must not contain"}},
		{"base_url plain http to another host", logical.UpdateOperation, "providers/p", map[string]any{"base_url": "http://demo.example.com", "admin_key": adminKey}, []string{"base_url", "https"}},
		{"base_url plain http to the metadata address", logical.UpdateOperation, "providers/p", map[string]any{"base_url": "http://169.254.169.254", "admin_key": adminKey}, []string{"base_url", "https"}},
		{"new provider with a plain http base_url", logical.CreateOperation, "providers/new", map[string]any{"type": "demo", "base_url": "http://demo.example.com", "admin_key": adminKey}, []string{"base_url", "https"}},
		{"base_url with userinfo", logical.UpdateOperation, "providers/p", map[string]any{"base_url": "https://user:hunter22@127.0.0.1", "admin_key": adminKey}, []string{"base_url", "user"}},
		{"base_url changed without the credential", logical.UpdateOperation, "providers/p", map[string]any{"base_url": url2}, []string{"admin_key", "base_url"}},
		{"allow_insecure_http turned on without the credential", logical.UpdateOperation, "providers/p", map[string]any{"allow_insecure_http": true}, []string{"admin_key", "allow_insecure_http"}},
		{"base_url changed to a host that refuses the credential", logical.UpdateOperation, "providers/p", map[string]any{"base_url": "http://127.0.0.1:1", "admin_key": adminKey, "same_account": true}, []string{"admin_key"}},
		{"base_url changed while a dual role's keys live at the account", logical.UpdateOperation, "providers/p", map[string]any{"base_url": "http://127.0.0.1:1", "admin_key": adminKey}, []string{"base_url", "dual roles dual", "same_account=true"}},
		{"request_timeout over 5m", logical.UpdateOperation, "providers/p", map[string]any{"request_timeout": "2000000h"}, []string{"request_timeout", "5m"}},
		{"root cron that never fires", logical.UpdateOperation, "providers/p", map[string]any{"rotation_schedule": "0 0 30 2 *"}, []string{"rotation_schedule", "never fires"}},
		{"root rotation_window under a minute", logical.UpdateOperation, "providers/p", map[string]any{"rotation_schedule": "@daily", "rotation_window": "30s"}, []string{"rotation_window"}},

		// Roles.
		{"role without provider", logical.CreateOperation, "roles/new", map[string]any{"mode": "dynamic"}, []string{"provider"}},
		{"role without mode", logical.CreateOperation, "roles/new", map[string]any{"provider": "p"}, []string{"mode"}},
		{"unknown mode", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "triple"}, []string{"mode"}},
		{"provider does not exist", logical.CreateOperation, "roles/new", map[string]any{"provider": "nosuch", "mode": "dual"}, []string{"provider", "nosuch"}},
		{"dynamic role moved to a missing provider", logical.UpdateOperation, "roles/dyn", map[string]any{"provider": "nosuch"}, []string{"provider", "nosuch"}},
		{"ttl > max_ttl on create", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "2h", "max_ttl": "1h"}, []string{"ttl", "max_ttl"}},
		{"max_ttl lowered under ttl", logical.UpdateOperation, "roles/dyn", map[string]any{"max_ttl": "30m"}, []string{"max_ttl"}},
		{"bad ttl", logical.UpdateOperation, "roles/dyn", map[string]any{"ttl": "banana"}, []string{"ttl"}},
		{"negative ttl", logical.UpdateOperation, "roles/dyn", map[string]any{"ttl": "-5m"}, []string{"ttl"}},
		{"bad overlap", logical.UpdateOperation, "roles/dual", map[string]any{"overlap": "soon"}, []string{"overlap"}},
		{"bad role cron", logical.UpdateOperation, "roles/dual", map[string]any{"rotation_schedule": "* * *"}, []string{"rotation_schedule"}},
		{"overlap = rotation_period", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "10s", "overlap": "10s"}, []string{"overlap"}},
		{"overlap raised to the period", logical.UpdateOperation, "roles/dual", map[string]any{"overlap": "1h"}, []string{"overlap"}},
		{"period lowered to the overlap", logical.UpdateOperation, "roles/dual", map[string]any{"rotation_period": "10m"}, []string{"overlap"}},
		{"overlap under 1s", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "10s", "overlap": "0s"}, []string{"overlap"}},
		{"rotation_period under 5s", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "4s", "overlap": "1s"}, []string{"rotation_period"}},
		{"no rotation at all", logical.UpdateOperation, "roles/dual", map[string]any{"rotation_period": "0"}, []string{"rotation_period"}},
		{"role rotation_schedule more often than 5s", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dual", "rotation_schedule": "@every 2s", "overlap": "1s"}, []string{"rotation_schedule"}},
		{"rotation_window without schedule", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "1h", "overlap": "1m", "rotation_window": "1m"}, []string{"rotation_window"}},
		{"rotation_window added without schedule", logical.UpdateOperation, "roles/dual", map[string]any{"rotation_window": "1m"}, []string{"rotation_window"}},
		{"rotation_period and rotation_schedule", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "1h", "rotation_schedule": "@daily"}, []string{"rotation_period", "rotation_schedule"}},
		{"overlap on a dynamic role", logical.UpdateOperation, "roles/dyn", map[string]any{"overlap": "1m"}, []string{"overlap"}},
		{"rotation_period on a dynamic role", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dynamic", "rotation_period": "1h"}, []string{"rotation_period"}},
		{"changing mode to dual", logical.UpdateOperation, "roles/dyn", map[string]any{"mode": "dual"}, []string{"mode", "immutable"}},
		{"changing mode to dynamic", logical.UpdateOperation, "roles/dual", map[string]any{"mode": "dynamic"}, []string{"mode", "immutable"}},
		{"changing a dual role's provider", logical.UpdateOperation, "roles/dual", map[string]any{"provider": "p2"}, []string{"provider"}},
		{"bad name_template", logical.UpdateOperation, "roles/dyn", map[string]any{"name_template": "{{.Nope"}, []string{"name_template"}},
		{"dual role with parameters the type rejects", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dual", "parameters": "team=a"}, []string{"parameters"}},
		{"dynamic role with parameters the type rejects", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dynamic", "parameters": "team=a"}, []string{"parameters", "team"}},
		{"dynamic role given parameters the type rejects", logical.UpdateOperation, "roles/dyn", map[string]any{"parameters": "team=a"}, []string{"parameters", "team"}},
		{"dual role given parameters the type rejects", logical.UpdateOperation, "roles/dual", map[string]any{"parameters": "team=a"}, []string{"parameters", "team"}},
		{"role name with ..", logical.CreateOperation, "roles/a..", map[string]any{"provider": "p", "mode": "dynamic"}, []string{"name", `".."`}},
		{"role name over 128 characters", logical.CreateOperation, "roles/" + long, map[string]any{"provider": "p", "mode": "dynamic"}, []string{"name", "128"}},
		{"role provider named ..", logical.CreateOperation, "roles/new", map[string]any{"provider": "a..", "mode": "dynamic"}, []string{"provider", `".."`}},
		{"misspelt role field", logical.UpdateOperation, "roles/dyn", map[string]any{"tll": "1h"}, []string{"tll"}},
		{"unknown role field on create", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dynamic", "bogus": "x"}, []string{"bogus"}},
		{"name_template with a missing key", logical.UpdateOperation, "roles/dyn", map[string]any{"name_template": "{{.Nope}}-{{random 6}}"}, []string{"name_template", "Nope"}},
		{"name_template random too long", logical.UpdateOperation, "roles/dyn", map[string]any{"name_template": "{{random 100000000}}"}, []string{"name_template", "random"}},
		{"name_template truncate too long", logical.UpdateOperation, "roles/dyn", map[string]any{"name_template": "{{.RoleName | truncate 100000}}-{{random 6}}"}, []string{"name_template", "truncate"}},
		{"name_template printf", logical.UpdateOperation, "roles/dyn", map[string]any{"name_template": `{{printf "%0100000000d" 1}}`}, []string{"name_template", "printf"}},
		{"name_template range", logical.UpdateOperation, "roles/dyn", map[string]any{"name_template": "{{range 100000000}}x{{end}}"}, []string{"name_template", "range"}},
		{"name_template rendering names too long", logical.UpdateOperation, "roles/dyn", map[string]any{"name_template": "vault-{{.DisplayName}}-{{random 6}}"}, []string{"name_template", "128"}},
		{"name_template over 128 characters of text", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dynamic", "name_template": strings.Repeat("k", 200)}, []string{"name_template", "128"}},
		{"role cron that never fires", logical.UpdateOperation, "roles/dual", map[string]any{"rotation_schedule": "0 0 30 2 *"}, []string{"rotation_schedule", "never fires"}},
		{"rotation_window under a minute", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dual", "rotation_schedule": "@daily", "rotation_window": "30s"}, []string{"rotation_window"}},
		{"rotation_window longer than the schedule's interval", logical.CreateOperation, "roles/new", map[string]any{"provider": "p", "mode": "dual", "rotation_schedule": "@hourly", "overlap": "10m", "rotation_window": "2h"}, []string{"rotation_window", "interval"}},
		{"creds of a role named ..", logical.ReadOperation, "creds/a..", nil, []string{"role", "must not contain"}},
		{"rotate-role of a role named ..", logical.UpdateOperation, "rotate-role/a..", nil, []string{"name", "must not contain"}},

		// Rotation.
		{"rotate-role of a dynamic role", logical.UpdateOperation, "rotate-role/dyn", nil, []string{"dyn", "dual"}},
		{"rotate-role of a missing role", logical.UpdateOperation, "rotate-role/nosuch", nil, []string{"nosuch"}},
		{"rotate-root on a provider that cannot", logical.UpdateOperation, "rotate-root/nr", nil, []string{"nr", "cannot rotate"}},
		{"rotate-root of a missing provider", logical.UpdateOperation, "rotate-root/nosuch", nil, []string{"nosuch"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ms := newMemServer(t)
			e.provider("p")
			e.provider("p2")
			e.must(logical.CreateOperation, "providers/nr", map[string]any{"type": noRotateType, "base_url": ms.url, "root_token": ms.root})
			e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h", "max_ttl": "2h"})
			e.dualRole("dual", map[string]any{"rotation_period": "1h", "overlap": "10m"})

			data := map[string]any{}
			for k, v := range tc.data {
				switch {
				case v == url:
					v = e.srv.URL
				case v == url2:
					v = strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)
				case v == adminKey:
					v = e.adminKey
				case v == "mem" && k == "base_url":
					v = ms.url
				case v == "mem" && k == "root_token":
					v = ms.root
				}
				data[k] = v
			}
			reads := []string{"providers/p", "providers/p2", "providers/nr", "roles/dyn", "roles/dual", "status"}
			if (strings.HasPrefix(tc.path, "providers/") || strings.HasPrefix(tc.path, "roles/")) && checkName(tc.path[strings.LastIndex(tc.path, "/")+1:]) == "" {
				reads = append(reads, tc.path)
			}
			before := e.mountState(ms, reads...)
			if before.walPrefix != 0 {
				t.Fatalf("setup left %d WAL entries", before.walPrefix)
			}

			resp, err := e.do(tc.op, tc.path, data)
			if err != nil {
				t.Fatalf("want a 400, got a server error: %v", err)
			}
			if resp == nil || !resp.IsError() {
				t.Fatalf("want a 400, got %v", resp)
			}
			if code, _ := logical.RespondErrorCommon(&logical.Request{Operation: tc.op}, resp, nil); code != 400 {
				t.Fatalf("HTTP status %d, want 400", code)
			}
			msg := resp.Error().Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Fatalf("error %q does not name %q", msg, w)
				}
			}

			after := e.mountState(ms, reads...)
			for k, v := range before.storage {
				if after.storage[k] != v {
					t.Errorf("storage %s changed:\n before %s\n after  %s", k, v, after.storage[k])
				}
			}
			for k := range after.storage {
				if _, ok := before.storage[k]; !ok {
					t.Errorf("storage %s was written", k)
				}
			}
			for p, v := range before.reads {
				if !reflect.DeepEqual(after.reads[p], v) {
					t.Errorf("read %s changed:\n before %v\n after  %v", p, v, after.reads[p])
				}
			}
			if after.demoKeys != before.demoKeys || after.memKeys != before.memKeys {
				t.Errorf("keys created at a provider: demo %d -> %d, in-memory %d -> %d", before.demoKeys, after.demoKeys, before.memKeys, after.memKeys)
			}
		})
	}
}

// Changing a provider so that a role's parameters no longer fit (here an
// http provider's create template that stops using one) is a 400 naming
// the role, and nothing changes; a change that still fits is accepted.
func TestProviderChangeMustKeepItsRolesValid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ms := newMemServer(t)
	fields := map[string]any{"type": "http", "base_url": e.srv.URL, "root_secret": e.adminKey,
		"create_path": "/v1/keys", "create_body": `{"name": {{.Key.Name}}, "scopes": [{{.Parameters.team}}]}`,
		"key_id_path": "id", "key_secret_path": "key", "verify_path": "/v1/whoami", "revoke_path": "/v1/keys/{{.Key.ID}}"}
	e.must(logical.CreateOperation, "providers/h", fields)
	e.must(logical.CreateOperation, "roles/team", map[string]any{"provider": "h", "mode": "dynamic", "parameters": "team=blue"})

	before := e.mountState(ms, "providers/h", "roles/team")
	resp, err := e.do(logical.UpdateOperation, "providers/h", map[string]any{"create_body": `{"name": {{.Key.Name}}}`})
	e.userError(resp, err, `role "team"`)
	e.userError(resp, err, `parameters: unknown parameter "team"`)
	if after := e.mountState(ms, "providers/h", "roles/team"); !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused provider change changed the mount:\nbefore %+v\nafter  %+v", before, after)
	}

	e.must(logical.UpdateOperation, "providers/h", map[string]any{"create_body": `{"name": {{.Key.Name}}, "scopes": [{{.Parameters.team}}, "read"]}`})
	resp = e.must(logical.ReadOperation, "creds/team", nil)
	if k := e.demo.Keys(); len(k) == 0 || resp.Data["key_id"] == nil {
		t.Fatalf("creds after an accepted provider change: %v", resp.Data)
	}
}
