//go:build e2e

package e2e

// Issue 9, items 2 and 3, through a real Vault with a file audit device:
// a secret in a failed request's path, and a provider that redirects to
// another host, leave the secret in no API response, no server log line and
// no audit log line, and the other host receives nothing.

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/datadog/datadogtest"
)

// auditedVault is a dev Vault of these tests' own with a file audit device:
// enabling audit on the shared server would change what other tests log.
var auditedVault struct {
	once  sync.Once
	v     *vaultServer
	audit string
	err   error
}

func startAuditedVault(t *testing.T) (*vaultServer, string) {
	t.Helper()
	auditedVault.once.Do(func() {
		v, err := startDevVault("sechttp")
		if err != nil {
			auditedVault.err = err
			return
		}
		path := filepath.Join(workDir, "sechttp-audit.log")
		err = v.client.Sys().EnableAuditWithOptions("file", &api.EnableAuditOptions{
			Type: "file", Options: map[string]string{"file_path": path},
		})
		auditedVault.v, auditedVault.audit, auditedVault.err = v, path, err
	})
	if auditedVault.err != nil {
		t.Fatal(auditedVault.err)
	}
	return auditedVault.v, auditedVault.audit
}

// secretForms are the forms a secret may be written in: as is, URL-escaped
// (path and query), JSON-escaped, base64 and hex.
func secretForms(secrets ...string) []string {
	var out []string
	for _, s := range secrets {
		js, _ := json.Marshal(s)
		out = append(out, s, url.PathEscape(s), url.QueryEscape(s), string(js[1:len(js)-1]),
			base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)),
			hex.EncodeToString([]byte(s)))
	}
	return out
}

// assertNowhere fails t if any form of the secrets is in the text of what
// Vault answered, in Vault's log or in its audit log.
// audited is text the audit log must hold (the error's status), so the
// search is known to look where the error went.
func assertNowhere(t *testing.T, v *vaultServer, auditPath, answered, audited string, secrets ...string) {
	t.Helper()
	audit, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), audited) {
		t.Fatalf("the audit log does not hold %q: is the device enabled?", audited)
	}
	places := map[string]string{"the API response": answered, "the Vault server log": v.log(), "the audit log": string(audit)}
	for where, text := range places {
		for _, f := range secretForms(secrets...) {
			if strings.Contains(text, f) {
				t.Errorf("%s holds a secret (form %q…)", where, f[:min(8, len(f))])
			}
		}
	}
	for _, s := range secrets {
		issued.add(s) // TestNoSecretInLogs looks again at the end
	}
}

// Item 2: an http provider whose create_path carries the root secret. The
// create fails (a 500 that echoes the path, as careless APIs do); the
// error names the provider and the status, and neither it, nor the server
// log, nor the audit log holds the secret in any form.
func TestSecretInPathIsRedacted(t *testing.T) {
	v, auditPath := startAuditedVault(t)
	c := v.client
	var hits atomic.Int32
	api500 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		msg, _ := json.Marshal(map[string]string{"message": "no route for " + r.URL.Path + " (" + r.RequestURI + ")"})
		_, _ = w.Write(msg)
	}))
	defer api500.Close()

	// Characters that URL-escape, JSON-escape and base64 differently.
	secret := "rootS3cr+t/" + randHex(12) + "&x=é"
	mount := uniq("sechttp")
	if err := v.mount(mount); err != nil {
		t.Fatal(err)
	}
	write(t, c, mount+"/providers/tpl", map[string]any{
		"type":            "http",
		"base_url":        api500.URL,
		"root_secret":     secret,
		"create_path":     "/v1/accounts/{{.Root.Secret}}/keys/{{urlquery .Root.Secret}}",
		"create_body":     `{"name": {{.Key.Name}}}`,
		"key_id_path":     "id",
		"key_secret_path": "key",
		"verify_path":     "/v1/whoami",
		"revoke_path":     "/v1/keys/{{.Key.ID}}",
	})
	write(t, c, mount+"/roles/dyn", map[string]any{"provider": "tpl", "mode": "dynamic", "ttl": "5m"})

	_, err := c.Logical().Read(mount + "/creds/dyn")
	if err == nil {
		t.Fatal("creds read succeeded against a provider that answers 500")
	}
	if hits.Load() == 0 {
		t.Fatal("the provider was never called")
	}
	msg := err.Error()
	if !strings.Contains(msg, `provider "tpl"`) || !strings.Contains(msg, "HTTP 500") || !strings.Contains(msg, "[redacted]") {
		t.Errorf("creds error %q does not name the provider and the status with the secret redacted", msg)
	}
	assertNowhere(t, v, auditPath, msg, "HTTP 500", secret)
}

// Item 3: a datadog provider whose base_url starts answering 307 to a
// second loopback listener. The creds read fails with a clear error; the
// second listener receives nothing (Go would have forwarded DD-API-KEY and
// DD-APPLICATION-KEY); and the DD keys are in no response, log or audit
// line.
func TestRedirectToAnotherHostIsNotFollowed(t *testing.T) {
	v, auditPath := startAuditedVault(t)
	c := v.client
	dd := datadogtest.NewServer()
	defer dd.Close()

	var awayHits atomic.Int32
	var awayHeaders sync.Map
	away := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		awayHits.Add(1)
		awayHeaders.Store(awayHits.Load(), r.Header.Clone())
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":{"id":"stolen","type":"application_keys","attributes":{"key":"x"}}}`))
	}))
	defer away.Close()

	// The provider's address: a proxy to the Datadog stand-in until it
	// turns to redirecting every request to the other listener.
	ddURL, _ := url.Parse(dd.URL)
	proxy := httputil.NewSingleHostReverseProxy(ddURL)
	var redirecting atomic.Bool
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if redirecting.Load() {
			w.Header().Set("Location", away.URL+r.URL.Path+"?"+r.URL.RawQuery)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer origin.Close()

	mount := uniq("sechttp")
	if err := v.mount(mount); err != nil {
		t.Fatal(err)
	}
	apiKey, appKey := dd.RootAPIKey(), dd.RootAppKey()
	write(t, c, mount+"/providers/dd", map[string]any{"type": "datadog", "base_url": origin.URL, "api_key": apiKey, "app_key": appKey})
	write(t, c, mount+"/roles/dyn", map[string]any{"provider": "dd", "mode": "dynamic", "ttl": "5m",
		"scopes": []string{"dashboards_read"}, "parameters": map[string]any{"key_kind": "application_key"}})

	redirecting.Store(true)
	_, err := c.Logical().Read(mount + "/creds/dyn")
	if err == nil {
		t.Fatal("creds read succeeded through a redirect to another host")
	}
	msg := err.Error()
	if !strings.Contains(msg, `provider "dd"`) || !strings.Contains(msg, "HTTP 307") || !strings.Contains(msg, "not followed") {
		t.Errorf("creds error %q does not say the provider's 307 was not followed", msg)
	}
	if n := awayHits.Load(); n != 0 {
		first, _ := awayHeaders.Load(int32(1))
		t.Fatalf("the other host received %d requests (first with headers %v)", n, first)
	}
	assertNowhere(t, v, auditPath, msg, "HTTP 307", apiKey, appKey)
}
