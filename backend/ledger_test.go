package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// Invariant 4 for dynamic keys: a ledger entry exists from before the
// provider create until the lease is revoked, so no key this mount created
// is ever unaccounted for.

// ledger returns every ledger entry of the mount.
func (e *env) ledger() []*ledgerEntry {
	e.t.Helper()
	ctx := context.Background()
	incs, err := ledgerIncarnations(ctx, e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*ledgerEntry
	for p, list := range incs {
		for _, inc := range list {
			ids, err := ledgerIDs(ctx, e.storage, p, inc)
			if err != nil {
				e.t.Fatal(err)
			}
			for _, id := range ids {
				le, err := getLedger(ctx, e.storage, p, inc, id)
				if err != nil || le == nil {
					e.t.Fatalf("ledger entry %s: %v %v", id, le, err)
				}
				out = append(out, le)
			}
		}
	}
	return out
}

// lease issues creds/<role> and returns the lease as Vault would store it.
func (e *env) lease(role string) *logical.Secret {
	e.t.Helper()
	resp := e.must(logical.ReadOperation, "creds/"+role, nil)
	s := resp.Secret
	s.IssueTime = e.clock.Now()
	s.InternalData["secret_type"] = secretKeyType
	return s
}

// revoke revokes a lease through the framework, as Vault's expiration
// manager does.
func (e *env) revoke(s *logical.Secret) error {
	e.t.Helper()
	resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RevokeOperation, Path: "creds/x", Storage: e.storage, Secret: s,
	})
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	return err
}

func TestDynamicLeaseIsInTheLedgerUntilRevoked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	s := e.lease("dyn")
	inc := e.storedProvider("p").Incarnation
	if inc == "" || s.InternalData["incarnation"] != inc || s.InternalData["ledger_id"] == "" {
		t.Fatalf("lease internal data %v; want the provider's incarnation %q and a ledger id", s.InternalData, inc)
	}
	l := e.ledger()
	if len(l) != 1 || l[0].ID != s.InternalData["ledger_id"] || l[0].Incarnation != inc || l[0].Role != "dyn" ||
		l[0].Name != e.keys(demoserver.StateLive)[0].Name || !l[0].ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("ledger %+v; want one entry for the lease, ending with its 1h TTL", l)
	}
	if n := e.metricValue(`thirdparty_ledger_entries{provider="p"}`); n != 1 {
		t.Fatalf("thirdparty_ledger_entries = %v, want 1", n)
	}
	e.wantNoWAL(" after a dynamic read (the ledger replaces the WAL pair)")

	// Renewing moves the entry's end with the lease.
	e.clock.Advance(50 * time.Minute)
	if _, err := e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RenewOperation, Path: "creds/x", Storage: e.storage, Secret: s,
	}); err != nil {
		t.Fatal(err)
	}
	if l := e.ledger(); !l[0].ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("after renew the entry ends at %s, want %s", l[0].ExpiresAt, e.clock.Now().Add(time.Hour))
	}

	if err := e.revoke(s); err != nil {
		t.Fatal(err)
	}
	e.wantRevoked(s.InternalData["key_id"].(string), "key is %s after its lease was revoked")
	if l := e.ledger(); len(l) != 0 {
		t.Fatalf("ledger after revoke: %+v, want empty", l)
	}
	if n := e.metricValue(`thirdparty_ledger_entries{provider="p"}`); n != 0 {
		t.Fatalf("thirdparty_ledger_entries = %v after revoke, want 0", n)
	}
}

// The entry is written before the create: when it cannot be, no key is
// created.
func TestNoCreateWithoutALedgerEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	e.storage.failPuts(ledgerPrefix, 1)
	if _, err := e.do(logical.ReadOperation, "creds/dyn", nil); err == nil {
		t.Fatal("creds succeeded although its ledger entry could not be written")
	}
	if n := len(e.keys("")); n != 0 {
		t.Fatalf("%d keys created without a ledger entry", n)
	}
}

// The provider created the key but its answer was lost (a 502 after the
// fact): the HTTP layer does not send the create again, the read fails,
// and the entry, naming the attempt, is due for tidy at once.
func TestLostCreateLeavesAnEntryDueNow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	e.readWithLostCreate("dyn")
	created := e.keys(demoserver.StateLive)
	l := e.ledger()
	if len(created) != 1 || len(l) != 1 {
		t.Fatalf("%d keys created and %d ledger entries, want the one key of the lost create (not repeated) and its entry", len(created), len(l))
	}
	if l[0].Name != created[0].Name || !l[0].UniqueName || l[0].ExpiresAt.After(e.clock.Now()) {
		t.Fatalf("entry %+v; want the key's name %q, unique, due now", l[0], created[0].Name)
	}
}

// A create answered 4xx certainly made nothing: its entry goes.
func TestRefusedCreateLeavesNoEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/keys" {
			http.Error(w, `{"error":{"code":"forbidden","message":"no"}}`, http.StatusForbidden)
			return true
		}
		return false
	})
	if _, err := e.do(logical.ReadOperation, "creds/dyn", nil); err == nil {
		t.Fatal("creds succeeded although the create was refused")
	}
	if l := e.ledger(); len(l) != 0 {
		t.Fatalf("ledger after a refused create: %+v, want empty", l)
	}
}

// With a template that can repeat names, the key's id is what finds it:
// when the entry cannot record it, the key is revoked at once; when that
// fails too, the entry keeps the id and is due now.
func TestUnrecordedIDRevokesTheKey(t *testing.T) {
	t.Parallel()
	for _, revokeFails := range []bool{false, true} {
		e := newEnv(t)
		e.provider("p")
		e.must(logical.CreateOperation, "roles/fixed", map[string]any{"provider": "p", "mode": "dynamic", "name_template": "app-{{.RoleName}}"})
		e.failPutsAfter(ledgerPrefix, 1, 1)
		e.failDelete.Store(revokeFails)
		if _, err := e.do(logical.ReadOperation, "creds/fixed", nil); err == nil {
			t.Fatal("creds succeeded although its key id could not be recorded")
		}
		e.failDelete.Store(false)
		e.failPutsAfter(ledgerPrefix, 0, 0)
		created := e.keys("")
		if len(created) != 1 {
			t.Fatalf("%d keys created, want 1", len(created))
		}
		l := e.ledger()
		if !revokeFails {
			e.wantRevoked(created[0].ID, "the key whose id was never recorded is %s, want revoked at once")
			if len(l) != 0 {
				t.Fatalf("ledger %+v after the key was revoked, want empty", l)
			}
			continue
		}
		if len(l) != 1 || l[0].KeyID != created[0].ID || l[0].ExpiresAt.After(e.clock.Now()) {
			t.Fatalf("ledger %+v; want the entry naming key %s, due now", l, created[0].ID)
		}
	}
}

// countingStorage counts the storage operations of the requests it serves.
type countingStorage struct {
	logical.Storage
	mu                        sync.Mutex
	gets, puts, deletes, list int
	keys                      []string
}

func (c *countingStorage) Get(ctx context.Context, k string) (*logical.StorageEntry, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Storage.Get(ctx, k)
}

func (c *countingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	c.mu.Lock()
	c.puts++
	c.keys = append(c.keys, e.Key)
	c.mu.Unlock()
	return c.Storage.Put(ctx, e)
}

func (c *countingStorage) Delete(ctx context.Context, k string) error {
	c.mu.Lock()
	c.deletes++
	c.keys = append(c.keys, "delete "+k)
	c.mu.Unlock()
	return c.Storage.Delete(ctx, k)
}

func (c *countingStorage) List(ctx context.Context, p string) ([]string, error) {
	c.mu.Lock()
	c.list++
	c.mu.Unlock()
	return c.Storage.List(ctx, p)
}

// The dynamic read's storage cost: one write for a type that lists keys by
// name with a unique template (the name finds the key), two otherwise (the
// entry, then its key id); no delete, no WAL.
func TestDynamicReadStorageOperations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	e.must(logical.CreateOperation, "roles/fixed", map[string]any{"provider": "p", "mode": "dynamic", "name_template": "app-{{.RoleName}}"})
	for _, c := range []struct {
		role   string
		writes int
	}{{"dyn", 1}, {"fixed", 2}} {
		e.must(logical.ReadOperation, "creds/"+c.role, nil) // warm the caches
		cs := &countingStorage{Storage: e.storage}
		resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
			Operation: logical.ReadOperation, Path: "creds/" + c.role, Storage: cs, DisplayName: "token-test",
		})
		if err != nil || resp.IsError() {
			t.Fatal(err, resp)
		}
		if cs.puts != c.writes || cs.deletes != 0 || cs.list != 0 {
			t.Errorf("creds/%s: %d writes %v, %d deletes, %d lists; want %d writes, no delete, no list", c.role, cs.puts, cs.keys, cs.deletes, cs.list, c.writes)
		}
		for _, k := range cs.keys {
			if !strings.HasPrefix(k, ledgerPrefix) {
				t.Errorf("creds/%s wrote %s; want only its ledger entry", c.role, k)
			}
		}
	}
}

// A WAL entry written around a dynamic create by v0.1.0 is still rolled
// back after the upgrade.
func TestRollbackOfAV010DynamicWALEntry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	key := e.lease("dyn").InternalData["key_id"].(string)
	if _, err := framework.PutWAL(context.Background(), e.storage, walKindKey, &walKey{Provider: "p", Role: "dyn", Name: "x", KeyID: key, Purpose: purposeDynamic}); err != nil {
		t.Fatal(err)
	}
	e.rollback()
	e.wantRevoked(key, "the key named by a v0.1.0 WAL entry is %s after rollback")
	e.wantNoWAL("")
}

// A provider deleted while its keys are leased stays as a tombstone, not
// visible as a provider, until the last of them is revoked with its config.
// deletedWithLeases makes provider p and dynamic role dyn, issues n
// leases, deletes the role and the provider (a tombstone), and returns
// the leases and p's incarnation.
func (e *env) deletedWithLeases(n int) ([]*logical.Secret, string) {
	e.t.Helper()
	e.provider("p")
	e.dynamicRole("dyn")
	var leases []*logical.Secret
	for range n {
		leases = append(leases, e.lease("dyn"))
	}
	inc := e.storedProvider("p").Incarnation
	e.must(logical.DeleteOperation, "roles/dyn", nil)
	e.must(logical.DeleteOperation, "providers/p", nil)
	return leases, inc
}

func TestDeletedProviderIsATombstoneUntilItsLastKeyIsRevoked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	leases, inc := e.deletedWithLeases(2)

	if resp, err := e.do(logical.ReadOperation, "providers/p", nil); err != nil || resp != nil {
		t.Fatalf("read of a deleted provider: %v %v, want nothing", resp, err)
	}
	if list := e.must(logical.ListOperation, "providers/", nil); len(list.Data) != 0 && len(list.Data["keys"].([]string)) != 0 {
		t.Fatalf("list shows a deleted provider: %v", list.Data)
	}
	st := e.must(logical.ReadOperation, "status", nil).Data
	tombs := st["tombstones"].([]map[string]any)
	if len(tombs) != 1 || tombs[0]["name"] != "p" || tombs[0]["incarnation"] != inc || tombs[0]["keys_outstanding"] != 2 {
		t.Fatalf("status tombstones %v; want p@%s with 2 keys outstanding", tombs, inc)
	}
	if strings.Contains(e.logs.String()+jsonString(t, st), e.adminKey) {
		t.Fatal("the tombstone's root credential shows in status or the log")
	}
	if n := e.metricValue("thirdparty_tombstones"); n != 1 {
		t.Fatalf("thirdparty_tombstones = %v, want 1", n)
	}

	if err := e.revoke(leases[0]); err != nil {
		t.Fatal(err)
	}
	e.wantRevoked(leases[0].InternalData["key_id"].(string), "key of a deleted provider is %s after its lease was revoked")
	if n := len(e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)); n != 1 {
		t.Fatalf("%d tombstones while a key is still outstanding, want 1", n)
	}
	if err := e.revoke(leases[1]); err != nil {
		t.Fatal(err)
	}
	e.wantRevoked(leases[1].InternalData["key_id"].(string), "last key of a deleted provider is %s after its lease was revoked")
	if n := len(e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)); n != 0 {
		t.Fatalf("%d tombstones after the last key was revoked, want 0", n)
	}
	if n := e.metricValue("thirdparty_tombstones"); n != 0 {
		t.Fatalf("thirdparty_tombstones = %v, want 0", n)
	}

	// A provider with nothing outstanding leaves no tombstone.
	e.provider("q")
	e.must(logical.DeleteOperation, "providers/q", nil)
	if n := len(e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)); n != 0 {
		t.Fatalf("%d tombstones for a provider with no keys, want 0", n)
	}
}

// The revocation of a deleted provider's last lease does not remove its
// tombstone while tidy has an orphan of its account pending (here one too
// young to revoke when first seen): the next tidy past the buffer revokes
// the orphan with the tombstone's config, then removes the tombstone.
func TestTombstoneOutlivesItsLastLeaseWhileAnOrphanIsPending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	lease := e.lease("dyn")
	orphan := e.createKey("p", "vault-"+e.marker()+"-orphan")
	st := e.tidy(map[string]any{"safety_buffer": "1h"})
	wantLines(t, "first tidy", tidyKeys(st), orphan.ID+" orphan reported")

	e.must(logical.DeleteOperation, "roles/dyn", nil)
	e.must(logical.DeleteOperation, "providers/p", nil)
	if err := e.revoke(lease); err != nil {
		t.Fatal(err)
	}
	e.wantRevoked(lease.InternalData["key_id"].(string), "key of a deleted provider is %s after its lease was revoked")
	tombs := e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)
	if len(tombs) != 1 || tombs[0]["keys_outstanding"] != 0 || tombs[0]["orphans_pending"] != 1 {
		t.Fatalf("status tombstones %v after the last lease; want one with 0 keys outstanding and 1 orphan pending", tombs)
	}

	e.clock.Advance(2 * time.Hour)
	st = e.tidy(map[string]any{"safety_buffer": "1h"})
	wantCounts(t, st, map[string]int{"orphans_revoked": 1, "tombstones_removed": 1, "error_count": 0})
	e.wantRevoked(orphan.ID, "orphan of a deleted provider is %s after tidy")
	if n := len(e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)); n != 0 {
		t.Fatalf("%d tombstones after the last orphan was revoked, want 0", n)
	}
}

// A provider recreated under the same name is a new incarnation: the old
// leases are revoked at the account that issued them, never at the new one.
func TestRecreatedProviderRevokesOldKeysWithTheOldConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	old := e.lease("dyn")
	oldInc := e.storedProvider("p").Incarnation
	e.must(logical.DeleteOperation, "roles/dyn", nil)
	e.must(logical.DeleteOperation, "providers/p", nil)

	// Account B: another demo server.
	adminB := demoserver.NewAdminKey()
	demoB := demoserver.New(demoserver.Options{AdminKey: adminB, Now: e.clock.Now})
	var deletesAtB int
	var mu sync.Mutex
	srvB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			mu.Lock()
			deletesAtB++
			mu.Unlock()
		}
		demoB.ServeHTTP(w, r)
	}))
	defer srvB.Close()
	e.must(logical.CreateOperation, "providers/p", map[string]any{"type": "demo", "base_url": srvB.URL, "admin_key": adminB})
	newInc := e.storedProvider("p").Incarnation
	if newInc == "" || newInc == oldInc {
		t.Fatalf("recreated provider's incarnation %q, old %q: want a new one", newInc, oldInc)
	}
	if got := e.must(logical.ReadOperation, "providers/p", nil).Data["incarnation"]; got != newInc {
		t.Fatalf("provider read shows incarnation %v, want %s", got, newInc)
	}

	if err := e.revoke(old); err != nil {
		t.Fatal(err)
	}
	e.wantRevoked(old.InternalData["key_id"].(string), "old key at account A is %s after its lease was revoked")
	mu.Lock()
	defer mu.Unlock()
	if deletesAtB != 0 {
		t.Fatalf("account B received %d delete calls for a key of account A", deletesAtB)
	}
}

// Storage written by v0.1.0: providers without incarnation, no mount
// config. The migration runs once, is idempotent, and leases issued before
// it (no incarnation, no ledger entry) keep their provider's config alive
// as a tombstone if it is deleted before they can have ended.
func TestMigrationFromV010(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	legacy := e.lease("dyn")
	// Make it what v0.1.0 wrote.
	delete(legacy.InternalData, "incarnation")
	delete(legacy.InternalData, "ledger_id")
	ctx := context.Background()
	for _, le := range e.ledger() {
		if err := deleteLedger(ctx, e.storage, le.Provider, le.Incarnation, le.ID); err != nil {
			t.Fatal(err)
		}
	}
	r, err := getRole(ctx, e.storage, "dyn")
	if err != nil {
		t.Fatal(err)
	}
	r.NameTemplate = v010NameTemplate
	if err := putJSON(ctx, e.storage, rolePrefix+"dyn", r); err != nil {
		t.Fatal(err)
	}
	e.must(logical.CreateOperation, "roles/custom", map[string]any{"provider": "p", "mode": "dynamic", "name_template": "mine-{{random 8}}"})
	pe := e.storedProvider("p")
	pe.Incarnation = ""
	pe.RequestTimeout = 2000000 * time.Hour // v0.1.0 had no bound
	plain := *pe
	plain.BaseURL = "http://provider.example.com"
	if err := putJSON(ctx, e.storage, providerPrefix+"plain", &plain); err != nil {
		t.Fatal(err)
	}
	if err := putJSON(ctx, e.storage, providerPrefix+"p", pe); err != nil {
		t.Fatal(err)
	}
	if err := e.storage.Delete(ctx, mountConfigKey); err != nil {
		t.Fatal(err)
	}

	init := func() {
		t.Helper()
		if err := e.b.Initialize(ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
			t.Fatal(err)
		}
		e.b.sched.stop()
	}
	init()
	pe = e.storedProvider("p")
	mc, err := getMountConfig(ctx, e.storage)
	if err != nil || mc == nil || mc.SchemaVersion != schemaVersion || mc.Marker == "" {
		t.Fatalf("mount config after migration: %+v %v", mc, err)
	}
	if pe.Incarnation == "" || !pe.LegacyLeasesUntil.Equal(e.clock.Now().Add(24*time.Hour)) {
		t.Fatalf("migrated provider: incarnation %q, legacy leases until %s; want an incarnation and now + the mount's max TTL", pe.Incarnation, pe.LegacyLeasesUntil)
	}
	if pe.RequestTimeout != maxRequestTimeout || pe.AllowInsecureHTTP {
		t.Fatalf("migrated provider: request_timeout %s, allow_insecure_http %v; want capped at %s, false (loopback)", pe.RequestTimeout, pe.AllowInsecureHTTP, maxRequestTimeout)
	}
	if pl := e.storedProvider("plain"); !pl.AllowInsecureHTTP || pl.Incarnation == "" {
		t.Fatalf("a v0.1.0 provider on plain http to another host: %+v; want allow_insecure_http set", pl)
	}
	if r, _ := getRole(ctx, e.storage, "dyn"); r.NameTemplate != defaultNameTemplate {
		t.Fatalf("a role with v0.1.0's default template kept %q, want the new default", r.NameTemplate)
	}
	if r, _ := getRole(ctx, e.storage, "custom"); r.NameTemplate != "mine-{{random 8}}" {
		t.Fatalf("the migration changed a custom template to %q", r.NameTemplate)
	}
	if v := e.must(logical.ReadOperation, "status", nil).Data["schema_version"]; v != schemaVersion {
		t.Fatalf("status schema_version %v, want %d", v, schemaVersion)
	}
	// Again: nothing changes.
	e.clock.Advance(time.Minute)
	init()
	if again := e.storedProvider("p"); again.Incarnation != pe.Incarnation || !again.LegacyLeasesUntil.Equal(pe.LegacyLeasesUntil) {
		t.Fatalf("a second start changed the migrated provider: %+v", again)
	}
	if mc2, _ := getMountConfig(ctx, e.storage); mc2.Marker != mc.Marker || !mc2.MigratedAt.Equal(mc.MigratedAt) {
		t.Fatalf("a second start changed the mount config: %+v, was %+v", mc2, mc)
	}

	// The provider goes while the v0.1.0 lease is outstanding.
	e.must(logical.DeleteOperation, "roles/dyn", nil)
	e.must(logical.DeleteOperation, "roles/custom", nil)
	e.must(logical.DeleteOperation, "providers/p", nil)
	if n := len(e.must(logical.ReadOperation, "status", nil).Data["tombstones"].([]map[string]any)); n != 1 {
		t.Fatalf("%d tombstones after deleting a provider with v0.1.0 leases outstanding, want 1", n)
	}
	if err := e.revoke(legacy); err != nil {
		t.Fatal(err)
	}
	e.wantRevoked(legacy.InternalData["key_id"].(string), "the v0.1.0 lease's key is %s after revoke")
}

// The default name template carries the mount's marker.
func TestDefaultNamesCarryTheMountMarker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	e.lease("dyn")
	marker, err := e.b.mountMarker(context.Background(), e.storage)
	if err != nil || len(marker) != 10 {
		t.Fatalf("marker %q %v", marker, err)
	}
	if k := e.keys(demoserver.StateLive); len(k) != 1 || !strings.Contains(k[0].Name, "-"+marker+"-") {
		t.Fatalf("key %v does not carry the mount marker %s", k, marker)
	}
}

// readWithLostCreate reads creds/<role> while the provider creates the key
// but its answer is lost (a 502 after the fact); the read must fail.
func (e *env) readWithLostCreate(role string) {
	e.t.Helper()
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/keys" {
			e.demo.ServeHTTP(httptest.NewRecorder(), r)
			http.Error(w, `{"error":{"code":"bad_gateway","message":"upstream reset"}}`, http.StatusBadGateway)
			return true
		}
		return false
	})
	defer e.setIntercept(nil)
	if _, err := e.do(logical.ReadOperation, "creds/"+role, nil); err == nil {
		e.t.Fatal("creds succeeded although the create's answer was lost")
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A create answered with a redirect to another host: the HTTP layer
// follows no redirect, so the target gets nothing, and the read fails with
// the status. The origin may have created the key before redirecting, so
// its ledger entry stays, due now, for tidy.
func TestRedirectedCreateKeepsItsLedgerEntry(t *testing.T) {
	t.Parallel()
	var away atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { away.Add(1) }))
	defer target.Close()
	e := newEnv(t)
	e.provider("p")
	e.dynamicRole("dyn")
	e.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/keys" {
			e.demo.ServeHTTP(httptest.NewRecorder(), r)
			w.Header().Set("Location", target.URL+"/v1/keys")
			w.WriteHeader(http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	_, err := e.do(logical.ReadOperation, "creds/dyn", nil)
	e.setIntercept(nil)
	if err == nil || !strings.Contains(err.Error(), "HTTP 307") {
		t.Fatalf("creds after a redirected create: error %v, want one naming HTTP 307", err)
	}
	if n := away.Load(); n != 0 {
		t.Fatalf("the redirect target received %d requests", n)
	}
	created, l := e.keys(demoserver.StateLive), e.ledger()
	if len(created) != 1 || len(l) != 1 || l[0].Name != created[0].Name || l[0].ExpiresAt.After(e.clock.Now()) {
		t.Fatalf("%d keys created, ledger %+v; want the origin's key and its entry, due now", len(created), l)
	}
}
