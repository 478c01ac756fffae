package main

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The dashboard's identity: its uid is what links and provisioning refer to.
const (
	dashboardUID   = "vault-thirdparty"
	dashboardTitle = "Vault thirdparty secrets engine"
)

// Panel titles the docs and the e2e suite refer to.
const (
	titleOldestAge = "Oldest secret age"
)

// datasource is the dashboard's Prometheus data source variable, chosen on
// import (or provisioned by docker-compose.yml).
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// sel is a selector of metric on the chosen mounts, with extra matchers.
func sel(metric string, extra ...string) string {
	return metric + "{" + strings.Join(append([]string{`mount=~"$mount"`}, extra...), ", ") + "}"
}

// byProvider joins a series of kind and name (age, next rotation, failing,
// rotations) to its provider through thirdparty_secret_info, keeping only
// the chosen providers and adding the provider label.
func byProvider(expr string) string {
	return "(" + expr + ") * on (job, instance, mount, kind, name) group_left (provider) " +
		sel("thirdparty_secret_info", `provider=~"$provider"`)
}

// The PromQL of each panel. Grafana fills in $mount, $provider and
// $__rate_interval.
var (
	exprOldestAge = "max by (kind, name, provider) (" + byProvider(sel("thirdparty_secret_age_seconds")) + ")"
	// Age over period, where period = age + time left until the next
	// rotation: 100% means due now, above means overdue.
	exprAgeOfPeriod = "max by (kind, name, provider) (" + byProvider(
		sel("thirdparty_secret_age_seconds")+" / ("+sel("thirdparty_secret_age_seconds")+" + "+
			sel("thirdparty_next_rotation_timestamp_seconds")+" - time())") + ")"
	exprNextRotation    = "min by (kind, name, provider) (" + byProvider(sel("thirdparty_next_rotation_timestamp_seconds")) + ") * 1000"
	exprExpiry          = "min by (kind, name, provider) (" + byProvider(sel("thirdparty_secret_expiry_timestamp_seconds")) + ") * 1000"
	exprRotationsResult = "sum by (result) (" + byProvider("increase("+sel("thirdparty_rotations_total")+"[$__rate_interval])") + ")"
	exprFailuresSecret  = "sum by (kind, name) (" + byProvider("increase("+sel("thirdparty_rotations_total", `result="failure"`)+"[$__rate_interval])") + ") > 0"
	exprFailing         = "max by (kind, name, provider) (" + byProvider(sel("thirdparty_rotation_failing")) + ") == 1"
	exprFailingCount    = "count(" + exprFailing + ") or vector(0)"
	exprPending         = "sum(" + sel("thirdparty_pending_revocations") + ")"
	exprRetiring        = "max by (role, provider) (label_replace(" + sel("thirdparty_previous_key_retire_timestamp_seconds") +
		`, "name", "$1", "role", "(.+)") * on (job, instance, mount, name) group_left (provider) ` +
		sel("thirdparty_secret_info", `kind="role"`, `provider=~"$provider"`) + ") * 1000"
	exprIssued        = "sum by (role) (increase(" + sel("thirdparty_keys_issued_total") + "[$__rate_interval]))"
	exprRevoked       = "sum by (role) (increase(" + sel("thirdparty_keys_revoked_total") + "[$__rate_interval]))"
	exprLatencyP99    = "histogram_quantile(0.99, sum by (le, provider) (rate(" + sel("thirdparty_provider_request_duration_seconds_bucket", `provider=~"$provider"`) + "[$__rate_interval])))"
	exprLatencyP50    = "histogram_quantile(0.5, sum by (le, provider) (rate(" + sel("thirdparty_provider_request_duration_seconds_bucket", `provider=~"$provider"`) + "[$__rate_interval])))"
	exprThrottled     = "sum by (provider) (rate(" + sel("thirdparty_provider_responses_total", `provider=~"$provider"`, `code="429"`) + "[$__rate_interval]))"
	exprBudgetWait    = "sum by (provider) (rate(" + sel("thirdparty_provider_throttled_seconds_total", `provider=~"$provider"`) + "[$__rate_interval]))"
	exprAnswersByCode = "sum by (code) (rate(" + sel("thirdparty_provider_responses_total", `provider=~"$provider"`) + "[$__rate_interval]))"
	exprLedger        = "sum by (provider) (" + sel("thirdparty_ledger_entries", `provider=~"$provider"`) + ")"
	exprTidyRuns      = "sum by (result) (increase(" + sel("thirdparty_tidy_runs_total") + "[$__rate_interval]))"
	exprOrphans       = "sum by (provider) (increase(" + sel("thirdparty_orphans_revoked_total", `provider=~"$provider"`) + "[$__rate_interval]))"
	exprTombstones    = "sum(" + sel("thirdparty_tombstones") + ")"
	exprScheduler     = "sum(" + sel("thirdparty_scheduler_running") + ")"
)

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(expr).LegendFormat(legend)
}

// instant is a query for a table or bar gauge: the latest value only.
func instant(expr, legend string) *prometheus.DataqueryBuilder {
	return query(expr, legend).Instant().Format(prometheus.PromQueryFormatTable)
}

func steps(colors ...any) *dashboard.ThresholdsConfigBuilder {
	var s []dashboard.Threshold
	for i := 0; i < len(colors); i += 2 {
		var v *float64
		if colors[i] != nil {
			v = cog.ToPtr(colors[i].(float64))
		}
		s = append(s, dashboard.Threshold{Value: v, Color: colors[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(s)
}

// refIDs names a panel's queries A, B, … in order.
func refIDs(queries ...*prometheus.DataqueryBuilder) []cog.Builder[variants.Dataquery] {
	var out []cog.Builder[variants.Dataquery]
	for i, q := range queries {
		out = append(out, q.RefId(string(rune('A'+i))))
	}
	return out
}

func ts(title, desc, unit string, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Title(title).Description(desc).Datasource(datasource).Unit(unit).
		Targets(refIDs(queries...)).Height(8).Span(12).FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom).ShowLegend(true))
}

func bars(title, desc, unit string, q *prometheus.DataqueryBuilder) *bargauge.PanelBuilder {
	return bargauge.NewPanelBuilder().Title(title).Description(desc).Datasource(datasource).Unit(unit).
		Targets(refIDs(q)).Height(9).Span(12).Orientation(common.VizOrientationHorizontal).
		DisplayMode(common.BarGaugeDisplayModeGradient).Min(0).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Values(true).Calcs([]string{"lastNotNull"}))
}

func single(title, desc, expr string, th *dashboard.ThresholdsConfigBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(desc).Datasource(datasource).
		Targets(refIDs(query(expr, "").Instant())).Height(4).Span(6).Thresholds(th).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
}

func list(title, desc, unit, expr, sortBy string, desc2 bool) *table.PanelBuilder {
	return table.NewPanelBuilder().Title(title).Description(desc).Datasource(datasource).Unit(unit).
		Targets(refIDs(instant(expr, ""))).Height(8).Span(12).
		SortBy([]cog.Builder[common.TableSortByFieldState]{common.NewTableSortByFieldStateBuilder().DisplayName(sortBy).Desc(desc2)}).
		// Only the labels that name the secret and its value.
		WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
			"excludeByName": map[string]bool{"Time": true},
		}})
}

// build returns the dashboard.
func build() (dashboard.Dashboard, error) {
	mount := dashboard.NewQueryVariableBuilder("mount").Label("Mount").
		Description("The engine's mounts: the mount label that deploy/prometheus/prometheus.yml derives from the scrape path.").
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(thirdparty_scheduler_running, mount)")}).
		Definition("label_values(thirdparty_scheduler_running, mount)").
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).IncludeAll(true).AllValue(".*")
	provider := dashboard.NewQueryVariableBuilder("provider").Label("Provider").
		Description("Provider instances (providers/<name>) of the chosen mounts.").
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: cog.ToPtr(`label_values(thirdparty_secret_info{mount=~"$mount"}, provider)`)}).
		Definition(`label_values(thirdparty_secret_info{mount=~"$mount"}, provider)`).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).IncludeAll(true).AllValue(".*")

	b := dashboard.NewDashboardBuilder(dashboardTitle).
		Uid(dashboardUID).
		Description("Key age, rotations, failures, revocations and provider calls of the thirdparty secrets engine (vault-plugin-secrets-thirdparty). Generated by cmd/dashboard: edit the Go code, not the JSON.").
		Tags([]string{"vault", "thirdparty", "secrets"}).
		Editable().
		Refresh("1m").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithVariable(mount).
		WithVariable(provider).
		WithRow(dashboard.NewRowBuilder("Key age")).
		WithPanel(single("Failing secrets", "Dual role keys and provider roots whose last rotation attempt failed (thirdparty_rotation_failing). The error text is in `vault read <mount>/status` (last_error, next_retry); metrics never carry it.",
			exprFailingCount, steps(nil, "green", 1.0, "red"))).
		WithPanel(single("Pending revocations", "Replaced keys and roots not yet revoked, previous keys in their overlap included. Not filtered by provider.",
			exprPending, steps(nil, "green", 1.0, "blue"))).
		WithPanel(single("Scheduler running", "Nodes running the rotation scheduler: 1 per mount (the active node). 0 means no rotation happens.",
			exprScheduler, steps(nil, "red", 1.0, "green"))).
		WithPanel(single("Tombstones", "Deleted providers kept until their last key is revoked.",
			exprTombstones, steps(nil, "green", 1.0, "blue"))).
		WithPanel(bars(titleOldestAge, "How old is each key: the age of each dual role's current key (kind=role) and of each provider's root (kind=root), oldest first. A dynamic role has none: each lease has its own key.",
			"s", instant(exprOldestAge, "{{kind}} {{name}} ({{provider}})")).
			Thresholds(steps(nil, "green", 90*86400.0, "yellow", 100*86400.0, "red"))).
		WithPanel(bars("Age against rotation period", "Age as a share of the rotation period (age + time until the next rotation): 100% means due now; above 100% means overdue (rotation failing, or waiting for the previous key's overlap to end). Secrets without a scheduled rotation are absent.",
			"percentunit", instant(exprAgeOfPeriod, "{{kind}} {{name}} ({{provider}})")).
			Thresholds(steps(nil, "green", 0.9, "yellow", 1.0, "red"))).
		WithPanel(list("Next rotations", "When each secret is next rotated, soonest first (thirdparty_next_rotation_timestamp_seconds). A time in the past is overdue.",
			"dateTimeFromNow", exprNextRotation, "Value", false)).
		WithPanel(list("Provider-side expiry", "When each root and dual key expires at the provider on its own, soonest first (thirdparty_secret_expiry_timestamp_seconds). The scheduler rotates it renew_before ahead; ThirdpartySecretExpiringSoon fires when one expires within 7 days with no rotation scheduled before. Secrets without an expiry are absent.",
			"dateTimeFromNow", exprExpiry, "Value", false)).
		WithPanel(list("Previous keys awaiting retirement", "Dual roles whose previous key is still live in its overlap, and when it is revoked. Rotating such a role again by hand is refused until then.",
			"dateTimeFromNow", exprRetiring, "Value", false)).
		WithRow(dashboard.NewRowBuilder("Rotations")).
		WithPanel(ts("Rotations by result", "Rotation attempts of keys and roots, manual and scheduled, by result.", "short",
			query(exprRotationsResult, "{{result}}")).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).DrawStyle(common.GraphDrawStyleBars)).
		WithPanel(ts("Rotation failures by secret", "Failed rotation attempts (and failed revocations of retired keys) per secret. Find the error in `vault read <mount>/status`.", "short",
			query(exprFailuresSecret, "{{kind}} {{name}}")).DrawStyle(common.GraphDrawStyleBars)).
		WithPanel(list("Failing now", "Secrets whose last rotation attempt failed. Their error and next retry are in `vault read <mount>/status`.",
			"short", exprFailing, "name", false)).
		WithPanel(ts("Keys issued and revoked", "Leases handed out by creds/<role> and keys deleted at the provider, per role (dynamic and dual). Not filtered by provider.", "short",
			query(exprIssued, "issued {{role}}"), query(exprRevoked, "revoked {{role}}"))).
		WithRow(dashboard.NewRowBuilder("Providers")).
		WithPanel(ts("Provider request latency", "p50 and p99 duration of calls to each provider, retries (and their waits) included.", "s",
			query(exprLatencyP99, "p99 {{provider}}"), query(exprLatencyP50, "p50 {{provider}}"))).
		WithPanel(ts("Rate limited answers (429)", "429 answers per second from each provider, retried ones included. The engine retries them honouring Retry-After; a steady rate slows rotations and creds reads.", "reqps",
			query(exprThrottled, "{{provider}}"))).
		WithPanel(ts("Time waiting on provider rate limits", "Seconds per second that calls to each provider spent waiting on its request budget (max_requests_per_second, or a hold until the provider's rate-limit reset), summed over callers: 2 means two callers waiting all the time. `throttled_until` in `vault read <mount>/status` shows a hold in force.", "s",
			query(exprBudgetWait, "{{provider}}"))).
		WithPanel(ts("Provider answers by status", "Every answer from the chosen providers by HTTP status code, retried answers included.", "reqps",
			query(exprAnswersByCode, "{{code}}"))).
		WithRow(dashboard.NewRowBuilder("Ledger and tidy")).
		WithPanel(ts("Dynamic keys outstanding", "Dynamic keys created and not yet revoked (ledger entries) per provider, counted on the active node.", "short",
			query(exprLedger, "{{provider}}"))).
		WithPanel(ts("Tidy runs by result", "Tidy runs, manual and auto-tidy. A failure is a key tidy could not revoke, or a run that stopped: see `vault read <mount>/tidy-status`.", "short",
			query(exprTidyRuns, "{{result}}")).DrawStyle(common.GraphDrawStyleBars)).
		WithPanel(ts("Orphaned keys revoked", "Keys carrying the mount's marker that nothing in Vault accounted for, revoked by tidy. Any is worth a look: Vault had lost track of a key.", "short",
			query(exprOrphans, "{{provider}}")).DrawStyle(common.GraphDrawStyleBars))
	d, err := b.Build()
	if err != nil {
		return d, fmt.Errorf("dashboard: %w", err)
	}
	return d, nil
}
