// Package npm issues npm granular access tokens (POST /-/npm/v1/tokens)
// limited to packages, package scopes and organizations, with an expiry in
// days. npm asks for the account's password on every token create, and for
// a one-time password (header npm-otp) when the account has two-factor
// authentication: Vault computes it from otp_secret when given, and
// otherwise says what the operator must do. The root is not rotated.
package npm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/npm/internal/totp"
)

// Field names.
const (
	fieldToken     = "token"
	fieldPassword  = "password"
	fieldOTPSecret = "otp_secret"
)

// Key parameters.
const (
	paramPackages      = "packages"
	paramOrgs          = "orgs"
	paramPackagesPerm  = "packages_and_scopes_permission"
	paramOrgsPerm      = "orgs_permission"
	paramCIDR          = "cidr"
	paramExpiresDays   = "expires_days"
	maxExpiresDays     = 365
	defaultPermission  = "read-only"
	defaultRegistryURL = "https://registry.npmjs.org"
)

var permissions = []string{"no-access", "read-only", "read-write"}

var capabilities = clients.Capabilities{Expiry: true}

// keyPattern admits npm token keys (hex ids) and keeps them from changing
// the path.
var keyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// scopePattern is an npm package scope; packagePattern a package name.
var (
	scopePattern   = regexp.MustCompile(`^@[a-z0-9][a-z0-9._-]*$`)
	packagePattern = regexp.MustCompile(`^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*$`)
	orgPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	tokenPattern   = regexp.MustCompile(`npm_[A-Za-z0-9]+`)
)

func init() {
	clients.Register(&clients.Type{
		Name: "npm",
		Description: "npm: issues granular access tokens limited to packages, scopes and organizations, expiring in days; " +
			"needs the account's password (and a one-time password with two-factor authentication).",
		DefaultBaseURL: defaultRegistryURL,
		Fields: []clients.Field{
			{
				Name:        fieldToken,
				Description: "npm token of the account (Authorization: Bearer) that may manage its tokens, such as the session token of npm login.",
				Required:    true,
				Sensitive:   true,
			},
			{
				Name:        fieldPassword,
				Description: "The account's password: npm asks for it in the body of every token create.",
				Required:    true,
				Sensitive:   true,
			},
			{
				Name: fieldOTPSecret,
				Description: "Base32 TOTP secret of the account's two-factor authentication (the value behind its QR code). " +
					"When set, Vault sends the current one-time password in npm-otp on token creates and deletes; without " +
					"it an account with two-factor authentication cannot have tokens created by Vault.",
				Sensitive: true,
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
	if fields[fieldPassword] == "" {
		return &clients.FieldError{Field: fieldPassword, Message: "is required: npm asks for the password on every token create"}
	}
	if v := fields[fieldOTPSecret]; v != "" {
		if _, err := totp.Key(v); err != nil {
			return &clients.FieldError{Field: fieldOTPSecret, Message: err.Error()}
		}
	}
	return nil
}

type provider struct {
	clients.Unsupported
	http     *httpx.Client
	base     string
	token    string
	password string
	otpKey   []byte
	otpRaw   string
	now      func() time.Time
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	base := cfg.BaseURL
	if base == "" {
		base = defaultRegistryURL
	}
	p := &provider{http: cfg.HTTP, base: base, token: strings.TrimSpace(cfg.Fields[fieldToken]), password: cfg.Fields[fieldPassword],
		otpRaw: cfg.Fields[fieldOTPSecret], now: time.Now}
	if p.otpRaw != "" {
		key, err := totp.Key(p.otpRaw)
		if err != nil {
			return nil, &clients.FieldError{Field: fieldOTPSecret, Message: err.Error()}
		}
		p.otpKey = key
	}
	return p, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// list splits a comma-separated parameter.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ValidateKeyRequest: scopes are npm package scopes (@org); parameters
// packages, orgs (comma-separated), their permissions, cidr and
// expires_days.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	for _, s := range req.Scopes {
		if !scopePattern.MatchString(s) {
			return &clients.FieldError{Field: "scopes", Message: fmt.Sprintf("%q is not an npm package scope: npm scopes are the "+
				"package scopes (such as @myorg) the token may reach; put package names in parameters packages", s)}
		}
	}
	bad := func(format string, a ...any) error {
		return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf(format, a...)}
	}
	for k, v := range req.Parameters {
		switch k {
		case paramPackages:
			for _, n := range list(v) {
				if !packagePattern.MatchString(n) {
					return bad("packages: %q is not an npm package name", n)
				}
			}
		case paramOrgs:
			for _, n := range list(v) {
				if !orgPattern.MatchString(n) {
					return bad("orgs: %q is not an npm organization name", n)
				}
			}
		case paramPackagesPerm, paramOrgsPerm:
			if !slices.Contains(permissions, v) {
				return bad("%s must be one of %s (got %q)", k, strings.Join(permissions, ", "), v)
			}
		case paramCIDR:
			for _, c := range list(v) {
				if _, _, err := net.ParseCIDR(c); err != nil {
					return bad("cidr: %q is not a CIDR range such as 192.0.2.0/24", c)
				}
			}
		case paramExpiresDays:
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > maxExpiresDays {
				return bad("expires_days must be a number of days from 1 to %d (got %q)", maxExpiresDays, v)
			}
		default:
			return bad("unknown parameter %q: npm tokens take packages, orgs, %s, %s, cidr and expires_days", k, paramPackagesPerm, paramOrgsPerm)
		}
	}
	return nil
}

type created struct {
	Key     string `json:"key"`
	Token   string `json:"token"`
	Name    string `json:"name"`
	Expires string `json:"expires"`
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("npm: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	body := map[string]any{"name": req.Name, "password": p.password}
	pkgs := list(req.Parameters[paramPackages])
	if len(pkgs) > 0 {
		body["packages"] = pkgs
	}
	if len(req.Scopes) > 0 {
		body["scopes"] = req.Scopes
	}
	if len(pkgs) > 0 || len(req.Scopes) > 0 {
		body[paramPackagesPerm] = permissionOr(req.Parameters[paramPackagesPerm])
	}
	if orgs := list(req.Parameters[paramOrgs]); len(orgs) > 0 {
		body["orgs"] = orgs
		body[paramOrgsPerm] = permissionOr(req.Parameters[paramOrgsPerm])
	}
	if cidr := list(req.Parameters[paramCIDR]); len(cidr) > 0 {
		body["cidr"] = cidr
	}
	switch {
	case !req.ExpiresAt.IsZero():
		// npm counts expiry in whole days: the token outlives the lease by
		// less than a day.
		left := req.ExpiresAt.Sub(p.now())
		if left <= 0 {
			return clients.Key{}, errors.New("npm: the key's expiry is already past")
		}
		body["expires"] = min(int((left+24*time.Hour-1)/(24*time.Hour)), maxExpiresDays)
	case req.Parameters[paramExpiresDays] != "":
		n, _ := strconv.Atoi(req.Parameters[paramExpiresDays]) // validated above
		body["expires"] = n
	}
	var c created
	if err := p.manage(ctx, "create", http.MethodPost, "/-/npm/v1/tokens", body, &c); err != nil {
		return clients.Key{}, err
	}
	if !keyPattern.MatchString(c.Key) {
		return clients.Key{}, fmt.Errorf("provider %q: create: npm's response has no usable token key; revoke the token named %q "+
			"by hand if it exists", p.http.Provider(), req.Name)
	}
	if c.Token == "" {
		_ = p.RevokeKey(ctx, c.Key)
		return clients.Key{}, fmt.Errorf("provider %q: create: npm's response has no token value", p.http.Provider())
	}
	key := clients.Key{ID: c.Key, Name: req.Name, Secret: c.Token}
	if t, err := time.Parse(time.RFC3339, c.Expires); err == nil && t.Year() > 0 && t.Year() < 10000 {
		key.ExpiresAt = t.UTC()
	}
	return key, nil
}

func permissionOr(v string) string {
	if v == "" {
		return defaultPermission
	}
	return v
}

// VerifyKey asks the registry who the new token is.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("npm: verify: the key has no secret")
	}
	return p.whoami(ctx, "verify", key.Secret)
}

func (p *provider) whoami(ctx context.Context, op, secret string) error {
	var who struct {
		Username string `json:"username"`
	}
	r := httpx.Request{Op: op, Method: http.MethodGet, URL: p.base + "/-/whoami", Header: http.Header{"Authorization": {"Bearer " + secret}}}
	if _, err := p.http.JSON(ctx, r, nil, &who, p.expect(secret)); err != nil {
		return err
	}
	if who.Username == "" {
		return fmt.Errorf("provider %q: %s: npm's whoami names no user", p.http.Provider(), op)
	}
	return nil
}

// RevokeKey deletes the token by key; a 404 counts as deleted.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if !keyPattern.MatchString(id) {
		return fmt.Errorf("npm: revoke: %q is not a token key", id)
	}
	err := p.manage(ctx, "revoke", http.MethodDelete, "/-/npm/v1/tokens/token/"+id, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// RootID checks the configured token with whoami; it has no id Vault uses.
func (p *provider) RootID(ctx context.Context) (string, error) {
	return "", p.whoami(ctx, "check_root", p.token)
}

func (p *provider) expect(redact ...string) httpx.Expect {
	return httpx.Expect{Message: apiMessage, Redact: append([]string{p.token, p.password, p.otpRaw}, redact...), AllowEmpty: true}
}

// manage sends a token-management request with the root token and, when
// otp_secret is set, the current one-time password. npm's 401 asking for
// a one-time password becomes an error that says what to do.
func (p *provider) manage(ctx context.Context, op, method, path string, in, out any) error {
	h := http.Header{"Authorization": {"Bearer " + p.token}}
	if p.otpKey != nil {
		h.Set("npm-otp", totp.Code(p.otpKey, p.now()))
	}
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: h}
	ex := p.expect()
	ex.OK = []int{http.StatusOK, http.StatusCreated, http.StatusNoContent, http.StatusUnauthorized}
	resp, err := p.http.JSON(ctx, r, in, out, ex)
	if err != nil {
		return err
	}
	if resp.Status != http.StatusUnauthorized {
		return nil
	}
	msg := apiMessage(resp.Body)
	if strings.Contains(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "otp") {
		if p.otpKey == nil {
			msg = "npm asks for a one-time password (the account has two-factor authentication): set otp_secret on the " +
				"provider to the account's TOTP secret, or use an account without two-factor authentication for token " +
				"management; npm said: " + msg
		} else {
			msg = "npm refused the one-time password computed from otp_secret (wrong secret, or this host's clock is off " +
				"by more than 30 seconds); npm said: " + msg
		}
	}
	return p.http.StatusError(r, resp, msg, p.expect().Redact...)
}

// apiMessage extracts npm's {"error": …} or {"message": …} text, with any
// token removed.
func apiMessage(body []byte) string {
	var e struct {
		Error   any    `json:"error"`
		Message string `json:"message"`
	}
	out := ""
	if err := json.Unmarshal(body, &e); err != nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return ""
		}
		out = httpx.TextMessage(body)
	} else if s, ok := e.Error.(string); ok && s != "" {
		out = s
	} else {
		out = e.Message
	}
	return tokenPattern.ReplaceAllString(out, "npm_[redacted]")
}
