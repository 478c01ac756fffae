//go:build e2e

package e2e

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// Acceptance 7: every bad input gets a 400 naming the field, and nothing
// stored changes.
func TestBadInputIs400AndChangesNothing(t *testing.T) {
	c, d := sharedVlt.client, sharedDemo
	prov, role := setupDynamic(t, c, d, map[string]any{"scopes": "read,write"})
	mount := "thirdparty"
	pPath, rPath := mount+"/providers/"+prov, mount+"/roles/"+role

	cases := []struct {
		name, path string
		data       map[string]any
		want       string // the field (or phrase) the error must name
	}{
		{"unknown type", mount + "/providers/" + uniq("x"), map[string]any{"type": "nosuch", "base_url": d.URL}, "type"},
		{"missing type", mount + "/providers/" + uniq("x"), map[string]any{"base_url": d.URL, "admin_key": "k"}, "type"},
		{"field the type does not use", pPath, map[string]any{"api_token": "x"}, "api_token"},
		{"missing required field", mount + "/providers/" + uniq("x"), map[string]any{"type": "demo", "base_url": d.URL}, "admin_key"},
		{"missing base_url", mount + "/providers/" + uniq("x"), map[string]any{"type": "demo", "admin_key": "k"}, "base_url"},
		{"malformed base_url", pPath, map[string]any{"base_url": "ftp://x"}, "base_url"},
		{"base_url without host", pPath, map[string]any{"base_url": "http://"}, "base_url"},
		{"bad duration", pPath, map[string]any{"request_timeout": "soon"}, "request_timeout"},
		{"bad cron", pPath, map[string]any{"rotation_schedule": "61 * * * *"}, "rotation_schedule"},
		{"changing type", pPath, map[string]any{"type": "http"}, "type"},
		{"max_concurrency out of range", pPath, map[string]any{"max_concurrency": 0}, "max_concurrency"},
		{"ttl > max_ttl", rPath, map[string]any{"ttl": "2h", "max_ttl": "1h"}, "ttl"},
		{"bad role duration", rPath, map[string]any{"ttl": "banana"}, "ttl"},
		{"role with unknown provider", mount + "/roles/" + uniq("x"), map[string]any{"provider": "nosuch", "mode": "dynamic"}, "provider"},
		{"role without provider", mount + "/roles/" + uniq("x"), map[string]any{"mode": "dynamic"}, "provider"},
		{"role without mode", mount + "/roles/" + uniq("x"), map[string]any{"provider": prov}, "mode"},
		{"unknown mode", mount + "/roles/" + uniq("x"), map[string]any{"provider": prov, "mode": "triple"}, "mode"},
		{"changing mode", rPath, map[string]any{"mode": "dual"}, "mode"},
		{"rotation on a dynamic role", rPath, map[string]any{"rotation_period": "1h"}, "rotation_period"},
		{"bad name_template", rPath, map[string]any{"name_template": "{{.Nope"}, "name_template"},
		{"deleting a provider in use", pPath, nil, role},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			beforeP, beforeR := read(t, c, pPath).Data, read(t, c, rPath).Data
			var err error
			if tc.data == nil {
				_, err = c.Logical().Delete(tc.path)
			} else {
				_, err = c.Logical().Write(tc.path, tc.data)
			}
			re, ok := err.(*api.ResponseError)
			if !ok || re.StatusCode != 400 {
				t.Fatalf("want a 400, got %v", err)
			}
			if msg := strings.Join(re.Errors, "; "); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not name %q", msg, tc.want)
			}
			if got := read(t, c, pPath).Data; !reflect.DeepEqual(got, beforeP) {
				t.Errorf("provider changed:\n before %v\n after  %v", beforeP, got)
			}
			if got := read(t, c, rPath).Data; !reflect.DeepEqual(got, beforeR) {
				t.Errorf("role changed:\n before %v\n after  %v", beforeR, got)
			}
			if strings.Contains(tc.path, "/providers/") && tc.path != pPath {
				if s, _ := c.Logical().Read(tc.path); s != nil {
					t.Errorf("a failed create stored %s", tc.path)
				}
			}
		})
	}
}

// A provider read returns the non-sensitive fields and never a secret.
func TestProviderReadHasNoSecret(t *testing.T) {
	c, d := sharedVlt.client, sharedDemo
	prov := uniq("demo")
	writeDemoProvider(t, c, "thirdparty", prov, d)
	s := read(t, c, "thirdparty/providers/"+prov)
	if _, ok := s.Data["admin_key"]; ok {
		t.Fatal("provider read returns admin_key")
	}
	for k, v := range s.Data {
		if str, ok := v.(string); ok && strings.Contains(str, d.AdminKey) {
			t.Fatalf("provider read field %s carries the admin key", k)
		}
	}
	for _, f := range []string{"type", "base_url", "request_timeout", "max_concurrency", "root_key_id",
		"root_rotated_at", "next_root_rotation", "last_root_rotation_error", "root_revocations", "rotation_period", "rotation_schedule"} {
		if _, ok := s.Data[f]; !ok {
			t.Errorf("provider read lacks %s", f)
		}
	}
	if s.Data["root_key_id"] == "" {
		t.Error("root_key_id is empty: the plugin did not learn the admin key's id")
	}
}
