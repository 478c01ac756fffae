package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// ctxStorage refuses every call whose context has ended, as Vault's
// storage does over the plugin's gRPC connection (InmemStorage does not
// look at the context).
type ctxStorage struct{ logical.Storage }

func (s ctxStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Storage.List(ctx, prefix)
}

func (s ctxStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Storage.Get(ctx, key)
}

func (s ctxStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Storage.Put(ctx, e)
}

func (s ctxStorage) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Storage.Delete(ctx, key)
}

// hungEnv is an env with a dual role "r" and a dynamic role "dyn" on an
// in-memory provider "m" (request_timeout 1s, or timeout) that can hang,
// over storage that honours contexts.
func hungEnv(t *testing.T, timeout string) (*env, *memServer) {
	t.Helper()
	e := newEnv(t)
	e.storage.Storage = ctxStorage{e.storage.Storage}
	ms := newMemServer(t)
	e.must(logical.CreateOperation, "providers/m", map[string]any{"type": rollType, "base_url": ms.url, "root_token": ms.root,
		"request_timeout": timeout, "rotation_period": "1h"})
	e.must(logical.CreateOperation, "roles/r", map[string]any{"provider": "m", "mode": "dual", "rotation_period": "10s", "overlap": "5s"})
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "m", "mode": "dynamic"})
	return e, ms
}

// doWithin sends a request with a context that ends after limit (so a
// regression fails instead of hanging) and returns how long it took.
func (e *env) doWithin(limit time.Duration, op logical.Operation, path string) (*logical.Response, error, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	resp, err := e.b.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Storage: e.storage, DisplayName: "token-test"})
	return resp, err, time.Since(start)
}

// A hung provider: creds (dynamic), rotate-role and rotate-root give up within the
// provider's request_timeout, however long the request may run, with an
// error naming the provider and the timeout; the manual rotation's failure
// is stored for status.
func TestHungProviderGivesUpWithinRequestTimeout(t *testing.T) {
	t.Parallel()
	e, ms := hungEnv(t, "1s")
	ms.hang.Store(true)

	for _, tc := range []struct {
		op   logical.Operation
		path string
	}{{logical.ReadOperation, "creds/dyn"}, {logical.UpdateOperation, "rotate-role/r"}, {logical.UpdateOperation, "rotate-root/m"}} {
		resp, err, took := e.doWithin(20*time.Second, tc.op, tc.path)
		if took > 5*time.Second {
			t.Errorf("%s took %s with request_timeout 1s", tc.path, took)
		}
		if err == nil {
			t.Fatalf("%s against a hung provider: no error (%v)", tc.path, resp)
		}
		for _, want := range []string{`provider "m"`, "request_timeout (1s)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s error %q does not name %s", tc.path, err, want)
			}
		}
	}
	if st := e.state("r"); !strings.Contains(st.LastError, "request_timeout") {
		t.Fatalf("the failed rotate-role is not in last_error: %q", st.LastError)
	}
	if p := e.storedProvider("m"); !strings.Contains(p.LastRootRotationError, "request_timeout") {
		t.Fatalf("the failed rotate-root is not in last_root_rotation_error: %q", p.LastRootRotationError)
	}
}

// A scheduled rotation against a hung provider ends by request_timeout,
// not by the job's own 90s, and its failure shows in status and metrics.
func TestHungProviderRotationFailsWithinRequestTimeout(t *testing.T) {
	t.Parallel()
	e, ms := hungEnv(t, "1s")
	e.b.sched.start()
	ms.hang.Store(true)
	start := time.Now()
	e.clock.Advance(10 * time.Second)
	e.settle()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the rotation job took %s with request_timeout 1s", took)
	}
	if st := e.state("r"); !strings.Contains(st.LastError, "request_timeout (1s)") {
		t.Fatalf("last_error %q does not say the provider ran out of request_timeout", st.LastError)
	}
	if v := e.metricValue(`thirdparty_rotation_failing{kind="role",name="r"}`); v != 1 {
		t.Fatalf("thirdparty_rotation_failing = %v, want 1", v)
	}
}

// When the job's own deadline is what runs out, the failure is still
// stored (with a fresh context): status and metrics show a stuck rotation,
// of a role and of a root, instead of nothing.
func TestRotationJobTimeoutStillStoresTheFailure(t *testing.T) {
	t.Parallel()
	e, ms := hungEnv(t, "300") // 5m: the job's deadline comes first
	e.b.sched.jobTimeout = 300 * time.Millisecond
	e.b.sched.start()
	ms.hang.Store(true)
	e.clock.Advance(time.Hour)
	e.settle()

	if st := e.state("r"); st.LastError == "" {
		t.Fatal("the role's failed rotation was not stored")
	}
	if p := e.storedProvider("m"); p.LastRootRotationError == "" {
		t.Fatal("the provider's failed root rotation was not stored")
	}
	for _, sample := range []string{`thirdparty_rotation_failing{kind="role",name="r"}`, `thirdparty_rotation_failing{kind="root",name="m"}`} {
		if v := e.metricValue(sample); v != 1 {
			t.Errorf("%s = %v, want 1", sample, v)
		}
	}
	status := e.must(logical.ReadOperation, "status", nil).Data
	if r := status["roles"].(map[string]any)["r"].(map[string]any); r["last_error"] == "" {
		t.Errorf("status does not show the role's failure: %v", r)
	}
}
