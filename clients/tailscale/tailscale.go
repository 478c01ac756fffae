// Package tailscale issues Tailscale auth keys (the keys that register
// devices in a tailnet) with the tailnet's API access token. Tailscale
// cannot create API access tokens through its API, so the root is never
// rotated by Vault.
package tailscale

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
)

// Field names.
const (
	fieldAPIKey  = "api_key"
	fieldTailnet = "tailnet"
)

// Key parameters.
const (
	paramReusable      = "reusable"
	paramEphemeral     = "ephemeral"
	paramPreauthorized = "preauthorized"
)

const defaultBaseURL = "https://api.tailscale.com/api/v2"

// maxDescription is the longest auth key description Tailscale accepts.
const maxDescription = 50

// maxExpirySeconds is Tailscale's longest auth key lifetime (90 days).
const maxExpirySeconds = 90 * 24 * 60 * 60

var capabilities = clients.Capabilities{Expiry: true}

// idPattern admits Tailscale key ids (kXXXXCNTRL style) and keeps them from
// changing the request path.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// tailnetPattern admits "-" (the token's own tailnet), an organization name
// or domain, or a tailnet id.
var tailnetPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]*$|^-$`)

// tagPattern is an ACL tag: "tag:" and a name of letters, digits and dashes.
var tagPattern = regexp.MustCompile(`^tag:[A-Za-z0-9][A-Za-z0-9-]*$`)

// descriptionUnsafe are the characters a description may not hold
// (Tailscale allows letters, digits, dashes and spaces).
var descriptionUnsafe = regexp.MustCompile(`[^A-Za-z0-9 -]`)

// keyPattern finds Tailscale credentials in error text.
var keyPattern = regexp.MustCompile(`tskey-[A-Za-z0-9_-]+`)

func init() {
	clients.Register(&clients.Type{
		Name: "tailscale",
		Description: "Tailscale: issues auth keys (reusable, ephemeral, preauthorized, tagged) for a tailnet with an " +
			"API access token; the access token cannot be rotated through Tailscale's API.",
		DefaultBaseURL: defaultBaseURL,
		Fields: []clients.Field{
			{
				Name: fieldAPIKey,
				Description: "Tailscale API access token (tskey-api-…) Vault uses to create and delete auth keys. " +
					"Tailscale cannot create access tokens through its API, so Vault cannot rotate it: replace it " +
					"by hand before it expires (at most 90 days).",
				Required:  true,
				Sensitive: true,
			},
			{
				Name:    fieldTailnet,
				Account: true,
				Description: "Tailnet in which auth keys are created: \"-\" (the access token's own tailnet), the " +
					"organization name or the tailnet id.",
				Default: "-",
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	if strings.TrimSpace(fields[fieldAPIKey]) == "" {
		return &clients.FieldError{Field: fieldAPIKey, Message: "is required"}
	}
	if v := fields[fieldTailnet]; !tailnetPattern.MatchString(v) {
		return &clients.FieldError{Field: fieldTailnet, Message: fmt.Sprintf(`must be "-", an organization name or a tailnet id (got %q)`, v)}
	}
	return nil
}

type provider struct {
	clients.Unsupported
	http    *httpx.Client
	base    string
	apiKey  string
	tailnet string
	now     func() time.Time
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	base := cfg.BaseURL
	if base == "" {
		base = defaultBaseURL
	}
	return &provider{http: cfg.HTTP, base: base, apiKey: strings.TrimSpace(cfg.Fields[fieldAPIKey]),
		tailnet: cfg.Fields[fieldTailnet], now: time.Now}, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

func (p *provider) keysPath() string { return "/tailnet/" + url.PathEscape(p.tailnet) + "/keys" }

// ValidateKeyRequest: scopes are the ACL tags of the devices the key
// registers; parameters are reusable, ephemeral and preauthorized.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	for _, s := range req.Scopes {
		if !tagPattern.MatchString(s) {
			return &clients.FieldError{Field: "scopes", Message: fmt.Sprintf("%q is not an ACL tag: tailscale scopes are the tags "+
				"given to the devices the key registers, such as tag:ci", s)}
		}
	}
	for k, v := range req.Parameters {
		switch k {
		case paramReusable, paramEphemeral, paramPreauthorized:
			if _, err := strconv.ParseBool(v); err != nil {
				return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("%s must be true or false (got %q)", k, v)}
			}
		default:
			return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("unknown parameter %q: tailscale auth keys take "+
				"reusable, ephemeral and preauthorized (tags go in scopes)", k)}
		}
	}
	return nil
}

// description is name as Tailscale accepts it: letters, digits, dashes and
// spaces, at most maxDescription characters.
func description(name string) string {
	d := descriptionUnsafe.ReplaceAllString(name, "-")
	if len(d) > maxDescription {
		d = d[:maxDescription]
	}
	return d
}

type authKey struct {
	ID          string `json:"id"`
	Key         string `json:"key"`
	Description string `json:"description"`
	Expires     string `json:"expires"`
	Revoked     string `json:"revoked"`
	Invalid     bool   `json:"invalid"`
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("tailscale: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	create := map[string]any{}
	for _, k := range []string{paramReusable, paramEphemeral, paramPreauthorized} {
		b, _ := strconv.ParseBool(req.Parameters[k]) // validated above; absent is false
		create[k] = b
	}
	if len(req.Scopes) > 0 {
		create["tags"] = req.Scopes
	}
	body := map[string]any{
		"capabilities": map[string]any{"devices": map[string]any{"create": create}},
		"description":  description(req.Name),
	}
	if !req.ExpiresAt.IsZero() {
		secs := int64(math.Ceil(req.ExpiresAt.Sub(p.now()).Seconds()))
		if secs < 1 {
			return clients.Key{}, errors.New("tailscale: the key's expiry is already past")
		}
		body["expirySeconds"] = min(secs, maxExpirySeconds)
	}
	var k authKey
	if err := p.call(ctx, "create", http.MethodPost, p.keysPath(), body, &k); err != nil {
		return clients.Key{}, err
	}
	if !idPattern.MatchString(k.ID) {
		return clients.Key{}, fmt.Errorf("provider %q: create: Tailscale's response has no usable key id; delete the auth key "+
			"described %q by hand if it exists", p.http.Provider(), description(req.Name))
	}
	if k.Key == "" {
		_ = p.RevokeKey(ctx, k.ID)
		return clients.Key{}, fmt.Errorf("provider %q: create: Tailscale's response has no key value", p.http.Provider())
	}
	key := clients.Key{ID: k.ID, Name: description(req.Name), Secret: k.Key, Extra: map[string]string{"tailnet": p.tailnet}}
	if t, err := time.Parse(time.RFC3339, k.Expires); err == nil && t.Year() > 0 && t.Year() < 10000 {
		key.ExpiresAt = t.UTC()
	}
	return key, nil
}

// VerifyKey reads the key by id with the access token and checks that
// Tailscale holds it valid: an auth key cannot call the API itself, it only
// registers devices.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if !idPattern.MatchString(key.ID) {
		return fmt.Errorf("tailscale: verify: %q is not a key id", key.ID)
	}
	var k authKey
	if err := p.call(ctx, "verify", http.MethodGet, p.keysPath()+"/"+key.ID, nil, &k, key.Secret); err != nil {
		return err
	}
	if k.ID != key.ID || k.Invalid || k.Revoked != "" {
		return fmt.Errorf("provider %q: verify: Tailscale reports auth key %s as revoked or invalid", p.http.Provider(), key.ID)
	}
	return nil
}

// RevokeKey deletes the auth key; a 404 counts as deleted.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("tailscale: revoke: %q is not a key id", id)
	}
	err := p.call(ctx, "revoke", http.MethodDelete, p.keysPath()+"/"+id, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// RootID checks the access token and the tailnet with an authenticated
// list of the tailnet's keys (the backend calls it whenever the root or its
// destination changes). The token's own id is not needed: it is never
// rotated or revoked by Vault.
func (p *provider) RootID(ctx context.Context) (string, error) {
	return "", p.call(ctx, "check_root", http.MethodGet, p.keysPath(), nil, &struct {
		Keys []authKey `json:"keys"`
	}{})
}

// call sends a request with the access token; any 2xx is success and its
// JSON body (when out is not nil) is decoded into out. redact are other
// secrets to keep out of the error (the key being verified).
func (p *provider) call(ctx context.Context, op, method, path string, in, out any, redact ...string) error {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Authorization": {"Bearer " + p.apiKey}}}
	_, err := p.http.JSON(ctx, r, in, out, httpx.Expect{Message: apiMessage, Redact: append([]string{p.apiKey}, redact...), AllowEmpty: out == nil})
	return err
}

// apiMessage extracts Tailscale's {"message": …} text, with any credential
// removed.
func apiMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	out := ""
	if err := json.Unmarshal(body, &e); err != nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return ""
		}
		out = httpx.TextMessage(body)
	} else {
		out = e.Message
	}
	return keyPattern.ReplaceAllString(out, "tskey-[redacted]")
}
