//go:build e2e

// Package e2e drives a real Vault server (started by the suite itself on a
// free loopback port, with the plugin registered) and the real demo
// provider over HTTP.
package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

const (
	pluginName    = "vault-plugin-secrets-thirdparty"
	pluginVersion = "v0.2.0-e2e"
	rootToken     = "root"
	module        = "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty"
)

// Shared by every test: built once in TestMain.
var (
	workDir    string // temp dir for binaries, logs and data
	pluginDir  string
	pluginSHA  string
	demoBin    string
	vaultBin   string
	repoRoot   string
	sharedVlt  *vaultServer
	sharedDemo *demoProvider
)

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	if code == 0 {
		code = m.Run()
	}
	teardown()
	os.Exit(code)
}

var cleanups []func()

func setup() (int, error) {
	var err error
	repoRoot, err = filepath.Abs("..")
	if err != nil {
		return 1, err
	}
	workDir, err = os.MkdirTemp("", "thirdparty-e2e-")
	if err != nil {
		return 1, err
	}
	vaultBin = os.Getenv("VAULT_BIN")
	if vaultBin == "" {
		out, err := exec.Command(filepath.Join(repoRoot, "scripts/vault.sh")).Output()
		if err != nil {
			return 1, fmt.Errorf("scripts/vault.sh: %w", err)
		}
		vaultBin = strings.TrimSpace(string(out))
	}
	pluginDir = filepath.Join(workDir, "plugins")
	if err := os.MkdirAll(pluginDir, 0o755); err != nil {
		return 1, err
	}
	pluginPath := filepath.Join(pluginDir, pluginName)
	if err := goBuild(pluginPath, "./cmd/"+pluginName, "-ldflags", "-X "+module+"/internal/version.Version="+pluginVersion); err != nil {
		return 1, err
	}
	sum, err := fileSHA256(pluginPath)
	if err != nil {
		return 1, err
	}
	pluginSHA = sum
	demoBin = filepath.Join(workDir, "demo-provider")
	if err := goBuild(demoBin, "./cmd/demo-provider"); err != nil {
		return 1, err
	}
	sharedDemo, err = startDemo("shared")
	if err != nil {
		return 1, err
	}
	sharedVlt, err = startDevVault("shared")
	if err != nil {
		return 1, err
	}
	return 0, nil
}

func teardown() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	if os.Getenv("E2E_KEEP") == "" {
		os.RemoveAll(workDir)
	} else {
		fmt.Fprintln(os.Stderr, "e2e: kept", workDir)
	}
}

func goBuild(out, pkg string, extra ...string) error {
	args := append([]string{"build", "-trimpath", "-o", out}, extra...)
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a child process with its combined output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	// logStart is where this run's output begins in logPath: a log is
	// appended to when a test starts a process of the same name again.
	logStart int64
	done     chan struct{}
}

func startProcess(name string, bin string, args ...string) (*process, error) {
	return startProcessEnv(name, nil, bin, args...)
}

// startProcessEnv is startProcess with env added to this process's
// environment.
func startProcessEnv(name string, env []string, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(workDir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fi, err := logf.Stat()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logStart: fi.Size(), done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// stop ends the process group with sig and waits for it.
func (p *process) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// log returns what this run of the process has written.
func (p *process) log() string {
	b, _ := os.ReadFile(p.logPath)
	if int64(len(b)) < p.logStart {
		return ""
	}
	return string(b[p.logStart:])
}

// waitForLine waits until the process's log has a line containing marker
// and returns that line.
func (p *process) waitForLine(marker string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(p.log()))
		for sc.Scan() {
			if strings.Contains(sc.Text(), marker) {
				return sc.Text(), nil
			}
		}
		select {
		case <-p.done:
			return "", fmt.Errorf("%s exited before printing %q; log:\n%s", p.name, marker, tail(p.log(), 40))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%s did not print %q within %s", p.name, marker, timeout)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- Vault ----

type vaultServer struct {
	*process
	addr   string
	client *api.Client
}

func newClient(addr string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(rootToken)
	return c, nil
}

// startDevVault starts `vault server -dev` (in-memory storage) with the
// plugin directory, registers the plugin with its sha256 and version and
// mounts it at thirdparty/.
func startDevVault(name string) (*vaultServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(workDir, name+"-vault.hcl")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("plugin_directory = %q\n", pluginDir)), 0o644); err != nil {
		return nil, err
	}
	p, err := startProcess("vault-"+name, vaultBin, "server", "-dev", "-dev-root-token-id="+rootToken,
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port), "-config="+cfgPath, "-log-level=debug")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { p.stop(syscall.SIGTERM) })
	v := &vaultServer{process: p, addr: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if v.client, err = newClient(v.addr); err != nil {
		return nil, err
	}
	if err := v.waitUnsealed(60 * time.Second); err != nil {
		return nil, err
	}
	if err := v.registerAndMount("thirdparty"); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *vaultServer) waitUnsealed(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		h, err := v.client.Sys().Health()
		if err == nil && h.Initialized && !h.Sealed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault %s not ready: %v; log:\n%s", v.addr, err, tail(v.log(), 30))
		}
		select {
		case <-v.done:
			return fmt.Errorf("vault exited; log:\n%s", tail(v.log(), 40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (v *vaultServer) registerAndMount(path string) error {
	err := v.client.Sys().RegisterPlugin(&api.RegisterPluginInput{
		Name: pluginName, Type: api.PluginTypeSecrets, Command: pluginName, SHA256: pluginSHA, Version: pluginVersion,
	})
	if err != nil {
		return fmt.Errorf("register plugin: %w", err)
	}
	return v.mount(path)
}

func (v *vaultServer) mount(path string) error {
	err := v.client.Sys().Mount(path, &api.MountInput{Type: pluginName, Config: api.MountConfigInput{PluginVersion: pluginVersion}})
	if err != nil {
		return fmt.Errorf("mount %s: %w", path, err)
	}
	return nil
}

// ---- the demo provider ----

type demoProvider struct {
	*process
	URL      string
	AdminKey string
}

func startDemo(name string, extra ...string) (*demoProvider, error) {
	admin := "demoadm_e2e_" + name + "_" + randHex(8)
	args := append([]string{"-listen", "127.0.0.1:0", "-admin-key", admin, "-quiet"}, extra...)
	p, err := startProcess("demo-"+name, demoBin, args...)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { p.stop(syscall.SIGTERM) })
	line, err := p.waitForLine("listening on ", 20*time.Second)
	if err != nil {
		return nil, err
	}
	url := strings.TrimSpace(line[strings.Index(line, "listening on ")+len("listening on "):])
	return &demoProvider{process: p, URL: url, AdminKey: admin}, nil
}

type demoKey struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Kind         string    `json:"kind"`
	State        string    `json:"state"`
	CreatedAt    time.Time `json:"created_at"`
	RevokedAt    time.Time `json:"revoked_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	Uses         int       `json:"uses"`
	RejectedUses int       `json:"rejected_uses"`
}

// keys lists every key the demo provider ever created, filtered by query
// (e.g. "state=live&kind=key").
func (d *demoProvider) keys(t testing.TB, query string) []demoKey {
	t.Helper()
	var out struct {
		Keys []demoKey `json:"keys"`
	}
	d.getJSON(t, "/_demo/keys?"+query, &out)
	return out.Keys
}

func (d *demoProvider) key(t testing.TB, id string) demoKey {
	t.Helper()
	for _, k := range d.keys(t, "") {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("demo provider has no key %s", id)
	return demoKey{}
}

func (d *demoProvider) getJSON(t testing.TB, path string, out any) {
	t.Helper()
	resp, err := http.Get(d.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func (d *demoProvider) setKnobs(t testing.TB, knobs map[string]any) {
	t.Helper()
	b, _ := json.Marshal(knobs)
	resp, err := http.Post(d.URL+"/_demo/knobs", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("knobs: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("knobs: %d", resp.StatusCode)
	}
}

// whoami returns the HTTP status the demo provider gives key.
func (d *demoProvider) whoami(t testing.TB, key string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, d.URL+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// ---- helpers ----

var seqMu sync.Mutex
var seq int

// uniq returns a name unique within this run.
func uniq(prefix string) string {
	seqMu.Lock()
	defer seqMu.Unlock()
	seq++
	return fmt.Sprintf("%s-%d", prefix, seq)
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func write(t testing.TB, c *api.Client, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func read(t testing.TB, c *api.Client, path string) *api.Secret {
	t.Helper()
	s, err := c.Logical().Read(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return s
}

// writeDemoProvider creates a provider of type demo pointing at d.
func writeDemoProvider(t testing.TB, c *api.Client, mount, name string, d *demoProvider) {
	t.Helper()
	write(t, c, mount+"/providers/"+name, map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey})
}
