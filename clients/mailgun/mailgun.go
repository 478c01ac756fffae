// Package mailgun issues Mailgun RBAC API keys (/v1/keys): each key has a
// role (admin, basic, sending, developer, support) and a kind (a user key,
// or a domain key limited to one sending domain), and dynamic keys an
// expiration. Requests are multipart forms with Basic auth (user "api").
// The root is an admin user key, rotated create-verify-delete; rotation
// needs the root's key id (api_key_id), which the key itself cannot tell.
package mailgun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

// TypeName is the provider type.
const TypeName = "mailgun"

const (
	fieldAPIKey   = "api_key"
	fieldAPIKeyID = "api_key_id"

	paramRole   = "role"
	paramKind   = "kind"
	paramDomain = "domain_name"
)

var capabilities = clients.Capabilities{Expiry: true, ListByName: true, RootRotation: true}

var (
	roles = []string{"admin", "basic", "sending", "developer", "support"}
	// idPattern: key ids such as "f2153fd0-f1277777".
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
	domainPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$`)
)

func init() {
	clients.Register(&clients.Type{
		Name:           TypeName,
		Description:    "Mailgun: issues RBAC API keys (user or domain keys with a role and an expiration) and rotates the admin key it uses.",
		DefaultBaseURL: "https://api.mailgun.net",
		Fields: []clients.Field{
			{
				Name:        fieldAPIKey,
				Description: "Mailgun API key with the admin role (sent as Basic auth user \"api\"); it creates and deletes keys. Root rotation replaces it.",
				Required:    true,
				Sensitive:   true,
			},
			{
				Name: fieldAPIKeyID,
				Description: "Id of api_key in Mailgun's key list (API Security page); needed to delete it after root rotation " +
					"and kept up to date by it. Without it, root rotation refuses to start.",
			},
		},
		Capabilities: capabilities,
		Validate: func(fields map[string]string) error {
			if strings.TrimSpace(fields[fieldAPIKey]) == "" {
				return &clients.FieldError{Field: fieldAPIKey, Message: "is required"}
			}
			if v := fields[fieldAPIKeyID]; v != "" && !idPattern.MatchString(v) {
				return &clients.FieldError{Field: fieldAPIKeyID, Message: fmt.Sprintf("must be a Mailgun key id such as f2153fd0-f1277777 (got %q)", v)}
			}
			return nil
		},
		New: func(cfg clients.Config) (clients.Provider, error) {
			return &provider{http: cfg.HTTP, base: cfg.BaseURL, key: strings.TrimSpace(cfg.Fields[fieldAPIKey]), keyID: cfg.Fields[fieldAPIKeyID]}, nil
		},
	})
}

type provider struct {
	http       *httpx.Client
	base       string
	key, keyID string
}

type apiKey struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Secret      string `json:"secret"`
	Role        string `json:"role"`
	Kind        string `json:"kind"`
	DomainName  string `json:"domain_name"`
	CreatedAt   string `json:"created_at"`
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// ValidateKeyRequest: no scopes; parameters role (required), kind (user or
// domain; domain when domain_name is given) and domain_name.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) > 0 {
		return &clients.FieldError{Field: "scopes", Message: "mailgun keys take no scopes: set parameters role (and kind, domain_name)"}
	}
	for k := range req.Parameters {
		if k != paramRole && k != paramKind && k != paramDomain {
			return clients.NoParameters(clients.KeyRequest{Parameters: map[string]string{k: ""}}, "mailgun keys take role, kind and domain_name")
		}
	}
	if r := req.Parameters[paramRole]; !slices.Contains(roles, r) {
		return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("role is required: one of %s (got %q)", strings.Join(roles, ", "), r)}
	}
	kind, domain := kindOf(req.Parameters)
	switch {
	case kind != "user" && kind != "domain":
		return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("kind must be user or domain (got %q; web keys are for browsers and live a day at most)", kind)}
	case kind == "domain" && !domainPattern.MatchString(domain):
		return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("a domain key needs domain_name, a sending domain such as mg.example.com (got %q)", domain)}
	case kind == "user" && domain != "":
		return &clients.FieldError{Field: "parameters", Message: "domain_name applies to domain keys only (kind=domain)"}
	}
	return nil
}

// kindOf is the key's kind: as given, else domain when domain_name is set.
func kindOf(params map[string]string) (kind, domain string) {
	kind, domain = params[paramKind], params[paramDomain]
	if kind == "" {
		kind = "user"
		if domain != "" {
			kind = "domain"
		}
	}
	return kind, domain
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("mailgun: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	kind, domain := kindOf(req.Parameters)
	form := [][2]string{{"role", req.Parameters[paramRole]}, {"kind", kind}, {"description", req.Name}}
	if domain != "" {
		form = append(form, [2]string{"domain_name", domain})
	}
	var expires time.Time
	if !req.ExpiresAt.IsZero() {
		secs := int(time.Until(req.ExpiresAt).Seconds())
		if secs < 1 {
			return clients.Key{}, fmt.Errorf("provider %q: create: the key would expire before it is made", p.http.Provider())
		}
		form = append(form, [2]string{"expiration", strconv.Itoa(secs)})
		expires = time.Now().Add(time.Duration(secs) * time.Second).UTC().Truncate(time.Second)
	}
	k, err := p.create(ctx, "create", form)
	if err != nil {
		return clients.Key{}, err
	}
	extra := map[string]string{"role": req.Parameters[paramRole], "kind": kind}
	if domain != "" {
		extra["domain_name"] = domain
	}
	return clients.Key{ID: k.ID, Name: req.Name, Secret: k.Secret, ExpiresAt: expires, Extra: extra}, nil
}

func (p *provider) create(ctx context.Context, op string, form [][2]string) (apiKey, error) {
	var out struct {
		Key apiKey `json:"key"`
	}
	if err := p.form(ctx, op, "/v1/keys", form, &out); err != nil {
		return apiKey{}, err
	}
	k := out.Key
	if !idPattern.MatchString(k.ID) {
		return apiKey{}, fmt.Errorf("provider %q: %s: Mailgun's response has no usable key id; delete the key by hand if it exists", p.http.Provider(), op)
	}
	if k.Secret == "" {
		_ = p.deleteKey(ctx, op, k.ID)
		return apiKey{}, fmt.Errorf("provider %q: %s: Mailgun's response has no key secret", p.http.Provider(), op)
	}
	return k, nil
}

// VerifyKey lists domains with the key: a 403 (a domain key may not list
// domains) still proves that it authenticates; a 401 does not.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.Secret == "" {
		return errors.New("mailgun: verify: the key has no secret")
	}
	err := p.call(ctx, "verify", http.MethodGet, "/v3/domains?limit=1", key.Secret, nil)
	if httpx.Forbidden(err) {
		return nil
	}
	return err
}

func (p *provider) RevokeKey(ctx context.Context, id string) error {
	return p.deleteKey(ctx, "revoke", id)
}

func (p *provider) deleteKey(ctx context.Context, op, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("mailgun: %s: %q is not a key id", op, id)
	}
	err := p.call(ctx, op, http.MethodDelete, "/v1/keys/"+id, p.key, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

func (p *provider) list(ctx context.Context, op string) ([]apiKey, error) {
	var out struct {
		Items []apiKey `json:"items"`
	}
	if err := p.call(ctx, op, http.MethodGet, "/v1/keys", p.key, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the account's keys (Mailgun answers them all at once) for
// tidy: Name is the description, CreatedAt is created_at (UTC, written
// without a zone). A root key is listed under the id RootID returns when
// api_key_id is set.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	keys, err := p.list(ctx, "list")
	if err != nil {
		return nil, err
	}
	var out []clients.Key
	for _, k := range keys {
		if idPattern.MatchString(k.ID) {
			out = append(out, clients.Key{ID: k.ID, Name: k.Description, CreatedAt: parseTime(k.CreatedAt)})
		}
	}
	return out, nil
}

// parseTime reads Mailgun's times: RFC 3339, or UTC without a zone.
func parseTime(s string) time.Time {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t
	}
	t, _ := time.ParseInLocation("2006-01-02T15:04:05", s, time.UTC)
	return t
}

// RootID lists keys with the root (only an admin key may) and returns
// api_key_id when that key is in the list, else "".
func (p *provider) RootID(ctx context.Context) (string, error) {
	keys, err := p.list(ctx, "verify_root")
	if err != nil {
		return "", err
	}
	for _, k := range keys {
		if p.keyID != "" && k.ID == p.keyID {
			return k.ID, nil
		}
	}
	return "", nil
}

// CreateRoot creates an admin user key. It refuses unless api_key_id names
// a key in the list: the old key could not be deleted afterwards.
func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	id, err := p.RootID(ctx)
	if err != nil {
		return clients.Root{}, err
	}
	if id == "" {
		return clients.Root{}, fmt.Errorf("provider %q: root rotation needs api_key_id, the id of the configured key in Mailgun's key "+
			"list, to delete it afterwards; it is not set, or no key in the list has it", p.http.Provider())
	}
	k, err := p.create(ctx, "create_root", [][2]string{{"role", "admin"}, {"kind", "user"}, {"description", name}})
	if err != nil {
		return clients.Root{}, err
	}
	return clients.Root{ID: k.ID, Fields: map[string]string{fieldAPIKey: k.Secret, fieldAPIKeyID: k.ID}}, nil
}

// VerifyRoot lists keys with the new key, which only an admin key may.
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	secret := root.Fields[fieldAPIKey]
	if secret == "" {
		return errors.New("mailgun: verify_root: the new root has no key")
	}
	return p.call(ctx, "verify_root", http.MethodGet, "/v1/keys", secret, nil)
}

// RevokeRoot deletes the replaced key (with the new root).
func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	return p.deleteKey(ctx, "revoke_root", oldID)
}

func (p *provider) request(op, method, path, secret string) httpx.Request {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Accept": {"application/json"}}}
	req := &http.Request{Header: r.Header}
	req.SetBasicAuth("api", secret)
	return r
}

func (p *provider) call(ctx context.Context, op, method, path, secret string, out any) error {
	_, err := p.http.Call(ctx, p.request(op, method, path, secret), out, httpx.Expect{Message: httpx.MessageField, Redact: []string{p.key, secret}})
	return err
}

// form posts a multipart form with the root key.
func (p *provider) form(ctx context.Context, op, path string, fields [][2]string, out any) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return fmt.Errorf("provider %q: %s: encoding the form: %w", p.http.Provider(), op, err)
		}
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("provider %q: %s: encoding the form: %w", p.http.Provider(), op, err)
	}
	r := p.request(op, http.MethodPost, path, p.key)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.Body = buf.Bytes()
	_, err := p.http.Call(ctx, r, out, httpx.Expect{Message: httpx.MessageField, Redact: []string{p.key}})
	return err
}
