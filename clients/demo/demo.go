// Package demo talks to cmd/demo-provider, the project's stand-in for a SaaS
// API-key service (used by make dev, docker-compose and the e2e suite).
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

func init() {
	clients.Register(&clients.Type{
		Name:            "demo",
		Description:     "The project's demo provider (cmd/demo-provider): keys created and deleted with an admin key.",
		BaseURLRequired: true,
		Fields: []clients.Field{
			{Name: "admin_key", Required: true, Sensitive: true,
				Description: "Admin key of the demo provider (Bearer). Write-only; rotated by rotate-root."},
		},
		Capabilities: clients.Capabilities{Expiry: true, ListByName: true, RootRotation: true},
		New:          newClient,
	})
}

type client struct {
	base     string
	adminKey string
	http     *httpx.Client
}

func newClient(cfg clients.Config) (clients.Provider, error) {
	if cfg.Fields["admin_key"] == "" {
		return nil, &clients.FieldError{Field: "admin_key", Message: "is required"}
	}
	return &client{base: cfg.BaseURL, adminKey: cfg.Fields["admin_key"], http: cfg.HTTP}, nil
}

func (c *client) Capabilities() clients.Capabilities {
	t, _ := clients.Lookup("demo")
	return t.Capabilities
}

type apiKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Key       string    `json:"key"`
	AdminKey  string    `json:"admin_key"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// apiMessage extracts the demo provider's {"error":{"code","message"}} text.
func apiMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Message
}

// call sends one request with the given bearer credential and decodes a 2xx
// body into out. secrets are the values to keep out of any error text.
func (c *client) call(ctx context.Context, op, method, path string, bearer string, in, out any, secrets ...string) error {
	req := httpx.Request{Op: op, Method: method, URL: c.base + path, Header: http.Header{"Authorization": {"Bearer " + bearer}}}
	_, err := c.http.JSON(ctx, req, in, out, httpx.Expect{Message: apiMessage, Redact: append(secrets, bearer, c.adminKey)})
	return err
}

// ValidateKeyRequest: the demo provider takes any scopes and no parameters.
func (c *client) ValidateKeyRequest(req clients.KeyRequest) error {
	for k := range req.Parameters {
		return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("the demo provider takes no parameter %q", k)}
	}
	return nil
}

func (c *client) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if err := c.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	body := map[string]any{"name": req.Name}
	if len(req.Scopes) > 0 {
		body["scopes"] = req.Scopes
	}
	if !req.ExpiresAt.IsZero() {
		body["expires_at"] = req.ExpiresAt.UTC().Format(time.RFC3339)
	}
	var out apiKey
	if err := c.call(ctx, "create", http.MethodPost, "/v1/keys", c.adminKey, body, &out); err != nil {
		return clients.Key{}, err
	}
	if out.ID == "" || out.Key == "" {
		return clients.Key{}, fmt.Errorf("provider %q: create: response has no key id or value", c.http.Provider())
	}
	return clients.Key{ID: out.ID, Name: out.Name, Secret: out.Key, ExpiresAt: out.ExpiresAt}, nil
}

func (c *client) VerifyKey(ctx context.Context, key clients.Key) error {
	var out struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, "verify", http.MethodGet, "/v1/whoami", key.Secret, nil, &out, key.Secret); err != nil {
		return err
	}
	if out.ID != key.ID {
		return fmt.Errorf("provider %q: verify: the key authenticates as another key", c.http.Provider())
	}
	return nil
}

func (c *client) RevokeKey(ctx context.Context, id string) error {
	err := c.call(ctx, "revoke", http.MethodDelete, "/v1/keys/"+url.PathEscape(id), c.adminKey, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

func (c *client) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	keys, err := c.list(ctx, "?name="+url.QueryEscape(name))
	if err != nil {
		return nil, err
	}
	return keylist.Named(keys, name), nil
}

// ListKeys lists every live key of the account (admin keys are not keys:
// they are listed by FindRoots).
func (c *client) ListKeys(ctx context.Context) ([]clients.Key, error) {
	return c.list(ctx, "")
}

// list is GET /v1/keys with query; a key without an id cannot be revoked,
// so rollback and tidy are never handed one.
func (c *client) list(ctx context.Context, query string) ([]clients.Key, error) {
	var out struct {
		Keys []apiKey `json:"keys"`
	}
	if err := c.call(ctx, "list", http.MethodGet, "/v1/keys"+query, c.adminKey, nil, &out); err != nil {
		return nil, err
	}
	keys := make([]clients.Key, 0, len(out.Keys))
	for _, k := range out.Keys {
		if k.ID != "" {
			keys = append(keys, clients.Key{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt})
		}
	}
	return keys, nil
}

func (c *client) RootID(ctx context.Context) (string, error) {
	r, err := c.InspectRoot(ctx)
	return r.ID, err
}

// InspectRoot asks the demo provider which admin key the configured one is
// and when it expires.
func (c *client) InspectRoot(ctx context.Context) (clients.Root, error) {
	var out apiKey
	if err := c.call(ctx, "verify_root", http.MethodGet, "/v1/whoami", c.adminKey, nil, &out); err != nil {
		return clients.Root{}, err
	}
	return clients.Root{ID: out.ID, ExpiresAt: out.ExpiresAt}, nil
}

func (c *client) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	var out apiKey
	if err := c.call(ctx, "create_root", http.MethodPost, "/v1/admin-keys", c.adminKey, map[string]string{"name": name}, &out); err != nil {
		return clients.Root{}, err
	}
	if out.ID == "" || out.AdminKey == "" {
		return clients.Root{}, fmt.Errorf("provider %q: create_root: response has no admin key id or value", c.http.Provider())
	}
	return clients.Root{ID: out.ID, Fields: map[string]string{"admin_key": out.AdminKey}, ExpiresAt: out.ExpiresAt}, nil
}

func (c *client) VerifyRoot(ctx context.Context, root clients.Root) error {
	var out struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
	}
	secret := root.Fields["admin_key"]
	if err := c.call(ctx, "verify_root", http.MethodGet, "/v1/whoami", secret, nil, &out, secret); err != nil {
		return err
	}
	if out.Kind != "admin" || (root.ID != "" && out.ID != root.ID) {
		return fmt.Errorf("provider %q: verify_root: the new credential is not the admin key just created", c.http.Provider())
	}
	return nil
}

func (c *client) RevokeRoot(ctx context.Context, oldID string) error {
	err := c.call(ctx, "revoke_root", http.MethodDelete, "/v1/admin-keys/"+url.PathEscape(oldID), c.adminKey, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// FindRoots lists the live admin keys named name (without their values).
func (c *client) FindRoots(ctx context.Context, name string) ([]clients.Root, error) {
	var out struct {
		AdminKeys []apiKey `json:"admin_keys"`
	}
	if err := c.call(ctx, "list_roots", http.MethodGet, "/v1/admin-keys", c.adminKey, nil, &out); err != nil {
		return nil, err
	}
	var roots []clients.Root
	for _, k := range out.AdminKeys {
		if k.Name == name && k.ID != "" {
			roots = append(roots, clients.Root{ID: k.ID})
		}
	}
	return roots, nil
}
