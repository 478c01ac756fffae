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
	return b.issueDynamic(ctx, req, roleName, role, pc.withDeadline())
}

// issueDynamic creates one key for one lease. A WAL entry exists from
// before the create until the lease is returned, naming the key's id as
// soon as it is known, so a key that never reaches a lease is revoked by
// rollback.
func (b *backend) issueDynamic(ctx context.Context, req *logical.Request, roleName string, role *roleEntry, pc *providerClient) (*logical.Response, error) {
	ttl, maxTTL := b.dynamicTTLs(role)
	name, err := renderKeyName(role.NameTemplate, roleName, req.DisplayName)
	if err != nil {
		return nil, fmt.Errorf("role %q: name_template: %w", roleName, err)
	}
	var expiresAt time.Time
	if pc.api.Capabilities().Expiry {
		// Rounded up to the second, so the key never expires before the
		// lease's max TTL.
		expiresAt = b.clock.Now().Add(maxTTL + time.Second - 1).Truncate(time.Second)
	}

	wal := walKey{Provider: role.Provider, Role: roleName, Name: name, Purpose: purposeDynamic, UniqueName: nameTemplateUnique(role.NameTemplate)}
	walID, err := framework.PutWAL(ctx, req.Storage, walKindKey, &wal)
	if err != nil {
		return nil, fmt.Errorf("writing WAL: %w", err)
	}
	key, err := pc.api.CreateKey(ctx, clients.KeyRequest{
		Name: name, Scopes: role.Scopes, Parameters: role.Parameters, ExpiresAt: expiresAt,
	})
	if err != nil {
		if definitelyNotCreated(err) {
			_ = framework.DeleteWAL(ctx, req.Storage, walID)
		}
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
			b.revokeAbandoned(pc, key.ID)
			return nil, fmt.Errorf("provider %q returned key %s already expired (expires_at %s)", role.Provider, key.ID, formatTime(key.ExpiresAt))
		}
		maxTTL = min(maxTTL, left)
		ttl = min(ttl, maxTTL)
	}

	wal.KeyID = key.ID
	walID2, err := framework.PutWAL(ctx, req.Storage, walKindKey, &wal)
	if err != nil {
		b.revokeAbandoned(pc, key.ID)
		return nil, fmt.Errorf("writing WAL: %w", err)
	}
	if err := framework.DeleteWAL(ctx, req.Storage, walID); err != nil {
		// A name-only entry left behind would let rollback find the key by
		// name and revoke it under a live lease.
		b.revokeAbandoned(pc, key.ID)
		return nil, fmt.Errorf("deleting WAL: %w", err)
	}

	data := keyData(key, role.Provider, roleName, modeDynamic)
	internal := map[string]any{
		"provider": role.Provider, "role": roleName, "mode": modeDynamic,
		"key_id": key.ID, "key_name": key.Name,
	}
	if !key.ExpiresAt.IsZero() {
		internal["expires_at"] = formatTime(key.ExpiresAt)
	}
	resp := b.Secret(secretKeyType).Response(data, internal)
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	resp.Secret.Renewable = true

	if err := framework.DeleteWAL(ctx, req.Storage, walID2); err != nil {
		// The key is about to be leased: a WAL left behind would revoke it.
		b.revokeAbandoned(pc, key.ID)
		return nil, fmt.Errorf("deleting WAL: %w", err)
	}
	return resp, nil
}

// dynamicTTLs returns a dynamic lease's TTL and max TTL: the role's values,
// else the mount's, with ttl never above max.
func (b *backend) dynamicTTLs(role *roleEntry) (ttl, maxTTL time.Duration) {
	ttl, maxTTL = role.TTL, role.MaxTTL
	if ttl == 0 {
		ttl = b.System().DefaultLeaseTTL()
	}
	if sysMax := b.System().MaxLeaseTTL(); maxTTL == 0 || maxTTL > sysMax {
		maxTTL = sysMax
	}
	if ttl > maxTTL {
		ttl = maxTTL
	}
	return ttl, maxTTL
}

// revokeAbandoned deletes a key that will not be handed out; if that fails,
// the WAL entry still naming it lets rollback finish the job.
func (b *backend) revokeAbandoned(pc *providerClient, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), pc.entry.RequestTimeout)
	defer cancel()
	if err := pc.api.RevokeKey(ctx, id); err != nil {
		b.Logger().Warn("could not revoke an abandoned key; WAL rollback will retry", "provider", pc.name, "key_id", id, "error", err)
	}
}

// definitelyNotCreated reports whether a failed create certainly left
// nothing at the provider (a 4xx answer or a user error), so its WAL entry
// can go. Timeouts and 5xx keep the entry for rollback to check.
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
