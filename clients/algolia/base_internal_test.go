package algolia

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// Without base_url the API is the application's own host.
func TestBaseURLFromApplicationID(t *testing.T) {
	typ, _ := clients.Lookup(TypeName)
	hc, err := httpx.New(httpx.Options{Provider: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for base, want := range map[string]string{"": "https://APP1.algolia.net", "http://127.0.0.1:9/": "http://127.0.0.1:9"} {
		p, err := typ.Build(clients.Config{Name: "x", BaseURL: base, Fields: map[string]string{"application_id": "APP1", "admin_key": "k"}, HTTP: hc})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.(*provider).base; got != want {
			t.Errorf("base_url %q: API at %q, want %q", base, got, want)
		}
	}
}
