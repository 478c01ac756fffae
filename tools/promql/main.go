// Command promql parses every PromQL expression of the Grafana dashboard
// (docs/grafana/thirdparty.json: panel queries and template variable
// queries) and of the alert rules (deploy/prometheus/rules.yml) with
// Prometheus' own parser and rule-file loader, and prints, as JSON, each
// expression with the metric names it selects. It exits 1 when anything
// does not parse.
//
// It is a module of its own so that the Prometheus server module and its
// dependencies stay out of the plugin's module graph. The e2e suite runs it
// and checks every name against a live scrape of thirdparty/metrics.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// Expr is one expression, where it comes from, and the metrics it selects.
type Expr struct {
	Source  string   `json:"source"`
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
}

func main() {
	dash := flag.String("dashboard", "docs/grafana/thirdparty.json", "Grafana dashboard JSON `file`")
	rules := flag.String("rules", "deploy/prometheus/rules.yml", "Prometheus rules `file`")
	flag.Parse()
	exprs, errs := check(*dash, *rules)
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, err)
	}
	if err := write(os.Stdout, exprs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
}

func write(w io.Writer, exprs []Expr) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(exprs)
}

var promParser = parser.NewParser(parser.Options{})

// check parses both files and every expression in them.
func check(dashFile, rulesFile string) ([]Expr, []error) {
	var out []Expr
	var errs []error
	d, err := dashboardExprs(dashFile)
	if err != nil {
		errs = append(errs, err)
	}
	r, rerrs := ruleExprs(rulesFile)
	errs = append(errs, rerrs...)
	for _, e := range append(d, r...) {
		m, err := metricNames(e.Expr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q: %w", e.Source, e.Expr, err))
			continue
		}
		e.Metrics = m
		out = append(out, e)
	}
	return out, errs
}

// metricNames parses expr and returns the metric names its selectors name,
// sorted; a selector without a fixed name is an error (the dashboard and
// rules must say which metric they read).
func metricNames(expr string) ([]string, error) {
	ast, err := promParser.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var bad error
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			bad = fmt.Errorf("selector %s names no metric", vs)
		}
		seen[name] = true
		return nil
	})
	if bad != nil {
		return nil, bad
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// ---- the dashboard ----

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

type dashboardJSON struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// Grafana's built-in interval variables, replaced by a plausible value so
// that the expression parses as Grafana would send it.
var builtins = map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}

var varRe = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// labelValuesRe is Grafana's label_values(selector, label) variable query,
// which is not PromQL: its selector is.
var labelValuesRe = regexp.MustCompile(`^\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*$`)

func dashboardExprs(file string) ([]Expr, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var d dashboardJSON
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	// Template variables become ".*" (what "All" sends), built-ins a
	// duration; anything else that looks like a variable ($1 of
	// label_replace) is left alone, as Grafana leaves it.
	interpolate := func(s string) string {
		return varRe.ReplaceAllStringFunc(s, func(m string) string {
			sub := varRe.FindStringSubmatch(m)
			name := sub[1] + sub[2]
			if v, ok := builtins[name]; ok {
				return v
			}
			if vars[name] {
				return ".*"
			}
			return m
		})
	}
	var out []Expr
	for _, v := range d.Templating.List {
		q, _ := v.Query.(string)
		if v.Type != "query" || q == "" {
			continue
		}
		src := "dashboard variable " + v.Name
		if m := labelValuesRe.FindStringSubmatch(q); m != nil {
			q = m[1]
		}
		out = append(out, Expr{Source: src, Expr: interpolate(q)})
	}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, t := range p.Targets {
				out = append(out, Expr{Source: fmt.Sprintf("dashboard panel %q query %s", p.Title, t.RefID), Expr: interpolate(t.Expr)})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no queries", file)
	}
	return out, nil
}

// ---- the rules ----

// ruleExprs loads the rules file with Prometheus' own loader (which also
// parses and validates every rule) and returns the expressions.
func ruleExprs(file string) ([]Expr, []error) {
	rgs, errs := rulefmt.ParseFile(file, false, model.LegacyValidation, promParser, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, errs
	}
	var out []Expr
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if name == "" {
				name = r.Record
			}
			out = append(out, Expr{Source: "rule " + g.Name + "/" + name, Expr: strings.TrimSpace(r.Expr)})
		}
	}
	if len(out) == 0 {
		return nil, []error{fmt.Errorf("%s: no rules", file)}
	}
	return out, nil
}
