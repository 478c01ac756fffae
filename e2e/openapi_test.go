//go:build e2e

package e2e

// The OpenAPI document Vault generates from the plugin's path definitions
// (GET /v1/sys/internal/specs/openapi, what `vault read
// sys/internal/specs/openapi` shows, and what the UI and client generators
// use): every path of the mount is there, every operation has a summary,
// every path parameter and request field has a description, and every
// write-only field is marked sensitive (Vault 1.21 emits
// "x-vault-displayAttrs": {"sensitive": true} for DisplayAttrs.Sensitive).

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/all"
)

type oaSchema struct {
	Ref          string               `json:"$ref"`
	Type         string               `json:"type"`
	Format       string               `json:"format"`
	Description  string               `json:"description"`
	Properties   map[string]*oaSchema `json:"properties"`
	DisplayAttrs *struct {
		Sensitive bool `json:"sensitive"`
	} `json:"x-vault-displayAttrs"`
}

type oaOperation struct {
	Summary     string        `json:"summary"`
	OperationID string        `json:"operationId"`
	Parameters  []oaParameter `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema *oaSchema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
}

type oaParameter struct {
	Name        string `json:"name"`
	In          string `json:"in"`
	Description string `json:"description"`
}

type oaPath struct {
	Description string        `json:"description"`
	Parameters  []oaParameter `json:"parameters"`
	Get         *oaOperation  `json:"get"`
	Post        *oaOperation  `json:"post"`
	Delete      *oaOperation  `json:"delete"`
}

type oaDoc struct {
	OpenAPI    string             `json:"openapi"`
	Paths      map[string]*oaPath `json:"paths"`
	Components struct {
		Schemas map[string]*oaSchema `json:"schemas"`
	} `json:"components"`
}

func fetchOpenAPI(t *testing.T) *oaDoc {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, sharedVlt.addr+"/v1/sys/internal/specs/openapi", nil)
	req.Header.Set("X-Vault-Token", rootToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET sys/internal/specs/openapi: %d %s", resp.StatusCode, body)
	}
	var doc oaDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	return &doc
}

func TestOpenAPIDescribesTheMount(t *testing.T) {
	doc := fetchOpenAPI(t)
	// path → the operations it must have.
	want := map[string][]string{
		"/thirdparty/providers/{name}":                {"get", "post", "delete"},
		"/thirdparty/providers/":                      {"get"},
		"/thirdparty/roles/{name}":                    {"get", "post", "delete"},
		"/thirdparty/roles/":                          {"get"},
		"/thirdparty/creds/{role}":                    {"get"},
		"/thirdparty/rotate-role/{name}":              {"post"},
		"/thirdparty/rotate-root/{name}":              {"post"},
		"/thirdparty/status":                          {"get"},
		"/thirdparty/metrics":                         {"get"},
		"/thirdparty/tidy":                            {"post"},
		"/thirdparty/tidy-status":                     {"get"},
		"/thirdparty/tidy-cancel":                     {"post"},
		"/thirdparty/tombstones/":                     {"get"},
		"/thirdparty/tombstones/{name}/{incarnation}": {"get", "delete"},
		"/thirdparty/config/auto-tidy":                {"get", "post"},
	}
	var extra []string
	for p := range doc.Paths {
		if _, ok := want[p]; !ok && strings.HasPrefix(p, "/thirdparty/") {
			extra = append(extra, p)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		t.Logf("other paths of the mount (checked too): %v", extra)
		for _, p := range extra {
			want[p] = nil
		}
	}

	fields, operations := 0, 0
	for p, ops := range want {
		pi := doc.Paths[p]
		if pi == nil {
			t.Errorf("%s is not in the OpenAPI document", p)
			continue
		}
		if strings.TrimSpace(pi.Description) == "" {
			t.Errorf("%s has no description (HelpSynopsis)", p)
		}
		for _, prm := range pi.Parameters {
			if strings.TrimSpace(prm.Description) == "" {
				t.Errorf("%s: path parameter %s has no description", p, prm.Name)
			}
		}
		byMethod := map[string]*oaOperation{"get": pi.Get, "post": pi.Post, "delete": pi.Delete}
		for _, m := range ops {
			if byMethod[m] == nil {
				t.Errorf("%s has no %s operation", p, m)
			}
		}
		for m, op := range byMethod {
			if op == nil {
				continue
			}
			operations++
			if strings.TrimSpace(op.Summary) == "" {
				t.Errorf("%s %s has no summary", m, p)
			}
			if op.RequestBody == nil {
				continue
			}
			s := opRequestSchema(doc, op)
			if s == nil {
				t.Errorf("%s %s: no request schema", m, p)
				continue
			}
			for name, f := range s.Properties {
				if strings.TrimSpace(f.Description) == "" {
					t.Errorf("%s %s: field %s has no description", m, p, name)
				}
			}
			fields += len(s.Properties)
		}
	}

	t.Logf("%d paths, %d operations, %d request fields checked", len(want), operations, fields)
	if fields < 50 {
		t.Errorf("only %d request fields found; the request schemas were not read", fields)
	}

	// Sensitive fields: every field a provider type declares sensitive
	// (write-only), plus names that always hold a credential.
	prov := requestSchema(t, doc, "/thirdparty/providers/{name}")
	mustBeSensitive := map[string]string{}
	for _, ty := range clients.Types() {
		for _, f := range ty.Fields {
			if f.Sensitive {
				mustBeSensitive[f.Name] = "sensitive in provider type " + ty.Name
			}
		}
	}
	for _, n := range []string{"admin_key", "api_key", "api_token", "app_key", "auth_token", "api_key_secret", "root_secret", "token", "password", "secret", "private_key"} {
		if _, ok := prov.Properties[n]; ok && mustBeSensitive[n] == "" {
			mustBeSensitive[n] = "a credential by its name"
		}
	}
	if len(mustBeSensitive) < 5 {
		t.Fatalf("only %d sensitive provider fields: %v", len(mustBeSensitive), mustBeSensitive)
	}
	for n, why := range mustBeSensitive {
		f := prov.Properties[n]
		switch {
		case f == nil:
			t.Errorf("providers/{name}: no field %s (%s)", n, why)
		case !(f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive) && f.Format != "password":
			t.Errorf("providers/{name}: field %s (%s) is not marked sensitive", n, why)
		}
	}
	for n, f := range prov.Properties {
		if f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive && mustBeSensitive[n] == "" {
			t.Errorf("providers/{name}: field %s is marked sensitive but no provider type declares it so", n)
		}
	}
	// No role or rotate field is a credential.
	for _, p := range []string{"/thirdparty/roles/{name}", "/thirdparty/rotate-role/{name}"} {
		for n, f := range requestSchema(t, doc, p).Properties {
			if f.DisplayAttrs != nil && f.DisplayAttrs.Sensitive {
				t.Errorf("%s: field %s is marked sensitive", p, n)
			}
		}
	}
	t.Logf("%d sensitive provider fields marked: %v", len(mustBeSensitive), sortedKeys(mustBeSensitive))
}

// opRequestSchema returns the fields of an operation's request body. For an
// external plugin Vault 1.21 loses the body's "$ref" on its way from the
// plugin (hashicorp/vault#30714: mapstructure does not map "$ref" to Ref),
// so the body's schema is {}; the schema itself is still in
// components.schemas under the name Vault derives from the operationId.
func opRequestSchema(doc *oaDoc, op *oaOperation) *oaSchema {
	for _, ct := range op.RequestBody.Content {
		s := ct.Schema
		if s != nil && s.Ref != "" {
			s = doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		}
		if s != nil && len(s.Properties) > 0 {
			return s
		}
	}
	name := ""
	for _, w := range strings.Split(op.OperationID, "-") {
		if w != "" {
			name += strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return doc.Components.Schemas[name+"Request"]
}

func requestSchema(t *testing.T, doc *oaDoc, path string) *oaSchema {
	t.Helper()
	pi := doc.Paths[path]
	if pi == nil || pi.Post == nil || pi.Post.RequestBody == nil {
		t.Fatalf("%s has no request body", path)
	}
	s := opRequestSchema(doc, pi.Post)
	if s == nil || len(s.Properties) == 0 {
		t.Fatalf("%s: request body has no fields", path)
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
