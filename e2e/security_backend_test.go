//go:build e2e

package e2e

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Issue 9, item 1: an operator who may update a provider but does not know
// its root credential cannot point it at another host. The write without
// the credential is a 400 naming it, nothing changes, and the listener on
// the new host receives nothing, then or at the next creds read.
func TestBaseURLChangeNeedsTheCredential(t *testing.T) {
	c, d := sharedVlt.client, sharedDemo
	prov, role := setupDynamic(t, c, d, nil)
	pPath := "thirdparty/providers/" + prov

	var hits atomic.Int32
	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer listener.Close()

	before := read(t, c, pPath).Data
	for _, data := range []map[string]any{
		{"base_url": listener.URL},
		{"base_url": listener.URL, "max_concurrency": 4},
		{"allow_insecure_http": true},
	} {
		_, err := c.Logical().Write(pPath, data)
		want400(t, err, "admin_key", "required in the same write")
	}
	if after := read(t, c, pPath).Data; !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused write changed the provider:\nbefore %v\nafter  %v", before, after)
	}
	s := readCreds(t, c, "thirdparty", role)
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the listener on the new host received %d requests", n)
	}

	// With the credential the new destination is verified before it is
	// stored: this one refuses it, so nothing changes.
	_, err := c.Logical().Write(pPath, map[string]any{"base_url": listener.URL, "admin_key": d.AdminKey})
	want400(t, err, "admin_key", "did not accept")
	if after := read(t, c, pPath).Data; !reflect.DeepEqual(before, after) {
		t.Fatalf("a refused destination changed the provider:\nbefore %v\nafter  %v", before, after)
	}
}

// Issue 9, item 4: base_url is https unless the host is loopback or the
// provider sets allow_insecure_http; a URL with user:password@ is refused
// and never shown.
func TestBaseURLTransportRules(t *testing.T) {
	c, d := sharedVlt.client, sharedDemo
	name := uniq("tls")
	pPath := "thirdparty/providers/" + name

	for _, u := range []string{"http://169.254.169.254", "http://demo.example.invalid:8080"} {
		_, err := c.Logical().Write(pPath, map[string]any{"type": "demo", "base_url": u, "admin_key": d.AdminKey})
		want400(t, err, "base_url", "must be https")
	}
	withUser := strings.Replace(d.URL, "http://", "http://vault:pw-e2e-userinfo@", 1)
	_, err := c.Logical().Write(pPath, map[string]any{"type": "demo", "base_url": withUser, "admin_key": d.AdminKey})
	want400(t, err, "base_url", "user name or password")
	if strings.Contains(err.Error(), "pw-e2e-userinfo") {
		t.Fatalf("the error repeats the URL's password: %v", err)
	}
	if s, err := c.Logical().Read(pPath); err != nil || s != nil {
		t.Fatalf("a refused provider exists: %v %v", s, err)
	}

	// Plain http to a host that is not loopback works once allowed.
	ip := nonLoopbackIP(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	target, _ := url.Parse(d.URL)
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: httputil.NewSingleHostReverseProxy(target)}}
	srv.Start()
	defer srv.Close()
	_, err = c.Logical().Write(pPath, map[string]any{"type": "demo", "base_url": srv.URL, "admin_key": d.AdminKey})
	want400(t, err, "base_url", "allow_insecure_http")
	write(t, c, pPath, map[string]any{"type": "demo", "base_url": srv.URL, "admin_key": d.AdminKey, "allow_insecure_http": true})
	if p := read(t, c, pPath).Data; p["allow_insecure_http"] != true || p["base_url"] != srv.URL {
		t.Fatalf("provider read: %v", p)
	}
	role := uniq("tls")
	write(t, c, "thirdparty/roles/"+role, map[string]any{"provider": name, "mode": "dynamic", "ttl": "60s"})
	s := readCreds(t, c, "thirdparty", role)
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	// Turning it off again re-checks the stored URL.
	_, err = c.Logical().Write(pPath, map[string]any{"allow_insecure_http": false})
	want400(t, err, "base_url", "must be https")
}

// Issue 9, item 5: a provider that is stuck: it accepts connections and
// answers nothing useful (reads hang; writes get 503 "retry after 30s",
// which the HTTP layer would honour for minutes). Dynamic creds and
// rotate-role give up within request_timeout, retries included, with an
// error naming the provider; a scheduled rotation's failure shows in status
// (and metrics) within request_timeout + 10s of its due time.
func TestHungProviderShowsInStatus(t *testing.T) {
	c, d := sharedVlt.client, sharedDemo
	hang := newHangProxy(t, d.URL)
	// A mount of its own: unmounting it at the end also drops the WAL
	// entries of the creates that never got an answer.
	mount := uniq("hung")
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hang.hang.Store(false)
		if err := c.Sys().Unmount(mount); err != nil {
			t.Logf("unmount %s: %v", mount, err)
		}
	})
	prov, dyn, dual := uniq("hung"), uniq("hung-dyn"), uniq("hung-dual")
	const timeout = 5 * time.Second
	write(t, c, mount+"/providers/"+prov, map[string]any{"type": "demo", "base_url": hang.URL, "admin_key": d.AdminKey, "request_timeout": "5s"})
	write(t, c, mount+"/roles/"+dyn, map[string]any{"provider": prov, "mode": "dynamic", "ttl": "60s"})
	write(t, c, mount+"/roles/"+dual, map[string]any{"provider": prov, "mode": "dual", "rotation_period": "8s", "overlap": "2s", "ttl": "2s"})
	hang.hang.Store(true)
	hungAt := time.Now()

	for _, tc := range []struct{ path, op string }{{mount + "/creds/" + dyn, "read"}, {mount + "/rotate-role/" + dual, "write"}} {
		start := time.Now()
		var err error
		if tc.op == "read" {
			_, err = c.Logical().Read(tc.path)
		} else {
			_, err = c.Logical().Write(tc.path, map[string]any{})
		}
		took := time.Since(start)
		if err == nil {
			t.Fatalf("%s against a hung provider succeeded", tc.path)
		}
		if took > timeout+3*time.Second {
			t.Errorf("%s took %s with request_timeout %s", tc.path, took, timeout)
		}
		for _, want := range []string{prov, "request_timeout"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s error does not name %q: %v", tc.path, want, err)
			}
		}
	}

	// The scheduled rotation: due at most 8s after the role's last
	// rotation (the manual one above failed and kept the schedule).
	deadline := hungAt.Add(8*time.Second + timeout + 10*time.Second)
	for {
		st, _ := read(t, c, mount+"/status").Data["roles"].(map[string]any)[dual].(map[string]any)
		if e, _ := st["last_error"].(string); e != "" && !strings.HasPrefix(e, "manual rotation") {
			if !strings.Contains(e, "request_timeout") {
				t.Errorf("last_error does not say the provider ran out of request_timeout: %s", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status shows no failed scheduled rotation %s after the provider hung: %v", time.Since(hungAt), st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	resp, err := c.Logical().ReadRaw(mount + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	var m strings.Builder
	if _, err := io.Copy(&m, resp.Body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.String(), `thirdparty_rotation_failing{kind="role",name="`+dual+`"} 1`) {
		t.Errorf("metrics do not show the role failing")
	}
}

// Issue 9, item 6: bad input that used to be a 500, ignored, or accepted
// is a 400 naming the field, and nothing stored changes.
func TestBadInputIs400NotIgnored(t *testing.T) {
	c, d := sharedVlt.client, sharedDemo
	prov, role := setupDynamic(t, c, d, nil)
	dual := uniq("dual")
	write(t, c, "thirdparty/roles/"+dual, map[string]any{"provider": prov, "mode": "dual", "rotation_schedule": "@daily", "overlap": "1h"})
	t.Cleanup(func() { _, _ = c.Logical().Delete("thirdparty/roles/" + dual) })
	pPath, rPath, dPath := "thirdparty/providers/"+prov, "thirdparty/roles/"+role, "thirdparty/roles/"+dual

	cases := []struct {
		name, path string
		data       map[string]any
		want       []string
	}{
		{"provider named a..", "thirdparty/providers/a..", map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey}, []string{"name", `".."`}},
		{"role named a..", "thirdparty/roles/a..", map[string]any{"provider": prov, "mode": "dynamic"}, []string{"name", `".."`}},
		{"role name of 5000 characters", "thirdparty/roles/" + strings.Repeat("n", 5000), map[string]any{"provider": prov, "mode": "dynamic"}, []string{"name", "128"}},
		{"misspelt role field", rPath, map[string]any{"tll": "1h"}, []string{"tll"}},
		{"name_template with a missing key", rPath, map[string]any{"name_template": "{{.Nope}}-{{random 6}}"}, []string{"name_template", "Nope"}},
		{"name_template random 100000000", rPath, map[string]any{"name_template": "{{random 100000000}}"}, []string{"name_template", "random"}},
		{"name_template rendering names too long", rPath, map[string]any{"name_template": "{{.DisplayName}}-{{random 6}}"}, []string{"name_template", "128"}},
		{"cron that never fires", dPath, map[string]any{"rotation_schedule": "0 0 30 2 *"}, []string{"rotation_schedule", "never fires"}},
		{"rotation_window under a minute", dPath, map[string]any{"rotation_window": "30s"}, []string{"rotation_window", "1m"}},
		{"rotation_window over the interval", dPath, map[string]any{"rotation_window": "48h"}, []string{"rotation_window", "interval"}},
		{"request_timeout 2000000h", pPath, map[string]any{"request_timeout": "2000000h"}, []string{"request_timeout", "5m"}},
		{"plain http base_url", pPath, map[string]any{"base_url": "http://169.254.169.254", "admin_key": d.AdminKey}, []string{"base_url", "https"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]map[string]any{}
			for _, p := range []string{pPath, rPath, dPath} {
				before[p] = read(t, c, p).Data
			}
			_, err := c.Logical().Write(tc.path, tc.data)
			want400(t, err, tc.want...)
			for _, p := range []string{pPath, rPath, dPath} {
				if after := read(t, c, p).Data; !reflect.DeepEqual(before[p], after) {
					t.Errorf("%s changed:\nbefore %v\nafter  %v", p, before[p], after)
				}
			}
		})
	}
	// Reads by a bad name are 400s too, not 500s.
	_, err := c.Logical().Read("thirdparty/creds/a..")
	want400(t, err, "role", `".."`)
}

// want400 fails the test unless err is a 400 whose text has every want.
func want400(t *testing.T, err error, want ...string) {
	t.Helper()
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		t.Fatalf("want a 400 naming %q, got %v", want, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("the 400 does not name %q: %v", w, err)
		}
	}
}

// nonLoopbackIP is an IPv4 address of this machine that is not loopback.
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address to listen on")
	return ""
}

// hangProxy passes requests to a target until hang is set; then it holds
// each GET until the client gives up (or the test ends) and answers every
// other request 503 with Retry-After: 30.
type hangProxy struct {
	*httptest.Server
	hang    atomic.Bool
	release chan struct{}
	once    sync.Once
}

func newHangProxy(t *testing.T, target string) *hangProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &hangProxy{release: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.hang.Load() && r.Method != http.MethodGet {
			w.Header().Set("Retry-After", "30")
			http.Error(w, `{"error":{"code":"unavailable","message":"stuck"}}`, http.StatusServiceUnavailable)
			return
		}
		if p.hang.Load() {
			select {
			case <-r.Context().Done():
			case <-p.release:
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		p.once.Do(func() { close(p.release) })
		p.Close()
	})
	return p
}
