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
