package backend

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// demoAdminCall makes an admin API call at the env's demo provider.
func (e *env) demoAdminCall(method, path, admin, body string, out any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		e.t.Fatalf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			e.t.Fatal(err)
		}
	}
}

// A creds read that builds the provider's client from the stored config
// while an update of the provider stores a new root must not leave that
// client cached: once the operator deletes the old root at the provider,
// every later read would fail with it. Run with -race: the read, the
// update and the cache interleave at the hook.
func TestClientBuiltFromAnOldConfigIsNotCached(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	oldID := e.storedProvider("p").RootKeyID
	var created struct {
		ID       string `json:"id"`
		AdminKey string `json:"admin_key"`
	}
	e.demoAdminCall(http.MethodPost, "/v1/admin-keys", e.adminKey, `{"name":"next"}`, &created)
	e.b.dropClient("p") // the next read builds the client

	var once sync.Once
	e.b.testHookClientBuilt = func(string) {
		once.Do(func() {
			// The read has built its client from the old root; the update
			// lands before the read caches it.
			resp, err := e.do(logical.UpdateOperation, "providers/p", map[string]any{"admin_key": created.AdminKey})
			if err != nil || resp.IsError() {
				t.Errorf("provider update: %v %v", err, resp)
			}
		})
	}
	e.must(logical.ReadOperation, "creds/dyn", nil) // served with the old root, still live
	if got := e.storedProvider("p").RootKeyID; got != created.ID {
		t.Fatalf("stored root is %s after the update, want %s", got, created.ID)
	}
	e.demoAdminCall(http.MethodDelete, "/v1/admin-keys/"+oldID, created.AdminKey, "", nil)

	// With the old client cached this read is refused by the provider.
	e.must(logical.ReadOperation, "creds/dyn", nil)
	if v, ok := e.b.clients.Load("p"); !ok {
		t.Fatal("no client cached after a read")
	} else if got := v.(*providerClient).entry.RootKeyID; got != created.ID {
		t.Fatalf("the cached client holds root %s, want %s", got, created.ID)
	}
}
