//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Acceptance 8: no issued api_key and no root credential anywhere in
// Vault's or the plugin's log output. This file sorts last so that it
// scans the logs of everything the suite did before it.
func TestNoSecretInLogs(t *testing.T) {
	secrets := issued.all()
	if len(secrets) < 100 {
		t.Fatalf("only %d secrets recorded; the suite should have issued more before this test", len(secrets))
	}
	secrets = append(secrets, sharedDemo.AdminKey)
	// The shared dev server, Raft nodes (HA and crash tests) and agents.
	logs, _ := filepath.Glob(filepath.Join(workDir, "vault-*.log"))
	nodes, _ := filepath.Glob(filepath.Join(workDir, "*", "node*.log"))
	agents, _ := filepath.Glob(filepath.Join(workDir, "agent-*.log"))
	logs = append(append(logs, nodes...), agents...)
	if len(logs) == 0 {
		t.Fatal("no Vault log found")
	}
	scanned := 0
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		log := string(b)
		scanned += len(log)
		// Dev servers always run the plugin, so their logs must show its
		// lines; a Raft node that never became active never loads it.
		if strings.HasPrefix(filepath.Base(path), "vault-") && !strings.Contains(log, pluginName) {
			t.Errorf("%s does not mention the plugin: is its output captured?", filepath.Base(path))
		}
		for _, s := range secrets {
			if strings.Contains(log, s) {
				t.Errorf("%s contains a secret (%s…)", filepath.Base(path), s[:8])
			}
		}
	}
	t.Logf("scanned %d bytes of Vault logs for %d secrets", scanned, len(secrets))
}
