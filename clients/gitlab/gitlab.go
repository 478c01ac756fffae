// Package gitlab issues GitLab access tokens: project or group access tokens,
// or (with an administrator's token) personal access tokens of a user. The
// configured root is a personal access token that Vault rotates with GitLab's
// self-rotate endpoint.
package gitlab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

// Field names.
const (
	fieldToken        = "token"
	fieldTargetType   = "target_type"
	fieldTargetID     = "target_id"
	fieldRootLifetime = "root_token_lifetime_days"
)

// Target types.
const (
	targetProject = "project"
	targetGroup   = "group"
	targetUser    = "user"
)

// Role parameters.
const (
	paramAccessLevel   = "access_level"
	paramDescription   = "description"
	paramExpiresInDays = "expires_in_days"
)

const (
	// defaultScope is used when a role names no scopes: GitLab requires at
	// least one, and read_api is the narrowest that still lets the token be
	// verified.
	defaultScope = "read_api"
	// defaultLifetimeDays applies when neither the request nor the role sets
	// an expiry: GitLab tokens must expire.
	defaultLifetimeDays = 30
	// fallbackRootLifetimeDays is the new root's lifetime when the current
	// root has no expiry date to copy.
	fallbackRootLifetimeDays = 30
	// maxListPages bounds FindKeys paging.
	maxListPages = 100
	dateLayout   = "2006-01-02"
)

var validAccessLevels = map[string]bool{"10": true, "15": true, "20": true, "30": true, "40": true, "50": true}

var capabilities = clients.Capabilities{Expiry: true, ListByName: true, RootRotation: true, NativeRoll: true}

func init() {
	clients.Register(&clients.Type{
		Name: "gitlab",
		Description: "GitLab (gitlab.com or self-managed): issues project, group or personal access tokens " +
			"and rotates its own personal access token.",
		BaseURLRequired: true,
		Fields: []clients.Field{
			{
				Name: fieldToken,
				Description: "Personal access token (glpat-…) Vault uses to manage tokens. It needs the api scope and " +
					"the Maintainer role on the project (project targets), the Owner role on the group (group targets), " +
					"or an administrator account (user targets). Root rotation replaces it.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name:    fieldTargetType,
				Account: true,
				Description: "What the issued tokens belong to: 'project' (project access tokens), 'group' (group access " +
					"tokens) or 'user' (personal access tokens of that user; needs an administrator's token).",
				Required: true,
			},
			{
				Name:        fieldTargetID,
				Account:     true,
				Description: "Numeric id of the project, group or user named by target_type.",
				Required:    true,
			},
			{
				Name: fieldRootLifetime,
				Description: "Lifetime in days of the token that root rotation creates (its expires_at becomes today plus " +
					"this). Empty: the replaced token's lifetime (its expires_at minus its creation date), or 30 days " +
					"when it has no expiry.",
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	switch fields[fieldTargetType] {
	case targetProject, targetGroup, targetUser:
	default:
		return &clients.FieldError{Field: fieldTargetType,
			Message: fmt.Sprintf("must be one of project, group, user (got %q)", fields[fieldTargetType])}
	}
	if _, err := positiveInt(fields[fieldTargetID]); err != nil {
		return &clients.FieldError{Field: fieldTargetID, Message: "must be a positive integer id: " + err.Error()}
	}
	if v := fields[fieldRootLifetime]; v != "" {
		if _, err := positiveInt(v); err != nil {
			return &clients.FieldError{Field: fieldRootLifetime, Message: "must be a positive number of days: " + err.Error()}
		}
	}
	if strings.TrimSpace(fields[fieldToken]) == "" {
		return &clients.FieldError{Field: fieldToken, Message: "is required"}
	}
	return nil
}

func positiveInt(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%d is not positive", n)
	}
	return n, nil
}

type provider struct {
	http         *httpx.Client
	api          string
	token        string
	targetType   string
	targetID     string
	rootLifetime int // days; 0 = copy the current root's lifetime
	now          func() time.Time
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	if cfg.BaseURL == "" {
		return nil, &clients.FieldError{Field: "base_url", Message: "is required for gitlab (the GitLab host, e.g. https://gitlab.com)"}
	}
	api := cfg.BaseURL
	// Accept a base_url that already names the API root.
	if !strings.HasSuffix(api, "/api/v4") {
		api += "/api/v4"
	}
	id, _ := positiveInt(cfg.Fields[fieldTargetID])
	p := &provider{
		http:       cfg.HTTP,
		api:        api,
		token:      strings.TrimSpace(cfg.Fields[fieldToken]),
		targetType: cfg.Fields[fieldTargetType],
		targetID:   strconv.FormatInt(id, 10),
		now:        time.Now,
	}
	if v := cfg.Fields[fieldRootLifetime]; v != "" {
		n, _ := positiveInt(v)
		p.rootLifetime = int(n)
	}
	return p, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// tokenInfo is the access-token object GitLab returns for every token kind.
type tokenInfo struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	Token       string   `json:"token"`
	Scopes      []string `json:"scopes"`
	Active      *bool    `json:"active"`
	Revoked     bool     `json:"revoked"`
	ExpiresAt   string   `json:"expires_at"`
	CreatedAt   string   `json:"created_at"`
	AccessLevel int      `json:"access_level"`
}

func (t tokenInfo) live() bool { return !t.Revoked && (t.Active == nil || *t.Active) }

// keysPath is where the target's tokens are created and listed.
func (p *provider) keysPath() string {
	switch p.targetType {
	case targetProject:
		return "/projects/" + p.targetID + "/access_tokens"
	case targetGroup:
		return "/groups/" + p.targetID + "/access_tokens"
	default:
		return "/users/" + p.targetID + "/personal_access_tokens"
	}
}

// createBody maps a key request onto GitLab's create attributes.
func (p *provider) createBody(req clients.KeyRequest) (map[string]any, time.Time, error) {
	body := map[string]any{"name": req.Name}
	scopes := make([]string, 0, len(req.Scopes))
	for _, s := range req.Scopes {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, time.Time{}, &clients.FieldError{Field: "scopes", Message: "contains an empty scope"}
		}
		scopes = append(scopes, s)
	}
	if len(scopes) == 0 {
		scopes = []string{defaultScope}
	}
	body["scopes"] = scopes

	lifetime := defaultLifetimeDays
	names := make([]string, 0, len(req.Parameters))
	for k := range req.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := strings.TrimSpace(req.Parameters[k])
		switch k {
		case paramAccessLevel:
			if p.targetType == targetUser {
				return nil, time.Time{}, &clients.FieldError{Field: "parameters",
					Message: "access_level applies only to project and group targets"}
			}
			if !validAccessLevels[v] {
				return nil, time.Time{}, &clients.FieldError{Field: "parameters",
					Message: fmt.Sprintf("access_level must be one of 10, 15, 20, 30, 40, 50 (got %q)", v)}
			}
			n, _ := strconv.Atoi(v)
			body["access_level"] = n
		case paramDescription:
			body["description"] = req.Parameters[k]
		case paramExpiresInDays:
			n, err := positiveInt(v)
			if err != nil {
				return nil, time.Time{}, &clients.FieldError{Field: "parameters",
					Message: "expires_in_days must be a positive number of days: " + err.Error()}
			}
			lifetime = int(n)
		default:
			return nil, time.Time{}, &clients.FieldError{Field: "parameters",
				Message: fmt.Sprintf("unknown parameter %q for gitlab (allowed: access_level, description, expires_in_days)", k)}
		}
	}
	date, expires := expiryDate(req.ExpiresAt, p.now(), lifetime)
	body["expires_at"] = date
	return body, expires, nil
}

// expiryDate turns a wanted expiry into GitLab's expires_at date. GitLab
// tokens stop working at 00:00 UTC on that date, so the wanted instant is
// rounded up to the next midnight UTC; a zero instant means today plus
// defaultDays. The date is never earlier than tomorrow (GitLab rejects
// past dates). It returns the date and the instant the token expires.
func expiryDate(want, now time.Time, defaultDays int) (string, time.Time) {
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var d time.Time
	if want.IsZero() {
		d = today.AddDate(0, 0, defaultDays)
	} else {
		w := want.UTC()
		d = time.Date(w.Year(), w.Month(), w.Day(), 0, 0, 0, 0, time.UTC)
		if d.Before(w) {
			d = d.AddDate(0, 0, 1)
		}
	}
	if !d.After(today) {
		d = today.AddDate(0, 0, 1)
	}
	return d.Format(dateLayout), d
}

func parseDate(s string) time.Time {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// ValidateKeyRequest applies createBody's checks.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	_, _, err := p.createBody(req)
	return err
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("gitlab: a key name is required")
	}
	body, expires, err := p.createBody(req)
	if err != nil {
		return clients.Key{}, err
	}
	var t tokenInfo
	if err := p.call(ctx, "create", http.MethodPost, p.keysPath(), p.token, body, &t, http.StatusCreated, http.StatusOK); err != nil {
		return clients.Key{}, err
	}
	if t.ID <= 0 || t.Token == "" {
		// RevokeKey takes positive ids only.
		return clients.Key{}, fmt.Errorf("provider %q: create: GitLab's response has no token id or value", p.http.Provider())
	}
	if d := parseDate(t.ExpiresAt); !d.IsZero() {
		expires = d
	}
	extra := map[string]string{
		"target_type": p.targetType,
		"target_id":   p.targetID,
		"scopes":      strings.Join(t.Scopes, ","),
	}
	if t.AccessLevel != 0 {
		extra["access_level"] = strconv.Itoa(t.AccessLevel)
	}
	name := t.Name
	if name == "" {
		name = req.Name
	}
	return clients.Key{ID: strconv.FormatInt(t.ID, 10), Name: name, Secret: t.Token, ExpiresAt: expires, Extra: extra}, nil
}

// VerifyKey asks GitLab about the key itself. A 403 insufficient_scope
// still proves the token authenticated (a bad token is a 401), so keys with
// narrow scopes such as read_repository verify too.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("gitlab: verify: the key has no secret")
	}
	t, err := p.self(ctx, "verify", key.Secret, true)
	if err != nil {
		return err
	}
	if t == nil {
		return nil // authenticated; scope too narrow to read itself
	}
	if !t.live() {
		return fmt.Errorf("provider %q: verify: GitLab reports the key as revoked or inactive", p.http.Provider())
	}
	if key.ID != "" && strconv.FormatInt(t.ID, 10) != key.ID {
		return fmt.Errorf("provider %q: verify: the key authenticates as token %d, not %s", p.http.Provider(), t.ID, key.ID)
	}
	return nil
}

// self reads GET /personal_access_tokens/self as secret. With scopeOK, a
// 403 insufficient_scope returns (nil, nil).
func (p *provider) self(ctx context.Context, op, secret string, scopeOK bool) (*tokenInfo, error) {
	ok := []int{http.StatusOK}
	if scopeOK {
		ok = append(ok, http.StatusForbidden)
	}
	var t tokenInfo
	r := p.request(op, http.MethodGet, "/personal_access_tokens/self", secret)
	resp, err := p.http.JSON(ctx, r, nil, &t, p.expect(secret, ok...))
	if err != nil {
		return nil, err
	}
	if resp.Status == http.StatusForbidden {
		if insufficientScope(resp.Body) {
			return nil, nil
		}
		return nil, p.http.StatusError(r, resp, apiMessage(resp.Body), p.token, secret)
	}
	if t.ID == 0 {
		return nil, fmt.Errorf("provider %q: %s: unexpected response from GitLab", p.http.Provider(), op)
	}
	return &t, nil
}

func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if _, err := positiveInt(id); err != nil {
		return fmt.Errorf("gitlab: revoke: key id %q is not a GitLab token id", id)
	}
	path := "/personal_access_tokens/" + id
	if p.targetType != targetUser {
		path = p.keysPath() + "/" + id
	}
	err := p.call(ctx, "revoke", http.MethodDelete, path, p.token, nil, nil, http.StatusNoContent, http.StatusOK)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// FindKeys lists the target's live tokens named name.
func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	keys, err := p.list(ctx, name)
	if err != nil {
		return nil, err
	}
	return keylist.Named(keys, name), nil
}

// ListKeys lists the target's active tokens, every page, for tidy:
// CreatedAt is created_at. A root token of the same target is listed under
// the id RootID stores, which tidy never revokes.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	return p.list(ctx, "")
}

// list pages through the target's active tokens; search narrows them by
// name on the server.
func (p *provider) list(ctx context.Context, search string) ([]clients.Key, error) {
	q := url.Values{}
	q.Set("per_page", "100")
	q.Set("state", "active")
	if search != "" {
		q.Set("search", search)
	}
	path := p.keysPath()
	if p.targetType == targetUser {
		path = "/personal_access_tokens"
		q.Set("user_id", p.targetID)
	}
	var out []clients.Key
	page := "1"
	for i := 0; i < maxListPages && page != ""; i++ {
		q.Set("page", page)
		var list []tokenInfo
		resp, err := p.http.JSON(ctx, p.request("list", http.MethodGet, path+"?"+q.Encode(), p.token), nil, &list,
			p.expect(p.token, http.StatusOK))
		if err != nil {
			return nil, err
		}
		for _, t := range list {
			// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
			if t.live() && t.ID > 0 {
				created, _ := time.Parse(time.RFC3339, t.CreatedAt)
				out = append(out, clients.Key{ID: strconv.FormatInt(t.ID, 10), Name: t.Name, CreatedAt: created, ExpiresAt: parseDate(t.ExpiresAt)})
			}
		}
		page = strings.TrimSpace(resp.Header.Get("X-Next-Page"))
	}
	return out, nil
}

func (p *provider) RootID(ctx context.Context) (string, error) {
	r, err := p.InspectRoot(ctx)
	return r.ID, err
}

// InspectRoot reads the configured token's id and expiry (GitLab tokens
// stop working at 00:00 UTC on their expires_at date).
func (p *provider) InspectRoot(ctx context.Context) (clients.Root, error) {
	t, err := p.self(ctx, "verify_root", p.token, false)
	if err != nil {
		return clients.Root{}, err
	}
	return clients.Root{ID: strconv.FormatInt(t.ID, 10), ExpiresAt: parseDate(t.ExpiresAt)}, nil
}

// CreateRoot rolls the configured token with POST
// /personal_access_tokens/self/rotate: GitLab revokes the old token at once
// and returns the new one only in this response (NativeRoll). name is not
// used: the rotated token keeps its name and scopes.
func (p *provider) CreateRoot(ctx context.Context, _ string) (clients.Root, error) {
	days := p.rootLifetime
	if days == 0 {
		cur, err := p.self(ctx, "create_root", p.token, false)
		if err != nil {
			return clients.Root{}, err
		}
		days = lifetimeDays(*cur)
	}
	date, _ := expiryDate(time.Time{}, p.now(), days)
	var t tokenInfo
	err := p.call(ctx, "create_root", http.MethodPost, "/personal_access_tokens/self/rotate", p.token,
		map[string]any{"expires_at": date}, &t, http.StatusOK, http.StatusCreated)
	if err != nil {
		return clients.Root{}, err
	}
	if t.ID <= 0 || t.Token == "" {
		// The old token may already be revoked; say so plainly.
		return clients.Root{}, fmt.Errorf("provider %q: create_root: GitLab answered the rotation without a new token; "+
			"the old token may be revoked: create a new personal access token and write it to the provider's token field",
			p.http.Provider())
	}
	return clients.Root{ID: strconv.FormatInt(t.ID, 10), Fields: map[string]string{fieldToken: t.Token}, ExpiresAt: parseDate(t.ExpiresAt)}, nil
}

// lifetimeDays is the token's lifetime (expires_at minus its creation day),
// at least one day.
func lifetimeDays(t tokenInfo) int {
	exp := parseDate(t.ExpiresAt)
	created, err := time.Parse(time.RFC3339, t.CreatedAt)
	if exp.IsZero() || err != nil {
		return fallbackRootLifetimeDays
	}
	c := created.UTC()
	day := time.Date(c.Year(), c.Month(), c.Day(), 0, 0, 0, 0, time.UTC)
	n := int(exp.Sub(day).Hours() / 24)
	if n < 1 {
		n = 1
	}
	return n
}

func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	secret := root.Fields[fieldToken]
	if secret == "" {
		return errors.New("gitlab: verify_root: the new root has no token")
	}
	t, err := p.self(ctx, "verify_root", secret, false)
	if err != nil {
		return err
	}
	if !t.live() {
		return fmt.Errorf("provider %q: verify_root: GitLab reports the new token as revoked or inactive", p.http.Provider())
	}
	if root.ID != "" && strconv.FormatInt(t.ID, 10) != root.ID {
		return fmt.Errorf("provider %q: verify_root: the new token authenticates as token %d, not %s", p.http.Provider(), t.ID, root.ID)
	}
	return nil
}

// RevokeRoot does nothing: the self-rotate in CreateRoot already revoked the
// old token.
func (p *provider) RevokeRoot(context.Context, string) error { return nil }

func (p *provider) request(op, method, path, secret string) httpx.Request {
	h := http.Header{}
	h.Set("PRIVATE-TOKEN", secret)
	return httpx.Request{Op: op, Method: method, URL: p.api + path, Header: h}
}

// expect accepts the ok statuses and reads GitLab's errors, keeping the
// root token and secret out of them.
func (p *provider) expect(secret string, ok ...int) httpx.Expect {
	return httpx.Expect{OK: ok, Message: apiMessage, Redact: []string{p.token, secret}}
}

// call sends a JSON request and decodes a response with one of the ok
// statuses into out (when not nil).
func (p *provider) call(ctx context.Context, op, method, path, secret string, in, out any, ok ...int) error {
	r := p.request(op, method, path, secret)
	// A roll revokes the old token at once: repeating it after a lost answer
	// would use a dead token and make GitLab revoke the whole token family.
	r.NoRetry = op == "create_root"
	_, err := p.http.JSON(ctx, r, in, out, p.expect(secret, ok...))
	return err
}

// apiMessage extracts GitLab's error text: {"message": string or object},
// {"error": …, "error_description": …}, or a short plain-text body.
func apiMessage(body []byte) string {
	var e struct {
		Message     json.RawMessage `json:"message"`
		Error       string          `json:"error"`
		Description string          `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return httpx.TextMessage(body)
	}
	var parts []string
	if len(e.Message) > 0 {
		var s string
		if json.Unmarshal(e.Message, &s) == nil {
			parts = append(parts, s)
		} else {
			parts = append(parts, flatten(e.Message))
		}
	}
	if e.Error != "" {
		parts = append(parts, e.Error)
	}
	if e.Description != "" {
		parts = append(parts, e.Description)
	}
	return strings.Join(parts, ": ")
}

// flatten renders a validation-error object such as
// {"name":["has already been taken"]} as "name has already been taken".
func flatten(raw json.RawMessage) string {
	var m map[string][]string
	if json.Unmarshal(raw, &m) != nil {
		return string(raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, k+" "+strings.Join(m[k], ", "))
	}
	return strings.Join(out, "; ")
}

func insufficientScope(body []byte) bool {
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(body, &e) == nil && e.Error == "insufficient_scope"
}
