package httpx_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// recorder is a server that counts requests and keeps their headers.
type recorder struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
	paths   []string
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.headers = append(rec.headers, r.Header.Clone())
		rec.paths = append(rec.paths, r.URL.Path)
		rec.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.headers)
}

const ddKey, ddAppKey = "dd-api-key-0123456789abcdef", "dd-app-key-fedcba9876543210"

// credentialed is a request carrying Datadog's credential headers, which Go
// would forward to any redirect target (it strips only Authorization and
// Cookie on a change of host).
func credentialed(method, rawURL string) httpx.Request {
	h := http.Header{}
	h.Set("DD-API-KEY", ddKey)
	h.Set("DD-APPLICATION-KEY", ddAppKey)
	h.Set("Authorization", "Bearer "+ddKey)
	var body []byte
	if method == http.MethodPost {
		body = []byte(`{"name":"k"}`)
	}
	return httpx.Request{Op: "create", Method: method, URL: rawURL, Header: h, Body: body}
}

// A redirect to another origin is never followed, whatever the status, the
// method or FollowSameOriginRedirects: the target receives nothing, and the
// error names the provider, the operation and the status, never the
// Location's path or query.
func TestRedirectToAnotherOriginIsNotFollowed(t *testing.T) {
	t.Parallel()
	away := newRecorder(t, nil)
	awayURL, _ := url.Parse(away.URL)
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			for _, follow := range []bool{false, true} {
				var origin *recorder
				origin = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
					targets := map[string]string{
						"/host":   away.URL + "/steal/" + ddKey + "?leak=" + ddAppKey,
						"/port":   "http://127.0.0.1:" + awayURL.Port() + "/steal?leak=" + ddKey,
						"/scheme": "https://" + strings.TrimPrefix(origin.URL, "http://") + "/v1/x?leak=" + ddKey,
					}
					w.Header().Set("Location", targets[r.URL.Path])
					w.WriteHeader(status)
				})
				var observed []int
				c := newClient(t, httpx.Options{FollowSameOriginRedirects: follow, Observe: func(op string, _ time.Duration, s int) {
					observed = append(observed, s)
				}})
				for _, path := range []string{"/host", "/port", "/scheme"} {
					_, err := c.Do(context.Background(), credentialed(method, origin.URL+path))
					var he *httpx.Error
					if !errors.As(err, &he) || he.Status != status || he.Op != "create" || he.Provider != provider {
						t.Fatalf("%d %s %s (follow %v): error %v, want an httpx.Error naming the provider, op and status", status, method, path, follow, err)
					}
					msg := err.Error()
					if !strings.Contains(msg, "not followed") || !strings.Contains(msg, "HTTP ") {
						t.Errorf("%d %s %s: error %q does not say the redirect was refused", status, method, path, msg)
					}
					for _, leak := range []string{ddKey, ddAppKey, "leak", "steal", "/v1/x"} {
						if strings.Contains(msg, leak) {
							t.Errorf("%d %s %s: error %q shows %q", status, method, path, msg, leak)
						}
					}
				}
				if origin.count() != 3 {
					t.Errorf("%d %s: origin got %d requests, want 3 (no retry of a redirect)", status, method, origin.count())
				}
				if len(observed) != 3 || observed[0] != status {
					t.Errorf("%d %s: Observe saw %v, want the 3xx three times", status, method, observed)
				}
			}
		}
	}
	if n := away.count(); n != 0 {
		t.Fatalf("the redirect target received %d requests, with headers %v", n, away.headers)
	}
}

// A same-origin redirect is an error by default (no provider type
// documents one); with FollowSameOriginRedirects it is followed, a few
// times at most.
func TestSameOriginRedirect(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/old":
			w.Header().Set("Location", "/v1/new?x=1")
			w.WriteHeader(http.StatusMovedPermanently)
		case "/v1/loop":
			w.Header().Set("Location", "/v1/loop")
			w.WriteHeader(http.StatusFound)
		case "/v1/new":
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	})

	_, err := newClient(t, httpx.Options{}).Do(context.Background(), credentialed(http.MethodGet, srv.URL+"/v1/old"))
	var he *httpx.Error
	if !errors.As(err, &he) || he.Status != http.StatusMovedPermanently || !strings.Contains(err.Error(), "documents no redirects") {
		t.Fatalf("default: error %v, want one naming 301 and saying no redirect is documented", err)
	}
	if srv.count() != 1 {
		t.Fatalf("default: %d requests (%v), want only the first", srv.count(), srv.paths)
	}

	follow := newClient(t, httpx.Options{FollowSameOriginRedirects: true})
	resp, err := follow.Do(context.Background(), credentialed(http.MethodGet, srv.URL+"/v1/old"))
	if err != nil || resp.Status != http.StatusOK || string(resp.Body) != `{"ok":true}` {
		t.Fatalf("following: resp %+v, err %v", resp, err)
	}
	srv.mu.Lock()
	last := srv.headers[len(srv.headers)-1]
	srv.mu.Unlock()
	if last.Get("DD-API-KEY") != ddKey {
		t.Errorf("the same-origin redirect lost the credential header: %v", last)
	}

	before := srv.count()
	_, err = follow.Do(context.Background(), credentialed(http.MethodGet, srv.URL+"/v1/loop"))
	if !errors.As(err, &he) || he.Status != http.StatusFound || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("loop: error %v, want one naming 302 and the redirect limit", err)
	}
	if n := srv.count() - before; n != 4 {
		t.Errorf("loop: %d requests, want 4 (the first and 3 redirects)", n)
	}
}

// A 3xx without a Location is not a redirect: the caller gets the answer.
func TestThreeHundredWithoutLocationIsAnAnswer(t *testing.T) {
	t.Parallel()
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusMultipleChoices) })
	resp, err := newClient(t, httpx.Options{}).Do(context.Background(), get(srv.URL))
	if err != nil || resp.Status != http.StatusMultipleChoices {
		t.Fatalf("resp %+v, err %v", resp, err)
	}
}
