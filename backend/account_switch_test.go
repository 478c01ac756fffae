package backend

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// countingServer serves h and counts the requests it receives.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// An update pointing the provider at another account is refused while a
// key lives in the current one (its revocation would go to the new
// account, find nothing and leave the key live), and nothing is sent there.
func TestAccountSwitchIsRefusedWhileKeysLiveThere(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	other, calls := countingServer(t, demoserver.New(demoserver.Options{AdminKey: e.adminKey}))
	lease := e.lease("dyn")
	before := e.storedBytes(providerPrefix + "p")

	resp, err := e.do(logical.UpdateOperation, "providers/p", map[string]any{"base_url": other.URL, "admin_key": e.adminKey})
	e.userError(resp, err, "base_url")
	for _, want := range []string{"1 dynamic keys or keys of deleted dual roles", "same_account=true"} {
		if !strings.Contains(resp.Error().Error(), want) {
			t.Fatalf("refusal %q does not say %q", resp.Error(), want)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the other account received %d requests from a refused write", n)
	}
	if after := e.storedBytes(providerPrefix + "p"); after != before {
		t.Fatalf("a refused write changed the provider:\n before %s\n after  %s", before, after)
	}

	// Once nothing lives there, the move is allowed (and probed).
	if err := e.revoke(lease); err != nil {
		t.Fatal(err)
	}
	e.must(logical.UpdateOperation, "providers/p", map[string]any{"base_url": other.URL, "admin_key": e.adminKey})
	if calls.Load() == 0 {
		t.Fatal("the accepted move was not probed at the new base_url")
	}
}

// same_account=true lets a provider move to another address of the same
// account (here a proxy): the keys' revocations reach them through it.
func TestSameAccountMoveKeepsRevocationsWorking(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	target, _ := url.Parse(e.srv.URL)
	proxy, calls := countingServer(t, httputil.NewSingleHostReverseProxy(target))
	lease := e.lease("dyn")

	e.must(logical.UpdateOperation, "providers/p", map[string]any{"base_url": proxy.URL, "admin_key": e.adminKey, "same_account": true})
	if got := e.must(logical.ReadOperation, "providers/p", nil).Data; got["base_url"] != proxy.URL || got["same_account"] != nil {
		t.Fatalf("provider after the move: base_url %v, same_account %v (want the proxy, and the flag not stored)", got["base_url"], got["same_account"])
	}
	mark := calls.Load()
	if err := e.revoke(lease); err != nil {
		t.Fatal(err)
	}
	e.wantRevoked(lease.InternalData["key_id"].(string), "the key is %s after its revocation through the new address")
	if calls.Load() == mark {
		t.Fatal("the revocation did not go through the new base_url")
	}
}

// An account field of a type (sendgrid's on_behalf_of: the subuser the keys
// belong to) counts like base_url; a dual role's keys live in the account.
func TestAccountFieldChangeIsRefusedWhileADualRoleUsesIt(t *testing.T) {
	t.Parallel()
	e, _ := sendgridEnv(t)
	e.must(logical.CreateOperation, "roles/mail", map[string]any{"provider": "sg", "mode": "dual", "scopes": "mail.send", "rotation_period": "24h", "overlap": "1h"})
	resp, err := e.do(logical.UpdateOperation, "providers/sg", map[string]any{"on_behalf_of": "other-subuser"})
	e.userError(resp, err, "on_behalf_of")
	if !strings.Contains(resp.Error().Error(), "dual roles mail") {
		t.Fatalf("refusal %q does not name the dual role", resp.Error())
	}
	// Other fields still update freely.
	e.must(logical.UpdateOperation, "providers/sg", map[string]any{"max_concurrency": 4})
}
