// Package auth0 issues Auth0 machine-to-machine clients: each key is a new
// M2M application (client_id + client_secret) granted the role's scopes on
// a configured API audience, and revoking it deletes the application.
// Vault manages Auth0 with a Management API token obtained by client
// credentials as its own M2M client and cached until shortly before it
// expires. The root, that client's secret, is rotated with Auth0's
// rotate-secret, a roll-style API: the old secret dies at once and the new
// one exists only in the answer, so the backend stores it before anything
// else; verification tolerates Auth0's documented propagation delay.
package auth0

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/tokencache"
)

const (
	// TypeName is the provider type's name in the registry.
	TypeName = "auth0"

	fieldClientID           = "client_id"
	fieldClientSecret       = "client_secret"
	fieldManagementAudience = "management_audience"

	paramAudience    = "audience"
	paramDescription = "description"

	// tokenSlack: a cached Management API token is renewed this long
	// before it expires (they last 24 hours and cannot be revoked).
	tokenSlack = 5 * time.Minute
	perPage    = 100
	maxPages   = 1000
)

// propagationWaits are the waits between VerifyRoot's attempts: Auth0
// documents that a rotated secret can take about 30 seconds to work.
// Together with the requests they fit in one request_timeout; the rolled
// secret is stored before verification, so a secret still refused after
// them is not lost (status shows the error, the next use tries again).
var propagationWaits = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

var capabilities = clients.Capabilities{ListByName: true, RootRotation: true, NativeRoll: true}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "Auth0: issues M2M applications (client_id + client_secret) granted the role's scopes on an API; " +
			"rotates Vault's own M2M client secret with rotate-secret (a roll).",
		BaseURLRequired: true,
		Fields: []clients.Field{
			{Name: fieldClientID, Required: true, Description: "client_id of the M2M application Vault uses, authorized for the " +
				"Management API with read:clients, create:clients, delete:clients, create:client_grants and update:client_keys."},
			{Name: fieldClientSecret, Required: true, Sensitive: true, Description: "Its client secret; root rotation replaces it. Write-only."},
			{Name: fieldManagementAudience, Description: "Management API audience; default <base_url>/api/v2/ (set it when base_url is a custom domain)."},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	if !idPattern.MatchString(fields[fieldClientID]) {
		return &clients.FieldError{Field: fieldClientID, Message: fmt.Sprintf("must be an Auth0 client id (got %q)", fields[fieldClientID])}
	}
	if strings.TrimSpace(fields[fieldClientSecret]) == "" {
		return &clients.FieldError{Field: fieldClientSecret, Message: "is required"}
	}
	if v := fields[fieldManagementAudience]; v != "" {
		if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" {
			return &clients.FieldError{Field: fieldManagementAudience, Message: "must be an https URL such as https://tenant.auth0.com/api/v2/"}
		}
	}
	return nil
}

type provider struct {
	http     *httpx.Client
	base     string
	clientID string
	secret   string
	audience string
	now      func() time.Time
	waits    []time.Duration
	tokens   *tokencache.Cache
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	aud := cfg.Fields[fieldManagementAudience]
	if aud == "" {
		aud = cfg.BaseURL + "/api/v2/"
	}
	p := &provider{http: cfg.HTTP, base: cfg.BaseURL, clientID: cfg.Fields[fieldClientID],
		secret: strings.TrimSpace(cfg.Fields[fieldClientSecret]), audience: aud, now: time.Now, waits: propagationWaits}
	p.tokens = &tokencache.Cache{Slack: tokenSlack, Now: func() time.Time { return p.now() }}
	return p, nil
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// ---- the Management API token ----

func (p *provider) mgmtToken(ctx context.Context) (string, error) {
	return p.tokens.Get(ctx, "", func(ctx context.Context) (string, time.Time, error) {
		return p.clientToken(ctx, "token", p.clientID, p.secret, p.audience)
	})
}

// clientToken asks /oauth/token for a client-credentials token.
func (p *provider) clientToken(ctx context.Context, op, clientID, secret, audience string) (string, time.Time, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "audience": {audience}}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}}
	r := httpx.Request{Op: op, Method: http.MethodPost, URL: p.base + "/oauth/token", Header: h, Body: []byte(form.Encode()),
		Idempotent: true, Secrets: []string{secret}}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	now := p.now()
	if _, err := p.http.Call(ctx, r, &out, httpx.Expect{Message: apiMessage, Redact: p.rootSecrets()}); err != nil {
		return "", time.Time{}, err
	}
	if out.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("provider %q: %s: Auth0's token response has no access_token", p.http.Provider(), op)
	}
	exp := now.Add(time.Duration(out.ExpiresIn) * time.Second)
	if out.ExpiresIn <= 0 || out.ExpiresIn > 30*24*3600 {
		exp = now
	}
	return out.AccessToken, exp, nil
}

// ---- issued keys: M2M applications ----

type clientObject struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Name         string `json:"name"`
}

type keySpec struct {
	audience    string
	description string
	scopes      []string
}

func (p *provider) spec(req clients.KeyRequest) (keySpec, error) {
	s := keySpec{description: "Issued by Vault; deleted when its lease ends."}
	for _, k := range clients.ParameterNames(req) {
		v := strings.TrimSpace(req.Parameters[k])
		switch k {
		case paramAudience:
			if u, err := url.Parse(v); err != nil || v == "" || strings.ContainsAny(v, " \t\r\n") || (u.Scheme == "" && !strings.Contains(v, ":")) {
				return keySpec{}, &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("audience must be an API identifier such as https://api.example.com (got %q)", v)}
			}
			s.audience = v
		case paramDescription:
			if len(v) > 140 {
				return keySpec{}, &clients.FieldError{Field: "parameters", Message: "description must be at most 140 characters"}
			}
			s.description = v
		default:
			return keySpec{}, &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("unknown parameter %q for auth0 (allowed: audience, description)", k)}
		}
	}
	if s.audience == "" {
		return keySpec{}, &clients.FieldError{Field: "parameters", Message: "audience is required: the API (its identifier) the issued application is granted"}
	}
	for _, sc := range req.Scopes {
		sc = strings.TrimSpace(sc)
		if sc == "" || strings.ContainsAny(sc, " \t") {
			return keySpec{}, &clients.FieldError{Field: "scopes", Message: fmt.Sprintf("%q is not a scope such as read:orders", sc)}
		}
		s.scopes = append(s.scopes, sc)
	}
	if s.scopes == nil {
		s.scopes = []string{}
	}
	return s, nil
}

// ValidateKeyRequest applies spec's checks.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	_, err := p.spec(req)
	return err
}

// CreateKey creates an M2M application and grants it the role's scopes on
// the audience. If the grant fails the application is deleted again.
func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("auth0: a key name is required")
	}
	s, err := p.spec(req)
	if err != nil {
		return clients.Key{}, err
	}
	body := map[string]any{"name": req.Name, "description": s.description, "app_type": "non_interactive",
		"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "client_secret_post"}
	var c clientObject
	if err := p.api(ctx, "create", http.MethodPost, "/clients", body, &c); err != nil {
		return clients.Key{}, err
	}
	if !idPattern.MatchString(c.ClientID) || c.ClientID == p.clientID {
		return clients.Key{}, fmt.Errorf("provider %q: create: Auth0's response has no usable client_id; delete the "+
			"application named %q by hand if it exists", p.http.Provider(), req.Name)
	}
	if c.ClientSecret == "" {
		_ = p.RevokeKey(ctx, c.ClientID)
		return clients.Key{}, fmt.Errorf("provider %q: create: Auth0's response has no client_secret", p.http.Provider())
	}
	var g struct {
		ID string `json:"id"`
	}
	grant := map[string]any{"client_id": c.ClientID, "audience": s.audience, "scope": s.scopes}
	if err := p.api(ctx, "create", http.MethodPost, "/client-grants", grant, &g); err != nil {
		if rerr := p.RevokeKey(ctx, c.ClientID); rerr != nil {
			return clients.Key{}, fmt.Errorf("%w (and deleting the ungranted application %s failed: %v)", err, c.ClientID, rerr)
		}
		return clients.Key{}, err
	}
	return clients.Key{ID: c.ClientID, Name: req.Name, Secret: c.ClientSecret,
		Extra: map[string]string{"client_id": c.ClientID, "audience": s.audience, "grant_id": g.ID}}, nil
}

// VerifyKey gets a client-credentials token for the granted audience with
// the new application's credentials.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" || key.Extra["audience"] == "" {
		return errors.New("auth0: verify: the key has no secret or audience")
	}
	_, _, err := p.clientToken(ctx, "verify", key.ID, key.Secret, key.Extra["audience"])
	return err
}

// RevokeKey deletes the application (its grants go with it); gone already
// is not an error.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("auth0: revoke: %q is not a client id", id)
	}
	if id == p.clientID {
		return fmt.Errorf("provider %q: revoke: refusing to delete Vault's own application %s", p.http.Provider(), id)
	}
	err := p.api(ctx, "revoke", http.MethodDelete, "/clients/"+id, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// FindKeys pages through the tenant's applications for those named name.
func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the tenant's applications (each issued credential is one),
// every page, for tidy, less the root's own client. Auth0 gives no creation
// time for a client, so CreatedAt stays zero: tidy reports these clients
// and never deletes them.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	var out []clients.Key
	for page := 0; page < maxPages; page++ {
		q := url.Values{"fields": {"client_id,name"}, "include_fields": {"true"}, "page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(perPage)}}
		var list []clientObject
		if err := p.api(ctx, "list", http.MethodGet, "/clients?"+q.Encode(), nil, &list); err != nil {
			return nil, err
		}
		for _, c := range list {
			if idPattern.MatchString(c.ClientID) && c.ClientID != p.clientID {
				out = append(out, clients.Key{ID: c.ClientID, Name: c.Name})
			}
		}
		if len(list) < perPage {
			break
		}
	}
	return out, nil
}

// ---- root: Vault's own client secret (a roll) ----

// fingerprint names a client secret without revealing it: the root's id
// (a rotated secret keeps its client_id, so that cannot be the id).
func fingerprint(clientID, secret string) string {
	sum := sha256.Sum256([]byte(clientID + ":" + secret))
	return "secret-" + hex.EncodeToString(sum[:6])
}

// RootID gets a Management API token with the configured secret (so a
// wrong one is refused when the provider is written) and names the secret
// by its fingerprint.
func (p *provider) RootID(ctx context.Context) (string, error) {
	if _, err := p.mgmtToken(ctx); err != nil {
		return "", err
	}
	return fingerprint(p.clientID, p.secret), nil
}

// CreateRoot rolls Vault's own client secret (POST
// /clients/{id}/rotate-secret, sent once: a lost answer cannot be
// replayed). The old secret stops working at once.
func (p *provider) CreateRoot(ctx context.Context, _ string) (clients.Root, error) {
	var c clientObject
	if err := p.api(ctx, "create_root", http.MethodPost, "/clients/"+p.clientID+"/rotate-secret", nil, &c, noRetry); err != nil {
		return clients.Root{}, err
	}
	if c.ClientSecret == "" {
		return clients.Root{}, fmt.Errorf("provider %q: create_root: Auth0 rotated the secret of %s but its answer has no "+
			"client_secret; set a new one in the Auth0 dashboard and write it to the provider", p.http.Provider(), p.clientID)
	}
	return clients.Root{ID: fingerprint(p.clientID, c.ClientSecret), Fields: map[string]string{fieldClientSecret: c.ClientSecret}}, nil
}

// VerifyRoot gets a Management API token with the new secret, retrying
// while Auth0 propagates it (about 30 seconds, documented).
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	secret := root.Fields[fieldClientSecret]
	if secret == "" {
		return errors.New("auth0: verify_root: the new root has no client secret")
	}
	var err error
	for attempt := 0; ; attempt++ {
		if _, _, err = p.clientToken(ctx, "verify_root", p.clientID, secret, p.audience); err == nil {
			return nil
		}
		var he *httpx.Error
		if attempt >= len(p.waits) || !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
			return err
		}
		select {
		case <-time.After(p.waits[attempt]):
		case <-ctx.Done():
			return err
		}
	}
}

// RevokeRoot: the roll already killed the old secret.
func (p *provider) RevokeRoot(context.Context, string) error { return nil }

// ---- requests ----

type callOption int

const noRetry callOption = 1

// api calls the Management API with the cached token.
func (p *provider) api(ctx context.Context, op, method, path string, in, out any, opts ...callOption) error {
	tok, err := p.mgmtToken(ctx)
	if err != nil {
		return err
	}
	r := httpx.Request{Op: op, Method: method, URL: p.base + "/api/v2" + path, Header: http.Header{"Authorization": {"Bearer " + tok}}}
	for _, o := range opts {
		if o == noRetry {
			r.NoRetry = true
		}
	}
	_, err = p.http.JSON(ctx, r, in, out, httpx.Expect{Message: apiMessage, Redact: p.rootSecrets(), AllowEmpty: true})
	return err
}

func (p *provider) rootSecrets() []string {
	return append([]string{p.secret}, p.tokens.Values()...)
}

// apiMessage extracts Auth0's {"statusCode","error","message","errorCode"}
// text, or an OAuth {"error","error_description"}.
func apiMessage(body []byte) string {
	var e struct {
		Error            string `json:"error"`
		Message          string `json:"message"`
		ErrorCode        string `json:"errorCode"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return ""
		}
		return httpx.TextMessage(body)
	}
	out := e.Message
	if out == "" {
		out = e.ErrorDescription
	}
	if e.Error != "" {
		if out != "" {
			out = e.Error + ": " + out
		} else {
			out = e.Error
		}
	}
	if e.ErrorCode != "" {
		out += " (" + e.ErrorCode + ")"
	}
	return out
}
