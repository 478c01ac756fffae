package httptpl

import (
	"encoding/json"
	"maps"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// bodyTemplates are JSON body templates that are valid JSON with the sample
// values; whatever the values, their output must stay valid JSON.
var bodyTemplates = []string{
	`{"name": {{.Key.Name}}, "scopes": {{.Scopes}}, "p": {{.Parameters.p}}}`,
	`{"note": "a {{.Key.Name}} b \"{{.Parameters.p}}\" \\ {{json .Scopes}}", "n": {{.Key.ExpiresUnix}}}`,
	`{"csv": "{{join .Scopes ","}}", "all": {{json .Parameters}}, "q": "{{urlquery .Key.Name}}", "m": {{.Parameters}}}`,
	`[{{range $i, $s := .Scopes}}{{if $i}},{{end}}{"s": {{$s}}, "t": "{{$s}}"}{{end}}]`,
	`{"\u0041{{.Key.Name}}": {{index .Parameters "p"}}, "r": "\\{{.Parameters.p}}", "e": {{if .Key.ExpiresAt}}{{.Key.ExpiresAt}}{{else}}null{{end}}}`,
	`{"printf": {{printf "%s-%q" .Key.Name .Parameters.p}}, "len": {{len .Scopes}}, "html": "{{html .Key.Name}}"}`,
}

var fuzzSeeds = [][3]string{
	{"vault-app-1", "mail.send", "team-a"},
	{`"`, `\`, `"},"admin":true,"x":{"`},
	{"\u2028\u2029", "</script>", "\x00\x01\x1f"},
	{"\xff\xfe", "a\xc3", "{{.Root.Secret}}"},
	{`\u0022`, "]", "}"},
	{"", "", ""},
	{"\x00s" + "aGVsbG8" + "\x00", "\x00", "\x00j\x00"},
}

// fuzzRootSecret is the root secret of fuzzData; no fuzzed template names it.
const fuzzRootSecret = "rootsecret-9f1c2e"

func fuzzData(name, scope, param string) createVars {
	return createVars{
		Key:        createKey{Name: name, ExpiresAt: "2030-01-01T00:00:00Z", ExpiresUnix: 1893456000, TTLSeconds: 60},
		Scopes:     []string{scope, name},
		Parameters: map[string]string{"p": param, "k" + name: scope}, // any key but "p"
		Root:       rootVars{ID: "r", Secret: fuzzRootSecret},
	}
}

func FuzzRenderBody(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s[0], s[1], s[2])
	}
	tps := make([]*tmpl, len(bodyTemplates))
	for i, src := range bodyTemplates {
		tp, err := compile("create_body", src, kindBody, stepCreate)
		if err != nil {
			f.Fatalf("template %d: %v", i, err)
		}
		tps[i] = tp
	}
	f.Fuzz(func(t *testing.T, name, scope, param string) {
		data := fuzzData(name, scope, param)
		for i, tp := range tps {
			body, err := tp.renderBody(data, formatJSON)
			if err != nil {
				t.Fatalf("template %d: %v", i, err)
			}
			if !json.Valid(body) {
				t.Fatalf("template %d rendered invalid JSON for %q %q %q:\n%s", i, name, scope, param, body)
			}
		}
		if !utf8.ValidString(name) || !utf8.ValidString(scope) || !utf8.ValidString(param) {
			return // encoding replaces invalid UTF-8 with U+FFFD
		}
		// Values come back exactly, wherever they stood.
		var v0 struct {
			Name   string
			Scopes []string
			P      string
		}
		b0, _ := tps[0].renderBody(data, formatJSON)
		if err := json.Unmarshal(b0, &v0); err != nil || v0.Name != name || v0.P != param || len(v0.Scopes) != 2 || v0.Scopes[0] != scope {
			t.Fatalf("template 0 round trip: %s (%v)", b0, err)
		}
		var v1 struct{ Note string }
		b1, _ := tps[1].renderBody(data, formatJSON)
		sj, _ := marshal(data.Scopes)
		if err := json.Unmarshal(b1, &v1); err != nil || v1.Note != "a "+name+` b "`+param+`" \ `+string(sj) {
			t.Fatalf("template 1 round trip: %s (%v)", b1, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b0, &m); err != nil || len(m) != 3 {
			t.Fatalf("template 0 has other members: %s", b0)
		}
		var v2 struct {
			CSV string
			All map[string]string
			Q   string
			M   map[string]string
		}
		b2, _ := tps[2].renderBody(data, formatJSON)
		if err := json.Unmarshal(b2, &v2); err != nil || v2.CSV != scope+","+name || !maps.Equal(v2.All, data.Parameters) ||
			!maps.Equal(v2.M, data.Parameters) {
			t.Fatalf("template 2 round trip: %s (%v)", b2, err)
		}
		if q, qerr := url.QueryUnescape(v2.Q); qerr != nil || q != name {
			t.Fatalf("template 2: urlquery gave %q, which unescapes to %q (%v)", v2.Q, q, qerr)
		}
		var v3 []struct{ S, T string }
		b3, _ := tps[3].renderBody(data, formatJSON)
		if err := json.Unmarshal(b3, &v3); err != nil || len(v3) != len(data.Scopes) {
			t.Fatalf("template 3 has %d items for %d scopes: %s (%v)", len(v3), len(data.Scopes), b3, err)
		}
		for i, it := range v3 {
			if it.S != data.Scopes[i] || it.T != data.Scopes[i] {
				t.Fatalf("template 3 item %d = %+v, want %q", i, it, data.Scopes[i])
			}
		}
		for i, tp := range tps {
			if b, _ := tp.renderBody(data, formatJSON); strings.Contains(string(b), fuzzRootSecret) {
				t.Fatalf("template %d, which names no root, rendered the root secret", i)
			}
		}
	})
}

func FuzzRenderPathAndHeaders(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s[0], s[1], s[2])
	}
	path, err := compile("create_path", "/v1/{{.Parameters.p}}/keys?name={{.Key.Name}}&x=1&s={{urlquery .Parameters.p}}", kindPath, stepCreate)
	if err != nil {
		f.Fatal(err)
	}
	hdrs, err := compile("create_headers", "X-A: {{.Key.Name}}\nX-B: pre-{{.Parameters.p}}", kindHeader, stepCreate)
	if err != nil {
		f.Fatal(err)
	}
	form, err := compile("create_body", "a={{.Key.Name}}&b={{join .Scopes \",\"}}", kindBody, stepCreate)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, scope, param string) {
		data := fuzzData(name, scope, param)

		p, err := path.renderPath(data)
		if err == nil {
			u, perr := url.Parse(p)
			if perr != nil {
				t.Fatalf("rendered path %q does not parse: %v", p, perr)
			}
			segs := strings.Split(u.EscapedPath(), "/")
			if len(segs) != 4 || segs[1] != "v1" || segs[3] != "keys" || u.Fragment != "" {
				t.Fatalf("value changed the path's shape: %q", p)
			}
			if seg, _ := url.PathUnescape(segs[2]); seg != param {
				t.Fatalf("segment = %q, want %q", seg, param)
			}
			q, qerr := url.ParseQuery(u.RawQuery)
			if qerr != nil || len(q) != 3 || q.Get("name") != name || q.Get("x") != "1" || q.Get("s") != param {
				t.Fatalf("value changed the query: %q (%v)", u.RawQuery, qerr)
			}
		} else if param != "." && param != ".." {
			t.Fatalf("renderPath: %v", err)
		}

		hs, err := hdrs.renderHeaders(data)
		if err == nil {
			if len(hs) != 2 || hs[0].name != "X-A" || hs[1].name != "X-B" ||
				hs[0].value != strings.TrimSpace(name) || hs[1].value != strings.TrimSpace("pre-"+param) {
				t.Fatalf("headers = %q", hs)
			}
		} else if !hasControl(name + param) {
			t.Fatalf("renderHeaders: %v", err)
		}

		body, err := form.renderBody(data, formatForm)
		if err != nil {
			t.Fatal(err)
		}
		q, err := url.ParseQuery(string(body))
		if err != nil || len(q) != 2 || q.Get("a") != name || q.Get("b") != scope+","+name {
			t.Fatalf("form body %q: %v %v", body, q, err)
		}
	})
}

var extractSeeds = []struct {
	body string
	path string
}{
	{`{"id":"key_1","name":"n","key":"dk_x","expires_at":"2030-01-01T00:00:00Z"}`, "id"},
	{`{"id":12345,"expires_at":1893456000}`, "expires_at"},
	{`{"keys":[{"id":"a","name":"x"},{"id":"b","name":"y"}]}`, "keys"},
	{`{"keys":[{"id":"a","name":"x"}]}`, `keys.#(name=="x").id`},
	{`[{"id":1},{"id":2}]`, "@this"},
	{`{"access_token":{"token":"t"}}`, "access_token.token"},
	{`{"a":{"b":[1,2,3]}}`, "a.b.#"},
	{`{"a":"b"}`, "@reverse"},
	{`{"a":"b"}`, `..#`},
	{`{"error":{"message":"no"}}`, "error.message"},
	{`not json`, "id"},
	{`{"a":1e999}`, "a"},
	{`{"a":"\ud800"}`, "a"},
	{`{"a":null}`, "a|@pretty"},
	{`{}`, `#(`},
	{`{}`, `a.[`},
	{`[]`, `0.#.a.#(b>1)#`},
	{`{"a":{"b":1}}`, `{a.b,c:a}`},
	{`{"a":[1]}`, `a|@flatten:{"deep":true}`},
}

func FuzzExtract(f *testing.F) {
	for _, s := range extractSeeds {
		f.Add([]byte(s.body), s.path)
	}
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		valid := json.Valid(body)
		var want gjson.Result
		if valid {
			// gjson itself, unguarded: a panic here is a finding even
			// though lookup recovers from it.
			want = gjson.GetBytes(body, strings.TrimSpace(path))
		}
		// Errors name the path, never a value: any string in the body
		// (that the path does not spell) must stay out of them.
		values := bodyStrings(body)
		noValue := func(what string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			for _, v := range values {
				if len(v) >= 6 && !strings.Contains(path, v) && strings.Contains(err.Error(), v) {
					t.Fatalf("%s error quotes a value of the body (%q): %v", what, v, err)
				}
			}
		}

		s, err := extractString(body, path, true)
		noValue("secret", err)
		if err == nil && (s == "" || want.Type != gjson.String || s != want.Str) {
			t.Fatalf("secret = %q, gjson has %s %q", s, want.Type, want.Raw)
		}
		id, err := extractString(body, path, false)
		noValue("id", err)
		if err == nil {
			if id == "" || !(want.Type == gjson.String && id == want.Str || want.Type == gjson.Number && id == want.String()) {
				t.Fatalf("id = %q, gjson has %s %q", id, want.Type, want.Raw)
			}
		}
		tm, err := extractTime(body, path)
		noValue("expiry", err)
		if err == nil && !tm.IsZero() && (tm.Location() != time.UTC || tm.Year() < 1970 || tm.Year() > 9999) {
			t.Fatalf("expiry %v out of range", tm)
		}
		items, err := extractItems(body, path)
		noValue("items", err)
		if err == nil {
			if !want.IsArray() || len(items) != len(want.Array()) {
				t.Fatalf("%d items, gjson has %s", len(items), want.Raw)
			}
			for _, it := range items {
				if !json.Valid(it) {
					t.Fatalf("item %q is not JSON", it)
				}
			}
		}
		if msg := errorMessage(body); msg != "" {
			found := false
			for _, p := range errorPaths {
				if r := gjson.GetBytes(body, p); r.Type == gjson.String && r.Str == msg {
					found = true
					break
				}
			}
			if !found || strings.TrimSpace(msg) == "" {
				t.Fatalf("errorMessage = %q, at none of %v", msg, errorPaths)
			}
		}
	})
}

// bodyStrings lists every string (keys included) of a JSON body.
func bodyStrings(body []byte) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				out = append(out, k)
				walk(e)
			}
		}
	}
	var v any
	if json.Unmarshal(body, &v) == nil {
		walk(v)
	}
	return out
}
