// Package datadog issues Datadog API keys and application keys and rotates
// the root API-key/application-key pair by creating a new pair, verifying it
// and deleting the old one.
package datadog

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
	TypeName = "datadog"

	fieldSite     = "site"
	fieldAPIKey   = "api_key"
	fieldAppKey   = "app_key"
	fieldAPIKeyID = "api_key_id"
	fieldAppKeyID = "app_key_id"

	paramKeyKind      = "key_kind"
	paramRemoteConfig = "remote_config_read_enabled"
	paramCategory     = "category"

	kindAPIKey = "api_key"
	kindAppKey = "application_key"

	// appIDPrefix marks application-key ids, so RevokeKey knows the endpoint.
	appIDPrefix = "app:"

	pageSize = 100
	maxPages = 50
)

// Sites are the documented Datadog sites; the API lives at https://api.<site>.
var Sites = []string{
	"datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "ap1.datadoghq.com", "ap2.datadoghq.com",
	"uk1.datadoghq.com", "datadoghq.eu", "ddog-gov.com", "us2.ddog-gov.com",
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

var capabilities = clients.Capabilities{ListByName: true, RootRotation: true}

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "Datadog API keys and application keys (key_kind parameter). The root API key and " +
			"application key are rotated together: a new pair is created and verified, then the old pair is deleted.",
		Fields: []clients.Field{
			{
				Name: fieldSite,
				Description: "Datadog site the organization lives on: one of " + strings.Join(Sites, ", ") +
					". The API is https://api.<site>. Required unless base_url is set.",
				Destination: true,
			},
			{
				Name: fieldAPIKey,
				Description: "Datadog API key sent as DD-API-KEY. Dedicate it to Vault: root rotation replaces it. " +
					"Write-only.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name: fieldAppKey,
				Description: "Datadog application key sent as DD-APPLICATION-KEY; its user (or its scopes) must allow " +
					"api_keys_read, api_keys_write and user_app_keys. Write-only.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name: fieldAppKeyID,
				Description: "Optional id of app_key. Vault finds it by the key's last four characters; set it only if " +
					"that is ambiguous.",
			},
			{
				Name: fieldAPIKeyID,
				Description: "Optional id of api_key. Vault finds it by the key's last four characters; set it only if " +
					"that is ambiguous.",
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New:          newClient,
	})
}

func knownSite(site string) bool {
	for _, s := range Sites {
		if s == site {
			return true
		}
	}
	return false
}

func validate(fields map[string]string) error {
	site := strings.TrimSpace(fields[fieldSite])
	if site != "" && !knownSite(site) {
		return &clients.FieldError{Field: fieldSite, Message: fmt.Sprintf("unknown Datadog site %q; use one of %s", site, strings.Join(Sites, ", "))}
	}
	if baseURL, given := fields["base_url"]; given && site == "" && strings.TrimSpace(baseURL) == "" {
		return &clients.FieldError{Field: fieldSite, Message: "is required unless base_url is set"}
	}
	for _, f := range []string{fieldAPIKey, fieldAppKey} {
		v := fields[f]
		if strings.TrimSpace(v) == "" {
			return &clients.FieldError{Field: f, Message: "is required"}
		}
		if strings.ContainsAny(v, " \r\n\t") {
			return &clients.FieldError{Field: f, Message: "must not contain whitespace"}
		}
	}
	for _, f := range []string{fieldAPIKeyID, fieldAppKeyID} {
		if v := fields[f]; v != "" && !idPattern.MatchString(v) {
			return &clients.FieldError{Field: f, Message: "must contain only letters, digits, '-' and '_'"}
		}
	}
	return nil
}

type client struct {
	http               *httpx.Client
	base               string
	apiKey, appKey     string
	apiKeyID, appKeyID string // optional fields
}

func newClient(cfg clients.Config) (clients.Provider, error) {
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		site := strings.TrimSpace(cfg.Fields[fieldSite])
		if site == "" {
			return nil, &clients.FieldError{Field: fieldSite, Message: "is required unless base_url is set"}
		}
		base = "https://api." + site
	}
	return &client{
		http:     cfg.HTTP,
		base:     base,
		apiKey:   cfg.Fields[fieldAPIKey],
		appKey:   cfg.Fields[fieldAppKey],
		apiKeyID: cfg.Fields[fieldAPIKeyID],
		appKeyID: cfg.Fields[fieldAppKeyID],
	}, nil
}

func (c *client) Capabilities() clients.Capabilities { return capabilities }

// call sends one request with the given key pair (appKey may be empty),
// decodes a 2xx JSON body into out and turns any other status into an error
// carrying Datadog's message with every secret removed.
func (c *client) call(ctx context.Context, op, method, path, apiKey, appKey string, in, out any, secrets ...string) error {
	h := http.Header{}
	h.Set("DD-API-KEY", apiKey)
	if appKey != "" {
		h.Set("DD-APPLICATION-KEY", appKey)
	}
	req := httpx.Request{Op: op, Method: method, URL: c.base + path, Header: h}
	redact := append([]string{c.apiKey, c.appKey, apiKey, appKey}, secrets...)
	_, err := c.http.JSON(ctx, req, in, out, httpx.Expect{Message: errorMessage, Redact: redact})
	return err
}

// errorMessage extracts Datadog's {"errors":["…"]}.
func errorMessage(body []byte) string {
	var e struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return strings.Join(e.Errors, "; ")
}

// keyData is one JSON:API key object.
type keyData struct {
	ID         string `json:"id"`
	Attributes struct {
		Name      string    `json:"name"`
		Key       string    `json:"key"`
		Last4     string    `json:"last4"`
		Scopes    *[]string `json:"scopes"`
		CreatedAt string    `json:"created_at"`
	} `json:"attributes"`
}

type keyDoc struct {
	Data keyData `json:"data"`
}

type keyList struct {
	Data []keyData `json:"data"`
}

type keyBody struct {
	Data struct {
		Type       string         `json:"type"`
		Attributes map[string]any `json:"attributes"`
	} `json:"data"`
}

func newKeyBody(typ string, attrs map[string]any) keyBody {
	var b keyBody
	b.Data.Type = typ
	b.Data.Attributes = attrs
	return b
}

// keyOptions maps a role's scopes and parameters onto Datadog's attributes.
func keyOptions(req clients.KeyRequest) (kind string, attrs map[string]any, err error) {
	kind = kindAPIKey
	attrs = map[string]any{"name": req.Name}
	names := make([]string, 0, len(req.Parameters))
	for n := range req.Parameters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := req.Parameters[n]
		switch n {
		case paramKeyKind:
			if v != kindAPIKey && v != kindAppKey {
				return "", nil, &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("%s must be %q or %q, not %q", paramKeyKind, kindAPIKey, kindAppKey, v)}
			}
			kind = v
		case paramRemoteConfig:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", nil, &clients.FieldError{Field: "parameters", Message: paramRemoteConfig + " must be true or false"}
			}
			attrs[paramRemoteConfig] = b
		case paramCategory:
			attrs[paramCategory] = v
		default:
			return "", nil, &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("unknown parameter %q (supported: %s, %s, %s)", n, paramKeyKind, paramRemoteConfig, paramCategory)}
		}
	}
	if kind == kindAppKey {
		for _, n := range []string{paramRemoteConfig, paramCategory} {
			if _, ok := attrs[n]; ok {
				return "", nil, &clients.FieldError{Field: "parameters", Message: n + " applies to API keys only"}
			}
		}
		if len(req.Scopes) > 0 {
			attrs["scopes"] = req.Scopes
		}
	} else if len(req.Scopes) > 0 {
		return "", nil, &clients.FieldError{Field: "scopes", Message: "scopes apply to application keys only (set parameters key_kind=application_key)"}
	}
	return kind, attrs, nil
}

func (c *client) createAPIKey(ctx context.Context, op string, attrs map[string]any) (keyData, error) {
	var out keyDoc
	if err := c.call(ctx, op, http.MethodPost, "/api/v2/api_keys", c.apiKey, c.appKey, newKeyBody("api_keys", attrs), &out); err != nil {
		return keyData{}, err
	}
	return c.checkCreated(op, attrs["name"], out.Data)
}

func (c *client) createAppKey(ctx context.Context, op string, attrs map[string]any) (keyData, error) {
	var out keyDoc
	if err := c.call(ctx, op, http.MethodPost, "/api/v2/current_user/application_keys", c.apiKey, c.appKey, newKeyBody("application_keys", attrs), &out); err != nil {
		return keyData{}, err
	}
	return c.checkCreated(op, attrs["name"], out.Data)
}

// checkCreated checks the key created with the given name.
func (c *client) checkCreated(op string, name any, d keyData) (keyData, error) {
	if d.ID == "" || d.Attributes.Key == "" {
		return keyData{}, fmt.Errorf("provider %q: %s: response has no id or key", c.http.Provider(), op)
	}
	if !idPattern.MatchString(d.ID) {
		// The delete calls would refuse it: Vault could never revoke the key.
		return keyData{}, fmt.Errorf("provider %q: %s: response has a key id Vault cannot use; delete the key named %q by hand",
			c.http.Provider(), op, fmt.Sprint(name))
	}
	return d, nil
}

// ValidateKeyRequest applies keyOptions' checks.
func (c *client) ValidateKeyRequest(req clients.KeyRequest) error {
	_, _, err := keyOptions(req)
	return err
}

func (c *client) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if req.Name == "" {
		return clients.Key{}, &clients.FieldError{Field: "name_template", Message: "key name is empty"}
	}
	kind, attrs, err := keyOptions(req)
	if err != nil {
		return clients.Key{}, err
	}
	var d keyData
	id := ""
	if kind == kindAppKey {
		d, err = c.createAppKey(ctx, "create", attrs)
		id = appIDPrefix + d.ID
	} else {
		d, err = c.createAPIKey(ctx, "create", attrs)
		id = d.ID
	}
	if err != nil {
		return clients.Key{}, err
	}
	return clients.Key{ID: id, Name: d.Attributes.Name, Secret: d.Attributes.Key, Extra: map[string]string{"key_kind": kind}}, nil
}

// VerifyKey validates an API key alone (GET /api/v1/validate) or an
// application key together with the root API key (GET /api/v2/validate_keys).
func (c *client) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("datadog: verify: key has no secret")
	}
	if strings.HasPrefix(key.ID, appIDPrefix) {
		return c.validatePair(ctx, "verify", c.apiKey, key.Secret)
	}
	var out struct {
		Valid bool `json:"valid"`
	}
	if err := c.call(ctx, "verify", http.MethodGet, "/api/v1/validate", key.Secret, "", nil, &out, key.Secret); err != nil {
		return err
	}
	if !out.Valid {
		return fmt.Errorf("provider %q: verify: Datadog reports the API key invalid", c.http.Provider())
	}
	return nil
}

func (c *client) validatePair(ctx context.Context, op, apiKey, appKey string) error {
	var out struct {
		Status string `json:"status"`
	}
	if err := c.call(ctx, op, http.MethodGet, "/api/v2/validate_keys", apiKey, appKey, nil, &out, apiKey, appKey); err != nil {
		return err
	}
	if out.Status != "ok" {
		return fmt.Errorf("provider %q: %s: Datadog did not validate the keys", c.http.Provider(), op)
	}
	return nil
}

func (c *client) deleteAPIKey(ctx context.Context, op, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("datadog: %s: invalid key id", op)
	}
	err := c.call(ctx, op, http.MethodDelete, "/api/v2/api_keys/"+url.PathEscape(id), c.apiKey, c.appKey, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

func (c *client) deleteAppKey(ctx context.Context, op, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("datadog: %s: invalid key id", op)
	}
	err := c.call(ctx, op, http.MethodDelete, "/api/v2/current_user/application_keys/"+url.PathEscape(id), c.apiKey, c.appKey, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

func (c *client) RevokeKey(ctx context.Context, id string) error {
	if appID, ok := strings.CutPrefix(id, appIDPrefix); ok {
		return c.deleteAppKey(ctx, "revoke", appID)
	}
	return c.deleteAPIKey(ctx, "revoke", id)
}

// list pages through a key collection; filter narrows by name on the server.
func (c *client) list(ctx context.Context, path, filter string) ([]keyData, error) {
	var all []keyData
	for page := 0; page < maxPages; page++ {
		q := url.Values{"page[size]": {strconv.Itoa(pageSize)}, "page[number]": {strconv.Itoa(page)}}
		if filter != "" {
			q.Set("filter", filter)
		}
		var out keyList
		if err := c.call(ctx, "list", http.MethodGet, path+"?"+q.Encode(), c.apiKey, c.appKey, nil, &out); err != nil {
			if httpx.NotFound(err) {
				// Datadog answers a listing it has with 200, even empty: a 404
				// is a base URL or site where that API is not.
				return nil, fmt.Errorf("%w (the key listing %s was not found at %s: check site and base_url)", err, path, c.base)
			}
			return nil, err
		}
		all = append(all, out.Data...)
		if len(out.Data) < pageSize {
			break
		}
	}
	return all, nil
}

func (c *client) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	keys, err := c.keys(ctx, name, false)
	if err != nil {
		return nil, err
	}
	return keylist.Named(keys, name), nil
}

// ListKeys lists the account's API keys and the current user's application
// keys, every page, for tidy: CreatedAt is created_at. The configured root
// (api_key and app_key) is left out, known by its id fields or by its last
// four characters: its root id ("api_key:…,app_key:…") matches no key id,
// so nothing else would keep tidy from taking it.
func (c *client) ListKeys(ctx context.Context) ([]clients.Key, error) {
	return c.keys(ctx, "", true)
}

// keys lists both key collections (filter narrows by name on the server),
// application key ids with appIDPrefix as RevokeKey takes them, without the
// root's keys when skipRoot.
func (c *client) keys(ctx context.Context, filter string, skipRoot bool) ([]clients.Key, error) {
	var found []clients.Key
	for _, coll := range []struct {
		path, prefix, kind string
		rootID, rootSecret string
	}{
		{"/api/v2/api_keys", "", kindAPIKey, c.apiKeyID, c.apiKey},
		{"/api/v2/current_user/application_keys", appIDPrefix, kindAppKey, c.appKeyID, c.appKey},
	} {
		list, err := c.list(ctx, coll.path, filter)
		if err != nil {
			return nil, err
		}
		for _, d := range list {
			// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
			if !idPattern.MatchString(d.ID) {
				continue
			}
			if skipRoot && (d.ID == coll.rootID || (d.Attributes.Last4 != "" && d.Attributes.Last4 == last4(coll.rootSecret))) {
				continue
			}
			created, _ := time.Parse(time.RFC3339, d.Attributes.CreatedAt)
			found = append(found, clients.Key{ID: coll.prefix + d.ID, Name: d.Attributes.Name, CreatedAt: created,
				Extra: map[string]string{"key_kind": coll.kind}})
		}
	}
	return found, nil
}

// rootID is the id of a root pair: both halves, either possibly unknown.
type rootID struct{ app, api string }

func (r rootID) String() string {
	var parts []string
	if r.app != "" {
		parts = append(parts, "app_key:"+r.app)
	}
	if r.api != "" {
		parts = append(parts, "api_key:"+r.api)
	}
	return strings.Join(parts, ",")
}

func parseRootID(s string) (rootID, error) {
	var r rootID
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		kind, id, ok := strings.Cut(part, ":")
		if !ok || !idPattern.MatchString(id) {
			return rootID{}, fmt.Errorf("datadog: malformed root id %q", s)
		}
		switch kind {
		case "app_key":
			r.app = id
		case "api_key":
			r.api = id
		default:
			return rootID{}, fmt.Errorf("datadog: malformed root id %q", s)
		}
	}
	return r, nil
}

func last4(secret string) string {
	if len(secret) < 4 {
		return ""
	}
	return secret[len(secret)-4:]
}

// findID resolves which key in a collection is secret: the given id when the
// provider confirms its last four characters, else the one key whose last
// four match. Empty when it cannot tell.
func (c *client) findID(ctx context.Context, path, given, secret string) (string, error) {
	want := last4(secret)
	if want == "" {
		return "", nil
	}
	if given != "" {
		var out keyDoc
		err := c.call(ctx, "list", http.MethodGet, path+"/"+url.PathEscape(given), c.apiKey, c.appKey, nil, &out)
		if err == nil && out.Data.Attributes.Last4 == want {
			return given, nil
		}
		if err != nil && !httpx.NotFound(err) {
			return "", err
		}
	}
	keys, err := c.list(ctx, path, "")
	if err != nil {
		return "", err
	}
	match := ""
	for _, d := range keys {
		// An id outside idPattern would corrupt the root id (see parseRootID).
		if d.Attributes.Last4 == want && idPattern.MatchString(d.ID) {
			if match != "" {
				return "", nil // ambiguous
			}
			match = d.ID
		}
	}
	return match, nil
}

func (c *client) ownRoot(ctx context.Context) (rootID, error) {
	app, err := c.findID(ctx, "/api/v2/current_user/application_keys", c.appKeyID, c.appKey)
	if err != nil {
		return rootID{}, err
	}
	api, err := c.findID(ctx, "/api/v2/api_keys", c.apiKeyID, c.apiKey)
	if err != nil {
		return rootID{}, err
	}
	return rootID{app: app, api: api}, nil
}

func (c *client) RootID(ctx context.Context) (string, error) {
	r, err := c.ownRoot(ctx)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// CreateRoot creates an application key for the same user with the same
// scopes as the current one, then an API key. If the second create fails
// the first key is deleted again.
func (c *client) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	appID, err := c.findID(ctx, "/api/v2/current_user/application_keys", c.appKeyID, c.appKey)
	if err != nil {
		return clients.Root{}, err
	}
	if appID == "" {
		return clients.Root{}, &clients.FieldError{Field: fieldAppKeyID, Message: "cannot tell which application key app_key is; set app_key_id"}
	}
	var cur keyDoc
	if err := c.call(ctx, "create_root", http.MethodGet, "/api/v2/current_user/application_keys/"+url.PathEscape(appID), c.apiKey, c.appKey, nil, &cur); err != nil {
		return clients.Root{}, err
	}
	attrs := map[string]any{"name": name}
	if cur.Data.Attributes.Scopes != nil {
		attrs["scopes"] = *cur.Data.Attributes.Scopes
	}
	app, err := c.createAppKey(ctx, "create_root", attrs)
	if err != nil {
		return clients.Root{}, err
	}
	api, err := c.createAPIKey(ctx, "create_root", map[string]any{"name": name})
	if err != nil {
		if cleanup := c.deleteAppKey(ctx, "create_root", app.ID); cleanup != nil {
			// Not wrapped: the new key exists, so this must not read as "nothing created".
			return clients.Root{}, fmt.Errorf("%v; and the new application key %s could not be deleted: %v", err, app.ID, cleanup)
		}
		return clients.Root{}, err
	}
	root := clients.Root{
		ID:     rootID{app: app.ID, api: api.ID}.String(),
		Fields: map[string]string{fieldAppKey: app.Attributes.Key, fieldAPIKey: api.Attributes.Key},
	}
	// Keep optional id fields true to the new keys.
	if c.appKeyID != "" {
		root.Fields[fieldAppKeyID] = app.ID
	}
	if c.apiKeyID != "" {
		root.Fields[fieldAPIKeyID] = api.ID
	}
	return root, nil
}

// VerifyRoot validates the new pair and checks it can manage application keys.
func (c *client) VerifyRoot(ctx context.Context, root clients.Root) error {
	apiKey, appKey := root.Fields[fieldAPIKey], root.Fields[fieldAppKey]
	if apiKey == "" || appKey == "" {
		return errors.New("datadog: verify_root: root lacks api_key or app_key")
	}
	if err := c.validatePair(ctx, "verify_root", apiKey, appKey); err != nil {
		return err
	}
	q := "?page%5Bsize%5D=1"
	return c.call(ctx, "verify_root", http.MethodGet, "/api/v2/current_user/application_keys"+q, apiKey, appKey, nil, nil, apiKey, appKey)
}

// RevokeRoot deletes the old pair by id with the new pair. It refuses to
// delete a key the client itself authenticates with.
func (c *client) RevokeRoot(ctx context.Context, oldID string) error {
	old, err := parseRootID(oldID)
	if err != nil {
		return err
	}
	if old.app == "" && old.api == "" {
		return fmt.Errorf("provider %q: revoke_root: the old root's ids are unknown (set app_key_id and api_key_id); delete the old keys by hand", c.http.Provider())
	}
	own, err := c.ownRoot(ctx)
	if err != nil {
		return err
	}
	if (old.app != "" && old.app == own.app) || (old.api != "" && old.api == own.api) {
		return fmt.Errorf("provider %q: revoke_root: refusing to delete a key in use", c.http.Provider())
	}
	if old.app != "" {
		if err := c.deleteAppKey(ctx, "revoke_root", old.app); err != nil {
			return err
		}
	}
	if old.api != "" {
		if err := c.deleteAPIKey(ctx, "revoke_root", old.api); err != nil {
			return err
		}
	}
	switch {
	case old.app == "":
		return fmt.Errorf("provider %q: revoke_root: the old application key's id is unknown; delete it by hand", c.http.Provider())
	case old.api == "":
		return fmt.Errorf("provider %q: revoke_root: the old API key's id is unknown; delete it by hand", c.http.Provider())
	}
	return nil
}
