// Package httptpl is the provider type "http": any REST API that issues keys,
// described entirely in configuration. Each request (create, verify, revoke,
// list, and the root credential's create, verify and revoke) is a method, a
// path template, optional body and header templates; values are read from
// the JSON responses by gjson paths.
//
// Templates are text/template with a fixed set of variables per request and
// three functions (json, urlquery, join). Every value a template prints is
// escaped for the place it lands in (URL path or query, JSON value or JSON
// string, form field, header value), so a key name, scope or parameter can
// never change a request's structure. See docs/providers/http.md.
package httptpl

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

func init() {
	clients.Register(&clients.Type{
		Name:            "http",
		Description:     "Any REST API that issues keys, described by request templates and JSON paths.",
		BaseURLRequired: true,
		Fields:          fields,
		// The most an http provider can do; each instance reports what its
		// configuration enables through Provider.Capabilities.
		Capabilities: clients.Capabilities{Expiry: true, ListByName: true, RootRotation: true},
		Validate: func(f map[string]string) error {
			_, err := validate(f)
			return err
		},
		New: New,
	})
}

// New builds an http provider from its configuration.
func New(cfg clients.Config) (clients.Provider, error) {
	c, err := validate(cfg.Fields)
	if err != nil {
		return nil, err
	}
	p := &provider{
		name:     cfg.Name,
		base:     cfg.BaseURL,
		basePath: basePath(cfg.BaseURL),
		http:     cfg.HTTP,
		c:        c,
		root:     rootVars{ID: strings.TrimSpace(cfg.Fields["root_id"]), Secret: cfg.Fields["root_secret"]},
		now:      time.Now,
	}
	p.params, p.anyParam = usedParams(c)
	p.caps = clients.Capabilities{
		Expiry:       p.createUsesExpiry(),
		ListByName:   c.has("list_path"),
		RootRotation: c.has("root_create_path"),
		NativeRoll:   c.has("root_create_path") && c.roll,
	}
	return p, nil
}

type provider struct {
	name string
	base string
	// basePath is base_url's path, which prefixes every request path.
	basePath string
	http     *httpx.Client
	c        *config
	root     rootVars
	caps     clients.Capabilities
	params   []string
	anyParam bool
	now      func() time.Time
}

var _ clients.Provider = (*provider)(nil)

func (p *provider) Capabilities() clients.Capabilities { return p.caps }

// usedParams lists the parameters the create templates name.
func usedParams(c *config) ([]string, bool) {
	set := map[string]bool{}
	anyParam := false
	for _, field := range []string{"create_path", "create_body", "create_headers"} {
		tp := c.tpl[field]
		anyParam = anyParam || tp.anyParam
		for k := range tp.params {
			set[k] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, anyParam
}

// createUsesExpiry reports whether the create request changes with the
// requested expiry, i.e. whether the templates pass it to the API.
func (p *provider) createUsesExpiry() bool {
	with := sampleVars(stepCreate, true).(createVars)
	without := with
	without.Key.ExpiresAt, without.Key.ExpiresUnix, without.Key.TTLSeconds = "", 0, 0
	auth := authVars{Root: p.root}
	a, err1 := p.c.build(reqCreate, with, auth)
	b, err2 := p.c.build(reqCreate, without, auth)
	return err1 == nil && err2 == nil && !a.equal(b)
}

// send renders and sends one request. secrets (the credentials in data)
// and every rendered value derived from them are redacted from any error:
// the request carries them as Secrets, and its path as shown with those
// values replaced, so that every error built from it (by httpx, p.fail or
// p.shapeError) leaves them out.
func (p *provider) send(ctx context.Context, spec requestSpec, data, authData any, secrets []string) (httpx.Request, *httpx.Response, error) {
	b, err := p.c.build(spec, data, authData)
	if err != nil {
		return httpx.Request{}, nil, fmt.Errorf("provider %q: %s: %s", p.name, spec.op, httpx.Redact(err.Error(), secrets...))
	}
	req := httpx.Request{Op: spec.op, Method: b.method, URL: p.base + b.path, Header: b.header, Body: b.body,
		Secrets:   append(append([]string{}, secrets...), b.redact.secrets...),
		Carriers:  b.redact.carriers,
		ShownPath: p.basePath + b.redact.shownPath,
		// A roll whose answer was lost must not be repeated blindly.
		NoRetry: spec.op == reqRootCreate.op && p.c.roll}
	resp, err := p.http.Do(ctx, req)
	return req, resp, httpx.RedactError(err, secrets...)
}

func basePath(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.EscapedPath(), "/")
}

func ok(resp *httpx.Response) bool { return resp.Status >= 200 && resp.Status < 300 }

// fail is the error for an unexpected status.
func (p *provider) fail(req httpx.Request, resp *httpx.Response, secrets []string) error {
	return p.http.StatusError(req, resp, errorMessage(resp.Body), secrets...)
}

// shapeError is the error for a 2xx response that lacks what Vault needs.
func (p *provider) shapeError(req httpx.Request, resp *httpx.Response, msg string) error {
	return p.http.StatusError(req, resp, msg)
}

// ValidateKeyRequest rejects parameters no create template uses.
func (p *provider) ValidateKeyRequest(kr clients.KeyRequest) error {
	return p.checkParams(kr.Parameters)
}

func (p *provider) CreateKey(ctx context.Context, kr clients.KeyRequest) (clients.Key, error) {
	if err := p.checkParams(kr.Parameters); err != nil {
		return clients.Key{}, err
	}
	var exp time.Time
	if p.caps.Expiry {
		exp = kr.ExpiresAt
	}
	at, unix, ttl := expiryVars(exp, p.now())
	data := createVars{
		Key:        createKey{Name: kr.Name, ExpiresAt: at, ExpiresUnix: unix, TTLSeconds: ttl},
		Scopes:     append([]string{}, kr.Scopes...),
		Parameters: map[string]string{},
		Root:       p.root,
	}
	for k, v := range kr.Parameters {
		data.Parameters[k] = v
	}
	secrets := []string{p.root.Secret}
	req, resp, err := p.send(ctx, reqCreate, data, authVars{Root: p.root}, secrets)
	if err != nil {
		return clients.Key{}, err
	}
	if !ok(resp) {
		return clients.Key{}, p.fail(req, resp, secrets)
	}
	if !validJSON(resp.Body) {
		return clients.Key{}, p.shapeError(req, resp, "response is not JSON; the key, if created, is found by name")
	}
	id, err := extractString(resp.Body, p.c.f["key_id_path"], false)
	if err != nil {
		return clients.Key{}, p.shapeError(req, resp, "key_id_path: "+err.Error()+"; the key, if created, is found by name")
	}
	key := clients.Key{ID: id, Name: kr.Name}
	// What follows can fail after the key exists: revoke it then, so a
	// failed create leaves nothing behind.
	abandon := func(msg string) (clients.Key, error) {
		err := p.shapeError(req, resp, msg)
		if rerr := p.RevokeKey(ctx, id); rerr != nil {
			// The revoke's error may echo the new key's secret, which only
			// this call knows.
			return clients.Key{}, fmt.Errorf("%w; revoking the new key %s failed too: %s", err, shown(id, secrets...),
				httpx.Redact(rerr.Error(), key.Secret))
		}
		return clients.Key{}, fmt.Errorf("%w; the new key %s was revoked", err, shown(id, secrets...))
	}
	if key.Secret, err = extractString(resp.Body, p.c.f["key_secret_path"], true); err != nil {
		return abandon("key_secret_path: " + err.Error())
	}
	if path := strings.TrimSpace(p.c.f["key_expires_path"]); path != "" {
		if key.ExpiresAt, err = extractTime(resp.Body, path); err != nil {
			return abandon("key_expires_path: " + httpx.Redact(err.Error(), key.Secret))
		}
	}
	if key.ExpiresAt.IsZero() && !exp.IsZero() {
		key.ExpiresAt = exp.UTC().Truncate(time.Second)
	}
	return key, nil
}

// shown quotes an id read from a response for an error: a provider could
// have echoed a credential in its place.
func shown(id string, secrets ...string) string {
	return strconv.Quote(httpx.Redact(id, secrets...))
}

// checkParams rejects parameters no create template uses.
func (p *provider) checkParams(params map[string]string) error {
	if p.anyParam {
		return nil
	}
	var unknown []string
	for k := range params {
		if !contains(p.params, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	known := "none"
	if len(p.params) > 0 {
		known = strings.Join(p.params, ", ")
	}
	return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf(
		"unknown parameter %q: the provider's create templates use %s", strings.Join(unknown, `", "`), known)}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	at, unix, ttl := expiryVars(key.ExpiresAt, p.now())
	data := verifyVars{
		Key:  issuedKey{ID: key.ID, Name: key.Name, Secret: key.Secret, ExpiresAt: at, ExpiresUnix: unix, TTLSeconds: ttl},
		Root: rootRef{ID: p.root.ID},
	}
	secrets := []string{key.Secret, p.root.Secret}
	req, resp, err := p.send(ctx, reqVerify, data, data, secrets)
	if err != nil {
		return err
	}
	if !ok(resp) {
		return p.fail(req, resp, secrets)
	}
	return nil
}

func (p *provider) RevokeKey(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("provider %q: revoke: no key id", p.name)
	}
	secrets := []string{p.root.Secret}
	req, resp, err := p.send(ctx, reqRevoke, revokeVars{Key: keyRef{ID: id}, Root: p.root}, authVars{Root: p.root}, secrets)
	if err != nil {
		return err
	}
	if ok(resp) || p.c.gone[resp.Status] {
		return nil
	}
	return p.fail(req, resp, secrets)
}

func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	if !p.caps.ListByName {
		return nil, clients.ErrNotSupported
	}
	secrets := []string{p.root.Secret}
	req, resp, err := p.send(ctx, reqList, namedVars{Key: namedKey{Name: name}, Root: p.root}, authVars{Root: p.root}, secrets)
	if err != nil {
		return nil, err
	}
	if !ok(resp) {
		return nil, p.fail(req, resp, secrets)
	}
	items, err := extractItems(resp.Body, p.c.f["list_items_path"])
	if err != nil {
		return nil, p.shapeError(req, resp, "list_items_path: "+err.Error())
	}
	var keys []clients.Key
	for i, item := range items {
		n, err := extractString(item, p.c.f["list_name_path"], false)
		if err != nil || n != name {
			continue
		}
		id, err := extractString(item, p.c.f["list_id_path"], false)
		if err != nil {
			return nil, p.shapeError(req, resp, fmt.Sprintf("list_id_path: item %d: %s", i, err))
		}
		keys = append(keys, clients.Key{ID: id, Name: n})
	}
	return keys, nil
}

// RootID is root_id when configured; otherwise, with root_verify_id_path,
// the id the root verify request reports for the configured root.
func (p *provider) RootID(ctx context.Context) (string, error) {
	if p.root.ID != "" {
		return p.root.ID, nil
	}
	idPath := strings.TrimSpace(p.c.f["root_verify_id_path"])
	if idPath == "" || !p.c.has("root_verify_path") {
		return "", nil
	}
	secrets := []string{p.root.Secret}
	req, resp, err := p.send(ctx, reqRootVerify, rootVerifyVars{NewRoot: p.root}, authVars{Root: p.root}, secrets)
	if err != nil {
		return "", err
	}
	if !ok(resp) {
		return "", p.fail(req, resp, secrets)
	}
	id, err := extractString(resp.Body, idPath, false)
	if err != nil {
		return "", p.shapeError(req, resp, "root_verify_id_path: "+err.Error())
	}
	return id, nil
}

func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	if !p.caps.RootRotation {
		return clients.Root{}, clients.ErrNotSupported
	}
	secrets := []string{p.root.Secret}
	req, resp, err := p.send(ctx, reqRootCreate, namedVars{Key: namedKey{Name: name}, Root: p.root}, authVars{Root: p.root}, secrets)
	if err != nil {
		return clients.Root{}, err
	}
	if !ok(resp) {
		return clients.Root{}, p.fail(req, resp, secrets)
	}
	lost := ""
	if p.c.roll {
		lost = "; with root_roll=true the old root may already be invalid: recover it by hand"
	}
	if !validJSON(resp.Body) {
		return clients.Root{}, p.shapeError(req, resp, "response is not JSON"+lost)
	}
	secret, err := extractString(resp.Body, p.c.f["root_secret_path"], true)
	if err != nil {
		err = p.shapeError(req, resp, "root_secret_path: "+err.Error()+lost)
		if p.c.roll {
			return clients.Root{}, err
		}
		// Create-then-delete: the old root still works, so delete the new
		// one we cannot use.
		newID, idErr := extractString(resp.Body, p.c.f["root_id_path"], false)
		if idErr != nil || newID == p.root.ID {
			return clients.Root{}, fmt.Errorf("%w; a new root credential named %q may exist at the provider", err, name)
		}
		if rerr := p.revokeRootByID(ctx, newID); rerr != nil {
			return clients.Root{}, fmt.Errorf("%w; revoking the new root %s failed too: %v", err, shown(newID, secrets...), rerr)
		}
		return clients.Root{}, fmt.Errorf("%w; the new root %s was revoked", err, shown(newID, secrets...))
	}
	secrets = append(secrets, secret)
	id := p.root.ID // a rolled root usually keeps its id
	if path := strings.TrimSpace(p.c.f["root_id_path"]); path != "" {
		if id, err = extractString(resp.Body, path, false); err != nil {
			return clients.Root{}, p.shapeError(req, resp, "root_id_path: "+httpx.Redact(err.Error(), secrets...)+
				"; a new root credential named "+fmt.Sprintf("%q", name)+" may exist at the provider")
		}
	}
	return clients.Root{ID: id, Fields: map[string]string{"root_secret": secret, "root_id": id}}, nil
}

func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	if !p.c.has("root_verify_path") {
		return clients.ErrNotSupported
	}
	nr := rootVars{ID: root.ID, Secret: root.Fields["root_secret"]}
	if nr.Secret == "" {
		return fmt.Errorf("provider %q: verify_root: the new root has no root_secret", p.name)
	}
	secrets := []string{nr.Secret, p.root.Secret}
	req, resp, err := p.send(ctx, reqRootVerify, rootVerifyVars{NewRoot: nr}, authVars{Root: nr}, secrets)
	if err != nil {
		return err
	}
	if !ok(resp) {
		return p.fail(req, resp, secrets)
	}
	if idPath := strings.TrimSpace(p.c.f["root_verify_id_path"]); idPath != "" && nr.ID != "" {
		got, err := extractString(resp.Body, idPath, false)
		if err != nil {
			return p.shapeError(req, resp, "root_verify_id_path: "+httpx.Redact(err.Error(), secrets...))
		}
		if got != nr.ID {
			return p.shapeError(req, resp, fmt.Sprintf("root_verify_id_path: the new root answers as %q, not %q",
				httpx.Redact(got, secrets...), nr.ID))
		}
	}
	return nil
}

func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	if !p.caps.RootRotation {
		return clients.ErrNotSupported
	}
	if p.c.roll {
		return nil // the roll retired the old root already
	}
	if oldID == "" {
		return fmt.Errorf("provider %q: revoke_root: the old root's id is unknown (set root_id or root_verify_id_path); revoke the old root credential by hand", p.name)
	}
	if oldID == p.root.ID {
		return fmt.Errorf("provider %q: revoke_root: refusing to revoke %q, the root credential in use", p.name, oldID)
	}
	return p.revokeRootByID(ctx, oldID)
}

// revokeRootByID deletes the root credential id using the configured root.
func (p *provider) revokeRootByID(ctx context.Context, id string) error {
	secrets := []string{p.root.Secret}
	data := rootRevokeVars{Root: rootRef{ID: id}, NewRoot: p.root}
	req, resp, err := p.send(ctx, reqRootRevoke, data, authVars{Root: p.root}, secrets)
	if err != nil {
		return err
	}
	if ok(resp) || p.c.gone[resp.Status] {
		return nil
	}
	return p.fail(req, resp, secrets)
}
