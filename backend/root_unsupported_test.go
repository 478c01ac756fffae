package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// A provider whose type cannot rotate its root: rotate-root is a 400 that
// says so, and status shows root rotation as unsupported (and a type that
// can as supported).
func TestStatusShowsRootRotationSupport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ms := newMemServer(t)
	e.provider("p")
	e.must(logical.CreateOperation, "providers/nr", map[string]any{"type": noRotateType, "base_url": ms.url, "root_token": ms.root})
	resp, err := e.do(logical.UpdateOperation, "rotate-root/nr", nil)
	e.userError(resp, err, `provider "nr" (type norotatetest, as configured) cannot rotate its root credential`)

	providers := e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)
	if got := providers["nr"].(map[string]any)["root_rotation"]; got != "unsupported" {
		t.Fatalf("status root_rotation of nr = %v, want unsupported", got)
	}
	if got := providers["p"].(map[string]any)["root_rotation"]; got != "supported" {
		t.Fatalf("status root_rotation of p = %v, want supported", got)
	}
	if got := providers["nr"].(map[string]any)["next_root_rotation"]; got != "" {
		t.Fatalf("next_root_rotation of nr = %v", got)
	}
}
