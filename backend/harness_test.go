package backend

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// fakeClock is the injected clock: time moves only when a test says so.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       chan time.Time
	at      time.Time
	stopped bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool {
	was := !t.stopped
	t.stopped = true
	return was
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d)}
	if d <= 0 {
		t.c <- c.now
		t.stopped = true
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves time and fires the timers that came due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.stopped {
			continue
		}
		if !t.at.After(c.now) {
			t.stopped = true
			t.c <- c.now
			continue
		}
		kept = append(kept, t)
	}
	c.timers = kept
}

// faultyStorage fails writes (or deletes) of keys with a given prefix
// while armed, to stand in for a storage outage or a crash at that step.
type faultyStorage struct {
	logical.Storage
	mu         sync.Mutex
	failPut    map[string]int // prefix -> how many more Puts fail (-1 = all)
	failDelete map[string]int
}

var errInjected = errors.New("injected storage failure")

func (f *faultyStorage) failPuts(prefix string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failPut[prefix] = n
}

func (f *faultyStorage) failDeletes(prefix string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failDelete[prefix] = n
}

func (f *faultyStorage) should(m map[string]int, key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, n := range m {
		if strings.HasPrefix(key, p) && n != 0 {
			if n > 0 {
				m[p] = n - 1
			}
			return true
		}
	}
	return false
}

func (f *faultyStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if f.should(f.failPut, e.Key) {
		return errInjected
	}
	return f.Storage.Put(ctx, e)
}

func (f *faultyStorage) Delete(ctx context.Context, k string) error {
	if f.should(f.failDelete, k) {
		return errInjected
	}
	return f.Storage.Delete(ctx, k)
}

// syncBuffer collects the backend's log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one backend on in-memory storage with the injected clock, talking
// real HTTP to the demo provider (internal/demoserver) on the same clock.
type env struct {
	t        *testing.T
	b        *backend
	clock    *fakeClock
	storage  *faultyStorage
	demo     *demoserver.Server
	srv      *httptest.Server
	adminKey string
	logs     *syncBuffer
	sys      *logical.StaticSystemView

	// rejectVerify makes the provider refuse every whoami (verification).
	rejectVerify atomic.Bool
	// failCreate makes the provider answer creates with 503.
	failCreate atomic.Bool
	// failDelete makes the provider answer deletes with 503.
	failDelete atomic.Bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: newFakeClock(), logs: &syncBuffer{}}
	e.adminKey = demoserver.NewAdminKey()
	e.demo = demoserver.New(demoserver.Options{AdminKey: e.adminKey, Now: e.clock.Now})
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.rejectVerify.Load() && r.URL.Path == "/v1/whoami" && r.Header.Get("Authorization") != "Bearer "+e.adminKey {
			http.Error(w, `{"error":{"code":"unauthorized","message":"no"}}`, http.StatusUnauthorized)
			return
		}
		if (e.failCreate.Load() && r.Method == http.MethodPost) || (e.failDelete.Load() && r.Method == http.MethodDelete) {
			http.Error(w, `{"error":{"code":"unavailable","message":"down"}}`, http.StatusServiceUnavailable)
			return
		}
		e.demo.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)

	e.storage = &faultyStorage{Storage: &logical.InmemStorage{}, failPut: map[string]int{}, failDelete: map[string]int{}}
	e.sys = &logical.StaticSystemView{DefaultLeaseTTLVal: time.Hour, MaxLeaseTTLVal: 24 * time.Hour}
	conf := &logical.BackendConfig{
		Logger:      hclog.New(&hclog.LoggerOptions{Output: e.logs, Level: hclog.Trace}),
		System:      e.sys,
		StorageView: e.storage,
	}
	e.b = newBackend(e.clock)
	if err := e.b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	e.b.storage = e.storage
	e.b.verifyAttempts, e.b.verifyWait = 1, 0
	t.Cleanup(func() { e.b.Clean(context.Background()) })
	return e
}

// do sends one request through the framework, as Vault would.
func (e *env) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	e.t.Helper()
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: op, Path: path, Data: data, Storage: e.storage, DisplayName: "token-test",
	})
}

// must sends a request that must succeed.
func (e *env) must(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil || (resp != nil && resp.IsError()) {
		e.t.Fatalf("%s %s: err=%v resp=%v", op, path, err, resp)
	}
	return resp
}

// userError asserts a 400 whose message names want.
func (e *env) userError(resp *logical.Response, err error, want string) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("want a 400 naming %q, got server error %v", want, err)
	}
	if resp == nil || !resp.IsError() {
		e.t.Fatalf("want a 400 naming %q, got %v", want, resp)
	}
	if msg := resp.Error().Error(); !strings.Contains(msg, want) {
		e.t.Fatalf("error %q does not name %q", msg, want)
	}
}

func (e *env) provider(name string) {
	e.t.Helper()
	e.must(logical.CreateOperation, "providers/"+name, map[string]any{"type": "demo", "base_url": e.srv.URL, "admin_key": e.adminKey})
}

func (e *env) dualRole(name string, extra map[string]any) {
	e.t.Helper()
	data := map[string]any{"provider": "p", "mode": "dual", "rotation_period": "10s", "overlap": "5s", "ttl": "3s"}
	for k, v := range extra {
		data[k] = v
	}
	e.must(logical.CreateOperation, "roles/"+name, data)
}

// keys returns the provider's keys (not admin keys) in a state.
func (e *env) keys(state string) []demoserver.KeyInfo {
	var out []demoserver.KeyInfo
	for _, k := range e.demo.Keys() {
		if k.Kind == demoserver.KindKey && (state == "" || k.State == state) {
			out = append(out, k)
		}
	}
	return out
}

func (e *env) keyState(id string) string {
	for _, k := range e.demo.Keys() {
		if k.ID == id {
			return k.State
		}
	}
	return "unknown"
}

func (e *env) state(role string) *dualState {
	e.t.Helper()
	st, err := getDualState(context.Background(), e.storage, role)
	if err != nil || st == nil {
		e.t.Fatalf("role %s state: %v %v", role, st, err)
	}
	return st
}

// rollback runs WAL rollback on every entry, as Vault's rollback manager
// does once entries are old enough.
func (e *env) rollback() {
	e.t.Helper()
	if _, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]any{"immediate": true},
	}); err != nil {
		e.t.Fatalf("rollback: %v", err)
	}
}

func (e *env) walCount() int {
	e.t.Helper()
	keys, err := e.storage.List(context.Background(), "wal/")
	if err != nil {
		e.t.Fatal(err)
	}
	return len(keys)
}

// settle waits until the scheduler has run everything due at the current
// fake time. It polls scheduler state; no test outcome depends on timing.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !e.b.sched.idle() {
		if time.Now().After(deadline) {
			e.t.Fatal("scheduler did not settle")
		}
		time.Sleep(time.Millisecond)
	}
}
