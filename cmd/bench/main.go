// Command bench is `make bench`: a load benchmark of the plugin against a
// real Vault dev server and the demo provider, both started here on free
// loopback ports. At each concurrency (1, 8 and 32 clients by default) it
// measures kv-v2 write, kv-v2 read, dual creds read, dynamic creds read and
// lease revoke, reports throughput and p50/p99 latency, each also as a ratio
// to kv-v2 write at the same concurrency (the baseline of the same run),
// prints the table and writes it into docs/performance.md between
// <!-- make-bench:start --> and <!-- make-bench:end -->.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

const (
	pluginName  = "vault-plugin-secrets-thirdparty"
	floorPlugin = "bench-floor-plugin" // cmd/bench-floor-plugin, mounted at floor/
	rootToken   = "root"
	markerStart = "<!-- make-bench:start -->"
	markerEnd   = "<!-- make-bench:end -->"

	dualRole    = "bench-dual"
	dynamicRole = "bench-dynamic"
	kvKeys      = 64 // distinct kv-v2 keys read (written once before the run)
)

type options struct {
	root          string
	binDir        string
	doc           string
	pluginVersion string
	duration      time.Duration
	warmup        time.Duration
	conc          []int
	keep          bool
	noDoc         bool
	pluginEnv     []string
	// ops are the -ops names in the order given: the order of the cells
	// at each client count.
	ops []string
	// slices > 1 runs each creds cell paired with its own kv-v2 write
	// baseline, in that many alternating slices (see runPaired).
	slices int
}

// has reports whether -ops asks for op.
func (o options) has(op string) bool { return slices.Contains(o.ops, op) }

// floors reports whether a floor cell runs, which needs the floor plugin.
func (o options) floors() bool { return o.has("floor") || o.has("dynfloor") }

func (o options) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(o.root, p)
}

func main() {
	var o options
	var conc string
	flag.StringVar(&o.root, "root", ".", "repository root")
	flag.StringVar(&o.binDir, "bin", "bin", "directory holding plugins/"+pluginName+" and demo-provider (relative to -root)")
	flag.StringVar(&o.doc, "doc", "docs/performance.md", "file to update between the make-bench markers (relative to -root)")
	flag.StringVar(&o.pluginVersion, "plugin-version", "v0.2.0", "version the plugin binary was built with (Makefile VERSION)")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "measured time per cell")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per cell")
	flag.StringVar(&conc, "concurrency", "1,8,32", "comma-separated client counts")
	flag.BoolVar(&o.keep, "keep", false, "keep the run directory (logs) afterwards")
	flag.BoolVar(&o.noDoc, "no-doc", false, "print only; do not update the doc")
	flag.IntVar(&o.slices, "slices", 1, "run each creds cell in this many slices alternating with slices of a kv-v2 write baseline of its own (1: one cell against the kv-v2 write cell of its client count)")
	flag.Func("plugin-env", "KEY=VALUE set in the plugin's environment at registration (repeatable; for A/B runs such as GOGC)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		o.pluginEnv = append(o.pluginEnv, v)
		return nil
	})
	ops := flag.String("ops", strings.Join(knownOps, ","), "operations to run, in this order at each client count (for profiling one path, or A/B order checks; the doc needs all)")
	flag.Parse()
	if o.slices < 1 {
		fmt.Fprintf(os.Stderr, "bench: bad -slices %d\n", o.slices)
		os.Exit(2)
	}
	for _, s := range strings.Split(*ops, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(knownOps, s) || o.has(s) {
			fmt.Fprintf(os.Stderr, "bench: bad -ops %q: each of %s at most once\n", *ops, strings.Join(knownOps, ", "))
			os.Exit(2)
		}
		o.ops = append(o.ops, s)
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: bad -concurrency %q\n", conc)
			os.Exit(2)
		}
		o.conc = append(o.conc, n)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o)
	stop()
	os.Exit(code)
}

// ---- child processes ----

type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

func startProc(dir, name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a terminal Ctrl-C reaches only us, and stop()
	// ends the whole group (Vault's plugin processes included). Pdeathsig
	// is a safety net if we are killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *proc) waitForLine(ctx context.Context, marker string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p.logPath)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, marker) {
				return l, nil
			}
		}
		select {
		case <-p.done:
			return "", fmt.Errorf("%s exited; log:\n%s", p.name, p.tail(30))
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("%s did not print %q within %s", p.name, marker, timeout)
}

// freePortPair returns a free loopback port whose successor is free too: a
// dev server's cluster listener takes the API port + 1.
func freePortPair() (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port pair on 127.0.0.1")
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
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

// ---- CPU accounting (Linux /proc) ----

var clkTck = 100.0 // USER_HZ; 100 on every Linux this runs on

// cpuTime returns the user+system CPU time of pid (0: this process).
func cpuTime(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// After "pid (comm)": state(0) ppid(1) ... utime(11) stime(12).
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return time.Duration((u + st) / clkTck * float64(time.Second))
}

// childPID finds a child of parent whose command line contains name.
func childPID(parent int, name string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cl), name) {
			return pid
		}
	}
	return 0
}

type cpuSnap struct {
	vault, plugin, demo, bench time.Duration
	// The whole machine (/proc/stat): busy and total CPU time.
	sysBusy, sysAll time.Duration
}

// sysCPU returns the machine's busy and total CPU time so far.
func sysCPU() (busy, all time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle float64
	for i, v := range f[1:9] {
		x, _ := strconv.ParseFloat(v, 64)
		sum += x
		if i == 3 || i == 4 { // idle, iowait
			idle += x
		}
	}
	tick := func(x float64) time.Duration { return time.Duration(x / clkTck * float64(time.Second)) }
	return tick(sum - idle), tick(sum)
}

type pids struct{ vault, plugin, demo int }

func (p pids) snap() cpuSnap {
	busy, all := sysCPU()
	return cpuSnap{vault: cpuTime(p.vault), plugin: cpuTime(p.plugin), demo: cpuTime(p.demo), bench: cpuTime(0), sysBusy: busy, sysAll: all}
}

func (a cpuSnap) sub(b cpuSnap) cpuSnap {
	return cpuSnap{a.vault - b.vault, a.plugin - b.plugin, a.demo - b.demo, a.bench - b.bench, a.sysBusy - b.sysBusy, a.sysAll - b.sysAll}
}

func (a cpuSnap) add(b cpuSnap) cpuSnap {
	return cpuSnap{a.vault + b.vault, a.plugin + b.plugin, a.demo + b.demo, a.bench + b.bench, a.sysBusy + b.sysBusy, a.sysAll + b.sysAll}
}

func (a cpuSnap) total() time.Duration { return a.vault + a.plugin + a.demo + a.bench }

// ---- the environment ----

type env struct {
	o         options
	runDir    string
	vault     *proc
	demo      *proc
	addr      string
	demoURL   string
	adminKey  string
	vaultBin  string
	vaultVer  string
	admin     *api.Client
	clients   []*api.Client
	pids      pids
	floorPID  int // the floor plugin's process, measured in its cells
	retried   int // cells run again because of outside load
	cleanupMu sync.Mutex
}

func newClient(addr string) (*api.Client, error) {
	cfg := api.DefaultConfig() // its own pooled keep-alive transport
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	cfg.Address = addr
	cfg.MaxRetries = 0
	cfg.Timeout = 60 * time.Second
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(rootToken)
	c.ClearNamespace()
	return c, nil
}

func (e *env) stopAll() {
	e.cleanupMu.Lock()
	defer e.cleanupMu.Unlock()
	if e.vault != nil {
		e.vault.stop()
	}
	if e.demo != nil {
		e.demo.stop()
	}
}

func (e *env) start(ctx context.Context) error {
	o := e.o
	e.vaultBin = os.Getenv("VAULT_BIN")
	if e.vaultBin == "" {
		cmd := exec.CommandContext(ctx, filepath.Join(o.root, "scripts/vault.sh"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("scripts/vault.sh: %w", err)
		}
		e.vaultBin = strings.TrimSpace(string(out))
	}
	binDir, err := filepath.Abs(o.path(o.binDir))
	if err != nil {
		return err
	}
	pluginDir := filepath.Join(binDir, "plugins")
	pluginPath := filepath.Join(pluginDir, pluginName)
	floorPath := filepath.Join(pluginDir, floorPlugin)
	demoBin := filepath.Join(binDir, "demo-provider")
	need := []string{pluginPath, demoBin}
	if o.floors() {
		need = append(need, floorPath)
	}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s missing: run `make build` first (%w)", p, err)
		}
	}
	sum, err := fileSHA256(pluginPath)
	if err != nil {
		return err
	}

	// The demo provider, no fault knobs.
	e.adminKey = "demoadm_" + randHex(16)
	e.demo, err = startProc(e.runDir, "demo-provider", demoBin, "-listen", "127.0.0.1:0", "-admin-key", e.adminKey, "-quiet")
	if err != nil {
		return err
	}
	line, err := e.demo.waitForLine(ctx, "listening on ", 20*time.Second)
	if err != nil {
		return err
	}
	e.demoURL = strings.TrimSpace(line[strings.Index(line, "listening on ")+len("listening on "):])

	// Vault dev server (in-memory storage) with the plugin directory.
	port, err := freePortPair()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(e.runDir, "vault.hcl")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("plugin_directory = %q\n", pluginDir)), 0o644); err != nil {
		return err
	}
	e.vault, err = startProc(e.runDir, "vault", e.vaultBin, "server", "-dev", "-dev-root-token-id="+rootToken,
		"-dev-no-store-token", fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port), "-config="+cfgPath)
	if err != nil {
		return err
	}
	e.addr = fmt.Sprintf("http://127.0.0.1:%d", port)
	if e.admin, err = newClient(e.addr); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, err := e.admin.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed {
			e.vaultVer = h.Version
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-e.vault.done:
			return fmt.Errorf("vault exited; log:\n%s", e.vault.tail(30))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault not ready: %v; log:\n%s", err, e.vault.tail(30))
		}
	}

	// Register and mount like scripts/dev.sh. Long lease TTLs: nothing
	// expires during the run; each cell's leases are revoked after it.
	sys := e.admin.Sys()
	if err := sys.RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name: pluginName, Type: api.PluginTypeSecrets, Command: pluginName, SHA256: sum, Version: o.pluginVersion,
		Env: o.pluginEnv,
	}); err != nil {
		return fmt.Errorf("register plugin: %w", err)
	}
	if err := sys.MountWithContext(ctx, "thirdparty", &api.MountInput{Type: pluginName, Config: api.MountConfigInput{
		PluginVersion: o.pluginVersion, DefaultLeaseTTL: "1h", MaxLeaseTTL: "2h",
	}}); err != nil {
		return fmt.Errorf("mount thirdparty/: %w", err)
	}
	if o.floors() {
		if err := e.mountFloor(ctx, floorPath); err != nil {
			return err
		}
	}
	if err := sys.MountWithContext(ctx, "kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return fmt.Errorf("mount kv/: %w", err)
	}
	lg := e.admin.Logical()
	if _, err := lg.WriteWithContext(ctx, "thirdparty/providers/demo", map[string]any{
		"type": "demo", "base_url": e.demoURL, "admin_key": e.adminKey,
	}); err != nil {
		return fmt.Errorf("write provider: %w", err)
	}
	if _, err := lg.WriteWithContext(ctx, "thirdparty/roles/"+dynamicRole, map[string]any{
		"provider": "demo", "mode": "dynamic", "ttl": "1h", "max_ttl": "2h",
	}); err != nil {
		return fmt.Errorf("write dynamic role: %w", err)
	}
	if _, err := lg.WriteWithContext(ctx, "thirdparty/roles/"+dualRole, map[string]any{
		"provider": "demo", "mode": "dual", "ttl": "1h", "rotation_period": "24h", "overlap": "2h",
	}); err != nil {
		return fmt.Errorf("write dual role: %w", err)
	}
	// kv-v2 upgrades its fresh mount in the background; wait for writes.
	for i := 0; ; i++ {
		_, err := lg.WriteWithContext(ctx, "kv/data/bench/ready", map[string]any{"data": map[string]any{"ok": "1"}})
		if err == nil {
			break
		}
		if i > 100 || ctx.Err() != nil {
			return fmt.Errorf("kv-v2 not writable: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < kvKeys; i++ {
		if _, err := lg.WriteWithContext(ctx, fmt.Sprintf("kv/data/bench/r%d", i), kvPayload()); err != nil {
			return fmt.Errorf("kv seed: %w", err)
		}
	}
	// Sanity: both roles issue, and the plugin process is up.
	data := map[string]map[string]any{}
	for _, role := range []string{dualRole, dynamicRole} {
		s, err := lg.ReadWithContext(ctx, "thirdparty/creds/"+role)
		if err != nil || s == nil || s.LeaseID == "" || s.Data["api_key"] == nil {
			return fmt.Errorf("creds/%s sanity read: %v", role, err)
		}
		data[role] = s.Data
		if err := sys.RevokeWithContext(ctx, s.LeaseID); err != nil {
			return fmt.Errorf("revoke sanity lease: %w", err)
		}
	}
	e.pids = pids{vault: e.vault.cmd.Process.Pid, plugin: childPID(e.vault.cmd.Process.Pid, pluginName), demo: e.demo.cmd.Process.Pid}
	if o.floors() {
		// The floor answers what the real reads answer, field for field.
		for path, role := range map[string]string{"floor/creds/" + dualRole: dualRole, "floor/dynamic/" + dynamicRole: dynamicRole} {
			s, err := lg.ReadWithContext(ctx, path)
			if err != nil || s == nil || s.LeaseID == "" {
				return fmt.Errorf("%s sanity read: %v", path, err)
			}
			if got, want := sortedKeys(s.Data), sortedKeys(data[role]); !slices.Equal(got, want) {
				return fmt.Errorf("%s answers fields %v, creds/%s %v: update cmd/bench-floor-plugin", path, got, role, want)
			}
			if err := sys.RevokeWithContext(ctx, s.LeaseID); err != nil {
				return fmt.Errorf("revoke floor sanity lease: %w", err)
			}
		}
		e.floorPID = childPID(e.vault.cmd.Process.Pid, floorPlugin)
	}

	max := 0
	for _, c := range o.conc {
		if c > max {
			max = c
		}
	}
	for i := 0; i < max; i++ {
		c, err := newClient(e.addr)
		if err != nil {
			return err
		}
		e.clients = append(e.clients, c)
	}
	return nil
}

// mountFloor registers the floor plugin and mounts it at floor/ with the
// lease TTLs of thirdparty/.
func (e *env) mountFloor(ctx context.Context, path string) error {
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	sys := e.admin.Sys()
	if err := sys.RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name: floorPlugin, Type: api.PluginTypeSecrets, Command: floorPlugin, SHA256: sum, Env: e.o.pluginEnv,
	}); err != nil {
		return fmt.Errorf("register floor plugin: %w", err)
	}
	if err := sys.MountWithContext(ctx, "floor", &api.MountInput{Type: floorPlugin, Config: api.MountConfigInput{
		DefaultLeaseTTL: "1h", MaxLeaseTTL: "2h",
	}}); err != nil {
		return fmt.Errorf("mount floor/: %w", err)
	}
	if _, err := e.admin.Logical().WriteWithContext(ctx, "floor/config", map[string]any{
		"base_url": e.demoURL, "admin_key": e.adminKey,
	}); err != nil {
		return fmt.Errorf("floor/config: %w", err)
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func kvPayload() map[string]any {
	return map[string]any{"data": map[string]any{"username": "bench", "password": randHex(16), "note": "make bench kv-v2 payload"}}
}

// ---- cells ----

var errExhausted = errors.New("lease pool exhausted")

// leasePool hands out pre-issued lease ids once each.
type leasePool struct {
	ids  []string
	next atomic.Int64
}

func (p *leasePool) take() (string, bool) {
	i := p.next.Add(1) - 1
	if i >= int64(len(p.ids)) {
		return "", false
	}
	return p.ids[i], true
}

func (p *leasePool) rest() []string {
	i := p.next.Load()
	if i >= int64(len(p.ids)) {
		return nil
	}
	return p.ids[i:]
}

// leaseSink collects lease ids issued by a cell, per worker.
type leaseSink [][]string

func (s leaseSink) all() []string {
	var out []string
	for _, w := range s {
		out = append(out, w...)
	}
	return out
}

// take returns every lease id collected and empties the sink.
func (s leaseSink) take() []string {
	out := s.all()
	for i := range s {
		s[i] = nil
	}
	return out
}

type opFunc func(ctx context.Context, worker int, c *api.Client) error

type cell struct {
	op        string
	conc      int
	ops       int
	errs      int
	firstErr  string
	window    time.Duration
	p50, p99  time.Duration
	mean      time.Duration
	exhausted bool
	cpu       cpuSnap
	// lat holds the latencies of the successful operations, sorted.
	lat []time.Duration
	// base is the kv-v2 write measured in slices alternating with this
	// cell's (runPaired), or nil.
	base *cell
}

func (c cell) opsPerSec() float64 {
	if c.window <= 0 {
		return 0
	}
	return float64(c.ops) / c.window.Seconds()
}

// runCell runs op on conc workers: warm-up, then the measured window. An
// op counts (latency and throughput) when it starts inside the window.
func (e *env) runCell(ctx context.Context, name string, conc int, op opFunc) cell {
	return e.runWindow(ctx, name, conc, op, e.o.warmup, e.o.duration)
}

// runWindow is runCell with its own warm-up and window.
func (e *env) runWindow(ctx context.Context, name string, conc int, op opFunc, warmup, duration time.Duration) cell {
	type sample struct {
		lat       []time.Duration
		errs      int
		firstErr  string
		lastEnd   time.Time
		exhausted bool
	}
	samples := make([]sample, conc)
	start := time.Now()
	t0 := start.Add(warmup)
	t1 := t0.Add(duration)

	// CPU: a snapshot at t0 and one when the workers are done.
	snap0 := make(chan cpuSnap, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		sleepUntil(cctx, t0)
		if cctx.Err() == nil {
			snap0 <- e.pids.snap()
		}
		close(snap0)
	}()

	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := &samples[w]
			s.lat = make([]time.Duration, 0, 1<<14)
			c := e.clients[w]
			for ctx.Err() == nil {
				begin := time.Now()
				if !begin.Before(t1) {
					return
				}
				err := op(ctx, w, c)
				end := time.Now()
				if errors.Is(err, errExhausted) {
					s.exhausted = true
					return
				}
				if begin.Before(t0) {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					s.errs++
					if s.firstErr == "" {
						s.firstErr = err.Error()
					}
					continue
				}
				s.lat = append(s.lat, end.Sub(begin))
				s.lastEnd = end
			}
		}(w)
	}
	wg.Wait()
	cpu1 := e.pids.snap()
	cancel()
	exhausted := false
	for _, s := range samples {
		exhausted = exhausted || s.exhausted
	}
	var cpu cpuSnap
	if s0, ok := <-snap0; ok {
		cpu = cpu1.sub(s0)
	}

	res := cell{op: name, conc: conc, window: duration, exhausted: exhausted, cpu: cpu}
	var all []time.Duration
	var lastEnd time.Time
	for _, s := range samples {
		all = append(all, s.lat...)
		res.errs += s.errs
		if res.firstErr == "" {
			res.firstErr = s.firstErr
		}
		if s.lastEnd.After(lastEnd) {
			lastEnd = s.lastEnd
		}
	}
	if exhausted {
		res.window = lastEnd.Sub(t0)
	}
	res.setLatencies(all)
	return res
}

// setLatencies sets the operation count and the latency figures.
func (c *cell) setLatencies(all []time.Duration) {
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	c.lat, c.ops = all, len(all)
	c.p50, c.p99, c.mean = 0, 0, 0
	if len(all) > 0 {
		c.p50 = pct(all, 0.50)
		c.p99 = pct(all, 0.99)
		var sum time.Duration
		for _, d := range all {
			sum += d
		}
		c.mean = sum / time.Duration(len(all))
	}
}

// merge adds the slice d of the same operation to c.
func (c *cell) merge(d cell) {
	if c.op == "" {
		c.op, c.conc = d.op, d.conc
	}
	c.window += d.window
	c.errs += d.errs
	if c.firstErr == "" {
		c.firstErr = d.firstErr
	}
	c.exhausted = c.exhausted || d.exhausted
	c.cpu = c.cpu.add(d.cpu)
	c.setLatencies(append(slices.Clone(c.lat), d.lat...))
}

// runPaired runs op in e.o.slices slices alternating with slices of the
// kv-v2 write (kv write first), each 1/slices of the window after 1/slices
// of the warm-up, and returns op's cell with the kv-v2 write's as its base.
// Both then meet the same outside load, which on a shared machine moves
// from one second to the next: two cells run 10-30 s apart do not.
//
// clear (outside the timing) revokes the leases of each op slice before
// the next kv-v2 write slice, so that, as in its own cell, the kv-v2 write
// runs with none of them outstanding (tens of thousands of leases make
// every request of Vault's dearer). The price: an op slice ends with
// 1/slices of the leases a whole cell would, which favours op a little.
func (e *env) runPaired(ctx context.Context, name string, conc int, op opFunc, clear func() error) (cell, error) {
	var res, base cell
	n := time.Duration(e.o.slices)
	for i := 0; i < e.o.slices && ctx.Err() == nil; i++ {
		base.merge(e.runWindow(ctx, opNames[0]+" (paired)", conc, kvWriteOp, e.o.warmup/n, e.o.duration/n))
		res.merge(e.runWindow(ctx, name, conc, op, e.o.warmup/n, e.o.duration/n))
		if err := clear(); err != nil {
			return res, err
		}
	}
	res.base = &base
	return res, ctx.Err()
}

// kvWriteOp writes the worker's own kv-v2 key (a new version each time).
func kvWriteOp(ctx context.Context, w int, c *api.Client) error {
	_, err := c.Logical().WriteWithContext(ctx, fmt.Sprintf("kv/data/bench/w%d", w), kvPayload())
	return err
}

func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// pct is the nearest-rank percentile of sorted samples.
func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// revokeAll revokes lease ids with up to 32 parallel clients (outside any
// timing), then revoke-prefix (sync) for any stragglers under prefix.
func (e *env) revokeAll(ctx context.Context, ids []string, prefix string) error {
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < len(e.clients); w++ {
		wg.Add(1)
		go func(c *api.Client) {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(ids)) {
					return
				}
				if err := c.Sys().RevokeWithContext(ctx, ids[i]); err != nil {
					failed.Add(1)
				}
			}
		}(e.clients[w])
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := e.admin.Sys().RevokeWithOptionsWithContext(ctx, &api.RevokeOptions{LeaseID: prefix, Prefix: true, Sync: true}); err != nil {
		return fmt.Errorf("revoke-prefix %s: %w", prefix, err)
	}
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d lease revocations failed during cleanup (retried by revoke-prefix)\n", n)
	}
	// The next cell must start with none of this role's leases left.
	s, err := e.admin.Logical().ListWithContext(ctx, "sys/leases/lookup/"+prefix+"/")
	if err != nil {
		return fmt.Errorf("list leases of %s: %w", prefix, err)
	}
	if s != nil {
		if keys, _ := s.Data["keys"].([]any); len(keys) > 0 {
			return fmt.Errorf("%d leases of %s left after cleanup", len(keys), prefix)
		}
	}
	return nil
}

// liveDemoKeys counts the live normal keys at the demo provider.
func (e *env) liveDemoKeys(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.demoURL+"/_demo/keys?kind=key&state=live", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	return len(out.Keys), nil
}

// issueDynamic pre-issues n dynamic leases in parallel (outside timing).
func (e *env) issueDynamic(ctx context.Context, n int) ([]string, error) {
	var mu sync.Mutex
	var ids []string
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < len(e.clients); w++ {
		wg.Add(1)
		go func(c *api.Client) {
			defer wg.Done()
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				s, err := c.Logical().ReadWithContext(ctx, "thirdparty/creds/"+dynamicRole)
				if err != nil || s == nil || s.LeaseID == "" {
					firstErr.CompareAndSwap(nil, fmt.Errorf("pre-issue: %v", err))
					return
				}
				mu.Lock()
				ids = append(ids, s.LeaseID)
				mu.Unlock()
			}
		}(e.clients[w])
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return ids, err
	}
	return ids, ctx.Err()
}

// knownOps are the -ops names, in the default order.
var knownOps = []string{"kvwrite", "kvread", "floor", "dual", "dynfloor", "dynamic", "revoke"}

var opNames = []string{"kv-v2 write", "kv-v2 read", "creds read (dual)", "creds read (dynamic)", "lease revoke (dynamic)", "creds read (floor plugin)", "creds read (dynamic floor)"}

// revokeMargin is how many more leases than the calibrated revoke rate
// needs for warm-up plus window the revoke cell starts with.
const revokeMargin = 1.3

// A cell during which other processes used more than noisyShare of the
// machine is run again (keeping the quietest attempt), at most maxRetries
// times per run, so a burst of outside work on a shared machine does not
// end up in the table.
const (
	noisyShare = 0.25
	maxRetries = 4
)

func (c cell) otherShare() float64 {
	if c.cpu.sysAll <= 0 {
		return 0
	}
	return max(0, (c.cpu.sysBusy-c.cpu.total()).Seconds()) / c.cpu.sysAll.Seconds()
}

func logCell(c cell, prefix string) {
	note := ""
	if c.exhausted {
		note = " (lease pool exhausted: shorter window)"
	}
	if c.errs > 0 {
		note += fmt.Sprintf(" [%d errors, first: %s]", c.errs, c.firstErr)
	}
	if o := c.otherShare(); o > 0.05 {
		note += fmt.Sprintf(" (other processes: %.0f%% of the CPU)", 100*o)
	}
	fmt.Fprintf(os.Stderr, "bench: %sc=%-2d %-24s %8.0f ops/s  p50 %7.2fms  p99 %7.2fms  n=%d window=%s%s\n",
		prefix, c.conc, c.op, c.opsPerSec(), ms(c.p50), ms(c.p99), c.ops, c.window.Round(time.Millisecond), note)
}

func (e *env) runMatrix(ctx context.Context) ([]cell, error) {
	var cells []cell
	retries := maxRetries
	// measure runs a cell, again (after prep) while outside load spoiled it.
	measure := func(run func() cell, prep func() error) error {
		c := run()
		logCell(c, "")
		for c.otherShare() > noisyShare && retries > 0 && ctx.Err() == nil {
			retries--
			e.retried++
			if prep != nil {
				if err := prep(); err != nil {
					return err
				}
			}
			again := run()
			logCell(again, "retry: ")
			if again.otherShare() < c.otherShare() {
				c = again
			}
		}
		if c.base != nil {
			cells = append(cells, *c.base)
		}
		cells = append(cells, c)
		return ctx.Err()
	}

	for _, conc := range e.o.conc {
		// leased measures a creds read at path, served by the plugin
		// process pid (the plugin column of its cell); its leases are
		// revoked after the cell (and before a retry).
		leased := func(name, path string, pid int) error {
			ours := e.pids.plugin
			e.pids.plugin = pid
			defer func() { e.pids.plugin = ours }()
			sink := make(leaseSink, conc)
			clear := func() error { return e.revokeAll(ctx, sink.take(), path) }
			if err := measure(func() cell { return e.runCreds(ctx, name, conc, credsOpAt(path, sink), clear) }, clear); err != nil {
				return err
			}
			return clear()
		}
		var pool leasePool
		var minRevokeRate float64
		for _, op := range e.o.ops {
			var err error
			switch op {
			case "kvwrite":
				// kv-v2 write: each worker writes its own key (a new version each time).
				err = measure(func() cell {
					return e.runCell(ctx, opNames[0], conc, kvWriteOp)
				}, nil)
			case "kvread":
				// kv-v2 read of the seeded keys, round robin.
				ctr := make([]int, conc)
				err = measure(func() cell {
					return e.runCell(ctx, opNames[1], conc, func(ctx context.Context, w int, c *api.Client) error {
						ctr[w]++
						s, err := c.Logical().ReadWithContext(ctx, fmt.Sprintf("kv/data/bench/r%d", (w+ctr[w])%kvKeys))
						if err == nil && (s == nil || s.Data["data"] == nil) {
							err = errors.New("kv read: no data")
						}
						return err
					})
				}, nil)
			case "floor":
				err = leased(opNames[5], "floor/creds/"+dualRole, e.floorPID)
			case "dual":
				err = leased(opNames[2], "thirdparty/creds/"+dualRole, e.pids.plugin)
			case "dynfloor":
				err = leased(opNames[6], "floor/dynamic/"+dynamicRole, e.floorPID)
			case "dynamic":
				// dynamic creds read: a new key at the provider per read; its
				// leases start the revoke cell's pool.
				dyn := make(leaseSink, conc)
				path := "thirdparty/creds/" + dynamicRole
				revokeDyn := func() error { return e.revokeAll(ctx, dyn.take(), path) }
				err = measure(func() cell {
					return e.runCreds(ctx, opNames[3], conc, credsOpAt(path, dyn), revokeDyn)
				}, revokeDyn)
				if err == nil {
					pool.ids = append(pool.ids, dyn.all()...)
					minRevokeRate = 3 * cells[len(cells)-1].opsPerSec()
				}
			case "revoke":
				// lease revoke: revokes dynamic leases issued before the cell,
				// each a provider DELETE.
				fill := func() error { return e.fillRevokePool(ctx, &pool, conc, minRevokeRate) }
				if err = fill(); err != nil {
					break
				}
				err = measure(func() cell {
					return e.runCell(ctx, opNames[4], conc, func(ctx context.Context, w int, c *api.Client) error {
						id, ok := pool.take()
						if !ok {
							return errExhausted
						}
						return c.Sys().RevokeWithContext(ctx, id)
					})
				}, fill)
			}
			if err != nil {
				return cells, err
			}
		}
		if err := e.revokeAll(ctx, pool.rest(), "thirdparty/creds/"+dynamicRole); err != nil {
			return cells, err
		}
	}
	return cells, nil
}

// runCreds runs a creds cell: paired with its own kv-v2 write baseline
// when -slices asks for it (clear revokes its leases between slices).
func (e *env) runCreds(ctx context.Context, name string, conc int, op opFunc, clear func() error) cell {
	if e.o.slices > 1 {
		c, err := e.runPaired(ctx, name, conc, op, clear)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: revoking between slices: %v\n", name, err)
		}
		return c
	}
	return e.runCell(ctx, name, conc, op)
}

// fillRevokePool makes the pool big enough for the revoke cell at conc:
// it revokes from the pool for a moment to calibrate the rate, then
// pre-issues enough dynamic leases for warm-up plus window, with a margin.
func (e *env) fillRevokePool(ctx context.Context, pool *leasePool, conc int, minRevokeRate float64) error {
	const calib = time.Second
	if n := len(pool.rest()); n < 2000 {
		more, err := e.issueDynamic(ctx, 2000-n)
		pool.ids = append(pool.ids, more...)
		if err != nil {
			return err
		}
	}
	var done atomic.Int64
	stop := time.Now().Add(calib)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(c *api.Client) {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(stop) {
				id, ok := pool.take()
				if !ok {
					return
				}
				if c.Sys().RevokeWithContext(ctx, id) == nil {
					done.Add(1)
				}
			}
		}(e.clients[w])
	}
	began := time.Now()
	wg.Wait()
	rate := float64(done.Load()) / time.Since(began).Seconds()
	// A burst of outside load during the calibration must not starve the
	// cell: revokes have always been at least about twice as fast as
	// dynamic reads (2.2-3.1× in runs so far), so 3× is the floor.
	est := max(rate, minRevokeRate)
	need := int(est*(e.o.warmup+e.o.duration).Seconds()*revokeMargin) + 100
	have := len(pool.rest())
	fmt.Fprintf(os.Stderr, "bench: c=%-2d revoke calibration %.0f ops/s (at least %.0f); pool %d, pre-issuing %d more dynamic leases\n",
		conc, rate, minRevokeRate, have, max(0, need-have))
	if have < need {
		more, err := e.issueDynamic(ctx, need-have)
		// Keep the pool's unconsumed part only.
		pool.ids = append(pool.rest(), more...)
		pool.next.Store(0)
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// credsOpAt reads a leased key at path, keeping the lease id for cleanup.
func credsOpAt(path string, sink leaseSink) opFunc {
	return func(ctx context.Context, w int, c *api.Client) error {
		s, err := c.Logical().ReadWithContext(ctx, path)
		if err != nil {
			return err
		}
		if s == nil || s.LeaseID == "" || s.Data["api_key"] == nil {
			return errors.New("creds read: no lease or api_key")
		}
		sink[w] = append(sink[w], s.LeaseID)
		return nil
	}
}

// ---- output ----

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

type machine struct {
	cpus      int
	cpuModel  string
	memory    string
	kernel    string
	goVersion string
	vault     string
	plugin    string
	date      string
	loadavg   string
	retried   int
	runtime   time.Duration
	duration  time.Duration
	warmup    time.Duration
	slices    int
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			f := strings.Fields(l)
			if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
				return fmt.Sprintf("%.1f GiB", kb/1024/1024)
			}
		}
	}
	return "unknown"
}

// loadAvg is the 1-minute load average (other work on a shared machine
// shows up here).
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	if s := strings.TrimSpace(string(b)); s != "" {
		return "Linux " + s
	}
	return runtime.GOOS
}

func renderTable(cells []cell) string {
	var sb strings.Builder
	sb.WriteString("| Clients | Operation | ops/s | vs kv write | p50 ms | vs kv write | p99 ms | vs kv write | Errors |\n")
	sb.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	// Each cell divides by the kv-v2 write cell of its client count (run
	// before or after it), or by its paired slices just before it.
	kv := map[int]cell{}
	for _, c := range cells {
		if c.op == opNames[0] {
			kv[c.conc] = c
		}
	}
	for i, c := range cells {
		base := kv[c.conc]
		if i > 0 && strings.HasPrefix(cells[i-1].op, opNames[0]+" (paired)") {
			base = cells[i-1]
		}
		if strings.HasPrefix(c.op, opNames[0]+" (paired)") {
			base = c
		}
		ops := fmt.Sprintf("%.0f", c.opsPerSec())
		if c.exhausted {
			ops += " †"
		}
		fmt.Fprintf(&sb, "| %d | %s | %s | %s | %.2f | %s | %.2f | %s | %d |\n",
			c.conc, c.op, ops, ratio(c.opsPerSec(), base.opsPerSec()),
			ms(c.p50), ratio(ms(c.p50), ms(base.p50)), ms(c.p99), ratio(ms(c.p99), ms(base.p99)), c.errs)
	}
	return sb.String()
}

func renderCPU(cells []cell) string {
	var sb strings.Builder
	sb.WriteString("| Clients | Operation | Vault µs/op | plugin µs/op | demo provider µs/op | bench client µs/op | these 4 processes | other processes |\n")
	sb.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range cells {
		if c.ops == 0 || c.cpu.sysAll <= 0 {
			continue
		}
		per := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d.Microseconds())/float64(c.ops)) }
		ours := c.cpu.total()
		other := max(0, c.cpu.sysBusy-ours)
		pctOf := func(d time.Duration) string { return fmt.Sprintf("%.0f%%", 100*d.Seconds()/c.cpu.sysAll.Seconds()) }
		fmt.Fprintf(&sb, "| %d | %s | %s | %s | %s | %s | %s | %s |\n",
			c.conc, c.op, per(c.cpu.vault), per(c.cpu.plugin), per(c.cpu.demo), per(c.cpu.bench), pctOf(ours), pctOf(other))
	}
	return sb.String()
}

func renderSection(m machine, cells []cell) string {
	var sb strings.Builder
	sb.WriteString("## Load benchmark (`make bench`)\n\n")
	sb.WriteString("_Generated by `make bench` (`cmd/bench`); everything between the make-bench markers is replaced on each run._\n\n")
	fmt.Fprintf(&sb, "Run %s on %d CPUs (%s, %s RAM, %s); Go %s; Vault %s (dev server, in-memory storage); plugin %s. "+
		"Each cell: %s warm-up, then %s measured. Whole run, setup and cleanup included: %s. "+
		"Before the run (other work on this machine): 1-minute load average %s. "+
		"Cells run again because other processes took over %.0f%% of the CPU: %d.\n\n",
		m.date, m.cpus, m.cpuModel, m.memory, m.kernel, strings.TrimPrefix(m.goVersion, "go"), m.vault, m.plugin,
		m.warmup, m.duration, m.runtime.Round(time.Second), m.loadavg, 100*noisyShare, m.retried)
	sb.WriteString(renderTable(cells))
	sb.WriteString("\n\"vs kv write\" divides by the kv-v2 write figure at the same number of clients in the same run " +
		"(ops/s: higher is faster; latency: higher is slower).")
	if m.slices > 1 {
		fmt.Fprintf(&sb, " Each creds cell ran in %d slices alternating with slices of a kv-v2 write of its own "+
			"(the \"kv-v2 write (paired)\" row just above it, which its ratios divide by), each slice %s of the window after %s of warm-up; "+
			"its leases were revoked after each of its slices (outside the timing).",
			m.slices, m.duration/time.Duration(m.slices), m.warmup/time.Duration(m.slices))
	}
	if anyExhausted(cells) {
		sb.WriteString(" † the revoke cell ran out of pre-issued leases before the window ended; ops/s is over the shorter window.")
	}
	sb.WriteString("\n\nCPU time per operation in the measured window (from `/proc`), and the share of the machine's CPU used by " +
		"the four processes of the benchmark and by everything else (a busy shared machine makes the figures noisy):\n\n")
	sb.WriteString(renderCPU(cells))
	sb.WriteString("\nAt 1 client the CPU per operation can exceed the latency: each process's Go scheduler spins briefly " +
		"every time a request crosses to another process (client → Vault → plugin → provider and back), so compare the " +
		"32-client rows for the work an operation really costs. kv-v2 has no plugin process (its work is in the Vault column).\n")
	sb.WriteString(`
How it is measured:

- One process starts everything on free loopback ports: a Vault dev server
  (` + "`scripts/vault.sh`" + ` or ` + "`VAULT_BIN`" + `) with ` + "`bin/plugins`" + ` as its plugin directory,
  the plugin registered (sha256 and version) and mounted at ` + "`thirdparty/`" + ` as in
  ` + "`scripts/dev.sh`" + `, kv-v2 at ` + "`kv/`" + `, and ` + "`bin/demo-provider`" + ` with no latency or
  fault knobs and ` + "`-quiet`" + `. Vault, the plugin, the demo provider and the
  load generator all share this machine's CPUs, so the figures are the
  throughput of the whole loop, not of Vault alone.
- Every client is a goroutine with its own ` + "`api.Client`" + ` (its own keep-alive
  connection), issuing requests back to back with no think time. An
  operation counts when it starts inside the measured window; latency is
  the client-side round trip; failed operations are counted in Errors and
  left out of the latency figures.
- kv-v2 write: each client writes its own key (a new version each time,
  three small fields). kv-v2 read: round robin over 64 pre-written keys.
- creds read (floor plugin): ` + "`cmd/bench-floor-plugin`" + `, an external plugin
  served exactly like this one (same sdk, gRPC options, mount TTLs) whose
  creds read answers a constant leased key of a dual read's shape with no
  storage, lock or metric: the floor any leased read of an external
  plugin sits on. Its process is in the plugin column of its rows.
- creds read (dynamic floor): the same plugin's ` + "`dynamic/<role>`" + `, which does
  what a dynamic read must: one storage write naming the attempt, then
  one create at the demo provider (plain ` + "`net/http`" + `), then a lease whose
  revocation deletes the key and the entry.
- creds read (dual): every read returns the stored current key of a dual
  role (no provider call) with a lease. creds read (dynamic): every read
  creates a key at the demo provider (one HTTP POST) with a lease.
- lease revoke: ` + "`sys/leases/revoke`" + ` (synchronous) of dynamic leases issued
  before the cell; each revoke deletes the key at the demo provider. The
  pool is the leases of the dynamic creds cell just before it, topped up
  (outside the timing, 32 clients) to 1.3 × what warm-up plus window use
  at the larger of the rate of a 1 s calibration revoke at the same
  concurrency and 3 × the dynamic creds rate.
- This machine may be shared: a cell during which other processes used
  more than 25% of the CPU is run again, keeping the quieter attempt (at
  most 4 such re-runs per run; the "other processes" column shows the
  share of the attempt that was kept).
- Leases: the mount's default/max lease TTL are 1h/2h and both roles use
  ttl=1h, so no lease expires during the run (no expiry storms landing in
  a later cell). Instead every lease a cell creates is revoked after the
  cell, outside the timing (32 parallel revokes, then a synchronous
  revoke-prefix, then a check that none is left), so every cell starts
  with no outstanding leases of the plugin's mount, except the revoke
  cell, which starts with its pool (tens of thousands of dynamic leases
  at 8 and 32 clients). At the end the demo provider must hold exactly
  one live key (the dual role's), which checks that every revoke deleted
  its key.
`)
	return sb.String()
}

func anyExhausted(cells []cell) bool {
	for _, c := range cells {
		if c.exhausted {
			return true
		}
	}
	return false
}

// updateDoc replaces the text between the markers in path, creating the
// file (or appending the markers) if needed; the rest is left untouched.
func updateDoc(path, section string) error {
	b, err := os.ReadFile(path)
	mode := fs.FileMode(0o644)
	var content string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		content = "# Performance\n\n" + markerStart + "\n" + markerEnd + "\n"
	case err != nil:
		return err
	default:
		content = string(b)
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
	}
	i, j := strings.Index(content, markerStart), strings.Index(content, markerEnd)
	switch {
	case i < 0 && j < 0:
		if content != "" && !strings.HasSuffix(content, "\n") {
			content += "\n"
		}
		content += "\n" + markerStart + "\n" + markerEnd + "\n"
		i, j = strings.Index(content, markerStart), strings.Index(content, markerEnd)
	case i < 0 || j < 0 || j < i:
		return fmt.Errorf("%s: the markers %s and %s are not both present in order; not touching it", path, markerStart, markerEnd)
	}
	out := content[:i+len(markerStart)] + "\n" + strings.TrimRight(section, "\n") + "\n" + content[j:]
	tmp, err := os.CreateTemp(filepath.Dir(path), ".performance.md.*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(out); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ---- main flow ----

func run(ctx context.Context, o options) int {
	began := time.Now()
	load := loadAvg()
	// How busy the machine is before we start anything: other work on a
	// shared machine skews every figure.
	b0, a0 := sysCPU()
	sleepUntil(ctx, time.Now().Add(time.Second))
	b1, a1 := sysCPU()
	idleBusy := 0.0
	if a1 > a0 {
		idleBusy = 100 * (b1 - b0).Seconds() / (a1 - a0).Seconds()
	}
	if idleBusy > 20 {
		fmt.Fprintf(os.Stderr, "bench: warning: the machine is already %.0f%% busy (load average %s); the figures will be noisy\n", idleBusy, load)
	}
	load = fmt.Sprintf("%s, CPU %.0f%% busy", load, idleBusy)
	runDir, err := os.MkdirTemp("", "thirdparty-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	e := &env{o: o, runDir: runDir}
	failed := true
	defer func() {
		e.stopAll()
		if o.keep || failed {
			fmt.Fprintln(os.Stderr, "bench: logs kept in", runDir)
		} else {
			os.RemoveAll(runDir)
		}
	}()

	fmt.Fprintln(os.Stderr, "bench: starting Vault and the demo provider...")
	if err := e.start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench: setup:", err)
		return exitCode(ctx)
	}
	fmt.Fprintf(os.Stderr, "bench: Vault %s at %s (pid %d, plugin pid %d), demo provider at %s\n",
		e.vaultVer, e.addr, e.pids.vault, e.pids.plugin, e.demoURL)
	if e.pids.plugin == 0 {
		fmt.Fprintln(os.Stderr, "bench: warning: plugin process not found; its CPU column will read 0")
	}
	cells, err := e.runMatrix(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return exitCode(ctx)
	}
	// Every revoked dynamic lease deleted its key: only the dual role's
	// current key is still live at the provider.
	if n, err := e.liveDemoKeys(ctx); err != nil || n != 1 {
		fmt.Fprintf(os.Stderr, "bench: warning: %d live keys at the demo provider after the run, expected 1 (the dual role's) (%v)\n", n, err)
	} else {
		fmt.Fprintln(os.Stderr, "bench: check: all leases revoked; the demo provider holds only the dual role's key")
	}
	e.stopAll()

	m := machine{
		cpus: runtime.NumCPU(), cpuModel: cpuModel(), memory: memTotal(), kernel: kernel(),
		goVersion: runtime.Version(), vault: e.vaultVer, plugin: o.pluginVersion,
		date: time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime: time.Since(began),
		duration: o.duration, warmup: o.warmup, loadavg: load, retried: e.retried, slices: o.slices,
	}
	section := renderSection(m, cells)
	fmt.Println(section)
	for _, c := range cells {
		if c.errs > 0 {
			fmt.Fprintf(os.Stderr, "bench: warning: %s at %d clients had %d errors (first: %s)\n", c.op, c.conc, c.errs, c.firstErr)
		}
	}
	if !o.noDoc {
		doc := o.path(o.doc)
		if err := updateDoc(doc, section); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "bench: updated", doc)
	}
	failed = false
	return 0
}

func exitCode(ctx context.Context) int {
	if ctx.Err() != nil {
		return 130
	}
	return 1
}
