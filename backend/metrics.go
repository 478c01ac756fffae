package backend

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// metrics are the mount's Prometheus metrics, in a registry of its own (a
// multiplexed plugin process serves several mounts). Gauges are read from
// the inventory at scrape time. No label or value is ever a secret.
type metrics struct {
	registry  *prometheus.Registry
	rotations *prometheus.CounterVec
	issued    *prometheus.CounterVec
	revoked   *prometheus.CounterVec
	requests  *prometheus.HistogramVec
	answers   *prometheus.CounterVec
	throttled *prometheus.CounterVec
}

func newMetrics(b *backend) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thirdparty_rotations_total", Help: "Rotations attempted, by kind (role or root), name and result (success or failure).",
		}, []string{"kind", "name", "result"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thirdparty_keys_issued_total", Help: "Leases of keys handed out by creds/<role>.",
		}, []string{"role"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thirdparty_keys_revoked_total", Help: "Keys revoked at the provider.",
		}, []string{"role"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "thirdparty_provider_request_duration_seconds", Help: "Duration of HTTP requests to providers, retries included, by operation.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"provider", "op"}),
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thirdparty_provider_responses_total", Help: "Answers received from providers, retried ones included, by operation and HTTP status code (429: rate limited).",
		}, []string{"provider", "op", "code"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thirdparty_provider_throttled_seconds_total", Help: "Time requests to a provider spent waiting on its request budget (max_requests_per_second, or a hold until the provider's rate-limit reset), summed over callers.",
		}, []string{"provider"}),
	}
	m.registry.MustRegister(m.rotations, m.issued, m.revoked, m.requests, m.answers, m.throttled, inventoryCollector{b})
	return m
}

func (m *metrics) keyIssued(role string)  { m.issued.WithLabelValues(role).Inc() }
func (m *metrics) keyRevoked(role string) { m.revoked.WithLabelValues(role).Inc() }
func (m *metrics) rotation(kind, name, result string) {
	m.rotations.WithLabelValues(kind, name, result).Inc()
}

// observeProviderAnswer returns the hook the HTTP layer calls for each
// answer a provider sends, retried ones included.
func (b *backend) observeProviderAnswer(provider string) func(op string, status int) {
	return func(op string, status int) {
		b.metrics.answers.WithLabelValues(provider, op, strconv.Itoa(status)).Inc()
	}
}

// observeProviderThrottle returns the hook the HTTP layer calls for each
// wait on a provider's request budget.
func (b *backend) observeProviderThrottle(provider string) func(d time.Duration) {
	return func(d time.Duration) {
		b.metrics.throttled.WithLabelValues(provider).Add(d.Seconds())
	}
}

// observeProviderRequest returns the hook the HTTP layer calls after each
// provider request.
func (b *backend) observeProviderRequest(provider string) func(op string, d time.Duration, status int) {
	return func(op string, d time.Duration, _ int) {
		b.metrics.requests.WithLabelValues(provider, op).Observe(d.Seconds())
	}
}

var (
	descAge = prometheus.NewDesc("thirdparty_secret_age_seconds",
		"Age of the current secret: a dual role's current key (kind=role) or a provider's root (kind=root).", []string{"kind", "name"}, nil)
	descNext = prometheus.NewDesc("thirdparty_next_rotation_timestamp_seconds",
		"When the secret is next rotated (Unix time).", []string{"kind", "name"}, nil)
	descPending = prometheus.NewDesc("thirdparty_pending_revocations",
		"Replaced keys and roots not yet revoked (previous keys in their overlap included).", nil, nil)
	descFailing = prometheus.NewDesc("thirdparty_rotation_failing",
		"1 while the secret's last rotation attempt failed.", []string{"kind", "name"}, nil)
	descExpiry = prometheus.NewDesc("thirdparty_secret_expiry_timestamp_seconds",
		"Provider-side expiry of the current secret (Unix time): a dual role's current key (kind=role) or a provider's root (kind=root); absent when it does not expire or the provider does not say.", []string{"kind", "name"}, nil)
	descRetire = prometheus.NewDesc("thirdparty_previous_key_retire_timestamp_seconds",
		"When a dual role's previous key is revoked (Unix time); absent when there is none.", []string{"role"}, nil)
	descLedger = prometheus.NewDesc("thirdparty_ledger_entries",
		"Dynamic keys this mount created and has not yet revoked, and keys of deleted dual roles waiting for their leases to end (ledger entries), by provider.", []string{"provider"}, nil)
	descRetiring = prometheus.NewDesc("thirdparty_retiring_keys",
		"Keys of deleted dual roles waiting for their leases to end before they are revoked, by state: waiting, or failing (the last revocation attempt failed).", []string{"state"}, nil)
	descTombstones = prometheus.NewDesc("thirdparty_tombstones",
		"Deleted providers kept as tombstones until their last key is revoked.", nil, nil)
	descInfo = prometheus.NewDesc("thirdparty_secret_info",
		"1 for each series of kind and name above, labelled with the provider it belongs to (a role's provider, or the provider itself for a root): join on kind and name to filter or group by provider.", []string{"kind", "name", "provider"}, nil)
	descScheduler = prometheus.NewDesc("thirdparty_scheduler_running",
		"1 where this node runs the rotation scheduler (the active node), else 0.", nil, nil)
)

type inventoryCollector struct{ b *backend }

func (c inventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAge
	ch <- descNext
	ch <- descPending
	ch <- descFailing
	ch <- descRetire
	ch <- descExpiry
	ch <- descScheduler
	ch <- descLedger
	ch <- descTombstones
	ch <- descRetiring
	ch <- descInfo
}

func (c inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.b.clock.Now()
	roles, providers := c.b.inventory.snapshot()
	pending := 0
	emit := func(kind, name string, since, next, expires time.Time, lastErr string) {
		if !expires.IsZero() {
			ch <- prometheus.MustNewConstMetric(descExpiry, prometheus.GaugeValue, float64(expires.Unix()), kind, name)
		}
		if !since.IsZero() {
			ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, now.Sub(since).Seconds(), kind, name)
		}
		if !next.IsZero() {
			ch <- prometheus.MustNewConstMetric(descNext, prometheus.GaugeValue, float64(next.Unix()), kind, name)
		}
		failing := 0.0
		if lastErr != "" {
			failing = 1
		}
		ch <- prometheus.MustNewConstMetric(descFailing, prometheus.GaugeValue, failing, kind, name)
	}
	for _, r := range roles {
		if r.Mode != modeDual {
			continue
		}
		if r.PreviousKeyID != "" {
			pending++
			ch <- prometheus.MustNewConstMetric(descRetire, prometheus.GaugeValue, float64(r.PreviousKeyRetires.Unix()), r.name)
		}
		emit("role", r.name, r.CurrentKeyCreated, r.NextRotation, r.ExpiresAt, r.LastError)
		ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, "role", r.name, r.Provider)
	}
	for _, p := range providers {
		ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, "root", p.name, p.name)
		pending += p.Pending
		emit("root", p.name, p.RootAge, p.NextRotation, p.ExpiresAt, p.LastError)
	}
	pending += int(c.b.tombstoneRoots.Load()) // replaced roots of deleted providers
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(pending))
	running := 0.0
	if c.b.sched.isRunning() {
		running = 1
	}
	ch <- prometheus.MustNewConstMetric(descScheduler, prometheus.GaugeValue, running)
	for p, n := range c.b.ledgerCounts.snapshot() {
		ch <- prometheus.MustNewConstMetric(descLedger, prometheus.GaugeValue, float64(n), p)
	}
	ch <- prometheus.MustNewConstMetric(descTombstones, prometheus.GaugeValue, float64(c.b.tombstones.Load()))
	waiting, failing := c.b.retiring.counts()
	ch <- prometheus.MustNewConstMetric(descRetiring, prometheus.GaugeValue, float64(waiting), "waiting")
	ch <- prometheus.MustNewConstMetric(descRetiring, prometheus.GaugeValue, float64(failing), "failing")
}

func pathMetrics(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "metrics$",
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.metricsRead,
				Summary: "Prometheus metrics of this mount (text exposition format, raw body)."},
		},
		HelpSynopsis:    "Prometheus metrics: rotations, secret ages, next rotations, keys issued and revoked, provider latency.",
		HelpDescription: metricsHelp,
	}}
}

func (b *backend) metricsRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	families, err := b.metrics.registry.Gather()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	return &logical.Response{Data: map[string]any{
		logical.HTTPContentType: "text/plain; version=0.0.4; charset=utf-8",
		logical.HTTPRawBody:     buf.Bytes(),
		logical.HTTPStatusCode:  200,
	}}, nil
}

const metricsHelp = `
Returns the mount's metrics in the Prometheus text exposition format as the
raw HTTP body (scrape /v1/<mount>/metrics with a Vault token):

  thirdparty_rotations_total{kind,name,result}
  thirdparty_secret_age_seconds{kind,name}
  thirdparty_next_rotation_timestamp_seconds{kind,name}
  thirdparty_rotation_failing{kind,name}
  thirdparty_previous_key_retire_timestamp_seconds{role}
  thirdparty_secret_expiry_timestamp_seconds{kind,name}
  thirdparty_scheduler_running
  thirdparty_keys_issued_total{role}
  thirdparty_keys_revoked_total{role}
  thirdparty_pending_revocations
  thirdparty_provider_request_duration_seconds{provider,op} (histogram)
  thirdparty_provider_responses_total{provider,op,code}
  thirdparty_secret_info{kind,name,provider}
  thirdparty_tidy_runs_total{result}
  thirdparty_orphans_revoked_total{provider}

kind is "role" (a dual role's key) or "root" (a provider's root credential).
No metric carries a secret.
`
