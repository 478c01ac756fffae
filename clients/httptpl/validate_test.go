package httptpl

import (
	"errors"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

func TestValidate(t *testing.T) {
	typ, _ := clients.Lookup("http")
	cases := []struct {
		name  string
		set   map[string]string
		field string
		want  string // substring of the message
	}{
		{"parse error names line", map[string]string{"create_body": "{\n\"name\": {{.Key.Name }x}}}"},
			"create_body", `template: line 2: unexpected "}" in operand`},
		{"trailing JSON", map[string]string{"create_body": "{\n\"name\": {{.Key.Name}}}\n}"}, "create_body", "invalid JSON"},
		{"operand error", map[string]string{"create_body": "{\n\"a\": {{.Key.Name }} }, \"b\": {{ ( }}}"}, "create_body", "line 2"},
		{"unknown variable", map[string]string{"create_body": `{"n": {{.Key.Foo}}}`}, "create_body", "line 1: .Key.Foo is not available in create_body"},
		{"unknown top-level", map[string]string{"create_path": "/v1/{{.Account}}/keys"}, "create_path", ".Account is not available"},
		{"secret not available on create", map[string]string{"create_body": `{"n": {{.Key.Secret}}}`}, "create_body", ".Key.Secret is not available"},
		{"root secret not available to key auth", map[string]string{"key_auth_header": "X-Key: {{.Root.Secret}}"}, "key_auth_header", ".Root.Secret is not available"},
		{"scopes not available on revoke", map[string]string{"revoke_path": "/v1/keys/{{.Scopes}}"}, "revoke_path", ".Scopes is not available"},
		{"$ chain checked", map[string]string{"create_body": `{{range .Scopes}}{{$.Key.Nmae}}{{end}}`}, "create_body", ".Key.Nmae is not available"},
		{"unknown field inside range", map[string]string{"create_body": `{"s": [{{range .Scopes}}{{.Foo}}{{end}}]}`}, "create_body", "can't evaluate field Foo"},
		{"field of a string", map[string]string{"create_body": `{"n": {{.Key.Name.First}}}`}, "create_body", ".Key.Name has no field First"},
		{"unknown function", map[string]string{"create_body": `{"n": {{upper .Key.Name}}}`}, "create_body", `function "upper" not defined`},
		{"internal function", map[string]string{"create_body": `{"n": {{httptpl_value .Key.Name}}}`}, "create_body", `function "httptpl_value" not defined`},
		{"bare dot", map[string]string{"create_body": `{{json .}}`}, "create_body", ". on its own"},
		{"define", map[string]string{"create_body": `{{define "x"}}a{{end}}{}`}, "create_body", "not supported"},
		{"NUL", map[string]string{"create_body": "{\x00}"}, "create_body", "NUL"},
		{"bad method", map[string]string{"create_method": "FETCH"}, "create_method", "not an HTTP method"},
		{"bad gone status", map[string]string{"revoke_gone_status": "404,gone"}, "revoke_gone_status", `"gone"`},
		{"bad root_roll", map[string]string{"root_roll": "maybe"}, "root_roll", "true or false"},
		{"missing key_secret_path", map[string]string{"key_secret_path": " "}, "key_secret_path", "required"},
		{"missing create_path", map[string]string{"create_path": ""}, "create_path", "required"},
		{"missing root_secret", map[string]string{"root_secret": ""}, "root_secret", "required"},
		{"list needs items path", map[string]string{"list_items_path": ""}, "list_items_path", "required"},
		{"root create needs revoke", map[string]string{"root_revoke_path": ""}, "root_revoke_path", "required"},
		{"root create needs verify", map[string]string{"root_verify_path": "", "root_verify_id_path": ""}, "root_verify_path", "required"},
		{"root create needs id path", map[string]string{"root_id_path": ""}, "root_id_path", "required"},
		{"roll has no revoke", map[string]string{"root_roll": "true"}, "root_revoke_path", "must be empty"},
		{"root fields without create", map[string]string{"root_create_path": ""}, "root_revoke_path", "without root_create_path"},
		{"body not JSON", map[string]string{"create_body": `{"name": {{.Key.Name}}`}, "create_body", "invalid JSON"},
		{"value after backslash", map[string]string{"create_body": `{"name": "\{{.Key.Name}}"}`}, "create_body", "backslash"},
		{"value completes unicode escape", map[string]string{"create_body": `{"name": "\u00{{.Key.Name}}"}`}, "create_body", "backslash"},
		{"header name from variable", map[string]string{"create_headers": "{{.Key.Name}}: x"}, "create_headers", "header name cannot come from a variable"},
		{"header without colon", map[string]string{"auth_header": "Bearer {{.Root.Secret}}"}, "auth_header", `not a "Name: value" header`},
		{"control character in a header", map[string]string{"create_headers": "X-Trace: a\x15b"}, "create_headers", "control character"},
		{"bad header name", map[string]string{"create_headers": "X Team: 1"}, "create_headers", "not a valid header name"},
		{"unsupported content type", map[string]string{"create_headers": "Content-Type: text/plain"}, "create_headers", "neither JSON nor form"},
		{"relative path", map[string]string{"create_path": "v1/keys"}, "create_path", "must start with /"},
		{"path from a value", map[string]string{"verify_path": "{{.Key.Name}}"}, "verify_path", "must start with /"},
		{"content type from auth_header", map[string]string{"auth_header": "Authorization: x\nContent-Type: text/xml"}, "auth_header", "neither JSON nor form"},
		{"multi-line JSON path", map[string]string{"key_id_path": "id\nx"}, "key_id_path", "one line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := demoFields()
			for k, v := range tc.set {
				f[k] = v
			}
			err := typ.Validate(withDefaults(t, f))
			var fe *clients.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Message, tc.want) {
				t.Fatalf("err = %q, want field %s and %q", err, tc.field, tc.want)
			}
			if strings.Contains(fe.Message, "httptpl.") {
				t.Errorf("message leaks Go type names: %q", fe.Message)
			}
			if _, err := typ.New(clients.Config{Name: "x", BaseURL: "http://h", Fields: withDefaults(t, f), HTTP: clienttest.HTTP(t)}); err == nil {
				t.Error("New accepted what Validate rejects")
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	typ, _ := clients.Lookup("http")
	for name, set := range map[string]map[string]string{
		"demo":             {},
		"guarded index":    {"create_body": `{"first": {{if .Scopes}}{{index .Scopes 0}}{{else}}null{{end}}}`},
		"with and range":   {"create_body": `{"s": [{{range $i, $s := .Scopes}}{{if $i}},{{end}}{{$s}}{{end}}]{{with .Key.ExpiresAt}}, "e": {{.}}{{end}}}`},
		"urlquery in body": {"create_body": `{"u": "https://x/?n={{urlquery .Key.Name}}"}`},
		"multi-line auth":  {"auth_header": "Authorization: Bearer {{.Root.Secret}}\nAccept: application/vnd.example+json; version=3\n"},
		"vnd json":         {"create_headers": "Content-Type: application/vnd.api+json"},
		"gone list":        {"revoke_gone_status": "404, 410"},
		"lower method":     {"revoke_method": "delete"},
		"comment":          {"create_path": "/v1/keys{{/* the collection */}}"},
		"optional segment": {"create_path": "/{{.Parameters.org}}/keys"},
	} {
		t.Run(name, func(t *testing.T) {
			f := demoFields()
			for k, v := range set {
				f[k] = v
			}
			if err := typ.Validate(withDefaults(t, f)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
