package backend

import "sync"

// keyedLocks hands out one RWMutex per name, created on first use and
// dropped when no one holds or waits for it. Unlike a fixed set of hashed
// locks, a slow rotation of one role never blocks another role that
// happens to share a bucket.
type keyedLocks struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	sync.RWMutex
	refs int
}

func newKeyedLocks() *keyedLocks { return &keyedLocks{locks: map[string]*keyedLock{}} }

func (k *keyedLocks) acquire(key string) *keyedLock {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	return l
}

func (k *keyedLocks) release(key string, l *keyedLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(k.locks, key)
	}
}

// lock takes the exclusive lock of key and returns its unlock.
func (k *keyedLocks) lock(key string) func() {
	l := k.acquire(key)
	l.Lock()
	return func() { l.Unlock(); k.release(key, l) }
}

// rlock takes the shared lock of key and returns its unlock.
func (k *keyedLocks) rlock(key string) func() {
	l := k.acquire(key)
	l.RLock()
	return func() { l.RUnlock(); k.release(key, l) }
}
