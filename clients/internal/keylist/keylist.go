// Package keylist is what the provider types that list their account's keys
// share: their FindKeys is their ListKeys (clients.KeyLister) filtered by
// name, so that the listing, its paging and its checks are written once.
package keylist

import (
	"context"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// Named returns the keys of keys whose Name is name, in order.
func Named(keys []clients.Key, name string) []clients.Key {
	var out []clients.Key
	for _, k := range keys {
		if k.Name == name {
			out = append(out, k)
		}
	}
	return out
}

// Find is a FindKeys written as list filtered by name: list is the type's
// ListKeys (or a narrower call that lists a superset of the keys named so).
func Find(ctx context.Context, list func(context.Context) ([]clients.Key, error), name string) ([]clients.Key, error) {
	keys, err := list(ctx)
	if err != nil {
		return nil, err
	}
	return Named(keys, name), nil
}
