package backend

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// A 429 that a retry gets past still shows in
// thirdparty_provider_responses_total, next to the 200 that followed it.
func TestMetricsCountEveryProviderAnswer(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "p", "mode": "dynamic"})
	var throttled atomic.Int32
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && throttled.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"error":{"code":"rate_limited","message":"slow down"}}`, http.StatusTooManyRequests)
			return true
		}
		return false
	})
	e.must(logical.ReadOperation, "creds/dyn", nil)
	if v := e.metricValue(`thirdparty_provider_responses_total{code="429",op="create",provider="p"}`); v != 1 {
		t.Errorf("429 answers to create = %v, want 1", v)
	}
	if v := e.metricValue(`thirdparty_provider_responses_total{code="201",op="create",provider="p"}`) +
		e.metricValue(`thirdparty_provider_responses_total{code="200",op="create",provider="p"}`); v != 1 {
		t.Errorf("successful answers to create = %v, want 1", v)
	}
	// One request for the histogram, retries included.
	if v := e.metricValue(`thirdparty_provider_request_duration_seconds_count{op="create",provider="p"}`); v != 1 {
		t.Errorf("create requests = %v, want 1", v)
	}
}

// thirdparty_secret_info names the provider of each kind/name series: a
// dual role's provider, and a provider for its own root.
func TestMetricsSecretInfoNamesTheProvider(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("d", nil)
	e.must(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "p", "mode": "dynamic"})
	for sample, want := range map[string]float64{
		`thirdparty_secret_info{kind="role",name="d",provider="p"}`:   1,
		`thirdparty_secret_info{kind="root",name="p",provider="p"}`:   1,
		`thirdparty_secret_info{kind="role",name="dyn",provider="p"}`: 0, // a dynamic role has no kind/name series
	} {
		if v := e.metricValue(sample); v != want {
			t.Errorf("%s = %v, want %v", sample, v, want)
		}
	}
}
