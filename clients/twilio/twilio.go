// Package twilio issues Twilio API keys (standard keys through the 2010-04-01
// Keys resource, restricted keys through the IAM v1 Keys resource) and
// rotates the account Auth Token with Twilio's secondary-token flow.
package twilio

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

const (
	// TypeName is the provider type's name in the registry.
	TypeName = "twilio"

	defaultBaseURL         = "https://api.twilio.com"
	defaultIAMBaseURL      = "https://iam.twilio.com"
	defaultAccountsBaseURL = "https://accounts.twilio.com"

	fieldAccountSID      = "account_sid"
	fieldAuthToken       = "auth_token"
	fieldAPIKeySID       = "api_key_sid"
	fieldAPIKeySecret    = "api_key_secret"
	fieldIAMBaseURL      = "iam_base_url"
	fieldAccountsBaseURL = "accounts_base_url"

	paramKeyType = "key_type"
	paramPolicy  = "policy"

	keyTypeStandard   = "standard"
	keyTypeRestricted = "restricted"

	// maxFriendlyName is the documented FriendlyName limit.
	maxFriendlyName = 64
	listPageSize    = 100
	maxListPages    = 50
)

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	keySIDPattern     = regexp.MustCompile(`^SK[0-9a-fA-F]{32}$`)
)

var capabilities = clients.Capabilities{ListByName: true, RootRotation: true}

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "Twilio API keys: standard keys, or restricted keys with a permission policy. " +
			"The account Auth Token is rotated with Twilio's secondary-token flow (create secondary, verify, promote).",
		DefaultBaseURL: defaultBaseURL,
		// FriendlyName is documented as at most 64 characters.
		MaxKeyNameLength: maxFriendlyName,
		Fields: []clients.Field{
			{
				Name:        fieldAccountSID,
				Account:     true,
				Description: "Twilio Account SID (AC followed by 32 hex digits) that owns the keys.",
				Required:    true,
			},
			{
				Name: fieldAuthToken,
				Description: "Account Auth Token Vault authenticates with. Give either this or api_key_sid and " +
					"api_key_secret. Only this form supports root rotation. Write-only.",
				Sensitive: true,
			},
			{
				Name: fieldAPIKeySID,
				Description: "SID (SK followed by 32 hex digits) of a Main API key Vault authenticates with, instead of " +
					"auth_token. Only Main keys may manage keys; Twilio creates Main keys in the Console only, so this form " +
					"cannot be rotated by Vault.",
			},
			{
				Name:        fieldAPIKeySecret,
				Description: "Secret of the Main API key named by api_key_sid. Write-only.",
				Sensitive:   true,
			},
			{
				Name:        fieldIAMBaseURL,
				Description: "Base URL of Twilio's IAM API, used for restricted keys (POST /v1/Keys).",
				Default:     defaultIAMBaseURL,
				Destination: true,
				URL:         true,
			},
			{
				Name:        fieldAccountsBaseURL,
				Description: "Base URL of Twilio's Accounts API, used for Auth Token rotation (/v1/AuthTokens).",
				Default:     defaultAccountsBaseURL,
				Destination: true,
				URL:         true,
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newClient,
	})
}

func validate(fields map[string]string) error {
	if sid := fields[fieldAccountSID]; !accountSIDPattern.MatchString(sid) {
		return &clients.FieldError{Field: fieldAccountSID, Message: "must be AC followed by 32 hex digits"}
	}
	token, keySID, keySecret := fields[fieldAuthToken], fields[fieldAPIKeySID], fields[fieldAPIKeySecret]
	switch {
	case token != "" && (keySID != "" || keySecret != ""):
		return &clients.FieldError{Field: fieldAuthToken, Message: "give either auth_token or api_key_sid with api_key_secret, not both"}
	case token == "" && keySID == "" && keySecret == "":
		return &clients.FieldError{Field: fieldAuthToken, Message: "is required unless api_key_sid and api_key_secret are given"}
	case token == "" && keySID == "":
		return &clients.FieldError{Field: fieldAPIKeySID, Message: "is required with api_key_secret"}
	case token == "" && keySecret == "":
		return &clients.FieldError{Field: fieldAPIKeySecret, Message: "is required with api_key_sid"}
	case keySID != "" && !keySIDPattern.MatchString(keySID):
		return &clients.FieldError{Field: fieldAPIKeySID, Message: "must be SK followed by 32 hex digits"}
	}
	for _, f := range []string{fieldIAMBaseURL, fieldAccountsBaseURL} {
		v := fields[f]
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return &clients.FieldError{Field: f, Message: "must be an http(s) URL without query or fragment"}
		}
	}
	return nil
}

type client struct {
	http       *httpx.Client
	base       string
	iamBase    string
	accounts   string
	accountSID string
	// user and pass are the Basic credentials Vault manages keys with.
	user, pass string
	tokenForm  bool
}

func newClient(cfg clients.Config) (clients.Provider, error) {
	c := &client{
		http:       cfg.HTTP,
		base:       orDefault(cfg.BaseURL, defaultBaseURL),
		iamBase:    orDefault(cfg.Fields[fieldIAMBaseURL], defaultIAMBaseURL),
		accounts:   orDefault(cfg.Fields[fieldAccountsBaseURL], defaultAccountsBaseURL),
		accountSID: cfg.Fields[fieldAccountSID],
	}
	if tok := cfg.Fields[fieldAuthToken]; tok != "" {
		c.user, c.pass, c.tokenForm = c.accountSID, tok, true
	} else {
		c.user, c.pass = cfg.Fields[fieldAPIKeySID], cfg.Fields[fieldAPIKeySecret]
	}
	return c, nil
}

func orDefault(v, def string) string {
	v = strings.TrimRight(strings.TrimSpace(v), "/")
	if v == "" {
		return def
	}
	return v
}

func (c *client) Capabilities() clients.Capabilities {
	caps := capabilities
	caps.RootRotation = c.tokenForm
	return caps
}

// call sends one request with Basic user:pass (a form body when form is not
// nil), decodes a 2xx JSON body into out and turns any other status into an
// error carrying Twilio's message with every secret removed.
func (c *client) call(ctx context.Context, op, method, rawURL, user, pass string, form url.Values, out any, secrets ...string) error {
	h := http.Header{}
	h.Set("Accept", "application/json")
	var body []byte
	if form != nil {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		body = []byte(form.Encode())
	}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	req := httpx.Request{Op: op, Method: method, URL: rawURL, Header: h, Body: body}
	redact := append([]string{c.pass, pass}, secrets...)
	// An empty success (a 204) leaves out as it is rather than failing.
	_, err := c.http.Call(ctx, req, out, httpx.Expect{Message: errorMessage, Redact: redact})
	return err
}

// errorMessage extracts Twilio's {"code","message","more_info","status"}.
func errorMessage(body []byte) string {
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s (code %d)", e.Message, e.Code)
	}
	return e.Message
}

func (c *client) accountURL(suffix string) string {
	return c.base + "/2010-04-01/Accounts/" + url.PathEscape(c.accountSID) + suffix
}

func friendlyName(name string) string {
	if len(name) <= maxFriendlyName {
		return name
	}
	return name[:maxFriendlyName]
}

type keyResponse struct {
	SID          string `json:"sid"`
	FriendlyName string `json:"friendly_name"`
	Secret       string `json:"secret"`
}

// keyOptions maps a role's scopes and parameters onto Twilio's key fields.
func keyOptions(req clients.KeyRequest) (keyType, policy string, err error) {
	keyType = keyTypeStandard
	for name, v := range req.Parameters {
		switch name {
		case paramKeyType:
			if v != keyTypeStandard && v != keyTypeRestricted {
				return "", "", &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("%s must be %q or %q, not %q", paramKeyType, keyTypeStandard, keyTypeRestricted, v)}
			}
			keyType = v
		case paramPolicy:
			var obj map[string]any
			if err := json.Unmarshal([]byte(v), &obj); err != nil || obj == nil {
				return "", "", &clients.FieldError{Field: "parameters", Message: paramPolicy + " must be a JSON object, e.g. {\"allow\":[\"/twilio/messaging/messages/create\"]}"}
			}
			policy = v
		default:
			return "", "", &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("unknown parameter %q (supported: %s, %s)", name, paramKeyType, paramPolicy)}
		}
	}
	switch {
	case keyType == keyTypeStandard && policy != "":
		return "", "", &clients.FieldError{Field: "parameters", Message: paramPolicy + " requires key_type=restricted"}
	case keyType == keyTypeStandard && len(req.Scopes) > 0:
		return "", "", &clients.FieldError{Field: "scopes", Message: "standard Twilio keys have no scopes; use key_type=restricted"}
	case keyType == keyTypeRestricted && policy != "" && len(req.Scopes) > 0:
		return "", "", &clients.FieldError{Field: "scopes", Message: "give either scopes or a policy parameter, not both"}
	case keyType == keyTypeRestricted && policy == "":
		if len(req.Scopes) == 0 {
			return "", "", &clients.FieldError{Field: "parameters", Message: "restricted keys need scopes (permissions) or a policy parameter"}
		}
		b, _ := json.Marshal(map[string][]string{"allow": req.Scopes})
		policy = string(b)
	}
	return keyType, policy, nil
}

// ValidateKeyRequest applies keyOptions' checks.
func (c *client) ValidateKeyRequest(req clients.KeyRequest) error {
	_, _, err := keyOptions(req)
	return err
}

func (c *client) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	keyType, policy, err := keyOptions(req)
	if err != nil {
		return clients.Key{}, err
	}
	if req.Name == "" {
		return clients.Key{}, &clients.FieldError{Field: "name_template", Message: "key name is empty"}
	}
	form := url.Values{"FriendlyName": {friendlyName(req.Name)}}
	var out keyResponse
	if keyType == keyTypeRestricted {
		form.Set("AccountSid", c.accountSID)
		form.Set("KeyType", keyTypeRestricted)
		form.Set("Policy", policy)
		err = c.call(ctx, "create", http.MethodPost, c.iamBase+"/v1/Keys", c.user, c.pass, form, &out)
	} else {
		err = c.call(ctx, "create", http.MethodPost, c.accountURL("/Keys.json"), c.user, c.pass, form, &out)
	}
	if err != nil {
		return clients.Key{}, err
	}
	if out.SID == "" || out.Secret == "" {
		return clients.Key{}, fmt.Errorf("provider %q: create: response has no sid or secret", c.http.Provider())
	}
	if !keySIDPattern.MatchString(out.SID) {
		// RevokeKey would refuse it: the key could never be revoked by Vault.
		return clients.Key{}, fmt.Errorf("provider %q: create: response has a sid that is not SK followed by 32 hex digits; delete the key named %q by hand",
			c.http.Provider(), friendlyName(req.Name))
	}
	return clients.Key{
		ID:     out.SID,
		Name:   out.FriendlyName,
		Secret: out.Secret,
		Extra:  map[string]string{"sid": out.SID, "key_type": keyType},
	}, nil
}

// VerifyKey lists one TwiML application with the new key. Twilio documents
// that Standard keys reach every resource except Accounts and Keys, and
// that child accounts (the subaccount the docs recommend for Vault) have
// no balance, so neither the Account nor its Balance can be the probe; the
// Applications list exists in every account and holds no customer data. A
// restricted key whose policy does not cover it gets 403, which still
// proves Twilio accepted the key (bad credentials are a 401).
func (c *client) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.ID == "" || key.Secret == "" {
		return errors.New("twilio: verify: key has no sid or secret")
	}
	err := c.call(ctx, "verify", http.MethodGet, c.accountURL("/Applications.json?PageSize=1"), key.ID, key.Secret, nil, nil, key.Secret)
	var he *httpx.Error
	if errors.As(err, &he) && he.Status == http.StatusForbidden && key.Extra["key_type"] == keyTypeRestricted {
		return nil
	}
	return err
}

// RevokeKey deletes through the 2010-04-01 Keys resource and, when that
// does not know the key, through IAM v1 (where restricted keys live). For
// a Standard key the 2010 answer is final (Twilio manages Standard keys in
// both versions), so the IAM retry after a 404 can only find a restricted
// key: when the IAM host refuses the root credential (401/403: an account
// of a region without IAM), no restricted key of Vault's can exist there,
// and the key is gone.
func (c *client) RevokeKey(ctx context.Context, id string) error {
	if !keySIDPattern.MatchString(id) {
		return fmt.Errorf("twilio: revoke: invalid key sid")
	}
	err := c.call(ctx, "revoke", http.MethodDelete, c.accountURL("/Keys/"+id+".json"), c.user, c.pass, nil, nil)
	if !httpx.NotFound(err) {
		return err
	}
	err = c.call(ctx, "revoke", http.MethodDelete, c.iamBase+"/v1/Keys/"+id, c.user, c.pass, nil, nil)
	var he *httpx.Error
	if errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
		return nil
	}
	return err
}

// FindKeys pages through the account's keys and matches the friendly name
// (names are truncated to 64 characters on create, so here too).
func (c *client) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, c.ListKeys, friendlyName(name))
}

// ListKeys lists the account's API keys, every page, for tidy: CreatedAt
// is date_created (RFC 2822). A Main key configured as the root
// (api_key_sid) is left out, so nothing revokes it as a key.
func (c *client) ListKeys(ctx context.Context) ([]clients.Key, error) {
	next := c.accountURL(fmt.Sprintf("/Keys.json?PageSize=%d", listPageSize))
	var found []clients.Key
	for page := 0; next != "" && page < maxListPages; page++ {
		var out struct {
			Keys []struct {
				SID          string `json:"sid"`
				FriendlyName string `json:"friendly_name"`
				DateCreated  string `json:"date_created"`
			} `json:"keys"`
			NextPageURI *string `json:"next_page_uri"`
		}
		if err := c.call(ctx, "list", http.MethodGet, next, c.user, c.pass, nil, &out); err != nil {
			return nil, err
		}
		for _, k := range out.Keys {
			// Only sids RevokeKey accepts: rollback and tidy revoke what they find.
			if !keySIDPattern.MatchString(k.SID) || (!c.tokenForm && k.SID == c.user) {
				continue
			}
			created, _ := time.Parse(time.RFC1123Z, k.DateCreated)
			found = append(found, clients.Key{ID: k.SID, Name: k.FriendlyName, CreatedAt: created, Extra: map[string]string{"sid": k.SID}})
		}
		next = ""
		if out.NextPageURI != nil && strings.HasPrefix(*out.NextPageURI, "/") {
			next = c.base + *out.NextPageURI
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].ID < found[j].ID })
	return found, nil
}

// tokenID names an Auth Token without revealing it: a short fingerprint.
func (c *client) tokenID(token string) string {
	sum := sha256.Sum256([]byte(c.accountSID + ":" + token))
	return "authtoken-" + hex.EncodeToString(sum[:6])
}

// RootID checks the configured credential against the Account resource,
// which only account-level credentials (the Auth Token or a Main key) may
// read, and names it: the key SID, or a fingerprint of the Auth Token.
func (c *client) RootID(ctx context.Context) (string, error) {
	if _, err := c.fetchAccount(ctx, "verify_root", c.user, c.pass); err != nil {
		return "", err
	}
	if c.tokenForm {
		return c.tokenID(c.pass), nil
	}
	return c.user, nil
}

// errKeyRootRotation refuses root rotation before anything is created.
var errKeyRootRotation = &clients.FieldError{Field: fieldAPIKeySID, Message: "an API-key root cannot be rotated by Vault: " +
	"Twilio creates Main keys (the only keys that may manage keys) in the Console only; use auth_token or rotate the Main key by hand"}

// CreateRoot creates the account's secondary Auth Token. Both tokens work
// until RevokeRoot promotes the secondary.
func (c *client) CreateRoot(ctx context.Context, _ string) (clients.Root, error) {
	if !c.tokenForm {
		return clients.Root{}, errKeyRootRotation
	}
	var out struct {
		SecondaryAuthToken string `json:"secondary_auth_token"`
	}
	if err := c.call(ctx, "create_root", http.MethodPost, c.accounts+"/v1/AuthTokens/Secondary", c.user, c.pass, url.Values{}, &out); err != nil {
		return clients.Root{}, err
	}
	if out.SecondaryAuthToken == "" {
		return clients.Root{}, fmt.Errorf("provider %q: create_root: response has no secondary_auth_token", c.http.Provider())
	}
	return clients.Root{ID: c.tokenID(out.SecondaryAuthToken), Fields: map[string]string{fieldAuthToken: out.SecondaryAuthToken}}, nil
}

type account struct {
	SID       string `json:"sid"`
	AuthToken string `json:"auth_token"`
}

func (c *client) fetchAccount(ctx context.Context, op, user, pass string, secrets ...string) (account, error) {
	var out account
	if err := c.call(ctx, op, http.MethodGet, c.accountURL(".json"), user, pass, nil, &out, append(secrets, pass)...); err != nil {
		return account{}, err
	}
	if out.SID != c.accountSID {
		return account{}, fmt.Errorf("provider %q: %s: the token belongs to another account", c.http.Provider(), op)
	}
	return out, nil
}

// VerifyRoot fetches the Account resource with the new token, which only
// account-level credentials may do.
func (c *client) VerifyRoot(ctx context.Context, root clients.Root) error {
	if !c.tokenForm {
		return errKeyRootRotation
	}
	token := root.Fields[fieldAuthToken]
	if token == "" {
		return errors.New("twilio: verify_root: root has no auth_token")
	}
	_, err := c.fetchAccount(ctx, "verify_root", c.accountSID, token)
	return err
}

// RevokeRoot retires the other Auth Token. Whether the configured token is
// the primary is read from the Account resource, so the call is safe in both
// directions: holding the secondary (after the backend persisted it) it
// promotes, which kills the old primary; holding the primary (a rotation
// that was abandoned) it deletes the unused secondary. Repeating it is a
// no-op.
func (c *client) RevokeRoot(ctx context.Context, oldID string) error {
	if !c.tokenForm {
		return errKeyRootRotation
	}
	if oldID == c.tokenID(c.pass) {
		return fmt.Errorf("provider %q: revoke_root: refusing to revoke the auth token in use", c.http.Provider())
	}
	primary, err := c.holdsPrimary(ctx, "revoke_root")
	if err != nil {
		return err
	}
	if primary {
		return c.deleteSecondary(ctx, "revoke_root")
	}
	var out struct {
		AuthToken string `json:"auth_token"`
	}
	if err := c.call(ctx, "revoke_root", http.MethodPost, c.accounts+"/v1/AuthTokens/Promote", c.user, c.pass, url.Values{}, &out); err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(out.AuthToken), []byte(c.pass)) != 1 {
		return fmt.Errorf("provider %q: revoke_root: Twilio promoted a token other than the configured one; rotate the auth token by hand", c.http.Provider())
	}
	return nil
}

// holdsPrimary reports whether the configured Auth Token is the account's
// primary one (the Account resource shows the primary token).
// secrets are other values to keep out of its errors.
func (c *client) holdsPrimary(ctx context.Context, op string, secrets ...string) (bool, error) {
	acct, err := c.fetchAccount(ctx, op, c.user, c.pass, secrets...)
	if err != nil {
		return false, err
	}
	if acct.AuthToken == "" {
		return false, fmt.Errorf("provider %q: %s: the Account resource did not say which auth token is primary", c.http.Provider(), op)
	}
	return subtle.ConstantTimeCompare([]byte(acct.AuthToken), []byte(c.pass)) == 1, nil
}

func (c *client) deleteSecondary(ctx context.Context, op string) error {
	err := c.call(ctx, op, http.MethodDelete, c.accounts+"/v1/AuthTokens/Secondary", c.user, c.pass, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// DiscardRoot deletes a secondary Auth Token that was created but never
// stored, using the primary token Vault still holds. It never promotes.
func (c *client) DiscardRoot(ctx context.Context, newRoot clients.Root) error {
	if !c.tokenForm {
		return nil // CreateRoot creates nothing for an API-key root
	}
	if tok := newRoot.Fields[fieldAuthToken]; tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(c.pass)) == 1 {
		return fmt.Errorf("provider %q: revoke_root: refusing to discard the auth token in use", c.http.Provider())
	}
	primary, err := c.holdsPrimary(ctx, "revoke_root", newRoot.Fields[fieldAuthToken])
	if err != nil {
		return err
	}
	if !primary {
		return fmt.Errorf("provider %q: revoke_root: the configured auth token is not the primary one; refusing to discard the other", c.http.Provider())
	}
	return c.deleteSecondary(ctx, "revoke_root")
}
