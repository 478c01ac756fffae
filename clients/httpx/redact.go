package httpx

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
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
	secrets, carriers := requestSecrets(r)
	return newRedactorOf(append(secrets, r.Secrets...), append(carriers, r.Carriers...))
}

func newRedactorOf(secrets, carriers []string) *redactor {
	seen := map[string]bool{}
	var forms []string
	for i, secret := range append(slices.Clip(secrets), carriers...) {
		cut := i < len(secrets)
		for _, s := range decodings(secret) {
			for _, e := range encodings(s) {
				ps := pieces(e)
				if !cut || e == template.HTMLEscapeString(s) {
					// A carrier is removed whole; the delimiters of the
					// HTML form ("&#34;") are its own, not the value's.
					ps = ps[:1]
				}
				for _, f := range ps {
					if len(f) >= minSecretLen && !seen[f] {
						seen[f] = true
						forms = append(forms, f)
					}
				}
			}
		}
	}
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return &redactor{forms: forms}
}

// decodings lists s and what an API that decodes it shows: a value that
// went out URL-escaped or as a JSON (or Go-quoted) string comes back as the
// text it encodes.
func decodings(s string) []string {
	out := []string{s}
	if d, err := url.QueryUnescape(s); err == nil && d != s {
		out = append(out, d)
	}
	if d, err := url.PathUnescape(s); err == nil && d != s {
		out = append(out, d)
	}
	if strings.HasPrefix(s, `"`) {
		var d string
		if json.Unmarshal([]byte(s), &d) == nil {
			out = append(out, d)
		}
		if d, err := strconv.Unquote(s); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// pieces lists s and, when it holds a delimiter of a query, form or URL,
// the parts a parser splits it into (a form decoder echoing "keys" of a
// JSON body shows a secret cut at its "&"), each also with "+" read as a
// space.
func pieces(s string) []string {
	out := []string{s}
	if !strings.ContainsAny(s, pieceDelimiters) {
		return out
	}
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(pieceDelimiters, r) }) {
		out = append(out, p, strings.ReplaceAll(p, "+", " "))
	}
	return out
}

const pieceDelimiters = "&;=?#,"

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
		// Error text is trimmed, and so are header values.
		strings.TrimSpace(s),
		url.QueryEscape(s),
		url.PathEscape(s),
		strings.ReplaceAll(url.QueryEscape(s), "+", "%20"),
		// A form or query decoder reads "+" as a space; a path keeps it.
		strings.ReplaceAll(s, "+", " "),
		strings.ReplaceAll(s, " ", "+"),
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
	return newRedactorOf(secrets, nil).text(s)
}
