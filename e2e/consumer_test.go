//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Issue 15, acceptance 2: the consumer example (docs/examples/consumer), a
// real process reading a dual role through the Vault API, calls the demo
// provider with its key several times a second across ≥ 6 rotations (every
// 10 s, 4 s overlap) and no call is ever rejected: the demo provider counts
// no rejected use on any of the role's keys.
func TestConsumerExampleFollowsRotation(t *testing.T) {
	d, err := startDemo("consumer")
	if err != nil {
		t.Fatal(err)
	}
	c := sharedVlt.client
	// ttl below the rotation period, so the example also renews.
	_, role := dualRole(t, c, d, "thirdparty", map[string]any{"rotation_period": "10s", "overlap": "4s", "ttl": "6s"})

	bin := filepath.Join(workDir, "consumer")
	if err := goBuild(bin, "./docs/examples/consumer"); err != nil {
		t.Fatal(err)
	}
	summaryPath := filepath.Join(workDir, "consumer-"+role+".json")
	run := 70 * time.Second // ≥ 6 rotations at 10 s
	p, err := startProcessEnv("consumer-"+role, []string{"VAULT_ADDR=" + sharedVlt.addr, "VAULT_TOKEN=" + rootToken},
		bin, "-role", role, "-url", d.URL+"/v1/whoami", "-interval", "150ms", "-duration", run.String(), "-summary", summaryPath)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(run + 30*time.Second):
		t.Fatalf("the consumer did not stop after %s; log:\n%s", run, tail(p.log(), 30))
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("consumer exited %d; log:\n%s", code, tail(p.log(), 30))
	}
	var sum struct {
		Calls, Accepted, Rejected int
		Keys                      []string
	}
	b, err := os.ReadFile(summaryPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}

	keys := append(roleKeys(t, d, role, "live"), roleKeys(t, d, role, "revoked")...)
	used, rejected := 0, 0
	for _, k := range keys {
		used += k.Uses
		rejected += k.RejectedUses
		if k.RejectedUses > 0 {
			t.Errorf("key %s (%s) was rejected %d times", k.ID, k.State, k.RejectedUses)
		}
	}
	t.Logf("consumer: %d calls, %d accepted, %d rejected, %d keys; provider: %d keys, %d uses, %d rejected uses",
		sum.Calls, sum.Accepted, sum.Rejected, len(sum.Keys), len(keys), used, rejected)
	if len(keys) < 7 {
		t.Errorf("the role has %d keys at the provider after %s, want ≥ 7 (6 rotations)", len(keys), run)
	}
	if len(sum.Keys) < 6 {
		t.Errorf("the consumer used %d keys, want ≥ 6: it did not follow the rotations; log:\n%s", len(sum.Keys), tail(p.log(), 30))
	}
	if min := int(run / time.Second * 4); sum.Accepted < min || used < min {
		t.Errorf("%d accepted calls, %d uses at the provider; want ≥ %d (several a second)", sum.Accepted, used, min)
	}
	if sum.Rejected != 0 {
		t.Errorf("the consumer saw %d rejected calls; log:\n%s", sum.Rejected, tail(p.log(), 30))
	}
}
