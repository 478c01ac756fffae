package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/algolia/algoliatest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/datadog/datadogtest"
)

// A type that cannot rotate its root (algolia: the admin key cannot be
// rotated through the API): rotate-root is a 400 that says so, automated
// rotation cannot be configured, and status shows root rotation as
// unsupported, while a type that can shows it supported.
func TestRootRotationUnsupportedType(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	al := algoliatest.NewServer()
	t.Cleanup(al.Close)
	dd := datadogtest.NewServer()
	t.Cleanup(dd.Close)
	alFields := map[string]any{"type": "algolia", "base_url": al.URL, "application_id": algoliatest.AppID, "admin_key": al.AdminKey()}

	withPeriod := map[string]any{"rotation_period": "720h"}
	for k, v := range alFields {
		withPeriod[k] = v
	}
	resp, err := e.do(logical.CreateOperation, "providers/al", withPeriod)
	e.userError(resp, err, `rotation_period: provider type "algolia" (as configured) cannot rotate its root credential`)

	e.must(logical.CreateOperation, "providers/al", alFields)
	e.must(logical.CreateOperation, "providers/dd", map[string]any{"type": "datadog", "base_url": dd.URL, "site": "datadoghq.com",
		"api_key": dd.RootAPIKey(), "app_key": dd.RootAppKey()})

	calls := len(al.Requests())
	resp, err = e.do(logical.UpdateOperation, "rotate-root/al", map[string]any{})
	e.userError(resp, err, `provider "al" (type algolia, as configured) cannot rotate its root credential`)
	if len(al.Requests()) != calls {
		t.Fatal("a refused rotate-root called the provider")
	}

	providers, _ := e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)
	for name, want := range map[string]string{"al": "unsupported", "dd": "supported"} {
		p, _ := providers[name].(map[string]any)
		if got := p["root_rotation"]; got != want {
			t.Errorf("status providers.%s.root_rotation = %v, want %v", name, got, want)
		}
		if name == "al" && p["next_root_rotation"] != "" {
			t.Errorf("status providers.al.next_root_rotation = %v, want none", p["next_root_rotation"])
		}
	}
}
