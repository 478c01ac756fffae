package httptpl

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

const (
	defaultAuthHeader    = "Authorization: Bearer {{.Root.Secret}}"
	defaultKeyAuthHeader = "Authorization: Bearer {{.Key.Secret}}"
)

var fields = []clients.Field{
	{Name: "root_secret", Required: true, Sensitive: true,
		Description: "The root (admin) credential Vault uses to create and revoke keys; templates see it as {{.Root.Secret}}. Write-only; replaced by root rotation."},
	{Name: "root_id",
		Description: "The root credential's id at the provider, if it has one ({{.Root.ID}}). Needed to revoke the old root after a root rotation; Vault sets it after each rotation."},
	{Name: "auth_header", Default: defaultAuthHeader,
		Description: "Header(s) sent with every request made with the root credential: one 'Name: value' template per line. Sees .Root.Secret and .Root.ID."},
	{Name: "key_auth_header", Default: defaultKeyAuthHeader,
		Description: "Header(s) of the verify request, which is made with the newly issued key instead of the root: 'Name: value' template lines. Sees .Key.* and .Root.ID."},

	{Name: "create_method", Default: http.MethodPost, Description: "HTTP method of the create request."},
	{Name: "create_path", Required: true,
		Description: "Path (and optional ?query) of the create request, appended to base_url. A template; values are URL-escaped. Example: /v1/keys"},
	{Name: "create_body",
		Description: `Body of the create request, a template (empty: no body). JSON unless the request's Content-Type is form-urlencoded. A value outside quotes is written as a whole JSON value, inside quotes as escaped text. Example: {"name": {{.Key.Name}}, "scopes": {{.Scopes}}}`},
	{Name: "create_headers",
		Description: "Extra headers of the create request: one 'Name: value' template per line."},

	{Name: "revoke_method", Default: http.MethodDelete, Description: "HTTP method of the revoke (delete key) request."},
	{Name: "revoke_path", Required: true,
		Description: "Path of the revoke request, a template. Example: /v1/keys/{{.Key.ID}}"},
	{Name: "revoke_body", Description: "Body of the revoke request, a template (empty: no body)."},

	{Name: "verify_method", Default: http.MethodGet, Description: "HTTP method of the verify request."},
	{Name: "verify_path", Required: true,
		Description: "Path of a request that succeeds (2xx) only with a working key; sent with key_auth_header to test each new key before use. Example: /v1/whoami"},

	{Name: "list_method", Default: http.MethodGet, Description: "HTTP method of the list request."},
	{Name: "list_path",
		Description: "Optional path of a request listing keys, so Vault can find a key by name whose id it never recorded. Example: /v1/keys?name={{.Key.Name}}"},

	{Name: "root_create_method", Default: http.MethodPost, Description: "HTTP method of the request creating a new root credential."},
	{Name: "root_create_path",
		Description: "Path of the request creating a new root credential (create-then-delete) or rolling it (root_roll=true). Setting it enables root rotation. {{.Key.Name}} is the new root's name."},
	{Name: "root_create_body", Description: `Body of the root create request, a template. Example: {"name": {{.Key.Name}}}`},
	{Name: "root_verify_method", Default: http.MethodGet, Description: "HTTP method of the root verify request."},
	{Name: "root_verify_path",
		Description: "Path of a request sent with the new root (auth_header with .Root = the new root) that must succeed before the new root is stored. Required with root_create_path."},
	{Name: "root_revoke_method", Default: http.MethodDelete, Description: "HTTP method of the request revoking the old root."},
	{Name: "root_revoke_path",
		Description: "Path of the request revoking the old root, sent with the new root; {{.Root.ID}} is the old root's id. Required with root_create_path unless root_roll=true."},
	{Name: "root_roll", Default: "false",
		Description: "true when root_create_path is a roll-style endpoint: the old root stops working at once and the new value is only in the response (no root_revoke_path)."},

	{Name: "key_id_path", Required: true,
		Description: "JSON path (gjson syntax) of the new key's id in the create response. Example: id"},
	{Name: "key_secret_path", Required: true,
		Description: "JSON path of the new key's secret in the create response. Example: key"},
	{Name: "key_expires_path",
		Description: "Optional JSON path of the key's expiry in the create response: RFC 3339 text or epoch seconds."},
	{Name: "list_items_path",
		Description: "JSON path of the array of keys in the list response (@this when the response is the array). Required with list_path."},
	{Name: "list_name_path", Description: "JSON path of a key's name within one list item. Required with list_path."},
	{Name: "list_id_path", Description: "JSON path of a key's id within one list item. Required with list_path."},
	{Name: "root_id_path",
		Description: "JSON path of the new root's id in the root create response. Required with root_create_path unless root_roll=true."},
	{Name: "root_secret_path",
		Description: "JSON path of the new root's secret in the root create response. Required with root_create_path."},
	{Name: "root_verify_id_path",
		Description: "Optional JSON path, in the root verify response, of the calling credential's own id. When set, the new root must answer with its own id, and when root_id is empty Vault asks this request for the configured root's id."},
	{Name: "revoke_gone_status", Default: "404",
		Description: "Comma-separated HTTP statuses of the revoke requests that mean the key is already gone (counted as revoked). Example: 404,410"},
}

// templateFields are the fields that hold templates.
var templateFields = []struct {
	field string
	kind  kind
	step  step
}{
	{"auth_header", kindHeader, stepAuth},
	{"key_auth_header", kindHeader, stepVerify},
	{"create_path", kindPath, stepCreate},
	{"create_body", kindBody, stepCreate},
	{"create_headers", kindHeader, stepCreate},
	{"revoke_path", kindPath, stepRevoke},
	{"revoke_body", kindBody, stepRevoke},
	{"verify_path", kindPath, stepVerify},
	{"list_path", kindPath, stepList},
	{"root_create_path", kindPath, stepRootCreate},
	{"root_create_body", kindBody, stepRootCreate},
	{"root_verify_path", kindPath, stepRootVerify},
	{"root_revoke_path", kindPath, stepRootRevoke},
}

// requestSpec names the fields that make up one request.
type requestSpec struct {
	op                                           string
	methodField, pathField, bodyField, hdrsField string
	authField                                    string
	step                                         step
}

var (
	reqCreate     = requestSpec{"create", "create_method", "create_path", "create_body", "create_headers", "auth_header", stepCreate}
	reqVerify     = requestSpec{"verify", "verify_method", "verify_path", "", "", "key_auth_header", stepVerify}
	reqRevoke     = requestSpec{"revoke", "revoke_method", "revoke_path", "revoke_body", "", "auth_header", stepRevoke}
	reqList       = requestSpec{"list", "list_method", "list_path", "", "", "auth_header", stepList}
	reqRootCreate = requestSpec{"create_root", "root_create_method", "root_create_path", "root_create_body", "", "auth_header", stepRootCreate}
	reqRootVerify = requestSpec{"verify_root", "root_verify_method", "root_verify_path", "", "", "auth_header", stepRootVerify}
	reqRootRevoke = requestSpec{"revoke_root", "root_revoke_method", "root_revoke_path", "", "", "auth_header", stepRootRevoke}
	allRequests   = []requestSpec{reqCreate, reqVerify, reqRevoke, reqList, reqRootCreate, reqRootVerify, reqRootRevoke}
)

// config is a validated, compiled configuration.
type config struct {
	f       map[string]string
	tpl     map[string]*tmpl
	methods map[string]string // method field → normalised method
	gone    map[int]bool
	roll    bool
}

func (c *config) has(field string) bool { return c.tpl[field] != nil && c.tpl[field].t != nil }

// renderError is a template failure; it names the field.
type renderError struct {
	field string
	err   error
}

func (e *renderError) Error() string { return e.field + ": " + e.err.Error() }

// built is one rendered request.
type built struct {
	method string
	path   string
	header http.Header
	body   []byte
	// redact holds what the request's errors must not show: every
	// rendered value derived from a secret, and the path as shown.
	redact redactions
}

// build renders a request from its templates. data is the step's variables;
// authData those of its auth header (the step's own for key_auth_header).
func (c *config) build(spec requestSpec, data, authData any) (*built, error) {
	b := &built{method: c.methods[spec.methodField], header: http.Header{}}
	var err error
	if b.path, err = c.tpl[spec.pathField].renderPathTo(data, &b.redact); err != nil {
		return nil, &renderError{spec.pathField, err}
	}
	ctField := "" // the field whose header sets Content-Type
	for _, src := range []struct {
		field string
		data  any
	}{{spec.authField, authData}, {spec.hdrsField, data}} {
		if src.field == "" {
			continue
		}
		hs, err := c.tpl[src.field].renderHeadersTo(src.data, &b.redact)
		if err != nil {
			return nil, &renderError{src.field, err}
		}
		for _, h := range hs {
			b.header.Add(h.name, h.value)
			if http.CanonicalHeaderKey(h.name) == "Content-Type" {
				ctField = src.field
			}
		}
	}
	if b.header.Get("Accept") == "" {
		b.header.Set("Accept", "application/json")
	}
	if spec.bodyField != "" && c.has(spec.bodyField) {
		format, err := bodyFormatOf(b.header.Get("Content-Type"))
		if err != nil {
			return nil, &renderError{ctField, err}
		}
		if b.body, err = c.tpl[spec.bodyField].renderBodyTo(data, format, &b.redact); err != nil {
			return nil, &renderError{spec.bodyField, err}
		}
		if b.body != nil && b.header.Get("Content-Type") == "" {
			b.header.Set("Content-Type", "application/json")
		}
	}
	return b, nil
}

func (b *built) equal(o *built) bool {
	if b.method != o.method || b.path != o.path || !bytes.Equal(b.body, o.body) || len(b.header) != len(o.header) {
		return false
	}
	for k, v := range b.header {
		if strings.Join(v, "\n") != strings.Join(o.header[k], "\n") {
			return false
		}
	}
	return true
}

func fieldErr(field, format string, args ...any) error {
	return &clients.FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// validate checks the fields (already merged with defaults) and compiles
// every template; errors are *clients.FieldError naming the field.
func validate(f map[string]string) (*config, error) {
	c := &config{f: f, tpl: map[string]*tmpl{}, methods: map[string]string{}}
	get := func(name string) string { return strings.TrimSpace(f[name]) }

	for _, spec := range allRequests {
		m := strings.ToUpper(get(spec.methodField))
		if !methods[m] {
			return nil, fieldErr(spec.methodField, "%q is not an HTTP method (one of %s)", f[spec.methodField], methodNames())
		}
		c.methods[spec.methodField] = m
	}
	var err error
	if c.gone, err = parseStatuses(f["revoke_gone_status"]); err != nil {
		return nil, fieldErr("revoke_gone_status", "%s", err)
	}
	if v := get("root_roll"); v != "" {
		if c.roll, err = strconv.ParseBool(v); err != nil {
			return nil, fieldErr("root_roll", "%q is not true or false", v)
		}
	}
	if get("root_secret") == "" {
		return nil, fieldErr("root_secret", "is required")
	}

	for _, tf := range templateFields {
		tp, err := compile(tf.field, f[tf.field], tf.kind, tf.step)
		if err != nil {
			return nil, fieldErr(tf.field, "%s", err)
		}
		c.tpl[tf.field] = tp
	}

	required := []string{"create_path", "revoke_path", "verify_path", "key_id_path", "key_secret_path"}
	if c.has("list_path") {
		required = append(required, "list_items_path", "list_name_path", "list_id_path")
	}
	if c.has("root_create_path") {
		required = append(required, "root_secret_path", "root_verify_path")
		if c.roll {
			if c.has("root_revoke_path") {
				return nil, fieldErr("root_revoke_path", "must be empty when root_roll=true: a roll-style API retires the old root itself")
			}
		} else {
			required = append(required, "root_revoke_path", "root_id_path")
		}
	} else {
		for _, other := range []string{"root_revoke_path", "root_id_path", "root_secret_path"} {
			if get(other) != "" {
				return nil, fieldErr(other, "has no effect without root_create_path, which enables root rotation")
			}
		}
		if c.roll {
			return nil, fieldErr("root_roll", "has no effect without root_create_path")
		}
	}
	if get("root_verify_id_path") != "" {
		required = append(required, "root_verify_path")
	}
	for _, name := range required {
		if get(name) == "" {
			return nil, fieldErr(name, "is required")
		}
	}
	for _, name := range []string{"key_id_path", "key_secret_path", "key_expires_path", "list_items_path",
		"list_name_path", "list_id_path", "root_id_path", "root_secret_path", "root_verify_id_path"} {
		if strings.ContainsAny(f[name], "\r\n\x00") {
			return nil, fieldErr(name, "a JSON path is one line")
		}
	}

	// Render every configured request with sample values, full and empty,
	// so unknown variables inside range/with, bad header lines, unsupported
	// content types and bodies that are not JSON are caught now.
	for _, spec := range allRequests {
		if !c.has(spec.pathField) {
			continue
		}
		for _, full := range []bool{true, false} {
			data := sampleVars(spec.step, full)
			if _, err := c.build(spec, data, sampleAuth(spec, data, full)); err != nil {
				if re, ok := err.(*renderError); ok {
					msg := re.err.Error()
					if strings.HasPrefix(msg, "rendered") {
						if full {
							msg += " (with sample values)"
						} else {
							msg += " (with empty values)"
						}
					}
					return nil, fieldErr(re.field, "%s", msg)
				}
				return nil, err
			}
		}
	}
	return c, nil
}

// sampleAuth is the auth header's data for a sample request.
func sampleAuth(spec requestSpec, data any, full bool) any {
	if spec.authField == "key_auth_header" {
		return data
	}
	switch d := data.(type) {
	case rootVerifyVars:
		return authVars{Root: d.NewRoot}
	case rootRevokeVars:
		return authVars{Root: d.NewRoot}
	}
	return sampleVars(stepAuth, full)
}
