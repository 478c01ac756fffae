package backend

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// storedBytes is a storage entry's raw value, to prove a request left it
// exactly as it was.
func (e *env) storedBytes(key string) string {
	e.t.Helper()
	ent, err := e.storage.Get(context.Background(), key)
	if err != nil || ent == nil {
		e.t.Fatalf("%s: %v", key, err)
	}
	return string(ent.Value)
}

func (e *env) forbid(routes ...string) {
	e.t.Helper()
	k := demoserver.DefaultKnobs()
	k.Forbid = routes
	if err := e.demo.SetKnobs(k); err != nil {
		e.t.Fatal(err)
	}
}

// wantFailedStep asserts a failed rehearsal: a server error naming the
// step and the words given.
func wantFailedStep(t *testing.T, resp *logical.Response, err error, step string, words ...string) string {
	t.Helper()
	if err == nil {
		t.Fatalf("the rehearsal succeeded (%v); want a failure at %s", resp, step)
	}
	msg := err.Error()
	for _, w := range append([]string{"failed at step " + step}, words...) {
		if !strings.Contains(msg, w) {
			t.Fatalf("error %q does not name %q", msg, w)
		}
	}
	return msg
}

// dry_run on a role: a key is created with the role's options, verified
// and revoked; the report lists the steps; nothing of the role changes.
func TestRehearseRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"scopes": "mail.send"})
	before := e.storedBytes(roleKeysPrefix + "r")
	cur := e.state("r").Current.ID
	resp := e.must(logical.UpdateOperation, "rotate-role/r", map[string]any{"dry_run": true})
	steps := resp.Data["steps"].([]map[string]any)
	if len(steps) != 3 || steps[0]["step"] != "create" || steps[1]["step"] != "verify" || steps[2]["step"] != "revoke" {
		t.Fatalf("steps %v", steps)
	}
	for _, s := range steps {
		if s["ok"] != true || s["error"] != "" {
			t.Fatalf("step %v", s)
		}
		if _, ok := s["duration_ms"].(int64); !ok {
			t.Fatalf("step %v has no latency", s)
		}
	}
	id := resp.Data["key_id"].(string)
	e.wantRevoked(id, "the rehearsal key is %s, want revoked")
	var rehearsed demoserver.KeyInfo
	for _, k := range e.keys("") {
		if k.ID == id {
			rehearsed = k
		}
	}
	if !strings.Contains(rehearsed.Name, "rehearsal") || len(rehearsed.Scopes) != 1 || rehearsed.Scopes[0] != "mail.send" || rehearsed.ExpiresAt.IsZero() {
		t.Fatalf("rehearsal key %+v: want the role's scopes and expiry, named as a rehearsal", rehearsed)
	}
	if resp.Data["current_key_id"] != cur || e.keyState(cur) != demoserver.StateLive {
		t.Fatalf("current key %v (%s) changed", resp.Data["current_key_id"], e.keyState(cur))
	}
	if after := e.storedBytes(roleKeysPrefix + "r"); after != before {
		t.Fatalf("a rehearsal changed the role's stored keys:\n%s\n%s", before, after)
	}
	e.wantNoWAL(" after a rehearsal")
	if n := e.metricValue(`thirdparty_rotations_total{kind="role",name="r",result="success"}`); n != 0 {
		t.Fatalf("a rehearsal counted as %v rotations", n)
	}
	resp2, err := e.do(logical.UpdateOperation, "rotate-role/r", map[string]any{"dry_run": true, "revoke_previous": true})
	e.userError(resp2, err, "dry_run")
}

// A failed step names the step and the call, and nothing is left live.
func TestRehearseRoleFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", nil)
	before := e.storedBytes(roleKeysPrefix + "r")
	live := len(e.keys(demoserver.StateLive))

	e.forbid("POST /v1/keys")
	resp, err := e.do(logical.UpdateOperation, "rotate-role/r", map[string]any{"dry_run": true})
	wantFailedStep(t, resp, err, "create", "POST /v1/keys", "HTTP 403", "the stored root lacks the permission", "nothing was created")
	e.forbid()

	e.rejectVerify.Store(true)
	resp, err = e.do(logical.UpdateOperation, "rotate-role/r", map[string]any{"dry_run": true})
	wantFailedStep(t, resp, err, "verify", "GET /v1/whoami", "revoke ok", "nothing is left live")
	e.rejectVerify.Store(false)

	if n := len(e.keys(demoserver.StateLive)); n != live {
		t.Fatalf("%d live keys after failed rehearsals, want %d", n, live)
	}
	e.wantNoWAL(" after failed rehearsals")
	if after := e.storedBytes(roleKeysPrefix + "r"); after != before {
		t.Fatal("a failed rehearsal changed the role's stored keys (last_error included)")
	}
}

// A rehearsal key that could not be revoked (as if Vault stopped before
// the revoke) is revoked by WAL rollback.
func TestRehearsalKeyRevokedByRollback(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", nil)
	cur := e.state("r").Current.ID
	e.forbid("DELETE /v1/keys/{id}")
	resp, err := e.do(logical.UpdateOperation, "rotate-role/r", map[string]any{"dry_run": true})
	wantFailedStep(t, resp, err, "revoke", "WAL rollback revokes it")
	if e.walCount() != 1 || len(e.keys(demoserver.StateLive)) != 2 {
		t.Fatalf("%d WAL entries, %d live keys: want the rehearsal key live and named in a WAL entry", e.walCount(), len(e.keys(demoserver.StateLive)))
	}
	e.forbid()
	e.rollback()
	if live := e.keys(demoserver.StateLive); len(live) != 1 || live[0].ID != cur {
		t.Fatalf("live keys after rollback %+v, want only the current %s", live, cur)
	}
	e.wantNoWAL(" after rollback")

	// The same for a root.
	e.forbid("DELETE /v1/admin-keys/{id}")
	resp, err = e.do(logical.UpdateOperation, "rotate-root/p", map[string]any{"dry_run": true})
	wantFailedStep(t, resp, err, "revoke_root", "WAL rollback revokes it")
	if n := len(e.adminKeys(demoserver.StateLive)); n != 2 {
		t.Fatalf("%d live admin keys, want the rehearsal root still live", n)
	}
	e.forbid()
	e.rollback()
	if live := e.adminKeys(demoserver.StateLive); len(live) != 1 || live[0].ID != e.storedProvider("p").RootKeyID {
		t.Fatalf("live admin keys after rollback %+v", live)
	}
	e.wantNoWAL(" after the root's rollback")
}

// dry_run on a root: a root is created, verified with itself and revoked;
// the stored root is unchanged; a root lacking the permission fails at
// create_root with nothing left.
func TestRehearseRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	before := e.storedBytes(providerPrefix + "p")
	resp := e.must(logical.UpdateOperation, "rotate-root/p", map[string]any{"dry_run": true})
	steps := resp.Data["steps"].([]map[string]any)
	if len(steps) != 3 || steps[0]["step"] != "create_root" || steps[1]["step"] != "verify_root" || steps[2]["step"] != "revoke_root" {
		t.Fatalf("steps %v", steps)
	}
	id := resp.Data["root_key_id"].(string)
	if e.keyState(id) != demoserver.StateRevoked {
		t.Fatalf("the rehearsal root is %s, want revoked", e.keyState(id))
	}
	if after := e.storedBytes(providerPrefix + "p"); after != before {
		t.Fatal("a rehearsal changed the stored provider")
	}
	if code := e.whoami(e.adminKey); code != 200 {
		t.Fatalf("the stored root no longer works (%d)", code)
	}
	e.wantNoWAL(" after a root rehearsal")

	e.forbid("POST /v1/admin-keys")
	resp, err := e.do(logical.UpdateOperation, "rotate-root/p", map[string]any{"dry_run": true})
	wantFailedStep(t, resp, err, "create_root", "POST /v1/admin-keys", "lacks the permission", "nothing was created")
	if n := len(e.adminKeys(demoserver.StateLive)); n != 1 {
		t.Fatalf("%d live admin keys after a failed rehearsal", n)
	}
	if after := e.storedBytes(providerPrefix + "p"); after != before {
		t.Fatal("a failed rehearsal changed the stored provider")
	}
	e.wantNoWAL(" after a failed root rehearsal")
}

// A provider that quotes the request's credential in its error text: the
// rehearsal's error (which lists every step) carries no secret.
func TestRehearsalErrorsCarryNoSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", nil)
	e.echoAuth.Store(true)
	for _, path := range []string{"rotate-role/r", "rotate-root/p"} {
		_, err := e.do(logical.UpdateOperation, path, map[string]any{"dry_run": true})
		if err == nil {
			t.Fatalf("%s: the rehearsal succeeded against a failing provider", path)
		}
		for _, s := range append(e.issuedSecrets(), e.adminKey) {
			if strings.Contains(err.Error(), s) || strings.Contains(e.logs.String(), s) {
				t.Fatalf("%s: a secret is in the error or the log: %v", path, err)
			}
		}
	}
}
