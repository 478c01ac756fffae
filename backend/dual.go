package backend

import (
	"time"

	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

const roleKeysPrefix = "config/keys/"

// applyDualFields validates and applies the dual-only fields of a role.
func (b *backend) applyDualFields(d *framework.FieldData, r *roleEntry, creating bool) *logical.Response {
	return logical.ErrorResponse("mode: dual roles need the rotation engine, which this build does not have yet; use mode=dynamic")
}

func (b *backend) fillDualRead(ctx context.Context, s logical.Storage, name string, r *roleEntry, data map[string]any) error {
	return nil
}

func (b *backend) deleteDualKeys(ctx context.Context, s logical.Storage, name string, r *roleEntry) error {
	return nil
}

func (b *backend) nextRootRotation(e *providerEntry) time.Time { return time.Time{} }

func (b *backend) issueDual(ctx context.Context, req *logical.Request, roleName string, role *roleEntry, pc *providerClient) (*logical.Response, error) {
	return nil, nil
}

func (b *backend) renewDual(ctx context.Context, req *logical.Request, roleName string, role *roleEntry) (*logical.Response, error) {
	return nil, nil
}
