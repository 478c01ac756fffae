package backend

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// max_requests_per_second is stored, read back with the rate in force, and
// sizes the budget every client of the provider shares; a change reaches
// the budget without a restart.
func TestProviderMaxRequestsPerSecond(t *testing.T) {
	e := newEnv(t)
	e.must(logical.CreateOperation, "providers/p", map[string]any{"type": "demo", "base_url": e.srv.URL,
		"admin_key": e.adminKey, "max_requests_per_second": 2.5})
	read := e.must(logical.ReadOperation, "providers/p", nil).Data
	if read["max_requests_per_second"] != 2.5 || read["effective_max_requests_per_second"] != 2.5 {
		t.Errorf("read: max_requests_per_second=%v effective=%v, want 2.5", read["max_requests_per_second"], read["effective_max_requests_per_second"])
	}
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "p", "mode": "dynamic"})
	e.must(logical.ReadOperation, "creds/dyn", nil)
	budget := func() *httpx.Budget {
		v, ok := e.b.budgets.Load("p")
		if !ok {
			t.Fatal("no budget for p")
		}
		return v.(*httpx.Budget)
	}
	if r := budget().Rate(); r != 2.5 {
		t.Errorf("budget rate %v, want 2.5", r)
	}
	first := budget()
	e.must(logical.UpdateOperation, "providers/p", map[string]any{"max_requests_per_second": 50})
	e.must(logical.ReadOperation, "creds/dyn", nil)
	if budget() != first {
		t.Error("a provider update replaced the budget: callers still holding the old client would draw on another bucket")
	}
	if r := budget().Rate(); r != 50 {
		t.Errorf("budget rate after the update %v, want 50", r)
	}
	e.must(logical.UpdateOperation, "providers/p", map[string]any{"max_requests_per_second": 0})
	read = e.must(logical.ReadOperation, "providers/p", nil).Data
	if read["max_requests_per_second"] != 0.0 || read["effective_max_requests_per_second"] != 0.0 {
		t.Errorf("after 0: max_requests_per_second=%v effective=%v, want 0 (demo publishes no limit)", read["max_requests_per_second"], read["effective_max_requests_per_second"])
	}
}

// A bad max_requests_per_second changes nothing stored.
func TestProviderMaxRequestsPerSecondBadInputStoresNothing(t *testing.T) {
	e := newEnv(t)
	e.must(logical.CreateOperation, "providers/p", map[string]any{"type": "demo", "base_url": e.srv.URL,
		"admin_key": e.adminKey, "max_requests_per_second": 3})
	resp, err := e.do(logical.UpdateOperation, "providers/p", map[string]any{"max_requests_per_second": -2, "max_concurrency": 4})
	e.userError(resp, err, "max_requests_per_second")
	read := e.must(logical.ReadOperation, "providers/p", nil).Data
	if read["max_requests_per_second"] != 3.0 || read["max_concurrency"] != defaultMaxConcurrency {
		t.Errorf("after a refused write: %v", read)
	}
}

// Types that publish a limit default to it; the others have no cap.
func TestDefaultMaxRequestsPerSecond(t *testing.T) {
	cf, ok := clients.Lookup("cloudflare")
	if !ok {
		t.Fatal("no cloudflare type")
	}
	if got := effectiveRequestsPerSecond(cf, &providerEntry{}); got != 4 {
		t.Errorf("cloudflare default %v, want 4 (1,200 requests per 5 minutes)", got)
	}
	if got := effectiveRequestsPerSecond(cf, &providerEntry{MaxRequestsPerSecond: 1}); got != 1 {
		t.Errorf("cloudflare with max_requests_per_second 1: %v", got)
	}
	for _, typ := range clients.Types() {
		if typ.DefaultMaxRequestsPerSecond < 0 || checkMaxRequestsPerSecond(typ.DefaultMaxRequestsPerSecond) != "" {
			t.Errorf("type %s: default %v is not a valid max_requests_per_second", typ.Name, typ.DefaultMaxRequestsPerSecond)
		}
	}
}

// An answer saying no request is left holds the provider's budget: status
// shows until when, the next call waits for it, and the wait is counted in
// thirdparty_provider_throttled_seconds_total.
func TestBudgetHoldShownInStatusAndMetrics(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "p", "mode": "dynamic"})
	if v := e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)["p"].(map[string]any)["throttled_until"]; v != "" {
		t.Errorf("throttled_until before any hold = %q, want \"\"", v)
	}
	e.must(logical.ReadOperation, "creds/dyn", nil)
	body := string(e.must(logical.ReadOperation, "metrics", nil).Data[logical.HTTPRawBody].([]byte))
	if !strings.Contains(body, "thirdparty_provider_throttled_seconds_total{provider=\"p\"} 0\n") {
		t.Error("no thirdparty_provider_throttled_seconds_total series at 0 after an unthrottled call")
	}
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("RateLimit-Reset", "0.4")
		}
		return false
	})
	e.must(logical.ReadOperation, "creds/dyn", nil)
	until := e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)["p"].(map[string]any)["throttled_until"]
	if s, _ := until.(string); s == "" {
		t.Fatal("status shows no throttled_until while the budget is held")
	}
	e.setIntercept(func(http.ResponseWriter, *http.Request) bool { return false })
	start := time.Now()
	e.must(logical.ReadOperation, "creds/dyn", nil)
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("the read after Remaining 0 took %v: it did not wait for the reset", el)
	}
	if v := e.metricValue(`thirdparty_provider_throttled_seconds_total{provider="p"}`); v < 0.2 {
		t.Errorf("throttled seconds = %v, want the wait counted", v)
	}
	if v := e.must(logical.ReadOperation, "status", nil).Data["providers"].(map[string]any)["p"].(map[string]any)["throttled_until"]; v != "" {
		t.Errorf("throttled_until after the reset = %q, want \"\"", v)
	}
}

// A dynamic creds read goes before scheduled work on the provider's
// budget: with background callers keeping the bucket empty, the read waits
// about one token's time, not its turn among them.
func TestCredsReadGoesFirstOnTheBudget(t *testing.T) {
	e := newEnv(t)
	e.must(logical.CreateOperation, "providers/p", map[string]any{"type": "demo", "base_url": e.srv.URL,
		"admin_key": e.adminKey, "max_requests_per_second": 5, "request_timeout": 3})
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "p", "mode": "dynamic"})
	e.must(logical.ReadOperation, "creds/dyn", nil) // the client and its budget exist
	v, _ := e.b.budgets.Load("p")
	budget := v.(*httpx.Budget)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 30 { // scheduled work, as many callers as the scheduler's workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				budget.Wait(ctx)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // the burst is spent
	start := time.Now()
	e.must(logical.ReadOperation, "creds/dyn", nil)
	// One token is 200 ms; among 30 callers with equal rights it would be
	// seconds.
	if el := time.Since(start); el > 700*time.Millisecond {
		t.Errorf("creds read took %v behind scheduled work, want about one token's time", el)
	}
}
