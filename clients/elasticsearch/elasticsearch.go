// Package elasticsearch issues Elasticsearch API keys (POST
// /_security/api_key), limited by role_descriptors and expiring on their
// own, and invalidates them by id (DELETE /_security/api_key with a JSON
// body). The root is an API key (Authorization: ApiKey) or a user's
// password (Basic). Vault does not rotate the root: an API key can only
// create keys without privileges (Elasticsearch's rule for derived keys),
// and a password change kills the old password at once with no id to
// track; see docs/providers/elasticsearch.md.
package elasticsearch

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

// Field names.
const (
	fieldAPIKey   = "api_key"
	fieldUsername = "username"
	fieldPassword = "password"
)

// Key parameters.
const (
	paramRoleDescriptors = "role_descriptors"
	paramMetadata        = "metadata"
)

var capabilities = clients.Capabilities{Expiry: true, ListByName: true}

// idPattern admits Elasticsearch API key ids (URL-safe base64).
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func init() {
	clients.Register(&clients.Type{
		Name: "elasticsearch",
		Description: "Elasticsearch (self-hosted or Elastic Cloud): issues API keys limited by role_descriptors, with " +
			"an API key or a user's password as the root; the root is not rotated by Vault.",
		BaseURLRequired: true,
		Fields: []clients.Field{
			{
				Name: fieldAPIKey,
				Description: "Root API key, in its encoded form (base64 of id:api_key, the \"encoded\" value Elasticsearch " +
					"returns), sent as Authorization: ApiKey. Keys it issues cannot have privileges (Elasticsearch's rule " +
					"for keys derived from an API key): use username/password to issue keys with role_descriptors. " +
					"Set either this or username and password.",
				Sensitive: true,
			},
			{
				Name:        fieldUsername,
				Account:     true,
				Description: "User (with the manage_api_key or manage_own_api_key cluster privilege) whose password is the root, sent as Basic auth.",
			},
			{
				Name:        fieldPassword,
				Description: "Password of username.",
				Sensitive:   true,
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	key, user, pass := strings.TrimSpace(fields[fieldAPIKey]), fields[fieldUsername], fields[fieldPassword]
	switch {
	case key != "" && (user != "" || pass != ""):
		return &clients.FieldError{Field: fieldAPIKey, Message: "set either api_key or username and password, not both"}
	case key != "":
		if _, _, err := decodeAPIKey(key); err != nil {
			return &clients.FieldError{Field: fieldAPIKey, Message: err.Error()}
		}
	case user == "" && pass == "":
		return &clients.FieldError{Field: fieldAPIKey, Message: "is required unless username and password are set"}
	case user == "":
		return &clients.FieldError{Field: fieldUsername, Message: "is required with password"}
	case pass == "":
		return &clients.FieldError{Field: fieldPassword, Message: "is required with username"}
	case strings.Contains(user, ":"):
		return &clients.FieldError{Field: fieldUsername, Message: "must not contain ':' (Basic auth)"}
	}
	return nil
}

// decodeAPIKey splits an encoded API key into its id and secret.
func decodeAPIKey(encoded string) (id, secret string, err error) {
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", "", errors.New("must be the encoded API key (base64 of id:api_key), as Elasticsearch returns it in \"encoded\"")
	}
	id, secret, ok := strings.Cut(string(raw), ":")
	if !ok || !idPattern.MatchString(id) || secret == "" {
		return "", "", errors.New("must be the encoded API key (base64 of id:api_key), as Elasticsearch returns it in \"encoded\"")
	}
	return id, secret, nil
}

type provider struct {
	clients.Unsupported
	http    *httpx.Client
	base    string
	auth    string // the root's Authorization header
	secrets []string
	byKey   bool // the root is an API key
	now     func() time.Time
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	p := &provider{http: cfg.HTTP, base: cfg.BaseURL, now: time.Now}
	if key := strings.TrimSpace(cfg.Fields[fieldAPIKey]); key != "" {
		_, secret, err := decodeAPIKey(key)
		if err != nil {
			return nil, &clients.FieldError{Field: fieldAPIKey, Message: err.Error()}
		}
		p.auth, p.byKey, p.secrets = "ApiKey "+key, true, []string{key, secret}
	} else {
		user, pass := cfg.Fields[fieldUsername], cfg.Fields[fieldPassword]
		basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		p.auth, p.secrets = "Basic "+basic, []string{pass, basic}
	}
	return p, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// ValidateKeyRequest: no scopes (privileges go in role_descriptors);
// parameters role_descriptors and metadata, each a JSON object.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) > 0 {
		return &clients.FieldError{Field: "scopes", Message: "elasticsearch API keys take no scopes: give their privileges " +
			"as parameters role_descriptors (a JSON object of role descriptors)"}
	}
	for k, v := range req.Parameters {
		switch k {
		case paramRoleDescriptors, paramMetadata:
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
				return &clients.FieldError{Field: "parameters", Message: k + " must be a JSON object"}
			}
			if k == paramRoleDescriptors && len(obj) > 0 && p.byKey {
				return &clients.FieldError{Field: "parameters", Message: "role_descriptors: this provider's root is an API key, " +
					"and Elasticsearch gives keys created with an API key no privileges; configure username and " +
					"password on the provider to issue keys with role_descriptors"}
			}
		default:
			return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("unknown parameter %q: elasticsearch API keys take "+
				"role_descriptors and metadata", k)}
		}
	}
	return nil
}

type apiKey struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	APIKey      string `json:"api_key"`
	Encoded     string `json:"encoded"`
	Expiration  int64  `json:"expiration"`
	Invalidated bool   `json:"invalidated"`
	Creation    int64  `json:"creation"`
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("elasticsearch: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	body := map[string]any{"name": req.Name}
	if v, ok := req.Parameters[paramRoleDescriptors]; ok {
		body[paramRoleDescriptors] = json.RawMessage(v)
	} else if p.byKey {
		// Elasticsearch requires a derived key's empty role descriptors
		// to be explicit.
		body[paramRoleDescriptors] = map[string]any{}
	}
	if v, ok := req.Parameters[paramMetadata]; ok {
		body[paramMetadata] = json.RawMessage(v)
	}
	if !req.ExpiresAt.IsZero() {
		secs := int64(math.Ceil(req.ExpiresAt.Sub(p.now()).Seconds()))
		if secs < 1 {
			return clients.Key{}, errors.New("elasticsearch: the key's expiry is already past")
		}
		body["expiration"] = fmt.Sprintf("%ds", secs)
	}
	var k apiKey
	if err := p.call(ctx, "create", http.MethodPost, "/_security/api_key", body, &k); err != nil {
		return clients.Key{}, err
	}
	if !idPattern.MatchString(k.ID) {
		return clients.Key{}, fmt.Errorf("provider %q: create: Elasticsearch's response has no usable API key id; invalidate "+
			"the key named %q by hand if it exists", p.http.Provider(), req.Name)
	}
	secret := k.Encoded
	if secret == "" && k.APIKey != "" {
		secret = base64.StdEncoding.EncodeToString([]byte(k.ID + ":" + k.APIKey))
	}
	if secret == "" {
		_ = p.RevokeKey(ctx, k.ID)
		return clients.Key{}, fmt.Errorf("provider %q: create: Elasticsearch's response has no API key value", p.http.Provider())
	}
	key := clients.Key{ID: k.ID, Name: req.Name, Secret: secret, Extra: map[string]string{"api_key_id": k.ID}}
	if k.Expiration > 0 {
		if t := time.UnixMilli(k.Expiration).UTC(); t.Year() < 10000 {
			key.ExpiresAt = t
		}
	}
	return key, nil
}

// VerifyKey authenticates with the new key and checks that Elasticsearch
// sees that key.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("elasticsearch: verify: the key has no secret")
	}
	var who struct {
		APIKey *struct {
			ID string `json:"id"`
		} `json:"api_key"`
	}
	r := httpx.Request{Op: "verify", Method: http.MethodGet, URL: p.base + "/_security/_authenticate",
		Header: http.Header{"Authorization": {"ApiKey " + key.Secret}}}
	if _, err := p.http.JSON(ctx, r, nil, &who, p.expect(key.Secret)); err != nil {
		return err
	}
	if who.APIKey != nil && who.APIKey.ID != "" && who.APIKey.ID != key.ID {
		return fmt.Errorf("provider %q: verify: the key authenticates as API key %s, not %s", p.http.Provider(), who.APIKey.ID, key.ID)
	}
	return nil
}

// RevokeKey invalidates the key. A key Elasticsearch reports invalidated
// now or before, or does not know (404), is gone.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("elasticsearch: revoke: %q is not an API key id", id)
	}
	var res struct {
		Invalidated           []string `json:"invalidated_api_keys"`
		PreviouslyInvalidated []string `json:"previously_invalidated_api_keys"`
		ErrorCount            int      `json:"error_count"`
		ErrorDetails          []struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error_details"`
	}
	err := p.call(ctx, "revoke", http.MethodDelete, "/_security/api_key", map[string]any{"ids": []string{id}}, &res)
	if httpx.NotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if slices.Contains(res.Invalidated, id) || slices.Contains(res.PreviouslyInvalidated, id) {
		return nil
	}
	if res.ErrorCount > 0 {
		reason := ""
		if len(res.ErrorDetails) > 0 {
			reason = ": " + httpx.Redact(res.ErrorDetails[0].Type+": "+res.ErrorDetails[0].Reason, p.secrets...)
		}
		return fmt.Errorf("provider %q: revoke: Elasticsearch could not invalidate API key %s%s", p.http.Provider(), id, reason)
	}
	// Nothing matched the id: no such key (or one removed after its
	// retention period), so nothing is live under it.
	return nil
}

// FindKeys lists the valid keys named name.
func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	keys, err := p.list(ctx, url.Values{"name": {name}})
	if err != nil {
		return nil, err
	}
	return keylist.Named(keys, name), nil
}

// ListKeys lists the valid API keys the root's user owns (owner=true:
// Elasticsearch answers them all at once) for tidy: CreatedAt is creation
// (epoch milliseconds). A root that is an API key is listed under the id
// RootID returns.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	return p.list(ctx, url.Values{"owner": {"true"}})
}

// list is GET /_security/api_key with q, less invalidated keys.
func (p *provider) list(ctx context.Context, q url.Values) ([]clients.Key, error) {
	var res struct {
		APIKeys []apiKey `json:"api_keys"`
	}
	err := p.call(ctx, "list", http.MethodGet, "/_security/api_key?"+q.Encode(), nil, &res)
	if httpx.NotFound(err) {
		return nil, nil // older versions answer 404 when nothing matches
	}
	if err != nil {
		return nil, err
	}
	var out []clients.Key
	for _, k := range res.APIKeys {
		if !k.Invalidated && idPattern.MatchString(k.ID) {
			key := clients.Key{ID: k.ID, Name: k.Name, Extra: map[string]string{"api_key_id": k.ID}}
			if k.Creation > 0 {
				key.CreatedAt = time.UnixMilli(k.Creation).UTC()
			}
			out = append(out, key)
		}
	}
	return out, nil
}

// RootID checks the root with GET /_security/_authenticate; for an API key
// root it is the key's id, for a password root nothing.
func (p *provider) RootID(ctx context.Context) (string, error) {
	var who struct {
		APIKey *struct {
			ID string `json:"id"`
		} `json:"api_key"`
	}
	if err := p.call(ctx, "check_root", http.MethodGet, "/_security/_authenticate", nil, &who); err != nil {
		return "", err
	}
	if p.byKey && who.APIKey != nil && idPattern.MatchString(who.APIKey.ID) {
		return who.APIKey.ID, nil
	}
	return "", nil
}

func (p *provider) expect(redact ...string) httpx.Expect {
	return httpx.Expect{Message: apiMessage, Redact: append(slices.Clone(p.secrets), redact...)}
}

// call sends a request with the root's credentials.
func (p *provider) call(ctx context.Context, op, method, path string, in, out any) error {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Authorization": {p.auth}}}
	_, err := p.http.JSON(ctx, r, in, out, p.expect())
	return err
}

// apiMessage extracts Elasticsearch's {"error":{"type","reason"},"status"}
// text (or a plain {"error": "…"}).
func apiMessage(body []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || len(e.Error) == 0 {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return ""
		}
		return httpx.TextMessage(body)
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil {
		return s
	}
	var obj struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	}
	if json.Unmarshal(e.Error, &obj) != nil {
		return ""
	}
	if obj.Type != "" {
		return obj.Type + ": " + obj.Reason
	}
	return obj.Reason
}
