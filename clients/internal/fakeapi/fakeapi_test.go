package fakeapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestFailCountsDown(t *testing.T) {
	var r Recorder[string]
	if got := r.Fail(httptest.NewRecorder()); got != 0 {
		t.Fatalf("Fail with nothing injected = %d", got)
	}
	r.FailNext(2, http.StatusTooManyRequests)
	for i := 0; i < 2; i++ {
		w := httptest.NewRecorder()
		if got := r.Fail(w); got != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("failure %d: status %d, Retry-After %q", i, got, w.Header().Get("Retry-After"))
		}
	}
	if got := r.Fail(httptest.NewRecorder()); got != 0 {
		t.Fatalf("a third failure (%d) after FailNext(2, …)", got)
	}
	r.FailNext(1, http.StatusServiceUnavailable)
	w := httptest.NewRecorder()
	if got := r.Fail(w); got != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "" {
		t.Fatalf("503: status %d, Retry-After %q", got, w.Header().Get("Retry-After"))
	}
}

func TestRequestsAreACopy(t *testing.T) {
	var r Recorder[string]
	r.Record("a")
	r.Record("b")
	got := r.Requests()
	got[0] = "changed"
	if all := r.Requests(); len(all) != 2 || all[0] != "a" || r.Len() != 2 {
		t.Fatalf("log %v after a caller changed its copy", all)
	}
	r.ResetRequests()
	if r.Len() != 0 || r.Requests() != nil {
		t.Fatal("ResetRequests kept requests")
	}
}

func TestDecodeBody(t *testing.T) {
	for body, want := range map[string]struct {
		ok   bool
		keys int
	}{
		"":                                      {true, 0},
		`{"n": 12345678901234567890, "s": "x"}`: {true, 2},
		"[1,2]":                                 {false, 0},
		"{not json":                             {false, 0},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		got, ok := DecodeBody(r)
		if ok != want.ok || len(got) != want.keys {
			t.Errorf("DecodeBody(%q) = %v, %v", body, got, ok)
		}
		if n, isNumber := got["n"].(interface{ String() string }); body != "" && want.keys > 0 && (!isNumber || n.String() != "12345678901234567890") {
			t.Errorf("DecodeBody(%q): number %#v not kept exactly", body, got["n"])
		}
	}
}

func TestWriteJSON(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusCreated, map[string]string{"id": "k1"})
	if w.Code != http.StatusCreated || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != "{\"id\":\"k1\"}\n" {
		t.Fatalf("%d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
	w = httptest.NewRecorder()
	WriteJSON(w, http.StatusNoContent, nil)
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Fatalf("nil body: %d %q", w.Code, w.Body.String())
	}
}

func TestHex(t *testing.T) {
	if h := Hex(16); len(h) != 32 || strings.Trim(h, "0123456789abcdef") != "" || h == Hex(16) {
		t.Fatalf("Hex(16) = %q", h)
	}
}

func TestReadJSON(t *testing.T) {
	for in, keys := range map[string]int{"": 0, `{"a":1,"b":"x"}`: 2, "[1,2]": 0, "{not json": 0} {
		raw, body := ReadJSON(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(in)))
		if string(raw) != in || len(body) != keys || (keys == 0 && body != nil) {
			t.Errorf("ReadJSON(%q) = %q, %v", in, raw, body)
		}
	}
	if _, body := ReadJSON(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"n":1}`))); body["n"] != float64(1) {
		t.Errorf("number decoded as %T, want float64 as before", body["n"])
	}
}

func TestReadRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("grant_type=client_credentials&client_secret=s3cret"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	raw, body, form := ReadRequest(r)
	if body != nil || form.Get("grant_type") != "client_credentials" || len(raw) == 0 {
		t.Fatalf("form request: body %v form %v", body, form)
	}
	if f := FormFields(form, "client_secret"); len(f) != 1 || f["grant_type"] != "client_credentials" {
		t.Fatalf("FormFields = %v", f)
	}
	_, body, form = ReadRequest(httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"a":1}`)))
	if body["a"] != float64(1) || form != nil {
		t.Fatalf("JSON request: body %v form %v", body, form)
	}
}
