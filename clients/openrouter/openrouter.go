// Package openrouter issues OpenRouter API keys through the key-management
// API: each key can carry a spending limit (limit, limit_reset) and an
// expiry of its own, taken from the role's parameters. Revoking a key
// deletes it. The root is a management key, which only the OpenRouter
// dashboard can create: root rotation is not supported.
package openrouter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

const (
	// TypeName is the provider type's name in the registry.
	TypeName       = "openrouter"
	defaultBaseURL = "https://openrouter.ai/api/v1"

	fieldManagementKey = "management_key"
	fieldWorkspaceID   = "workspace_id"

	paramLimit       = "limit"
	paramLimitReset  = "limit_reset"
	paramExpiresAt   = "expires_at"
	paramIncludeBYOK = "include_byok_in_limit"

	// pageSize is OpenRouter's fixed page of GET /keys; maxPages bounds
	// paging (100,000 keys).
	pageSize = 100
	maxPages = 1000
)

var capabilities = clients.Capabilities{Expiry: true, ListByName: true}

// hashPattern admits key hashes (hex) and keeps them from changing the
// request path.
var hashPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPattern finds OpenRouter key-like strings (sk-or-v1-…, including the
// masked "sk-or-v1-abc...890" labels) in error text.
var keyPattern = regexp.MustCompile(`sk-or-[A-Za-z0-9_\-]*(?:[*.]+[A-Za-z0-9_\-]*)*`)

var limitResets = []string{"daily", "weekly", "monthly"}

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "OpenRouter: issues API keys with an optional spending limit, limit reset period and " +
			"expiry per key; the management key cannot be rotated through the API.",
		DefaultBaseURL: defaultBaseURL,
		Fields: []clients.Field{
			{
				Name: fieldManagementKey,
				Description: "OpenRouter management key (formerly \"provisioning key\"), created in the dashboard; " +
					"it works only on the key-management API. It cannot be rotated by Vault. Write-only.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name:        fieldWorkspaceID,
				Account:     true,
				Description: "Optional OpenRouter workspace id: keys are created in, and looked up in, that workspace.",
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	if strings.TrimSpace(fields[fieldManagementKey]) == "" {
		return &clients.FieldError{Field: fieldManagementKey, Message: "is required"}
	}
	if v := fields[fieldWorkspaceID]; v != "" && !hashPattern.MatchString(v) {
		return &clients.FieldError{Field: fieldWorkspaceID, Message: fmt.Sprintf("must be an OpenRouter workspace id (letters, digits, - and _; got %q)", v)}
	}
	return nil
}

type provider struct {
	clients.Unsupported // root rotation
	http                *httpx.Client
	base                string
	managementKey       string
	workspaceID         string
	now                 func() time.Time
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	base := cfg.BaseURL
	if base == "" {
		base = defaultBaseURL
	}
	return &provider{http: cfg.HTTP, base: base, managementKey: strings.TrimSpace(cfg.Fields[fieldManagementKey]),
		workspaceID: cfg.Fields[fieldWorkspaceID], now: time.Now}, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// keyData is a key as the API describes it (never with its value).
type keyData struct {
	Hash      string   `json:"hash"`
	Name      string   `json:"name"`
	Label     string   `json:"label"`
	Disabled  bool     `json:"disabled"`
	Limit     *float64 `json:"limit"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt *string  `json:"expires_at"`
}

// createBody maps a key request onto POST /keys; it returns the body and
// the expiry asked for (zero: none).
func (p *provider) createBody(req clients.KeyRequest) (map[string]any, time.Time, error) {
	if len(req.Scopes) > 0 {
		return nil, time.Time{}, &clients.FieldError{Field: "scopes", Message: "openrouter keys take no scopes: " +
			"bound them with the parameters limit, limit_reset and expires_at"}
	}
	body := map[string]any{"name": req.Name}
	if p.workspaceID != "" {
		body["workspace_id"] = p.workspaceID
	}
	expires := req.ExpiresAt
	bad := func(format string, a ...any) (map[string]any, time.Time, error) {
		return nil, time.Time{}, &clients.FieldError{Field: "parameters", Message: fmt.Sprintf(format, a...)}
	}
	for _, k := range clients.ParameterNames(req) {
		v := strings.TrimSpace(req.Parameters[k])
		switch k {
		case paramLimit:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				return bad("limit must be a spending limit in USD, a number of 0 or more such as 25 or 2.50 (got %q)", v)
			}
			body["limit"] = f
		case paramLimitReset:
			if !contains(limitResets, v) {
				return bad("limit_reset must be one of daily, weekly, monthly (got %q)", v)
			}
			body["limit_reset"] = v
		case paramIncludeBYOK:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return bad("include_byok_in_limit must be true or false (got %q)", v)
			}
			body["include_byok_in_limit"] = b
		case paramExpiresAt:
			at, err := p.parseExpiry(v)
			if err != nil {
				return bad("expires_at %s", err.Error())
			}
			if expires.IsZero() || at.Before(expires) {
				expires = at
			}
		default:
			return bad("unknown parameter %q for openrouter (allowed: expires_at, include_byok_in_limit, limit, limit_reset)", k)
		}
	}
	if !expires.IsZero() {
		// OpenRouter takes UTC only; rounded up to the second so the key
		// never expires before the time asked for.
		expires = expires.UTC().Add(time.Second - 1).Truncate(time.Second)
		body["expires_at"] = expires.Format(time.RFC3339)
	}
	return body, expires, nil
}

// parseExpiry reads the expires_at parameter: an RFC 3339 time, or a
// duration such as 720h counted from each key's creation (which suits a
// dual role, whose keys are made over months).
func (p *provider) parseExpiry(v string) (time.Time, error) {
	now := p.now()
	if d, err := time.ParseDuration(v); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("must be a positive duration or a future RFC 3339 time (got %q)", v)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time such as 2027-01-31T00:00:00Z or a duration such as 720h (got %q)", v)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("is in the past (%s)", t.UTC().Format(time.RFC3339))
	}
	return t, nil
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// ValidateKeyRequest applies createBody's checks.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	_, _, err := p.createBody(req)
	return err
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("openrouter: a key name is required")
	}
	body, expires, err := p.createBody(req)
	if err != nil {
		return clients.Key{}, err
	}
	var out struct {
		Data keyData `json:"data"`
		Key  string  `json:"key"`
	}
	if err := p.call(ctx, "create", http.MethodPost, "/keys", p.managementKey, body, &out); err != nil {
		return clients.Key{}, err
	}
	if !hashPattern.MatchString(out.Data.Hash) {
		return clients.Key{}, fmt.Errorf("provider %q: create: OpenRouter's response has no usable key hash; "+
			"delete the key named %q by hand if it exists", p.http.Provider(), req.Name)
	}
	if out.Key == "" {
		_ = p.RevokeKey(ctx, out.Data.Hash) // nobody could use it
		return clients.Key{}, fmt.Errorf("provider %q: create: OpenRouter's response has no key value", p.http.Provider())
	}
	if t := parseTime(out.Data.ExpiresAt); !t.IsZero() && (expires.IsZero() || t.Before(expires)) {
		expires = t
	}
	name := out.Data.Name
	if name == "" {
		name = req.Name
	}
	extra := map[string]string{"key_hash": out.Data.Hash}
	if out.Data.Limit != nil {
		extra["limit"] = strconv.FormatFloat(*out.Data.Limit, 'f', -1, 64)
	}
	if r, ok := body["limit_reset"].(string); ok {
		extra["limit_reset"] = r
	}
	return clients.Key{ID: out.Data.Hash, Name: name, Secret: out.Key, ExpiresAt: expires, Extra: extra}, nil
}

func parseTime(s *string) time.Time {
	if s == nil || *s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil || t.Year() > 9999 || t.Year() < 1 {
		return time.Time{}
	}
	return t
}

// VerifyKey reads the key's own description with the key (GET /key).
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("openrouter: verify: the key has no secret")
	}
	return p.call(ctx, "verify", http.MethodGet, "/key", key.Secret, nil, nil)
}

// RevokeKey deletes the key; a 404 means it is gone already.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if !hashPattern.MatchString(id) {
		return fmt.Errorf("openrouter: revoke: %q is not a key hash", id)
	}
	err := p.call(ctx, "revoke", http.MethodDelete, "/keys/"+id, p.managementKey, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// listKeys pages through GET /keys (disabled keys included: a disabled key
// can be enabled again, so it still counts as live).
func (p *provider) listKeys(ctx context.Context, fn func(keyData)) error {
	for i := 0; i < maxPages; i++ {
		q := url.Values{}
		q.Set("include_disabled", "true")
		if i > 0 {
			q.Set("offset", strconv.Itoa(i*pageSize))
		}
		if p.workspaceID != "" {
			q.Set("workspace_id", p.workspaceID)
		}
		var page struct {
			Data []keyData `json:"data"`
		}
		if err := p.call(ctx, "list", http.MethodGet, "/keys?"+q.Encode(), p.managementKey, nil, &page); err != nil {
			return err
		}
		for _, k := range page.Data {
			if hashPattern.MatchString(k.Hash) { // only keys RevokeKey accepts
				fn(k)
			}
		}
		if len(page.Data) < pageSize {
			return nil
		}
	}
	return nil
}

func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// RootID checks the management key (GET /key with it, an authenticated
// call, so a wrong key is refused when the provider is written). The key
// has no id the API gives back: "".
func (p *provider) RootID(ctx context.Context) (string, error) {
	return "", p.call(ctx, "verify_root", http.MethodGet, "/key", p.managementKey, nil, nil)
}

// ListKeys lists every key of the account (or workspace) for tidy.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	var out []clients.Key
	err := p.listKeys(ctx, func(k keyData) {
		created, _ := time.Parse(time.RFC3339, k.CreatedAt)
		out = append(out, clients.Key{ID: k.Hash, Name: k.Name, CreatedAt: created, ExpiresAt: parseTime(k.ExpiresAt)})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// call sends a request with secret as the bearer token; any 2xx is success
// and its JSON body is decoded into out (when not nil).
func (p *provider) call(ctx context.Context, op, method, path, secret string, in, out any) error {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Authorization": {"Bearer " + secret}}}
	_, err := p.http.JSON(ctx, r, in, out, httpx.Expect{Message: apiMessage, Redact: []string{p.managementKey, secret}})
	return err
}

// apiMessage extracts OpenRouter's {"error":{"code","message"}} text, with
// any key-like fragment removed.
func apiMessage(body []byte) string {
	var e struct {
		Error *struct {
			Code    any    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	var out string
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return ""
		}
		out = httpx.TextMessage(body)
	} else {
		out = e.Error.Message
	}
	return keyPattern.ReplaceAllString(out, "sk-or-[redacted]")
}
