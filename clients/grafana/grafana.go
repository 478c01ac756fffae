// Package grafana issues Grafana service account tokens. Every token of a
// service account carries that account's permissions, so the keys belong to
// one service account (service_account_id) and the root token may belong to
// another, more privileged one (root_service_account_id). Root rotation
// creates a new token on the root's service account, verifies it and then
// deletes the old token by id.
package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

// Field names.
const (
	fieldToken       = "token"
	fieldAccount     = "service_account_id"
	fieldRootAccount = "root_service_account_id"
	fieldTokenID     = "token_id"
)

var capabilities = clients.Capabilities{Expiry: true, ListByName: true, RootRotation: true}

func init() {
	clients.Register(&clients.Type{
		Name: "grafana",
		Description: "Grafana (self-hosted or Grafana Cloud): issues service account tokens and rotates its own " +
			"service account token.",
		BaseURLRequired: true,
		Fields: []clients.Field{
			{
				Name: fieldToken,
				Description: "Service account token (glsa_…) Vault uses to call Grafana. Its service account must be " +
					"allowed to read, create and delete tokens of service_account_id and of its own service account " +
					"(the Admin org role, or serviceaccounts:read and serviceaccounts:write on both). Root rotation replaces it.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name:    fieldAccount,
				Account: true,
				Description: "Numeric id of the service account whose tokens Vault issues; every issued token has " +
					"that service account's permissions.",
				Required: true,
			},
			{
				Name: fieldRootAccount,
				Description: "Numeric id of the service account that owns token. Empty: the same as " +
					"service_account_id.",
			},
			{
				Name: fieldTokenID,
				Description: "Numeric id of token on its service account (see GET /api/serviceaccounts/<id>/tokens). " +
					"Root rotation needs it to delete the replaced token and keeps it up to date.",
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	if strings.TrimSpace(fields[fieldToken]) == "" {
		return &clients.FieldError{Field: fieldToken, Message: "is required"}
	}
	if err := checkID(fields[fieldAccount]); err != nil {
		return &clients.FieldError{Field: fieldAccount, Message: err.Error()}
	}
	for _, f := range []string{fieldRootAccount, fieldTokenID} {
		if v := fields[f]; v != "" {
			if err := checkID(v); err != nil {
				return &clients.FieldError{Field: f, Message: err.Error()}
			}
		}
	}
	return nil
}

func checkID(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("must be a positive integer id (got %q)", s)
	}
	return nil
}

type provider struct {
	http        *httpx.Client
	base        string
	token       string
	account     string
	rootAccount string
	tokenID     string
	now         func() time.Time
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	if cfg.BaseURL == "" {
		return nil, &clients.FieldError{Field: "base_url", Message: "is required for grafana (e.g. https://grafana.example.com)"}
	}
	p := &provider{
		http:        cfg.HTTP,
		base:        cfg.BaseURL,
		token:       strings.TrimSpace(cfg.Fields[fieldToken]),
		account:     strings.TrimSpace(cfg.Fields[fieldAccount]),
		rootAccount: strings.TrimSpace(cfg.Fields[fieldRootAccount]),
		tokenID:     strings.TrimSpace(cfg.Fields[fieldTokenID]),
		now:         time.Now,
	}
	if p.rootAccount == "" {
		p.rootAccount = p.account
	}
	return p, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

func tokensPath(account string) string { return "/api/serviceaccounts/" + account + "/tokens" }

type created struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Key  string `json:"key"`
}

type listed struct {
	ID         int64   `json:"id"`
	Name       string  `json:"name"`
	Expiration *string `json:"expiration"`
	Created    string  `json:"created"`
}

// create adds a token named name to account, expiring after secondsToLive
// (0 = never).
func (p *provider) create(ctx context.Context, op, account, name string, secondsToLive int64) (created, error) {
	body := map[string]any{"name": name}
	if secondsToLive > 0 {
		body["secondsToLive"] = secondsToLive
	}
	var c created
	if err := p.call(ctx, op, http.MethodPost, tokensPath(account), p.token, body, &c); err != nil {
		return created{}, err
	}
	if c.ID <= 0 || c.Key == "" { // delete takes positive ids only
		return created{}, fmt.Errorf("provider %q: %s: Grafana's response has no token id or key", p.http.Provider(), op)
	}
	return c, nil
}

// ValidateKeyRequest: Grafana tokens take neither scopes nor parameters.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) > 0 {
		return &clients.FieldError{Field: "scopes", Message: "grafana tokens carry their service account's " +
			"permissions and take no scopes: grant permissions to the service account instead"}
	}
	return clients.NoParameters(req, "grafana tokens take no parameters")
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("grafana: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	var ttl int64
	if !req.ExpiresAt.IsZero() {
		secs := math.Ceil(req.ExpiresAt.Sub(p.now()).Seconds())
		if secs < 1 {
			return clients.Key{}, errors.New("grafana: the requested expiry is in the past")
		}
		ttl = int64(secs)
	}
	c, err := p.create(ctx, "create", p.account, req.Name, ttl)
	if err != nil {
		return clients.Key{}, err
	}
	name := c.Name
	if name == "" {
		name = req.Name
	}
	return clients.Key{
		ID: strconv.FormatInt(c.ID, 10), Name: name, Secret: c.Key, ExpiresAt: req.ExpiresAt,
		Extra: map[string]string{"service_account_id": p.account},
	}, nil
}

// VerifyKey reads the current organization with the new token, which any
// service account with at least the Viewer role may do.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("grafana: verify: the key has no secret")
	}
	return p.call(ctx, "verify", http.MethodGet, "/api/org", key.Secret, nil, nil)
}

func (p *provider) RevokeKey(ctx context.Context, id string) error {
	return p.delete(ctx, "revoke", p.account, id)
}

func (p *provider) delete(ctx context.Context, op, account, id string) error {
	if checkID(id) != nil {
		return fmt.Errorf("grafana: %s: token id %q is not a Grafana token id", op, id)
	}
	err := p.call(ctx, op, http.MethodDelete, tokensPath(account)+"/"+id, p.token, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

func (p *provider) list(ctx context.Context, op, account, secret string) ([]listed, error) {
	var out []listed
	if err := p.call(ctx, op, http.MethodGet, tokensPath(account), secret, nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the tokens of the service account keys are issued on, for
// tidy (Grafana lists them in one answer): CreatedAt is created. A root
// token of the same account is listed under the id RootID returns when
// token_id is set.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	all, err := p.list(ctx, "list", p.account, p.token)
	if err != nil {
		return nil, err
	}
	var out []clients.Key
	for _, t := range all {
		if t.ID <= 0 { // only ids RevokeKey accepts
			continue
		}
		k := clients.Key{ID: strconv.FormatInt(t.ID, 10), Name: t.Name}
		if t.Expiration != nil {
			k.ExpiresAt, _ = time.Parse(time.RFC3339, *t.Expiration)
		}
		k.CreatedAt, _ = time.Parse(time.RFC3339, t.Created)
		out = append(out, k)
	}
	return out, nil
}

// RootID is the configured token_id: Grafana cannot tell a token its own id.
func (p *provider) RootID(context.Context) (string, error) { return p.tokenID, nil }

// CreateRoot adds a non-expiring token to the root's service account. It
// refuses to start when token_id is unknown, because the old token could
// not be deleted afterwards.
func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	if p.tokenID == "" {
		return clients.Root{}, fmt.Errorf("provider %q: root rotation needs token_id, the id of the configured token on "+
			"service account %s (GET /api/serviceaccounts/%s/tokens lists them), so the old token can be deleted",
			p.http.Provider(), p.rootAccount, p.rootAccount)
	}
	if strings.TrimSpace(name) == "" {
		return clients.Root{}, errors.New("grafana: a root token name is required")
	}
	c, err := p.create(ctx, "create_root", p.rootAccount, name, 0)
	if err != nil {
		return clients.Root{}, err
	}
	id := strconv.FormatInt(c.ID, 10)
	return clients.Root{ID: id, Fields: map[string]string{fieldToken: c.Key, fieldTokenID: id}}, nil
}

// VerifyRoot lists the root service account's tokens with the new token:
// that proves it authenticates, may manage tokens, and sits on that account.
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	secret := root.Fields[fieldToken]
	if secret == "" {
		return errors.New("grafana: verify_root: the new root has no token")
	}
	all, err := p.list(ctx, "verify_root", p.rootAccount, secret)
	if err != nil {
		return err
	}
	if root.ID == "" {
		return nil
	}
	for _, t := range all {
		if strconv.FormatInt(t.ID, 10) == root.ID {
			return nil
		}
	}
	return fmt.Errorf("provider %q: verify_root: token %s is not on service account %s", p.http.Provider(), root.ID, p.rootAccount)
}

// RevokeRoot deletes the replaced token from the root's service account.
func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	if oldID == "" {
		return fmt.Errorf("provider %q: revoke_root: the old token's id is unknown; delete it by hand on service account %s",
			p.http.Provider(), p.rootAccount)
	}
	return p.delete(ctx, "revoke_root", p.rootAccount, oldID)
}

// call sends a request with secret as the bearer token; any 2xx is success
// and its JSON body is decoded into out (when not nil).
func (p *provider) call(ctx context.Context, op, method, path, secret string, in, out any) error {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Authorization": {"Bearer " + secret}}}
	_, err := p.http.JSON(ctx, r, in, out, httpx.Expect{Message: apiMessage, Redact: []string{p.token, secret}})
	return err
}

// apiMessage extracts Grafana's {"message": …} error text, or a short
// plain-text body.
func apiMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return httpx.TextMessage(body)
	}
	if e.Message != "" && e.Error != "" && e.Error != e.Message {
		return e.Message + ": " + e.Error
	}
	if e.Message != "" {
		return e.Message
	}
	return e.Error
}
