// Package mongodbatlas issues MongoDB Atlas organization API keys: each key
// is a key pair (public key and private key) created in one organization
// with the role's organization roles. Atlas authenticates with HTTP Digest;
// the digest exchange is github.com/icholy/digest's transport, wrapped
// under the shared HTTP layer (httpx.Client.WithTransport) so that retries,
// Retry-After and error redaction apply to it like to any other type. The
// root is an organization API key pair, rotated create-verify-delete.
package mongodbatlas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/icholy/digest"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/keylist"
)

// TypeName is the provider type.
const TypeName = "mongodbatlas"

// MediaType is the versioned media type of the Atlas Administration API v2.
const MediaType = "application/vnd.atlas.2023-01-01+json"

const (
	fieldPublicKey  = "public_key"
	fieldPrivateKey = "private_key"
	fieldOrgID      = "org_id"
	// maxDesc is the documented length limit of a key's description.
	maxDesc  = 250
	pageSize = 500
	maxPages = 100
)

var capabilities = clients.Capabilities{ListByName: true, RootRotation: true}

var (
	// idPattern: Atlas ids are 24 hex digits; anything else never reaches a path.
	idPattern = regexp.MustCompile(`^[0-9a-fA-F]{24}$`)
	// rolePattern: organization roles such as ORG_MEMBER, ORG_READ_ONLY.
	rolePattern = regexp.MustCompile(`^ORG_[A-Z_]+$`)
)

func init() {
	clients.Register(&clients.Type{
		Name: TypeName,
		Description: "MongoDB Atlas: issues organization API keys (public/private key pairs) with organization roles, " +
			"authenticating with HTTP Digest, and rotates the organization API key pair it uses.",
		DefaultBaseURL:   "https://cloud.mongodb.com",
		MaxKeyNameLength: maxDesc,
		Fields: []clients.Field{
			{
				Name:        fieldPublicKey,
				Description: "Public key of the organization API key Vault uses (the Digest user name). Root rotation replaces it.",
				Required:    true,
				Sensitive:   true,
			},
			{
				Name: fieldPrivateKey,
				Description: "Private key of that organization API key (the Digest password). The key needs the Organization " +
					"Owner role to create and delete API keys. Root rotation replaces it.",
				Required:  true,
				Sensitive: true,
			},
			{
				Name:        fieldOrgID,
				Account:     true,
				Description: "Id (24 hex digits) of the Atlas organization whose API keys Vault issues.",
				Required:    true,
			},
		},
		Capabilities: capabilities,
		Validate:     validate,
		New: func(cfg clients.Config) (clients.Provider, error) {
			p := &provider{http: cfg.HTTP, base: cfg.BaseURL, orgID: cfg.Fields[fieldOrgID],
				root: pair{public: strings.TrimSpace(cfg.Fields[fieldPublicKey]), private: strings.TrimSpace(cfg.Fields[fieldPrivateKey])}}
			p.rootHTTP = p.digestClient(p.root)
			return p, nil
		},
	})
}

func validate(fields map[string]string) error {
	for _, f := range []string{fieldPublicKey, fieldPrivateKey} {
		if strings.TrimSpace(fields[f]) == "" {
			return &clients.FieldError{Field: f, Message: "is required"}
		}
	}
	if v := fields[fieldOrgID]; !idPattern.MatchString(v) {
		return &clients.FieldError{Field: fieldOrgID, Message: fmt.Sprintf("must be an Atlas organization id of 24 hex digits (got %q)", v)}
	}
	return nil
}

// pair is an API key pair: the Digest user name and password.
type pair struct{ public, private string }

type provider struct {
	http     *httpx.Client
	rootHTTP *httpx.Client
	base     string
	orgID    string
	root     pair
}

// digestClient is the shared HTTP layer with a Digest transport for kp
// underneath. Each pair has its own, so a challenge cached for one is never
// answered with another's password.
func (p *provider) digestClient(kp pair) *httpx.Client {
	return p.http.WithTransport(func(base http.RoundTripper) http.RoundTripper {
		return rewind401{&digest.Transport{Username: kp.public, Password: kp.private, Transport: keep401{base}}}
	})
}

// A 401 without a Digest challenge (Atlas refusing the request outright)
// is drained and closed by digest.Transport before it hands the response
// back, so the caller would read "read on closed response body" instead of
// Atlas's error. keep401 (under the digest transport) holds every 401's
// body in memory, where draining and closing cannot lose it, and
// rewind401 (above it) puts it back to its start.
type keep401 struct{ base http.RoundTripper }

// max401Body bounds the body kept; Atlas's errors are a few hundred bytes,
// and httpx reads no more than its own limit anyway.
const max401Body = 64 << 10

func (k keep401) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := k.base.RoundTrip(req)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, max401Body))
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = &keptBody{data: data}
	return res, nil
}

type rewind401 struct{ next http.RoundTripper }

func (r rewind401) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if kb, ok := res.Body.(*keptBody); ok {
		kb.off = 0
	}
	return res, nil
}

// keptBody is a 401's body in memory; Close does not discard it.
type keptBody struct {
	data []byte
	off  int
}

func (b *keptBody) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

func (b *keptBody) Close() error { return nil }

// apiKey is an organization API key as Atlas shows it; PrivateKey is whole
// only in the create's answer.
type apiKey struct {
	ID         string `json:"id"`
	Desc       string `json:"desc"`
	PublicKey  string `json:"publicKey"`
	PrivateKey string `json:"privateKey"`
	Roles      []struct {
		OrgID    string `json:"orgId"`
		RoleName string `json:"roleName"`
	} `json:"roles"`
}

func (k apiKey) orgRoles(orgID string) []string {
	var out []string
	for _, r := range k.Roles {
		if (r.OrgID == "" || r.OrgID == orgID) && rolePattern.MatchString(r.RoleName) {
			out = append(out, r.RoleName)
		}
	}
	return out
}

func (p *provider) Capabilities() clients.Capabilities { return capabilities }

func (p *provider) keysPath() string { return "/api/atlas/v2/orgs/" + p.orgID + "/apiKeys" }

// ValidateKeyRequest: scopes are the key's organization roles (at least
// one, ORG_…); there are no parameters.
func (p *provider) ValidateKeyRequest(req clients.KeyRequest) error {
	if len(req.Scopes) == 0 {
		return &clients.FieldError{Field: "scopes", Message: "mongodbatlas keys need at least one organization role, such as ORG_READ_ONLY or ORG_MEMBER"}
	}
	for _, s := range req.Scopes {
		if !rolePattern.MatchString(s) {
			return &clients.FieldError{Field: "scopes", Message: fmt.Sprintf("%q is not an Atlas organization role (ORG_OWNER, ORG_MEMBER, ORG_READ_ONLY, …)", s)}
		}
	}
	return clients.NoParameters(req, "mongodbatlas keys take no parameters")
}

func (p *provider) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if strings.TrimSpace(req.Name) == "" {
		return clients.Key{}, errors.New("mongodbatlas: a key name is required")
	}
	if err := p.ValidateKeyRequest(req); err != nil {
		return clients.Key{}, err
	}
	k, err := p.create(ctx, "create", req.Name, req.Scopes)
	if err != nil {
		return clients.Key{}, err
	}
	return clients.Key{ID: k.ID, Name: req.Name, Secret: k.PrivateKey,
		Extra: map[string]string{"public_key": k.PublicKey, "org_id": p.orgID, "roles": strings.Join(k.orgRoles(p.orgID), ",")}}, nil
}

// create posts a key and checks that the answer can be used and revoked.
func (p *provider) create(ctx context.Context, op, desc string, roles []string) (apiKey, error) {
	var k apiKey
	if err := p.call(ctx, p.rootHTTP, op, http.MethodPost, p.keysPath(), map[string]any{"desc": desc, "roles": roles}, &k); err != nil {
		return apiKey{}, err
	}
	if !idPattern.MatchString(k.ID) {
		return apiKey{}, fmt.Errorf("provider %q: %s: Atlas's response has no usable API key id; delete the key described %q by hand if it exists",
			p.http.Provider(), op, desc)
	}
	if k.PrivateKey == "" || k.PublicKey == "" {
		_ = p.deleteKey(ctx, op, k.ID)
		return apiKey{}, fmt.Errorf("provider %q: %s: Atlas's response lacks the key pair", p.http.Provider(), op)
	}
	return k, nil
}

// VerifyKey reads the organization with the new pair.
func (p *provider) VerifyKey(ctx context.Context, key clients.Key) error {
	kp := pair{public: key.Extra["public_key"], private: key.Secret}
	if kp.public == "" || kp.private == "" {
		return errors.New("mongodbatlas: verify: the key lacks its public or private key")
	}
	return p.call(ctx, p.digestClient(kp), "verify", http.MethodGet, "/api/atlas/v2/orgs/"+p.orgID, nil, nil, kp.private, kp.public)
}

func (p *provider) RevokeKey(ctx context.Context, id string) error {
	return p.deleteKey(ctx, "revoke", id)
}

func (p *provider) deleteKey(ctx context.Context, op, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("mongodbatlas: %s: %q is not an API key id", op, id)
	}
	err := p.call(ctx, p.rootHTTP, op, http.MethodDelete, p.keysPath()+"/"+id, nil, nil)
	if httpx.NotFound(err) {
		return nil
	}
	return err
}

// list pages through the organization's API keys.
func (p *provider) list(ctx context.Context, hc *httpx.Client, op string, secrets ...string) ([]apiKey, error) {
	var all []apiKey
	for page := 1; page <= maxPages; page++ {
		var pg struct {
			Results    []apiKey `json:"results"`
			TotalCount int      `json:"totalCount"`
		}
		q := url.Values{"itemsPerPage": {strconv.Itoa(pageSize)}, "pageNum": {strconv.Itoa(page)}}
		if err := p.call(ctx, hc, op, http.MethodGet, p.keysPath()+"?"+q.Encode(), nil, &pg, secrets...); err != nil {
			return nil, err
		}
		all = append(all, pg.Results...)
		if len(pg.Results) == 0 || len(all) >= pg.TotalCount {
			break
		}
	}
	return all, nil
}

func (p *provider) FindKeys(ctx context.Context, name string) ([]clients.Key, error) {
	return keylist.Find(ctx, p.ListKeys, name)
}

// ListKeys lists the organization's API keys, every page, for tidy: Name is
// desc. Atlas gives no creation time for an API key, so CreatedAt stays
// zero: tidy reports these keys and never revokes them. The root key is
// listed under the id RootID returns.
func (p *provider) ListKeys(ctx context.Context) ([]clients.Key, error) {
	keys, err := p.list(ctx, p.rootHTTP, "list")
	if err != nil {
		return nil, err
	}
	var out []clients.Key
	for _, k := range keys {
		// Only ids RevokeKey accepts: rollback and tidy revoke what they find.
		if idPattern.MatchString(k.ID) {
			out = append(out, clients.Key{ID: k.ID, Name: k.Desc, Extra: map[string]string{"public_key": k.PublicKey}})
		}
	}
	return out, nil
}

// ownKey finds the root pair in the organization's keys by its public key.
func (p *provider) ownKey(ctx context.Context) (*apiKey, error) {
	keys, err := p.list(ctx, p.rootHTTP, "list")
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if k.PublicKey == p.root.public && idPattern.MatchString(k.ID) {
			return &keys[i], nil
		}
	}
	return nil, nil
}

func (p *provider) RootID(ctx context.Context) (string, error) {
	k, err := p.ownKey(ctx)
	if err != nil || k == nil {
		return "", err
	}
	return k.ID, nil
}

// CreateRoot creates a key pair with the root's roles in the organization.
// It refuses when the root is not among the organization's keys (a key of
// another organization, say), since it could not be deleted afterwards.
func (p *provider) CreateRoot(ctx context.Context, name string) (clients.Root, error) {
	own, err := p.ownKey(ctx)
	if err != nil {
		return clients.Root{}, err
	}
	if own == nil {
		return clients.Root{}, fmt.Errorf("provider %q: root rotation: the configured public key is not among the API keys of organization %s, "+
			"so it could not be deleted afterwards", p.http.Provider(), p.orgID)
	}
	roles := own.orgRoles(p.orgID)
	if len(roles) == 0 {
		roles = []string{"ORG_OWNER"}
	}
	k, err := p.create(ctx, "create_root", name, roles)
	if err != nil {
		return clients.Root{}, err
	}
	return clients.Root{ID: k.ID, Fields: map[string]string{fieldPublicKey: k.PublicKey, fieldPrivateKey: k.PrivateKey}}, nil
}

// VerifyRoot lists the organization's keys with the new pair: what Vault
// uses it for.
func (p *provider) VerifyRoot(ctx context.Context, root clients.Root) error {
	kp := pair{public: root.Fields[fieldPublicKey], private: root.Fields[fieldPrivateKey]}
	if kp.public == "" || kp.private == "" {
		return errors.New("mongodbatlas: verify_root: the new root lacks its public or private key")
	}
	return p.call(ctx, p.digestClient(kp), "verify_root", http.MethodGet, p.keysPath()+"?itemsPerPage=1&pageNum=1", nil, nil, kp.private, kp.public)
}

// RevokeRoot deletes the replaced pair (with the new root).
func (p *provider) RevokeRoot(ctx context.Context, oldID string) error {
	return p.deleteKey(ctx, "revoke_root", oldID)
}

// call sends a request through hc (whose Digest transport authenticates
// it) with Atlas's versioned media type; secrets are kept out of errors
// on top of the root pair.
func (p *provider) call(ctx context.Context, hc *httpx.Client, op, method, path string, in, out any, secrets ...string) error {
	r := httpx.Request{Op: op, Method: method, URL: p.base + path, Header: http.Header{"Accept": {MediaType}},
		Secrets: append([]string{p.root.private, p.root.public}, secrets...)}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("provider %q: %s: encoding the request: %w", p.http.Provider(), op, err)
		}
		r.Body = b
		r.Header.Set("Content-Type", MediaType)
	}
	_, err := hc.Call(ctx, r, out, httpx.Expect{Message: errorMessage, AllowEmpty: method == http.MethodDelete})
	return err
}

// errorMessage reads Atlas's {"error","errorCode","reason","detail"}.
func errorMessage(body []byte) string {
	var e struct {
		ErrorCode string `json:"errorCode"`
		Detail    string `json:"detail"`
		Reason    string `json:"reason"`
	}
	if text, ok := httpx.ErrorBody(body, &e); !ok {
		return text
	}
	msg := e.Detail
	if msg == "" {
		msg = e.Reason
	}
	if e.ErrorCode != "" {
		msg += " (" + e.ErrorCode + ")"
	}
	return strings.TrimSpace(msg)
}
