package backend

import (
	"context"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestReadCacheNeverKeepsWhatARacingWriteReplaced(t *testing.T) {
	c := newReadCache()
	loads := 0
	old := &roleEntry{Mode: "old"}
	// The write lands (and drops the key) while the read is loading.
	got, err := cachedRead(c, "roles/r", func() (*roleEntry, error) {
		loads++
		c.drop("roles/r")
		return old, nil
	})
	if err != nil || got != old {
		t.Fatal(got, err)
	}
	fresh := &roleEntry{Mode: "fresh"}
	got, _ = cachedRead(c, "roles/r", func() (*roleEntry, error) { loads++; return fresh, nil })
	if got != fresh || loads != 2 {
		t.Fatalf("a value read before a write was cached: got %q after %d loads", got.Mode, loads)
	}
	got, _ = cachedRead(c, "roles/r", func() (*roleEntry, error) { loads++; return nil, nil })
	if got != fresh || loads != 2 {
		t.Fatal("a cached entry was not served from the cache")
	}
}

// Writes through any request's storage, and invalidations from other
// nodes, drop the cached role: creds never serve a stale key.
func TestReadCacheFollowsWritesAndInvalidations(t *testing.T) {
	e := newEnv(t)
	e.provider("p")
	e.dualRole("r", map[string]any{"rotation_period": "1h", "overlap": "10m"})
	first := e.readCreds("r").keyID
	e.must(logical.UpdateOperation, "rotate-role/r", nil)
	if got := e.readCreds("r").keyID; got == first {
		t.Fatal("creds still serve the key replaced by rotate-role")
	}
	// Another node rotated: storage changes under us, then Vault calls
	// Invalidate for the key.
	st := e.state("r")
	st.Current.ID = "key-from-another-node"
	if err := putJSON(context.Background(), e.storage, roleKeysPrefix+"r", st); err != nil {
		t.Fatal(err)
	}
	e.b.Invalidate(context.Background(), roleKeysPrefix+"r")
	if got := e.readCreds("r").keyID; got != "key-from-another-node" {
		t.Fatalf("creds serve %s after an invalidation, want the other node's key", got)
	}
}

// With its caches warm, a creds read reads nothing from storage: a dual
// read touches storage not at all (one gRPC round trip fewer per read
// than a cold cache, and nothing for a performance standby to forward),
// a dynamic read only writes its ledger entry.
func TestWarmCredsReadsReadNoStorage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.provider("p")
	e.dualRole("dual", nil)
	e.dynamicRole("dyn")
	for _, c := range []struct {
		role   string
		writes int
	}{{"dual", 0}, {"dyn", 1}} {
		e.must(logical.ReadOperation, "creds/"+c.role, nil) // warm the caches
		cs := &countingStorage{Storage: e.storage}
		resp, err := e.b.HandleRequest(context.Background(), &logical.Request{
			Operation: logical.ReadOperation, Path: "creds/" + c.role, Storage: cs, DisplayName: "token-test",
		})
		if err != nil || resp.IsError() || resp.Secret == nil {
			t.Fatal(err, resp)
		}
		if cs.gets != 0 || cs.list != 0 || cs.deletes != 0 || cs.puts != c.writes {
			t.Errorf("creds/%s with warm caches: %d reads, %d lists, %d deletes, %d writes %v; want no read, list or delete and %d writes",
				c.role, cs.gets, cs.list, cs.deletes, cs.puts, cs.keys, c.writes)
		}
	}
}
