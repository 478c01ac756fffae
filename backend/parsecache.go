package backend

import (
	"sync"
	"sync/atomic"
)

// parseCacheSize bounds each parse cache. A mount has a few distinct name
// templates and rotation schedules; role writes with ever new texts must
// not grow the plugin's memory without end.
const parseCacheSize = 4096

// parseCache keeps parsed values by their source text, up to
// parseCacheSize of them: when full, it starts over (parsing again is
// cheap; an eviction order is not worth a lock on every read). Reads take
// no lock.
type parseCache[V any] struct {
	m sync.Map // string -> V
	n atomic.Int64
}

func (c *parseCache[V]) get(k string) (V, bool) {
	v, ok := c.m.Load(k)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}

func (c *parseCache[V]) put(k string, v V) {
	if _, loaded := c.m.LoadOrStore(k, v); loaded {
		return
	}
	if c.n.Add(1) > parseCacheSize {
		c.m.Clear()
		c.n.Store(0)
	}
}

func (c *parseCache[V]) len() int { return int(c.n.Load()) }
