package backend

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Invariant 8: secrets never appear in logs, errors, status, metrics,
// config reads, rotation responses or help. A whole life of the mount is
// run, with the provider quoting the caller's credentials in its error
// bodies, and every secret that ever existed is looked for in everything a
// user or an operator can see.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.hooks() // before the scheduler starts
	ctx := context.Background()

	var seen []string // labelled text that users and operators see
	show := func(label string, resp *logical.Response, err error) {
		t.Helper()
		if err != nil {
			seen = append(seen, label+": error: "+err.Error())
		}
		if resp != nil {
			seen = append(seen, fmt.Sprintf("%s: data %v warnings %v", label, resp.Data, resp.Warnings))
		}
	}
	do := func(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
		t.Helper()
		resp, err := e.do(op, path, data)
		show(string(op)+" "+path, resp, err)
		return resp, err
	}
	mustFail := func(op logical.Operation, path string, data map[string]any) {
		t.Helper()
		if resp, err := do(op, path, data); err == nil && (resp == nil || !resp.IsError()) {
			t.Fatalf("%s %s succeeded; the test expected a failure", op, path)
		}
	}
	var secrets []string // collected the way a user would: creds and storage
	var leases []*logical.Secret
	creds := func(role string) {
		t.Helper()
		resp, err := e.do(logical.ReadOperation, "creds/"+role, nil) // the one place a secret belongs
		if err != nil || resp.IsError() {
			t.Fatalf("creds/%s: %v %v", role, resp, err)
		}
		secrets = append(secrets, resp.Data["api_key"].(string))
		resp.Secret.IssueTime = e.clock.Now()
		leases = append(leases, resp.Secret)
		if strings.Contains(fmt.Sprint(resp.Secret.InternalData), resp.Data["api_key"].(string)) {
			t.Fatal("the lease's internal data holds the key")
		}
	}
	storedRoot := func() { secrets = append(secrets, e.storedProvider("p").Fields["admin_key"]) }
	var echoes atomic.Int32
	echoIf := func(match func(r *http.Request) bool) {
		e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
			if match(r) {
				echoes.Add(1)
				echoAuthorization(w, r)
				return true
			}
			return false
		})
	}

	// Configure and use.
	do(logical.CreateOperation, "providers/p", map[string]any{"type": "demo", "base_url": e.srv.URL, "admin_key": e.adminKey, "rotation_period": "20s"})
	do(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1m", "max_ttl": "1h"})
	do(logical.CreateOperation, "roles/dual", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "10s", "overlap": "5s", "ttl": "3s"})
	creds("dyn")
	creds("dyn")
	creds("dual")
	e.clock.Advance(6 * time.Second)
	do(logical.UpdateOperation, "rotate-role/dual", map[string]any{"revoke_previous": true})
	creds("dual")
	do(logical.UpdateOperation, "rotate-root/p", nil)
	storedRoot()
	creds("dyn")
	for _, l := range leases[:1] {
		resp, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.RenewOperation, Path: "creds/dyn", Storage: e.storage, Secret: l})
		show("renew", resp, err)
	}

	// The provider quotes the caller's Authorization header in every error.
	e.echoAuth.Store(true)
	mustFail(logical.ReadOperation, "creds/dyn", nil)
	mustFail(logical.UpdateOperation, "rotate-role/dual", map[string]any{"revoke_previous": true})
	mustFail(logical.UpdateOperation, "rotate-root/p", nil)
	mustFail(logical.CreateOperation, "providers/p2", map[string]any{"type": "demo", "base_url": e.srv.URL, "admin_key": e.storedProvider("p").Fields["admin_key"]})
	wrongRoot := "demoadm_" + strings.Repeat("ab", 16) // an operator's typo is a secret too
	secrets = append(secrets, wrongRoot)
	mustFail(logical.UpdateOperation, "providers/p", map[string]any{"admin_key": wrongRoot})
	resp, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.RevokeOperation, Path: "creds/dyn", Storage: e.storage, Secret: leases[1]})
	show("revoke", resp, err)
	if err == nil {
		t.Fatal("revoking a lease succeeded while the provider failed every call")
	}
	e.b.sched.start()
	e.clock.Advance(11 * time.Second) // the dual role's scheduled rotation fails and is recorded
	e.settle()
	e.echoAuth.Store(false)
	if st := e.state("dual"); st.LastError == "" {
		t.Fatal("no scheduled rotation failure was recorded")
	}

	// Only verification echoes: the new key's and the new root's values are
	// in the Authorization header of the failing request.
	echoIf(func(r *http.Request) bool { return r.URL.Path == "/v1/whoami" })
	mustFail(logical.UpdateOperation, "rotate-role/dual", map[string]any{"revoke_previous": true})
	mustFail(logical.UpdateOperation, "rotate-root/p", nil)

	// Only deletes echo: an abandoned key, its rollback and the old root's
	// revocation fail with the admin key quoted.
	echoIf(func(r *http.Request) bool { return r.Method == http.MethodDelete })
	do(logical.CreateOperation, "roles/fixed", map[string]any{"provider": "p", "mode": "dynamic", "name_template": "fixed-{{.RoleName}}"})
	e.failPutsAfter(ledgerPrefix, 1, 1) // the key's id is not recorded: it is revoked at once, which fails
	mustFail(logical.ReadOperation, "creds/fixed", nil)
	e.failPutsAfter(ledgerPrefix, 0, 0)
	// A v0.1.0 WAL entry naming a live key: its rollback fails too.
	if _, err := framework.PutWAL(ctx, e.storage, walKindKey, &walKey{Provider: "p", Role: "dyn", Name: "x",
		KeyID: leases[0].InternalData["key_id"].(string), Purpose: purposeDynamic}); err != nil {
		t.Fatal(err)
	}
	resp = e.rollbackResp()
	show("rollback", resp, nil)
	if resp == nil || !resp.IsError() {
		t.Fatal("rollback succeeded while deletes failed")
	}
	resp, err = do(logical.UpdateOperation, "rotate-root/p", nil)
	if err != nil || len(resp.Warnings) == 0 {
		t.Fatalf("rotate-root with a failing old-root revocation: %v %v", resp, err)
	}
	storedRoot()
	e.setIntercept(nil)

	// Verification failure without an echo.
	e.rejectVerify.Store(true)
	mustFail(logical.UpdateOperation, "rotate-role/dual", map[string]any{"revoke_previous": true})
	e.rejectVerify.Store(false)
	e.rejectNewRoot.Store(true)
	mustFail(logical.UpdateOperation, "rotate-root/p", nil)
	e.rejectNewRoot.Store(false)

	// Recovery: rollback, scheduled rotations of keys and roots.
	e.rollback()
	for i := 0; i < 25; i++ {
		e.clock.Advance(time.Second)
		e.settle()
		if i%5 == 0 {
			creds("dual")
		}
	}
	creds("dyn")
	storedRoot()
	if echoes.Load() == 0 {
		t.Fatal("the provider never echoed a credential: the test proves nothing")
	}

	// Everything a user or operator sees.
	for _, path := range []string{"status", "roles/dyn", "roles/dual", "providers/p", "providers/p2"} {
		do(logical.ReadOperation, path, nil)
	}
	do(logical.ListOperation, "roles/", nil)
	do(logical.ListOperation, "providers/", nil)
	metrics, _ := e.do(logical.ReadOperation, "metrics", nil)
	seen = append(seen, "metrics: "+string(metrics.Data[logical.HTTPRawBody].([]byte)))
	e.sys.PluginEnvironment = &logical.PluginEnvironment{VaultVersion: "v1.21.0"} // the root help builds OpenAPI
	for _, path := range []string{"", "providers/p", "roles/dual", "creds/dual", "rotate-role/dual", "rotate-root/p", "status", "metrics"} {
		resp, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.HelpOperation, Path: path, Storage: e.storage})
		show("help "+path, resp, err)
	}
	seen = append(seen, "logs: "+e.logs.String())
	// Storage outside the seal-wrapped paths (the WAL above all).
	keys, err := logical.CollectKeys(ctx, e.storage)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasPrefix(k, providerPrefix) || strings.HasPrefix(k, roleKeysPrefix) {
			continue
		}
		entry, _ := e.storage.Get(ctx, k)
		seen = append(seen, "storage "+k+": "+string(entry.Value))
	}

	issued := map[string]bool{}
	for _, s := range e.issuedSecrets() {
		issued[s] = true
	}
	for _, s := range secrets {
		if !issued[s] && s != wrongRoot {
			t.Fatalf("a secret from creds or storage was never issued by the provider: the capture is broken")
		}
		issued[s] = true
	}
	if len(issued) < 15 {
		t.Fatalf("only %d secrets issued over the whole life", len(issued))
	}
	redacted := false
	for _, text := range seen {
		redacted = redacted || strings.Contains(text, "[redacted]")
		label, _, _ := strings.Cut(text, ": ")
		for s := range issued {
			_, tail, _ := strings.Cut(s, "_") // the random part alone
			if strings.Contains(text, s) || strings.Contains(text, tail) {
				t.Errorf("%s shows a secret (%s…):\n%s", label, s[:10], text)
			}
		}
	}
	if !redacted {
		t.Fatal("no error text was redacted: the echoes never reached a user")
	}
}
