package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathRotate(b *backend) []*framework.Path {
	role := rotatePath("rotate-role/", "Name of the dual role to rotate.",
		"Rehearse instead of rotating: create a key with the role's options, verify it, revoke it, and report each step's outcome and latency. Nothing is promoted or stored (but a WAL entry while the key exists).",
		underLock(b, "role", getRole, b.rotateRoleWrite), "Rotate a dual role's key now.", "Rotate a dual role's key now.", rotateRoleHelp)
	role.Fields["revoke_previous"] = &framework.FieldSchema{Type: framework.TypeBool, Default: false,
		Description: "Revoke the replaced key (and any previous key) at once instead of after the overlap. The response to a leaked key: readers holding the old key lose it immediately."}
	root := rotatePath("rotate-root/", "Name of the provider whose root credential to rotate.",
		"Rehearse instead of rotating: create a root credential as a rotation would, verify it, revoke it with the stored root, and report each step's outcome and latency. Nothing is stored (but a WAL entry while it exists). Not for roll-style types.",
		underLock(b, "provider", getProvider, b.rotateRootWrite), "Rotate a provider's root credential now.", "Rotate a provider's root credential now, so that only Vault knows it.", rotateRootHelp)
	return []*framework.Path{role, root}
}

// underLock is a rotation handler: it reads the owner the name field names
// under the owner's lock (lockKind), a missing one being a 400 naming the
// field, and hands it to write.
func underLock[T any](b *backend, lockKind string, get func(context.Context, logical.Storage, string) (*T, error),
	write func(ctx context.Context, req *logical.Request, d *framework.FieldData, name string, v *T) (*logical.Response, error)) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		name := d.Get("name").(string)
		defer b.locks.lock(lockKey(lockKind, name))()
		v, err := get(ctx, req.Storage, name)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return logical.ErrorResponse("name: no %s named %q", lockKind, name), nil
		}
		return write(ctx, req, d, name, v)
	}
}

// rotatePath is a manual rotation endpoint: prefix + name, with dry_run,
// written (forwarded to the active node) to rotate.
func rotatePath(prefix, nameDesc, dryRunDesc string, write framework.OperationFunc, summary, synopsis, help string) *framework.Path {
	return &framework.Path{
		Pattern: prefix + nameRegex("name"),
		Fields: map[string]*framework.FieldSchema{
			"name":    {Type: framework.TypeLowerCaseString, Required: true, Description: nameDesc},
			"dry_run": {Type: framework.TypeBool, Default: false, Description: dryRunDesc},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{Callback: write, Summary: summary,
				ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
		},
		HelpSynopsis:    synopsis,
		HelpDescription: help,
	}
}

func (b *backend) rotateRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData, name string, role *roleEntry) (*logical.Response, error) {
	if role.Mode != modeDual {
		return logical.ErrorResponse("name: role %q is %s; only dual roles rotate", name, role.Mode), nil
	}
	st, err := getDualState(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if d.Get("dry_run").(bool) {
		if d.Get("revoke_previous").(bool) {
			return logical.ErrorResponse("dry_run: a rehearsal revokes nothing of the role's; drop revoke_previous"), nil
		}
		return b.rehearseRole(ctx, req.Storage, name, role, st)
	}
	if st == nil {
		st = &dualState{}
	}
	err = b.rotateRole(ctx, req.Storage, name, role, st, rotateOptions{manual: true, revokePrevious: d.Get("revoke_previous").(bool)})
	var notRetired errPreviousNotRetired
	if errors.As(err, &notRetired) {
		return logical.ErrorResponse("%s", err.Error()), nil
	}
	if err != nil {
		b.metrics.rotation("role", name, "failure")
		// On-call sees a failed manual rotation in status as they see a
		// scheduled one; the schedule and its retries stay as they were.
		// st matches storage here (rotateRole restores it when not stored).
		st.LastError, st.LastErrorAt = "manual rotation: "+err.Error(), b.clock.Now()
		pctx, cancel := persistContext(ctx)
		defer cancel()
		if perr := b.putDualState(pctx, req.Storage, name, st); perr != nil {
			b.Logger().Error("storing the manual rotation failure", "role", name, "error", perr)
		}
		return nil, fmt.Errorf("rotating role %q: %w", name, err)
	}
	b.metrics.rotation("role", name, "success")
	data := map[string]any{
		"key_id":               st.Current.ID,
		"next_rotation":        formatTime(st.NextRotation),
		"previous_key_id":      "",
		"previous_key_retires": "",
	}
	if p := st.Previous; p != nil {
		data["previous_key_id"], data["previous_key_retires"] = p.ID, formatTime(p.RetireAt)
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) rotateRootWrite(ctx context.Context, req *logical.Request, d *framework.FieldData, name string, e *providerEntry) (*logical.Response, error) {
	if !e.CanRotateRoot {
		return logical.ErrorResponse("name: provider %q (type %s, as configured) cannot rotate its root credential", name, e.Type), nil
	}
	if d.Get("dry_run").(bool) {
		if len(e.PendingRootRevocations) > 0 {
			return logical.ErrorResponse("dry_run: the root replaced by the last rotation of %q is not revoked yet; a rehearsal would make a third live root", name), nil
		}
		return b.rehearseRoot(ctx, req.Storage, name, e)
	}
	oldID := e.RootKeyID
	ne, err := b.rotateRoot(ctx, req.Storage, name, e)
	var oldLive errOldRootLive
	if errors.As(err, &oldLive) {
		// At most two roots live: the last rotation is settled first.
		return logical.ErrorResponse("name: provider %q: %s", name, err.Error()), nil
	}
	if err != nil {
		b.metrics.rotation("root", name, "failure")
		// Recorded for status like a scheduled failure.
		b.storeRootFailure(ctx, req.Storage, name, e.RootKeyID, func(cur *providerEntry) {
			cur.LastRootRotationError = "manual rotation: " + err.Error()
		})
		return nil, fmt.Errorf("rotating the root of provider %q: %w", name, err)
	}
	b.metrics.rotation("root", name, "success")
	resp := &logical.Response{Data: map[string]any{
		"root_key_id":          ne.RootKeyID,
		"previous_root_key_id": oldID,
		"root_rotated_at":      formatTime(ne.RootRotatedAt),
		"next_root_rotation":   formatTime(b.nextRootRotation(ne)),
	}}
	if len(ne.PendingRootRevocations) > 0 {
		resp.AddWarning("the new root is stored, but revoking the old one failed and will be retried: " + ne.LastRootRotationError)
	}
	return resp, nil
}

const rotateRoleHelp = `
Rotates a dual role's key now: a new key is created, verified with the
provider, and made current; the old key becomes the previous key and is
revoked once no lease of it can still run (at least the role's overlap; at
most the role's max_ttl, else the mount's max lease TTL), so readers holding
it are not cut off.
The schedule restarts from now. If the role still has a previous key that
has not reached its retire time, the rotation is refused (it would make a
third live key) unless revoke_previous=true.

revoke_previous=true is the response to a leaked key: the replaced key (and
any previous key) is revoked at once. Returns the new key's id (never the
secret) and the previous key's retire time.

dry_run=true rehearses the rotation: a key is created with the role's
options, verified and revoked; the answer lists each step (create, verify,
revoke) with its outcome and latency. Nothing is promoted or stored except
the WAL entry that gets the key revoked by rollback should Vault stop
mid-rehearsal. A failed step is an error naming the step and the call.
`

const rotateRootHelp = `
Rotates the provider's root (admin) credential now: a new root is created,
verified with itself, stored (seal-wrapped), and then the old root is
revoked. Provider types whose API only offers a roll (the old value dies at
once) store the new root before anything else. Afterwards only Vault knows
the root. Returns the new root's id, never the secret. Automated rotation is
set with the provider's rotation_period or rotation_schedule.

dry_run=true rehearses the rotation: a root is created as a rotation would
create it, verified with itself and revoked with the stored root; the answer
lists each step (create_root, verify_root, revoke_root) with its outcome and
latency. The stored root is unchanged. Roll-style types cannot rehearse.
`
