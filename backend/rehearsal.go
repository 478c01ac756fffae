package backend

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// A rehearsal (rotate-role or rotate-root with dry_run=true) runs the
// provider calls of a rotation — create, verify, revoke — on a throw-away
// key or root, and reports each step. Nothing is promoted and nothing is
// stored but the WAL entry that names the throw-away key while it exists,
// so that a crash mid-rehearsal still gets it revoked by rollback.
type rehearsal struct {
	steps  []map[string]any
	failed string // the first step that failed
	err    error
}

// run times one step (wall clock: it measures provider latency) and
// records its outcome.
func (r *rehearsal) run(step string, f func() error) bool {
	start := time.Now()
	err := f()
	s := map[string]any{"step": step, "ok": err == nil, "duration_ms": time.Since(start).Milliseconds(), "error": ""}
	if err != nil {
		s["error"] = err.Error()
		if r.err == nil {
			r.failed, r.err = step, err
		}
	}
	r.steps = append(r.steps, s)
	return err == nil
}

// verifyAndDiscard runs the verify and revoke steps (named with suffix) on
// the rehearsal's key or root, revoking it whatever the verify said (its
// WAL record goes once it is revoked), and says what is left.
func verifyAndDiscard[S any](ctx context.Context, r *rehearsal, suffix string, j journal, ops secretOps[S], sec S) string {
	r.run("verify"+suffix, func() error { return ops.verify(ctx, sec) })
	if !r.run("revoke"+suffix, func() error { return discardRecorded(ctx, j, ops, sec) }) {
		return fmt.Sprintf("the rehearsal %s %s could not be revoked: its WAL entry stays and WAL rollback revokes it", ops.what, ops.id(sec))
	}
	return fmt.Sprintf("the rehearsal %s %s was revoked; nothing is left live", ops.what, ops.id(sec))
}

// stepCredential names the credential each step's call is made with.
var stepCredential = map[string]string{
	"create": "the stored root", "revoke": "the stored root", "verify": "the new key",
	"create_root": "the stored root", "revoke_root": "the stored root", "verify_root": "the new root",
}

// failure is the error of a failed rehearsal: the step and the call that
// failed (with a hint when the provider refused the credential), every
// step's outcome and latency, and what is left.
func (r *rehearsal) failure(what, left string) error {
	hint := ""
	var he *httpx.Error
	if errors.As(r.err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
		hint = fmt.Sprintf(" (%s lacks the permission for this call)", stepCredential[r.failed])
	}
	var done []string
	for _, s := range r.steps {
		outcome := "ok"
		if !s["ok"].(bool) {
			outcome = "failed"
		}
		done = append(done, fmt.Sprintf("%s %s (%dms)", s["step"], outcome, s["duration_ms"]))
	}
	return fmt.Errorf("dry run of %s failed at step %s: %w%s; steps: %s; %s", what, r.failed, r.err, hint, strings.Join(done, ", "), left)
}

// createdNothing is what a failed create leaves: nothing, or, when the
// provider's answer does not rule out that it acted, whatever rollback of
// the create's WAL entry finds by name.
func createdNothing(err error) string {
	if err == nil || definitelyNotCreated(err) {
		return "nothing was created"
	}
	return "the create's outcome is unknown: its WAL entry stays and WAL rollback revokes what it made"
}

func (b *backend) rehearseRole(ctx context.Context, s logical.Storage, name string, role *roleEntry, st *dualState) (*logical.Response, error) {
	pc, release, err := b.client(ctx, s, role.Provider)
	if err != nil {
		return nil, err
	}
	defer release()
	if pc == nil {
		return nil, fmt.Errorf("provider %q does not exist", role.Provider)
	}
	if resp := keySlotsRehearsalCheck(role.Provider, st, pc.api.Capabilities()); resp != nil {
		return resp, nil
	}
	pc = pc.withDeadline()
	var r rehearsal
	var key clients.Key
	var att *keyAttempt
	created := r.run("create", func() (err error) {
		if att, err = b.newKeyAttempt(ctx, s, pc, name, role, purposeDual, "rehearsal"); err != nil {
			return err
		}
		key, err = createRecorded(ctx, att.journal, att.ops)
		return err
	})
	left := createdNothing(r.err)
	if created {
		left = verifyAndDiscard(ctx, &r, "", att.journal, att.ops, key)
	}
	if r.err != nil {
		return nil, r.failure(fmt.Sprintf("role %q", name), left)
	}
	current := ""
	if st != nil && st.Current != nil {
		current = st.Current.ID
	}
	return &logical.Response{Data: map[string]any{
		"dry_run":              true,
		"key_id":               key.ID,
		"key_name":             key.Name,
		"requested_expires_at": formatTime(att.requested),
		"expires_at":           formatTime(key.ExpiresAt),
		"current_key_id":       current,
		"steps":                r.steps,
	}}, nil
}

// rehearseRoot creates a root credential as a rotation would, verifies it
// and discards it with the stored root. Roll-style types cannot rehearse:
// their create kills the stored root.
func (b *backend) rehearseRoot(ctx context.Context, s logical.Storage, name string, e *providerEntry) (*logical.Response, error) {
	pc, err := b.buildClient(name, e)
	if err != nil {
		return nil, err
	}
	pc = pc.withDeadline()
	if pc.api.Capabilities().NativeRoll {
		return logical.ErrorResponse("dry_run: provider type %q rotates its root with a roll (the old root stops working at once), so a rotation cannot be rehearsed", e.Type), nil
	}
	var r rehearsal
	var root clients.Root
	j, ops := b.newRootAttempt(s, pc, name, "rehearsal")
	created := r.run("create_root", func() (err error) {
		root, err = createRecorded(ctx, j, ops)
		return err
	})
	left := createdNothing(r.err)
	if created {
		left = verifyAndDiscard(ctx, &r, "_root", j, ops, root)
	}
	if r.err != nil {
		return nil, r.failure(fmt.Sprintf("the root of provider %q", name), left)
	}
	return &logical.Response{Data: map[string]any{
		"dry_run":      true,
		"root_key_id":  root.ID,
		"expires_at":   formatTime(root.ExpiresAt),
		"current_root": e.RootKeyID,
		"steps":        r.steps,
	}}, nil
}
