package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	dashFile  = "../../docs/grafana/thirdparty.json"
	rulesFile = "../../deploy/prometheus/rules.yml"
)

// The committed dashboard and rules parse, and every expression names
// metrics (which ones exist is checked against a live scrape by the e2e
// suite's TestDashboardMetricsExist).
func TestCommittedFilesParse(t *testing.T) {
	exprs, errs := check(dashFile, rulesFile)
	for _, err := range errs {
		t.Error(err)
	}
	var panels, rules int
	for _, e := range exprs {
		if len(e.Metrics) == 0 && !strings.Contains(e.Expr, "vector(") {
			t.Errorf("%s selects no metric: %s", e.Source, e.Expr)
		}
		switch {
		case strings.HasPrefix(e.Source, "dashboard panel"):
			panels++
		case strings.HasPrefix(e.Source, "rule "):
			rules++
		}
	}
	if panels < 10 || rules < 7 {
		t.Errorf("%d panel queries, %d rules: the files were not read whole", panels, rules)
	}
	t.Logf("%d expressions parsed: %d panel queries, %d rules", len(exprs), panels, rules)
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (le) (rate(a_bucket{x="1"}[5m])) / on () group_left b`:                      "a_bucket b",
		`{__name__="c", mount=~".*"} * 2`:                                                   "c",
		`label_replace(d, "name", "$1", "role", "(.+)") * on (name) group_left e{kind="r"}`: "d e",
		`time() - f > 25 * 3600`:                                                            "f",
	} {
		got, err := metricNames(expr)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("metricNames(%s) = %v, %v; want %s", expr, got, err, want)
		}
	}
	for _, bad := range []string{`sum(rate(x[5m])`, `{mount="a"}`, `rate(x[$__rate_interval])`, `x{mount=~"$mount"} +`} {
		if _, err := metricNames(bad); err == nil {
			t.Errorf("metricNames(%s): no error", bad)
		}
	}
}

// A dashboard or rules file with an expression that does not parse fails
// the check, naming where it is; Grafana variables are filled in, but
// label_replace's $1 is left alone.
func TestBrokenFilesFail(t *testing.T) {
	dir := t.TempDir()
	dash := filepath.Join(dir, "d.json")
	rules := filepath.Join(dir, "r.yml")
	os.WriteFile(dash, []byte(`{"templating":{"list":[{"name":"mount","type":"query","query":"label_values(up{job=\"$mount\"}, mount)"}]},
		"panels":[{"title":"ok","targets":[{"refId":"A","expr":"label_replace(rate(a{m=~\"$mount\"}[$__rate_interval]), \"x\", \"$1\", \"y\", \"(.*)\")"}]},
		{"title":"row","panels":[{"title":"bad","targets":[{"refId":"B","expr":"sum(b"}]}]}]}`), 0o644)
	os.WriteFile(rules, []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(c[5m]) >\n"), 0o644)
	exprs, errs := check(dash, rules)
	joined := ""
	for _, e := range errs {
		joined += e.Error() + "\n"
	}
	if !strings.Contains(joined, `dashboard panel "bad" query B`) || !strings.Contains(joined, "r.yml") {
		t.Errorf("errors do not name the broken panel and rule:\n%s", joined)
	}
	var ok *Expr
	for i := range exprs {
		if exprs[i].Source == `dashboard panel "ok" query A` {
			ok = &exprs[i]
		}
	}
	if ok == nil || ok.Expr != `label_replace(rate(a{m=~".*"}[5m]), "x", "$1", "y", "(.*)")` {
		t.Errorf("interpolated %+v", ok)
	}
}

// docs/monitoring.md says when each alert of rules.yml fires.
func TestEveryAlertIsDocumented(t *testing.T) {
	exprs, errs := check(dashFile, rulesFile)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	doc, err := os.ReadFile("../../docs/monitoring.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range exprs {
		if name, ok := strings.CutPrefix(e.Source, "rule vault-thirdparty/"); ok {
			n++
			if !strings.Contains(string(doc), "\n| `"+name+"` | ") {
				t.Errorf("docs/monitoring.md has no row for alert %s in its alert table", name)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts in the group vault-thirdparty")
	}
}
