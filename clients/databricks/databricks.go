// Package databricks issues Databricks credentials of two kinds, chosen by
// the role's kind parameter: workspace personal access tokens (kind=pat,
// the default; lifetime_seconds gives them a provider-side expiry) and
// service-principal OAuth secrets (kind=oauth_secret; at most five per
// service principal), made at the workspace or, with account_id, at the
// account. The root is a PAT that mints its successor, or a service
// principal's OAuth secret that rotates itself (create, switch, delete).
package databricks

import (
	"context"
	"encoding/base64"
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
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/tokencache"
)

const (
	// TypeName is the provider type's name in the registry.
	TypeName = "databricks"

	fieldToken          = "token"
	fieldTokenID        = "token_id"
	fieldClientID       = "client_id"
	fieldClientSecret   = "client_secret"
	fieldClientSecretID = "client_secret_id"
	fieldRootSPID       = "root_service_principal_id"
	fieldAccountID      = "account_id"
	fieldAccountURL     = "account_url"
	fieldRootLifetime   = "root_lifetime_seconds"

	paramKind         = "kind"
	paramSPID         = "service_principal_id"
	paramAppID        = "application_id"
	paramLifetime     = "lifetime_seconds"
	paramComment      = "comment"
	kindPAT           = "pat"
	kindOAuthSecret   = "oauth_secret"
	defaultAccountURL = "https://accounts.cloud.databricks.com"

	// maxSPSecrets is Databricks' quota of OAuth secrets per service
	// principal.
	maxSPSecrets = 5
	// defaultRootLifetime is the life of a root PAT or secret that root
	// rotation makes (90 days).
	defaultRootLifetime = 90 * 24 * 3600
	tokenSlack          = 2 * time.Minute
	maxPages            = 100
)

var typeCapabilities = clients.Capabilities{Expiry: true, RootRotation: true}

var (
	idPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	numPattern = regexp.MustCompile(`^[0-9]{1,20}$`)
	// secretPattern finds Databricks token-like strings (dapi…, dose…) in
	// error text.
	secretPattern = regexp.MustCompile(`\b(dapi|dose|dkea)[A-Za-z0-9_-]{4,}`)
)

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "Databricks: issues workspace personal access tokens (with an expiry) or service-principal OAuth " +
			"secrets (five per service principal); rotates a root PAT or a service principal's own OAuth secret.",
		BaseURLRequired: true,
		Fields: []clients.Field{
			{Name: fieldToken, Sensitive: true, Description: "Personal access token (dapi…) of a workspace admin. Give either " +
				"this or client_id + client_secret."},
			{Name: fieldTokenID, Description: "token_id of that PAT, needed to revoke it after root rotation (kept up to date)."},
			{Name: fieldClientID, Description: "Application id of a service principal whose OAuth secret is the root (OAuth M2M)."},
			{Name: fieldClientSecret, Sensitive: true, Description: "That service principal's OAuth secret. Write-only."},
			{Name: fieldClientSecretID, Description: "Id of client_secret, needed to delete it after root rotation (kept up to date)."},
			{Name: fieldRootSPID, Description: "Numeric id of the root service principal, for rotating its own secret."},
			{Name: fieldAccountID, Account: true, Description: "Databricks account id: service-principal secrets are then managed at the " +
				"account (needs the client_id form); empty: at the workspace (base_url)."},
			{Name: fieldAccountURL, URL: true, Destination: true, Default: defaultAccountURL,
				Description: "Account console API host (AWS default; Azure https://accounts.azuredatabricks.net, GCP https://accounts.gcp.databricks.com)."},
			{Name: fieldRootLifetime, Default: strconv.Itoa(defaultRootLifetime),
				Description: "Lifetime in seconds of the root PAT or secret that root rotation makes."},
		},
		Capabilities: typeCapabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	pat := strings.TrimSpace(fields[fieldToken]) != ""
	sp := fields[fieldClientID] != "" || fields[fieldClientSecret] != ""
	switch {
	case pat && sp:
		return &clients.FieldError{Field: fieldToken, Message: "give either token or client_id + client_secret, not both"}
	case !pat && !sp:
		return &clients.FieldError{Field: fieldToken, Message: "is required, unless client_id and client_secret are given"}
	case sp && (fields[fieldClientID] == "" || fields[fieldClientSecret] == ""):
		if fields[fieldClientID] == "" {
			return &clients.FieldError{Field: fieldClientID, Message: "is required with client_secret"}
		}
		return &clients.FieldError{Field: fieldClientSecret, Message: "is required with client_id"}
	case pat && fields[fieldAccountID] != "":
		return &clients.FieldError{Field: fieldAccountID, Message: "account-level secrets need the client_id + client_secret form (a PAT works only on its workspace)"}
	}
	for _, f := range []string{fieldTokenID, fieldClientID, fieldClientSecretID, fieldAccountID} {
		if v := fields[f]; v != "" && !idPattern.MatchString(v) {
			return &clients.FieldError{Field: f, Message: fmt.Sprintf("must be a Databricks id (got %q)", v)}
		}
	}
	if v := fields[fieldRootSPID]; v != "" && !numPattern.MatchString(v) {
		return &clients.FieldError{Field: fieldRootSPID, Message: fmt.Sprintf("must be the numeric id of a service principal (got %q)", v)}
	}
	if v := fields[fieldRootLifetime]; v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 3600 || n > 2*365*24*3600 {
			return &clients.FieldError{Field: fieldRootLifetime, Message: "must be a number of seconds between 3600 and 63072000 (two years)"}
		}
	}
	return nil
}

type provider struct {
	http         *httpx.Client
	base         string
	accountURL   string
	accountID    string
	token        string
	tokenID      string
	clientID     string
	clientSecret string
	secretID     string
	rootSPID     string
	rootLifetime int64
	now          func() time.Time
	tokens       *tokencache.Cache // by token endpoint
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	f := cfg.Fields
	life, _ := strconv.ParseInt(f[fieldRootLifetime], 10, 64)
	if life == 0 {
		life = defaultRootLifetime
	}
	acct := strings.TrimRight(f[fieldAccountURL], "/")
	if acct == "" {
		acct = defaultAccountURL
	}
	p := &provider{http: cfg.HTTP, base: cfg.BaseURL, accountURL: acct, accountID: f[fieldAccountID],
		token: strings.TrimSpace(f[fieldToken]), tokenID: f[fieldTokenID], clientID: f[fieldClientID],
		clientSecret: f[fieldClientSecret], secretID: f[fieldClientSecretID], rootSPID: f[fieldRootSPID],
		rootLifetime: life, now: time.Now}
	p.tokens = &tokencache.Cache{Slack: tokenSlack, Now: func() time.Time { return p.now() }}
	return p, nil
}

func (p *provider) Capabilities() clients.Capabilities { return typeCapabilities }

// ---- key ids: the kind travels in the id, so RevokeKey knows the API ----

func patID(tokenID string) string { return "pat:" + tokenID }

func secretKeyID(spID, secretID string) string { return "sp:" + spID + ":" + secretID }

func parseKeyID(id string) (kind, spID, inner string, ok bool) {
	parts := strings.Split(id, ":")
	switch {
	case len(parts) == 2 && parts[0] == "pat" && idPattern.MatchString(parts[1]):
		return kindPAT, "", parts[1], true
	case len(parts) == 3 && parts[0] == "sp" && numPattern.MatchString(parts[1]) && idPattern.MatchString(parts[2]):
		return kindOAuthSecret, parts[1], parts[2], true
	}
	return "", "", "", false
}

// ---- key requests ----

type keySpec struct {
	kind     string
	spID     string
	appID    string
	lifetime int64 // seconds; 0 = Databricks' default
	comment  string
}

func (p *provider) spec(req clients.KeyRequest) (keySpec, error) {
	bad := func(format string, a ...any) (keySpec, error) {
		return keySpec{}, &clients.FieldError{Field: "parameters", Message: fmt.Sprintf(format, a...)}
	}
	s := keySpec{kind: kindPAT}
	for _, k := range clients.ParameterNames(req) {
		v := strings.TrimSpace(req.Parameters[k])
		switch k {
		case paramKind:
			if v != kindPAT && v != kindOAuthSecret {
				return bad("kind must be pat or oauth_secret (got %q)", v)
			}
			s.kind = v
		case paramSPID:
			if !numPattern.MatchString(v) {
				return bad("service_principal_id must be the numeric id of a service principal, not its application id (got %q)", v)
			}
			s.spID = v
		case paramAppID:
			if !idPattern.MatchString(v) {
				return bad("application_id must be the service principal's application (client) id (got %q)", v)
			}
			s.appID = v
		case paramLifetime:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 60 || n > 2*365*24*3600 {
				return bad("lifetime_seconds must be a number of seconds between 60 and 63072000 (got %q)", v)
			}
			s.lifetime = n
		case paramComment:
			s.comment = req.Parameters[k]
		default:
			return bad("unknown parameter %q for databricks (allowed: application_id, comment, kind, lifetime_seconds, service_principal_id)", k)
		}
	}
	if len(req.Scopes) > 0 && s.kind != kindPAT {
		return keySpec{}, &clients.FieldError{Field: "scopes", Message: "scopes apply to kind=pat only (OAuth secrets carry the service principal's rights)"}
	}
	for _, sc := range req.Scopes {
		if strings.TrimSpace(sc) == "" {
			return keySpec{}, &clients.FieldError{Field: "scopes", Message: "contains an empty scope"}
		}
	}
	if s.kind == kindOAuthSecret {
		if s.spID == "" || s.appID == "" {
			return bad("kind=oauth_secret needs service_principal_id (numeric) and application_id")
		}
	} else if s.spID != "" || s.appID != "" {
		return bad("service_principal_id and application_id apply to kind=oauth_secret only")
	}
	if !req.ExpiresAt.IsZero() {
		// A lease's max TTL caps the key's life; rounded up to the second.
		left := int64(req.ExpiresAt.Sub(p.now()).Round(time.Second) / time.Second)
		if left < 60 {
			left = 60
		}
		if s.lifetime == 0 || left < s.lifetime {
			s.lifetime = left
		}
	}
	return s, nil
}

// ValidateKeyRequest applies spec's checks.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	_, err := p.spec(req)
	return err
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("databricks: a key name is required")
	}
	s, err := p.spec(req)
	if err != nil {
		return clients.Key{}, err
	}
	if s.kind == kindOAuthSecret {
		return p.createSecret(ctx, req.Name, s)
	}
	comment := req.Name
	if s.comment != "" {
		comment = req.Name + " " + s.comment
	}
	tok, err := p.createPAT(ctx, "create", comment, s.lifetime, req.Scopes, "")
	if err != nil {
		return clients.Key{}, err
	}
	return clients.Key{ID: patID(tok.Info.TokenID), Name: req.Name, Secret: tok.Value, ExpiresAt: tok.expiry(),
		Extra: map[string]string{"kind": kindPAT, "token_id": tok.Info.TokenID}}, nil
}

type patResponse struct {
	Value string `json:"token_value"`
	Info  struct {
		TokenID    string `json:"token_id"`
		Comment    string `json:"comment"`
		ExpiryTime int64  `json:"expiry_time"`
	} `json:"token_info"`
}

func (t patResponse) expiry() time.Time {
	if t.Info.ExpiryTime <= 0 || t.Info.ExpiryTime > 253402300799000 {
		return time.Time{}
	}
	return time.UnixMilli(t.Info.ExpiryTime).UTC()
}

// createPAT calls POST /api/2.0/token/create with the root (or with auth
// when given: a PAT minting its successor).
func (p *provider) createPAT(ctx context.Context, op, comment string, lifetime int64, scopes []string, auth string) (patResponse, error) {
	body := map[string]any{"comment": comment}
	if lifetime > 0 {
		body["lifetime_seconds"] = lifetime
	}
	if len(scopes) > 0 {
		body["scopes"] = scopes
	}
	var out patResponse
	if err := p.workspace(ctx, op, http.MethodPost, "/api/2.0/token/create", body, &out); err != nil {
		return patResponse{}, err
	}
	if !idPattern.MatchString(out.Info.TokenID) {
		return patResponse{}, fmt.Errorf("provider %q: %s: Databricks' response has no usable token_id; revoke the token "+
			"commented %q by hand if it exists", p.http.Provider(), op, comment)
	}
	if out.Value == "" {
		_ = p.deletePAT(ctx, op, out.Info.TokenID)
		return patResponse{}, fmt.Errorf("provider %q: %s: Databricks' response has no token_value", p.http.Provider(), op)
	}
	return out, nil
}

func (p *provider) deletePAT(ctx context.Context, op, tokenID string) error {
	err := p.workspace(ctx, op, http.MethodPost, "/api/2.0/token/delete", map[string]any{"token_id": tokenID}, nil)
	if gone(err) {
		return nil
	}
	return err
}

// gone: a 404, or Databricks' RESOURCE_DOES_NOT_EXIST whatever its status.
func gone(err error) bool {
	var e *httpx.Error
	return httpx.NotFound(err) || (errors.As(err, &e) && strings.Contains(e.Message, "RESOURCE_DOES_NOT_EXIST"))
}

type spSecret struct {
	ID         string `json:"id"`
	Secret     string `json:"secret"`
	Status     string `json:"status"`
	ExpireTime string `json:"expire_time"`
}

func (p *provider) secretsPath(spID string) string {
	if p.accountID != "" {
		return "/api/2.0/accounts/" + p.accountID + "/servicePrincipals/" + spID + "/credentials/secrets"
	}
	return "/api/2.0/accounts/servicePrincipals/" + spID + "/credentials/secrets"
}

// createSecret adds an OAuth secret to a service principal, after counting
// its secrets: at Databricks' quota of five it fails clearly instead.
func (p *provider) createSecret(ctx context.Context, name string, s keySpec) (clients.Key, error) {
	sec, err := p.newSPSecret(ctx, "create", s.spID, s.lifetime)
	if err != nil {
		return clients.Key{}, err
	}
	return clients.Key{ID: secretKeyID(s.spID, sec.ID), Name: name, Secret: sec.Secret, ExpiresAt: parseTime(sec.ExpireTime),
		Extra: map[string]string{"kind": kindOAuthSecret, "client_id": s.appID, "service_principal_id": s.spID, "secret_id": sec.ID}}, nil
}

func (p *provider) newSPSecret(ctx context.Context, op, spID string, lifetime int64) (spSecret, error) {
	n := 0
	if err := p.listSecrets(ctx, op, spID, func(spSecret) { n++ }); err != nil {
		return spSecret{}, err
	}
	if n >= maxSPSecrets {
		return spSecret{}, fmt.Errorf("provider %q: %s: service principal %s already has %d OAuth secrets, Databricks' quota; "+
			"delete one it no longer uses", p.http.Provider(), op, spID, n)
	}
	body := map[string]any{}
	if lifetime > 0 {
		body["lifetime"] = strconv.FormatInt(lifetime, 10) + "s"
	}
	var sec spSecret
	if err := p.mgmt(ctx, op, http.MethodPost, p.secretsPath(spID), body, &sec); err != nil {
		return spSecret{}, err
	}
	if !idPattern.MatchString(sec.ID) {
		return spSecret{}, fmt.Errorf("provider %q: %s: Databricks' response has no usable secret id", p.http.Provider(), op)
	}
	if sec.Secret == "" {
		_ = p.deleteSecret(ctx, op, spID, sec.ID)
		return spSecret{}, fmt.Errorf("provider %q: %s: Databricks' response has no secret value", p.http.Provider(), op)
	}
	return sec, nil
}

func (p *provider) listSecrets(ctx context.Context, op, spID string, fn func(spSecret)) error {
	pageToken := ""
	for i := 0; i < maxPages; i++ {
		q := url.Values{"page_size": {"100"}}
		if pageToken != "" {
			q.Set("page_token", pageToken)
		}
		var page struct {
			Secrets       []spSecret `json:"secrets"`
			NextPageToken string     `json:"next_page_token"`
		}
		if err := p.mgmt(ctx, op, http.MethodGet, p.secretsPath(spID)+"?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		for _, s := range page.Secrets {
			fn(s)
		}
		if page.NextPageToken == "" || page.NextPageToken == pageToken {
			return nil
		}
		pageToken = page.NextPageToken
	}
	return nil
}

func (p *provider) deleteSecret(ctx context.Context, op, spID, secretID string) error {
	err := p.mgmt(ctx, op, http.MethodDelete, p.secretsPath(spID)+"/"+secretID, nil, nil)
	if gone(err) {
		return nil
	}
	return err
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.Year() > 9999 {
		return time.Time{}
	}
	return t
}

// VerifyKey: a PAT reads SCIM Me; an OAuth secret first gets a token at the
// workspace's OIDC endpoint (a bad secret fails there), then reads Me.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("databricks: verify: the key has no secret")
	}
	kind, _, _, ok := parseKeyID(key.ID)
	if !ok {
		return fmt.Errorf("databricks: verify: %q is not a key id of this type", key.ID)
	}
	bearer := key.Secret
	if kind == kindOAuthSecret {
		tok, _, err := p.oauthToken(ctx, "verify", p.base+"/oidc/v1/token", key.Extra["client_id"], key.Secret)
		if err != nil {
			return err
		}
		bearer = tok
	}
	return p.call(ctx, "verify", http.MethodGet, p.base+"/api/2.0/preview/scim/v2/Me", "Bearer "+bearer, nil, nil, key.Secret, bearer)
}

// RevokeKey deletes the PAT or the OAuth secret; gone already is not an
// error.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	kind, spID, inner, ok := parseKeyID(id)
	if !ok {
		return fmt.Errorf("databricks: revoke: %q is not a key id of this type", id)
	}
	if kind == kindPAT {
		return p.deletePAT(ctx, "revoke", inner)
	}
	return p.deleteSecret(ctx, "revoke", spID, inner)
}

// FindKeys: PATs are found by comment at rollback only through the token
// list; OAuth secrets have no name. Not supported.
func (p *provider) FindKeys(context.Context, string) ([]clients.Key, error) {
	return nil, clients.ErrNotSupported
}

// ---- root ----

// RootID checks the root with an authenticated call (SCIM Me at the
// workspace; with account_id, an account token) and returns the configured
// PAT's token_id or the root secret's id.
func (p *provider) RootID(ctx context.Context) (string, error) {
	if p.accountID != "" {
		if _, err := p.rootAuth(ctx, true); err != nil {
			return "", err
		}
		return p.secretID, nil
	}
	if err := p.workspace(ctx, "verify_root", http.MethodGet, "/api/2.0/preview/scim/v2/Me", nil, nil); err != nil {
		return "", err
	}
	if p.token != "" {
		return p.tokenID, nil
	}
	return p.secretID, nil
}

// CreateRoot: a PAT mints its successor; a service principal's secret
// makes a second secret of its own service principal.
func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	if p.token != "" {
		if p.tokenID == "" {
			return clients.Root{}, fmt.Errorf("provider %q: root rotation needs token_id, the id of the configured PAT, "+
				"to revoke it afterwards", p.http.Provider())
		}
		tok, err := p.createPAT(ctx, "create_root", name, p.rootLifetime, nil, "")
		if err != nil {
			return clients.Root{}, err
		}
		return clients.Root{ID: tok.Info.TokenID, Fields: map[string]string{fieldToken: tok.Value, fieldTokenID: tok.Info.TokenID}}, nil
	}
	if p.rootSPID == "" || p.secretID == "" {
		return clients.Root{}, fmt.Errorf("provider %q: root rotation needs root_service_principal_id and client_secret_id "+
			"(the service principal and the id of its configured secret)", p.http.Provider())
	}
	sec, err := p.newSPSecret(ctx, "create_root", p.rootSPID, p.rootLifetime)
	if err != nil {
		return clients.Root{}, err
	}
	return clients.Root{ID: sec.ID, Fields: map[string]string{fieldClientSecret: sec.Secret, fieldClientSecretID: sec.ID}}, nil
}

// VerifyRoot authenticates with the new root and reads SCIM Me (and, for
// account-level secrets, gets an account token too).
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	if p.token != "" {
		v := root.Fields[fieldToken]
		if v == "" {
			return errors.New("databricks: verify_root: the new root has no token")
		}
		return p.call(ctx, "verify_root", http.MethodGet, p.base+"/api/2.0/preview/scim/v2/Me", "Bearer "+v, nil, nil, v)
	}
	v := root.Fields[fieldClientSecret]
	if v == "" {
		return errors.New("databricks: verify_root: the new root has no client secret")
	}
	tok, _, err := p.oauthToken(ctx, "verify_root", p.tokenURL(), p.clientID, v)
	if err != nil {
		return err
	}
	u := p.base + "/api/2.0/preview/scim/v2/Me"
	if p.accountID != "" {
		u = p.accountURL + "/api/2.0/accounts/" + p.accountID + "/scim/v2/ServicePrincipals/" + p.rootSPID
	}
	return p.call(ctx, "verify_root", http.MethodGet, u, "Bearer "+tok, nil, nil, v, tok)
}

// RevokeRoot deletes the replaced PAT or secret with the new root.
func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	if oldID == "" || !idPattern.MatchString(oldID) {
		return fmt.Errorf("provider %q: revoke_root: the old root's id is unknown; revoke it by hand", p.http.Provider())
	}
	if p.token != "" {
		return p.deletePAT(ctx, "revoke_root", oldID)
	}
	return p.deleteSecret(ctx, "revoke_root", p.rootSPID, oldID)
}

// ---- requests ----

func (p *provider) tokenURL() string {
	if p.accountID != "" {
		return p.accountURL + "/oidc/accounts/" + p.accountID + "/v1/token"
	}
	return p.base + "/oidc/v1/token"
}

// rootAuth is the root's Authorization header for the workspace or (when
// account is true) the account API.
func (p *provider) rootAuth(ctx context.Context, account bool) (string, error) {
	if p.token != "" {
		return "Bearer " + p.token, nil
	}
	u := p.base + "/oidc/v1/token"
	if account {
		u = p.tokenURL()
	}
	tok, err := p.tokens.Get(ctx, u, func(ctx context.Context) (string, time.Time, error) {
		return p.oauthToken(ctx, "token", u, p.clientID, p.clientSecret)
	})
	if err != nil {
		return "", err
	}
	return "Bearer " + tok, nil
}

// oauthToken gets an OAuth M2M token: HTTP Basic client_id:secret,
// grant_type=client_credentials, scope=all-apis.
func (p *provider) oauthToken(ctx context.Context, op, u, clientID, secret string) (string, time.Time, error) {
	if clientID == "" {
		return "", time.Time{}, fmt.Errorf("databricks: %s: no client id", op)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"all-apis"}}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"},
		"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte(clientID+":"+secret))}}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	now := p.now()
	r := httpx.Request{Op: op, Method: http.MethodPost, URL: u, Header: h, Body: []byte(form.Encode()), Idempotent: true, Secrets: []string{secret}}
	if _, err := p.http.Call(ctx, r, &out, httpx.Expect{Message: apiMessage, Redact: p.rootSecrets()}); err != nil {
		return "", time.Time{}, err
	}
	if out.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("provider %q: %s: the token response has no access_token", p.http.Provider(), op)
	}
	exp := now.Add(time.Duration(out.ExpiresIn) * time.Second)
	if out.ExpiresIn <= 0 || out.ExpiresIn > 24*3600 {
		exp = now
	}
	return out.AccessToken, exp, nil
}

// workspace calls the workspace API with the root.
func (p *provider) workspace(ctx context.Context, op, method, path string, in, out any) error {
	auth, err := p.rootAuth(ctx, false)
	if err != nil {
		return err
	}
	return p.call(ctx, op, method, p.base+path, auth, in, out)
}

// mgmt calls the service-principal secrets API: the account's when
// account_id is set, else the workspace's.
func (p *provider) mgmt(ctx context.Context, op, method, path string, in, out any) error {
	if p.accountID == "" {
		return p.workspace(ctx, op, method, path, in, out)
	}
	auth, err := p.rootAuth(ctx, true)
	if err != nil {
		return err
	}
	return p.call(ctx, op, method, p.accountURL+path, auth, in, out)
}

func (p *provider) call(ctx context.Context, op, method, u, auth string, in, out any, secrets ...string) error {
	r := httpx.Request{Op: op, Method: method, URL: u, Header: http.Header{"Authorization": {auth}}, Secrets: secrets}
	if method == http.MethodPost && strings.HasSuffix(u, "/token/delete") {
		r.Idempotent = true
	}
	_, err := p.http.JSON(ctx, r, in, out, httpx.Expect{Message: apiMessage, Redact: p.rootSecrets(), AllowEmpty: true})
	return err
}

func (p *provider) rootSecrets() []string {
	return append([]string{p.token, p.clientSecret}, p.tokens.Values()...)
}

// apiMessage extracts Databricks' {"error_code","message"} (or the 1.2
// API's {"error"}, SCIM's {"detail"}, an OAuth {"error_description"}),
// with token-like strings removed.
func apiMessage(body []byte) string {
	var e struct {
		ErrorCode        string `json:"error_code"`
		Message          string `json:"message"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		Detail           string `json:"detail"`
	}
	var out string
	if err := json.Unmarshal(body, &e); err != nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return ""
		}
		out = httpx.TextMessage(body)
	} else {
		switch {
		case e.ErrorCode != "":
			out = e.ErrorCode + ": " + e.Message
		case e.Error != "" && e.ErrorDescription != "":
			out = e.Error + ": " + e.ErrorDescription
		case e.Error != "":
			out = e.Error
		default:
			out = e.Detail
		}
	}
	return secretPattern.ReplaceAllString(out, "[redacted]")
}
