package httpx_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// Redact removes a secret in the forms it travels in and the forms an API
// that decodes or re-encodes it echoes.
func TestRedactForms(t *testing.T) {
	t.Parallel()
	secret := `s3cr+t/&"é<x>=y`
	forms := []string{
		secret, url.QueryEscape(secret), url.PathEscape(secret), strings.ReplaceAll(secret, "+", " "),
		`s3cr+t/\u0026\"é\u003cx\u003e=y`, `s3cr+t/&\"é<x>=y`,
		base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawURLEncoding.EncodeToString([]byte(secret)),
		hex.EncodeToString([]byte(secret)),
		`s3cr+t/&amp;&#34;é&lt;x&gt;=y`,
		"s3cr+t/", // cut at "&" by a form parser
	}
	for _, f := range forms {
		if got := httpx.Redact("before "+f+" after", secret); got != "before [redacted] after" {
			t.Errorf("Redact(%q) = %q", f, got)
		}
	}
	// A value that went out escaped is also removed decoded.
	if got := httpx.Redact("echo: a b/c", url.QueryEscape("a b/c")); got != "echo: [redacted]" {
		t.Errorf("decoded echo: %q", got)
	}
	// Shorter than 4 bytes: left, it would take ordinary words with it.
	if got := httpx.Redact("abc key", "abc"); got != "abc key" {
		t.Errorf("short value: %q", got)
	}
}

// Request.Secrets are removed from the path an error shows, from a
// transport error and from the provider's message; Carriers are removed
// whole but not cut; ShownPath replaces the path.
func TestErrorsUseTheRequestsRedactor(t *testing.T) {
	t.Parallel()
	secret := "tok&en-7f3a9c"
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	c := newClient(t, httpx.Options{MaxRetries: -1})
	r := httpx.Request{Op: "create", Method: http.MethodGet, URL: srv.URL + "/v1/" + url.PathEscape(secret) + "/keys?q=" + url.QueryEscape(secret),
		Secrets: []string{secret}, Carriers: []string{"scopes=mail.send&name=x"}}
	resp, err := c.Do(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	msg := c.StatusError(r, resp, "bad "+secret+" in /v1/"+secret+"/keys; tok; scopes=mail.send&name=x; scopes ok").Error()
	if strings.Contains(msg, "7f3a9c") || strings.Contains(msg, "q=") || !strings.Contains(msg, "GET /v1/[redacted]/keys") ||
		!strings.Contains(msg, "[redacted]; scopes ok") {
		t.Fatalf("status error %q", msg)
	}

	r.URL = closedURL(t) + "/v1/" + url.PathEscape(secret)
	_, err = c.Do(context.Background(), r)
	if err == nil || strings.Contains(err.Error(), "7f3a9c") || !strings.Contains(err.Error(), "/v1/[redacted]") {
		t.Fatalf("transport error %v", err)
	}

	r.ShownPath = "/v1/[redacted]/shown"
	_, err = c.Do(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "(GET /v1/[redacted]/shown)") {
		t.Fatalf("ShownPath: %v", err)
	}
}

// closedURL is the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}
