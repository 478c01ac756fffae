// Package openai issues OpenAI API keys as project service accounts: each
// key is the API key OpenAI creates with a new service account in one
// project, and revoking it deletes the service account. The root is an
// organization admin API key, rotated create-then-delete.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

// Field names.
const (
	fieldAdminKey   = "admin_key"
	fieldProjectID  = "project_id"
	fieldAdminKeyID = "admin_key_id"
)

const (
	// pageSize and maxPages bound list paging.
	pageSize = 100
	maxPages = 100
)

var capabilities = clients.Capabilities{ListByName: true, RootRotation: true}

// idPattern admits OpenAI object ids (proj_…, key_…, user-…, svc_acct_…) and
// keeps them from changing the request path.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// keyPattern finds API-key-like strings in error text: OpenAI echoes a
// masked form of a rejected key, which is still a fragment of a secret.
var keyPattern = regexp.MustCompile(`sk-[A-Za-z0-9_\-]*(?:[*.]+[A-Za-z0-9_\-]+)*\**`)

func init() {
	clients.Register(&clients.Type{
		Name: "openai",
		Description: "OpenAI: issues project API keys (one project service account per key) and rotates its " +
			"organization admin API key.",
		DefaultBaseURL: "https://api.openai.com/v1",
		Fields: []clients.Field{
			{
				Name: fieldAdminKey,
				Description: "Organization admin API key (sk-admin-…) Vault uses to manage service accounts and admin " +
					"keys; only an organization Owner can create one. Root rotation replaces it.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name:        fieldProjectID,
				Account:     true,
				Description: "Id of the project (proj_…) in which Vault creates a service account for every key.",
				Required:    true,
			},
			{
				Name: fieldAdminKeyID,
				Description: "Id (key_…) of admin_key, used to delete it after root rotation and kept up to date by it. " +
					"Empty: Vault looks it up in GET /organization/admin_api_keys by its redacted value, and root " +
					"rotation refuses to start when that finds no single match.",
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	if strings.TrimSpace(fields[fieldAdminKey]) == "" {
		return &clients.FieldError{Field: fieldAdminKey, Message: "is required"}
	}
	if v := fields[fieldProjectID]; !idPattern.MatchString(v) {
		return &clients.FieldError{Field: fieldProjectID, Message: fmt.Sprintf("must be an OpenAI project id such as proj_abc123 (got %q)", v)}
	}
	if v := fields[fieldAdminKeyID]; v != "" && !idPattern.MatchString(v) {
		return &clients.FieldError{Field: fieldAdminKeyID, Message: fmt.Sprintf("must be an OpenAI admin key id such as key_abc123 (got %q)", v)}
	}
	return nil
}

type provider struct {
	http       *httpx.Client
	base       string
	adminKey   string
	projectID  string
	adminKeyID string
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	base := cfg.BaseURL
	if base == "" {
		base = "https://api.openai.com/v1"
	}
	return &provider{
		http:       cfg.HTTP,
		base:       base,
		adminKey:   strings.TrimSpace(cfg.Fields[fieldAdminKey]),
		projectID:  cfg.Fields[fieldProjectID],
		adminKeyID: cfg.Fields[fieldAdminKeyID],
	}, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

func (p *provider) accountsPath() string {
	return "/organization/projects/" + p.projectID + "/service_accounts"
}

type serviceAccount struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"created_at"`
	APIKey    *struct {
		ID    string `json:"id"`
		Value string `json:"value"`
	} `json:"api_key"`
}

type adminKey struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Value         string `json:"value"`
	RedactedValue string `json:"redacted_value"`
}

type page[T any] struct {
	Data    []T    `json:"data"`
	HasMore bool   `json:"has_more"`
	LastID  string `json:"last_id"`
}

// ValidateKeyRequest: OpenAI service account keys take neither scopes nor
// parameters.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) > 0 {
		return &clients.FieldError{Field: "scopes", Message: "openai service account keys take no scopes: " +
			"limit them with the project's permissions and limits in OpenAI"}
	}
	return clients.NoParameters(req, "openai keys take no parameters")
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("openai: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	var sa serviceAccount
	if err := p.call(ctx, "create", http.MethodPost, p.accountsPath(), p.adminKey, map[string]any{"name": req.Name}, &sa); err != nil {
		return clients.Key{}, err
	}
	if !idPattern.MatchString(sa.ID) {
		// Empty, or one RevokeKey would refuse: Vault could never revoke it.
		return clients.Key{}, fmt.Errorf("provider %q: create: OpenAI's response has no usable service account id; "+
			"delete the service account named %q by hand if it exists", p.http.Provider(), req.Name)
	}
	if sa.APIKey == nil || sa.APIKey.Value == "" {
		// Do not leave a service account behind whose key nobody has.
		_ = p.RevokeKey(ctx, sa.ID)
		return clients.Key{}, fmt.Errorf("provider %q: create: OpenAI's response has no API key value", p.http.Provider())
	}
	name := sa.Name
	if name == "" {
		name = req.Name
	}
	return clients.Key{
		ID: sa.ID, Name: name, Secret: sa.APIKey.Value,
		Extra: map[string]string{"service_account_id": sa.ID, "api_key_id": sa.APIKey.ID, "project_id": p.projectID},
	}, nil
}

// VerifyKey lists models with the new key.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("openai: verify: the key has no secret")
	}
	return p.call(ctx, "verify", http.MethodGet, "/models", key.Secret, nil, nil)
}

// RevokeKey deletes the service account, which deletes its key.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("openai: revoke: %q is not a service account id", id)
	}
	err := p.call(ctx, "revoke", http.MethodDelete, p.accountsPath()+"/"+id, p.adminKey, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// each pages through a list endpoint, calling fn for every page.
func each[T any](ctx context.Context, p *provider, op, path, secret string, fn func([]T)) error {
	after := ""
	for i := 0; i < maxPages; i++ {
		q := url.Values{}
		q.Set("limit", strconv.Itoa(pageSize))
		if after != "" {
			q.Set("after", after)
		}
		var pg page[T]
		if err := p.call(ctx, op, http.MethodGet, path+"?"+q.Encode(), secret, nil, &pg); err != nil {
			return err
		}
		fn(pg.Data)
		if !pg.HasMore || pg.LastID == "" || pg.LastID == after {
			return nil
		}
		after = pg.LastID
	}
	return nil
}

func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the project's service accounts (each issued key is one),
// every page, for tidy: CreatedAt is created_at (epoch seconds). Admin keys,
// the roots, are another list.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	var out []clients.Key
	err := each(ctx, p, "list", p.accountsPath(), p.adminKey, func(list []serviceAccount) {
		for _, sa := range list {
			// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
			if !idPattern.MatchString(sa.ID) {
				continue
			}
			k := clients.Key{ID: sa.ID, Name: sa.Name, Extra: map[string]string{"service_account_id": sa.ID, "project_id": p.projectID}}
			if sa.CreatedAt > 0 {
				k.CreatedAt = time.Unix(sa.CreatedAt, 0).UTC()
			}
			out = append(out, k)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RootID is admin_key_id when set; otherwise the one admin key whose
// redacted value fits admin_key, or "" when none or several fit.
func (p *provider) RootID(ctx context.Context) (string, error) {
	if p.adminKeyID != "" {
		return p.adminKeyID, nil
	}
	var matches []string
	err := each(ctx, p, "list", "/organization/admin_api_keys", p.adminKey, func(list []adminKey) {
		for _, k := range list {
			if k.ID != "" && redactedMatches(k.RedactedValue, p.adminKey) {
				matches = append(matches, k.ID)
			}
		}
	})
	if err != nil {
		return "", err
	}
	if len(matches) != 1 {
		return "", nil
	}
	return matches[0], nil
}

// redactedMatches reports whether a redacted key such as "sk-admin...def" or
// "sk-admin****s1MA" could be secret: the visible prefix and suffix must
// match, and a mask of stars must also match the secret's length.
func redactedMatches(redacted, secret string) bool {
	start := strings.IndexAny(redacted, ".*")
	end := strings.LastIndexAny(redacted, ".*")
	if start <= 0 || end == len(redacted)-1 {
		return false // nothing visible on one side: cannot tell
	}
	prefix, suffix := redacted[:start], redacted[end+1:]
	if !strings.HasPrefix(secret, prefix) || !strings.HasSuffix(secret, suffix) || len(secret) < len(prefix)+len(suffix) {
		return false
	}
	if mask := redacted[start : end+1]; strings.Trim(mask, "*") == "" && len(redacted) != len(secret) {
		return false
	}
	return true
}

// CreateRoot creates a new admin key. It refuses to start when the current
// key's id is unknown, because the old key could not be deleted afterwards.
func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	oldID, err := p.RootID(ctx)
	if err != nil {
		return clients.Root{}, err
	}
	if oldID == "" {
		return clients.Root{}, fmt.Errorf("provider %q: root rotation needs admin_key_id, the id (key_…) of the configured "+
			"admin key: it could not be found by its redacted value in GET /organization/admin_api_keys; set it so the "+
			"old key can be deleted", p.http.Provider())
	}
	if strings.TrimSpace(name) == "" {
		return clients.Root{}, errors.New("openai: a root key name is required")
	}
	var k adminKey
	if err := p.call(ctx, "create_root", http.MethodPost, "/organization/admin_api_keys", p.adminKey, map[string]any{"name": name}, &k); err != nil {
		return clients.Root{}, err
	}
	if k.ID == "" {
		return clients.Root{}, fmt.Errorf("provider %q: create_root: OpenAI's response has no admin key id", p.http.Provider())
	}
	if k.Value == "" {
		_ = p.deleteAdminKey(ctx, "create_root", k.ID)
		return clients.Root{}, fmt.Errorf("provider %q: create_root: OpenAI's response has no admin key value", p.http.Provider())
	}
	return clients.Root{ID: k.ID, Fields: map[string]string{fieldAdminKey: k.Value, fieldAdminKeyID: k.ID}}, nil
}

// VerifyRoot lists admin keys with the new key, which only an admin key can.
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	secret := root.Fields[fieldAdminKey]
	if secret == "" {
		return errors.New("openai: verify_root: the new root has no admin key")
	}
	return p.call(ctx, "verify_root", http.MethodGet, "/organization/admin_api_keys?limit=1", secret, nil, nil)
}

// RevokeRoot deletes the replaced admin key by id.
func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	if oldID == "" {
		return fmt.Errorf("provider %q: revoke_root: the old admin key's id is unknown; delete it by hand in the "+
			"organization's admin keys", p.http.Provider())
	}
	return p.deleteAdminKey(ctx, "revoke_root", oldID)
}

func (p *provider) deleteAdminKey(ctx context.Context, op, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("openai: %s: %q is not an admin key id", op, id)
	}
	err := p.call(ctx, op, http.MethodDelete, "/organization/admin_api_keys/"+id, p.adminKey, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// call sends a request with secret as the bearer token; any 2xx is success
// and its JSON body is decoded into out (when not nil).
func (p *provider) call(ctx context.Context, op, method, path, secret string, in, out any) error {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Authorization": {"Bearer " + secret}}}
	_, err := p.http.JSON(ctx, r, in, out, httpx.Expect{Message: apiMessage, Redact: []string{p.adminKey, secret}})
	return err
}

// apiMessage extracts OpenAI's {"error":{message,type,param,code}} text,
// with any key-like fragment removed.
func apiMessage(body []byte) string {
	var e struct {
		Error *struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    any     `json:"code"`
		} `json:"error"`
	}
	var out string
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return "" // JSON, but not the error shape: nothing to show
		}
		out = httpx.TextMessage(body)
	} else {
		out = e.Error.Message
		var tags []string
		if e.Error.Type != "" {
			tags = append(tags, "type="+e.Error.Type)
		}
		if e.Error.Code != nil {
			tags = append(tags, fmt.Sprintf("code=%v", e.Error.Code))
		}
		if e.Error.Param != nil && *e.Error.Param != "" {
			tags = append(tags, "param="+*e.Error.Param)
		}
		if len(tags) > 0 {
			out += " (" + strings.Join(tags, ", ") + ")"
		}
	}
	return keyPattern.ReplaceAllString(out, "sk-[redacted]")
}
