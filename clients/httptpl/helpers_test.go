package httptpl

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// startRecorder serves every request with h.
func startRecorder(h func(r *http.Request, body string) (int, string)) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		status, body := h(r, string(b))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
}

// docsExample reads the `vault write thirdparty/providers/<name> …` command
// from docs/providers/http.md and returns its key=value arguments.
func docsExample(t *testing.T, name string) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/providers/http.md")
	if err != nil {
		t.Fatalf("reading the docs: %v", err)
	}
	prefix := "vault write thirdparty/providers/" + name + " "
	var cmd strings.Builder
	in := false
	for _, line := range strings.Split(string(doc), "\n") {
		if !in && strings.HasPrefix(line, prefix) {
			in = true
		}
		if !in {
			continue
		}
		trimmed := strings.TrimRight(line, " ")
		if strings.HasSuffix(trimmed, "\\") {
			cmd.WriteString(strings.TrimSuffix(trimmed, "\\"))
			cmd.WriteString(" ")
			continue
		}
		cmd.WriteString(line)
		break
	}
	if cmd.Len() == 0 {
		t.Fatalf("no %q command in the docs", prefix)
	}
	args := shellWords(t, cmd.String())
	out := map[string]string{}
	for _, a := range args[3:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			t.Fatalf("argument %q is not key=value", a)
		}
		out[k] = v
	}
	return out
}

// shellWords splits a command line the way sh does for the quoting the docs
// use: single quotes, double quotes (with \" and \\), and $'…' with \n.
func shellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	have := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		case c == '$' && i+1 < len(s) && s[i+1] == '\'':
			have = true
			i += 2
			for ; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					switch s[i] {
					case 'n':
						cur.WriteByte('\n')
					default:
						cur.WriteByte(s[i])
					}
					continue
				}
				cur.WriteByte(s[i])
			}
		case c == '\'':
			have = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			have = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\' || s[i+1] == '$') {
					i++
				}
				cur.WriteByte(s[i])
			}
		default:
			have = true
			cur.WriteByte(c)
		}
	}
	if have {
		words = append(words, cur.String())
	}
	return words
}
