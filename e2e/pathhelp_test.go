//go:build e2e

package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// Acceptance 9: `vault path-help` describes every field: those of roles,
// creds and providers, every registered provider type's fields included,
// each with a description, and names every type.
func TestPathHelpDescribesEveryField(t *testing.T) {
	cases := map[string][]string{
		"thirdparty/roles/x": {"provider", "mode", "ttl", "max_ttl", "scopes", "parameters", "name_template",
			"rotation_period", "rotation_schedule", "rotation_window", "overlap"},
		"thirdparty/providers/x": {"type", "base_url", "allow_insecure_http", "request_timeout", "max_concurrency", "tls_ca_cert",
			"rotation_period", "rotation_schedule", "rotation_window", "disable_automated_rotation", "admin_key"},
		"thirdparty/creds/x": {"role"},
	}
	// Every field of every registered provider type, and every type's name.
	var typeNames []string
	for _, ty := range clients.Types() {
		typeNames = append(typeNames, ty.Name)
		for _, f := range ty.Fields {
			if !slices.Contains(cases["thirdparty/providers/x"], f.Name) {
				cases["thirdparty/providers/x"] = append(cases["thirdparty/providers/x"], f.Name)
			}
		}
	}
	for path, fields := range cases {
		cmd := exec.Command(vaultBin, "path-help", path)
		cmd.Env = append(cmd.Environ(), "VAULT_ADDR="+sharedVlt.addr, "VAULT_TOKEN="+rootToken)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vault path-help %s: %v\n%s", path, err, out)
		}
		help := string(out)
		if path == "thirdparty/providers/x" {
			for _, n := range typeNames {
				if !strings.Contains(help, n) {
					t.Errorf("path-help %s does not name type %s", path, n)
				}
			}
		}
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
