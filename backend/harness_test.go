package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/framework"
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
	clock   *fakeClock
	c       chan time.Time
	at      time.Time
	stopped bool // guarded by clock.mu: Advance reads it
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
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

func (c *fakeClock) TimerAt(at time.Time) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, c: make(chan time.Time, 1), at: at}
	if !at.After(c.now) {
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

// errRelativePath is what Vault's barrier answers for a key with "..".
var errRelativePath = errors.New("relative paths not supported")

// Like Vault's barrier (and unlike InmemStorage), faultyStorage refuses
// keys that contain "..".
func (f *faultyStorage) Get(ctx context.Context, k string) (*logical.StorageEntry, error) {
	if strings.Contains(k, "..") {
		return nil, errRelativePath
	}
	return f.Storage.Get(ctx, k)
}

func (f *faultyStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if strings.Contains(e.Key, "..") {
		return errRelativePath
	}
	if f.should(f.failPut, e.Key) {
		return errInjected
	}
	return f.Storage.Put(ctx, e)
}

func (f *faultyStorage) Delete(ctx context.Context, k string) error {
	if strings.Contains(k, "..") {
		return errRelativePath
	}
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
	// rejectNewRoot makes the provider refuse whoami for every admin key
	// other than the original one: a new root that fails verification.
	rejectNewRoot atomic.Bool
	// echoAuth makes the provider answer every API call with a 500 whose
	// message quotes the request's Authorization header, as careless APIs
	// do, to prove that provider error text is redacted.
	echoAuth atomic.Bool
	// intercept, when set, sees each provider request before anything
	// else and answers it itself by returning true.
	intercept atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]

	// issued holds every secret value the provider ever handed out.
	issuedMu sync.Mutex
	issued   []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: newFakeClock(), logs: &syncBuffer{}}
	e.adminKey = demoserver.NewAdminKey()
	e.demo = demoserver.New(demoserver.Options{AdminKey: e.adminKey, Now: e.clock.Now})
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := e.intercept.Load(); f != nil && (*f)(w, r) {
			return
		}
		if auth := r.Header.Get("Authorization"); e.rejectNewRoot.Load() && r.URL.Path == "/v1/whoami" &&
			strings.HasPrefix(auth, "Bearer demoadm_") && auth != "Bearer "+e.adminKey {
			http.Error(w, `{"error":{"code":"unauthorized","message":"no"}}`, http.StatusUnauthorized)
			return
		}
		if e.echoAuth.Load() && strings.HasPrefix(r.URL.Path, "/v1/") {
			echoAuthorization(w, r)
			return
		}
		if e.rejectVerify.Load() && r.URL.Path == "/v1/whoami" && r.Header.Get("Authorization") != "Bearer "+e.adminKey {
			http.Error(w, `{"error":{"code":"unauthorized","message":"no"}}`, http.StatusUnauthorized)
			return
		}
		if (e.failCreate.Load() && r.Method == http.MethodPost) || (e.failDelete.Load() && r.Method == http.MethodDelete) {
			http.Error(w, `{"error":{"code":"unavailable","message":"down"}}`, http.StatusServiceUnavailable)
			return
		}
		cw := &captureWriter{ResponseWriter: w}
		e.demo.ServeHTTP(cw, r)
		e.noteIssued(cw.body.Bytes())
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
	e.b.setStorage(e.storage)
	e.b.verifyAttempts, e.b.verifyWait = 1, 0
	t.Cleanup(func() { e.b.Clean(context.Background()) })
	return e
}

// restart stops the backend and starts a new one on the same storage, as
// a reload or a new active node does.
func (e *env) restart() {
	e.t.Helper()
	ctx := context.Background()
	e.b.Clean(ctx)
	b := newBackend(e.clock)
	if err := b.Setup(ctx, &logical.BackendConfig{Logger: e.b.Logger(), System: e.sys, StorageView: e.storage}); err != nil {
		e.t.Fatal(err)
	}
	b.verifyAttempts, b.verifyWait = 1, 0
	if err := b.Initialize(ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { b.Clean(context.Background()) })
	e.b = b
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

// wantNoWAL fails the test if any WAL entry is left; what ends the message.
func (e *env) wantNoWAL(what string) {
	e.t.Helper()
	if n := e.walCount(); n != 0 {
		e.t.Fatalf("%d WAL entries left%s", n, what)
	}
}

// wantRevoked fails the test unless key id is revoked at the provider;
// msg formats the key's state (one %s).
func (e *env) wantRevoked(id, msg string) {
	e.t.Helper()
	if st := e.keyState(id); st != demoserver.StateRevoked {
		e.t.Fatalf(msg, st)
	}
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

// echoAuthorization answers a 500 whose error message quotes the request's
// Authorization header.
func echoAuthorization(w http.ResponseWriter, r *http.Request) {
	msg, _ := json.Marshal("credential rejected: " + r.Header.Get("Authorization"))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `{"error":{"code":"internal","message":%s}}`, msg)
}

// setIntercept installs (or, with nil, removes) env.intercept.
func (e *env) setIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	if f == nil {
		e.intercept.Store(nil)
		return
	}
	e.intercept.Store(&f)
}

// captureWriter keeps a copy of the response body.
type captureWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (c *captureWriter) Write(p []byte) (int, error) {
	c.body.Write(p)
	return c.ResponseWriter.Write(p)
}

// noteIssued records the secret values (key, admin_key) in a provider
// response body.
func (e *env) noteIssued(body []byte) {
	var v map[string]any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	e.issuedMu.Lock()
	defer e.issuedMu.Unlock()
	for _, f := range []string{"key", "admin_key"} {
		if s, ok := v[f].(string); ok && s != "" {
			e.issued = append(e.issued, s)
		}
	}
}

// issuedSecrets returns every secret the provider handed out, plus the
// original admin key.
func (e *env) issuedSecrets() []string {
	e.issuedMu.Lock()
	defer e.issuedMu.Unlock()
	return append([]string{e.adminKey}, e.issued...)
}

// hookStorage runs a test's function before each Put and Delete; an error
// from it fails the operation. It sits under faultyStorage.
type hookStorage struct {
	logical.Storage
	mu       sync.Mutex
	onPut    func(key string) error
	onDelete func(key string) error
}

func (h *hookStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	h.mu.Lock()
	f := h.onPut
	h.mu.Unlock()
	if f != nil {
		if err := f(e.Key); err != nil {
			return err
		}
	}
	return h.Storage.Put(ctx, e)
}

func (h *hookStorage) Delete(ctx context.Context, k string) error {
	h.mu.Lock()
	f := h.onDelete
	h.mu.Unlock()
	if f != nil {
		if err := f(k); err != nil {
			return err
		}
	}
	return h.Storage.Delete(ctx, k)
}

// hooks installs the hookStorage on first use; do that (call it) before
// starting the scheduler, which reads the storage from other goroutines.
func (e *env) hooks() *hookStorage {
	if h, ok := e.storage.Storage.(*hookStorage); ok {
		return h
	}
	h := &hookStorage{Storage: e.storage.Storage}
	e.storage.Storage = h
	return h
}

// nthFails returns a hook that lets the first skip operations on keys with
// prefix through and fails the next n (-1: all that follow).
func nthFails(prefix string, skip, n int) func(string) error {
	var mu sync.Mutex
	return func(key string) error {
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if skip > 0 {
			skip--
			return nil
		}
		if n == 0 {
			return nil
		}
		if n > 0 {
			n--
		}
		return errInjected
	}
}

// failPutsAfter lets skip Puts under prefix succeed, then fails n.
func (e *env) failPutsAfter(prefix string, skip, n int) {
	h := e.hooks()
	h.mu.Lock()
	h.onPut = nthFails(prefix, skip, n)
	h.mu.Unlock()
}

// failDeletesAfter lets skip Deletes under prefix succeed, then fails n.
func (e *env) failDeletesAfter(prefix string, skip, n int) {
	h := e.hooks()
	h.mu.Lock()
	h.onDelete = nthFails(prefix, skip, n)
	h.mu.Unlock()
}

// rollbackResp runs WAL rollback like env.rollback and returns the
// response, which carries the entries that could not be rolled back.
func (e *env) rollbackResp() *logical.Response {
	e.t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RollbackOperation, Storage: e.storage, Data: map[string]any{"immediate": true},
	})
	if err != nil {
		e.t.Fatalf("rollback: %v", err)
	}
	return resp
}

// walEntries returns the data of every WAL entry.
func (e *env) walEntries() []map[string]any {
	e.t.Helper()
	ids, err := framework.ListWAL(context.Background(), e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []map[string]any
	for _, id := range ids {
		w, err := framework.GetWAL(context.Background(), e.storage, id)
		if err != nil || w == nil {
			e.t.Fatalf("WAL %s: %v", id, err)
		}
		m, _ := w.Data.(map[string]any)
		out = append(out, m)
	}
	return out
}

// storedProvider reads a provider's entry, secrets included.
func (e *env) storedProvider(name string) *providerEntry {
	e.t.Helper()
	p, err := getProvider(context.Background(), e.storage, name)
	if err != nil || p == nil {
		e.t.Fatalf("provider %s: %v %v", name, p, err)
	}
	return p
}

// whoami calls the provider's whoami with a key, as any client of the
// provider would, and returns the HTTP status.
func (e *env) whoami(key string) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// adminKeys returns the provider's admin keys in a state ("" for all).
func (e *env) adminKeys(state string) []demoserver.KeyInfo {
	var out []demoserver.KeyInfo
	for _, k := range e.demo.Keys() {
		if k.Kind == demoserver.KindAdmin && (state == "" || k.State == state) {
			out = append(out, k)
		}
	}
	return out
}

// metricValue returns the value of one sample of the metrics body (0 when
// absent).
func (e *env) metricValue(sample string) float64 {
	e.t.Helper()
	body := string(e.must(logical.ReadOperation, "metrics", nil).Data[logical.HTTPRawBody].([]byte))
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				e.t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return 0
}
