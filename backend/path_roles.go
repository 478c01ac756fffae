package backend

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/template"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

const rolePrefix = "roles/"

// Role modes.
const (
	modeDynamic = "dynamic"
	modeDual    = "dual"
)

const (
	defaultNameTemplate = `vault-{{.Marker}}-{{.RoleName | truncate 32}}-{{.DisplayName | truncate 24}}-{{unix_time}}-{{random 6}}`
	// v010NameTemplate was the default before the marker; the migration
	// moves roles that kept it to defaultNameTemplate.
	v010NameTemplate  = `vault-{{.RoleName | truncate 32}}-{{.DisplayName | truncate 24}}-{{unix_time}}-{{random 6}}`
	defaultRolePeriod = 2160 * time.Hour
	defaultOverlap    = 24 * time.Hour
)

// roleEntry is a role as stored.
type roleEntry struct {
	Provider     string            `json:"provider"`
	Mode         string            `json:"mode"`
	TTL          time.Duration     `json:"ttl"`
	MaxTTL       time.Duration     `json:"max_ttl"`
	Scopes       []string          `json:"scopes"`
	Parameters   map[string]string `json:"parameters"`
	NameTemplate string            `json:"name_template"`
	// Dual roles only.
	Rotation rotationConfig `json:"rotation"`
	Overlap  time.Duration  `json:"overlap"`
}

func pathRoles(b *backend) []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeLowerCaseString, Required: true, Description: "Name of the role."},
		"provider": {Type: framework.TypeString,
			Description: "Name of the provider instance (providers/<name>) that issues this role's keys. Required on create."},
		"mode": {Type: framework.TypeString,
			Description: `"dynamic": one new key per lease, deleted when the lease ends; "dual": every reader gets the role's current key, rotated with overlap. Required on create, immutable.`},
		"ttl": {Type: framework.TypeDurationSecond,
			Description: "Default lease TTL of creds (default: the mount's default lease TTL)."},
		"max_ttl": {Type: framework.TypeDurationSecond,
			Description: "Maximum lease TTL of creds, renewals included (default: the mount's max lease TTL). Dynamic keys are created to expire at the provider then, where the provider supports expiry."},
		"scopes": {Type: framework.TypeCommaStringSlice,
			Description: "Provider-specific permissions of the issued key (list or comma-separated)."},
		"parameters": {Type: framework.TypeKVPairs,
			Description: "Provider-specific create options as key=value pairs (see the provider type's page)."},
		"name_template": {Type: framework.TypeString,
			Description: "Template of the key's name at the provider. Variables: .RoleName, .DisplayName, .Marker (this mount's marker, which tidy looks for to find keys it may revoke); functions: unix_time, random N, truncate N, uppercase, lowercase, replace. Default: " + defaultNameTemplate},
		"overlap": {Type: framework.TypeDurationSecond,
			Description: "Dual roles: how long the previous key keeps working after its successor becomes current (default 24h; must be less than rotation_period)."},
	}
	for k, v := range rotationFields("the role's key (dual roles only)", true) {
		fields[k] = v
	}
	return []*framework.Path{
		{
			Pattern:        "roles/" + nameRegex("name"),
			Fields:         fields,
			ExistenceCheck: b.roleExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.CreateOperation: &framework.PathOperation{Callback: b.roleWrite, Summary: "Create a role.",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.roleWrite, Summary: "Update a role (partial).",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
				logical.ReadOperation: &framework.PathOperation{Callback: b.roleRead, Summary: "Read a role."},
				logical.DeleteOperation: &framework.PathOperation{Callback: b.roleDelete, Summary: "Delete a role.",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
			},
			HelpSynopsis:    roleHelpSyn,
			HelpDescription: roleHelpDesc,
		},
		{
			Pattern: "roles/?$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.roleList, Summary: "List roles."},
			},
			HelpSynopsis:    "List the roles.",
			HelpDescription: "Lists the names of every role of this mount.",
		},
	}
}

func getRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	var r roleEntry
	ok, err := getJSON(ctx, s, rolePrefix+name, &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := getRole(ctx, req.Storage, d.Get("name").(string))
	return r != nil, err
}

func (b *backend) roleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	defer b.locks.lock(lockKey("role", name))()

	old, err := getRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	creating := old == nil
	r := &roleEntry{}
	if !creating {
		cp := *old
		r = &cp
	}

	if v, ok := d.GetOk("mode"); ok {
		mode := v.(string)
		if !creating && mode != r.Mode {
			return logical.ErrorResponse("mode is immutable: role %q is %q", name, r.Mode), nil
		}
		r.Mode = mode
	} else if creating {
		return logical.ErrorResponse("mode is required: %q or %q", modeDynamic, modeDual), nil
	}
	switch r.Mode {
	case modeDynamic, modeDual:
	default:
		return logical.ErrorResponse("mode must be %q or %q, not %q", modeDynamic, modeDual, r.Mode), nil
	}

	if v, ok := d.GetOk("provider"); ok {
		r.Provider = strings.ToLower(v.(string)) // provider names are stored lowercased
	} else if creating {
		return logical.ErrorResponse("provider is required"), nil
	}
	if !creating && r.Provider != old.Provider && r.Mode == modeDual {
		return logical.ErrorResponse("provider cannot change on a dual role: its keys live at provider %q", old.Provider), nil
	}
	p, err := getProvider(ctx, req.Storage, r.Provider)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return logical.ErrorResponse("provider: no provider named %q (create providers/%s first)", r.Provider, r.Provider), nil
	}

	if v, ok := durationField(d, "ttl"); ok {
		r.TTL = v
	}
	if v, ok := durationField(d, "max_ttl"); ok {
		r.MaxTTL = v
	}
	if r.TTL < 0 || r.MaxTTL < 0 {
		return logical.ErrorResponse("ttl and max_ttl must not be negative"), nil
	}
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return logical.ErrorResponse("ttl (%s) must not be greater than max_ttl (%s)", r.TTL, r.MaxTTL), nil
	}
	if v, ok := d.GetOk("scopes"); ok {
		r.Scopes = v.([]string)
	}
	if v, ok := d.GetOk("parameters"); ok {
		r.Parameters = v.(map[string]string)
	}
	if v, ok := d.GetOk("name_template"); ok {
		r.NameTemplate = v.(string)
	} else if creating {
		r.NameTemplate = defaultNameTemplate
	}
	if _, err := renderKeyName(r.NameTemplate, nameVars{Role: name, Display: "check", Marker: "tpcheck00"}); err != nil {
		return logical.ErrorResponse("name_template: %s", err.Error()), nil
	}

	if r.Mode == modeDual {
		if resp := b.applyDualFields(d, r, creating); resp != nil {
			return resp, nil
		}
	} else {
		for _, k := range []string{"rotation_period", "rotation_schedule", "rotation_window", "overlap"} {
			if _, ok := req.Data[k]; ok {
				return logical.ErrorResponse("%s applies only to dual roles", k), nil
			}
		}
	}

	if resp, err := b.validateKeyRequest(ctx, req.Storage, r); resp != nil || err != nil {
		return resp, err
	}

	if r.Mode == modeDual {
		resp, err := b.writeDualRole(ctx, req.Storage, name, r, creating)
		if err != nil || resp != nil {
			return resp, err
		}
	} else if err := putJSON(ctx, req.Storage, rolePrefix+name, r); err != nil {
		return nil, err
	}
	b.inventory.setRoleConfig(name, r)
	if !nameTemplateUnique(r.NameTemplate) {
		resp := &logical.Response{}
		resp.AddWarning(nameTemplateWarning)
		return resp, nil
	}
	return nil, nil
}

// validateKeyRequest asks the provider's type whether it can issue keys
// with the role's scopes and parameters, without calling its API: a
// mistake is a 400 naming the field when the role is written, not a
// failure at the first creds read or the next rotation.
func (b *backend) validateKeyRequest(ctx context.Context, s logical.Storage, r *roleEntry) (*logical.Response, error) {
	pc, release, err := b.client(ctx, s, r.Provider)
	if err != nil || pc == nil {
		return nil, err
	}
	defer release()
	err = pc.api.ValidateKeyRequest(clients.KeyRequest{Scopes: r.Scopes, Parameters: r.Parameters})
	if resp := fieldErrorResponse(err); resp != nil {
		return resp, nil
	}
	return nil, err
}

func (b *backend) roleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	r, err := getRole(ctx, req.Storage, name)
	if err != nil || r == nil {
		return nil, err
	}
	data := map[string]any{
		"provider":      r.Provider,
		"mode":          r.Mode,
		"ttl":           int64(r.TTL.Seconds()),
		"max_ttl":       int64(r.MaxTTL.Seconds()),
		"scopes":        nonNil(r.Scopes),
		"parameters":    nonNilMap(r.Parameters),
		"name_template": r.NameTemplate,
	}
	if r.Mode == modeDual {
		if err := b.fillDualRead(ctx, req.Storage, name, r, data); err != nil {
			return nil, err
		}
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) roleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	defer b.locks.lock(lockKey("role", name))()
	r, err := getRole(ctx, req.Storage, name)
	if err != nil || r == nil {
		return nil, err
	}
	if r.Mode == modeDual {
		if err := b.deleteDualKeys(ctx, req.Storage, name, r); err != nil {
			return nil, err
		}
	}
	if err := req.Storage.Delete(ctx, rolePrefix+name); err != nil {
		return nil, err
	}
	b.inventory.deleteRole(name)
	return nil, nil
}

func (b *backend) roleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, rolePrefix)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

// rolesUsingProvider returns the roles whose provider is name, by role
// name.
func rolesUsingProvider(ctx context.Context, s logical.Storage, name string) (map[string]*roleEntry, error) {
	names, err := s.List(ctx, rolePrefix)
	if err != nil {
		return nil, err
	}
	users := map[string]*roleEntry{}
	for _, n := range names {
		r, err := getRole(ctx, s, n)
		if err != nil {
			return nil, err
		}
		if r != nil && r.Provider == name {
			users[n] = r
		}
	}
	return users, nil
}

// nameTemplates holds parsed name templates (*nameTemplate) by their text:
// parsing, and the uniqueness match, are a measurable share of a dynamic
// creds read.
var nameTemplates sync.Map

type nameTemplate struct {
	t      template.StringTemplate
	unique bool
}

// parseNameTemplate parses a name template once per distinct text.
func parseNameTemplate(tmpl string) (*nameTemplate, error) {
	if v, ok := nameTemplates.Load(tmpl); ok {
		return v.(*nameTemplate), nil
	}
	t, err := template.NewTemplate(template.Template(tmpl))
	if err != nil {
		return nil, err
	}
	nt := &nameTemplate{t: t, unique: uniqueNameRe.MatchString(tmpl)}
	nameTemplates.Store(tmpl, nt)
	return nt, nil
}

// uniqueNameRe matches a template action that calls random or uuid.
var uniqueNameRe = regexp.MustCompile(`\{\{[^}]*\b(random|uuid)\b[^}]*\}\}`)

// nameTemplateUnique reports whether a name_template gives every attempt
// its own name, which WAL rollback relies on to find a key by name.
func nameTemplateUnique(tmpl string) bool {
	if v, ok := nameTemplates.Load(tmpl); ok {
		return v.(*nameTemplate).unique
	}
	return uniqueNameRe.MatchString(tmpl)
}

// nameTemplateWarning is the role write's warning for a template whose
// names can repeat.
const nameTemplateWarning = "name_template has no {{random N}} or {{uuid}}, so keys can share a name: " +
	"if a create's answer is lost, the key cannot be told apart from others by name and is left to expire " +
	"at the provider (where the type supports expiry) instead of being revoked"

// nameVars are the values a name template can use.
type nameVars struct {
	Role, Display string
	// Marker is the mount's marker ({{.Marker}}), which tidy looks for to
	// tell this mount's keys from others at the provider.
	Marker string
}

// renderKeyName renders a role's name template for one key.
func renderKeyName(tmpl string, v nameVars) (string, error) {
	nt, err := parseNameTemplate(tmpl)
	if err != nil {
		return "", err
	}
	name, err := nt.t.Generate(map[string]string{"RoleName": v.Role, "DisplayName": v.Display, "Marker": v.Marker})
	if err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", fmt.Errorf("renders an empty name")
	}
	return name, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

const roleHelpSyn = "Manage roles: which key to issue, from which provider, and how it lives."

const roleHelpDesc = `
A role ties a provider instance to the keys it issues.

mode=dynamic: every read of creds/<role> creates a new key, leased for ttl
(renewable up to max_ttl); when the lease ends the key is deleted at the
provider.

mode=dual: the role keeps a current and a previous key. Every reader gets the
current key; rotation (rotation_period or rotation_schedule) creates and
verifies a new key, promotes it, and revokes the old one only after overlap,
so no reader ever holds a revoked key. Leases are capped to the key's life.

scopes and parameters are passed to the provider (see the provider type's
documentation). name_template names the key at the provider. mode is
immutable, and updates are partial.
`
