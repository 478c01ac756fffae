package backend

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// A key is revoked where its provider's configuration points. An update
// that points a provider at another account (base_url, a destination
// field, an account field such as sendgrid's on_behalf_of) keeps its
// incarnation, so the revocations of keys living in the old account would
// go to the new one, find nothing there (a 404 counts as revoked) and leave
// the keys live for good. Such an update is refused while keys live in the
// account, unless the writer confirms with same_account=true that the new
// value reaches the same account (a proxy, a renamed host). To move to
// another account, create another provider (or delete the roles and the
// provider, whose tombstone then keeps the old account's config, and
// create it again).

// accountChange names the first field of an update that points the
// provider elsewhere: base_url, then the type's destination and account
// fields in their order ("" when none changes).
func accountChange(typ *clients.Type, old, e *providerEntry) string {
	if old.BaseURL != e.BaseURL {
		return "base_url"
	}
	for _, f := range typ.Fields {
		if (f.Destination || f.Account) && old.Fields[f.Name] != e.Fields[f.Name] {
			return f.Name
		}
	}
	return ""
}

// checkAccountSwitch refuses an update that points the provider at another
// account while keys live in the current one. It runs before the probe, so
// a refused write sends nothing anywhere.
func (b *backend) checkAccountSwitch(ctx context.Context, s logical.Storage, name string, w *providerWriteOp) (*logical.Response, error) {
	if w.creating {
		return nil, nil
	}
	field := accountChange(w.typ, w.old, w.e)
	if field == "" {
		return nil, nil
	}
	if w.sameAccount {
		b.Logger().Info("provider pointed elsewhere, confirmed as the same account", "provider", name, "field", field)
		return nil, nil
	}
	users, err := w.rolesOf(ctx, s, name)
	if err != nil {
		return nil, err
	}
	held, err := b.keysAtAccount(ctx, s, name, w.old, users)
	if err != nil || len(held) == 0 {
		return nil, err
	}
	return logical.ErrorResponse("%s: provider %q still has keys in the account it points at now: %s. Their revocations would go to the new account and leave them live. "+
		"For another account, create another provider; if the new value reaches the same account, write it again with same_account=true",
		field, name, strings.Join(held, "; ")), nil
}

// keysAtAccount describes what lives in a provider incarnation's account
// and is revoked through its configuration: ledger entries (dynamic keys,
// keys of deleted dual roles), orphans tidy waits to revoke, the keys of
// its dual roles (among users, the roles using it), old roots not yet
// revoked, creations WAL rollback has yet to settle, and leases of v0.1.0.
func (b *backend) keysAtAccount(ctx context.Context, s logical.Storage, name string, e *providerEntry, users map[string]*roleEntry) ([]string, error) {
	var held []string
	ids, err := ledgerIDs(ctx, s, name, e.Incarnation)
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		held = append(held, fmt.Sprintf("%d dynamic keys or keys of deleted dual roles (ledger entries)", len(ids)))
	}
	orphans, err := orphansPending(ctx, s, name, e.Incarnation)
	if err != nil {
		return nil, err
	}
	if orphans > 0 {
		held = append(held, fmt.Sprintf("%d orphans tidy has yet to revoke", orphans))
	}
	var dual []string
	for _, rn := range slices.Sorted(maps.Keys(users)) {
		if users[rn].Mode == modeDual {
			dual = append(dual, rn)
		}
	}
	if len(dual) > 0 {
		held = append(held, "the keys of dual roles "+strings.Join(dual, ", "))
	}
	if n := len(e.PendingRootRevocations); n > 0 {
		held = append(held, fmt.Sprintf("%d replaced roots not yet revoked", n))
	}
	n, err := walEntriesOf(ctx, s, name, e.Incarnation)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		held = append(held, fmt.Sprintf("%d keys or roots whose creation WAL rollback has yet to settle (WAL entries)", n))
	}
	if e.LegacyLeasesUntil.After(b.clock.Now()) {
		held = append(held, "leases issued by v0.1.0 until "+formatTime(e.LegacyLeasesUntil))
	}
	return held, nil
}
