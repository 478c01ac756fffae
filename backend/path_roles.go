package backend

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	texttemplate "text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

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
	// shortNameTemplate is the default for provider types whose key names
	// are too short for defaultNameTemplate (Twilio: 64 characters).
	shortNameTemplate = `vault-{{.Marker}}-{{.RoleName | truncate 16}}-{{.DisplayName | truncate 8}}-{{unix_time}}-{{random 6}}`
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
	// RenewBefore: rotate the current key at the latest this long before
	// its provider-side expiry (0: the default, see keyRenewAt).
	RenewBefore time.Duration `json:"renew_before,omitempty"`
}

func pathRoles(b *backend) []*framework.Path {
	fields := roleFields()
	// A delete's own field; writes refuse it (roleWrite checks against
	// roleFields).
	fields["revoke_keys"] = &framework.FieldSchema{Type: framework.TypeBool,
		Description: "Delete only: revoke a dual role's keys at the provider now, ending every outstanding lease's access at once; " +
			"on a role already deleted, revoke now the keys still waiting for their leases to end. " +
			"Default false: each key is revoked once no lease of it can still run (its retire time or lease cap)."}
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

// roleFields is the roles/<name> schema.
func roleFields() map[string]*framework.FieldSchema {
	fields := map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeLowerCaseString, Required: true, Description: "Name of the role (at most 128 characters, no \"..\")."},
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
			Description: "Template of the key's name at the provider. Variables: .RoleName, .DisplayName (the first 128 characters), .Marker (this mount's marker, which tidy looks for to find keys it may revoke); functions: unix_time, unix_time_millis, timestamp, uuid, random N (N at most 64), truncate N and truncate_sha256 N (N at most 256), uppercase, lowercase, replace, sha256, base64. " +
				"The longest name it can render must fit the provider type's key name limit. Default: " + defaultNameTemplate},
		"overlap": {Type: framework.TypeDurationSecond,
			Description: "Dual roles: how long the previous key keeps working after its successor becomes current (default 24h; must be less than rotation_period)."},
	}
	for k, v := range rotationFields("the role's key (dual roles only)", true) {
		fields[k] = v
	}
	fields["renew_before"] = renewBeforeField("the current key (dual roles only)")
	return fields
}

func getRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	return getEntry[roleEntry](ctx, s, rolePrefix+name)
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := getRole(ctx, req.Storage, d.Get("name").(string))
	return r != nil, err
}

func (b *backend) roleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	// Unknown fields are refused, as for providers: a misspelt ttl must
	// not leave a role that silently does something else.
	schema := roleFields()
	for _, k := range slices.Sorted(maps.Keys(req.Data)) {
		if _, ok := schema[k]; !ok {
			return logical.ErrorResponse("%s: unknown field of roles/ (fields: %s)", k, strings.Join(slices.Sorted(maps.Keys(schema)), ", ")), nil
		}
	}
	defer b.locks.lock(lockKey("role", name))()

	old, err := getRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	// Merge the request into the stored role, checking each field once.
	r, resp, err := b.mergeRole(ctx, req, d, name, old)
	if resp != nil || err != nil {
		return resp, err
	}
	// Ask the provider's type whether it can issue such keys (no API call).
	if resp, err := b.validateKeyRequest(ctx, req.Storage, r); resp != nil || err != nil {
		return resp, err
	}
	return b.storeRole(ctx, req.Storage, name, r, old == nil)
}

// mergeRole applies a roles/ write to the stored role (old; nil when
// creating) and checks every field it sets: mode, provider, TTLs, scopes,
// parameters, the name template against the provider type's key name
// limit, and the dual fields. It returns the merged role, or a 400 naming
// the field at fault.
func (b *backend) mergeRole(ctx context.Context, req *logical.Request, d *framework.FieldData, name string, old *roleEntry) (*roleEntry, *logical.Response, error) {
	creating := old == nil
	r := &roleEntry{}
	if !creating {
		cp := *old
		r = &cp
	}
	fail := func(format string, args ...any) (*roleEntry, *logical.Response, error) {
		return nil, logical.ErrorResponse(format, args...), nil
	}

	if v, ok := d.GetOk("mode"); ok {
		mode := v.(string)
		if !creating && mode != r.Mode {
			return fail("mode is immutable: role %q is %q", name, r.Mode)
		}
		r.Mode = mode
	} else if creating {
		return fail("mode is required: %q or %q", modeDynamic, modeDual)
	}
	switch r.Mode {
	case modeDynamic, modeDual:
	default:
		return fail("mode must be %q or %q, not %q", modeDynamic, modeDual, r.Mode)
	}

	if v, ok := d.GetOk("provider"); ok {
		r.Provider = strings.ToLower(v.(string)) // provider names are stored lowercased
		if msg := checkName(r.Provider); msg != "" {
			return fail("provider: %s", msg)
		}
	} else if creating {
		return fail("provider is required")
	}
	if !creating && r.Provider != old.Provider && r.Mode == modeDual {
		return fail("provider cannot change on a dual role: its keys live at provider %q", old.Provider)
	}
	p, err := getProvider(ctx, req.Storage, r.Provider)
	if err != nil {
		return nil, nil, err
	}
	if p == nil {
		return fail("provider: no provider named %q (create providers/%s first)", r.Provider, r.Provider)
	}

	if v, ok := durationField(d, "ttl"); ok {
		r.TTL = v
	}
	if v, ok := durationField(d, "max_ttl"); ok {
		r.MaxTTL = v
	}
	if r.TTL < 0 || r.MaxTTL < 0 {
		return fail("ttl and max_ttl must not be negative")
	}
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return fail("ttl (%s) must not be greater than max_ttl (%s)", r.TTL, r.MaxTTL)
	}
	if v, ok := d.GetOk("scopes"); ok {
		r.Scopes = v.([]string)
	}
	if v, ok := d.GetOk("parameters"); ok {
		r.Parameters = v.(map[string]string)
	}
	if resp := mergeNameTemplate(req, d, name, r, old, p); resp != nil {
		return nil, resp, nil
	}

	if r.Mode == modeDual {
		if resp := b.applyDualFields(d, r, creating); resp != nil {
			return nil, resp, nil
		}
	} else {
		for _, k := range []string{"rotation_period", "rotation_schedule", "rotation_window", "overlap", "renew_before"} {
			if _, ok := req.Data[k]; ok {
				return fail("%s applies only to dual roles", k)
			}
		}
	}
	return r, nil, nil
}

// mergeNameTemplate sets the role's name template (the default, or the
// short one where the default renders names too long for the provider
// type) and, when the template or the provider changes, checks that the
// longest name it renders fits the type's key name limit.
func mergeNameTemplate(req *logical.Request, d *framework.FieldData, name string, r, old *roleEntry, p *providerEntry) *logical.Response {
	creating := old == nil
	limit := clients.DefaultMaxKeyNameLength
	if typ, _ := clients.Lookup(p.Type); typ != nil {
		limit = typ.KeyNameLimit()
	}
	if v, ok := d.GetOk("name_template"); ok {
		r.NameTemplate = v.(string)
	} else if creating {
		r.NameTemplate = defaultNameTemplate
		if n, err := longestKeyName(r.NameTemplate, name); err == nil && n > limit {
			r.NameTemplate = shortNameTemplate
		}
	}
	if _, given := req.Data["name_template"]; !given && !creating && r.Provider == old.Provider {
		return nil
	}
	n, err := longestKeyName(r.NameTemplate, name)
	if err != nil {
		return logical.ErrorResponse("name_template: %s", err.Error())
	}
	if n > limit {
		return logical.ErrorResponse("name_template: renders names of up to %d characters (with a %d-character display name), but provider type %q allows %d; shorten it with truncate",
			n, maxDisplayNameLength, p.Type, limit)
	}
	return nil
}

// storeRole writes a checked role (a dual role's first key is created
// here) and answers the write, warning when the name template can repeat
// names.
func (b *backend) storeRole(ctx context.Context, s logical.Storage, name string, r *roleEntry, creating bool) (*logical.Response, error) {
	if r.Mode == modeDual {
		resp, err := b.writeDualRole(ctx, s, name, r, creating)
		if err != nil || resp != nil {
			return resp, err
		}
	} else if err := putJSON(ctx, s, rolePrefix+name, r); err != nil {
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
	if resp := keySlotsRoleCheck(r, pc.api.Capabilities()); resp != nil {
		return resp, nil
	}
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
	if err != nil {
		return nil, err
	}
	revokeNow := d.Get("revoke_keys").(bool)
	if r != nil && r.Mode == modeDynamic && revokeNow {
		mount := req.MountPoint
		if mount == "" {
			mount = "<mount>/"
		}
		return logical.ErrorResponse("revoke_keys: role %q is dynamic; its keys are revoked with their leases (vault lease revoke -prefix %screds/%s)", name, mount, name), nil
	}
	if revokeNow {
		// Keys of this name's earlier (deleted) dual roles, still
		// waiting for their leases to end.
		if _, err := b.revokeRetiringOf(ctx, req.Storage, name); err != nil {
			return nil, err
		}
	}
	if r == nil {
		return nil, nil
	}
	var resp *logical.Response
	if r.Mode == modeDual {
		if revokeNow {
			if err := b.deleteDualKeys(ctx, req.Storage, name, r); err != nil {
				return nil, err
			}
		} else {
			retiring, err := b.retireDualKeys(ctx, req.Storage, name, r)
			if err != nil {
				return nil, err
			}
			if len(retiring) > 0 {
				resp = &logical.Response{Data: map[string]any{"retiring_keys": retiringView(retiring)}}
			}
		}
	}
	if err := req.Storage.Delete(ctx, rolePrefix+name); err != nil {
		return nil, err
	}
	b.inventory.deleteRole(name)
	return resp, nil
}

// retiringView describes the keys of a deleted dual role waiting for their
// leases to end (no secret).
func retiringView(entries []*ledgerEntry) []map[string]any {
	out := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		v := map[string]any{"role": e.Role, "provider": e.Provider, "incarnation": e.Incarnation,
			"key_id": e.KeyID, "key_name": e.Name, "revoke_at": formatTime(e.ExpiresAt)}
		if e.LastError != "" {
			v["last_error"], v["next_retry"] = e.LastError, formatTime(e.NextRetry)
		}
		out = append(out, v)
	}
	return out
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
var nameTemplates parseCache[*nameTemplate]

type nameTemplate struct {
	t template.StringTemplate
	// plan renders the template without text/template when it can (nil
	// otherwise).
	plan   namePlan
	unique bool
}

// Bounds of name templates: a template is text, not a program, so what it
// can render (and the work to render it) stays small.
const (
	maxNameTemplateLength = 1024
	maxRandomLength       = 64
	maxTruncateLength     = 256
	// maxDisplayNameLength is how much of the requester's display name a
	// template sees (Vault does not cap display names).
	maxDisplayNameLength = 128
)

// nameData is what a name template sees; a field it does not have (say
// {{.Nope}}) is an error, not "<no value>".
type nameData struct {
	RoleName    string
	DisplayName string
	// Marker is the mount's marker (see mountConfig).
	Marker string
}

// nameFuncs are the functions a name template may call: sdk/helper/template's
// own, with random and truncate bounded. Go's builtins (printf, range over
// an int, …) are refused by checkNameTemplate.
var nameFuncs = map[string]any{
	"random": func(n int) (string, error) {
		if n < 1 || n > maxRandomLength {
			return "", fmt.Errorf("random %d: the length must be between 1 and %d", n, maxRandomLength)
		}
		return randomBase62(n)
	},
	"truncate": func(n int, s string) (string, error) {
		if n < 1 || n > maxTruncateLength {
			return "", fmt.Errorf("truncate %d: the length must be between 1 and %d", n, maxTruncateLength)
		}
		return truncateName(n, s), nil
	},
	"truncate_sha256":  nil, // the sdk's, after checkNameTemplate bounds its argument
	"uppercase":        nil,
	"lowercase":        nil,
	"replace":          nil,
	"sha256":           nil,
	"base64":           nil,
	"unix_time":        nil,
	"unix_time_millis": nil,
	"timestamp":        nil,
	"uuid":             nil,
}

// truncateName is the name templates' truncate: the first n bytes of s.
func truncateName(n int, s string) string {
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// randomBase62 is n random characters of [0-9A-Za-z], as the sdk's random.
func randomBase62(n int) (string, error) {
	const chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, c := range buf {
			if c < 248 && len(out) < n { // 248 = 4*62: no bias
				out = append(out, chars[c%62])
			}
		}
	}
	return string(out), nil
}

// parseNameTemplate parses a name template once per distinct text.
func parseNameTemplate(tmpl string) (*nameTemplate, error) {
	if nt, ok := nameTemplates.get(tmpl); ok {
		return nt, nil
	}
	tree, err := checkNameTemplate(tmpl)
	if err != nil {
		return nil, err
	}
	opts := []template.Opt{template.Template(tmpl)}
	for name, f := range nameFuncs {
		if f != nil {
			opts = append(opts, template.Function(name, f))
		}
	}
	t, err := template.NewTemplate(opts...)
	if err != nil {
		return nil, err
	}
	nt := &nameTemplate{t: t, plan: compileNamePlan(tree), unique: uniqueNameRe.MatchString(tmpl)}
	nameTemplates.put(tmpl, nt)
	return nt, nil
}

// checkNameTemplate refuses what a name template has no use for and could
// make rendering slow or huge: anything but text and {{ }} actions (and
// if/with), functions outside nameFuncs, fields other than .RoleName and
// .DisplayName, and numeric arguments out of bounds. It returns the parsed
// tree (nil for an empty template).
func checkNameTemplate(tmpl string) (*parse.ListNode, error) {
	if len(tmpl) > maxNameTemplateLength {
		return nil, fmt.Errorf("must be at most %d characters", maxNameTemplateLength)
	}
	funcs := texttemplate.FuncMap{}
	for name := range nameFuncs {
		funcs[name] = func(...any) string { return "" }
	}
	t, err := texttemplate.New("name_template").Funcs(funcs).Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("unable to parse template: %w", err)
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("define and block are not allowed")
	}
	if t.Tree == nil {
		return nil, nil
	}
	if err := checkNameNode(t.Tree.Root); err != nil {
		return nil, err
	}
	return t.Tree.Root, nil
}

func checkNameNode(n parse.Node) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNameNode(c); err != nil {
				return err
			}
		}
	case *parse.TextNode, *parse.CommentNode:
	case *parse.ActionNode:
		return checkNamePipe(n.Pipe)
	case *parse.IfNode:
		return checkNameBranch(&n.BranchNode)
	case *parse.WithNode:
		return checkNameBranch(&n.BranchNode)
	default:
		return fmt.Errorf("%q is not allowed (only text, {{ }} actions, if and with)", n.String())
	}
	return nil
}

func checkNameBranch(b *parse.BranchNode) error {
	if err := checkNamePipe(b.Pipe); err != nil {
		return err
	}
	if err := checkNameNode(b.List); err != nil {
		return err
	}
	return checkNameNode(b.ElseList)
}

func checkNamePipe(p *parse.PipeNode) error {
	if p == nil {
		return nil
	}
	for _, c := range p.Cmds {
		for i, arg := range c.Args {
			switch a := arg.(type) {
			case *parse.IdentifierNode:
				if _, ok := nameFuncs[a.Ident]; !ok || i > 0 {
					return fmt.Errorf("function %q is not available (use %s)", a.Ident, strings.Join(slices.Sorted(maps.Keys(nameFuncs)), ", "))
				}
				if a.Ident == "truncate_sha256" && len(c.Args) > 1 {
					if num, ok := c.Args[1].(*parse.NumberNode); ok && (!num.IsInt || num.Int64 < 1 || num.Int64 > maxTruncateLength) {
						return fmt.Errorf("truncate_sha256 %s: the length must be between 1 and %d", num.Text, maxTruncateLength)
					}
				}
			case *parse.FieldNode:
				if len(a.Ident) != 1 || (a.Ident[0] != "RoleName" && a.Ident[0] != "DisplayName" && a.Ident[0] != "Marker") {
					return fmt.Errorf("unknown field %s (use .RoleName, .DisplayName or .Marker)", a.String())
				}
			case *parse.NumberNode:
				if a.IsInt && (a.Int64 > maxTruncateLength || a.Int64 < 0) {
					return fmt.Errorf("number %s is out of bounds (random takes at most %d, truncate %d)", a.Text, maxRandomLength, maxTruncateLength)
				}
			case *parse.StringNode, *parse.DotNode:
			case *parse.PipeNode:
				if err := checkNamePipe(a); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%q is not allowed in a name template", arg.String())
			}
		}
	}
	return nil
}

// uniqueNameRe matches a template action that calls random or uuid.
var uniqueNameRe = regexp.MustCompile(`\{\{[^}]*\b(random|uuid)\b[^}]*\}\}`)

// nameTemplateUnique reports whether a name_template gives every attempt
// its own name, which WAL rollback relies on to find a key by name.
func nameTemplateUnique(tmpl string) bool {
	if nt, ok := nameTemplates.get(tmpl); ok {
		return nt.unique
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

// renderKeyName renders a role's name template for one key. The template
// sees the first maxDisplayNameLength characters of the display name, so a
// name is never longer than longestKeyName found at the role's write.
func renderKeyName(tmpl string, v nameVars) (string, error) {
	nt, err := parseNameTemplate(tmpl)
	if err != nil {
		return "", err
	}
	displayName := v.Display
	if r := []rune(displayName); len(r) > maxDisplayNameLength {
		displayName = string(r[:maxDisplayNameLength])
	}
	data := nameData{RoleName: v.Role, DisplayName: displayName, Marker: v.Marker}
	var name string
	if nt.plan != nil {
		name, err = nt.plan.render(data)
	} else {
		name, err = nt.t.Generate(data)
	}
	if err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", fmt.Errorf("renders an empty name")
	}
	return name, nil
}

// longestKeyName renders tmpl as for the longest display name a template
// sees and returns the name's length in characters (an error when the
// template cannot render).
func longestKeyName(tmpl, roleName string) (int, error) {
	name, err := renderKeyName(tmpl, nameVars{Role: roleName, Display: strings.Repeat("d", maxDisplayNameLength), Marker: markerPlaceholder})
	if err != nil {
		return 0, err
	}
	return utf8.RuneCountInString(name), nil
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
Deleting a dual role revokes each of its keys once no lease of it can still
run (status lists them under retiring_keys); revoke_keys=true on the delete
revokes them at once.

scopes and parameters are passed to the provider (see the provider type's
documentation). name_template names the key at the provider. mode is
immutable, and updates are partial.
`
