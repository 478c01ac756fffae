//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 3, acceptance 2: a real `vault agent` renders a dual role's key to a
// file; polled every 200ms across ≥ 6 rotations, the rendered key is
// accepted by the provider at every poll and changes at least 5 times.
func TestVaultAgentRendersRotatingKey(t *testing.T) {
	d, err := startDemo("agent")
	if err != nil {
		t.Fatal(err)
	}
	c := sharedVlt.client
	_, role := dualRole(t, c, d, "thirdparty", map[string]any{"rotation_period": "6s", "overlap": "3s", "ttl": "2s"})

	dir := filepath.Join(workDir, "agent-"+role)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	tokenFile, out := filepath.Join(dir, "token"), filepath.Join(dir, "api_key")
	if err := os.WriteFile(tokenFile, []byte(rootToken), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "token_file" {
    config = { token_file_path = %q }
  }
}
template {
  contents    = "{{ with secret \"thirdparty/creds/%s\" }}{{ .Data.api_key }}{{ end }}"
  destination = %q
}
`, sharedVlt.addr, tokenFile, role, out)
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	agent, err := startProcess("agent-"+role, vaultBin, "agent", "-config="+cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.stop(syscall.SIGTERM)

	deadline := time.Now().Add(15 * time.Second)
	for {
		if b, _ := os.ReadFile(out); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent rendered nothing in 15s; log:\n%s", tail(agent.log(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}

	changes, polls, last := 0, 0, ""
	keys := map[string]bool{}
	end := time.Now().Add(45 * time.Second) // ≥ 7 rotations at 6s
	for time.Now().Before(end) {
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		key := strings.TrimSpace(string(b))
		if key == "" {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		polls++
		if key != last {
			if last != "" {
				changes++
			}
			last = key
			keys[key] = true
			issued.add(key)
		}
		if code := d.whoami(t, key); code != http.StatusOK {
			t.Fatalf("poll %d: the rendered key is rejected by the provider (%d)", polls, code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if changes < 5 {
		t.Fatalf("the rendered key changed %d times over ~7 rotations, want ≥ 5", changes)
	}
	t.Logf("%d polls, %d changes, all accepted", polls, changes)
}
