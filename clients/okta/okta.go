// Package okta issues the client secrets of one Okta OAuth app, in dual
// mode only: an app holds at most two client secrets, so a rotation
// creates the second (ACTIVE) secret, verifies it with a client-credentials
// token request, and the old one is deactivated then deleted when it
// retires. Vault reaches the Okta management API with an SSWS API token
// (which only the Admin Console can create: not rotatable) or as an OAuth
// service app authenticating with private_key_jwt, whose key Vault rotates
// through the service app's JWKS: add a new key, sign with it, deactivate
// and delete the old one.
package okta

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/tokencache"
)

const (
	// TypeName is the provider type's name in the registry.
	TypeName = "okta"

	fieldAPIToken     = "api_token"
	fieldClientID     = "client_id"
	fieldPrivateKey   = "private_key"
	fieldPrivateKeyID = "private_key_id"
	fieldAppID        = "app_id"
	fieldAppClientID  = "app_client_id"
	fieldAuthServer   = "authorization_server_id"
	fieldVerifyScope  = "verify_scope"

	// maxSecrets is Okta's bound of client secrets per app.
	maxSecrets = 2
	// managementScopes are what the service app asks for: reading and
	// managing apps covers client secrets and its own JWKS.
	managementScopes = "okta.apps.read okta.apps.manage"
	// tokenSlack: a cached access token is renewed this long before it
	// expires.
	tokenSlack = 2 * time.Minute
	// assertionLifetime is the life of a client assertion (Okta allows at
	// most an hour).
	assertionLifetime = 5 * time.Minute
)

var typeCapabilities = clients.Capabilities{RootRotation: true, MaxLiveKeys: maxSecrets}

// idPattern admits Okta object ids (0oa…, ocs…, pks…) and JWK kids, and
// keeps them from changing the request path.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "Okta: issues an OAuth app's client secrets in dual mode (two per app); the root is an SSWS API " +
			"token (not rotatable) or a service app's private_key_jwt key, rotated through the service app's JWKS.",
		BaseURLRequired: true,
		Fields: []clients.Field{
			{Name: fieldAppID, Required: true, Account: true, Description: "Id (0oa…) of the OAuth app whose client secrets Vault issues. " +
				"The app must authenticate with client_secret_basic or client_secret_post."},
			{Name: fieldAppClientID, Description: "client_id of that app, for the verification token request; default app_id " +
				"(Okta's client_id of an app is its id unless it was set by hand)."},
			{Name: fieldAuthServer, Default: "default", Description: "Custom authorization server whose token endpoint " +
				"verifies a new secret (POST /oauth2/<id>/v1/token with client_credentials)."},
			{Name: fieldVerifyScope, Description: "Custom scope asked for in the verification token request; empty: none " +
				"(the server's default scopes)."},
			{Name: fieldAPIToken, Sensitive: true, Description: "SSWS API token. Okta creates these in the Admin Console " +
				"only, so Vault cannot rotate it. Give either this or client_id + private_key + private_key_id."},
			{Name: fieldClientID, Description: "client_id of an OAuth service app that has the okta.apps.read and " +
				"okta.apps.manage scopes and authenticates with private_key_jwt."},
			{Name: fieldPrivateKey, Sensitive: true, Description: "PEM private key (RSA or EC P-256) of the service app; " +
				"root rotation replaces it. Write-only."},
			{Name: fieldPrivateKeyID, Description: "kid of that key in the service app's JWKS; kept up to date by root rotation."},
		},
		Capabilities: typeCapabilities,
		Validate:     validate,
		New:          newProvider,
	})
}

func validate(fields map[string]string) error {
	if !idPattern.MatchString(fields[fieldAppID]) {
		return &clients.FieldError{Field: fieldAppID, Message: fmt.Sprintf("must be an Okta app id such as 0oa1b2c3d4 (got %q)", fields[fieldAppID])}
	}
	for _, f := range []string{fieldAppClientID, fieldAuthServer, fieldClientID, fieldPrivateKeyID} {
		if v := fields[f]; v != "" && !idPattern.MatchString(v) {
			return &clients.FieldError{Field: f, Message: fmt.Sprintf("must be an Okta id (letters, digits, '.', '-', '_'; got %q)", v)}
		}
	}
	if strings.ContainsAny(fields[fieldVerifyScope], "\r\n") {
		return &clients.FieldError{Field: fieldVerifyScope, Message: "must be one line of space-separated scopes"}
	}
	ssws := strings.TrimSpace(fields[fieldAPIToken]) != ""
	jwt := fields[fieldClientID] != "" || fields[fieldPrivateKey] != "" || fields[fieldPrivateKeyID] != ""
	switch {
	case ssws && jwt:
		return &clients.FieldError{Field: fieldAPIToken, Message: "give either api_token or client_id + private_key + private_key_id, not both"}
	case !ssws && !jwt:
		return &clients.FieldError{Field: fieldAPIToken, Message: "is required, unless client_id, private_key and private_key_id (a service app) are given"}
	case jwt:
		for _, f := range []string{fieldClientID, fieldPrivateKey, fieldPrivateKeyID} {
			if fields[f] == "" {
				return &clients.FieldError{Field: f, Message: "is required with a service app (client_id, private_key, private_key_id)"}
			}
		}
		if _, err := parsePrivateKey(fields[fieldPrivateKey]); err != nil {
			return &clients.FieldError{Field: fieldPrivateKey, Message: err.Error()}
		}
	}
	return nil
}

type provider struct {
	http        *httpx.Client
	base        string
	appID       string
	appClientID string
	authServer  string
	verifyScope string

	apiToken string
	// service app (private_key_jwt) form
	clientID string
	keyPEM   string
	key      crypto.Signer
	keyID    string

	now    func() time.Time
	tokens *tokencache.Cache
}

func newProvider(cfg clients.Config) (clients.Provider, error) {
	f := cfg.Fields
	p := &provider{http: cfg.HTTP, base: cfg.BaseURL, appID: f[fieldAppID], appClientID: f[fieldAppClientID],
		authServer: f[fieldAuthServer], verifyScope: f[fieldVerifyScope], apiToken: strings.TrimSpace(f[fieldAPIToken]),
		clientID: f[fieldClientID], keyPEM: f[fieldPrivateKey], keyID: f[fieldPrivateKeyID], now: time.Now}
	p.tokens = &tokencache.Cache{Slack: tokenSlack, Now: func() time.Time { return p.now() }}
	if p.appClientID == "" {
		p.appClientID = p.appID
	}
	if p.authServer == "" {
		p.authServer = "default"
	}
	if p.apiToken == "" {
		k, err := parsePrivateKey(p.keyPEM)
		if err != nil {
			return nil, &clients.FieldError{Field: fieldPrivateKey, Message: err.Error()}
		}
		p.key = k
	}
	return p, nil
}

func (p *provider) Capabilities() clients.Capabilities {
	caps := typeCapabilities
	caps.RootRotation = p.apiToken == ""
	return caps
}

// parsePrivateKey reads an RSA or EC P-256 private key in PEM (PKCS#8,
// PKCS#1 or SEC 1). Its errors never quote the key.
func parsePrivateKey(s string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errors.New("must be a PEM private key (-----BEGIN PRIVATE KEY-----)")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("is not a readable %s", block.Type)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("an RSA key must have at least 2048 bits")
		}
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("an EC key must be on P-256 (ES256)")
		}
		return k, nil
	}
	return nil, errors.New("must be an RSA or EC P-256 private key")
}

func algOf(k crypto.Signer) jose.SignatureAlgorithm {
	if _, ok := k.(*ecdsa.PrivateKey); ok {
		return jose.ES256
	}
	return jose.RS256
}

// ---- the management API's credential ----

// authHeader is the Authorization header for management calls: the SSWS
// token, or a service-app access token (cached until shortly before it
// expires).
func (p *provider) authHeader(ctx context.Context) (string, error) {
	if p.apiToken != "" {
		return "SSWS " + p.apiToken, nil
	}
	tok, err := p.tokens.Get(ctx, "", func(ctx context.Context) (string, time.Time, error) {
		return p.accessToken(ctx, p.key, p.keyID, "token")
	})
	if err != nil {
		return "", err
	}
	return "Bearer " + tok, nil
}

// accessToken gets a management access token for the service app with a
// client assertion signed by key.
func (p *provider) accessToken(ctx context.Context, key crypto.Signer, kid, op string) (string, time.Time, error) {
	tokenURL := p.base + "/oauth2/v1/token"
	assertion, err := p.assertion(key, kid, tokenURL)
	if err != nil {
		return "", time.Time{}, err
	}
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"scope":                 {managementScopes},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	now := p.now()
	if err := p.form(ctx, op, tokenURL, "", form, &out, assertion); err != nil {
		return "", time.Time{}, err
	}
	if out.AccessToken == "" {
		return "", time.Time{}, fmt.Errorf("provider %q: %s: Okta's token response has no access_token", p.http.Provider(), op)
	}
	exp := now.Add(time.Duration(out.ExpiresIn) * time.Second)
	if out.ExpiresIn <= 0 || out.ExpiresIn > 24*3600 {
		exp = now // use once, do not cache
	}
	return out.AccessToken, exp, nil
}

// assertion is a private_key_jwt client assertion: iss = sub = client_id,
// aud = the token endpoint, a unique jti, five minutes of life.
func (p *provider) assertion(key crypto.Signer, kid, aud string) (string, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: algOf(key), Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("okta: signing the client assertion: %w", err)
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	now := p.now()
	claims, _ := json.Marshal(map[string]any{"iss": p.clientID, "sub": p.clientID, "aud": aud,
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(), "jti": fmt.Sprintf("%x", jti)})
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", fmt.Errorf("okta: signing the client assertion: %w", err)
	}
	return jws.CompactSerialize()
}

// ---- issued keys: the app's client secrets ----

type secretObject struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	ClientSecret string `json:"client_secret"`
	Created      string `json:"created"`
}

func (p *provider) secretsPath() string { return "/api/v1/apps/" + p.appID + "/credentials/secrets" }

// ValidateKeyRequest: a client secret takes neither scopes nor parameters.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) > 0 {
		return &clients.FieldError{Field: "scopes", Message: "okta client secrets take no scopes: grant them to the app " +
			"in Okta (its authorization server's policies)"}
	}
	return clients.NoParameters(req, "okta client secrets take no parameters")
}

// CreateKey adds a client secret to the app. It first counts the app's
// secrets: with two already there (Okta's bound), it refuses before asking
// for a third and names them, so the operator can remove the one Vault
// does not manage.
func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	var list []secretObject
	if err := p.api(ctx, "list", http.MethodGet, p.secretsPath(), nil, &list); err != nil {
		return clients.Key{}, err
	}
	if len(list) >= maxSecrets {
		var held []string
		for _, s := range list {
			held = append(held, s.ID+" ("+strings.ToLower(s.Status)+")")
		}
		return clients.Key{}, fmt.Errorf("provider %q: create: app %s already has %d client secrets, the most Okta allows: %s; "+
			"deactivate and delete the one no client uses (Vault never makes a third)", p.http.Provider(), p.appID, len(list), strings.Join(held, ", "))
	}
	var s secretObject
	if err := p.api(ctx, "create", http.MethodPost, p.secretsPath(), map[string]any{"status": "ACTIVE"}, &s); err != nil {
		return clients.Key{}, err
	}
	if !idPattern.MatchString(s.ID) {
		return clients.Key{}, fmt.Errorf("provider %q: create: Okta's response has no usable secret id; check the app's "+
			"client secrets by hand", p.http.Provider())
	}
	if s.ClientSecret == "" {
		_ = p.RevokeKey(ctx, s.ID) // nobody could use it
		return clients.Key{}, fmt.Errorf("provider %q: create: Okta's response has no client_secret value", p.http.Provider())
	}
	return clients.Key{ID: s.ID, Name: req.Name, Secret: s.ClientSecret,
		Extra: map[string]string{"client_id": p.appClientID, "app_id": p.appID}}, nil
}

// VerifyKey asks the custom authorization server for a client-credentials
// token with the new secret (HTTP Basic client_id:secret).
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("okta: verify: the key has no secret")
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if p.verifyScope != "" {
		form.Set("scope", p.verifyScope)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	u := p.base + "/oauth2/" + p.authServer + "/v1/token"
	basic := "Basic " + basicAuth(p.appClientID, key.Secret)
	if err := p.form(ctx, "verify", u, basic, form, &out, key.Secret); err != nil {
		return err
	}
	if out.AccessToken == "" {
		return fmt.Errorf("provider %q: verify: Okta's token response has no access_token", p.http.Provider())
	}
	return nil
}

// RevokeKey deactivates the secret, then deletes it (Okta deletes only
// inactive secrets). A secret already gone is not an error.
func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("okta: revoke: %q is not a client secret id", id)
	}
	path := p.secretsPath() + "/" + id
	err := p.api(ctx, "revoke", http.MethodPost, path+"/lifecycle/deactivate", nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	err = p.api(ctx, "revoke", http.MethodDelete, path, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// FindKeys: client secrets have no name to find them by.
func (p *provider) FindKeys(context.Context, string) ([]clients.Key, error) {
	return nil, clients.ErrNotSupported
}

// ---- root: the service app's JWKS ----

type jwkObject struct {
	ID     string `json:"id"`
	Kid    string `json:"kid"`
	Status string `json:"status"`
}

func (p *provider) jwksPath() string { return "/api/v1/apps/" + p.clientID + "/credentials/jwks" }

// RootID checks the root by listing the app's client secrets with it (so
// a wrong token or key, a missing scope or a wrong app_id is refused when
// the provider is written) and returns the kid of the service app's key;
// an SSWS token's id is not needed (it cannot be rotated).
func (p *provider) RootID(ctx context.Context) (string, error) {
	if err := p.api(ctx, "verify_root", http.MethodGet, p.secretsPath(), nil, nil); err != nil {
		return "", err
	}
	if p.apiToken != "" {
		return "", nil
	}
	return p.keyID, nil
}

// CreateRoot makes a new key pair like the current one (RSA 2048 or EC
// P-256) and adds its public half to the service app's JWKS, ACTIVE, with
// kid = name. The new private key exists only in the returned Root.
func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	if p.apiToken != "" {
		return clients.Root{}, clients.ErrNotSupported
	}
	if !idPattern.MatchString(name) {
		return clients.Root{}, fmt.Errorf("okta: create_root: %q cannot be a key id", name)
	}
	var key crypto.Signer
	var err error
	if _, ok := p.key.(*ecdsa.PrivateKey); ok {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return clients.Root{}, fmt.Errorf("okta: create_root: generating a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return clients.Root{}, fmt.Errorf("okta: create_root: encoding the key: %w", err)
	}
	pub, err := (&jose.JSONWebKey{Key: key.Public(), KeyID: name, Algorithm: string(algOf(key)), Use: "sig"}).MarshalJSON()
	if err != nil {
		return clients.Root{}, fmt.Errorf("okta: create_root: encoding the public key: %w", err)
	}
	var body map[string]any
	_ = json.Unmarshal(pub, &body)
	body["status"] = "ACTIVE"
	var created jwkObject
	if err := p.api(ctx, "create_root", http.MethodPost, p.jwksPath(), body, &created); err != nil {
		return clients.Root{}, err
	}
	if created.Kid != "" && created.Kid != name {
		return clients.Root{}, fmt.Errorf("provider %q: create_root: Okta stored the new key as kid %q, not %q; delete it by hand",
			p.http.Provider(), created.Kid, name)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	return clients.Root{ID: name, Fields: map[string]string{fieldPrivateKey: pemKey, fieldPrivateKeyID: name}}, nil
}

// VerifyRoot gets an access token signed by the new key, then lists the
// app's client secrets with it (the management scopes work).
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	if p.apiToken != "" {
		return clients.ErrNotSupported
	}
	key, err := parsePrivateKey(root.Fields[fieldPrivateKey])
	if err != nil {
		return fmt.Errorf("okta: verify_root: the new private key %v", err)
	}
	kid := root.Fields[fieldPrivateKeyID]
	if !idPattern.MatchString(kid) {
		return errors.New("okta: verify_root: the new root has no key id")
	}
	tok, _, err := p.accessToken(ctx, key, kid, "verify_root")
	if err != nil {
		return err
	}
	return p.call(ctx, "verify_root", http.MethodGet, p.secretsPath(), "Bearer "+tok, nil, nil, tok)
}

// RevokeRoot deactivates, then deletes, the service app's key whose kid is
// oldID (found in the JWKS; gone already is not an error).
func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	if p.apiToken != "" {
		return clients.ErrNotSupported
	}
	if oldID == "" || oldID == p.keyID {
		return fmt.Errorf("provider %q: revoke_root: refusing to revoke key %q, the one Vault signs with", p.http.Provider(), oldID)
	}
	keys, err := p.jwks(ctx, "revoke_root")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Kid != oldID || !idPattern.MatchString(k.ID) {
			continue
		}
		path := p.jwksPath() + "/" + k.ID
		if strings.EqualFold(k.Status, "ACTIVE") {
			err := p.api(ctx, "revoke_root", http.MethodPost, path+"/lifecycle/deactivate", nil, nil)
			if httpx.NotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
		}
		if err := p.api(ctx, "revoke_root", http.MethodDelete, path, nil, nil); err != nil && !httpx.NotFound(err) {
			return err
		}
	}
	return nil
}

// FindRoots finds the service app's keys whose kid is name, so a rollback
// can discard a new key whose rotation never finished.
func (p *provider) FindRoots(ctx context.Context, name string) ([]clients.Root, error) {
	if p.apiToken != "" {
		return nil, nil
	}
	keys, err := p.jwks(ctx, "list_roots")
	if err != nil {
		return nil, err
	}
	var out []clients.Root
	for _, k := range keys {
		if k.Kid == name && name != "" {
			out = append(out, clients.Root{ID: k.Kid})
		}
	}
	return out, nil
}

func (p *provider) jwks(ctx context.Context, op string) ([]jwkObject, error) {
	var keys []jwkObject
	if err := p.api(ctx, op, http.MethodGet, p.jwksPath(), nil, &keys); err != nil {
		return nil, err
	}
	return keys, nil
}

// ---- requests ----

// api calls the management API with the configured root.
func (p *provider) api(ctx context.Context, op, method, path string, in, out any) error {
	auth, err := p.authHeader(ctx)
	if err != nil {
		return err
	}
	return p.call(ctx, op, method, path, auth, in, out)
}

// call sends one JSON request with the given Authorization; any 2xx is
// success (Okta answers some with no body).
func (p *provider) call(ctx context.Context, op, method, path, auth string, in, out any, secrets ...string) error {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Authorization": {auth}},
		Idempotent: method == http.MethodPost && strings.Contains(path, "/lifecycle/"), Secrets: secrets}
	_, err := p.http.JSON(ctx, r, in, out, httpx.Expect{Message: apiMessage, Redact: p.rootSecrets(), AllowEmpty: true})
	return err
}

// form posts a token request (form-encoded); repeating one is harmless.
func (p *provider) form(ctx context.Context, op, u, auth string, form url.Values, out any, secrets ...string) error {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	r := httpx.Request{Op: op, Method: http.MethodPost, URL: u, Header: h, Body: []byte(form.Encode()), Idempotent: true, Secrets: secrets}
	_, err := p.http.Call(ctx, r, out, httpx.Expect{Message: apiMessage, Redact: p.rootSecrets()})
	return err
}

func (p *provider) rootSecrets() []string {
	return append([]string{p.apiToken, p.keyPEM}, p.tokens.Values()...)
}

func basicAuth(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// apiMessage extracts Okta's {"errorCode","errorSummary","errorCauses"}
// text, or an OAuth {"error","error_description"} from a token endpoint.
func apiMessage(body []byte) string {
	var e struct {
		ErrorCode    string `json:"errorCode"`
		ErrorSummary string `json:"errorSummary"`
		ErrorCauses  []struct {
			ErrorSummary string `json:"errorSummary"`
		} `json:"errorCauses"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return ""
		}
		return httpx.TextMessage(body)
	}
	switch {
	case e.ErrorSummary != "" || e.ErrorCode != "":
		out := e.ErrorSummary
		for _, c := range e.ErrorCauses {
			if c.ErrorSummary != "" {
				out += ": " + c.ErrorSummary
			}
		}
		if e.ErrorCode != "" {
			out += " (" + e.ErrorCode + ")"
		}
		return out
	case e.Error != "":
		if e.ErrorDescription != "" {
			return e.Error + ": " + e.ErrorDescription
		}
		return e.Error
	}
	return ""
}
