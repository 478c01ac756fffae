// Package algolia issues Algolia API keys scoped by ACL (the role's scopes),
// indexes and referers, with a provider-side validity for dynamic keys.
// Algolia identifies a key by its value, so the key id Vault stores and
// shows is a digest of the value ("k-" and 16 hex digits), never the value:
// revoking by id first finds the value in the application's key list. The
// admin API key cannot be created or rotated through the API, so this type
// cannot rotate its root.
package algolia

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

// TypeName is the provider type.
const TypeName = "algolia"

const (
	fieldAppID    = "application_id"
	fieldAdminKey = "admin_key"

	paramIndexes  = "indexes"
	paramReferers = "referers"
	paramMaxHits  = "maxHitsPerQuery"
	paramMaxQPH   = "maxQueriesPerIPPerHour"

	// idPrefix marks a key id that is a digest of the key's value.
	idPrefix = "k-"
)

var capabilities = clients.Capabilities{Expiry: true, ListByName: true}

// ACLs are the documented ACL values a key may carry.
var ACLs = []string{"search", "browse", "addObject", "deleteObject", "listIndexes", "deleteIndex", "settings", "editSettings",
	"analytics", "recommendation", "usage", "logs", "seeUnretrievableAttributes", "inference", "personalization"}

var (
	appIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)
	idPattern    = regexp.MustCompile(`^k-[0-9a-f]{16}$`)
)

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "Algolia: issues API keys scoped by ACL, indexes and referers, with a validity for dynamic keys. " +
			"The admin API key cannot be rotated through Algolia's API.",
		Fields: []clients.Field{
			{
				Name:        fieldAppID,
				Description: "Algolia application id; the API is https://<application_id>.algolia.net unless base_url is set.",
				Required:    true,
				Destination: true,
			},
			{
				Name: fieldAdminKey,
				Description: "The application's admin API key (only it can create and delete keys). Algolia's API cannot " +
					"rotate it: rotate it in the dashboard and write the new one here.",
				Required:  true,
				Sensitive: true,
			},
		},
		Capabilities: capabilities,
		Validate: func(fields map[string]string) error {
			if v := strings.TrimSpace(fields[fieldAppID]); !appIDPattern.MatchString(v) {
				return &clients.FieldError{Field: fieldAppID, Message: fmt.Sprintf("must be an Algolia application id: letters and digits (got %q)", v)}
			}
			if strings.TrimSpace(fields[fieldAdminKey]) == "" {
				return &clients.FieldError{Field: fieldAdminKey, Message: "is required"}
			}
			return nil
		},
		New: func(cfg clients.Config) (clients.Provider, error) {
			appID := strings.TrimSpace(cfg.Fields[fieldAppID])
			base := cfg.BaseURL
			if base == "" {
				base = "https://" + appID + ".algolia.net"
			}
			return &provider{http: cfg.HTTP, base: base, appID: appID, admin: strings.TrimSpace(cfg.Fields[fieldAdminKey])}, nil
		},
	})
}

type provider struct {
	clients.Unsupported
	http        *httpx.Client
	base, appID string
	admin       string
}

// KeyID is the id Vault keeps for a key value: a digest, so that the value
// itself (which is Algolia's identifier) never appears in a read.
func KeyID(value string) string {
	sum := sha256.Sum256([]byte(value))
	return idPrefix + hex.EncodeToString(sum[:8])
}

type apiKey struct {
	Value       string `json:"value"`
	Description string `json:"description"`
	CreatedAt   int64  `json:"createdAt"`
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// ValidateKeyRequest: scopes are the ACL (at least one, documented values);
// parameters indexes and referers (comma-separated), maxHitsPerQuery and
// maxQueriesPerIPPerHour (non-negative integers).
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) == 0 {
		return &clients.FieldError{Field: "scopes", Message: "algolia keys need an ACL: at least one of " + strings.Join(ACLs, ", ")}
	}
	for _, s := range req.Scopes {
		if !slices.Contains(ACLs, s) {
			return &clients.FieldError{Field: "scopes", Message: fmt.Sprintf("%q is not an Algolia ACL; use %s", s, strings.Join(ACLs, ", "))}
		}
	}
	for k, v := range req.Parameters {
		switch k {
		case paramIndexes, paramReferers:
		case paramMaxHits, paramMaxQPH:
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("%s must be a non-negative integer (got %q)", k, v)}
			}
		default:
			return clients.NoParameters(clients.KeyRequest{Parameters: map[string]string{k: v}},
				"algolia keys take indexes, referers, maxHitsPerQuery and maxQueriesPerIPPerHour")
		}
	}
	return nil
}

func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("algolia: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	body := map[string]any{"acl": req.Scopes, "description": req.Name}
	for _, k := range []string{paramIndexes, paramReferers} {
		if v, ok := req.Parameters[k]; ok {
			body[k] = list(v)
		}
	}
	for _, k := range []string{paramMaxHits, paramMaxQPH} {
		if v, ok := req.Parameters[k]; ok {
			n, _ := strconv.Atoi(v)
			body[k] = n
		}
	}
	var expires time.Time
	if !req.ExpiresAt.IsZero() {
		secs := int(time.Until(req.ExpiresAt).Seconds())
		if secs < 1 {
			return clients.Key{}, fmt.Errorf("provider %q: create: the key would expire before it is made", p.http.Provider())
		}
		body["validity"] = secs
		expires = time.Now().Add(time.Duration(secs) * time.Second).UTC().Truncate(time.Second)
	}
	var out struct {
		Key string `json:"key"`
	}
	if err := p.call(ctx, "create", http.MethodPost, "/1/keys", "", p.admin, body, &out); err != nil {
		return clients.Key{}, err
	}
	if out.Key == "" {
		return clients.Key{}, fmt.Errorf("provider %q: create: Algolia's response has no key; delete the key described %q by hand if it exists",
			p.http.Provider(), req.Name)
	}
	return clients.Key{ID: KeyID(out.Key), Name: req.Name, Secret: out.Key, ExpiresAt: expires,
		Extra: map[string]string{"application_id": p.appID}}, nil
}

// VerifyKey reads the key with itself (any key may read its own ACL).
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("algolia: verify: the key has no secret")
	}
	return p.call(ctx, "verify", http.MethodGet, "/1/keys/", key.Secret, key.Secret, nil, nil)
}

// RevokeKey finds the value whose digest is id in the key list and deletes
// it; a key not in the list is gone already.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("algolia: revoke: %q is not a key id of this provider", id)
	}
	keys, err := p.keys(ctx, "revoke")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if KeyID(k.Value) == id {
			err := p.call(ctx, "revoke", http.MethodDelete, "/1/keys/", k.Value, p.admin, nil, nil)
			if httpx.NotFound(err) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (p *provider) keys(ctx context.Context, op string) ([]apiKey, error) {
	var out struct {
		Keys []apiKey `json:"keys"`
	}
	if err := p.call(ctx, op, http.MethodGet, "/1/keys", "", p.admin, nil, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the application's keys (Algolia answers them all at once)
// for tidy: Name is the description, CreatedAt is createdAt (epoch
// seconds). The admin key is never among them.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	keys, err := p.keys(ctx, "list")
	if err != nil {
		return nil, err
	}
	var out []clients.Key
	for _, k := range keys {
		if k.Value == "" || k.Value == p.admin {
			continue
		}
		key := clients.Key{ID: KeyID(k.Value), Name: k.Description}
		if k.CreatedAt > 0 {
			key.CreatedAt = time.Unix(k.CreatedAt, 0).UTC()
		}
		out = append(out, key)
	}
	return out, nil
}

// RootID checks the admin key (it lists keys, which only the admin key
// may); the admin key has no id.
func (p *provider) RootID(ctx context.Context) (string, error) {
	_, err := p.keys(ctx, "verify_root")
	return "", err
}

// call sends a request with the application id and secret; a key value in
// the path (pathKey, appended to path) never shows in an error.
func (p *provider) call(ctx context.Context, op, method, path, pathKey, secret string, in, out any) error {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path + url.PathEscape(pathKey),
		Header:  http.Header{"X-Algolia-Application-Id": {p.appID}, "X-Algolia-API-Key": {secret}},
		Secrets: []string{p.admin, secret, pathKey}}
	if pathKey != "" {
		r.ShownPath = path + "[redacted]"
	}
	_, err := p.http.JSON(ctx, r, in, out, httpx.Expect{Message: httpx.MessageField})
	return err
}
