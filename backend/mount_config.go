package backend

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// mountConfigKey holds what the mount knows about itself: the schema
// version of its storage and its marker.
const mountConfigKey = "config/mount"

// schemaVersion is the shape of storage this release writes:
//
//	1 (v0.1.0, no config/mount): providers without incarnation, dynamic keys
//	  guarded by WAL entries only.
//	2: provider incarnations, the ledger of dynamic keys, tombstones, the
//	  mount marker.
const schemaVersion = 2

type mountConfig struct {
	SchemaVersion int `json:"schema_version"`
	// Marker is a short, stable, random string of this mount that the
	// default name template puts into every key name, so tidy can tell this
	// mount's keys from any other key at the provider.
	Marker     string    `json:"marker"`
	MigratedAt time.Time `json:"migrated_at"`
}

func getMountConfig(ctx context.Context, s logical.Storage) (*mountConfig, error) {
	var c mountConfig
	ok, err := getJSON(ctx, s, mountConfigKey, &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

// markerAlphabet has no letters that read alike, so a marker can be typed.
const markerAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"

// newMarker returns a random 8-character marker.
func newMarker() (string, error) {
	buf := make([]byte, 8)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("marker: %w", err)
	}
	for i, c := range buf {
		buf[i] = markerAlphabet[int(c)%len(markerAlphabet)]
	}
	return "tp" + string(buf), nil
}

// markerCache keeps the mount's marker once read: it never changes, so
// reads after the first take no lock.
type markerCache struct {
	mu     sync.Mutex // serialises the first read (and creation)
	marker atomic.Pointer[string]
}

// mountMarker returns the mount's marker, creating it on first use.
func (b *backend) mountMarker(ctx context.Context, s logical.Storage) (string, error) {
	if m := b.marker.marker.Load(); m != nil {
		return *m, nil
	}
	b.marker.mu.Lock()
	defer b.marker.mu.Unlock()
	if m := b.marker.marker.Load(); m != nil {
		return *m, nil
	}
	c, err := getMountConfig(ctx, s)
	if err != nil {
		return "", err
	}
	if c == nil || c.Marker == "" {
		// Not migrated yet (a standby reading before the active node ran
		// initialize, or a mount whose initialize failed): make it now.
		if c == nil {
			c = &mountConfig{SchemaVersion: 1}
		}
		if c.Marker, err = newMarker(); err != nil {
			return "", err
		}
		if err := putJSON(ctx, s, mountConfigKey, c); err != nil {
			return "", err
		}
	}
	b.marker.marker.Store(&c.Marker)
	return c.Marker, nil
}
