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
	resp := &logical.Response{Secret: req.Secret}
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = maxTTL
	return resp, nil
}

func (b *backend) keyRevoke(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if internalString(req, "mode") == modeDual {
		// A dual key is shared; the rotation engine retires it.
		return nil, nil
	}
	providerName, keyID := internalString(req, "provider"), internalString(req, "key_id")
	pc, release, err := b.client(ctx, req.Storage, providerName)
	if err != nil {
		return nil, err
	}
	defer release()
	if pc == nil {
		// Without the provider's config the key cannot be reached; it
		// expires at the provider where the type supports expiry.
		b.Logger().Warn("provider of a leased key no longer exists; key left to expire", "provider", providerName, "key_id", keyID)
		return nil, nil
	}
	if err := pc.api.RevokeKey(ctx, keyID); err != nil {
		return nil, fmt.Errorf("revoking key %s: %w", keyID, err)
	}
	b.metrics.keyRevoked(internalString(req, "role"))
	return nil, nil
}
