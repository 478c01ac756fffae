// Package clients holds the provider interface that every third-party API
// implements, the registry of provider types, and (in httpx) the one HTTP
// layer they share. Nothing here imports the Vault sdk.
package clients

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// Field declares one flat configuration field of a provider type. The
// backend builds the providers/<name> schema from the union of all types'
// fields, so path-help and OpenAPI describe each of them.
type Field struct {
	Name        string
	Description string
	Required    bool
	// Sensitive fields are write-only: stored seal-wrapped, never returned by
	// a read, never logged.
	Sensitive bool
	// Default applies on create when the field is not given.
	Default string
	// Destination fields choose where the root credential is sent (a host,
	// a site, a base URL other than base_url). Changing one, like changing
	// base_url, needs the root credential again in the same write.
	Destination bool
	// Account fields choose which account (organisation, project, team,
	// subuser, service account, app…) the issued keys live in, at the same
	// host. A key is revoked where the provider's configuration points, so
	// changing one while keys live in the old account would send their
	// revocations to the new one; the backend refuses that (base_url and
	// Destination fields count as account fields too).
	Account bool
	// URL fields hold a base URL: the backend holds them to base_url's
	// rules (https unless loopback or allow_insecure_http, no userinfo).
	URL bool
}

// Capabilities tells the backend what a provider type can do.
type Capabilities struct {
	// Expiry: keys can be created to expire on their own at KeyRequest.ExpiresAt.
	Expiry bool
	// ListByName: FindKeys can find keys by the name they were created with,
	// so a WAL rollback can revoke a key whose id was never recorded.
	ListByName bool
	// RootRotation: the root credential can be rotated by Vault.
	RootRotation bool
	// NativeRoll: root rotation uses a roll-style API (the old value dies at
	// once, the new value exists only in the response), so the backend must
	// persist the new root before anything else.
	NativeRoll bool
	// MaxLiveKeys is how many issued keys the provider lets exist at once
	// where a role issues them (Okta: two client secrets per app); 0 means
	// no bound. A dual role holds two at most (invariant 1), so a bound of
	// two still serves dual roles, never dynamic ones (see the backend's
	// key_slots.go).
	MaxLiveKeys int
}

// Config is what the backend hands a provider type to build a client.
type Config struct {
	// Name of the provider instance in Vault (for error text and metrics).
	Name string
	// BaseURL is the API root; already defaulted and validated.
	BaseURL string
	// Fields are the type's own fields, sensitive ones included.
	Fields map[string]string
	// HTTP is the shared HTTP layer configured for this provider instance.
	HTTP *httpx.Client
}

// KeyRequest describes a key to create.
type KeyRequest struct {
	// Name is the key's unique name at the provider (unique per attempt).
	Name string
	// Scopes are provider-specific permissions.
	Scopes []string
	// Parameters are provider-specific create options.
	Parameters map[string]string
	// ExpiresAt, when not zero and the type supports expiry, makes the key
	// expire on its own at the provider.
	ExpiresAt time.Time
}

// Key is a key that exists at the provider.
type Key struct {
	ID     string
	Name   string
	Secret string
	// ExpiresAt is the provider-side expiry, zero when none.
	ExpiresAt time.Time
	// CreatedAt is when the provider created the key, where it says (set
	// by ListKeys; zero when unknown).
	CreatedAt time.Time
	// Extra holds provider-specific, non-secret values returned with the key
	// (e.g. a Twilio SID); they are returned to the reader of creds.
	Extra map[string]string
}

// Root is a root (admin) credential: its id at the provider where one
// exists, and the values of the type's sensitive fields that make it up.
type Root struct {
	ID     string
	Fields map[string]string
	// ExpiresAt is the root's provider-side expiry where the API reports
	// one, zero when none (or unknown).
	ExpiresAt time.Time
}

// Provider is one configured third-party API.
type Provider interface {
	Capabilities() Capabilities
	// ValidateKeyRequest checks a role's scopes and parameters without
	// calling the API, so a mistake is found when the role is written. A
	// problem is a *FieldError naming "scopes" or "parameters". CreateKey
	// applies the same checks.
	ValidateKeyRequest(req KeyRequest) error
	// CreateKey creates a key. The returned Key has ID and Secret set.
	CreateKey(ctx context.Context, req KeyRequest) (Key, error)
	// VerifyKey checks that the key is accepted by the provider.
	VerifyKey(ctx context.Context, key Key) error
	// RevokeKey deletes the key by id. A key already gone is not an error.
	RevokeKey(ctx context.Context, id string) error
	// FindKeys lists keys whose name equals name (only with ListByName).
	FindKeys(ctx context.Context, name string) ([]Key, error)

	// RootID returns the id of the configured root credential when the
	// provider can tell it (empty otherwise).
	RootID(ctx context.Context) (string, error)
	// CreateRoot creates a new root credential (named name where the API
	// names them). With NativeRoll the old root stops working at once.
	CreateRoot(ctx context.Context, name string) (Root, error)
	// VerifyRoot checks that the given root credential works.
	VerifyRoot(ctx context.Context, root Root) error
	// RevokeRoot deletes the old root credential by id, using the current
	// (new) root. Gone already is not an error.
	RevokeRoot(ctx context.Context, oldID string) error
}

// ErrNotSupported is returned by operations a type's capabilities exclude.
var ErrNotSupported = errors.New("not supported by this provider type")

// Type is a registered provider type.
type Type struct {
	Name        string
	Description string
	// DefaultBaseURL is used when base_url is not given. When it is empty
	// and BaseURLRequired is false, the client derives its URL from other
	// fields (e.g. Datadog's site).
	DefaultBaseURL  string
	BaseURLRequired bool
	// MaxKeyNameLength is the longest key name (in characters) the
	// provider's API documents; 0 means undocumented (DefaultMaxKeyNameLength).
	MaxKeyNameLength int
	// DefaultMaxRequestsPerSecond is the request rate the provider's API
	// publishes as its limit for one account, used when a provider instance
	// sets no max_requests_per_second; 0 means none is published (no cap:
	// the rate-limit headers and 429s still hold the budget).
	DefaultMaxRequestsPerSecond float64
	Fields                      []Field
	Capabilities                Capabilities
	// Validate checks type-specific field values (already merged with
	// defaults); it returns a *FieldError naming the bad field.
	Validate func(fields map[string]string) error
	// New builds a client. Call it through Build, which has already run
	// Validate, checked that HTTP is set and trimmed BaseURL's trailing "/".
	New func(cfg Config) (Provider, error)
}

// DefaultMaxKeyNameLength is the key name limit of types whose API
// documents none.
const DefaultMaxKeyNameLength = 128

// KeyNameLimit is the longest key name the type accepts.
func (t *Type) KeyNameLimit() int {
	if t.MaxKeyNameLength > 0 {
		return t.MaxKeyNameLength
	}
	return DefaultMaxKeyNameLength
}

// NoParameters is ValidateKeyRequest's check for a type whose keys take no
// parameters: a FieldError listing the ones given, with why.
func NoParameters(req KeyRequest, why string) error {
	if len(req.Parameters) == 0 {
		return nil
	}
	names := make([]string, 0, len(req.Parameters))
	for k := range req.Parameters {
		names = append(names, strconv.Quote(k))
	}
	sort.Strings(names)
	return &FieldError{Field: "parameters", Message: "unknown parameter " + strings.Join(names, ", ") + ": " + why}
}

// ParameterNames returns the names of req's parameters, sorted, so that a
// type checks them (and reports the first bad one) in a stable order.
func ParameterNames(req KeyRequest) []string {
	names := make([]string, 0, len(req.Parameters))
	for k := range req.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// FieldError is a user error about one configuration field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// KeyLister is implemented by types that can list every live key of the
// account (never their values), so that tidy can find keys this mount
// created but no longer accounts for. Each Key has ID, Name and, where the
// provider tells it, CreatedAt; a key whose CreatedAt is zero is reported by
// tidy but never revoked, its age being unknown.
type KeyLister interface {
	ListKeys(ctx context.Context) ([]Key, error)
}

// RootFinder is implemented by types that can list root credentials by
// name, so WAL rollback can discard a new root whose id was never recorded.
type RootFinder interface {
	FindRoots(ctx context.Context, name string) ([]Root, error)
}

// RootInspector is implemented by types that can tell, with the configured
// root, its id and provider-side expiry (Root.ID and Root.ExpiresAt; Fields
// stay empty). The backend calls it instead of RootID when a root is
// written, so an operator-supplied root's expiry is known from the start.
type RootInspector interface {
	InspectRoot(ctx context.Context) (Root, error)
}

// RootDiscarder is implemented by types where throwing away a new root that
// was never stored differs from revoking an old root by id (e.g. Twilio's
// secondary auth token is deleted, not promoted). Otherwise the backend
// calls RevokeRoot(newRoot.ID) with the old root.
type RootDiscarder interface {
	DiscardRoot(ctx context.Context, newRoot Root) error
}
