package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

const providerPrefix = "config/providers/"

// providerEntry is a provider instance as stored (seal-wrapped).
type providerEntry struct {
	// Incarnation identifies one creation of providers/<name>: a provider
	// deleted and created again under the same name is another account as
	// far as its keys are concerned. Ledger entries, dual keys and leases
	// carry it, and a revocation uses the config of the incarnation that
	// created the key.
	Incarnation string `json:"incarnation"`
	// LegacyLeasesUntil is when leases issued before the ledger existed
	// (v0.1.0) can no longer be outstanding: a delete before then keeps a
	// tombstone so that their revocations still reach this account.
	LegacyLeasesUntil time.Time     `json:"legacy_leases_until,omitempty"`
	Type              string        `json:"type"`
	BaseURL           string        `json:"base_url"`
	RequestTimeout    time.Duration `json:"request_timeout"`
	MaxConcurrency    int           `json:"max_concurrency"`
	// MaxRequestsPerSecond sizes the provider's request budget (0: the
	// type's DefaultMaxRequestsPerSecond). See budget.go.
	MaxRequestsPerSecond float64 `json:"max_requests_per_second,omitempty"`
	TLSCACert            string  `json:"tls_ca_cert"`
	// AllowInsecureHTTP lets base_url (and the type's other URLs) be plain
	// http to a host that is not loopback.
	AllowInsecureHTTP bool              `json:"allow_insecure_http,omitempty"`
	Fields            map[string]string `json:"fields"`
	Rotation          rotationConfig    `json:"rotation"`

	// CanRotateRoot is the configured client's capability, fixed at write.
	CanRotateRoot bool   `json:"can_rotate_root"`
	RootKeyID     string `json:"root_key_id"`
	// RootSetAt is when the root was last written by an operator.
	RootSetAt     time.Time `json:"root_set_at"`
	RootRotatedAt time.Time `json:"root_rotated_at"`
	// PendingRootRevocations are old roots replaced but not yet revoked
	// (their revocation failed and is retried).
	PendingRootRevocations []string  `json:"pending_root_revocations,omitempty"`
	LastRootRotationError  string    `json:"last_root_rotation_error"`
	RootFailures           int       `json:"root_failures"`
	RootNextRetry          time.Time `json:"root_next_retry"`
	// RootExpiresAt is the current root's provider-side expiry (zero: none
	// or unknown), learned at RootExpiryFrom. Entries written before these
	// fields existed load with both zero: no expiry-driven rotation.
	RootExpiresAt  time.Time `json:"root_expires_at,omitempty"`
	RootExpiryFrom time.Time `json:"root_expiry_from,omitempty"`
	// RenewBefore: rotate the root at the latest this long before
	// RootExpiresAt (0: one third of its lifetime).
	RenewBefore time.Duration `json:"renew_before,omitempty"`
}

// Defaults applied on create.
const (
	defaultRequestTimeout = 30 * time.Second
	defaultMaxConcurrency = 8
	// maxRequestTimeout bounds request_timeout: it is also the deadline of a
	// whole provider operation (retries included), which a caller waits for.
	maxRequestTimeout = 5 * time.Minute
)

// commonProviderFields are the fields every provider type has.
func commonProviderFields() map[string]*framework.FieldSchema {
	f := map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeLowerCaseString, Required: true,
			Description: "Name of the provider instance."},
		"type": {Type: framework.TypeString,
			Description: "Provider type (required on create, immutable): " + strings.Join(typeNames(), ", ") + "."},
		"base_url": {Type: framework.TypeString,
			Description: "API root URL: https, or http only to a loopback host (127.0.0.0/8, ::1, localhost) or with allow_insecure_http; no user:password@. " +
				"Defaults per type; required for self-hosted types (demo, gitlab, grafana, http). Changing it needs the root credential in the same write."},
		"allow_insecure_http": {Type: framework.TypeBool, Default: false,
			Description: "Allow a plain-http base_url to a host that is not loopback (the root credential then travels unencrypted). Turning it on needs the root credential in the same write."},
		"request_timeout": {Type: framework.TypeDurationSecond, Default: int(defaultRequestTimeout.Seconds()),
			Description: "Timeout of one HTTP request to the provider, and the deadline of one whole provider operation (retries included) of creds and rotate-role (at most 5m)."},
		"max_concurrency": {Type: framework.TypeInt, Default: defaultMaxConcurrency,
			Description: "Most provider calls in flight at once for this provider (1-256)."},
		"max_requests_per_second": {Type: framework.TypeFloat, Default: 0,
			Description: "Request budget of this provider: most requests a second to its API (bursts of as many), every attempt counted, shared by creds reads, scheduled rotations, revocations and root rotation. 0 (the default) uses the type's published limit (cloudflare: 4), or no cap for a type that publishes none; a 429 or a rate-limit header saying no request is left holds every caller until the provider's reset either way (0-100000)."},
		"same_account": {Type: framework.TypeBool, Default: false,
			Description: "Update only, not stored: confirm that a new base_url, destination or account field still reaches the account the provider's keys live in (a proxy, a renamed host). Without it such a change is refused while keys live there."},
		"tls_ca_cert": {Type: framework.TypeString,
			Description: "PEM CA bundle to trust for the provider's TLS certificate instead of the system roots."},
	}
	for k, v := range rotationFields("the provider's root credential", false) {
		f[k] = v
	}
	f["renew_before"] = renewBeforeField("the root credential")
	return f
}

// providerSchema is the union of the common fields and every type's fields.
func providerSchema() map[string]*framework.FieldSchema {
	fields := commonProviderFields()
	descs := map[string][]string{}
	sensitive := map[string]bool{}
	for _, t := range clients.Types() {
		for _, f := range t.Fields {
			descs[f.Name] = append(descs[f.Name], fmt.Sprintf("%s: %s", t.Name, f.Description))
			sensitive[f.Name] = sensitive[f.Name] || f.Sensitive
		}
	}
	for name, d := range descs {
		desc := strings.Join(d, " | ")
		if sensitive[name] {
			desc = "(sensitive, write-only) " + desc
		}
		fields[name] = &framework.FieldSchema{Type: framework.TypeString, Description: desc,
			DisplayAttrs: &framework.DisplayAttributes{Sensitive: sensitive[name]}}
	}
	return fields
}

func typeNames() []string {
	var names []string
	for _, t := range clients.Types() {
		names = append(names, t.Name)
	}
	return names
}

func pathProviders(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern:        "providers/" + nameRegex("name"),
			Fields:         providerSchema(),
			ExistenceCheck: b.providerExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{Callback: b.providerWrite, Summary: "Create a provider instance.",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.providerWrite, Summary: "Update a provider instance (partial).",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
				logical.ReadOperation: &framework.PathOperation{Callback: b.providerRead, Summary: "Read a provider instance (never its secrets)."},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.providerDelete, Summary: "Delete a provider instance no role uses.",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
			},
			HelpSynopsis:    providerHelpSyn,
			HelpDescription: providerHelpDesc,
		},
		{
			Pattern: "providers/?$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.providerList, Summary: "List provider instances."},
			},
			HelpSynopsis:    "List the configured provider instances.",
			HelpDescription: "Lists the names of every provider instance of this mount.",
		},
	}
}

func (b *backend) providerExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	e, err := getProvider(ctx, req.Storage, d.Get("name").(string))
	return e != nil, err
}

func getProvider(ctx context.Context, s logical.Storage, name string) (*providerEntry, error) {
	return getEntry[providerEntry](ctx, s, providerPrefix+name)
}

func (b *backend) providerWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	defer b.locks.lock(lockKey("provider", name))()

	old, err := getProvider(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	w, resp, err := mergeProvider(d, req.Data, old)
	if resp != nil || err != nil {
		return resp, err
	}
	if resp := w.validate(); resp != nil {
		return resp, nil
	}
	if resp, err := b.checkAccountSwitch(ctx, req.Storage, name, w); resp != nil || err != nil {
		return resp, err
	}
	if resp, err := b.probeProvider(ctx, req.Storage, name, w); resp != nil || err != nil {
		return resp, err
	}
	return nil, b.storeProvider(ctx, req.Storage, name, w)
}

// providerWriteOp is one write of providers/<name> between its steps:
// merge (the request on top of the stored entry), validate (each field's
// value, once), probe (the client built from the result, checked against
// the roles and the provider) and store.
type providerWriteOp struct {
	old, e   *providerEntry // old is nil on create
	typ      *clients.Type
	creating bool
	data     map[string]any // the request's fields, as sent
	rotation rotationConfig
	// secretChanged: a credential field is new or different.
	secretChanged bool
	// destChanged: where the root credential is sent changes.
	destChanged bool
	// sameAccount: the writer confirms that a changed base_url,
	// destination or account field reaches the same account.
	sameAccount bool
	// nativeRoll: the type (as configured) rolls its root (probeProvider).
	nativeRoll bool
	// users are the roles of the provider (an update), listed once for
	// the steps that need them (rolesOf).
	users map[string]*roleEntry
}

// rolesOf lists the roles that use the provider, once per write.
func (w *providerWriteOp) rolesOf(ctx context.Context, s logical.Storage, name string) (map[string]*roleEntry, error) {
	if w.users == nil {
		users, err := rolesUsingProvider(ctx, s, name)
		if err != nil {
			return nil, err
		}
		w.users = users
	}
	return w.users, nil
}

// given reports whether the request sent field k.
func (w *providerWriteOp) given(k string) bool {
	_, ok := w.data[k]
	return ok
}

// mergeProvider applies the request's fields on top of a copy of the
// stored entry (defaults on create). It refuses what cannot be merged at
// all: a missing, unknown or changed type, a field the type does not use,
// a value of the wrong kind, bad rotation settings.
func mergeProvider(d *framework.FieldData, data map[string]any, old *providerEntry) (*providerWriteOp, *logical.Response, error) {
	w := &providerWriteOp{old: old, creating: old == nil, data: data, e: &providerEntry{Fields: map[string]string{}}}
	e := w.e
	if !w.creating {
		*e = *old
		e.Fields = maps.Clone(old.Fields)
		if e.Fields == nil {
			e.Fields = map[string]string{}
		}
	}

	typeName, typeGiven := d.GetOk("type")
	switch {
	case w.creating && !typeGiven:
		return nil, logical.ErrorResponse("type is required; one of: %s", strings.Join(typeNames(), ", ")), nil
	case w.creating:
		e.Type = typeName.(string)
		var err error
		if e.Incarnation, err = newIncarnation(); err != nil {
			return nil, nil, err
		}
	case typeGiven && typeName.(string) != e.Type:
		return nil, logical.ErrorResponse("type is immutable: provider %q is of type %q", d.Get("name").(string), e.Type), nil
	}
	typ, ok := clients.Lookup(e.Type)
	if !ok {
		return nil, logical.ErrorResponse("type: unknown provider type %q; one of: %s", e.Type, strings.Join(typeNames(), ", ")), nil
	}
	w.typ = typ

	common := commonProviderFields()
	typeFields := make(map[string]bool, len(typ.Fields))
	for _, f := range typ.Fields {
		typeFields[f.Name] = true
	}
	for k := range data {
		if _, ok := common[k]; !ok && !typeFields[k] {
			return nil, logical.ErrorResponse("%s: field not used by provider type %q", k, e.Type), nil
		}
	}

	if v, ok := d.GetOk("base_url"); ok {
		e.BaseURL = strings.TrimRight(strings.TrimSpace(v.(string)), "/")
	} else if w.creating {
		e.BaseURL = typ.DefaultBaseURL
	}
	if v, ok := d.GetOk("allow_insecure_http"); ok {
		e.AllowInsecureHTTP = v.(bool)
	}
	if _, ok := d.GetOk("request_timeout"); ok || w.creating {
		e.RequestTimeout = time.Duration(d.Get("request_timeout").(int)) * time.Second
	}
	if _, ok := d.GetOk("max_concurrency"); ok || w.creating {
		e.MaxConcurrency = d.Get("max_concurrency").(int)
	}
	if v, ok := d.GetOk("max_requests_per_second"); ok {
		e.MaxRequestsPerSecond = v.(float64)
	}
	if v, ok := d.GetOk("tls_ca_cert"); ok {
		e.TLSCACert = v.(string)
	}

	w.secretChanged = w.creating
	for _, f := range typ.Fields {
		v, ok := data[f.Name]
		if !ok {
			if w.creating && f.Default != "" {
				e.Fields[f.Name] = f.Default
			}
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, logical.ErrorResponse("%s: must be a string", f.Name), nil
		}
		if f.Sensitive && s != e.Fields[f.Name] {
			w.secretChanged = true
		}
		e.Fields[f.Name] = s
	}

	var resp *logical.Response
	if w.rotation, resp = parseRotation(d, e.Rotation, w.creating, false); resp != nil {
		return nil, resp, nil
	}
	e.Rotation = w.rotation
	if e.RenewBefore, resp = parseRenewBefore(d, e.RenewBefore); resp != nil {
		return nil, resp, nil
	}
	w.destChanged = !w.creating && destinationChanged(typ, old, e)
	w.sameAccount = d.Get("same_account").(bool)
	return w, nil, nil
}

// validate checks the merged entry: each value written (or, on create,
// defaulted) once, in the order the fields are listed; a value stored
// before a rule existed keeps working until it is written again. The
// type's own Validate runs when the client is built (probeProvider).
func (w *providerWriteOp) validate() *logical.Response {
	e, typ := w.e, w.typ
	if e.BaseURL == "" && typ.BaseURLRequired {
		return logical.ErrorResponse("base_url is required for provider type %q", e.Type)
	}
	insecureGiven := w.given("allow_insecure_http")
	if e.BaseURL != "" {
		// The transport rules apply when the URL or the permission is
		// written.
		if msg := checkEndpoint(e.BaseURL, e.AllowInsecureHTTP, w.creating || w.given("base_url") || insecureGiven); msg != "" {
			return logical.ErrorResponse("base_url: %s", msg)
		}
	}
	if (w.creating || w.given("request_timeout")) && (e.RequestTimeout <= 0 || e.RequestTimeout > maxRequestTimeout) {
		return logical.ErrorResponse("request_timeout must be more than 0s and at most %s", maxRequestTimeout)
	}
	if (w.creating || w.given("max_concurrency")) && (e.MaxConcurrency < 1 || e.MaxConcurrency > 256) {
		return logical.ErrorResponse("max_concurrency must be between 1 and 256")
	}
	if w.given("max_requests_per_second") {
		if msg := checkMaxRequestsPerSecond(e.MaxRequestsPerSecond); msg != "" {
			return logical.ErrorResponse(msg)
		}
	}
	for _, f := range typ.Fields {
		if f.Required && e.Fields[f.Name] == "" {
			return logical.ErrorResponse("%s is required for provider type %q", f.Name, e.Type)
		}
	}
	for _, f := range typ.Fields {
		if f.URL && e.Fields[f.Name] != "" && (w.creating || w.given(f.Name) || insecureGiven) {
			if msg := checkEndpoint(e.Fields[f.Name], e.AllowInsecureHTTP, true); msg != "" {
				return logical.ErrorResponse("%s: %s", f.Name, msg)
			}
		}
	}
	if w.destChanged {
		return credentialResent(typ, e, w.data)
	}
	return nil
}

// probeProvider builds the client of the merged entry (the type's Validate
// runs there), checks it still takes every role's scopes and parameters,
// fixes the root-rotation capability and, when the credential or its
// destination changes, asks the provider for the root's id: a wrong root
// is caught here rather than at the first creds read.
func (b *backend) probeProvider(ctx context.Context, s logical.Storage, name string, w *providerWriteOp) (*logical.Response, error) {
	e, typ := w.e, w.typ
	pc, err := b.buildClient(name, e)
	if err != nil {
		if resp := fieldErrorResponse(err); resp != nil {
			return resp, nil
		}
		return logical.ErrorResponse("%s", err.Error()), nil
	}
	if !w.creating {
		// A change (say to an http provider's templates) must still take
		// the scopes and parameters of every role that uses the provider.
		users, err := w.rolesOf(ctx, s, name)
		if err != nil {
			return nil, err
		}
		if resp, err := rolesStillValid(users, pc); resp != nil || err != nil {
			return resp, err
		}
	}
	e.CanRotateRoot = pc.api.Capabilities().RootRotation
	w.nativeRoll = pc.api.Capabilities().NativeRoll
	if !e.CanRotateRoot && (w.rotation.automated() || e.RenewBefore > 0) {
		for _, k := range []string{"rotation_period", "rotation_schedule", "renew_before"} {
			if w.given(k) {
				return logical.ErrorResponse("%s: provider type %q (as configured) cannot rotate its root credential", k, e.Type), nil
			}
		}
	}
	if !w.secretChanged && !w.destChanged {
		return nil, nil
	}
	root, err := inspectRoot(ctx, pc.withDeadline().api)
	if err != nil {
		if httpx.NotFound(err) {
			// Not a refusal of the credential: the call found nothing at
			// its address, and the provider's error says what.
			return logical.ErrorResponse("%s: the root credential could not be checked, the provider answered 404 Not Found: %s",
				strings.Join(sensitiveFields(typ), ", "), err.Error()), nil
		}
		return logical.ErrorResponse("%s: the provider did not accept the root credential: %s", strings.Join(sensitiveFields(typ), ", "), err.Error()), nil
	}
	if root.ID != "" {
		e.RootKeyID = root.ID
	}
	e.RootExpiresAt, e.RootExpiryFrom = root.ExpiresAt, b.clock.Now()
	return nil, nil
}

// storeProvider persists the written entry; a root written by hand starts
// a clean slate for automated rotation.
func (b *backend) storeProvider(ctx context.Context, s logical.Storage, name string, w *providerWriteOp) error {
	if w.secretChanged {
		w.e.RootSetAt = b.clock.Now()
		w.e.LastRootRotationError, w.e.RootFailures, w.e.RootNextRetry = "", 0, time.Time{}
		if id := w.replacedVaultRoot(); id != "" {
			w.e.PendingRootRevocations = append(slices.Clone(w.e.PendingRootRevocations), id)
			b.Logger().Info("a root only Vault knew was replaced by a written credential; revoking it with the new one", "provider", name, "root_key_id", id)
		}
	}
	return b.putProvider(ctx, s, name, w.e)
}

// replacedVaultRoot is the id of the root a credential write replaces when
// Vault created that root (its last rotation came after the last root an
// operator wrote), so that only Vault knows it: left live, nobody could use
// or revoke it. It is revoked with the new credential like a rotated-out
// root. Not for roll-style types (the operator's own roll killed it), nor
// when the write points the provider at another account, where it cannot
// be found ("" then).
func (w *providerWriteOp) replacedVaultRoot() string {
	old := w.old
	if w.creating || old.RootKeyID == "" || old.RootKeyID == w.e.RootKeyID || !old.RootRotatedAt.After(old.RootSetAt) ||
		!w.e.CanRotateRoot || w.nativeRoll || slices.Contains(old.PendingRootRevocations, old.RootKeyID) {
		return ""
	}
	if accountChange(w.typ, old, w.e) != "" && !w.sameAccount {
		return ""
	}
	return old.RootKeyID
}

func inspectRoot(ctx context.Context, api clients.Provider) (clients.Root, error) {
	if ri, ok := api.(clients.RootInspector); ok {
		return ri.InspectRoot(ctx)
	}
	id, err := api.RootID(ctx)
	return clients.Root{ID: id}, err
}

// rolesStillValid checks each role of the provider (users) against the
// client built from its new configuration: a 400 naming the first role
// whose scopes or parameters it would refuse.
func rolesStillValid(users map[string]*roleEntry, pc *providerClient) (*logical.Response, error) {
	for _, rn := range slices.Sorted(maps.Keys(users)) {
		r := users[rn]
		var fe *clients.FieldError
		if err := pc.api.ValidateKeyRequest(clients.KeyRequest{Scopes: r.Scopes, Parameters: r.Parameters}); errors.As(err, &fe) {
			return logical.ErrorResponse("role %q would no longer work with this configuration: %s: %s (change the role first)", rn, fe.Field, fe.Message), nil
		} else if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// putProvider stores a provider, drops its cached client and reschedules
// its root rotation.
func (b *backend) putProvider(ctx context.Context, s logical.Storage, name string, e *providerEntry) error {
	if err := putJSON(ctx, s, providerPrefix+name, e); err != nil {
		return err
	}
	b.dropClient(name)
	b.inventory.setProvider(name, e, b.nextRootRotation(e))
	b.sched.schedule(rootItem(name), b.rootDue(e))
	// max_concurrency may have changed the provider's cap on scheduled
	// jobs (providerJobLimit): jobs parked under the old cap start now,
	// not when one of its running jobs ends (a hung provider's may not).
	b.sched.poke()
	return nil
}

func (b *backend) providerRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	e, err := getProvider(ctx, req.Storage, name)
	if err != nil || e == nil {
		return nil, err
	}
	data := map[string]any{
		"type":                     e.Type,
		"incarnation":              e.Incarnation,
		"base_url":                 e.BaseURL,
		"request_timeout":          int64(e.RequestTimeout.Seconds()),
		"max_concurrency":          e.MaxConcurrency,
		"max_requests_per_second":  e.MaxRequestsPerSecond,
		"tls_ca_cert":              e.TLSCACert,
		"allow_insecure_http":      e.AllowInsecureHTTP,
		"root_key_id":              e.RootKeyID,
		"root_rotated_at":          formatTime(e.RootRotatedAt),
		"last_root_rotation_error": e.LastRootRotationError,
		"next_root_rotation":       formatTime(b.nextRootRotation(e)),
		"pending_root_revocations": len(e.PendingRootRevocations),
		// Their ids, for an operator who has to delete one by hand.
		"root_revocations": append([]string{}, e.PendingRootRevocations...),
		"expires_at":       formatTime(e.RootExpiresAt),
		"renew_before":     int64(e.RenewBefore.Seconds()),
	}
	e.Rotation.fill(data)
	data["disable_automated_rotation"] = e.Rotation.Disabled
	if typ, ok := clients.Lookup(e.Type); ok {
		data["effective_max_requests_per_second"] = effectiveRequestsPerSecond(typ, e)
		for _, f := range typ.Fields {
			if !f.Sensitive {
				data[f.Name] = e.Fields[f.Name]
			}
		}
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) providerDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	defer b.locks.lock(lockKey("provider", name))()

	users, err := rolesUsingProvider(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if len(users) > 0 {
		return logical.ErrorResponse("provider %q is used by roles: %s; delete them first", name, strings.Join(slices.Sorted(maps.Keys(users)), ", ")), nil
	}
	e, err := getProvider(ctx, req.Storage, name)
	if err != nil || e == nil {
		return nil, err
	}
	if _, err := b.adoptLegacyProvider(e, b.clock.Now()); err != nil { // not migrated yet
		return nil, err
	}
	// Replaced roots not yet revoked are tried once more now, with the
	// current root; what fails stays with the tombstone, for tidy.
	if len(e.PendingRootRevocations) > 0 {
		b.tryOldRoots(ctx, req.Storage, name, e)
	}
	// What this incarnation still has at its account keeps its config, so
	// that the revocations reach the account that issued it.
	keep, err := b.configNeeded(ctx, req.Storage, name, e)
	if err != nil {
		return nil, err
	}
	// A tidy running now may be about to record orphans of this account
	// (its scan lists first and stores what it saw at the end): keep the
	// config until a tidy has looked at the tombstone (it removes it when
	// nothing is outstanding).
	keep = keep || b.tidy.isRunning()
	if keep {
		if err := putTombstone(ctx, req.Storage, &tombstone{Name: name, Provider: e, DeletedAt: b.clock.Now()}); err != nil {
			return nil, err
		}
		b.tombstones.Add(1)
		b.tombstoneRoots.Add(int64(len(e.PendingRootRevocations)))
	}
	if err := req.Storage.Delete(ctx, providerPrefix+name); err != nil {
		return nil, err
	}
	b.dropClient(name)
	b.inventory.deleteProvider(name)
	b.sched.unschedule(rootItem(name))
	return b.deletedProviderNotice(name, e, keep), nil
}

// deletedProviderNotice tells the operator what a provider's delete kept
// and left live at the provider: the tombstone, old roots whose revocation
// failed (kept with the tombstone, which tidy retries) and a root Vault
// created, whose secret only Vault knew (the plugin never revokes the root
// it works with). Nil when there is nothing to tell.
func (b *backend) deletedProviderNotice(name string, e *providerEntry, kept bool) *logical.Response {
	data := map[string]any{}
	resp := &logical.Response{Data: data}
	if kept {
		data["tombstone"] = name + "/" + e.Incarnation
	}
	if ids := e.PendingRootRevocations; len(ids) > 0 {
		data["root_revocations_pending"] = slices.Clone(ids)
		resp.AddWarning(fmt.Sprintf("%d replaced root credential(s) of %q (%s) could not be revoked: %s; the tombstone %s/%s keeps them and tidy retries their revocation",
			len(ids), name, strings.Join(ids, ", "), e.LastRootRotationError, name, e.Incarnation))
		b.Logger().Warn("deleted provider kept as a tombstone: replaced roots not yet revoked", "provider", name, "incarnation", e.Incarnation, "root_key_ids", ids)
	}
	if e.RootRotatedAt.After(e.RootSetAt) {
		id := cmp.Or(e.RootKeyID, "(id unknown)")
		data["root_left_live"] = e.RootKeyID
		resp.AddWarning(fmt.Sprintf("the root credential of %q (root_key_id %s) was created by Vault's root rotation at %s, so only Vault knew its secret; it stays valid at the provider: delete it there",
			name, id, formatTime(e.RootRotatedAt)))
		b.Logger().Warn("deleted a provider whose root credential only Vault knew; it stays valid at the provider", "provider", name, "root_key_id", e.RootKeyID)
	}
	if len(data) == 0 {
		return nil
	}
	return resp
}

func (b *backend) providerList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, providerPrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

// checkEndpoint is checkURL and, with transport (the URL or the
// permission is being written), checkTransport.
func checkEndpoint(raw string, allowInsecure, transport bool) string {
	if msg := checkURL(raw); msg != "" || !transport {
		return msg
	}
	return checkTransport(raw, allowInsecure)
}

// checkURL returns why raw is not an absolute http(s) URL, or "".
func checkURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return "not a URL" // the parser's text may quote a password
		}
		return fmt.Sprintf("not a URL: %v", errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return "has no host"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "must not have a query or fragment"
	}
	return ""
}

// checkTransport returns why a base URL (already checked by checkURL) may
// not carry the root credential, or "": it must be https unless its host
// is loopback or allowInsecure is set, and it must not hold a user name or
// password (the message never repeats them).
func checkTransport(raw string, allowInsecure bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "not a URL"
	}
	if u.User != nil {
		return "must not contain a user name or password (user:password@); give credentials in the type's own fields"
	}
	if u.Scheme == "http" && !allowInsecure && !loopbackHost(u.Hostname()) {
		return "must be https (plain http only to a loopback host, 127.0.0.0/8, ::1 or localhost, or with allow_insecure_http=true)"
	}
	return ""
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// destinationChanged reports whether a write changes where the root
// credential is sent: base_url, a field of the type that selects the host
// or site, or allow_insecure_http turned on.
func destinationChanged(typ *clients.Type, old, e *providerEntry) bool {
	if old.BaseURL != e.BaseURL || (e.AllowInsecureHTTP && !old.AllowInsecureHTTP) {
		return true
	}
	for _, f := range typ.Fields {
		if f.Destination && old.Fields[f.Name] != e.Fields[f.Name] {
			return true
		}
	}
	return false
}

// credentialResent is the 400 for a destination change that does not carry
// the root credential: every credential field the provider holds must be
// in the same write, so whoever may point the provider elsewhere must
// already know what would be sent there.
func credentialResent(typ *clients.Type, e *providerEntry, data map[string]any) *logical.Response {
	var missing []string
	for _, f := range typ.Fields {
		if _, given := data[f.Name]; f.Sensitive && e.Fields[f.Name] != "" && !given {
			missing = append(missing, f.Name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	what := []string{"base_url"}
	for _, f := range typ.Fields {
		if f.Destination {
			what = append(what, f.Name)
		}
	}
	return logical.ErrorResponse("%s: required in the same write when %s or allow_insecure_http=true changes where the root credential is sent",
		strings.Join(missing, ", "), strings.Join(what, ", "))
}

// fieldErrorResponse turns a clients.FieldError into a 400 naming its field.
func fieldErrorResponse(err error) *logical.Response {
	var fe *clients.FieldError
	if errors.As(err, &fe) {
		return logical.ErrorResponse("%s: %s", fe.Field, fe.Message)
	}
	return nil
}

const providerHelpSyn = "Configure a provider instance: a third-party API and its root credential."

const providerHelpDesc = `
A provider is one account at a third-party API. "type" selects the API
(immutable); the type's own fields are flat, e.g.

    vault write thirdparty/providers/sg type=sendgrid api_key=SG.xxx

Sensitive fields (credentials) are write-only and stored seal-wrapped: a read
returns every other field plus root_key_id, root_rotated_at,
next_root_rotation and last_root_rotation_error. A field the chosen type does
not use is rejected. Updates are partial. When a credential is written, the
plugin checks it against the provider before storing it.

rotation_period / rotation_schedule (cron, UTC) / rotation_window /
disable_automated_rotation control automated rotation of the root credential
(see rotate-root/<name>). A provider that roles still use cannot be deleted.
`

// sensitiveFields names a type's credential fields.
func sensitiveFields(t *clients.Type) []string {
	var out []string
	for _, f := range t.Fields {
		if f.Sensitive {
			out = append(out, f.Name)
		}
	}
	return out
}
