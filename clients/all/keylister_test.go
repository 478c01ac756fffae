package all_test

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
)

// cannotListKeys are the types that declare ListByName (FindKeys finds a
// key by the name it was created with) but cannot list every key of the
// account for tidy's orphan scan, and why. Every other ListByName type must
// implement clients.KeyLister.
var cannotListKeys = map[string]string{
	// The generic HTTP type's list request is the operator's template,
	// which may search by the key's name (list_path with {{.Key.Name}}):
	// there is no "every key" request to send, and no creation-time path.
	"http": "its list request is a template that may search by name",
}

// TestListByNameTypesListKeys: tidy's orphan scan sees the keys of a type
// only when its client is a clients.KeyLister. A type whose API lists its
// keys by name (ListByName) lists them all in the same call, so it must
// implement ListKeys, unless it is on cannotListKeys with the reason.
func TestListByNameTypesListKeys(t *testing.T) {
	cases := map[string]map[string]string{}
	for _, tc := range typeCases() {
		cases[tc.name] = tc.fields
	}
	for _, typ := range clients.Types() {
		t.Run(typ.Name, func(t *testing.T) {
			fields, ok := cases[typ.Name]
			if !ok {
				t.Fatalf("provider type %q has no case in typeCases", typ.Name)
			}
			p := clienttest.New(t, typ.Name, "https://api.example.com", fields)
			_, lister := p.(clients.KeyLister)
			why, exempt := cannotListKeys[typ.Name]
			switch {
			case typ.Capabilities.ListByName && !lister && !exempt:
				t.Errorf("provider type %q lists keys by name (ListByName) but does not implement clients.KeyLister, "+
					"so tidy's orphan scan cannot see its keys: implement ListKeys, or add it to cannotListKeys saying why", typ.Name)
			case exempt && lister:
				t.Errorf("provider type %q implements clients.KeyLister but is on cannotListKeys (%s)", typ.Name, why)
			case lister && !typ.Capabilities.ListByName:
				t.Errorf("provider type %q implements clients.KeyLister without declaring ListByName", typ.Name)
			}
		})
	}
	for name := range cannotListKeys {
		if _, ok := clients.Lookup(name); !ok {
			t.Errorf("cannotListKeys names %q, which is not a registered type", name)
		}
	}
}
