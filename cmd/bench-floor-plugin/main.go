// Command bench-floor-plugin is the floor `make bench` measures creds reads
// against: an external secrets plugin, served exactly like the real one
// (internal/pluginserve), whose creds/<role> read answers a constant leased
// key of the same shape as a dual role's (the same data and internal data
// fields, values of the same length) without storage, locks or metrics.
// What a dual read costs above it is the real plugin's own work; what it
// costs above a kv-v2 write is the price of any leased external plugin read.
// Not for use outside the bench: its leases name no real key.
package main

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/pluginserve"
)

func main() { pluginserve.Main(factory) }

const secretType = "floor_key"

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &framework.Backend{
		BackendType: logical.TypeLogical,
		Help:        "The floor of make bench: a constant leased key.",
		Paths: []*framework.Path{{
			Pattern: "creds/" + framework.GenericNameRegex("role"),
			Fields: map[string]*framework.FieldSchema{
				"role": {Type: framework.TypeLowerCaseString, Required: true},
			},
			// Callbacks, not Operations: with Operations the framework asks
			// Vault for the replication state on every request, a round trip
			// the real plugin answers from a cache (backend/system_view.go).
			Callbacks: map[logical.Operation]framework.OperationFunc{logical.ReadOperation: read},
		}},
		Secrets: []*framework.Secret{{
			Type: secretType,
			Renew: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
				return nil, nil
			},
			Revoke: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
				return nil, nil
			},
		}},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// The values have the lengths of a demo provider key of the bench's dual
// role.
const (
	floorKey  = "demo_0123456789abcdef0123456789abcdef01234567"
	floorID   = "key_0123456789ab"
	floorName = "vault-tp0123456789-bench-dual-rotation-1796540000-Qw81zX"
	// A dual key at the demo provider expires (RFC 3339, seconds).
	floorExpiry = "2027-01-06T03:58:23Z"
)

func read(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role := d.Get("role").(string)
	resp := &logical.Response{
		Secret: &logical.Secret{
			LeaseOptions: logical.LeaseOptions{TTL: time.Hour, MaxTTL: 2 * time.Hour, Renewable: true},
			InternalData: map[string]any{
				"secret_type": secretType,
				"provider":    "demo", "role": role, "mode": "dual", "key_id": floorID, "key_name": floorName,
			},
		},
		Data: map[string]any{
			"api_key": floorKey, "key_id": floorID, "key_name": floorName,
			"provider": "demo", "role": role, "mode": "dual", "expires_at": floorExpiry,
		},
	}
	return resp, nil
}
