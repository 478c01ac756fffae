package httptpl

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// templateSeeds are templates of every kind an operator writes, and the
// text/template features the checker has to judge.
var templateSeeds = []string{
	`/v1/keys`,
	`/v1/keys/{{.Key.Name}}?scopes={{join .Scopes ","}}&p={{.Parameters.p}}`,
	`{"name": {{.Key.Name}}, "scopes": {{.Scopes}}{{if .Key.ExpiresAt}}, "expires_at": {{.Key.ExpiresAt}}{{end}}}`,
	`{"ttl": {{.Key.TTLSeconds}}, "exp": {{.Key.ExpiresUnix}}, "all": {{json .Parameters}}}`,
	`name={{.Key.Name}}&scope={{range $i, $s := .Scopes}}{{if $i}} {{end}}{{$s}}{{end}}`,
	"X-Name: {{.Key.Name}}\nX-Root-Id: {{.Root.ID}}\nAuthorization: Bearer {{.Root.Secret}}",
	`{{with .Parameters.p}}{"p": {{.}}}{{else}}{}{{end}}`,
	`{"x": "{{printf "%s-%d" .Key.Name .Key.TTLSeconds}}", "q": "{{urlquery .Key.Name}}", "i": {{index .Parameters "p"}}}`,
	`{"l": {{len .Scopes}}, "s": "{{slice .Key.Name 1 3}}", "h": "{{html .Key.Name}}", "j": "{{js .Key.Name}}"}`,
	`{{/* comment */}}{"a": {{if and .Scopes (not .Parameters.p)}}1{{else if or (eq .Key.Name "x") (lt .Key.TTLSeconds 5)}}2{{else}}3{{end}}}`,
	`{{define "x"}}y{{end}}`,
	`{{.Nope}}`,
	`{{printf "%09d" 1}}`,
	`{{range .Scopes}}{{range $.Scopes}}{{.}}{{end}}{{end}}`,
	`{{print .Root}}`,
	`{{call .Key.Name}}`,
}

var templateKinds = []struct {
	field string
	kind  kind
}{{"create_path", kindPath}, {"create_body", kindBody}, {"create_headers", kindHeader}}

// FuzzTemplate compiles any template text as a create template and renders
// what compiles: no panic, bounded time and size, and every output of the
// shape its kind promises (a path starting with / without . or ..
// segments, valid JSON, header lines with valid names and no control
// characters).
func FuzzTemplate(f *testing.F) {
	for i, src := range templateSeeds {
		for k := range templateKinds {
			if i%len(templateKinds) == k || i < 3 {
				f.Add(src, uint8(k))
			}
		}
	}
	data := fuzzData("vault-app-1", "read", `x"y`)
	f.Fuzz(func(t *testing.T, src string, k uint8) {
		tk := templateKinds[int(k)%len(templateKinds)]
		tp, err := compile(tk.field, src, tk.kind, stepCreate)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "template: ") {
				t.Fatalf("compile error %q does not say it is about the template", err)
			}
			return
		}
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("rendering took %v", d)
			}
		}()
		switch tk.kind {
		case kindPath:
			p, err := tp.renderPath(data)
			if err != nil {
				return
			}
			// The path is appended to base_url: it must not change the host.
			u, perr := url.Parse("https://api.example.com/base" + p)
			if perr != nil || !strings.HasPrefix(p, "/") || u.Host != "api.example.com" || len(p) > maxOutput {
				t.Fatalf("rendered path %q (%v)", p, perr)
			}
			rawPath, _, _ := strings.Cut(p, "?")
			rawPath, _, _ = strings.Cut(rawPath, "#")
			for _, seg := range strings.Split(rawPath, "/") {
				if seg == "." || seg == ".." {
					t.Fatalf("rendered path %q has a dot segment", p)
				}
			}
		case kindBody:
			if body, err := tp.renderBody(data, formatJSON); err == nil && (len(body) > maxOutput || (body != nil && !json.Valid(body))) {
				t.Fatalf("rendered JSON body %q", body)
			}
			if body, err := tp.renderBody(data, formatForm); err == nil && len(body) > maxOutput {
				t.Fatalf("form body of %d bytes", len(body))
			}
		case kindHeader:
			hs, err := tp.renderHeaders(data)
			if err != nil {
				return
			}
			for _, h := range hs {
				if !validHeaderName(h.name) || hasControl(h.value) {
					t.Fatalf("rendered header %q: %q", h.name, h.value)
				}
			}
		}
	})
}
