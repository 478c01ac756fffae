package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

func pathCreds(b *backend) []*framework.Path {
	return []*framework.Path{{
		Pattern: "creds/" + nameRegex("role"),
		Fields: map[string]*framework.FieldSchema{
			"role": {Type: framework.TypeLowerCaseString, Required: true, Description: "Name of the role to issue a key for."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{Callback: b.credsRead,
				Summary: "Issue a leased key: a new key (dynamic roles) or the current key (dual roles)."},
		},
		HelpSynopsis:    credsHelpSyn,
		HelpDescription: credsHelpDesc,
	}}
}

func (b *backend) credsRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	roleName := d.Get("role").(string)
	role, err := b.cachedRole(ctx, req.Storage, roleName)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return logical.ErrorResponse("role: no role named %q", roleName), nil
	}
	if role.Mode == modeDual {
		// Dual reads serve the stored key; no provider call.
		return b.issueDual(ctx, req, roleName, role)
	}
	pc, release, err := b.client(ctx, req.Storage, role.Provider)
	if err != nil {
		return nil, err
	}
	defer release()
	if pc == nil {
		return nil, fmt.Errorf("role %q: provider %q does not exist", roleName, role.Provider)
	}
	// Someone waits on this read: its provider calls go before scheduled
	// work on the provider's request budget.
	return b.issueDynamic(httpx.Interactive(ctx), req, roleName, role, pc.withDeadline())
}

// issueDynamic creates one key for one lease. A ledger entry naming the
// attempt exists from before the create until the lease is revoked, so a
// key whose lease Vault never persisted (or never revoked) is found and
// revoked by tidy once the entry's lease end has passed.
func (b *backend) issueDynamic(ctx context.Context, req *logical.Request, roleName string, role *roleEntry, pc *providerClient) (*logical.Response, error) {
	ttl, maxTTL := b.dynamicTTLs(role)
	marker, err := b.mountMarker(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	name, err := renderKeyName(role.NameTemplate, nameVars{Role: roleName, Display: req.DisplayName, Marker: marker})
	if err != nil {
		return nil, fmt.Errorf("role %q: name_template: %w", roleName, err)
	}
	now := b.clock.Now()
	var expiresAt time.Time
	caps := pc.api.Capabilities()
	if caps.Expiry {
		// Rounded up to the second, so the key never expires before the
		// lease's max TTL.
		expiresAt = now.Add(maxTTL + time.Second - 1).Truncate(time.Second)
	}

	unique := nameTemplateUnique(role.NameTemplate)
	entry, err := newLedgerEntry(role.Provider, pc.entry.Incarnation, roleName, name, unique, now, now.Add(ttl))
	if err != nil {
		return nil, err
	}
	// The rotation job's create sequence, with the ledger entry as the
	// record: written before the create, naming the key's id once known
	// (unless the name finds it: a type that lists keys by name, with a
	// template that never repeats a name).
	j := &ledgerJournal{b: b, s: req.Storage, entry: entry, byName: caps.ListByName && unique}
	ops := secretOps[clients.Key]{
		what: "key",
		create: func(ctx context.Context) (clients.Key, error) {
			return pc.api.CreateKey(ctx, clients.KeyRequest{Name: name, Scopes: role.Scopes, Parameters: role.Parameters, ExpiresAt: expiresAt})
		},
		id:         func(k clients.Key) string { return k.ID },
		discard:    b.discardKey(pc),
		notCreated: definitelyNotCreated,
	}
	key, err := createRecorded(ctx, j, ops)
	if err != nil {
		if resp := fieldErrorResponse(err); resp != nil {
			return resp, nil
		}
		return nil, err
	}
	b.metrics.keyIssued(roleName)
	if !key.ExpiresAt.IsZero() {
		// The provider may set an earlier expiry than asked (a cap, a date):
		// the lease ends with the key (invariant 6).
		left := key.ExpiresAt.Sub(b.clock.Now()).Truncate(time.Second)
		if left <= 0 {
			_ = discardRecorded(ctx, j, ops, key)
			return nil, fmt.Errorf("provider %q returned key %s already expired (expires_at %s)", role.Provider, key.ID, formatTime(key.ExpiresAt))
		}
		maxTTL = min(maxTTL, left)
		ttl = min(ttl, maxTTL)
	}

	data := keyData(key, role.Provider, roleName, modeDynamic)
	internal := map[string]any{
		"provider": role.Provider, "role": roleName, "mode": modeDynamic,
		"key_id": key.ID, "key_name": key.Name,
		"incarnation": pc.entry.Incarnation, "ledger_id": entry.ID,
	}
	if !key.ExpiresAt.IsZero() {
		internal["expires_at"] = formatTime(key.ExpiresAt)
	}
	resp := b.Secret(secretKeyType).Response(data, internal)
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	resp.Secret.Renewable = true
	return resp, nil
}

// dynamicTTLs returns a dynamic lease's TTL and max TTL: the role's values,
// else the mount's, with ttl never above max.
func (b *backend) dynamicTTLs(role *roleEntry) (ttl, maxTTL time.Duration) {
	ttl, maxTTL = role.TTL, role.MaxTTL
	sysDef, sysMax := b.leaseTTLs()
	if ttl == 0 {
		ttl = sysDef
	}
	if maxTTL == 0 || maxTTL > sysMax {
		maxTTL = sysMax
	}
	if ttl > maxTTL {
		ttl = maxTTL
	}
	return ttl, maxTTL
}

// discardKey is the discard step of a new key that will not be used: it is
// revoked (revokeNow); when that fails its record (WAL entry, ledger entry)
// stays for rollback or tidy to retry.
func (b *backend) discardKey(pc *providerClient) func(context.Context, clients.Key) error {
	return func(_ context.Context, k clients.Key) error {
		err := b.revokeNow(pc, k.ID)
		if err != nil {
			b.Logger().Warn("could not revoke a new key that will not be used; WAL rollback or tidy will retry", "provider", pc.name, "key_id", k.ID, "error", err)
		}
		return err
	}
}

// revokeNow deletes a key on a fresh context: the request's own may be
// what ran out.
func (b *backend) revokeNow(pc *providerClient, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), pc.entry.RequestTimeout)
	defer cancel()
	return pc.api.RevokeKey(ctx, id)
}

// abandonEntry settles the ledger entry of a key that no lease will hold:
// gone when the key certainly does not exist, else due for tidy at once
// (its lease end set to now) instead of after the lease's TTL. It runs on
// a fresh context, so a request that timed out still records it.
func (b *backend) abandonEntry(s logical.Storage, entry *ledgerEntry, gone bool) {
	ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
	defer cancel()
	if gone {
		if err := deleteLedger(ctx, s, entry.Provider, entry.Incarnation, entry.ID); err != nil {
			b.Logger().Warn("could not delete the ledger entry of a key that was never created; tidy will remove it", "provider", entry.Provider, "error", err)
			return
		}
		b.ledgerCounts.add(entry.Provider, -1)
		return
	}
	entry.ExpiresAt = b.clock.Now()
	if err := putLedger(ctx, s, entry); err != nil {
		b.Logger().Warn("could not mark the ledger entry of an abandoned key; tidy revokes it after its lease end", "provider", entry.Provider, "error", err)
	}
}

// definitelyNotCreated reports whether a failed create certainly left
// nothing at the provider (a 4xx answer or a user error), so its ledger (or
// WAL) entry can go. Timeouts and 5xx keep the entry for tidy (rollback) to
// check.
//
// A refused redirect (a 3xx: the HTTP layer never follows one to another
// host, nor on the same host unless the type documents it) is not "nothing
// created": the target got nothing, but the origin answered after reading
// the whole request and may have acted on it first (a proxy that creates,
// then redirects to the new resource; a misconfigured gateway). The entry
// stays, and tidy (rollback, for a dual key) looks for the key by name.
func definitelyNotCreated(err error) bool {
	var he *httpx.Error
	if errors.As(err, &he) {
		return he.Status >= 400 && he.Status < 500 && he.Status != http.StatusRequestTimeout && he.Status != http.StatusTooManyRequests
	}
	var fe *clients.FieldError
	return errors.As(err, &fe)
}

// keyData is the creds response data of a key.
func keyData(key clients.Key, provider, role, mode string) map[string]any {
	data := map[string]any{
		"api_key":  key.Secret,
		"key_id":   key.ID,
		"key_name": key.Name,
		"provider": provider,
		"role":     role,
		"mode":     mode,
	}
	if !key.ExpiresAt.IsZero() {
		data["expires_at"] = formatTime(key.ExpiresAt)
	}
	for k, v := range key.Extra {
		if _, taken := data[k]; !taken {
			data[k] = v
		}
	}
	return data
}

const credsHelpSyn = "Issue a leased API key for a role."

const credsHelpDesc = `
Reading creds/<role> returns api_key (the secret), key_id, key_name,
provider, role, mode, expires_at when the provider sets one, and any
provider-specific extras, always with a lease.

Dynamic roles create a new key per read; renewing extends the lease up to the
role's max_ttl; revoking the lease deletes the key at the provider (a key
already gone counts as deleted).

Dual roles return the role's current key to every reader without writing to
storage (performance standbys serve them). The lease is capped so that it
ends before the key is revoked; revoking it does not delete the shared key.
`
