// Package confluent issues Confluent Cloud API keys through the IAM v2 API:
// each key belongs to an owner (a service account or user) and is either a
// Cloud API key or scoped to one resource (a Kafka cluster, a Schema
// Registry…). A create is answered 202 Accepted with a Location; the secret
// is only in that answer. A 402 means the organization's API key quota is
// exhausted: it is reported as such and not retried. The root is a Cloud
// API key, rotated create-verify-delete.
package confluent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

// TypeName is the provider type.
const TypeName = "confluent"

const (
	fieldAPIKey    = "cloud_api_key"
	fieldAPISecret = "cloud_api_secret"

	paramOwner       = "owner"
	paramResource    = "resource"
	paramDescription = "description"

	keysPath = "/iam/v2/api-keys"
	pageSize = 100
	maxPages = 100
)

var capabilities = clients.Capabilities{ListByName: true, RootRotation: true}

var (
	// idPattern: API key ids are upper-case letters and digits.
	idPattern = regexp.MustCompile(`^[A-Z0-9]{1,64}$`)
	// ownerPattern: service accounts (sa-…), users (u-…), identity pools (pool-…).
	ownerPattern = regexp.MustCompile(`^(sa|u|pool)-[A-Za-z0-9]+$`)
	// resourcePattern: a resource id such as lkc-abc123 or lsrc-xyz.
	resourcePattern = regexp.MustCompile(`^[a-z]+-[A-Za-z0-9]+$`)
)

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "Confluent Cloud: issues API keys for a service account or user (Cloud API keys or keys of one " +
			"resource such as a Kafka cluster) and rotates the Cloud API key it uses.",
		DefaultBaseURL: "https://api.confluent.cloud",
		Fields: []clients.Field{
			{
				Name: fieldAPIKey,
				Description: "Cloud API key (the Basic user name) Vault uses to manage API keys; its owner needs the " +
					"OrganizationAdmin role (or the rights to create keys for every owner a role names). It is the root's id, " +
					"not a secret; root rotation replaces it.",
				Required: true,
			},
			{
				Name:        fieldAPISecret,
				Description: "Secret of that Cloud API key (the Basic password). Root rotation replaces it.",
				Required:    true,
				Sensitive:   true,
			},
		},
		Capabilities: capabilities,
		Validate: func(fields map[string]string) error {
			for _, f := range []string{fieldAPIKey, fieldAPISecret} {
				if strings.TrimSpace(fields[f]) == "" {
					return &clients.FieldError{Field: f, Message: "is required"}
				}
			}
			if !idPattern.MatchString(strings.TrimSpace(fields[fieldAPIKey])) {
				return &clients.FieldError{Field: fieldAPIKey, Message: "must be a Confluent Cloud API key id (upper-case letters and digits)"}
			}
			return nil
		},
		New: func(cfg clients.Config) (clients.Provider, error) {
			return &provider{http: cfg.HTTP, base: cfg.BaseURL,
				key: strings.TrimSpace(cfg.Fields[fieldAPIKey]), secret: strings.TrimSpace(cfg.Fields[fieldAPISecret])}, nil
		},
	})
}

type provider struct {
	http        *httpx.Client
	base        string
	key, secret string
}

// apiKey is an API key object; Spec.Secret is set only in a create's answer.
type apiKey struct {
	ID   string `json:"id"`
	Spec struct {
		Secret      string `json:"secret"`
		DisplayName string `json:"display_name"`
		Owner       struct {
			ID string `json:"id"`
		} `json:"owner"`
		Resource *struct {
			ID   string `json:"id"`
			Kind string `json:"kind"`
		} `json:"resource"`
	} `json:"spec"`
	Metadata struct {
		CreatedAt string `json:"created_at"`
	} `json:"metadata"`
}

// resourceID is the key's resource, "" for a Cloud API key.
func (k apiKey) resourceID() string {
	if k.Spec.Resource == nil || k.Spec.Resource.Kind == "Cloud" || k.Spec.Resource.ID == "cloud" {
		return ""
	}
	return k.Spec.Resource.ID
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

// ValidateKeyRequest: no scopes (a key carries its owner's role bindings);
// parameters owner (required), resource and description.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) > 0 {
		return &clients.FieldError{Field: "scopes", Message: "confluent API keys take no scopes: they carry the role bindings of " +
			"their owner; set parameters owner (and resource)"}
	}
	for k := range req.Parameters {
		if k != paramOwner && k != paramResource && k != paramDescription {
			return clients.NoParameters(clients.KeyRequest{Parameters: map[string]string{k: ""}},
				"confluent keys take owner, resource and description")
		}
	}
	if o := req.Parameters[paramOwner]; !ownerPattern.MatchString(o) {
		return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("owner is required: the service account (sa-…), user (u-…) "+
			"or identity pool (pool-…) that owns the keys (got %q)", o)}
	}
	if r, ok := req.Parameters[paramResource]; ok && !resourcePattern.MatchString(r) {
		return &clients.FieldError{Field: "parameters", Message: fmt.Sprintf("resource must be a resource id such as lkc-abc123 "+
			"(leave it out for a Cloud API key; got %q)", r)}
	}
	return nil
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("confluent: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	k, err := p.create(ctx, "create", req.Name, req.Parameters[paramOwner], req.Parameters[paramResource], req.Parameters[paramDescription])
	if err != nil {
		return clients.Key{}, err
	}
	extra := map[string]string{"owner": k.Spec.Owner.ID, "resource": k.resourceID()}
	if extra["owner"] == "" {
		extra["owner"] = req.Parameters[paramOwner]
	}
	return clients.Key{ID: k.ID, Name: req.Name, Secret: k.Spec.Secret, Extra: extra}, nil
}

// create posts a key. The answer is 202 Accepted with a Location; the id is
// read from the body, or else from the Location, so that a key whose answer
// lacks its secret can still be deleted again.
func (p *provider) create(ctx context.Context, op, name, owner, resource, desc string) (apiKey, error) {
	spec := map[string]any{"display_name": name, "owner": map[string]any{"id": owner}}
	if resource != "" {
		spec["resource"] = map[string]any{"id": resource}
	}
	if desc != "" {
		spec["description"] = desc
	}
	var k apiKey
	resp, err := p.call(ctx, op, http.MethodPost, keysPath, p.key, p.secret, map[string]any{"spec": spec}, &k)
	if err != nil {
		var he *httpx.Error
		if errors.As(err, &he) && he.Status == http.StatusPaymentRequired {
			return apiKey{}, fmt.Errorf("%w: the organization's API key quota is exhausted; delete unused API keys or ask Confluent "+
				"for a higher limit (not retried)", err)
		}
		return apiKey{}, err
	}
	if k.ID == "" {
		if loc, err := url.Parse(resp.Header.Get("Location")); err == nil {
			k.ID = path.Base(loc.Path)
		}
	}
	if !idPattern.MatchString(k.ID) {
		return apiKey{}, fmt.Errorf("provider %q: %s: Confluent's response has no usable API key id; delete the key named %q by hand if it exists",
			p.http.Provider(), op, name)
	}
	if k.Spec.Secret == "" {
		_ = p.deleteKey(ctx, op, k.ID)
		return apiKey{}, fmt.Errorf("provider %q: %s: Confluent's response has no API key secret", p.http.Provider(), op)
	}
	return k, nil
}

// VerifyKey: a Cloud API key lists API keys with its own credentials (a 403
// still proves it authenticates: its owner may lack IAM rights); a key of a
// resource cannot call the Cloud API, so the root reads it instead.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	if key.ID == "" || key.Secret == "" {
		return errors.New("confluent: verify: the key has no id or secret")
	}
	if !idPattern.MatchString(key.ID) {
		return fmt.Errorf("confluent: verify: %q is not an API key id", key.ID)
	}
	if key.Extra["resource"] != "" {
		_, err := p.call(ctx, "verify", http.MethodGet, keysPath+"/"+key.ID, p.key, p.secret, nil, nil)
		return err
	}
	_, err := p.call(ctx, "verify", http.MethodGet, keysPath+"?page_size=1", key.ID, key.Secret, nil, nil)
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
		return fmt.Errorf("confluent: %s: %q is not an API key id", op, id)
	}
	_, err := p.call(ctx, op, http.MethodDelete, keysPath+"/"+id, p.key, p.secret, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// list pages through the API keys (of owner, when given) by page_token.
func (p *provider) list(ctx context.Context, owner string) ([]apiKey, error) {
	var all []apiKey
	token := ""
	for i := 0; i < maxPages; i++ {
		q := url.Values{"page_size": {strconv.Itoa(pageSize)}}
		if owner != "" {
			q.Set("spec.owner", owner)
		}
		if token != "" {
			q.Set("page_token", token)
		}
		var pg struct {
			Data     []apiKey `json:"data"`
			Metadata struct {
				Next string `json:"next"`
			} `json:"metadata"`
		}
		if _, err := p.call(ctx, "list", http.MethodGet, keysPath+"?"+q.Encode(), p.key, p.secret, nil, &pg); err != nil {
			return nil, err
		}
		all = append(all, pg.Data...)
		next := ""
		if u, err := url.Parse(pg.Metadata.Next); err == nil {
			next = u.Query().Get("page_token")
		}
		if next == "" || next == token {
			break
		}
		token = next
	}
	return all, nil
}

func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the organization's API keys the root may see, every page,
// for tidy: Name is display_name, CreatedAt is metadata.created_at. The
// root key is listed under the id RootID returns.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	keys, err := p.list(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []clients.Key
	for _, k := range keys {
		// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
		if idPattern.MatchString(k.ID) {
			created, _ := time.Parse(time.RFC3339, k.Metadata.CreatedAt)
			out = append(out, clients.Key{ID: k.ID, Name: k.Spec.DisplayName, CreatedAt: created,
				Extra: map[string]string{"owner": k.Spec.Owner.ID, "resource": k.resourceID()}})
		}
	}
	return out, nil
}

// RootID is the Cloud API key itself: its id is the Basic user name.
func (p *provider) RootID(ctx context.Context) (string, error) {
	var k apiKey
	if _, err := p.call(ctx, "verify_root", http.MethodGet, keysPath+"/"+p.key, p.key, p.secret, nil, &k); err != nil {
		return "", err
	}
	return p.key, nil
}

// CreateRoot creates a Cloud API key for the root's owner.
func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	var own apiKey
	if _, err := p.call(ctx, "create_root", http.MethodGet, keysPath+"/"+p.key, p.key, p.secret, nil, &own); err != nil {
		return clients.Root{}, err
	}
	if !ownerPattern.MatchString(own.Spec.Owner.ID) {
		return clients.Root{}, fmt.Errorf("provider %q: create_root: Confluent did not say who owns the configured API key", p.http.Provider())
	}
	if own.resourceID() != "" {
		return clients.Root{}, fmt.Errorf("provider %q: create_root: the configured API key belongs to resource %s, not the Cloud API",
			p.http.Provider(), own.resourceID())
	}
	k, err := p.create(ctx, "create_root", name, own.Spec.Owner.ID, "", "")
	if err != nil {
		return clients.Root{}, err
	}
	return clients.Root{ID: k.ID, Fields: map[string]string{fieldAPIKey: k.ID, fieldAPISecret: k.Spec.Secret}}, nil
}

// VerifyRoot lists API keys with the new key: what Vault uses it for.
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	id, secret := root.Fields[fieldAPIKey], root.Fields[fieldAPISecret]
	if id == "" || secret == "" {
		return errors.New("confluent: verify_root: the new root lacks its key or secret")
	}
	if !idPattern.MatchString(id) {
		return fmt.Errorf("confluent: verify_root: %q is not an API key id", id)
	}
	_, err := p.call(ctx, "verify_root", http.MethodGet, keysPath+"?page_size=1", id, secret, nil, nil)
	return err
}

// RevokeRoot deletes the replaced key (with the new root).
func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	return p.deleteKey(ctx, "revoke_root", oldID)
}

func (p *provider) call(ctx context.Context, op, method, path, user, pass string, in, out any) (*httpx.Response, error) {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{}}
	r.Header.Set("Authorization", "Basic "+basic(user, pass))
	return p.http.JSON(ctx, r, in, out, httpx.Expect{Message: errorMessage, Redact: []string{p.secret, pass}, AllowEmpty: method == http.MethodDelete})
}

func basic(user, pass string) string {
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(user, pass)
	v, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Basic ")
	return v
}

// errorMessage reads Confluent's {"errors":[{status, code, title, detail}]}.
func errorMessage(body []byte) string {
	var e struct {
		Errors []struct {
			Code   string `json:"code"`
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if text, ok := httpx.ErrorBody(body, &e); !ok {
		return text
	}
	var parts []string
	for _, x := range e.Errors {
		msg := x.Detail
		if msg == "" {
			msg = x.Title
		}
		if x.Code != "" {
			msg += " (" + x.Code + ")"
		}
		parts = append(parts, strings.TrimSpace(msg))
	}
	return strings.Join(parts, "; ")
}
