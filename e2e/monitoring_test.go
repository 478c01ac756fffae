//go:build e2e

package e2e

// The monitoring stack against the real thing: the Grafana dashboard's and
// the alert rules' PromQL (parsed by tools/promql with Prometheus' own
// parser) names only metrics that a live scrape of <mount>/metrics shows;
// promtool accepts deploy/prometheus; and a real Prometheus (Debian's
// package, when installed) scraping Vault with a least-privilege token
// answers the dashboard's "Oldest secret age" query with the ages that
// <mount>/status reports.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"gopkg.in/yaml.v3"
)

// monitored is a mount of the shared Vault on which every metric the
// plugin has was made to appear: dual and dynamic roles, creds reads and
// revocations, manual key and root rotations, a previous key in its
// overlap, 429s from a provider, and a tidy that revoked an orphan.
type monitored struct {
	mount      string
	acme, beta *demoProvider
	token      string // a token with the docs' thirdparty-metrics policy
}

var (
	monOnce sync.Once
	monEnv  *monitored
	monErr  string
)

func monitoredMount(t *testing.T) *monitored {
	t.Helper()
	monOnce.Do(func() {
		ok := false
		defer func() {
			if !ok && monErr == "" {
				monErr = "the monitored mount's set-up failed in " + t.Name()
			}
		}()
		monEnv = setUpMonitored(t)
		ok = true
	})
	if monEnv == nil {
		t.Fatal(monErr)
	}
	return monEnv
}

func setUpMonitored(t *testing.T) *monitored {
	c := sharedVlt.client
	m := &monitored{mount: uniq("mon")}
	var err error
	if m.acme, err = startDemo(uniq("mon-acme")); err != nil {
		t.Fatal(err)
	}
	if m.beta, err = startDemo(uniq("mon-beta")); err != nil {
		t.Fatal(err)
	}
	issued.add(m.acme.AdminKey)
	issued.add(m.beta.AdminKey)
	if err := sharedVlt.mount(m.mount); err != nil {
		t.Fatal(err)
	}
	mount := m.mount
	writeDemoProvider(t, c, mount, "acme", m.acme)
	writeDemoProvider(t, c, mount, "beta", m.beta)
	write(t, c, mount+"/roles/dyn", map[string]any{"provider": "acme", "mode": "dynamic", "ttl": "1h"})
	// app rotates by hand several times (a 1s overlap and 2s max_ttl let the previous key
	// go quickly); web keeps its previous key for an hour.
	write(t, c, mount+"/roles/app", map[string]any{"provider": "acme", "mode": "dual", "rotation_period": "24h", "overlap": "1s", "ttl": "1s", "max_ttl": "2s"})
	write(t, c, mount+"/roles/web", map[string]any{"provider": "beta", "mode": "dual", "rotation_period": "24h", "overlap": "1h", "ttl": "1m"})

	for _, role := range []string{"app", "web"} {
		issued.add(read(t, c, mount+"/creds/"+role).Data["api_key"].(string))
	}
	marker, lease := mountMarker(t, c, mount, "dyn")
	if err := c.Sys().Revoke(lease); err != nil {
		t.Fatal(err)
	}
	issued.add(read(t, c, mount+"/creds/dyn").Data["api_key"].(string))

	rotateRoleTimes(t, c, mount, "app", 2)
	rotateRoleTimes(t, c, mount, "web", 1)

	// Every second answer of acme is a 429, which the engine retries: two
	// dynamic keys created through them.
	m.acme.setKnobs(t, map[string]any{"rate_limit_every": 2, "retry_after": 1})
	for i := 0; i < 2; i++ {
		issued.add(read(t, c, mount+"/creds/dyn").Data["api_key"].(string))
	}
	m.acme.setKnobs(t, map[string]any{"rate_limit_every": 0})

	// An orphan (the mount's marker, nothing in Vault accounts for it) for
	// tidy to revoke.
	createDemoKey(t, m.acme, "vault-"+marker+"-lost-token-1")
	time.Sleep(1100 * time.Millisecond) // the demo provider's clock has seconds
	if st := runTidy(t, c, mount, map[string]any{"safety_buffer": "0s"}); tidyCount(st, "orphans_revoked") != 1 {
		t.Fatalf("tidy did not revoke the orphan: %v", st)
	}
	// Last: the demo provider's admin key (used above) stops working.
	write(t, c, mount+"/rotate-root/acme", nil)

	// The scraper's token: the policy of docs/monitoring.md for this mount.
	policy := fmt.Sprintf("path %q {\n  capabilities = [\"read\"]\n}\npath %q {\n  capabilities = [\"read\"]\n}\n", mount+"/metrics", mount+"/status")
	if err := c.Sys().PutPolicy(mount+"-metrics", policy); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{mount + "-metrics"}, NoDefaultPolicy: true, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	m.token = tok.Auth.ClientToken
	issued.add(m.token)
	return m
}

// rotateRoleTimes rotates a dual role by hand n times, each time waiting
// until the previous key has retired (a manual rotation is refused before).
func rotateRoleTimes(t *testing.T, c *api.Client, mount, role string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		deadline := time.Now().Add(30 * time.Second)
		for {
			if st := roleStatusOf(t, c, mount, role); st["previous_key_id"] == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("role %s: previous key not retired within 30s", role)
			}
			time.Sleep(200 * time.Millisecond)
		}
		write(t, c, mount+"/rotate-role/"+role, nil)
	}
}

func roleStatusOf(t *testing.T, c *api.Client, mount, role string) map[string]any {
	t.Helper()
	r, _ := read(t, c, mount+"/status").Data["roles"].(map[string]any)[role].(map[string]any)
	if r == nil {
		t.Fatalf("%s/status has no role %s", mount, role)
	}
	return r
}

// scrapeNames reads <mount>/metrics with the scraper's token, as
// Prometheus does, and returns the names of the series it holds.
func scrapeNames(t *testing.T, m *monitored) map[string]bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, sharedVlt.addr+"/v1/"+m.mount+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+m.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s/metrics with the scraper's token: %d", m.mount, resp.StatusCode)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[line[:strings.IndexAny(line, "{ ")]] = true
	}
	return names
}

// promqlExpr is one line of tools/promql's output.
type promqlExpr struct {
	Source  string   `json:"source"`
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
}

var (
	promqlOnce sync.Once
	promqlBin  string
	promqlErr  error
)

// runPromQLCheck builds tools/promql (a module of its own) once and runs it
// on the committed dashboard and rules.
func runPromQLCheck(t *testing.T) []promqlExpr {
	t.Helper()
	promqlOnce.Do(func() {
		promqlBin = filepath.Join(workDir, "promql")
		cmd := exec.Command("go", "build", "-o", promqlBin, ".")
		cmd.Dir = filepath.Join(repoRoot, "tools/promql")
		if out, err := cmd.CombinedOutput(); err != nil {
			promqlErr = fmt.Errorf("go build tools/promql: %v\n%s", err, out)
		}
	})
	if promqlErr != nil {
		t.Fatal(promqlErr)
	}
	cmd := exec.Command(promqlBin, "-dashboard", "docs/grafana/thirdparty.json", "-rules", "deploy/prometheus/rules.yml")
	cmd.Dir = repoRoot
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tools/promql: %v\n%s", err, stderr.String())
	}
	var exprs []promqlExpr
	if err := json.Unmarshal(out, &exprs); err != nil {
		t.Fatal(err)
	}
	return exprs
}

// Metrics that Prometheus makes itself, not the plugin.
var prometheusOwnMetrics = map[string]bool{"up": true}

// Issue 14, acceptance 1: every panel's and every rule's PromQL parses
// with Prometheus' parser, and every metric it names is in a live scrape.
func TestDashboardMetricsExist(t *testing.T) {
	m := monitoredMount(t)
	live := scrapeNames(t, m)
	exprs := runPromQLCheck(t)
	used := map[string]bool{}
	var panels, rules int
	for _, e := range exprs {
		if strings.HasPrefix(e.Source, "rule ") {
			rules++
		} else {
			panels++
		}
		for _, name := range e.Metrics {
			used[name] = true
			if !live[name] && !prometheusOwnMetrics[name] {
				t.Errorf("%s uses %s, which thirdparty/metrics does not expose", e.Source, name)
			}
		}
	}
	if panels < 10 || rules < 7 {
		t.Fatalf("tools/promql listed %d dashboard and %d rule expressions", panels, rules)
	}
	// Nothing the plugin exposes goes unseen by the dashboard (a histogram
	// counts as seen through its _bucket series).
	var unused []string
	for name := range live {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !used[name] && !used[base+"_bucket"] {
			unused = append(unused, name)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("metrics in the scrape that no panel or rule shows: %v", unused)
	}
	t.Logf("%d dashboard and %d rule expressions parsed; %d metric names used, all among the %d in a live scrape of %s/metrics", panels, rules, len(used), len(live), m.mount)
}

// promConfig writes deploy/prometheus/prometheus.yml into dir, pointed at
// the shared Vault's mount with the scraper's token in a file, scraping
// every second, with rules.yml beside it, and returns its path.
func promConfig(t *testing.T, dir string, m *monitored) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join(repoRoot, "deploy/prometheus/rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "vault-token")
	if err := os.WriteFile(tokenFile, []byte(m.token), 0o600); err != nil {
		t.Fatal(err)
	}
	if rf, _ := cfg["rule_files"].([]any); len(rf) != 1 || rf[0] != "rules.yml" {
		t.Fatalf("prometheus.yml rule_files %v, want [rules.yml] (the file beside it)", cfg["rule_files"])
	}
	global := cfg["global"].(map[string]any)
	global["scrape_interval"], global["evaluation_interval"] = "1s", "1s"
	jobs := cfg["scrape_configs"].([]any)
	if len(jobs) != 1 {
		t.Fatalf("prometheus.yml has %d scrape configs, want 1", len(jobs))
	}
	job := jobs[0].(map[string]any)
	if job["metrics_path"] != "/v1/thirdparty/metrics" {
		t.Errorf("metrics_path %v, want /v1/thirdparty/metrics", job["metrics_path"])
	}
	job["metrics_path"] = "/v1/" + m.mount + "/metrics"
	job["authorization"].(map[string]any)["credentials_file"] = tokenFile
	u, _ := url.Parse(sharedVlt.addr)
	job["static_configs"] = []any{map[string]any{"targets": []any{u.Host}}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Issue 14, acceptance 2: promtool accepts the configuration (with its
// token file in place) and the rules.
func TestPrometheusPromtoolChecks(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (apt-get install prometheus; .ci/run installs it): deploy/prometheus not checked by promtool")
	}
	// Nothing is scraped: any mount and token file will do.
	cfg := promConfig(t, t.TempDir(), &monitored{mount: "thirdparty", token: "not-a-token"})
	for _, args := range [][]string{
		{"check", "config", cfg},
		{"check", "rules", filepath.Join(repoRoot, "deploy/prometheus/rules.yml")},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		t.Logf("promtool %s %s:\n%s", args[0], args[1], strings.TrimSpace(string(out)))
	}
}

// dashboardQuery returns the expression of a panel's query.
func dashboardQuery(t *testing.T, title, refID string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs/grafana/thirdparty.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			if p.Title == title && q.RefID == refID {
				return q.Expr
			}
		}
	}
	t.Fatalf("the dashboard has no panel %q with query %s", title, refID)
	return ""
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float(t *testing.T) float64 {
	f, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
	if err != nil {
		t.Fatalf("sample %v: %v", s, err)
	}
	return f
}

// promQuery runs an instant query at time at.
func promQuery(t *testing.T, base, q string, at time.Time) []promSample {
	t.Helper()
	v := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	resp, err := http.Get(base + "/api/v1/query?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Status != "success" || r.Data.ResultType != "vector" {
		t.Fatalf("query %s: %s %s: %s (result type %s)", q, r.Status, r.ErrorType, r.Error, r.Data.ResultType)
	}
	return r.Data.Result
}

// startPrometheus runs Debian's prometheus on a free loopback port with
// the given configuration and its data in a temp dir, and waits until it
// has scraped the target successfully.
func startPrometheus(t *testing.T, bin, cfg string) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	p, err := startProcess(uniq("prometheus"), bin, "--config.file="+cfg, "--storage.tsdb.path="+data,
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=info")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var tg struct {
			Data struct {
				ActiveTargets []struct {
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if resp, err := http.Get(base + "/api/v1/targets"); err == nil {
			json.NewDecoder(resp.Body).Decode(&tg)
			resp.Body.Close()
			if a := tg.Data.ActiveTargets; len(a) == 1 && a[0].Health == "up" {
				return base
			} else if len(a) == 1 && a[0].LastError != "" && time.Now().After(deadline) {
				t.Fatalf("prometheus cannot scrape Vault: %s", a[0].LastError)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not scraping within 60s; log:\n%s", tail(p.log(), 30))
		}
		select {
		case <-p.done:
			t.Fatalf("prometheus exited; log:\n%s", tail(p.log(), 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var promVarRe = regexp.MustCompile(`\$(mount|provider|__rate_interval)\b`)

// Issue 14, acceptance 3: a real Prometheus scrapes the plugin through
// deploy/prometheus/prometheus.yml; after more rotations, the dashboard's
// "Oldest secret age" query, as Grafana sends it for the mount, gives one
// value per dual role and provider root, equal to its age in
// <mount>/status.
func TestPrometheusOldestSecretAge(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not on PATH (apt-get install prometheus; .ci/run installs it): the Prometheus e2e did not run")
	}
	m := monitoredMount(t)
	c := sharedVlt.client
	base := startPrometheus(t, bin, promConfig(t, t.TempDir(), m))

	// Rotations while Prometheus watches.
	before := roleStatusOf(t, c, m.mount, "app")["current_key_id"]
	rotateRoleTimes(t, c, m.mount, "app", 2)
	write(t, c, m.mount+"/rotate-root/beta", nil)
	if roleStatusOf(t, c, m.mount, "app")["current_key_id"] == before {
		t.Fatal("app did not rotate")
	}

	expr := promVarRe.ReplaceAllStringFunc(dashboardQuery(t, "Oldest secret age", "A"), func(v string) string {
		switch v {
		case "$mount":
			return regexp.QuoteMeta(m.mount) // one mount chosen: its label comes from the scrape path
		case "$provider":
			return ".*"
		}
		return "1m"
	})
	status := read(t, c, m.mount+"/status").Data
	statusAt := time.Now()
	// Wait for a scrape that began after the status read.
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := promQuery(t, base, fmt.Sprintf(`timestamp(thirdparty_scheduler_running{mount=%q})`, m.mount), time.Now())
		if len(s) == 1 && s[0].float(t) > float64(statusAt.UnixMilli())/1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scrape after the status read within 30s: %v", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	at := time.Now()
	got := map[string]promSample{}
	for _, s := range promQuery(t, base, expr, at) {
		key := s.Metric["kind"] + " " + s.Metric["name"]
		if _, dup := got[key]; dup {
			t.Errorf("two values for %s", key)
		}
		got[key] = s
	}

	// What status says: created times of the dual roles' current keys and
	// ages of the roots.
	type want struct {
		provider string
		created  time.Time
	}
	wants := map[string]want{}
	for name, v := range status["roles"].(map[string]any) {
		r := v.(map[string]any)
		if r["mode"] != "dual" {
			continue
		}
		created, err := time.Parse(time.RFC3339, r["current_key_created"].(string))
		if err != nil {
			t.Fatal(err)
		}
		wants["role "+name] = want{r["provider"].(string), created}
	}
	for name, v := range status["providers"].(map[string]any) {
		age, _ := v.(map[string]any)["root_age_seconds"].(json.Number).Int64()
		wants["root "+name] = want{name, statusAt.Add(-time.Duration(age) * time.Second).Truncate(time.Second)}
	}
	if len(wants) != 4 {
		t.Fatalf("status lists %v; want roles app and web and roots acme and beta", sortedKeys(wants))
	}
	for key, w := range wants {
		s, ok := got[key]
		if !ok {
			t.Errorf("the panel has no value for %s (it has %v)", key, sortedKeys(got))
			continue
		}
		if s.Metric["provider"] != w.provider {
			t.Errorf("%s: provider %q, status says %q", key, s.Metric["provider"], w.provider)
		}
		// The value is the age at the last scrape (at most ~1s before at);
		// status times have whole seconds.
		wantAge := at.Sub(w.created).Seconds()
		if d := s.float(t) - wantAge; d > 1 || d < -2.5 || math.IsNaN(d) {
			t.Errorf("%s: panel says age %.1fs, status (created %s) says %.1fs at the query time", key, s.float(t), w.created.Format(time.RFC3339), wantAge)
		}
	}
	if len(got) != len(wants) {
		t.Errorf("the panel has %d values (%v), status %d secrets", len(got), sortedKeys(got), len(wants))
	}

	// The rotations counted, as the "Rotations by result" panel reads them.
	rot := promQuery(t, base, fmt.Sprintf(`sum(thirdparty_rotations_total{mount=%q, kind="role", name="app", result="success"})`, m.mount), time.Now())
	if len(rot) != 1 || rot[0].float(t) != 4 {
		t.Errorf("rotations of app counted by Prometheus: %v, want 4", rot)
	}
	for key, s := range got {
		t.Logf("%s (provider %s): %.1fs old", key, s.Metric["provider"], s.float(t))
	}

	// Every panel query and rule evaluates (a join that matched many to
	// many would fail only here), and each panel shows something after this
	// workload, except those that list failures, of which there are none.
	empty := map[string]bool{`dashboard panel "Rotation failures by secret" query A`: true, `dashboard panel "Failing now" query A`: true}
	n := 0
	for _, e := range runPromQLCheck(t) {
		res := promQuery(t, base, e.Expr, time.Now())
		if strings.HasPrefix(e.Source, "dashboard panel") {
			n++
			if (len(res) == 0) != empty[e.Source] {
				t.Errorf("%s: %d series (%s)", e.Source, len(res), e.Expr)
			}
		}
	}
	t.Logf("%d panel queries evaluated by Prometheus", n)
}
