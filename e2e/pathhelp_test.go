//go:build e2e

package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// Acceptance 9: `vault path-help` describes every field.
func TestPathHelpDescribesEveryField(t *testing.T) {
	cases := map[string][]string{
		"thirdparty/roles/x": {"provider", "mode", "ttl", "max_ttl", "scopes", "parameters", "name_template",
			"rotation_period", "rotation_schedule", "rotation_window", "overlap"},
		"thirdparty/providers/x": {"type", "base_url", "allow_insecure_http", "request_timeout", "max_concurrency", "tls_ca_cert",
			"rotation_period", "rotation_schedule", "rotation_window", "disable_automated_rotation", "admin_key"},
		"thirdparty/creds/x": {"role"},
	}
	for path, fields := range cases {
		cmd := exec.Command(vaultBin, "path-help", path)
		cmd.Env = append(cmd.Environ(), "VAULT_ADDR="+sharedVlt.addr, "VAULT_TOKEN="+rootToken)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vault path-help %s: %v\n%s", path, err, out)
		}
		help := string(out)
		for _, f := range fields {
			// The framework renders each parameter as "    <name> (<type>)",
			// a blank line, then its description indented further.
			i := strings.Index(help, "\n    "+f+" (")
			if i < 0 {
				t.Errorf("path-help %s: no parameter %s", path, f)
				continue
			}
			lines := strings.SplitN(help[i+1:], "\n", 4)
			if len(lines) < 3 || !strings.HasPrefix(lines[2], "        ") || len(strings.TrimSpace(lines[2])) < 10 {
				t.Errorf("path-help %s: parameter %s has no description", path, f)
			}
		}
	}
}
