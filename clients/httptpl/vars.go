package httptpl

import (
	"math"
	"reflect"
	"time"
)

// step says which variables a template sees. Each step has its own struct,
// so a variable the step does not provide (e.g. .Key.Secret while creating)
// is an error when the provider is configured, not an empty string at run
// time.
type step int

const (
	stepCreate     step = iota // create_path, create_body, create_headers
	stepVerify                 // verify_path, key_auth_header
	stepRevoke                 // revoke_path, revoke_body
	stepList                   // list_path
	stepRootCreate             // root_create_path, root_create_body
	stepRootVerify             // root_verify_path
	stepRootRevoke             // root_revoke_path
	stepAuth                   // auth_header
)

// Root is a root credential.
type rootVars struct {
	ID     string
	Secret string
}

// rootRef is a root credential known by id only.
type rootRef struct {
	ID string
}

type createKey struct {
	Name        string
	ExpiresAt   string
	ExpiresUnix int64
	TTLSeconds  int64
}

type issuedKey struct {
	ID          string
	Name        string
	Secret      string
	ExpiresAt   string
	ExpiresUnix int64
	TTLSeconds  int64
}

type keyRef struct {
	ID string
}

type namedKey struct {
	Name string
}

type createVars struct {
	Key        createKey
	Scopes     []string
	Parameters map[string]string
	Root       rootVars
}

type verifyVars struct {
	Key  issuedKey
	Root rootRef
}

type revokeVars struct {
	Key  keyRef
	Root rootVars
}

type namedVars struct {
	Key  namedKey
	Root rootVars
}

type rootVerifyVars struct {
	NewRoot rootVars
}

type rootRevokeVars struct {
	Root    rootRef
	NewRoot rootVars
}

type authVars struct {
	Root rootVars
}

var stepVars = map[step]reflect.Type{
	stepCreate:     reflect.TypeOf(createVars{}),
	stepVerify:     reflect.TypeOf(verifyVars{}),
	stepRevoke:     reflect.TypeOf(revokeVars{}),
	stepList:       reflect.TypeOf(namedVars{}),
	stepRootCreate: reflect.TypeOf(namedVars{}),
	stepRootVerify: reflect.TypeOf(rootVerifyVars{}),
	stepRootRevoke: reflect.TypeOf(rootRevokeVars{}),
	stepAuth:       reflect.TypeOf(authVars{}),
}

// expiryVars fills the expiry variables for a key that expires at t (all
// empty/zero when t is zero).
func expiryVars(t, now time.Time) (at string, unix, ttl int64) {
	if t.IsZero() {
		return "", 0, 0
	}
	t = t.UTC()
	ttl = int64(math.Ceil(t.Sub(now).Seconds()))
	if ttl < 1 {
		ttl = 1
	}
	return t.Format(time.RFC3339), t.Unix(), ttl
}

// sampleVars are the values Validate renders every template with, twice:
// once full (with characters that need escaping everywhere) and once empty,
// so both branches of an {{if}} on a variable are exercised.
func sampleVars(s step, full bool) any {
	str := func(v string) string {
		if full {
			return v
		}
		return ""
	}
	var exp time.Time
	if full {
		exp = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	at, unix, ttl := expiryVars(exp, exp.Add(-time.Hour))
	root := rootVars{ID: str("sample-root-id"), Secret: str("sample-root-secret")}
	name := str(`vault-sample "name" \ <&>`)
	switch s {
	case stepCreate:
		v := createVars{
			Key:        createKey{Name: name, ExpiresAt: at, ExpiresUnix: unix, TTLSeconds: ttl},
			Scopes:     []string{},
			Parameters: map[string]string{},
			Root:       root,
		}
		if full {
			v.Scopes = []string{"sample:read", `sample "write"`}
			v.Parameters = map[string]string{"sample": `value "x"`}
		}
		return v
	case stepVerify:
		return verifyVars{
			Key: issuedKey{ID: str("sample-key-id"), Name: name, Secret: str("sample-key-secret"),
				ExpiresAt: at, ExpiresUnix: unix, TTLSeconds: ttl},
			Root: rootRef{ID: root.ID},
		}
	case stepRevoke:
		return revokeVars{Key: keyRef{ID: str("sample-key-id")}, Root: root}
	case stepList, stepRootCreate:
		return namedVars{Key: namedKey{Name: name}, Root: root}
	case stepRootVerify:
		return rootVerifyVars{NewRoot: rootVars{ID: str("sample-new-root-id"), Secret: str("sample-new-root-secret")}}
	case stepRootRevoke:
		return rootRevokeVars{Root: rootRef{ID: root.ID}, NewRoot: rootVars{ID: str("sample-new-root-id"), Secret: str("sample-new-root-secret")}}
	case stepAuth:
		return authVars{Root: root}
	}
	panic("httptpl: unknown step")
}
