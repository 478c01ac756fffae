package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// nameRegex matches names as DESIGN.md fixes them.
func nameRegex(field string) string {
	return `(?P<` + field + `>[A-Za-z0-9][A-Za-z0-9_.-]*)`
}

// maxNameLength caps provider and role names: they become storage keys,
// metric labels and key names at the provider.
const maxNameLength = 128

// namedPaths are the path families whose last segment is a provider or
// role name, with the name's field.
var namedPaths = []struct{ prefix, field string }{
	{"providers/", "name"}, {"roles/", "name"}, {"creds/", "role"},
	{"rotate-role/", "name"}, {"rotate-root/", "name"},
}

// checkName returns why name is not a valid provider or role name, or "".
// The path pattern already holds names to [A-Za-z0-9][A-Za-z0-9_.-]*;
// Vault's storage refuses "..", and a cap keeps names usable.
func checkName(name string) string {
	switch {
	case strings.Contains(name, ".."):
		return `must not contain ".."`
	case len(name) > maxNameLength:
		return fmt.Sprintf("must be at most %d characters, not %d", maxNameLength, len(name))
	}
	return ""
}

// checkPathName is the 400 for a request whose path names a provider or
// role by a name checkName refuses (nil otherwise), before anything reads
// storage with it.
func checkPathName(path string) *logical.Response {
	for _, p := range namedPaths {
		if name, ok := strings.CutPrefix(path, p.prefix); ok && name != "" && !strings.Contains(name, "/") {
			if msg := checkName(name); msg != "" {
				return logical.ErrorResponse("%s: %s", p.field, msg)
			}
		}
	}
	return nil
}

func getJSON(ctx context.Context, s logical.Storage, key string, out any) (bool, error) {
	entry, err := s.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	if entry == nil {
		return false, nil
	}
	if err := decodeJSON(entry, out); err != nil {
		return false, fmt.Errorf("decoding %s: %w", key, err)
	}
	return true, nil
}

// decodeJSON decodes a stored entry. What putJSON wrote is a plain JSON
// object, which json.Unmarshal decodes several times faster than
// entry.DecodeJSON (a stream decoder behind a decompression check); any
// other value (a compressed one) takes that way.
func decodeJSON(entry *logical.StorageEntry, out any) error {
	if len(entry.Value) > 0 && entry.Value[0] == '{' {
		return json.Unmarshal(entry.Value, out)
	}
	return entry.DecodeJSON(out)
}

// getEntry reads the JSON entry at key; nil when there is none.
func getEntry[T any](ctx context.Context, s logical.Storage, key string) (*T, error) {
	var v T
	ok, err := getJSON(ctx, s, key, &v)
	if err != nil || !ok {
		return nil, err
	}
	return &v, nil
}

func putJSON(ctx context.Context, s logical.Storage, key string, v any) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

// formatTime renders a time for responses: RFC3339 UTC, "" when unset.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// durationField reads an optional duration field; ok is false when absent.
func durationField(d *framework.FieldData, name string) (time.Duration, bool) {
	v, ok := d.GetOk(name)
	if !ok {
		return 0, false
	}
	return time.Duration(v.(int)) * time.Second, true
}
