package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// nameRegex matches names as DESIGN.md fixes them.
func nameRegex(field string) string {
	return `(?P<` + field + `>[A-Za-z0-9][A-Za-z0-9_.-]*)`
}

// storageTimeout bounds a storage write made on a fresh context, after the
// request's own context has run out (to record a failure or an abandoned
// key).
const storageTimeout = 30 * time.Second

func getJSON(ctx context.Context, s logical.Storage, key string, out any) (bool, error) {
	entry, err := s.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	if entry == nil {
		return false, nil
	}
	if err := entry.DecodeJSON(out); err != nil {
		return false, fmt.Errorf("decoding %s: %w", key, err)
	}
	return true, nil
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
