// Package dockerhub issues Docker Hub personal access tokens (POST
// /v2/access-tokens) with scopes and an optional expiry. Every call to the
// Hub API carries a short-lived JWT obtained from POST /v2/auth/token with
// the account's username and password; the JWT is cached until shortly
// before it expires. Docker Hub refuses JWTs issued from a personal access
// token on its token endpoints and offers no password change through the
// API, so the root (the password) is not rotated by Vault.
package dockerhub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

// Field names.
const (
	fieldUsername = "username"
	fieldPassword = "password"
)

const defaultBaseURL = "https://hub.docker.com"

const (
	// jwtMargin: a cached JWT is replaced this long before it expires, so
	// it never expires in flight.
	jwtMargin = time.Minute
	// jwtFallbackLife is how long a JWT whose expiry cannot be read is used.
	jwtFallbackLife = 5 * time.Minute
	// pageSize and maxPages bound list paging.
	pageSize = 100
	maxPages = 100
)

// Scopes are the documented access token scopes.
var Scopes = []string{"repo:admin", "repo:write", "repo:read", "repo:public_read"}

var capabilities = clients.Capabilities{Expiry: true, ListByName: true}

// idPattern admits token uuids and keeps them from changing the path.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// patPattern finds personal access tokens in error text.
var patPattern = regexp.MustCompile(`dckr_pat_[A-Za-z0-9_-]+`)

func init() {
	clients.Register(&clients.Type{
		Name: "dockerhub",
		Description: "Docker Hub: issues personal access tokens with scopes (repo:admin, repo:write, repo:read, " +
			"repo:public_read) and an expiry, with the account's password; the password is not rotated by Vault.",
		DefaultBaseURL: defaultBaseURL,
		Fields: []clients.Field{
			{
				Name:        fieldUsername,
				Account:     true,
				Description: "Docker Hub user name of the account that owns the issued tokens.",
				Required:    true,
			},
			{
				Name: fieldPassword,
				Description: "The account's password (not a personal access token: Docker Hub refuses token management with a " +
					"JWT issued from one). Exchanged at POST /v2/auth/token for a short-lived JWT. Not rotated by Vault.",
				Required:  true,
				Sensitive: true,
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	if strings.TrimSpace(fields[fieldUsername]) == "" {
		return &clients.FieldError{Field: fieldUsername, Message: "is required"}
	}
	pass := fields[fieldPassword]
	if pass == "" {
		return &clients.FieldError{Field: fieldPassword, Message: "is required"}
	}
	if strings.HasPrefix(pass, "dckr_pat_") {
		return &clients.FieldError{Field: fieldPassword, Message: "is a personal access token; Docker Hub refuses to manage access " +
			"tokens with a JWT issued from one: give the account's password"}
	}
	return nil
}

type provider struct {
	clients.Unsupported
	http     *httpx.Client
	base     string
	username string
	password string
	now      func() time.Time

	mu     sync.Mutex
	jwt    string
	jwtEnd time.Time // when the cached JWT must no longer be used
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	base := cfg.BaseURL
	if base == "" {
		base = defaultBaseURL
	}
	return &provider{http: cfg.HTTP, base: base, username: strings.TrimSpace(cfg.Fields[fieldUsername]),
		password: cfg.Fields[fieldPassword], now: time.Now}, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// ValidateKeyRequest: at least one scope, each a documented one; no
// parameters.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) == 0 {
		return &clients.FieldError{Field: "scopes", Message: "dockerhub tokens need a scope: one of " + strings.Join(Scopes, ", ")}
	}
	for _, s := range req.Scopes {
		if !slices.Contains(Scopes, s) {
			return &clients.FieldError{Field: "scopes", Message: fmt.Sprintf("%q is not a Docker Hub access token scope: use one of %s",
				s, strings.Join(Scopes, ", "))}
		}
	}
	return clients.NoParameters(req, "dockerhub tokens take no parameters")
}

// exchange trades an identifier and secret for a JWT at POST /v2/auth/token.
func (p *provider) exchange(ctx context.Context, op, secret string) (string, error) {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	r := httpx.Request{Op: op, Method: http.MethodPost, URL: p.base + "/v2/auth/token", Idempotent: true}
	body := map[string]string{"identifier": p.username, "secret": secret}
	if _, err := p.http.JSON(ctx, r, body, &out, p.expect(secret)); err != nil {
		return "", err
	}
	if out.AccessToken == "" {
		return "", fmt.Errorf("provider %q: %s: Docker Hub's response has no access_token", p.http.Provider(), op)
	}
	return out.AccessToken, nil
}

// token returns the cached JWT, or a new one when there is none or it is
// about to expire.
func (p *provider) token(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.jwt != "" && now.Before(p.jwtEnd) {
		return p.jwt, nil
	}
	jwt, err := p.exchange(ctx, "auth", p.password)
	if err != nil {
		return "", err
	}
	end := now.Add(jwtFallbackLife)
	if exp, ok := jwtExpiry(jwt); ok {
		end = exp.Add(-jwtMargin)
	}
	p.jwt, p.jwtEnd = jwt, end
	return jwt, nil
}

// forget drops the cached JWT jwt (after the Hub refused it).
func (p *provider) forget(jwt string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.jwt == jwt {
		p.jwt = ""
	}
}

// jwtExpiry reads the exp claim of a JWT without checking its signature
// (only the cache's lifetime depends on it).
func jwtExpiry(jwt string) (time.Time, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}, false
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 || exp > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(exp), 0), true
}

type accessToken struct {
	UUID       string   `json:"uuid"`
	Token      string   `json:"token"`
	TokenLabel string   `json:"token_label"`
	Scopes     []string `json:"scopes"`
	ExpiresAt  string   `json:"expires_at"`
	IsActive   *bool    `json:"is_active"`
	CreatedAt  string   `json:"created_at"`
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("dockerhub: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	body := map[string]any{"token_label": req.Name, "scopes": req.Scopes}
	if !req.ExpiresAt.IsZero() {
		body["expires_at"] = req.ExpiresAt.UTC().Format(time.RFC3339)
	}
	var t accessToken
	if err := p.call(ctx, "create", http.MethodPost, "/v2/access-tokens", body, &t); err != nil {
		return clients.Key{}, err
	}
	if !idPattern.MatchString(t.UUID) {
		return clients.Key{}, fmt.Errorf("provider %q: create: Docker Hub's response has no usable token uuid; delete the token "+
			"labelled %q by hand if it exists", p.http.Provider(), req.Name)
	}
	if t.Token == "" {
		_ = p.RevokeKey(ctx, t.UUID)
		return clients.Key{}, fmt.Errorf("provider %q: create: Docker Hub's response has no token value", p.http.Provider())
	}
	key := clients.Key{ID: t.UUID, Name: req.Name, Secret: t.Token, Extra: map[string]string{"username": p.username}}
	if exp, err := time.Parse(time.RFC3339, t.ExpiresAt); err == nil && exp.Year() > 0 && exp.Year() < 10000 {
		key.ExpiresAt = exp.UTC()
	}
	return key, nil
}

// VerifyKey exchanges the new token for a JWT, as docker login does.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("dockerhub: verify: the key has no secret")
	}
	_, err := p.exchange(ctx, "verify", key.Secret)
	return err
}

// RevokeKey deletes the token; a 404 counts as deleted.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("dockerhub: revoke: %q is not a token uuid", id)
	}
	err := p.call(ctx, "revoke", http.MethodDelete, "/v2/access-tokens/"+id, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// FindKeys pages through the account's tokens for those labelled name.
func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the account's personal access tokens, every page, for
// tidy: Name is token_label, CreatedAt is created_at. A root that is itself
// a personal access token has no id (RootID), so only the marker in the
// names tidy looks for keeps it apart.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	var out []clients.Key
	for page := 1; page <= maxPages; page++ {
		var res struct {
			Next    *string       `json:"next"`
			Results []accessToken `json:"results"`
		}
		q := url.Values{"page": {strconv.Itoa(page)}, "page_size": {strconv.Itoa(pageSize)}}
		if err := p.call(ctx, "list", http.MethodGet, "/v2/access-tokens?"+q.Encode(), nil, &res); err != nil {
			return nil, err
		}
		for _, t := range res.Results {
			// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
			if idPattern.MatchString(t.UUID) {
				created, _ := time.Parse(time.RFC3339, t.CreatedAt)
				expires, _ := time.Parse(time.RFC3339, t.ExpiresAt)
				out = append(out, clients.Key{ID: t.UUID, Name: t.TokenLabel, CreatedAt: created, ExpiresAt: expires})
			}
		}
		if res.Next == nil || *res.Next == "" || len(res.Results) == 0 {
			break
		}
	}
	return out, nil
}

// RootID checks the password with a JWT exchange; the password has no id.
func (p *provider) RootID(ctx context.Context) (string, error) {
	_, err := p.token(ctx)
	return "", err
}

func (p *provider) expect(redact ...string) httpx.Expect {
	return httpx.Expect{Message: apiMessage, Redact: append([]string{p.password}, redact...)}
}

// call sends a request with the cached JWT. A 401 means the Hub no longer
// takes that JWT (revoked, or expired early): it is exchanged again and
// the request sent once more.
func (p *provider) call(ctx context.Context, op, method, path string, in, out any) error {
	for attempt := 0; ; attempt++ {
		jwt, err := p.token(ctx)
		if err != nil {
			return err
		}
		r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Authorization": {"Bearer " + jwt}}}
		_, err = p.http.JSON(ctx, r, in, out, p.expect(jwt))
		var he *httpx.Error
		if attempt == 0 && errors.As(err, &he) && he.Status == http.StatusUnauthorized {
			p.forget(jwt)
			continue
		}
		return err
	}
}

// apiMessage extracts Docker Hub's {"message": …} or {"detail": …} text,
// with any personal access token removed.
func apiMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
		Detail  string `json:"detail"`
	}
	out := ""
	if err := json.Unmarshal(body, &e); err != nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return ""
		}
		out = httpx.TextMessage(body)
	} else {
		out = e.Message
		if out == "" {
			out = e.Detail
		}
	}
	return patPattern.ReplaceAllString(out, "dckr_pat_[redacted]")
}
