// Package linode issues Linode API v4 personal access tokens: each key is a
// token created by the root token under /profile/tokens, with the role's
// scopes and, for dynamic keys, an expiry at the lease's end. The root is a
// personal access token, rotated create-verify-delete.
package linode

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

// TypeName is the provider type.
const TypeName = "linode"

const (
	fieldToken = "token"
	// maxLabel is the documented length limit of a token label.
	maxLabel = 100
	pageSize = 100
	maxPages = 100
	// prefixLen is how much of a token the token list shows.
	prefixLen = 16
)

var capabilities = clients.Capabilities{Expiry: true, ListByName: true, RootRotation: true}

var (
	idPattern = regexp.MustCompile(`^[0-9]{1,19}$`)
	// scopePattern is one OAuth scope: an area and its access level.
	scopePattern = regexp.MustCompile(`^[a-z_]+:(read_only|read_write)$`)
)

func init() {
	clients.Register(&clients.Type{
		Name:             TypeName,
		Description:      "Linode (Akamai Cloud): issues personal access tokens with scopes and expiry, and rotates the root token.",
		DefaultBaseURL:   "https://api.linode.com/v4",
		MaxKeyNameLength: maxLabel,
		Fields: []clients.Field{{
			Name: fieldToken,
			Description: "Linode personal access token Vault uses to create and delete tokens under /profile/tokens; " +
				"creating one needs account:read_write and it can only give tokens scopes it has itself, so use one with " +
				"scopes \"*\". Root rotation replaces it " +
				"with a token of the same scopes and no expiry.",
			Required:  true,
			Sensitive: true,
		}},
		Capabilities: capabilities,
		Validate: func(fields map[string]string) error {
			if strings.TrimSpace(fields[fieldToken]) == "" {
				return &clients.FieldError{Field: fieldToken, Message: "is required"}
			}
			return nil
		},
		New: func(cfg clients.Config) (clients.Provider, error) {
			return &provider{http: cfg.HTTP, base: cfg.BaseURL, token: strings.TrimSpace(cfg.Fields[fieldToken])}, nil
		},
	})
}

type provider struct {
	http  *httpx.Client
	base  string
	token string
}

// token is a personal access token as the API shows it; Token is the whole
// value only in the create's answer (the list shows its first 16 characters).
type token struct {
	ID      json.Number `json:"id"`
	Label   string      `json:"label"`
	Scopes  string      `json:"scopes"`
	Expiry  *string     `json:"expiry"`
	Token   string      `json:"token"`
	Created string      `json:"created"`
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// ValidateKeyRequest: scopes are required ("*" alone, or area:read_only /
// area:read_write), parameters are none.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) == 0 {
		return &clients.FieldError{Field: "scopes", Message: `linode tokens need scopes: "*" for all, or a list such as linodes:read_only,domains:read_write`}
	}
	for _, s := range req.Scopes {
		if s == "*" && len(req.Scopes) == 1 {
			continue
		}
		if !scopePattern.MatchString(s) {
			return &clients.FieldError{Field: "scopes", Message: fmt.Sprintf(`%q is not a Linode scope: use area:read_only or area:read_write, or "*" alone`, s)}
		}
	}
	return clients.NoParameters(req, "linode tokens take no parameters")
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("linode: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	body := map[string]any{"label": req.Name, "scopes": strings.Join(req.Scopes, ",")}
	if !req.ExpiresAt.IsZero() {
		body["expiry"] = req.ExpiresAt.UTC().Format(time.RFC3339)
	}
	t, err := p.create(ctx, "create", body)
	if err != nil {
		return clients.Key{}, err
	}
	k := clients.Key{ID: t.ID.String(), Name: req.Name, Secret: t.Token, Extra: map[string]string{"scopes": t.Scopes}}
	if t.Expiry != nil {
		if at, ok := parseTime(*t.Expiry); ok {
			k.ExpiresAt = at
		}
	}
	return k, nil
}

// create posts a token and checks that the answer can be used and revoked.
func (p *provider) create(ctx context.Context, op string, body map[string]any) (token, error) {
	var t token
	if err := p.call(ctx, op, http.MethodPost, "/profile/tokens", p.token, body, &t); err != nil {
		return token{}, err
	}
	if !idPattern.MatchString(t.ID.String()) {
		return token{}, fmt.Errorf("provider %q: %s: Linode's response has no usable token id; delete the token labelled %q by hand if it exists",
			p.http.Provider(), op, body["label"])
	}
	if t.Token == "" {
		_ = p.deleteToken(ctx, op, t.ID.String())
		return token{}, fmt.Errorf("provider %q: %s: Linode's response has no token value", p.http.Provider(), op)
	}
	return t, nil
}

// parseTime reads Linode's datetimes ("2018-01-01T00:01:01", UTC) or RFC 3339.
func parseTime(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil && t.Year() > 0 && t.Year() < 10000 {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// VerifyKey reads the profile with the key.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("linode: verify: the key has no secret")
	}
	return p.call(ctx, "verify", http.MethodGet, "/profile", key.Secret, nil, nil)
}

func (p *provider) RevokeKey(ctx context.Context, id string) error {
	return p.deleteToken(ctx, "revoke", id)
}

func (p *provider) deleteToken(ctx context.Context, op, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("linode: %s: %q is not a token id", op, id)
	}
	err := p.call(ctx, op, http.MethodDelete, "/profile/tokens/"+id, p.token, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// tokens pages through /profile/tokens with secret.
func (p *provider) tokens(ctx context.Context, op, secret string) ([]token, error) {
	var all []token
	for page := 1; page <= maxPages; page++ {
		var pg struct {
			Data  []token `json:"data"`
			Pages int     `json:"pages"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "page_size": {strconv.Itoa(pageSize)}}
		if err := p.call(ctx, op, http.MethodGet, "/profile/tokens?"+q.Encode(), secret, nil, &pg); err != nil {
			return nil, err
		}
		all = append(all, pg.Data...)
		if page >= pg.Pages {
			break
		}
	}
	return all, nil
}

func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the profile's personal access tokens, every page, for
// tidy: Name is the label, CreatedAt is created (UTC). The root token is
// one of them, listed under the id RootID returns.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	list, err := p.tokens(ctx, "list", p.token)
	if err != nil {
		return nil, err
	}
	var out []clients.Key
	for _, t := range list {
		// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
		if idPattern.MatchString(t.ID.String()) {
			created, _ := parseTime(t.Created)
			out = append(out, clients.Key{ID: t.ID.String(), Name: t.Label, CreatedAt: created})
		}
	}
	return out, nil
}

// ownToken finds the root token in the list by the first 16 characters the
// list shows; nil when none or several match.
func (p *provider) ownToken(ctx context.Context) (*token, error) {
	list, err := p.tokens(ctx, "list", p.token)
	if err != nil {
		return nil, err
	}
	var found *token
	for i, t := range list {
		if len(t.Token) >= prefixLen && strings.HasPrefix(p.token, t.Token) && idPattern.MatchString(t.ID.String()) {
			if found != nil {
				return nil, nil
			}
			found = &list[i]
		}
	}
	return found, nil
}

func (p *provider) RootID(ctx context.Context) (string, error) {
	t, err := p.ownToken(ctx)
	if err != nil || t == nil {
		return "", err
	}
	return t.ID.String(), nil
}

// CreateRoot creates a token with the root's scopes and no expiry. It
// refuses when the root cannot be found in the list, since the old token
// could not be deleted afterwards.
func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	own, err := p.ownToken(ctx)
	if err != nil {
		return clients.Root{}, err
	}
	if own == nil {
		return clients.Root{}, fmt.Errorf("provider %q: root rotation: the configured token was not found in GET /profile/tokens "+
			"(by its first %d characters), so it could not be deleted afterwards", p.http.Provider(), prefixLen)
	}
	scopes := own.Scopes
	if scopes == "" {
		scopes = "*"
	}
	t, err := p.create(ctx, "create_root", map[string]any{"label": name, "scopes": scopes, "expiry": nil})
	if err != nil {
		return clients.Root{}, err
	}
	return clients.Root{ID: t.ID.String(), Fields: map[string]string{fieldToken: t.Token}}, nil
}

// VerifyRoot lists tokens with the new root: what Vault does with it.
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	secret := root.Fields[fieldToken]
	if secret == "" {
		return errors.New("linode: verify_root: the new root has no token")
	}
	return p.call(ctx, "verify_root", http.MethodGet, "/profile/tokens?page=1&page_size=25", secret, nil, nil)
}

// RevokeRoot deletes the replaced token (with the new root).
func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	return p.deleteToken(ctx, "revoke_root", oldID)
}

func (p *provider) call(ctx context.Context, op, method, path, secret string, in, out any) error {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Authorization": {"Bearer " + secret}}}
	_, err := p.http.JSON(ctx, r, in, out, httpx.Expect{Message: errorMessage, Redact: []string{p.token, secret}})
	return err
}

// errorMessage reads Linode's {"errors":[{"reason","field"}]}.
func errorMessage(body []byte) string {
	var e struct {
		Errors []struct {
			Reason string `json:"reason"`
			Field  string `json:"field"`
		} `json:"errors"`
	}
	if text, ok := httpx.ErrorBody(body, &e); !ok {
		return text
	}
	var parts []string
	for _, x := range e.Errors {
		if x.Field != "" {
			parts = append(parts, x.Field+": "+x.Reason)
		} else if x.Reason != "" {
			parts = append(parts, x.Reason)
		}
	}
	return strings.Join(parts, "; ")
}
