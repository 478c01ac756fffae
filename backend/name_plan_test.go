package backend

import (
	"regexp"
	"strings"
	"testing"
)

// renderBoth renders tmpl through its plan and through the sdk's template.
func renderBoth(t testing.TB, tmpl string, d nameData) (plan, slow string, planned bool) {
	t.Helper()
	nt, err := parseNameTemplate(tmpl)
	if err != nil {
		t.Fatalf("%q: %v", tmpl, err)
	}
	slow, err = nt.t.Generate(d)
	if err != nil {
		t.Fatalf("%q through text/template: %v", tmpl, err)
	}
	if nt.plan == nil {
		return "", slow, false
	}
	plan, err = nt.plan.render(d)
	if err != nil {
		t.Fatalf("%q through its plan: %v", tmpl, err)
	}
	return plan, slow, true
}

var namePlanData = []nameData{
	{RoleName: "app", DisplayName: "token-ci", Marker: "tpAbCdEfGh"},
	{RoleName: strings.Repeat("r", 100), DisplayName: strings.Repeat("é", 128), Marker: "tp00000000"},
	{RoleName: "x", DisplayName: "", Marker: ""},
	{RoleName: "a b", DisplayName: "ünïcødé-名前", Marker: "tp"},
}

// Every template the plan handles gives the name text/template gives.
func TestNamePlanAgreesWithTheTemplate(t *testing.T) {
	t.Parallel()
	for _, tmpl := range []string{
		"plain",
		"{{.RoleName}}",
		"a-{{.RoleName}}-b-{{.DisplayName}}-c-{{.Marker}}",
		"{{.RoleName | truncate 3}}_{{.DisplayName | truncate 1}}",
		"{{truncate 5 .DisplayName}}",
		"{{ .RoleName | truncate 256 }}",
		"x {{- .RoleName -}} y",
		"{{/* a comment */}}{{.Marker}}",
		"{{.DisplayName | truncate 24}}{{.DisplayName | truncate 25}}",
	} {
		for _, d := range namePlanData {
			plan, slow, planned := renderBoth(t, tmpl, d)
			if !planned {
				t.Errorf("%q has no plan", tmpl)
				continue
			}
			if plan != slow {
				t.Errorf("%q with %+v: plan %q, text/template %q", tmpl, d, plan, slow)
			}
		}
	}
}

// The defaults, and templates using random and unix_time, have a plan whose
// names have the template's shape.
func TestNamePlanOfTheDefaults(t *testing.T) {
	t.Parallel()
	d := nameData{RoleName: strings.Repeat("r", 40), DisplayName: strings.Repeat("d", 30), Marker: "tpAbCdEfGh"}
	for tmpl, re := range map[string]string{
		defaultNameTemplate: `^vault-tpAbCdEfGh-r{32}-d{24}-[0-9]{10}-[0-9A-Za-z]{6}$`,
		shortNameTemplate:   `^vault-tpAbCdEfGh-r{16}-d{8}-[0-9]{10}-[0-9A-Za-z]{6}$`,
		"{{random 64}}":     `^[0-9A-Za-z]{64}$`,
		"{{ unix_time }}":   `^[0-9]{10}$`,
	} {
		plan, slow, planned := renderBoth(t, tmpl, d)
		if !planned {
			t.Errorf("%q has no plan", tmpl)
			continue
		}
		for what, name := range map[string]string{"plan": plan, "text/template": slow} {
			if !regexp.MustCompile(re).MatchString(name) {
				t.Errorf("%q through %s = %q, want %s", tmpl, what, name, re)
			}
		}
	}
}

// What the plan cannot express renders through text/template as before.
func TestNamePlanLeavesTheRestToTheTemplate(t *testing.T) {
	t.Parallel()
	d := namePlanData[0]
	for tmpl, want := range map[string]string{
		"{{.RoleName | uppercase}}":                       "APP",
		`{{if .DisplayName}}{{.DisplayName}}{{end}}`:      "token-ci",
		"{{.RoleName | truncate 2 | uppercase}}":          "AP",
		`{{replace "-" "_" .DisplayName}}`:                "token_ci",
		"{{.RoleName | truncate_sha256 2 | len | print}}": "",
	} {
		nt, err := parseNameTemplate(tmpl)
		if err != nil {
			if want == "" {
				continue // refused by checkNameTemplate: not this test's concern
			}
			t.Fatalf("%q: %v", tmpl, err)
		}
		if nt.plan != nil {
			t.Errorf("%q has a plan, want text/template", tmpl)
		}
		got, err := renderKeyName(tmpl, nameVars{Role: d.RoleName, Display: d.DisplayName, Marker: d.Marker})
		if err != nil || got != want {
			t.Errorf("%q = %q, %v; want %q", tmpl, got, err, want)
		}
	}
}

// Any accepted template without random or unix_time renders the same
// through its plan and through text/template.
func FuzzNamePlan(f *testing.F) {
	for _, s := range []string{"{{.RoleName | truncate 3}}-x", "{{truncate 2 .Marker}}", "a{{.DisplayName}}b", "{{- .RoleName }} {{/*c*/}}"} {
		f.Add(s, "role", "display")
	}
	f.Fuzz(func(t *testing.T, tmpl, role, display string) {
		if strings.Contains(tmpl, "random") || strings.Contains(tmpl, "unix_time") || strings.Contains(tmpl, "uuid") ||
			strings.Contains(tmpl, "timestamp") {
			return
		}
		nt, err := parseNameTemplate(tmpl)
		if err != nil || nt.plan == nil {
			return
		}
		d := nameData{RoleName: role, DisplayName: display, Marker: "tpAbCdEfGh"}
		slow, err := nt.t.Generate(d)
		if err != nil {
			return
		}
		plan, err := nt.plan.render(d)
		if err != nil || plan != slow {
			t.Fatalf("%q: plan %q (%v), text/template %q", tmpl, plan, err, slow)
		}
	})
}
