package httpx

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"text/template"
)

// Redacted replaces a secret in error text.
const Redacted = "[redacted]"

// minSecretLen is the shortest value removed from free text: shorter ones
// would take ordinary words with them. A caller that renders shorter values
// derived from a secret into a path replaces them itself (Request.ShownPath).
const minSecretLen = 4

// redactor removes a set of secrets, in every form listed by encodings,
// from text. It is the one redaction point of the HTTP layer: every Error
// gets its path and message from it (newError), and Redact uses it for
// text the callers build before a request exists.
type redactor struct {
	// forms are the values to remove, longest first, so that a form which
	// contains another is removed whole.
	forms []string
}

// newRedactor covers everything in r that may be secret: the values of
// credential headers and query parameters, the body, and r.Secrets.
func newRedactor(r Request) *redactor {
	return newRedactorOf(append(requestSecrets(r), r.Secrets...))
}

func newRedactorOf(secrets []string) *redactor {
	seen := map[string]bool{}
	var forms []string
	for _, s := range secrets {
		for _, f := range encodings(s) {
			if len(f) >= minSecretLen && !seen[f] {
				seen[f] = true
				forms = append(forms, f)
			}
		}
	}
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return &redactor{forms: forms}
}

// encodings lists s and the forms it takes when a request or a provider's
// echo of it encodes it: URL path and query escaping, JSON string content
// (with and without HTML escaping), HTML and JavaScript escaping (the
// template functions html and js), base64 (all four alphabets) and hex.
func encodings(s string) []string {
	if len(s) < minSecretLen {
		return nil
	}
	out := []string{
		s,
		url.QueryEscape(s),
		url.PathEscape(s),
		strings.ReplaceAll(url.QueryEscape(s), "+", "%20"),
		template.HTMLEscapeString(s),
		template.JSEscapeString(s),
		base64.StdEncoding.EncodeToString([]byte(s)),
		base64.RawStdEncoding.EncodeToString([]byte(s)),
		base64.URLEncoding.EncodeToString([]byte(s)),
		base64.RawURLEncoding.EncodeToString([]byte(s)),
		hex.EncodeToString([]byte(s)),
		strings.ToUpper(hex.EncodeToString([]byte(s))),
	}
	for _, escapeHTML := range []bool{false, true} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(escapeHTML)
		if enc.Encode(s) == nil {
			q := strings.TrimSpace(buf.String())
			out = append(out, q[1:len(q)-1])
		}
	}
	return out
}

// text returns s with every secret form replaced by Redacted. Replacing one
// form can join text into another (a secret split by a shorter one), so it
// repeats until nothing changes.
func (rd *redactor) text(s string) string {
	for range 4 {
		before := s
		for _, f := range rd.forms {
			s = strings.ReplaceAll(s, f, Redacted)
		}
		if s == before {
			return s
		}
	}
	return s
}

// path is the request path as an error shows it: r.ShownPath or the URL's
// path (never its query or fragment), redacted.
func (rd *redactor) path(r Request) string {
	p := r.ShownPath
	if p == "" {
		u, err := url.Parse(r.URL)
		if err != nil {
			return "(bad url)"
		}
		p = u.EscapedPath()
	}
	p, _, _ = strings.Cut(p, "?")
	p, _, _ = strings.Cut(p, "#")
	return rd.text(p)
}

// Redact returns s with every secret removed, in the same forms as the
// errors of a request carrying those secrets; for text a caller builds
// before it has a request (a template that failed to render).
func Redact(s string, secrets ...string) string {
	return newRedactorOf(secrets).text(s)
}
