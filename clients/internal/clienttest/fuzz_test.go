package clienttest

import (
	"net/http"
	"testing"
)

func TestParseScript(t *testing.T) {
	got := ParseScript("429\nRetry-After: 1\nContent-Length: 99\nbad header\nX Y: z\n\n{\"a\":1}" + ScriptSeparator +
		"oops\nLocation: https://elsewhere.example/\n\n" + ScriptSeparator +
		"1307\nLocation: /next\n\nbody\n\nwith blank line" + ScriptSeparator + "-1")
	if len(got) != 4 {
		t.Fatalf("%d responses, want 4", len(got))
	}
	if r := got[0]; r.Status != 429 || r.Body != `{"a":1}` || len(r.Header) != 1 || r.Header.Get("Retry-After") != "1" {
		t.Errorf("first = %+v", r)
	}
	if r := got[1]; r.Status != http.StatusOK || len(r.Header) != 0 || r.Body != "" {
		t.Errorf("second (no number, Location leaving the server) = %+v", r)
	}
	if r := got[2]; r.Status != 307 || r.Header.Get("Location") != "/next" || r.Body != "body\n\nwith blank line" {
		t.Errorf("third = %+v", r)
	}
	if r := got[3]; r.Status < 200 || r.Status > 599 {
		t.Errorf("fourth status %d outside 200–599", r.Status)
	}
}
