package backend

import (
	"math"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// The request budget of each provider (httpx.Budget): a token bucket of
// max_requests_per_second taken before every request attempt to the
// provider, and a hold until the provider's rate-limit reset after a 429 or
// an answer saying no request is left. It is shared by everything calling
// the provider through this node: creds reads, the scheduler's workers,
// revocations and root rotation.

// maxRequestsPerSecondLimit bounds max_requests_per_second.
const maxRequestsPerSecondLimit = 100000

// checkMaxRequestsPerSecond returns why v is not a valid
// max_requests_per_second, or "".
func checkMaxRequestsPerSecond(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > maxRequestsPerSecondLimit {
		return "max_requests_per_second must be between 0 (the type's default) and 100000"
	}
	return ""
}

// effectiveRequestsPerSecond is the rate a provider's budget allows: its
// own max_requests_per_second, else its type's published limit (0: none).
func effectiveRequestsPerSecond(typ *clients.Type, e *providerEntry) float64 {
	if e.MaxRequestsPerSecond > 0 {
		return e.MaxRequestsPerSecond
	}
	return typ.DefaultMaxRequestsPerSecond
}

// budget returns the budget of provider name, made on first use at the
// rate e asks for. Only the stored config of the live provider changes the
// rate of an existing budget (cachedClient calls SetRate): not a client
// built to probe a write not yet stored, nor a tombstone's.
func (b *backend) budget(name string, typ *clients.Type, e *providerEntry) *httpx.Budget {
	if v, ok := b.budgets.Load(name); ok {
		return v.(*httpx.Budget)
	}
	v, loaded := b.budgets.LoadOrStore(name, httpx.NewBudget(effectiveRequestsPerSecond(typ, e)))
	if !loaded {
		// The series exists (at 0) from the provider's first call, so a
		// dashboard shows "no waiting" rather than "no data".
		b.metrics.throttled.WithLabelValues(name)
	}
	return v.(*httpx.Budget)
}

// budgetHeldUntil returns when the hold on provider name's budget set by
// the provider's rate-limit answers ends (zero: none in force).
func (b *backend) budgetHeldUntil(name string) time.Time {
	if v, ok := b.budgets.Load(name); ok {
		return v.(*httpx.Budget).HeldUntil()
	}
	return time.Time{}
}
