package httptpl

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// The property: whatever the http type's templates do with a secret (the
// root credential or an issued key), and however the request fails, no
// error text, Observe call or log line holds the secret or any value the
// templates derived from it, in any of the encodings it travels in.

// secretAlphabet mixes characters that URL path escaping, query escaping,
// JSON, HTML, JavaScript and base64 all treat differently.
const secretAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" +
	` +/=&?%#:;@"'\<>!$()[]{}*,.~-_|^` + "éü€"

func randSecret(rng *rand.Rand) string {
	chars := []rune(secretAlphabet)
	n := 18 + rng.IntN(23)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteRune(chars[rng.IntN(len(chars))])
	}
	return b.String()
}

// genExpr is a template expression of a secret and the values it goes
// through, the last being what it prints.
type genExpr struct {
	tpl    string
	values []string
	// guarded: the expression slices the secret, so it must be guarded by
	// {{if}} (the provider is validated with empty sample values too).
	guarded bool
}

// sampleSecretLen is the length of the shortest sample secret Validate
// renders templates with; slices stay inside it.
const sampleSecretLen = len("sample-key-secret")

func randExpr(rng *rand.Rand, variable, secret string, depth int) genExpr {
	if depth == 0 {
		if rng.IntN(3) == 0 {
			// At least 6 bytes, so a leak of it cannot be a chance match.
			i := rng.IntN(sampleSecretLen - 6)
			j := i + 6 + rng.IntN(sampleSecretLen-6-i+1)
			return genExpr{tpl: fmt.Sprintf("(slice %s %d %d)", variable, i, j), values: []string{secret, secret[i:j]}, guarded: true}
		}
		return genExpr{tpl: variable, values: []string{secret}}
	}
	in := randExpr(rng, variable, secret, depth-1)
	v := in.values[len(in.values)-1]
	var tpl, out string
	switch rng.IntN(9) {
	case 0:
		return in
	case 1:
		tpl, out = "(urlquery "+in.tpl+")", url.QueryEscape(v)
	case 2:
		tpl, out = "(html "+in.tpl+")", template.HTMLEscapeString(v)
	case 3:
		tpl, out = "(js "+in.tpl+")", template.JSEscapeString(v)
	case 4:
		tpl, out = `(printf "%x" `+in.tpl+")", hex.EncodeToString([]byte(v))
	case 5:
		tpl, out = `(printf "%q" `+in.tpl+")", strconv.Quote(v)
	case 6:
		tpl, out = `(printf "%s:%s" .Root.ID `+in.tpl+")", propRootID+":"+v
	case 7:
		tpl, out = `(print "pre-" `+in.tpl+` "-post")`, "pre-"+v+"-post"
	case 8:
		b, _ := marshal(v)
		tpl, out = "(json "+in.tpl+")", string(b)
	}
	return genExpr{tpl: tpl, values: append(in.values, out), guarded: in.guarded}
}

// action prints e; a guarded expression prints null when the secret is
// empty (as in Validate's empty sample).
func (e genExpr) action(variable string) string {
	if e.guarded {
		return "{{if " + variable + "}}{{" + e.tpl + "}}{{else}}null{{end}}"
	}
	return "{{" + e.tpl + "}}"
}

const propRootID = "root-1"

// propCase is one generated provider configuration and failure.
type propCase struct {
	op     string // create, verify, revoke
	fields map[string]string
	// values are every value derived from a secret, to look for.
	values []string
	mode   int
	echo   []int // which parts of the request the server echoes, in order
}

const (
	mode500 = iota
	mode404
	mode400Text
	mode200NotJSON
	mode200BadShape
	mode307Away
	mode302Same
	modeRefused
	modeTimeout
	mode429
	modeCount
)

func randCase(rng *rand.Rand) propCase {
	c := propCase{op: []string{"create", "verify", "revoke"}[rng.IntN(3)], mode: rng.IntN(modeCount)}
	root, key := randSecret(rng), randSecret(rng)
	c.fields = map[string]string{
		"root_secret":     root,
		"root_id":         propRootID,
		"create_path":     "/v1/keys",
		"revoke_path":     "/v1/keys/{{.Key.ID}}",
		"verify_path":     "/v1/whoami",
		"key_id_path":     "id",
		"key_secret_path": "key",
		"auth_header":     "Authorization: Bearer {{.Root.Secret}}",
		"key_auth_header": "Authorization: Bearer {{.Key.Secret}}",
	}
	c.values = []string{root, key}
	variable, secret := ".Root.Secret", root
	if c.op == "verify" {
		variable, secret = ".Key.Secret", key
	}
	expr := func() string {
		e := randExpr(rng, variable, secret, rng.IntN(3))
		c.values = append(c.values, e.values...)
		return e.action(variable)
	}
	pathField, headerField := c.op+"_path", "create_headers"
	switch c.op {
	case "verify":
		headerField = "key_auth_header"
	case "revoke":
		headerField = ""
	}
	// One to three placements.
	for n := 1 + rng.IntN(3); n > 0; n-- {
		switch rng.IntN(6) {
		case 0:
			c.fields[pathField] = "/v1/" + expr() + "/keys" + strings.TrimPrefix(c.fields[pathField], "/v1/keys")
		case 1:
			c.fields[pathField] += "?token=" + expr() + "&x=1"
		case 2:
			if headerField != "" {
				c.fields[headerField] = strings.TrimSpace(c.fields[headerField] + "\nX-Token: " + expr())
				break
			}
			c.fields["auth_header"] = "X-Api-Key: " + expr()
		case 3:
			if c.op == "verify" {
				c.fields["key_auth_header"] = []string{"Authorization: Basic ", "X-Custom: v=", "DD-API-KEY: "}[rng.IntN(3)] + expr()
				break
			}
			c.fields["auth_header"] = []string{"Authorization: Basic ", "X-Custom: v=", "DD-API-KEY: "}[rng.IntN(3)] + expr()
		case 4, 5:
			if c.op == "verify" {
				c.fields[pathField] += "?k=" + expr()
				break
			}
			body := c.op + "_body"
			variant := rng.IntN(3)
			if strings.Contains(c.fields["create_headers"], "urlencoded") {
				variant = 2 // the body is a form already
			}
			switch variant {
			case 0:
				c.fields[body] = `{"name": "x", "secret": ` + expr() + `}`
			case 1:
				c.fields[body] = `{"note": "a ` + expr() + ` b"}`
			case 2:
				if c.op == "create" {
					c.fields["create_headers"] = strings.TrimSpace(c.fields["create_headers"] + "\nContent-Type: application/x-www-form-urlencoded")
					c.fields[body] = "name=x&secret=" + expr()
				} else {
					c.fields[body] = `{"ids": ["x"], "by": ` + expr() + `}`
				}
			}
		}
	}
	c.echo = rng.Perm(7)[:1+rng.IntN(7)]
	return c
}

// echoOf is what a careless API echoes of a request: parts of it, raw and
// decoded, picked by which.
func echoOf(r *http.Request, body string, which []int) string {
	var parts []string
	for _, w := range which {
		switch w {
		case 0:
			parts = append(parts, r.RequestURI)
		case 1:
			parts = append(parts, r.URL.Path)
		case 2:
			for k, vs := range r.URL.Query() {
				parts = append(parts, k+"="+strings.Join(vs, ","))
			}
		case 3:
			for k, vs := range r.Header {
				parts = append(parts, k+": "+strings.Join(vs, ","))
			}
		case 4:
			parts = append(parts, body)
		case 5:
			var v map[string]any
			if json.Unmarshal([]byte(body), &v) == nil {
				parts = append(parts, fmt.Sprint(v))
			}
			if q, err := url.ParseQuery(body); err == nil {
				parts = append(parts, fmt.Sprint(q))
			}
		case 6:
			if u, p, ok := r.BasicAuth(); ok {
				parts = append(parts, u+":"+p)
			}
		}
	}
	return strings.Join(parts, " | ")
}

// derivedForms lists every form of v the property forbids: v and what URL
// path or query escaping, form decoding, JSON, HTML, JavaScript, base64 or
// hex make of it.
func derivedForms(v string) []string { return derivedFormsMin(v, 6) }

func derivedFormsMin(v string, minLen int) []string {
	js, _ := json.Marshal(v) // with HTML escaping
	plain, _ := marshal(v)
	forms := []string{
		v, strings.TrimSpace(v), url.QueryEscape(v), url.PathEscape(v), strings.ReplaceAll(v, " ", "+"), strings.ReplaceAll(v, "+", " "),
		string(js[1 : len(js)-1]), string(plain[1 : len(plain)-1]),
		template.HTMLEscapeString(v), template.JSEscapeString(v),
		base64.StdEncoding.EncodeToString([]byte(v)), base64.URLEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)),
		hex.EncodeToString([]byte(v)),
	}
	var out []string
	for _, f := range forms {
		if len(f) >= minLen {
			out = append(out, f)
		}
	}
	return out
}

// propServer answers as the case's mode says and records what it got.
type propServer struct {
	srv, away *httptest.Server
	awayHits  atomic.Int32
	mu        sync.Mutex
	got       []string // each request: URI, headers and body
	c         *propCase
	release   chan struct{}
}

func newPropServer(t *testing.T) *propServer {
	s := &propServer{release: make(chan struct{})}
	s.away = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.awayHits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body := string(b)
		s.mu.Lock()
		var h bytes.Buffer
		_ = r.Header.Write(&h)
		s.got = append(s.got, r.RequestURI+"\n"+h.String()+"\n"+body)
		c := s.c
		s.mu.Unlock()
		echo := echoOf(r, body, c.echo)
		msg, _ := json.Marshal(map[string]string{"message": echo})
		switch c.mode {
		case mode500:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(msg)
		case mode404:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write(msg)
		case mode400Text:
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, echo)
		case mode200NotJSON:
			_, _ = io.WriteString(w, "<html>"+echo)
		case mode200BadShape:
			out, _ := json.Marshal(map[string]any{"id": map[string]string{"echo": echo}, "key": echo})
			_, _ = w.Write(out)
		case mode307Away:
			w.Header().Set("Location", s.away.URL+"/steal?leak="+url.QueryEscape(echo))
			w.WriteHeader(http.StatusTemporaryRedirect)
		case mode302Same:
			w.Header().Set("Location", "/elsewhere?leak="+url.QueryEscape(echo))
			w.WriteHeader(http.StatusFound)
		case modeTimeout:
			select {
			case <-s.release:
			case <-r.Context().Done():
			}
		case mode429:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write(msg)
		}
	}))
	t.Cleanup(func() { close(s.release); s.srv.Close(); s.away.Close() })
	return s
}

func TestPropertyNoSecretInErrors(t *testing.T) {
	cases := 600
	if testing.Short() {
		cases = 150
	}
	seed := uint64(20261206)
	if v := os.Getenv("HTTPTPL_PROP_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	var logs bytes.Buffer
	log.SetOutput(&logs)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })

	srv := newPropServer(t)
	refused := closedURL(t)
	var observed []string
	var obsMu sync.Mutex
	hc, err := httpx.New(httpx.Options{Provider: "prop", MaxRetries: -1,
		Observe: func(op string, d time.Duration, status int) {
			obsMu.Lock()
			observed = append(observed, fmt.Sprintf("%s %v %d", op, d, status))
			obsMu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	typ := clienttest.Type(t, "http")
	failures, checked, sentinel := 0, 0, 0
	for i := 0; i < cases && failures < 5; i++ {
		c := randCase(rng)
		srv.mu.Lock()
		srv.c, srv.got = &c, nil
		srv.mu.Unlock()
		base := srv.srv.URL
		if c.mode == modeRefused {
			base = refused
		}
		p, err := typ.Build(clients.Config{Name: "prop", BaseURL: base, Fields: clienttest.WithDefaults(t, "http", c.fields), HTTP: hc})
		if err != nil {
			t.Fatalf("case %d (seed %d): Build: %v\nfields: %q", i, seed, err, c.fields)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if c.mode == modeTimeout {
			ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
		}
		switch c.op {
		case "create":
			_, err = p.CreateKey(ctx, clients.KeyRequest{Name: "vault-prop"})
		case "verify":
			err = p.VerifyKey(ctx, clients.Key{ID: "key-1", Name: "vault-prop", Secret: c.values[1]})
		case "revoke":
			err = p.RevokeKey(ctx, "key-1")
		}
		cancel()
		if err == nil {
			// A verify or revoke answered 200, or a revoke answered 404
			// (gone), succeeds; nothing to show.
			success := c.mode == mode200NotJSON || c.mode == mode200BadShape || (c.op == "revoke" && c.mode == mode404)
			if c.op == "create" || !success {
				t.Fatalf("case %d (seed %d): %s in mode %d succeeded", i, seed, c.op, c.mode)
			}
			continue
		}
		checked++
		srv.mu.Lock()
		got := strings.Join(srv.got, "\n")
		srv.mu.Unlock()
		var forms, formOf []string
		for _, v := range c.values {
			for _, f := range derivedForms(v) {
				forms, formOf = append(forms, f), append(formOf, v)
			}
		}
		// The generator is not vacuous: what the server received holds a
		// forbidden form (the request really carried the secret).
		if got != "" {
			found := false
			for _, v := range c.values {
				for _, f := range derivedFormsMin(v, 3) {
					found = found || strings.Contains(got, f)
				}
			}
			if !found {
				t.Fatalf("case %d: the request carried no secret form; the generator is broken\n%s", i, got)
			}
			sentinel++
		}
		var he *httpx.Error
		texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
		if errors.As(err, &he) {
			texts = append(texts, he.Path, he.Message, fmt.Sprintf("%#v", *he))
		}
		obsMu.Lock()
		texts = append(texts, observed...)
		observed = nil
		obsMu.Unlock()
		texts = append(texts, logs.String())
		all := strings.Join(texts, "\n")
		for j, f := range forms {
			if strings.Contains(all, f) {
				failures++
				t.Errorf("case %d (seed %d, op %s, mode %d): error shows %q (a form of %q)\nerror: %s\nfields: %q", i, seed, c.op, c.mode, f, formOf[j], err, c.fields)
				break
			}
		}
		if c.mode == mode307Away && srv.awayHits.Load() != 0 {
			t.Fatalf("case %d: the redirect target received %d requests", i, srv.awayHits.Load())
		}
		if c.mode == mode307Away || c.mode == mode302Same {
			if he == nil || (he.Status != http.StatusTemporaryRedirect && he.Status != http.StatusFound) {
				t.Fatalf("case %d: a redirect gave %v, want an httpx.Error naming the 3xx status", i, err)
			}
		}
	}
	if checked < cases/2 || sentinel < cases/3 {
		t.Fatalf("only %d of %d cases failed as planned (%d reached the server)", checked, cases, sentinel)
	}
	t.Logf("%d cases, %d errors checked, %d requests carried a secret", cases, checked, sentinel)
}

// closedURL is the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// A value derived from a secret is left out of the error's path however
// short it is (free text keeps values under 4 bytes, which would take
// ordinary words with them).
func TestShownPathRedactsShortValues(t *testing.T) {
	srv := startRecorder(func(*http.Request, string) (int, string) { return 500, `{"message":"no"}` })
	defer srv.Close()
	f := map[string]string{
		"root_secret":     "Zq-root-secret-value",
		"create_path":     "/v1/{{if .Root.Secret}}{{slice .Root.Secret 0 2}}{{end}}/keys/{{.Root.ID}}?t={{.Root.Secret}}",
		"root_id":         "rid",
		"revoke_path":     "/v1/keys/{{.Key.ID}}",
		"verify_path":     "/v1/whoami",
		"key_id_path":     "id",
		"key_secret_path": "key",
	}
	p := newProvider(t, srv.URL+"/api", f)
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "n"})
	var he *httpx.Error
	if !errors.As(err, &he) {
		t.Fatalf("err = %v", err)
	}
	if he.Path != "/api/v1/[redacted]/keys/rid" || strings.Contains(err.Error(), "Zq") {
		t.Fatalf("path = %q, error %q", he.Path, err)
	}
}

// When a secret decides the path's shape (an {{if}} on it), the whole path
// is hidden: its literal text tells something about the secret.
func TestShownPathHiddenWhenSecretDecidesShape(t *testing.T) {
	srv := startRecorder(func(*http.Request, string) (int, string) { return 500, `{"message":"no"}` })
	defer srv.Close()
	f := map[string]string{
		"root_secret":     "abcdefgh-secret",
		"create_path":     `/v1/{{if eq (slice .Root.Secret 0 1) "a"}}alpha{{else}}other{{end}}/keys`,
		"revoke_path":     "/v1/keys/{{.Key.ID}}",
		"verify_path":     "/v1/whoami",
		"key_id_path":     "id",
		"key_secret_path": "key",
	}
	// Validation renders with an empty sample secret, where slice fails;
	// guard it the way an operator would have to.
	f["create_path"] = `/v1/{{if .Root.Secret}}{{if eq (slice .Root.Secret 0 1) "a"}}alpha{{else}}other{{end}}{{end}}/keys`
	p := newProvider(t, srv.URL, f)
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "n"})
	var he *httpx.Error
	if !errors.As(err, &he) || he.Path != httpx.Redacted || strings.Contains(err.Error(), "alpha") {
		t.Fatalf("err = %v", err)
	}
}

// Every *httpx.Error is built by the httpx package, which redacts it; a
// literal anywhere else in the module (tests aside) would bypass that.
func TestNoErrorLiteralOutsideHTTPX(t *testing.T) {
	root := filepath.Join("..", "..")
	files := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		if filepath.Base(filepath.Dir(path)) == "httpx" {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(src, []byte("httpx.Error{")) {
			t.Errorf("%s builds an httpx.Error itself; use Client.StatusError so it is redacted", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 20 {
		t.Fatalf("only %d Go files scanned; is the walk rooted at the module?", files)
	}
}
