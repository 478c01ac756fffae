package backend

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// seedDualRoles writes n dual roles with a current key straight into
// storage (no provider calls), next rotation at next(i).
func seedDualRoles(tb testing.TB, s logical.Storage, n int, provider string, now time.Time, next func(i int) time.Time) {
	tb.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("role-%06d", i)
		r := &roleEntry{Provider: provider, Mode: modeDual, NameTemplate: defaultNameTemplate, TTL: time.Hour,
			Rotation: rotationConfig{Period: 90 * 24 * time.Hour}, Overlap: time.Hour}
		st := &dualState{
			Current:      &dualKey{ID: fmt.Sprintf("seed-%06d", i), Name: name, Secret: "seed", PromotedAt: now.Add(-time.Hour), LeaseCapAt: next(i).Add(time.Hour)},
			NextRotation: next(i), LastRotation: now.Add(-time.Hour),
		}
		if err := putJSON(ctx, s, rolePrefix+name, r); err != nil {
			tb.Fatal(err)
		}
		if err := putJSON(ctx, s, roleKeysPrefix+name, st); err != nil {
			tb.Fatal(err)
		}
	}
}

func benchBackend(tb testing.TB, s logical.Storage, c clock) *backend {
	tb.Helper()
	b := newBackend(c)
	conf := &logical.BackendConfig{Logger: hclog.NewNullLogger(), System: &logical.StaticSystemView{DefaultLeaseTTLVal: time.Hour, MaxLeaseTTLVal: 24 * time.Hour}, StorageView: s}
	if err := b.Setup(context.Background(), conf); err != nil {
		tb.Fatal(err)
	}
	b.setStorage(s)
	return b
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkIdleRoles: a mount with 100,000 dual roles, none due for days.
// ns/op is the start-up time (loading the inventory and the queue from
// storage) and startup-cpu-s the CPU it took; heap-B/role is what the
// loaded backend keeps per role; idle-cpu-ms/s is the process CPU the
// running scheduler uses per second of wall time between due times, next
// to the same for an empty mount (baseline) measured in the same run.
func BenchmarkIdleRoles(b *testing.B) {
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("roles=%d", n), func(b *testing.B) {
			s := &logical.InmemStorage{}
			now := time.Now()
			seedDualRoles(b, s, n, "p", now, func(i int) time.Time { return now.Add(24*time.Hour + time.Duration(i)*time.Second) })
			before := heapInUse()
			var be *backend
			var cpu time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if be != nil {
					be.Clean(context.Background())
				}
				be = benchBackend(b, s, systemClock{})
				cpu0 := cpuTime()
				if err := be.Initialize(context.Background(), &logical.InitializationRequest{Storage: s}); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - cpu0
			}
			b.StopTimer()
			// The start-up's CPU time (process-wide, the collector
			// included): on a shared machine it moves less than ns/op.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "startup-cpu-s")
			if got := be.sched.len(); got != n {
				b.Fatalf("queued %d items, want %d", got, n)
			}
			if n > 0 {
				b.ReportMetric(float64(heapInUse()-before)/float64(n), "heap-B/role")
			}
			// Idle: the scheduler sleeps until the first due time.
			// Let the collector and scavenger finish with the seeding and
			// the load first: FreeOSMemory returns the freed heap to the
			// OS now, which the background scavenger would otherwise do
			// in the window, paced, and on a busy machine for seconds
			// (its madvise calls were all of the window's CPU).
			const window = 2 * time.Second
			debug.FreeOSMemory()
			time.Sleep(time.Second)
			cpu0 := cpuTime()
			time.Sleep(window)
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/window.Seconds(), "idle-cpu-ms/s")
			be.Clean(context.Background())
		})
	}
}

// BenchmarkRotateDueAtOnce: 10,000 dual roles all due now, against the demo
// provider over real HTTP with 50ms latency per request and
// max_concurrency 32. ns/op is the time to rotate them all; floor-s is the
// least time possible at that latency and concurrency (2 requests per
// rotation: create, verify) and efficiency is floor / measured.
// cpu-ms/rotation is the process's CPU time per rotation (the in-process
// demo provider's included): on a shared machine, where a busy neighbour
// stretches every wake-up after the 50 ms, it shows what the engine
// itself costs; http-only-s and vs-http-only compare with the same
// provider calls made without the engine (providerCallsOnly).
func BenchmarkRotateDueAtOnce(b *testing.B) {
	const n, latency, conc = 10_000, 50 * time.Millisecond, 32
	admin := demoserver.NewAdminKey()
	srv := httptest.NewServer(demoserver.New(demoserver.Options{AdminKey: admin, Latency: latency}))
	defer srv.Close()
	var total, cpu, httpOnly time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := &logical.InmemStorage{}
		be := benchBackend(b, s, systemClock{})
		be.verifyAttempts = 1
		e := &providerEntry{Type: "demo", BaseURL: srv.URL, RequestTimeout: 30 * time.Second, MaxConcurrency: conc, Fields: map[string]string{"admin_key": admin}}
		if err := putJSON(context.Background(), s, providerPrefix+"p", e); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		seedDualRoles(b, s, n, "p", now, func(int) time.Time { return now })
		// Completion signal: each job, once run, looks at its own role
		// (not a poll over all 10,000, which would eat the CPU measured).
		var start time.Time
		var rotated atomic.Int64
		allDone := make(chan struct{})
		run := be.sched.run
		be.sched.run = func(ctx context.Context, item string) time.Time {
			next := run(ctx, item)
			if name, ok := strings.CutPrefix(item, "role/"); ok {
				if v, ok := be.inventory.role(name); ok && v.LastRotation.After(start) && rotated.Add(1) == n {
					close(allDone)
				}
			}
			return next
		}
		b.StartTimer()
		cpu0 := cpuTime()
		start = time.Now()
		if err := be.Initialize(context.Background(), &logical.InitializationRequest{Storage: s}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-allDone:
		case <-time.After(10 * time.Minute):
			b.Fatalf("%d of %d roles rotated after 10 minutes", rotated.Load(), n)
		}
		total += time.Since(start)
		cpu += cpuTime() - cpu0
		b.StopTimer()
		httpOnly += providerCallsOnly(b, be, e, n)
		be.Clean(context.Background())
		b.StartTimer()
	}
	floor := time.Duration(n*2) * latency / conc
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(floor.Seconds()/(total.Seconds()/float64(b.N)), "efficiency")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n*b.N), "cpu-ms/rotation")
	b.ReportMetric(httpOnly.Seconds()/float64(b.N), "http-only-s")
	b.ReportMetric(httpOnly.Seconds()/total.Seconds(), "vs-http-only")
}

// providerCallsOnly is the same-run baseline of BenchmarkRotateDueAtOnce
// (not timed by it): the time n creates and n verifies take through the
// provider's own client (same HTTP layer, same max_concurrency), sent by
// as many goroutines as the scheduler has workers, with no storage, WAL or
// scheduler. On a shared machine this is the floor actually reachable at
// the moment; vs-http-only is it over the engine's time.
func providerCallsOnly(b *testing.B, be *backend, e *providerEntry, n int) time.Duration {
	pc, err := be.buildClient("p", e)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range be.sched.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				k, err := pc.api.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("baseline-%06d", i)})
				if err == nil {
					err = pc.api.VerifyKey(ctx, k)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkCredsRead is the plugin's share of a creds read, in process:
// the handler with its storage writes (in-memory here) and, for a dynamic
// role, the create at an in-process demo provider over loopback HTTP.
// make bench measures the whole loop through Vault; this one isolates the
// plugin's CPU and allocations per read, which a profile of make bench
// points at.
func BenchmarkCredsRead(b *testing.B) {
	for _, mode := range []string{"dual", "dynamic"} {
		b.Run(mode, func(b *testing.B) {
			s := &logical.InmemStorage{}
			be := benchBackend(b, s, systemClock{})
			defer be.Cleanup(context.Background())
			admin := demoserver.NewAdminKey()
			srv := httptest.NewServer(demoserver.New(demoserver.Options{AdminKey: admin}))
			defer srv.Close()
			ctx := context.Background()
			do := func(op logical.Operation, path string, data map[string]any) *logical.Response {
				resp, err := be.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: data, Storage: s, DisplayName: "token-bench"})
				if err != nil || resp.IsError() {
					b.Fatalf("%s %s: %v %v", op, path, err, resp)
				}
				return resp
			}
			do(logical.CreateOperation, "providers/p", map[string]any{"type": "demo", "base_url": srv.URL, "admin_key": admin})
			do(logical.CreateOperation, "roles/r", map[string]any{"provider": "p", "mode": mode, "ttl": "1h"})
			do(logical.ReadOperation, "creds/r", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				do(logical.ReadOperation, "creds/r", nil)
			}
		})
	}
}
