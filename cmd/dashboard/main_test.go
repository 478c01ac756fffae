package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

const committed = "../../docs/grafana/thirdparty.json"

// The committed JSON is what the code generates: run `make dashboard` after
// changing dashboard.go.
func TestCommittedDashboardIsCurrent(t *testing.T) {
	want, err := render()
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile(committed)
	if err != nil {
		t.Fatalf("%v (run make dashboard)", err)
	}
	if !bytes.Equal(have, want) {
		t.Fatalf("docs/grafana/thirdparty.json is stale: run make dashboard and commit the result")
	}
}

type jsonDashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr       string `json:"expr"`
			RefID      string `json:"refId"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			IncludeAll bool   `json:"includeAll"`
			AllValue   string `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
}

// rendered is the generated dashboard, decoded.
func rendered(t *testing.T) jsonDashboard {
	t.Helper()
	b, err := render()
	if err != nil {
		t.Fatal(err)
	}
	var d jsonDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// What the docs, the provisioning and the e2e suite rely on: the
// variables, a query in every panel on the chosen data source, unique
// titles, and the panels the issue asks for.
func TestDashboardShape(t *testing.T) {
	d := rendered(t)
	if d.UID != dashboardUID {
		t.Errorf("uid %q", d.UID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" && (!v.IncludeAll || v.AllValue != ".*") {
			t.Errorf("variable %s: All must be .* (matches a series without the label too)", v.Name)
		}
	}
	for name, typ := range map[string]string{"datasource": "datasource", "mount": "query", "provider": "query"} {
		if vars[name] != typ {
			t.Errorf("template variable %s: type %q, want %q", name, vars[name], typ)
		}
	}
	titles := map[string]bool{}
	for _, p := range d.Panels {
		if titles[p.Title] {
			t.Errorf("two panels titled %q", p.Title)
		}
		titles[p.Title] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %v, want ${datasource}", p.Title, p.Datasource)
		}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || q.Datasource == nil || q.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: query %+v", p.Title, q)
			}
		}
	}
	for _, want := range []string{titleOldestAge, "Age against rotation period", "Next rotations", "Rotations by result",
		"Failing now", "Pending revocations", "Previous keys awaiting retirement", "Provider request latency",
		"Rate limited answers (429)", "Dynamic keys outstanding", "Tidy runs by result", "Orphaned keys revoked"} {
		if !titles[want] {
			t.Errorf("no panel %q", want)
		}
	}
}

// Generation is deterministic (the stale check depends on it).
func TestRenderIsStable(t *testing.T) {
	a, err := render()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := render()
	if !bytes.Equal(a, b) {
		t.Fatal("two renders differ")
	}
}

// docs/monitoring.md says what each panel answers.
func TestEveryPanelIsDocumented(t *testing.T) {
	d := rendered(t)
	doc, err := os.ReadFile("../../docs/monitoring.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		if p.Type != "row" && !bytes.Contains(doc, []byte("\n| "+p.Title+" | ")) {
			t.Errorf("docs/monitoring.md has no row for panel %q in its panel table", p.Title)
		}
	}
}
