// Package vercel issues Vercel access tokens (POST /v3/user/tokens),
// optionally on behalf of a team (teamId), with provider-side expiry. The
// root is a Vercel access token, rotated create-then-delete; Vercel tells
// its id through GET /v5/user/tokens/current.
package vercel

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
	fieldToken  = "api_token"
	fieldTeamID = "team_id"
)

const defaultBaseURL = "https://api.vercel.com"

// pageSize and maxPages bound token list paging.
const (
	pageSize = 100
	maxPages = 100
)

var capabilities = clients.Capabilities{Expiry: true, ListByName: true, RootRotation: true}

// idPattern admits Vercel token and team ids and keeps them from changing
// the request path.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func init() {
	clients.Register(&clients.Type{
		Name:           "vercel",
		Description:    "Vercel: issues access tokens (for a team with team_id) that expire on their own, and rotates its access token.",
		DefaultBaseURL: defaultBaseURL,
		Fields: []clients.Field{
			{
				Name: fieldToken,
				Description: "Vercel access token Vault uses to create and delete tokens. Create it without an expiry " +
					"(or rotate it before that); root rotation replaces it.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name:    fieldTeamID,
				Account: true,
				Description: "Team id (team_…) sent as ?teamId= on every call, so issued tokens are made on behalf of " +
					"that team. Empty: the access token's own scope.",
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
	if v := fields[fieldTeamID]; v != "" && !idPattern.MatchString(v) {
		return &clients.FieldError{Field: fieldTeamID, Message: fmt.Sprintf("must be a Vercel team id such as team_abc123 (got %q)", v)}
	}
	return nil
}

type provider struct {
	http   *httpx.Client
	base   string
	token  string
	teamID string
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	base := cfg.BaseURL
	if base == "" {
		base = defaultBaseURL
	}
	return &provider{http: cfg.HTTP, base: base, token: strings.TrimSpace(cfg.Fields[fieldToken]), teamID: cfg.Fields[fieldTeamID]}, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// ValidateKeyRequest: Vercel tokens take neither scopes nor parameters.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) > 0 {
		return &clients.FieldError{Field: "scopes", Message: "vercel tokens take no scopes: their reach is the token owner's " +
			"(limit it with team_id on the provider)"}
	}
	return clients.NoParameters(req, "vercel tokens take no parameters")
}

type token struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ExpiresAt int64  `json:"expiresAt"`
	CreatedAt int64  `json:"createdAt"`
}

type created struct {
	Token       token  `json:"token"`
	BearerToken string `json:"bearerToken"`
}

// create makes a token named name (expiring at expires when not zero) with
// the current root.
func (p *provider) create(ctx context.Context, op, name string, expires time.Time) (created, error) {
	body := map[string]any{"name": name}
	if !expires.IsZero() {
		body["expiresAt"] = expires.UnixMilli()
	}
	var c created
	if err := p.call(ctx, op, http.MethodPost, "/v3/user/tokens", p.token, body, &c); err != nil {
		return created{}, err
	}
	if !idPattern.MatchString(c.Token.ID) {
		return created{}, fmt.Errorf("provider %q: %s: Vercel's response has no usable token id; delete the token named %q by hand "+
			"if it exists", p.http.Provider(), op, name)
	}
	if c.BearerToken == "" {
		_ = p.deleteToken(ctx, op, p.token, c.Token.ID)
		return created{}, fmt.Errorf("provider %q: %s: Vercel's response has no bearerToken", p.http.Provider(), op)
	}
	return c, nil
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("vercel: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	c, err := p.create(ctx, "create", req.Name, req.ExpiresAt)
	if err != nil {
		return clients.Key{}, err
	}
	key := clients.Key{ID: c.Token.ID, Name: req.Name, Secret: c.BearerToken, ExpiresAt: fromMillis(c.Token.ExpiresAt)}
	if p.teamID != "" {
		key.Extra = map[string]string{"team_id": p.teamID}
	}
	return key, nil
}

// VerifyKey reads the user with the new token.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("vercel: verify: the key has no secret")
	}
	return p.call(ctx, "verify", http.MethodGet, "/v2/user", key.Secret, nil, nil)
}

// RevokeKey deletes the token; a 404 counts as deleted.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	return p.deleteToken(ctx, "revoke", p.token, id)
}

func (p *provider) deleteToken(ctx context.Context, op, secret, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("vercel: %s: %q is not a token id", op, id)
	}
	err := p.call(ctx, op, http.MethodDelete, "/v3/user/tokens/"+id, secret, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// FindKeys pages through GET /v6/user/tokens (newest first; each page's
// pagination.next is the until of the next) for the tokens named name.
func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the user's tokens, every page, for tidy: CreatedAt is
// createdAt (epoch milliseconds). The root token is one of them, listed
// under the id RootID returns.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	var out []clients.Key
	until := ""
	for i := 0; i < maxPages; i++ {
		q := url.Values{"limit": {strconv.Itoa(pageSize)}}
		if until != "" {
			q.Set("until", until)
		}
		var res struct {
			Tokens     []token `json:"tokens"`
			Pagination struct {
				Next *int64 `json:"next"`
			} `json:"pagination"`
		}
		if err := p.call(ctx, "list", http.MethodGet, "/v6/user/tokens?"+q.Encode(), p.token, nil, &res); err != nil {
			return nil, err
		}
		for _, t := range res.Tokens {
			// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
			if idPattern.MatchString(t.ID) {
				out = append(out, clients.Key{ID: t.ID, Name: t.Name, CreatedAt: fromMillis(t.CreatedAt), ExpiresAt: fromMillis(t.ExpiresAt)})
			}
		}
		next := res.Pagination.Next
		if next == nil || *next <= 0 || len(res.Tokens) == 0 || strconv.FormatInt(*next, 10) == until {
			break
		}
		until = strconv.FormatInt(*next, 10)
	}
	return out, nil
}

// fromMillis reads Vercel's epoch milliseconds; 0 (or absurd) is no time.
func fromMillis(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	if t := time.UnixMilli(ms).UTC(); t.Year() < 10000 {
		return t
	}
	return time.Time{}
}

// current is the id of the token secret, as Vercel tells it.
func (p *provider) current(ctx context.Context, op, secret string) (string, error) {
	var c struct {
		Token token `json:"token"`
	}
	if err := p.call(ctx, op, http.MethodGet, "/v5/user/tokens/current", secret, nil, &c); err != nil {
		return "", err
	}
	if !idPattern.MatchString(c.Token.ID) {
		return "", fmt.Errorf("provider %q: %s: Vercel's response has no usable token id", p.http.Provider(), op)
	}
	return c.Token.ID, nil
}

// RootID asks Vercel for the id of the configured token.
func (p *provider) RootID(ctx context.Context) (string, error) {
	return p.current(ctx, "root_id", p.token)
}

// CreateRoot creates a token without expiry with the current one.
func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	if strings.TrimSpace(name) == "" {
		return clients.Root{}, errors.New("vercel: a root token name is required")
	}
	c, err := p.create(ctx, "create_root", name, time.Time{})
	if err != nil {
		return clients.Root{}, err
	}
	return clients.Root{ID: c.Token.ID, Fields: map[string]string{fieldToken: c.BearerToken}}, nil
}

// VerifyRoot checks that the new token authenticates as itself.
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	secret := root.Fields[fieldToken]
	if secret == "" {
		return errors.New("vercel: verify_root: the new root has no token")
	}
	id, err := p.current(ctx, "verify_root", secret)
	if err != nil {
		return err
	}
	if root.ID != "" && id != root.ID {
		return fmt.Errorf("provider %q: verify_root: the new token authenticates as token %s, not %s", p.http.Provider(), id, root.ID)
	}
	return nil
}

// RevokeRoot deletes the replaced token with the current (new) one.
func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	if oldID == "" {
		return fmt.Errorf("provider %q: revoke_root: the old token's id is unknown; delete it by hand in the account's tokens", p.http.Provider())
	}
	return p.deleteToken(ctx, "revoke_root", p.token, oldID)
}

// call sends a request with secret as the bearer token (and teamId when
// set); any 2xx is success and its JSON body is decoded into out (when not
// nil).
func (p *provider) call(ctx context.Context, op, method, path, secret string, in, out any) error {
	u := p.base + path
	if p.teamID != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		u += sep + url.Values{"teamId": {p.teamID}}.Encode()
	}
	r := httpx.Request{Op: op, Method: method, URL: u, Header: http.Header{"Authorization": {"Bearer " + secret}}}
	_, err := p.http.JSON(ctx, r, in, out, httpx.Expect{Message: apiMessage, Redact: []string{p.token, secret}})
	return err
}

// apiMessage extracts Vercel's {"error":{code,message}} text.
func apiMessage(body []byte) string {
	var e struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return ""
		}
		return httpx.TextMessage(body)
	}
	if e.Error.Code != "" {
		return e.Error.Message + " (code=" + e.Error.Code + ")"
	}
	return e.Error.Message
}
