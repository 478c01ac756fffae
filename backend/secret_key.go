package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const secretKeyType = "thirdparty_key"

func secretKey(b *backend) *framework.Secret {
	return &framework.Secret{
		Type: secretKeyType,
		Fields: map[string]*framework.FieldSchema{
			"api_key":  {Type: framework.TypeString, Description: "The API key (secret)."},
			"key_id":   {Type: framework.TypeString, Description: "The key's id at the provider."},
			"key_name": {Type: framework.TypeString, Description: "The key's name at the provider."},
		},
		Renew:  b.keyRenew,
		Revoke: b.keyRevoke,
	}
}

func internalString(req *logical.Request, k string) string {
	s, _ := req.Secret.InternalData[k].(string)
	return s
}

func (b *backend) keyRenew(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	roleName := internalString(req, "role")
	role, err := b.cachedRole(ctx, req.Storage, roleName)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return nil, fmt.Errorf("role %q no longer exists; the lease cannot be renewed", roleName)
	}
	if internalString(req, "mode") == modeDual {
		return b.renewDual(ctx, req, roleName, role)
	}
	ttl, maxTTL := b.dynamicTTLs(role)
	// A lease never outlives its key's provider-side expiry, set when it was
	// issued, even if max_ttl has been raised since (invariant 6).
	if exp, err := time.Parse(time.RFC3339, internalString(req, "expires_at")); err == nil {
		if !b.clock.Now().Before(exp) {
			return nil, fmt.Errorf("key %s expired at the provider at %s; read new credentials", internalString(req, "key_id"), formatTime(exp))
		}
		if issued := req.Secret.IssueTime; !issued.IsZero() {
			maxTTL = min(maxTTL, exp.Sub(issued).Truncate(time.Second))
			ttl = min(ttl, maxTTL)
		}
	}
	if err := b.moveLedgerExpiry(ctx, req, ttl); err != nil {
		return nil, err
	}
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	return resp, nil
}

// moveLedgerExpiry moves a renewed lease's ledger entry to the lease's new
// end (Vault caps ttl at the lease's max TTL), so tidy leaves the key
// alone while the lease runs. A lease issued before the ledger existed has
// no entry; one whose entry is gone had its key revoked by tidy.
func (b *backend) moveLedgerExpiry(ctx context.Context, req *logical.Request, ttl time.Duration) error {
	id := internalString(req, "ledger_id")
	if id == "" {
		return nil
	}
	provider, inc := internalString(req, "provider"), internalString(req, "incarnation")
	e, err := getLedger(ctx, req.Storage, provider, inc, id)
	if err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("key %s is no longer recorded (tidy revoked it after its lease had ended); read new credentials", internalString(req, "key_id"))
	}
	end := b.clock.Now().Add(ttl)
	if !end.After(e.ExpiresAt) {
		return nil
	}
	e.ExpiresAt = end
	return putLedger(ctx, req.Storage, e)
}

func (b *backend) keyRevoke(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if internalString(req, "mode") == modeDual {
		// A dual key is shared; the rotation engine retires it.
		return nil, nil
	}
	providerName, keyID := internalString(req, "provider"), internalString(req, "key_id")
	inc := internalString(req, "incarnation")
	pc, release, err := b.clientFor(ctx, req.Storage, providerName, inc)
	if err != nil {
		return nil, err
	}
	defer release()
	if pc == nil {
		// The incarnation's config is gone: a lease issued before the
		// ledger existed whose provider was deleted before the upgrade, or
		// one whose tombstone an operator deleted (tombstones/), which
		// forgets its keys.
		b.Logger().Warn("provider of a leased key no longer exists; key left to expire", "provider", providerName, "incarnation", inc, "key_id", keyID)
		return nil, nil
	}
	if err := pc.api.RevokeKey(ctx, keyID); err != nil {
		return nil, fmt.Errorf("revoking key %s: %w", keyID, err)
	}
	b.metrics.keyRevoked(internalString(req, "role"))
	if id := internalString(req, "ledger_id"); id != "" {
		if err := deleteLedger(ctx, req.Storage, providerName, inc, id); err != nil {
			// The key is gone: tidy drops the entry when it finds it so.
			b.Logger().Warn("revoked a key but could not delete its ledger entry", "provider", providerName, "key_id", keyID, "error", err)
		} else {
			b.ledgerCounts.add(providerName, -1)
		}
	}
	if pc.tombstoned {
		if _, err := b.removeTombstoneIfDone(ctx, req.Storage, providerName, pc.entry.Incarnation); err != nil {
			b.Logger().Warn("could not check the tombstone of a deleted provider; tidy will", "provider", providerName, "error", err)
		}
	}
	return nil, nil
}
