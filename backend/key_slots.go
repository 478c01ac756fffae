package backend

import (
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// Key slots: some providers bound how many issued keys may live at once
// where a role issues them (clients.Capabilities.MaxLiveKeys; Okta allows
// two client secrets per app). A dual role needs two slots at most: the
// current key and the previous one in its overlap. rotateRole never makes
// a third: while the previous key is in its overlap a manual rotate-role
// is a 400 (errPreviousNotRetired) unless revoke_previous=true, which
// revokes it before the new key is created; a scheduled rotation due in
// that state waits until the previous key is retired and revoked
// (roleJob), and then runs. So the only check left is here, at role
// write: a dynamic role, whose leases each hold a key, cannot fit in a
// bound of two, and a dual role cannot fit in one.

// keySlotsRoleCheck refuses a role that the provider's bound on live keys
// cannot serve; nil when it can.
func keySlotsRoleCheck(r *roleEntry, caps clients.Capabilities) *logical.Response {
	n := caps.MaxLiveKeys
	switch {
	case n <= 0:
		return nil
	case r.Mode == modeDynamic && n <= 2:
		return logical.ErrorResponse("mode: provider %q holds at most %d live keys where it issues them, so it cannot give every "+
			"lease a key of its own; use mode=dual", r.Provider, n)
	case r.Mode == modeDual && n < 2:
		return logical.ErrorResponse("mode: provider %q holds at most one live key where it issues it: a dual role needs two "+
			"(the current key and the previous one during the overlap)", r.Provider)
	}
	return nil
}

// keySlotsRehearsalCheck refuses a dry run that would need one key more
// than the provider holds where it issues them: a rehearsal creates a key
// beside the role's current one (and its previous one, in its overlap).
func keySlotsRehearsalCheck(provider string, st *dualState, caps clients.Capabilities) *logical.Response {
	n := caps.MaxLiveKeys
	if n <= 0 || st == nil {
		return nil
	}
	live := 0
	if st.Current != nil {
		live++
	}
	if st.Previous != nil {
		live++
	}
	if live < n {
		return nil
	}
	return logical.ErrorResponse("dry_run: provider %q holds at most %d live keys where it issues them and the role has %d "+
		"(its previous key is still in its overlap): a rehearsal needs one more; run it once the previous key is retired", provider, n, live)
}
