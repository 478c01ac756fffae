package clients

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

var (
	registryMu sync.RWMutex
	registry   = map[string]*Type{}
)

// Register adds a provider type; provider packages call it from init and the
// plugin imports them from clients/all.
func Register(t *Type) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[t.Name]; dup {
		panic(fmt.Sprintf("clients: provider type %q registered twice", t.Name))
	}
	registry[t.Name] = t
}

// Lookup returns a registered type.
func Lookup(name string) (*Type, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	t, ok := registry[name]
	return t, ok
}

// Types returns every registered type, sorted by name.
func Types() []*Type {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]*Type, 0, len(registry))
	for _, t := range registry {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Build runs the steps every type's New relies on, then calls New: it checks
// the fields with Validate (when set), rejects a missing HTTP client and
// trims the trailing "/" of BaseURL. Callers build clients through Build,
// never through New directly.
func (t *Type) Build(cfg Config) (Provider, error) {
	if t.Validate != nil {
		if err := t.Validate(cfg.Fields); err != nil {
			return nil, err
		}
	}
	if cfg.HTTP == nil {
		return nil, fmt.Errorf("%s: no HTTP client", t.Name)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return t.New(cfg)
}

// Unsupported can be embedded by provider types to answer the operations
// their capabilities exclude.
type Unsupported struct{}

// FindKeys reports ErrNotSupported.
func (Unsupported) FindKeys(context.Context, string) ([]Key, error) { return nil, ErrNotSupported }

// RootID reports that the root's id is unknown.
func (Unsupported) RootID(context.Context) (string, error) { return "", nil }

// CreateRoot reports ErrNotSupported.
func (Unsupported) CreateRoot(context.Context, string) (Root, error) {
	return Root{}, ErrNotSupported
}

// VerifyRoot reports ErrNotSupported.
func (Unsupported) VerifyRoot(context.Context, Root) error { return ErrNotSupported }

// RevokeRoot reports ErrNotSupported.
func (Unsupported) RevokeRoot(context.Context, string) error { return ErrNotSupported }
