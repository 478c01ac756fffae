package backend

import (
	"fmt"
	"testing"
)

// Role writes with ever new template texts do not grow the cache without
// end, and what was cached is found again.
func TestParseCacheIsBounded(t *testing.T) {
	t.Parallel()
	var c parseCache[int]
	for i := range 3 * parseCacheSize {
		c.put(fmt.Sprint(i), i)
		if n := c.len(); n > parseCacheSize {
			t.Fatalf("%d entries after %d puts, want at most %d", n, i+1, parseCacheSize)
		}
	}
	c.put("x", 7)
	c.put("x", 8) // already there: kept, not counted twice
	if v, ok := c.get("x"); !ok || v != 7 {
		t.Fatalf("get(x) = %d, %v; want 7, true", v, ok)
	}
	if _, ok := c.get("never"); ok {
		t.Fatal("get of a text never put found something")
	}
}
