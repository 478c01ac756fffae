// Package sendgrid issues Twilio SendGrid API keys through the v3 API and
// rotates the root API key by creating a key with the same scopes and
// deleting the old one.
package sendgrid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

const (
	// TypeName is the provider type's name in the registry.
	TypeName       = "sendgrid"
	defaultBaseURL = "https://api.sendgrid.com"

	fieldAPIKey     = "api_key"
	fieldOnBehalfOf = "on_behalf_of"
	fieldAPIKeyID   = "api_key_id"

	// listLimit covers every key of an account: SendGrid allows 100.
	listLimit = 100
)

// autoScopes are added by SendGrid to keys on its own; they are not copied
// when the root key is re-created.
var autoScopes = map[string]bool{
	"2fa_required":                 true,
	"sender_verification_eligible": true,
	"sender_verification_exempt":   true,
}

// rootScopes are what a root key needs to issue, revoke and rotate keys.
var rootScopes = []string{"api_keys.create", "api_keys.delete"}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "Twilio SendGrid API keys (v3 API). Keys carry the role's scopes; " +
			"the root API key is rotated by creating a key with the same scopes and deleting the old one.",
		DefaultBaseURL: defaultBaseURL,
		Fields: []clients.Field{
			{
				Name: fieldAPIKey,
				Description: "SendGrid API key (\"SG.<id>.<secret>\") that Vault uses to manage keys. " +
					"It needs the scopes api_keys.create, api_keys.read and api_keys.delete, plus every scope " +
					"a role grants. Write-only.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name:    fieldOnBehalfOf,
				Account: true,
				Description: "Optional subuser username (or \"account-id <id>\") sent as the on-behalf-of header " +
					"when issuing, listing and revoking keys, so issued keys belong to that subuser. " +
					"Root rotation always acts on the parent account that owns api_key.",
			},
			{
				Name: fieldAPIKeyID,
				Description: "Optional API key ID of api_key. Only needed if the ID cannot be read from the key " +
					"itself (the middle part of SG.<id>.<secret>); root rotation uses it to delete the old root key.",
			},
		},
		Capabilities: clients.Capabilities{ListByName: true, RootRotation: true},
		Validate:     validate,
		New:          newClient,
	})
}

func validate(fields map[string]string) error {
	key := fields[fieldAPIKey]
	if strings.TrimSpace(key) == "" {
		return &clients.FieldError{Field: fieldAPIKey, Message: "is required"}
	}
	if strings.ContainsAny(key, " \r\n\t") {
		return &clients.FieldError{Field: fieldAPIKey, Message: "must not contain whitespace"}
	}
	if v := fields[fieldOnBehalfOf]; strings.ContainsAny(v, "\r\n") {
		return &clients.FieldError{Field: fieldOnBehalfOf, Message: "must be a single line"}
	}
	if v := fields[fieldAPIKeyID]; v != "" && !keyIDPattern.MatchString(v) {
		return &clients.FieldError{Field: fieldAPIKeyID, Message: "must contain only letters, digits, '-' and '_'"}
	}
	return nil
}

type client struct {
	http       *httpx.Client
	base       string
	apiKey     string
	onBehalfOf string
	apiKeyID   string // the api_key_id field, possibly empty
}

func newClient(cfg clients.Config) (clients.Provider, error) {
	base := cfg.BaseURL
	if base == "" {
		base = defaultBaseURL
	}
	return &client{
		http:       cfg.HTTP,
		base:       base,
		apiKey:     cfg.Fields[fieldAPIKey],
		onBehalfOf: strings.TrimSpace(cfg.Fields[fieldOnBehalfOf]),
		apiKeyID:   cfg.Fields[fieldAPIKeyID],
	}, nil
}

func (c *client) Capabilities() clients.Capabilities {
	return clients.Capabilities{ListByName: true, RootRotation: true}
}

// call sends one request authenticated with bearer, decodes a 2xx JSON body
// into out (when not nil) and turns any other status into an error that
// carries SendGrid's own message with every secret removed.
func (c *client) call(ctx context.Context, op, method, path, bearer string, subuser bool, in, out any, secrets ...string) error {
	h := http.Header{"Authorization": {"Bearer " + bearer}}
	if subuser && c.onBehalfOf != "" {
		h.Set("On-Behalf-Of", c.onBehalfOf)
	}
	req := httpx.Request{Op: op, Method: method, URL: c.base + path, Header: h}
	redact := append([]string{c.apiKey, bearer}, secrets...)
	_, err := c.http.JSON(ctx, req, in, out, httpx.Expect{Message: errorMessage, Redact: redact})
	return err
}

// errorMessage extracts SendGrid's {"errors":[{"field","message"}]} text.
func errorMessage(body []byte) string {
	var e struct {
		Errors []struct {
			Field   *string `json:"field"`
			Message string  `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	parts := make([]string, 0, len(e.Errors))
	for _, x := range e.Errors {
		if x.Field != nil && *x.Field != "" {
			parts = append(parts, *x.Field+": "+x.Message)
		} else {
			parts = append(parts, x.Message)
		}
	}
	return strings.Join(parts, "; ")
}

type createBody struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes,omitempty"`
}

type createdKey struct {
	APIKeyID string   `json:"api_key_id"`
	APIKey   string   `json:"api_key"`
	Name     string   `json:"name"`
	Scopes   []string `json:"scopes"`
}

func (c *client) create(ctx context.Context, op, name string, scopes []string, subuser bool) (createdKey, error) {
	var out createdKey
	if err := c.call(ctx, op, http.MethodPost, "/v3/api_keys", c.apiKey, subuser, createBody{Name: name, Scopes: scopes}, &out); err != nil {
		return createdKey{}, err
	}
	if out.APIKeyID == "" || out.APIKey == "" {
		return createdKey{}, fmt.Errorf("provider %q: %s: response has no api_key_id or api_key", c.http.Provider(), op)
	}
	if !keyIDPattern.MatchString(out.APIKeyID) {
		// delete would refuse it: the key could never be revoked by Vault.
		return createdKey{}, fmt.Errorf("provider %q: %s: response has an api_key_id Vault cannot use; delete the key named %q by hand",
			c.http.Provider(), op, name)
	}
	return out, nil
}

// ValidateKeyRequest: SendGrid keys take scopes and no parameters.
func (c *client) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Parameters) > 0 {
		names := make([]string, 0, len(req.Parameters))
		for n := range req.Parameters {
			names = append(names, n)
		}
		sort.Strings(names)
		return &clients.FieldError{Field: "parameters",
			Message: fmt.Sprintf("unknown parameter %q: sendgrid keys take no parameters (use scopes)", names[0])}
	}
	return nil
}

func (c *client) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if err := c.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	if req.Name == "" {
		return clients.Key{}, &clients.FieldError{Field: "name_template", Message: "key name is empty"}
	}
	k, err := c.create(ctx, "create", req.Name, req.Scopes, true)
	if err != nil {
		return clients.Key{}, err
	}
	return clients.Key{ID: k.APIKeyID, Name: k.Name, Secret: k.APIKey}, nil
}

// VerifyKey asks SendGrid for the key's own scopes, authenticated with the key.
func (c *client) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("sendgrid: verify: key has no secret")
	}
	var out struct {
		Scopes []string `json:"scopes"`
	}
	return c.call(ctx, "verify", http.MethodGet, "/v3/scopes", key.Secret, false, nil, &out)
}

func (c *client) delete(ctx context.Context, op, id string, subuser bool) error {
	if !keyIDPattern.MatchString(id) {
		return fmt.Errorf("sendgrid: %s: invalid key id", op)
	}
	err := c.call(ctx, op, http.MethodDelete, "/v3/api_keys/"+url.PathEscape(id), c.apiKey, subuser, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

func (c *client) RevokeKey(ctx context.Context, id string) error {
	return c.delete(ctx, "revoke", id, true)
}

type listedKey struct {
	APIKeyID string `json:"api_key_id"`
	Name     string `json:"name"`
}

func (c *client) list(ctx context.Context, subuser bool) ([]listedKey, error) {
	var out struct {
		Result []listedKey `json:"result"`
	}
	path := fmt.Sprintf("/v3/api_keys?limit=%d", listLimit)
	if err := c.call(ctx, "list", http.MethodGet, path, c.apiKey, subuser, nil, &out); err != nil {
		return nil, err
	}
	return out.Result, nil
}

func (c *client) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, c.ListKeys, name)
}

// ListKeys lists the keys of the account (or of on_behalf_of's subuser)
// for tidy, in one answer (an account holds 100 at most). SendGrid's list
// gives no creation time, so CreatedAt stays zero: tidy reports these keys
// and never revokes them. A root key of the same account is listed under
// the id RootID returns.
func (c *client) ListKeys(ctx context.Context) ([]clients.Key, error) {
	keys, err := c.list(ctx, true)
	if err != nil {
		return nil, err
	}
	var found []clients.Key
	for _, k := range keys {
		// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
		if keyIDPattern.MatchString(k.APIKeyID) {
			found = append(found, clients.Key{ID: k.APIKeyID, Name: k.Name})
		}
	}
	return found, nil
}

// idFromKey reads the key id from a key of the form SG.<id>.<secret>.
func idFromKey(key string) string {
	parts := strings.Split(key, ".")
	if len(parts) == 3 && parts[0] == "SG" && keyIDPattern.MatchString(parts[1]) {
		return parts[1]
	}
	return ""
}

// RootID finds the id of the configured root key: the id embedded in the
// key when the account lists a key with that id, else the api_key_id field.
// The list call also proves the key works and may read keys.
func (c *client) RootID(ctx context.Context) (string, error) {
	keys, err := c.list(ctx, false)
	if err != nil {
		return "", err
	}
	if derived := idFromKey(c.apiKey); derived != "" {
		for _, k := range keys {
			if k.APIKeyID == derived {
				return derived, nil
			}
		}
	}
	return c.apiKeyID, nil
}

// ownID is the root key's id as far as it can be known without a request.
func (c *client) ownID() string {
	if id := idFromKey(c.apiKey); id != "" {
		return id
	}
	return c.apiKeyID
}

// CreateRoot creates a new root key with the scopes the current root holds
// (read from GET /v3/scopes), on the parent account that owns the root.
func (c *client) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	var cur struct {
		Scopes []string `json:"scopes"`
	}
	if err := c.call(ctx, "create_root", http.MethodGet, "/v3/scopes", c.apiKey, false, nil, &cur); err != nil {
		return clients.Root{}, err
	}
	scopes := make([]string, 0, len(cur.Scopes))
	for _, s := range cur.Scopes {
		if !autoScopes[s] {
			scopes = append(scopes, s)
		}
	}
	if missing := missingScopes(scopes, rootScopes); len(missing) > 0 {
		return clients.Root{}, &clients.FieldError{Field: fieldAPIKey,
			Message: "the root key lacks " + strings.Join(missing, ", ") + ", so it could not manage its successor"}
	}
	k, err := c.create(ctx, "create_root", name, scopes, false)
	if err != nil {
		return clients.Root{}, err
	}
	root := clients.Root{ID: k.APIKeyID, Fields: map[string]string{fieldAPIKey: k.APIKey}}
	if c.apiKeyID != "" {
		// Keep the optional id field true to the new key.
		root.Fields[fieldAPIKeyID] = k.APIKeyID
	}
	return root, nil
}

func missingScopes(have, want []string) []string {
	set := make(map[string]bool, len(have))
	for _, s := range have {
		set[s] = true
	}
	var missing []string
	for _, w := range want {
		if !set[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

// VerifyRoot checks that the new root authenticates and can still manage keys.
func (c *client) VerifyRoot(ctx context.Context, root clients.Root) error {
	key := root.Fields[fieldAPIKey]
	if key == "" {
		return errors.New("sendgrid: verify_root: root has no api_key")
	}
	var out struct {
		Scopes []string `json:"scopes"`
	}
	if err := c.call(ctx, "verify_root", http.MethodGet, "/v3/scopes", key, false, nil, &out, key); err != nil {
		return err
	}
	if missing := missingScopes(out.Scopes, rootScopes); len(missing) > 0 {
		return fmt.Errorf("provider %q: verify_root: new root key lacks %s", c.http.Provider(), strings.Join(missing, ", "))
	}
	return nil
}

// RevokeRoot deletes the old root key by id, authenticated with the new one.
func (c *client) RevokeRoot(ctx context.Context, oldID string) error {
	if oldID == "" {
		return fmt.Errorf("provider %q: revoke_root: the old root key's id is unknown (set api_key_id); delete it by hand", c.http.Provider())
	}
	if oldID == c.ownID() {
		return fmt.Errorf("provider %q: revoke_root: refusing to delete the root key in use", c.http.Provider())
	}
	return c.delete(ctx, "revoke_root", oldID, false)
}
