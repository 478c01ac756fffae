package httptpl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// A template's output goes to one of three places, each with its own
// escaping. The escaping is applied after execution, by context, so no value
// can change the structure the template's own text gives the output:
//
//   - path: before the first "?" every value is path-escaped ("/" becomes
//     %2F), after it query-escaped ("&" and "=" too);
//   - body: as JSON (a value outside a JSON string becomes one complete JSON
//     value, a value inside a string becomes escaped string content) or, when
//     the request's Content-Type is form-urlencoded, query-escaped;
//   - header: "Name: value" lines; a value may not contain a line break and
//     may not stand in a header name.
//
// It works like html/template: every printing action gets one more command
// appended to its pipeline (markFunc) that turns the value into an opaque
// marker; after execution the markers are replaced with the escaped value,
// chosen by where the marker landed in the template's own text.
type kind int

const (
	kindPath kind = iota
	kindBody
	kindHeader
)

// markFunc is the internal function appended to every printing action.
// Templates may not call it.
const markFunc = "httptpl_value"

// A marker is NUL, a tag byte, the base64url payload, NUL. Template text may
// not contain NUL, so every NUL in executed output starts or ends a marker.
// The tag is upper case when the value is derived from a secret (see
// execute).
const (
	tagString = 's' // a string: quoted in JSON, escaped elsewhere
	tagJSON   = 'j' // any other value, already encoded as JSON
	tagRaw    = 'r' // the result of the json function (valid JSON text)
	tagURL    = 'u' // the result of urlquery (already query-escaped)
)

// rawJSON is what the json function returns: a value that is already JSON.
type rawJSON string

// urlText is what urlquery returns: text that is already query-escaped and
// needs no further escaping in a URL.
type urlText string

// maxOutput bounds what one template may produce.
const maxOutput = 1 << 20

func funcMap() template.FuncMap {
	return template.FuncMap{
		"json":     jsonFunc,
		"urlquery": urlqueryFunc,
		"join":     strings.Join,
		markFunc:   mark,
	}
}

func jsonFunc(v any) (rawJSON, error) {
	b, err := marshal(v)
	if err != nil {
		return "", errors.New("json: value cannot be encoded")
	}
	return rawJSON(b), nil
}

func urlqueryFunc(args ...any) urlText {
	if len(args) == 1 {
		if s, ok := args[0].(string); ok {
			return urlText(url.QueryEscape(s))
		}
	}
	return urlText(url.QueryEscape(fmt.Sprint(args...)))
}

// marshal encodes v as JSON without HTML escaping (bodies are not HTML).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func mark(v any) (string, error) {
	var tag byte
	var payload []byte
	switch x := v.(type) {
	case string:
		tag, payload = tagString, []byte(x)
	case rawJSON:
		tag, payload = tagRaw, []byte(x)
	case urlText:
		tag, payload = tagURL, []byte(x)
	default:
		b, err := marshal(v)
		if err != nil {
			return "", errors.New("value cannot be printed")
		}
		tag, payload = tagJSON, b
	}
	return encodeMarker(tag, payload), nil
}

func encodeMarker(tag byte, payload []byte) string {
	return "\x00" + string(tag) + base64.RawURLEncoding.EncodeToString(payload) + "\x00"
}

// value is one decoded marker.
type value struct {
	tag  byte
	data string
	// secret is set when the value changes with a secret: it is, or is
	// derived from, a credential (see execute).
	secret bool
}

// text is the value as plain text: strings as themselves, everything else as
// its JSON text (lists print as ["a","b"]; use join for a, b).
func (v value) text() string { return v.data }

// splitMarkers cuts executed output into literal text and values.
// segments alternate: lit[0] val[0] lit[1] val[1] … lit[n].
func splitMarkers(out string) (lits []string, vals []value, err error) {
	for {
		i := strings.IndexByte(out, 0)
		if i < 0 {
			lits = append(lits, out)
			return lits, vals, nil
		}
		lits = append(lits, out[:i])
		rest := out[i+1:]
		j := strings.IndexByte(rest, 0)
		if j < 1 {
			return nil, nil, errors.New("internal: broken value marker")
		}
		data, derr := base64.RawURLEncoding.DecodeString(rest[1:j])
		if derr != nil {
			return nil, nil, errors.New("internal: broken value marker")
		}
		tag, secret := rest[0], false
		if tag >= 'A' && tag <= 'Z' {
			tag, secret = tag+('a'-'A'), true
		}
		vals = append(vals, value{tag: tag, data: string(data), secret: secret})
		out = rest[j+1:]
	}
}

// joinMarkers is the inverse of splitMarkers.
func joinMarkers(lits []string, vals []value) string {
	var b strings.Builder
	for i, lit := range lits {
		b.WriteString(lit)
		if i < len(vals) {
			tag := vals[i].tag
			if vals[i].secret {
				tag -= 'a' - 'A'
			}
			b.WriteString(encodeMarker(tag, []byte(vals[i].data)))
		}
	}
	return b.String()
}

// tmpl is one compiled template field.
type tmpl struct {
	field string
	kind  kind
	step  step
	src   string
	t     *template.Template // nil when the field is empty
	// params lists the .Parameters keys the template names; anyParam is
	// set when it uses the whole map (json, range, a computed index).
	params   map[string]bool
	anyParam bool
}

// compile parses a template field and checks every variable it names
// against what its step provides.
func compile(field, src string, k kind, s step) (*tmpl, error) {
	tp := &tmpl{field: field, kind: k, step: s, src: src, params: map[string]bool{}}
	if strings.TrimSpace(src) == "" {
		return tp, nil
	}
	if strings.IndexByte(src, 0) >= 0 {
		return nil, errors.New("template: contains a NUL character")
	}
	t, err := template.New(field).Option("missingkey=zero").Funcs(funcMap()).Parse(src)
	if err != nil {
		return nil, cleanTemplateError(err)
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("template: define and block are not supported")
	}
	c := &checker{tp: tp, src: src, root: stepVars[s]}
	if err := c.walk(t.Tree.Root, true); err != nil {
		return nil, err
	}
	addMarks(t.Tree.Root)
	tp.t = t
	return tp, nil
}

var (
	tplErrRE  = regexp.MustCompile(`^template: [^:]*:(\d+)(?::\d+)?: (?:executing "[^"]*" )?(.*)$`)
	inTypeRE  = regexp.MustCompile(` in type [^ :]+`)
	errPrefix = "template: "
)

// cleanTemplateError turns "template: create_body:2:7: executing … at <.X>:
// msg in type httptpl.foo" into "template: line 2: at <.X>: msg".
func cleanTemplateError(err error) error {
	msg := err.Error()
	if m := tplErrRE.FindStringSubmatch(msg); m != nil {
		msg = errPrefix + "line " + m[1] + ": " + m[2]
	}
	msg = inTypeRE.ReplaceAllString(msg, "")
	return errors.New(msg)
}

// checker walks a parse tree before it runs: it rejects variables the step
// does not provide, and records which parameters the template uses.
type checker struct {
	tp   *tmpl
	src  string
	root reflect.Type
}

func (c *checker) errorf(n parse.Node, format string, args ...any) error {
	line := 1 + strings.Count(c.src[:min(int(n.Position()), len(c.src))], "\n")
	return fmt.Errorf("template: line %d: %s", line, fmt.Sprintf(format, args...))
}

// walk visits n; rootDot says whether "." is still the top-level data (it
// changes inside range and with).
func (c *checker) walk(n parse.Node, rootDot bool) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, x := range n.Nodes {
			if err := c.walk(x, rootDot); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return c.pipe(n.Pipe, rootDot)
	case *parse.IfNode:
		return c.branch(&n.BranchNode, rootDot, rootDot)
	case *parse.RangeNode:
		return c.branch(&n.BranchNode, rootDot, false)
	case *parse.WithNode:
		return c.branch(&n.BranchNode, rootDot, false)
	case *parse.TemplateNode:
		return c.errorf(n, "{{template}} is not supported")
	case *parse.PipeNode:
		return c.pipe(n, rootDot)
	case *parse.ChainNode:
		return c.walk(n.Node, rootDot)
	case *parse.FieldNode:
		if rootDot {
			return c.chain(n, n.Ident)
		}
	case *parse.VariableNode:
		if n.Ident[0] == "$" {
			if len(n.Ident) == 1 {
				return c.errorf(n, "$ on its own is not a variable; %s", c.available())
			}
			return c.chain(n, n.Ident[1:])
		}
	case *parse.DotNode:
		if rootDot {
			return c.errorf(n, ". on its own is not a variable; %s", c.available())
		}
	case *parse.IdentifierNode:
		if n.Ident == markFunc {
			return c.errorf(n, "function %q not defined", n.Ident)
		}
	}
	return nil
}

func (c *checker) branch(b *parse.BranchNode, rootDot, innerDot bool) error {
	if err := c.pipe(b.Pipe, rootDot); err != nil {
		return err
	}
	if err := c.walk(b.List, innerDot); err != nil {
		return err
	}
	return c.walk(b.ElseList, rootDot)
}

func (c *checker) pipe(p *parse.PipeNode, rootDot bool) error {
	if p == nil {
		return nil
	}
	for _, cmd := range p.Cmds {
		// index .Parameters "name" names one parameter, not the whole map.
		if len(cmd.Args) == 3 && rootDot {
			if id, ok := cmd.Args[0].(*parse.IdentifierNode); ok && id.Ident == "index" {
				if f, ok := cmd.Args[1].(*parse.FieldNode); ok && len(f.Ident) == 1 && f.Ident[0] == "Parameters" {
					if s, ok := cmd.Args[2].(*parse.StringNode); ok {
						if err := c.chain(f, []string{"Parameters", s.Text}); err != nil {
							return err
						}
						continue
					}
				}
			}
		}
		for _, a := range cmd.Args {
			if err := c.walk(a, rootDot); err != nil {
				return err
			}
		}
	}
	return nil
}

// chain checks .A.B.C against the step's variables.
func (c *checker) chain(n parse.Node, idents []string) error {
	t := c.root
	for i, id := range idents {
		switch t.Kind() {
		case reflect.Struct:
			f, ok := t.FieldByName(id)
			if !ok || !f.IsExported() {
				return c.errorf(n, ".%s is not available in %s; %s", strings.Join(idents[:i+1], "."), c.tp.field, c.available())
			}
			t = f.Type
		case reflect.Map:
			// .Parameters.<name>
			c.tp.params[id] = true
			t = t.Elem()
		default:
			return c.errorf(n, ".%s has no field %s", strings.Join(idents[:i], "."), id)
		}
	}
	if len(idents) == 1 && idents[0] == "Parameters" {
		c.tp.anyParam = true
	}
	return nil
}

func (c *checker) available() string {
	return "available here: " + strings.Join(varNames(c.root), ", ")
}

// varNames lists a step's variables (".Key.Name", ".Scopes", …).
func varNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct {
			for j := 0; j < f.Type.NumField(); j++ {
				out = append(out, "."+f.Name+"."+f.Type.Field(j).Name)
			}
			continue
		}
		out = append(out, "."+f.Name)
	}
	return out
}

// addMarks appends markFunc to every printing action, as html/template does
// with its escapers.
func addMarks(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, x := range n.Nodes {
			addMarks(x)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 {
			n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{
				NodeType: parse.NodeCommand,
				Pos:      n.Pos,
				Args:     []parse.Node{parse.NewIdentifier(markFunc).SetTree(nil).SetPos(n.Pos)},
			})
		}
	case *parse.IfNode:
		addMarks(n.List)
		addMarks(n.ElseList)
	case *parse.RangeNode:
		addMarks(n.List)
		addMarks(n.ElseList)
	case *parse.WithNode:
		addMarks(n.List)
		addMarks(n.ElseList)
	}
}

type limitedBuffer struct{ strings.Builder }

var errTooLarge = fmt.Errorf("output larger than %d bytes", maxOutput)

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxOutput {
		return 0, errTooLarge
	}
	return b.Builder.Write(p)
}

// execute runs the template and returns its output with value markers,
// each value marked secret when it is derived from a secret.
//
// Which values those are is found by running the template again with every
// secret in data (each field named Secret) replaced, twice: once by a value
// of the same length that differs in every byte, once by a longer one. A
// value that comes out different is derived from a secret, whatever
// functions made it (slice, printf, urlquery, json, html, js…). When the
// output's structure changes (its literal text or its number of values, as
// an {{if}} on a secret can do) or a run with a replaced secret fails,
// whole is set: the entire output counts as derived from a secret.
func (tp *tmpl) execute(data any) (out string, whole bool, err error) {
	out, err = tp.run(data)
	if err != nil || out == "" {
		return out, false, err
	}
	lits, vals, err := splitMarkers(out)
	if err != nil {
		return "", false, err
	}
	for _, replace := range shadowSecrets {
		sout, serr := tp.run(withSecrets(data, replace))
		var slits []string
		var svals []value
		if serr == nil {
			slits, svals, serr = splitMarkers(sout)
		}
		if serr != nil || !slices.Equal(lits, slits) || len(svals) != len(vals) {
			whole = true
			break
		}
		for i := range vals {
			if vals[i].tag != svals[i].tag || vals[i].data != svals[i].data {
				vals[i].secret = true
			}
		}
	}
	if whole {
		for i := range vals {
			vals[i].secret = true
		}
	}
	return joinMarkers(lits, vals), whole, nil
}

// run executes the template once.
func (tp *tmpl) run(data any) (string, error) {
	if tp.t == nil {
		return "", nil
	}
	if reflect.TypeOf(data) != stepVars[tp.step] {
		return "", fmt.Errorf("internal: %s executed with the wrong variables", tp.field)
	}
	var buf limitedBuffer
	if err := tp.t.Execute(&buf, data); err != nil {
		if errors.Is(err, errTooLarge) {
			return "", errors.New("template: " + errTooLarge.Error())
		}
		return "", cleanTemplateError(err)
	}
	return buf.String(), nil
}

// shadowSecrets are the replacements execute runs a template with.
var shadowSecrets = []func(string) string{
	// Same length, every byte different (flipping the lowest bit keeps
	// ASCII ASCII and UTF-8 lead and continuation bytes what they were).
	func(s string) string {
		b := []byte(s)
		for i := range b {
			b[i] ^= 1
		}
		return string(b)
	},
	// Longer, so a value that depends only on the length changes too, and
	// a slice that fits the secret still fits.
	func(s string) string { return s + "~vault-shadow-secret~" },
}

// withSecrets returns a copy of data (a step's variables) with every string
// field named Secret, at any depth, passed through replace.
func withSecrets(data any, replace func(string) string) any {
	v := reflect.New(reflect.TypeOf(data)).Elem()
	v.Set(reflect.ValueOf(data))
	replaceSecrets(v, replace)
	return v.Interface()
}

func replaceSecrets(v reflect.Value, replace func(string) string) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch {
		case f.Kind() == reflect.Struct:
			replaceSecrets(f, replace)
		case f.Kind() == reflect.String && v.Type().Field(i).Name == "Secret":
			f.SetString(replace(f.String()))
		}
	}
}

// redactions collects, while a request renders, what its errors must not
// show.
type redactions struct {
	// secrets are the rendered values derived from a secret, as printed
	// and as escaped into the request.
	secrets []string
	// carriers are the header values, paths and bodies that hold one.
	carriers []string
	// shownPath is the path with each such value replaced by
	// httpx.Redacted, however short the value.
	shownPath string
}

func (r *redactions) add(values ...string) {
	for _, v := range values {
		if v != "" {
			r.secrets = append(r.secrets, v)
		}
	}
}

func (r *redactions) addCarrier(texts ...string) {
	for _, v := range texts {
		if v != "" {
			r.carriers = append(r.carriers, v)
		}
	}
}

// renderPath renders a request path (with an optional query).
func (tp *tmpl) renderPath(data any) (string, error) {
	return tp.renderPathTo(data, &redactions{})
}

// renderPathTo renders a request path and records in rd what is derived
// from a secret, and the path as errors may show it.
func (tp *tmpl) renderPathTo(data any, rd *redactions) (string, error) {
	out, whole, err := tp.execute(data)
	if err != nil {
		return "", err
	}
	lits, vals, err := splitMarkers(out)
	if err != nil {
		return "", err
	}
	var b, shown strings.Builder
	inQuery, tainted := false, whole
	for i, lit := range lits {
		b.WriteString(lit)
		shown.WriteString(lit)
		if strings.ContainsAny(lit, "?#") {
			inQuery = true
		}
		if i == len(vals) {
			break
		}
		v := vals[i]
		var esc string
		switch {
		case v.tag == tagURL:
			esc = v.data
		case inQuery:
			esc = url.QueryEscape(v.text())
		default:
			esc = url.PathEscape(v.text())
		}
		b.WriteString(esc)
		if v.secret {
			tainted = true
			rd.add(v.text(), esc)
			shown.WriteString(httpx.Redacted)
		} else {
			shown.WriteString(esc)
		}
	}
	p := strings.TrimSpace(b.String())
	switch {
	case whole:
		rd.shownPath = httpx.Redacted
	default:
		rd.shownPath = strings.TrimSpace(shown.String())
	}
	if tainted {
		// Short values derived from a secret are too short to remove from
		// free text on their own; an echo of the whole path is caught here.
		pathPart, _, _ := strings.Cut(p, "?")
		rd.addCarrier(p, pathPart)
	}
	// The path is appended to base_url, never resolved against it, so a
	// leading // cannot change the host.
	if !strings.HasPrefix(p, "/") {
		return "", errors.New("rendered path must start with /")
	}
	pathPart, _, _ := strings.Cut(p, "?")
	pathPart, _, _ = strings.Cut(pathPart, "#")
	for _, seg := range strings.Split(pathPart, "/") {
		if seg == "." || seg == ".." {
			return "", errors.New("rendered path has a . or .. segment")
		}
	}
	if _, err := url.Parse(p); err != nil {
		return "", errors.New("rendered path is not a valid URL path")
	}
	return p, nil
}

// header is one rendered header line.
type header struct{ name, value string }

// renderHeaders renders "Name: value" lines.
func (tp *tmpl) renderHeaders(data any) ([]header, error) {
	return tp.renderHeadersTo(data, &redactions{})
}

// renderHeadersTo renders "Name: value" lines and records in rd each value
// derived from a secret and each header value holding one.
func (tp *tmpl) renderHeadersTo(data any, rd *redactions) ([]header, error) {
	out, whole, err := tp.execute(data)
	if err != nil {
		return nil, err
	}
	var hs []header
	for n, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("rendered line %d is not a \"Name: value\" header", n+1)
		}
		if strings.IndexByte(name, 0) >= 0 {
			return nil, fmt.Errorf("rendered line %d: a header name cannot come from a variable", n+1)
		}
		name = strings.TrimSpace(name)
		if !validHeaderName(name) {
			return nil, fmt.Errorf("rendered line %d: %q is not a valid header name", n+1, name)
		}
		lits, vals, err := splitMarkers(rest)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		tainted := whole
		for i, lit := range lits {
			b.WriteString(lit)
			if i < len(vals) {
				t := vals[i].text()
				if hasControl(t) {
					return nil, fmt.Errorf("rendered line %d (%s): a value contains a line break or another control character", n+1, name)
				}
				b.WriteString(t)
				if vals[i].secret {
					tainted = true
					rd.add(t)
				}
			}
		}
		h := header{name: name, value: strings.TrimSpace(b.String())}
		if hasControl(h.value) {
			// Go would refuse to send it: every request would fail.
			return nil, fmt.Errorf("rendered line %d (%s): the value contains a control character", n+1, name)
		}
		if tainted {
			rd.addCarrier(h.value)
			if _, cred, ok := strings.Cut(h.value, " "); ok {
				rd.add(strings.TrimSpace(cred)) // the credential after an auth scheme
			}
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// hasControl reports bytes a header value may not carry (tab is allowed).
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// bodyFormat is how a body is encoded, from the request's Content-Type.
type bodyFormat int

const (
	formatJSON bodyFormat = iota
	formatForm
)

func bodyFormatOf(contentType string) (bodyFormat, error) {
	if contentType == "" {
		return formatJSON, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, fmt.Errorf("Content-Type %q cannot be parsed", contentType)
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return formatJSON, nil
	case mt == "application/x-www-form-urlencoded":
		return formatForm, nil
	}
	return 0, fmt.Errorf("Content-Type %q is neither JSON nor form-urlencoded; bodies can only be rendered as one of those", contentType)
}

// renderBody renders a request body; nil when the template renders nothing.
func (tp *tmpl) renderBody(data any, f bodyFormat) ([]byte, error) {
	return tp.renderBodyTo(data, f, &redactions{})
}

// renderBodyTo renders a request body and records in rd each value derived
// from a secret, as printed and as encoded into the body.
func (tp *tmpl) renderBodyTo(data any, f bodyFormat, rd *redactions) ([]byte, error) {
	out, whole, err := tp.execute(data)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(out) == "" {
		return nil, nil
	}
	if f == formatForm {
		lits, vals, err := splitMarkers(out)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for i, lit := range lits {
			b.WriteString(lit)
			if i < len(vals) {
				esc := vals[i].data
				if vals[i].tag != tagURL {
					esc = url.QueryEscape(vals[i].text())
				}
				b.WriteString(esc)
				if vals[i].secret {
					rd.add(vals[i].text(), esc)
				}
			}
		}
		body := []byte(strings.TrimSpace(b.String()))
		if whole {
			rd.addCarrier(string(body))
		}
		return body, nil
	}
	body, err := substituteJSON(out, rd)
	if err != nil {
		return nil, err
	}
	if whole {
		rd.addCarrier(string(body))
	}
	if !json.Valid(body) {
		var v any
		jerr := json.Unmarshal(body, &v)
		msg := "invalid JSON"
		var se *json.SyntaxError
		if errors.As(jerr, &se) {
			// The offset and the syntax message name no value.
			msg = fmt.Sprintf("invalid JSON at byte %d (%s)", se.Offset, syntaxReason(se))
		}
		return nil, errors.New("rendered body is " + msg)
	}
	return body, nil
}

// syntaxReason keeps a JSON syntax error's wording but drops the quoted
// character it names, which could come from a value.
func syntaxReason(se *json.SyntaxError) string {
	s := se.Error()
	if i := strings.Index(s, "'"); i >= 0 {
		if j := strings.LastIndex(s, "'"); j > i {
			s = s[:i] + "…" + s[j+1:]
		}
	}
	return s
}

// substituteJSON replaces the markers in JSON template output: outside a
// string a value becomes one complete JSON value, inside a string it becomes
// escaped string content. Either way it cannot end the string, open or close
// an object, or add a member.
func substituteJSON(out string, rd *redactions) ([]byte, error) {
	lits, vals, err := splitMarkers(out)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	inString := false
	for i, lit := range lits {
		for j := 0; j < len(lit); j++ {
			c := lit[j]
			b.WriteByte(c)
			if !inString {
				if c == '"' {
					inString = true
				}
				continue
			}
			switch c {
			case '"':
				inString = false
			case '\\':
				// Copy the escape sequence whole; a value may not complete it.
				n := 1
				if j+1 < len(lit) && lit[j+1] == 'u' {
					n = 5
				}
				if j+n >= len(lit) {
					if i < len(vals) {
						return nil, errors.New("a value cannot follow a backslash inside a JSON string")
					}
					n = len(lit) - j - 1 // malformed tail; json.Valid reports it
				}
				b.WriteString(lit[j+1 : j+1+n])
				j += n
			}
		}
		if i == len(vals) {
			break
		}
		v := vals[i]
		var enc []byte
		switch {
		case inString:
			enc, _ = marshal(v.text())
			enc = enc[1 : len(enc)-1]
		case v.tag == tagJSON || v.tag == tagRaw:
			enc = []byte(v.data)
		default:
			enc, _ = marshal(v.data)
		}
		b.Write(enc)
		if v.secret {
			rd.add(v.text(), string(enc))
		}
	}
	return b.Bytes(), nil
}

// methods are the HTTP methods a request field accepts.
var methods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodHead: true, http.MethodOptions: true,
}

func methodNames() string {
	var ms []string
	for m := range methods {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

// parseStatuses reads "404" or "404,410".
func parseStatuses(s string) (map[int]bool, error) {
	out := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 100 || n > 599 {
			return nil, fmt.Errorf("%q is not an HTTP status code (100-599)", part)
		}
		if n >= 200 && n < 300 {
			continue // success needs no listing
		}
		out[n] = true
	}
	return out, nil
}
