//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const expiringSoonAlert = "ThirdpartySecretExpiringSoon"

// alertRulesFile writes the project's alert rules as a plain Prometheus
// rules file and returns its path: deploy/prometheus/rules.yml where it
// exists, else the groups of the PrometheusRule block in docs/monitoring.md.
func alertRulesFile(t *testing.T) string {
	t.Helper()
	if p := filepath.Join(repoRoot, "deploy", "prometheus", "rules.yml"); fileExists(p) {
		return p
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for _, part := range strings.Split(string(doc), "```yaml\n")[1:] {
		body, _, _ := strings.Cut(part, "```")
		if strings.Contains(body, "kind: PrometheusRule") {
			block = body
		}
	}
	if block == "" {
		t.Fatal("docs/monitoring.md has no PrometheusRule block")
	}
	var rule struct {
		Spec struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal([]byte(block), &rule); err != nil || len(rule.Spec.Groups) == 0 {
		t.Fatalf("docs/monitoring.md PrometheusRule: %v", err)
	}
	out, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found (apt-get install prometheus): the alert rule check needs it")
	}
	return p
}

// series is one input series of a promtool rule test: a constant value.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

// alertFires runs `promtool test rules` on the rules file with the given
// constant series, evaluated at evalAt seconds (after the rule's "for"),
// and reports whether ThirdpartySecretExpiringSoon fires for kind/name.
// Timestamps in values must already be on promtool's clock (time() starts
// at 0). The test passes either way promtool's expectation is set; the
// answer comes from which of the two expectations holds.
func alertFires(t *testing.T, rules string, in []series, evalAt time.Duration, kind, name string) bool {
	t.Helper()
	tool := promtool(t)
	var inputs []map[string]string
	for _, s := range in {
		var ls []string
		for k, v := range s.labels {
			ls = append(ls, fmt.Sprintf("%s=%q", k, v))
		}
		inputs = append(inputs, map[string]string{
			"series": s.name + "{" + strings.Join(ls, ",") + "}",
			"values": strconv.FormatFloat(s.value, 'f', -1, 64) + "+0x" + strconv.Itoa(int(evalAt/time.Minute)+1),
		})
	}
	summary := fmt.Sprintf("%s %s expires at the provider within 7 days and no rotation is scheduled before then", kind, name)
	try := func(firing bool) bool {
		var exp []any
		if firing {
			exp = append(exp, map[string]any{
				"exp_labels": map[string]string{"severity": "critical", "kind": kind, "name": name},
				"exp_annotations": map[string]string{"summary": summary,
					"description": "See expires_at and next_root_rotation / next_rotation in `vault read thirdparty/status`; rotate it by hand or set a rotation_period."},
			})
		}
		test := map[string]any{
			"rule_files":          []string{rules},
			"evaluation_interval": "1m",
			"tests": []any{map[string]any{
				"interval":     "1m",
				"input_series": inputs,
				"alert_rule_test": []any{map[string]any{
					"eval_time":  fmt.Sprintf("%dm", int(evalAt/time.Minute)),
					"alertname":  expiringSoonAlert,
					"exp_alerts": exp,
				}},
			}},
		}
		b, _ := yaml.Marshal(test)
		f := filepath.Join(t.TempDir(), "test.yml")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(tool, "test", "rules", f).CombinedOutput()
		if err != nil && !bytes.Contains(out, []byte("FAILED")) {
			t.Fatalf("promtool test rules: %v\n%s", err, out)
		}
		return err == nil
	}
	fires, quiet := try(true), try(false)
	if fires == quiet {
		t.Fatalf("promtool: the alert both fires and does not (or neither) for %s %s", kind, name)
	}
	return fires
}

// The rule, checked with promtool wherever it lives: it fires for a secret
// expiring within 7 days with no rotation before then, and only then.
func TestExpiringSoonAlertRule(t *testing.T) {
	rules := alertRulesFile(t)
	tool := promtool(t)
	if out, err := exec.Command(tool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	const day = 86400.0
	eval := 30 * time.Minute
	now := eval.Seconds()
	lbl := map[string]string{"kind": "root", "name": "p"}
	for _, tc := range []struct {
		what    string
		expires float64 // seconds from now; 0: no expiry series
		next    float64 // seconds from now; 0: no next-rotation series
		fires   bool
	}{
		{"expires in 3 days, nothing scheduled", 3 * day, 0, true},
		{"expires in 3 days, rotation after it", 3 * day, 4 * day, true},
		{"expires in 3 days, rotation before it", 3 * day, 2 * day, false},
		{"expires in 10 days, nothing scheduled", 10 * day, 0, false},
		{"no expiry", 0, 0, false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			var in []series
			if tc.expires != 0 {
				in = append(in, series{"thirdparty_secret_expiry_timestamp_seconds", lbl, now + tc.expires})
			}
			if tc.next != 0 {
				in = append(in, series{"thirdparty_next_rotation_timestamp_seconds", lbl, now + tc.next})
			}
			in = append(in, series{"thirdparty_secret_age_seconds", lbl, 60})
			if got := alertFires(t, rules, in, eval, "root", "p"); got != tc.fires {
				t.Fatalf("fires = %v, want %v", got, tc.fires)
			}
		})
	}
}

// scrapedAlertInput turns the mount's metrics about one secret into
// promtool input series, with timestamps moved onto promtool's clock.
func scrapedAlertInput(t *testing.T, body, kind, name string, eval time.Duration) (in []series, expiry float64) {
	t.Helper()
	now := float64(time.Now().Unix())
	sel := fmt.Sprintf(`{kind=%q,name=%q}`, kind, name)
	for _, m := range []string{"thirdparty_secret_expiry_timestamp_seconds", "thirdparty_next_rotation_timestamp_seconds"} {
		v, ok := metricSample(body, m+sel)
		if !ok {
			continue
		}
		if m == "thirdparty_secret_expiry_timestamp_seconds" {
			expiry = v
		}
		in = append(in, series{m, map[string]string{"kind": kind, "name": name}, v - now + eval.Seconds()})
	}
	return in, expiry
}

func metricSample(body, sample string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// demoAdminKey creates an admin key at d (with d's initial one) that
// expires after ttl; it returns the key's value and id.
func demoAdminKey(t *testing.T, d *demoProvider, ttl time.Duration) (secret, id string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": "expiring", "expires_at": time.Now().Add(ttl).UTC().Format(time.RFC3339)})
	req, _ := http.NewRequest(http.MethodPost, d.URL+"/v1/admin-keys", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID       string `json:"id"`
		AdminKey string `json:"admin_key"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating an expiring admin key: %d %v", resp.StatusCode, err)
	}
	return out.AdminKey, out.ID
}

// Issue 15, acceptance 1: a root that expires in 60s on a provider with a
// 24h rotation_period is rotated before it expires, with no failed
// provider call; the expiry metric and the alert expression follow.
func TestRootRotatedBeforeExpiry(t *testing.T) {
	d, err := startDemo("expiry", "-admin-key-ttl", "60s")
	if err != nil {
		t.Fatal(err)
	}
	c := sharedVlt.client
	rules := ""
	if _, err := exec.LookPath("promtool"); err == nil {
		rules = alertRulesFile(t)
	} else {
		t.Log("promtool not found: the alert expression is not evaluated")
	}
	provider := uniq("exp")
	oldID := d.keys(t, "kind=admin")[0].ID
	// Automated rotation off first: nothing would save the root.
	write(t, c, "thirdparty/providers/"+provider, map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey,
		"rotation_period": "24h", "disable_automated_rotation": true})
	p := read(t, c, "thirdparty/providers/"+provider).Data
	expiresAt, err := time.Parse(time.RFC3339, fmt.Sprint(p["expires_at"]))
	if err != nil || time.Until(expiresAt) > 60*time.Second || time.Until(expiresAt) < 30*time.Second {
		t.Fatalf("provider read expires_at %v: want about 60s from now", p["expires_at"])
	}
	eval := 30 * time.Minute
	in, expiry := scrapedAlertInput(t, metricsBody(t, c), "root", provider, eval)
	if expiry != float64(expiresAt.Unix()) {
		t.Fatalf("expiry metric %v, want %d", expiry, expiresAt.Unix())
	}
	if rules != "" && !alertFires(t, rules, in, eval, "root", provider) {
		t.Fatal("the alert expression does not fire for a root expiring in a minute with rotation off")
	}

	write(t, c, "thirdparty/providers/"+provider, map[string]any{"disable_automated_rotation": false})
	p = read(t, c, "thirdparty/providers/"+provider).Data
	next, _ := time.Parse(time.RFC3339, fmt.Sprint(p["next_root_rotation"]))
	if !next.Before(expiresAt) {
		t.Fatalf("next_root_rotation %v is not before the expiry %v", p["next_root_rotation"], p["expires_at"])
	}
	if in, _ := scrapedAlertInput(t, metricsBody(t, c), "root", provider, eval); rules != "" && alertFires(t, rules, in, eval, "root", provider) {
		t.Fatal("the alert expression fires although a rotation is scheduled before the expiry")
	}

	deadline := expiresAt
	for {
		if read(t, c, "thirdparty/providers/"+provider).Data["root_key_id"] != oldID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the root was not rotated before it expired at %s", expiresAt)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if time.Now().After(expiresAt) {
		t.Fatal("rotated only after the expiry")
	}
	p = read(t, c, "thirdparty/providers/"+provider).Data
	if p["expires_at"] != "" || p["last_root_rotation_error"] != "" {
		t.Fatalf("after the rotation: expires_at %v, last error %v", p["expires_at"], p["last_root_rotation_error"])
	}
	var stats struct {
		Status map[string]int `json:"status"`
	}
	d.getJSON(t, "/_demo/stats", &stats)
	for code, n := range stats.Status {
		if status, _ := strconv.Atoi(code); status >= 400 {
			t.Errorf("%d provider calls answered %s", n, code)
		}
	}
	body := metricsBody(t, c)
	if _, ok := metricSample(body, fmt.Sprintf(`thirdparty_secret_expiry_timestamp_seconds{kind="root",name=%q}`, provider)); ok {
		t.Fatal("the expiry metric is still there for the new root, which does not expire")
	}
	if v, _ := metricSample(body, fmt.Sprintf(`thirdparty_rotations_total{kind="root",name=%q,result="failure"}`, provider)); v != 0 {
		t.Fatalf("%v failed root rotations", v)
	}
	if in, _ := scrapedAlertInput(t, body, "root", provider, eval); rules != "" && alertFires(t, rules, in, eval, "root", provider) {
		t.Fatal("the alert expression fires after the rotation")
	}
	if k := d.key(t, oldID); k.State != "revoked" {
		t.Fatalf("the expiring root is %s, want revoked", k.State)
	}
}

// Issue 15, acceptance 3: dry_run on a role and on a root. The demo
// provider shows the rehearsal key (and root) created and revoked, the
// role's current key and the root unchanged; with the root lacking a
// permission the answer names the failed step and nothing is left live.
func TestDryRunRehearsal(t *testing.T) {
	d, err := startDemo("dryrun")
	if err != nil {
		t.Fatal(err)
	}
	c := sharedVlt.client
	provider, role := dualRole(t, c, d, "thirdparty", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	cur := read(t, c, "thirdparty/roles/"+role).Data["current_key_id"]
	rootID := read(t, c, "thirdparty/providers/"+provider).Data["root_key_id"]

	s := write(t, c, "thirdparty/rotate-role/"+role, map[string]any{"dry_run": true})
	steps, _ := s.Data["steps"].([]any)
	if len(steps) != 3 {
		t.Fatalf("steps %v", s.Data["steps"])
	}
	for _, st := range steps {
		if m := st.(map[string]any); m["ok"] != true {
			t.Fatalf("step %v", m)
		}
	}
	k := d.key(t, fmt.Sprint(s.Data["key_id"]))
	if k.State != "revoked" || !strings.Contains(k.Name, "rehearsal") {
		t.Fatalf("rehearsal key %+v: want created and revoked", k)
	}
	if got := read(t, c, "thirdparty/roles/"+role).Data["current_key_id"]; got != cur {
		t.Fatalf("current key %v, want %v unchanged", got, cur)
	}
	if d.key(t, fmt.Sprint(cur)).State != "live" {
		t.Fatal("the current key is no longer live")
	}

	s = write(t, c, "thirdparty/rotate-root/"+provider, map[string]any{"dry_run": true})
	if r := d.key(t, fmt.Sprint(s.Data["root_key_id"])); r.State != "revoked" || r.Kind != "admin" {
		t.Fatalf("rehearsal root %+v: want an admin key created and revoked", r)
	}
	if got := read(t, c, "thirdparty/providers/"+provider).Data["root_key_id"]; got != rootID {
		t.Fatalf("root %v, want %v unchanged", got, rootID)
	}

	live := func() int { return len(d.keys(t, "state=live")) }
	before := live()
	for _, tc := range []struct{ path, route, step string }{
		{"thirdparty/rotate-role/" + role, "POST /v1/keys", "create"},
		{"thirdparty/rotate-role/" + role, "GET /v1/whoami", "verify"},
		{"thirdparty/rotate-root/" + provider, "POST /v1/admin-keys", "create_root"},
	} {
		d.setKnobs(t, map[string]any{"forbid": []string{tc.route}})
		_, err := c.Logical().Write(tc.path, map[string]any{"dry_run": true})
		if err == nil || !strings.Contains(err.Error(), "failed at step "+tc.step) || !strings.Contains(err.Error(), tc.route) {
			t.Fatalf("%s with %s forbidden: %v; want the step %s and the call named", tc.path, tc.route, err, tc.step)
		}
		d.setKnobs(t, map[string]any{"forbid": []string{}})
		if n := live(); n != before {
			t.Fatalf("%d live keys after the failed rehearsal at %s, want %d", n, tc.step, before)
		}
	}
	if got := read(t, c, "thirdparty/roles/"+role).Data; got["current_key_id"] != cur || got["last_rotation_error"] != "" {
		t.Fatalf("role after failed rehearsals: current %v, last error %v", got["current_key_id"], got["last_rotation_error"])
	}
}
