//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// raftCluster is a set of Vault servers on loopback with Raft storage,
// driven by scripts/raft-cluster.sh (one node is the crash test's
// persistent Vault).
type raftCluster struct {
	t     *testing.T
	dir   string
	addrs []string
	token string
}

func (r *raftCluster) script(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(repoRoot, "scripts/raft-cluster.sh"), args...)
	cmd.Env = append(os.Environ(), "VAULT_BIN="+vaultBin)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// startRaftCluster starts n nodes, registers the plugin and mounts it at
// thirdparty/.
func startRaftCluster(t *testing.T, name string, n int) *raftCluster {
	t.Helper()
	// A directory of its own per call, so a test run again in the same
	// process (-count) does not find the last run's Raft data.
	r := &raftCluster{t: t, dir: filepath.Join(workDir, uniq(name))}
	if out, err := r.script("up", r.dir, strconv.Itoa(n), pluginDir); err != nil {
		t.Fatalf("raft-cluster up: %v\n%s%s", err, out, r.logTails(n, 40))
	}
	t.Cleanup(func() { r.script("down", r.dir) })
	f, err := os.Open(filepath.Join(r.dir, "cluster.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		env[k] = v
	}
	r.token = env["VAULT_TOKEN"]
	for i := 1; i <= n; i++ {
		r.addrs = append(r.addrs, env[fmt.Sprintf("ADDR_%d", i)])
	}
	v := &vaultServer{addr: r.addrs[0], client: r.client(1)}
	if err := v.registerAndMount("thirdparty"); err != nil {
		t.Fatal(err)
	}
	return r
}

// logTails returns the last lines of each node's log, for a failure message.
func (r *raftCluster) logTails(n, lines int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		data, err := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("node%d.log", i)))
		if err != nil {
			continue
		}
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		fmt.Fprintf(&b, "\n--- node%d.log (last %d lines) ---\n%s", i, lines, strings.Join(all[max(0, len(all)-lines):], "\n"))
	}
	return b.String()
}

// client returns an API client for node i (1-based).
func (r *raftCluster) client(i int) *api.Client {
	c, err := newClient(r.addrs[i-1])
	if err != nil {
		r.t.Fatal(err)
	}
	c.SetToken(r.token)
	return c
}

// leader returns the index of the active node, waiting for one.
func (r *raftCluster) leader(timeout time.Duration) int {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, err := r.script("leader", r.dir)
		if err == nil {
			if i, err := strconv.Atoi(out); err == nil {
				return i
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no active node within %s", timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (r *raftCluster) kill(i int) {
	r.t.Helper()
	if out, err := r.script("kill", r.dir, strconv.Itoa(i), "KILL"); err != nil {
		r.t.Fatalf("kill node %d: %v\n%s", i, err, out)
	}
}

func (r *raftCluster) start(i int) {
	r.t.Helper()
	if out, err := r.script("start", r.dir, strconv.Itoa(i)); err != nil {
		r.t.Fatalf("start node %d: %v\n%s%s", i, err, out, r.logTails(len(r.addrs), 40))
	}
}

func (r *raftCluster) log(i int) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("node%d.log", i)))
	return string(b)
}

// waitReady waits until node i serves reads of the mount.
func (r *raftCluster) waitReady(i int, path string, timeout time.Duration) {
	r.t.Helper()
	c := r.client(i)
	deadline := time.Now().Add(timeout)
	for {
		_, err := c.Logical().Read(path)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("node %d does not serve %s: %v", i, path, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
