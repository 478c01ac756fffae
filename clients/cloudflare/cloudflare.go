// Package cloudflare issues Cloudflare API tokens (user-owned or
// account-owned) and rotates the root token by creating a token with the
// same policies, verifying it and deleting the old one.
package cloudflare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

const (
	// TypeName is the provider type's name in the registry.
	TypeName       = "cloudflare"
	defaultBaseURL = "https://api.cloudflare.com/client/v4"

	fieldAPIToken  = "api_token"
	fieldAccountID = "account_id"

	paramPolicies  = "policies"
	paramCondition = "condition"
	paramNotBefore = "not_before"

	perPage  = 50
	maxPages = 20
)

var (
	accountIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	tokenIDPattern   = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	statusPattern    = regexp.MustCompile(`^[a-z_]{0,20}$`)
)

var capabilities = clients.Capabilities{Expiry: true, ListByName: true, RootRotation: true}

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "Cloudflare API tokens, user-owned or account-owned (account_id), with the role's policies and " +
			"provider-side expiry. The root token is rotated by creating a token with the same policies and deleting the old one.",
		DefaultBaseURL: defaultBaseURL,
		// 1,200 requests per 5 minutes per user (PROVIDERS.md).
		DefaultMaxRequestsPerSecond: 4,
		Fields: []clients.Field{
			{
				Name: fieldAPIToken,
				Description: "Cloudflare API token Vault manages tokens with. It needs the \"API Tokens Write\" permission " +
					"(user tokens) or \"Account API Tokens Write\" (account tokens), and every permission a role grants. Write-only.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name:    fieldAccountID,
				Account: true,
				Description: "Optional Cloudflare account id (32 hex digits). When set, tokens are account-owned " +
					"(/accounts/<id>/tokens) and api_token must be an account-owned token of that account; else tokens are user-owned (/user/tokens).",
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newClient,
	})
}

func validate(fields map[string]string) error {
	tok := fields[fieldAPIToken]
	if strings.TrimSpace(tok) == "" {
		return &clients.FieldError{Field: fieldAPIToken, Message: "is required"}
	}
	if strings.ContainsAny(tok, " \r\n\t") {
		return &clients.FieldError{Field: fieldAPIToken, Message: "must not contain whitespace"}
	}
	if id := fields[fieldAccountID]; id != "" && !accountIDPattern.MatchString(id) {
		return &clients.FieldError{Field: fieldAccountID, Message: "must be 32 lowercase hex digits"}
	}
	return nil
}

type client struct {
	http   *httpx.Client
	tokens string // base URL of the token collection
	token  string
}

func newClient(cfg clients.Config) (clients.Provider, error) {
	base := cfg.BaseURL
	if base == "" {
		base = defaultBaseURL
	}
	tokens := base + "/user/tokens"
	if id := cfg.Fields[fieldAccountID]; id != "" {
		tokens = base + "/accounts/" + id + "/tokens"
	}
	return &client{http: cfg.HTTP, tokens: tokens, token: cfg.Fields[fieldAPIToken]}, nil
}

func (c *client) Capabilities() clients.Capabilities { return capabilities }

// envelope is Cloudflare's response wrapper.
type envelope struct {
	Success bool `json:"success"`
	Errors  []struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
	Result     json.RawMessage `json:"result"`
	ResultInfo *struct {
		Page       int `json:"page"`
		TotalPages int `json:"total_pages"`
	} `json:"result_info"`
}

func (e envelope) message() string {
	parts := make([]string, 0, len(e.Errors))
	for _, x := range e.Errors {
		parts = append(parts, fmt.Sprintf("%s (code %d)", x.Message, x.Code))
	}
	return strings.Join(parts, "; ")
}

// errorMessage extracts the envelope's errors from a failure body.
func errorMessage(body []byte) string {
	var env envelope
	_ = json.Unmarshal(body, &env)
	return env.message()
}

// call sends one request with bearer, checks the status and the envelope's
// success flag and decodes result into out. Errors carry Cloudflare's
// messages with every secret removed.
func (c *client) call(ctx context.Context, op, method, rawURL, bearer string, in, out any, secrets ...string) (envelope, error) {
	req := httpx.Request{Op: op, Method: method, URL: rawURL, Header: http.Header{"Authorization": {"Bearer " + bearer}}}
	redact := append([]string{c.token, bearer}, secrets...)
	var env envelope
	resp, err := c.http.JSON(ctx, req, in, &env, httpx.Expect{Message: errorMessage, Redact: redact})
	if err != nil {
		return envelope{}, err
	}
	if !env.Success {
		return envelope{}, c.http.StatusError(req, resp, "success=false: "+env.message(), redact...)
	}
	if out != nil {
		if err := json.Unmarshal(env.Result, out); err != nil {
			return envelope{}, c.http.StatusError(req, resp, "decoding response: the result is not the expected JSON")
		}
	}
	return env, nil
}

// policy is one token policy as Cloudflare's create endpoint takes it.
type policy struct {
	Effect           string            `json:"effect"`
	PermissionGroups []permissionGroup `json:"permission_groups"`
	Resources        json.RawMessage   `json:"resources"`
}

type permissionGroup struct {
	ID   string          `json:"id"`
	Meta json.RawMessage `json:"meta,omitempty"`
}

// parsePolicies checks the role parameter "policies": a JSON array of
// {effect, permission_groups: [{id}], resources: {…}}.
func parsePolicies(raw string) ([]policy, error) {
	var ps []policy
	if err := json.Unmarshal([]byte(raw), &ps); err != nil {
		return nil, fmt.Errorf("must be a JSON array of policies: %v", err)
	}
	if len(ps) == 0 {
		return nil, errors.New("must hold at least one policy")
	}
	for i, p := range ps {
		if p.Effect != "allow" && p.Effect != "deny" {
			return nil, fmt.Errorf("policy %d: effect must be \"allow\" or \"deny\"", i)
		}
		if len(p.PermissionGroups) == 0 {
			return nil, fmt.Errorf("policy %d: permission_groups is empty", i)
		}
		for _, g := range p.PermissionGroups {
			if g.ID == "" {
				return nil, fmt.Errorf("policy %d: every permission group needs an id", i)
			}
		}
		var res map[string]json.RawMessage
		if err := json.Unmarshal(p.Resources, &res); err != nil || len(res) == 0 {
			return nil, fmt.Errorf("policy %d: resources must be a non-empty object", i)
		}
	}
	return ps, nil
}

type createBody struct {
	Name      string          `json:"name"`
	Policies  []policy        `json:"policies"`
	ExpiresOn string          `json:"expires_on,omitempty"`
	NotBefore string          `json:"not_before,omitempty"`
	Condition json.RawMessage `json:"condition,omitempty"`
}

type tokenResult struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Status    string          `json:"status"`
	Value     string          `json:"value"`
	ExpiresOn string          `json:"expires_on"`
	IssuedOn  string          `json:"issued_on"`
	Policies  []policy        `json:"policies"`
	Condition json.RawMessage `json:"condition"`
}

func formatTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

func paramError(msg string) error { return &clients.FieldError{Field: "parameters", Message: msg} }

// createOptions maps a role's parameters onto the token body.
func createOptions(req clients.KeyRequest) (createBody, error) {
	body := createBody{Name: req.Name}
	if len(req.Scopes) > 0 {
		return body, &clients.FieldError{Field: "scopes", Message: "Cloudflare tokens take policies, not scopes: set parameters policies=<JSON array>"}
	}
	names := make([]string, 0, len(req.Parameters))
	for n := range req.Parameters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := req.Parameters[n]
		switch n {
		case paramPolicies:
			ps, err := parsePolicies(v)
			if err != nil {
				return body, paramError(paramPolicies + " " + err.Error())
			}
			body.Policies = ps
		case paramCondition:
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(v), &obj); err != nil {
				return body, paramError(paramCondition + " must be a JSON object, e.g. {\"request_ip\":{\"in\":[\"192.0.2.0/24\"]}}")
			}
			body.Condition = json.RawMessage(v)
		case paramNotBefore:
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return body, paramError(paramNotBefore + " must be an RFC 3339 time, e.g. 2030-01-01T00:00:00Z")
			}
			body.NotBefore = formatTime(t)
		default:
			return body, paramError(fmt.Sprintf("unknown parameter %q (supported: %s, %s, %s)", n, paramPolicies, paramCondition, paramNotBefore))
		}
	}
	if body.Policies == nil {
		return body, paramError(paramPolicies + " is required: a JSON array of token policies")
	}
	if !req.ExpiresAt.IsZero() {
		body.ExpiresOn = formatTime(req.ExpiresAt)
	}
	return body, nil
}

func (c *client) create(ctx context.Context, op string, body createBody) (tokenResult, error) {
	var out tokenResult
	if _, err := c.call(ctx, op, http.MethodPost, c.tokens, c.token, body, &out); err != nil {
		return tokenResult{}, err
	}
	if out.ID == "" || out.Value == "" {
		return tokenResult{}, fmt.Errorf("provider %q: %s: response has no token id or value", c.http.Provider(), op)
	}
	if !tokenIDPattern.MatchString(out.ID) {
		// delete would refuse it: Vault could never revoke the token.
		return tokenResult{}, fmt.Errorf("provider %q: %s: response has a token id Vault cannot use; delete the token named %q by hand",
			c.http.Provider(), op, body.Name)
	}
	return out, nil
}

// ValidateKeyRequest applies createOptions' checks.
func (c *client) ValidateKeyRequest(req clients.KeyRequest) error {
	_, err := createOptions(req)
	return err
}

func (c *client) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if req.Name == "" {
		return clients.Key{}, &clients.FieldError{Field: "name_template", Message: "key name is empty"}
	}
	body, err := createOptions(req)
	if err != nil {
		return clients.Key{}, err
	}
	out, err := c.create(ctx, "create", body)
	if err != nil {
		return clients.Key{}, err
	}
	key := clients.Key{ID: out.ID, Name: out.Name, Secret: out.Value}
	if t, err := time.Parse(time.RFC3339, out.ExpiresOn); err == nil {
		key.ExpiresAt = t
	} else if body.ExpiresOn != "" {
		key.ExpiresAt, _ = time.Parse(time.RFC3339, body.ExpiresOn)
	}
	return key, nil
}

// verify calls the token verify endpoint with token and returns its id.
func (c *client) verify(ctx context.Context, op, token string) (string, error) {
	r, err := c.verifyToken(ctx, op, token)
	return r.ID, err
}

// verifyToken is verify returning the token's expiry (expires_on) too.
func (c *client) verifyToken(ctx context.Context, op, token string) (clients.Root, error) {
	var out struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		ExpiresOn string `json:"expires_on"`
	}
	if _, err := c.call(ctx, op, http.MethodGet, c.tokens+"/verify", token, nil, &out, token); err != nil {
		return clients.Root{}, err
	}
	if out.Status != "active" {
		// The status is the provider's text: named only when it is a plain
		// word, so an echoed credential never reaches the error.
		status := "not a status"
		if statusPattern.MatchString(out.Status) {
			status = strconv.Quote(out.Status)
		}
		return clients.Root{}, fmt.Errorf("provider %q: %s: token status is %s, not active", c.http.Provider(), op, status)
	}
	r := clients.Root{ID: out.ID}
	r.ExpiresAt, _ = time.Parse(time.RFC3339, out.ExpiresOn)
	return r, nil
}

func (c *client) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("cloudflare: verify: key has no secret")
	}
	id, err := c.verify(ctx, "verify", key.Secret)
	if err != nil {
		return err
	}
	if key.ID != "" && id != key.ID {
		return fmt.Errorf("provider %q: verify: the token verified as a different token id", c.http.Provider())
	}
	return nil
}

func (c *client) delete(ctx context.Context, op, id string) error {
	if !tokenIDPattern.MatchString(id) {
		return fmt.Errorf("cloudflare: %s: invalid token id", op)
	}
	_, err := c.call(ctx, op, http.MethodDelete, c.tokens+"/"+id, c.token, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

func (c *client) RevokeKey(ctx context.Context, id string) error { return c.delete(ctx, "revoke", id) }

func (c *client) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, c.ListKeys, name)
}

// ListKeys lists the tokens (user or account owned, as configured), every
// page, for tidy: CreatedAt is issued_on. The root token is one of them;
// its id is the root id stored, which tidy never revokes.
func (c *client) ListKeys(ctx context.Context) ([]clients.Key, error) {
	var found []clients.Key
	for page := 1; page <= maxPages; page++ {
		var out []tokenResult
		u := c.tokens + "?" + url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(perPage)}}.Encode()
		env, err := c.call(ctx, "list", http.MethodGet, u, c.token, nil, &out)
		if err != nil {
			return nil, err
		}
		for _, t := range out {
			// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
			if tokenIDPattern.MatchString(t.ID) {
				created, _ := time.Parse(time.RFC3339, t.IssuedOn)
				expires, _ := time.Parse(time.RFC3339, t.ExpiresOn)
				found = append(found, clients.Key{ID: t.ID, Name: t.Name, CreatedAt: created, ExpiresAt: expires})
			}
		}
		if len(out) == 0 || env.ResultInfo == nil || page >= env.ResultInfo.TotalPages {
			break
		}
	}
	return found, nil
}

// RootID asks Cloudflare which token the configured one is.
func (c *client) RootID(ctx context.Context) (string, error) {
	return c.verify(ctx, "verify_root", c.token)
}

// InspectRoot is RootID with the root token's expires_on.
func (c *client) InspectRoot(ctx context.Context) (clients.Root, error) {
	return c.verifyToken(ctx, "verify_root", c.token)
}

// CreateRoot reads the root token's own policies and condition and creates
// a token with the same ones. The new token does not inherit an expiry.
func (c *client) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	id, err := c.verify(ctx, "create_root", c.token)
	if err != nil {
		return clients.Root{}, err
	}
	if !tokenIDPattern.MatchString(id) {
		return clients.Root{}, fmt.Errorf("provider %q: create_root: verify returned an invalid token id", c.http.Provider())
	}
	var cur tokenResult
	if _, err := c.call(ctx, "create_root", http.MethodGet, c.tokens+"/"+id, c.token, nil, &cur); err != nil {
		return clients.Root{}, err
	}
	if len(cur.Policies) == 0 {
		return clients.Root{}, fmt.Errorf("provider %q: create_root: the root token's policies could not be read", c.http.Provider())
	}
	body := createBody{Name: name, Policies: cur.Policies}
	if len(cur.Condition) > 0 && string(cur.Condition) != "null" && string(cur.Condition) != "{}" {
		body.Condition = cur.Condition
	}
	out, err := c.create(ctx, "create_root", body)
	if err != nil {
		return clients.Root{}, err
	}
	root := clients.Root{ID: out.ID, Fields: map[string]string{fieldAPIToken: out.Value}}
	root.ExpiresAt, _ = time.Parse(time.RFC3339, out.ExpiresOn)
	return root, nil
}

// VerifyRoot verifies the new token and checks it can read itself, which
// needs the token-management permission.
func (c *client) VerifyRoot(ctx context.Context, root clients.Root) error {
	tok := root.Fields[fieldAPIToken]
	if tok == "" {
		return errors.New("cloudflare: verify_root: root has no api_token")
	}
	id, err := c.verify(ctx, "verify_root", tok)
	if err != nil {
		return err
	}
	if root.ID != "" && id != root.ID {
		return fmt.Errorf("provider %q: verify_root: the token verified as a different token id", c.http.Provider())
	}
	if !tokenIDPattern.MatchString(id) {
		return fmt.Errorf("provider %q: verify_root: verify returned an invalid token id", c.http.Provider())
	}
	_, err = c.call(ctx, "verify_root", http.MethodGet, c.tokens+"/"+id, tok, nil, nil, tok)
	return err
}

// RevokeRoot deletes the old root token with the new one.
func (c *client) RevokeRoot(ctx context.Context, oldID string) error {
	if oldID == "" {
		return fmt.Errorf("provider %q: revoke_root: the old root token's id is unknown; delete it by hand", c.http.Provider())
	}
	own, err := c.verify(ctx, "revoke_root", c.token)
	if err != nil {
		return err
	}
	if own == oldID {
		return fmt.Errorf("provider %q: revoke_root: refusing to delete the token in use", c.http.Provider())
	}
	return c.delete(ctx, "revoke_root", oldID)
}
