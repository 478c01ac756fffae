package datadog

import (
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

func TestBaseURLFromSite(t *testing.T) {
	t.Parallel()
	hc, err := httpx.New(httpx.Options{Provider: "test"})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{"api_key": "a", "app_key": "b"}
	tests := []struct {
		site, baseURL, want string
	}{
		{"datadoghq.com", "", "https://api.datadoghq.com"},
		{"us5.datadoghq.com", "", "https://api.us5.datadoghq.com"},
		{"datadoghq.eu", "", "https://api.datadoghq.eu"},
		{"ddog-gov.com", "", "https://api.ddog-gov.com"},
		{"datadoghq.eu", "http://127.0.0.1:9", "http://127.0.0.1:9"},
		{"", "http://127.0.0.1:9/", "http://127.0.0.1:9"},
	}
	for _, tc := range tests {
		fields := map[string]string{"site": tc.site}
		for k, v := range keys {
			fields[k] = v
		}
		p, err := newClient(clients.Config{Name: "dd", BaseURL: tc.baseURL, Fields: fields, HTTP: hc})
		if err != nil {
			t.Fatalf("%s/%s: %v", tc.site, tc.baseURL, err)
		}
		if got := p.(*client).base; got != tc.want {
			t.Errorf("site %q base_url %q: base = %q, want %q", tc.site, tc.baseURL, got, tc.want)
		}
	}
}
