package backend

import (
	"context"
	"strings"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"
)

// readCacheSize bounds the decoded entries kept for the creds hot path.
const readCacheSize = 10_000

// readCache keeps decoded roles and dual-role states for reads of creds, so
// a dual read costs no storage round trip to Vault. Every local write of
// those keys and every Invalidate drops the entry; a generation counter
// keeps a read that raced a write from caching what it read before it.
// A hit takes no lock (the creds path must not serialise on the mount);
// misses and drops share mu. Cached values are shared: callers must not
// modify them.
type readCache struct {
	entries sync.Map // key -> decoded value

	mu  sync.Mutex // guards gen, n and every store/delete of entries
	gen uint64
	n   int
}

func newReadCache() *readCache { return &readCache{} }

// cachedRead returns the decoded entry under key, loading it with load on a
// miss. A nil result (no entry) is not cached.
func cachedRead[T any](c *readCache, key string, load func() (*T, error)) (*T, error) {
	if v, ok := c.entries.Load(key); ok {
		return v.(*T), nil
	}
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()

	v, err := load()
	if err != nil || v == nil {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		if c.n >= readCacheSize {
			c.entries.Range(func(k, _ any) bool { // drop one at random
				c.entries.Delete(k)
				c.n--
				return false
			})
		}
		if _, loaded := c.entries.Swap(key, v); !loaded {
			c.n++
		}
	}
	return v, nil
}

// drop forgets key after it was written or deleted (or invalidated).
func (c *readCache) drop(key string) {
	c.mu.Lock()
	c.gen++
	if _, loaded := c.entries.LoadAndDelete(key); loaded {
		c.n--
	}
	c.mu.Unlock()
}

func cacheable(key string) bool {
	return strings.HasPrefix(key, rolePrefix) || strings.HasPrefix(key, roleKeysPrefix)
}

// cachingStorage is the storage the backend's requests and jobs use: writes
// and deletes of cacheable keys drop them from the read cache.
type cachingStorage struct {
	logical.Storage
	cache *readCache
}

func (s cachingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	err := s.Storage.Put(ctx, e)
	if cacheable(e.Key) {
		s.cache.drop(e.Key) // even on error: the write may have landed
	}
	return err
}

func (s cachingStorage) Delete(ctx context.Context, key string) error {
	err := s.Storage.Delete(ctx, key)
	if cacheable(key) {
		s.cache.drop(key)
	}
	return err
}
