package twilio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/twilio"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/twilio/twiliotest"
)

func newProvider(t *testing.T, srv *twiliotest.Server, fields map[string]string) clients.Provider {
	t.Helper()
	urls := map[string]string{"iam_base_url": srv.URL, "accounts_base_url": srv.URL}
	return clienttest.New(t, twilio.TypeName, srv.URL, clienttest.Merge(urls, fields))
}

func tokenFields(srv *twiliotest.Server) map[string]string {
	return map[string]string{"account_sid": srv.AccountSID(), "auth_token": srv.AuthToken()}
}

func lastRequest(t *testing.T, srv *twiliotest.Server, method, path string) twiliotest.Recorded {
	t.Helper()
	return clienttest.Last(t, srv.Requests(), method+" "+path, func(r twiliotest.Recorded) bool { return r.Method == method && r.Path == path })
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		mainKey    bool
		scopes     []string
		params     map[string]string
		createPath string // "" = the account's Keys.json
		wantPolicy string
	}{
		{name: "standard with auth token"},
		{name: "standard with main key", mainKey: true},
		{name: "explicit standard", params: map[string]string{"key_type": "standard"}},
		{
			name:       "restricted with policy",
			params:     map[string]string{"key_type": "restricted", "policy": `{"allow":["/twilio/messaging/messages/create"]}`},
			createPath: "/v1/Keys",
			wantPolicy: `{"allow":["/twilio/messaging/messages/create"]}`,
		},
		{
			name:       "restricted from scopes",
			scopes:     []string{"/twilio/messaging/messages/create", "/twilio/messaging/messages/read"},
			params:     map[string]string{"key_type": "restricted"},
			createPath: "/v1/Keys",
			wantPolicy: `{"allow":["/twilio/messaging/messages/create","/twilio/messaging/messages/read"]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var srv *twiliotest.Server
			var fields map[string]string
			wantAuth := "auth_token"
			if tc.mainKey {
				srv = twiliotest.NewServer(twiliotest.WithMainKey())
				sid, secret := srv.MainKey()
				fields = map[string]string{"account_sid": srv.AccountSID(), "api_key_sid": sid, "api_key_secret": secret}
				wantAuth = "key:" + sid
			} else {
				srv = twiliotest.NewServer()
				fields = tokenFields(srv)
			}
			defer srv.Close()
			p := newProvider(t, srv, fields)
			createPath := tc.createPath
			if createPath == "" {
				createPath = "/2010-04-01/Accounts/" + srv.AccountSID() + "/Keys.json"
			}

			key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: tc.scopes, Parameters: tc.params})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if !strings.HasPrefix(key.ID, "SK") || key.Secret == "" || key.Name != "vault-app-1" || key.Extra["sid"] != key.ID {
				t.Fatalf("unexpected key %+v", key)
			}
			create := lastRequest(t, srv, http.MethodPost, createPath)
			if create.Auth != wantAuth {
				t.Errorf("create authenticated as %q, want %q", create.Auth, wantAuth)
			}
			if create.Body["FriendlyName"] != "vault-app-1" {
				t.Errorf("FriendlyName = %v", create.Body["FriendlyName"])
			}
			if tc.wantPolicy != "" {
				if create.Body["AccountSid"] != srv.AccountSID() || create.Body["KeyType"] != "restricted" {
					t.Errorf("restricted create body = %v", create.Body)
				}
				var got, want any
				_ = json.Unmarshal([]byte(fmt.Sprint(create.Body["Policy"])), &got)
				_ = json.Unmarshal([]byte(tc.wantPolicy), &want)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("Policy = %v, want %s", create.Body["Policy"], tc.wantPolicy)
				}
			}
			if !srv.IsLive(key.Secret) {
				t.Fatal("key not live")
			}

			if err := p.VerifyKey(ctx, key); err != nil {
				t.Fatalf("VerifyKey: %v", err)
			}
			verify := lastRequest(t, srv, http.MethodGet, "/2010-04-01/Accounts/"+srv.AccountSID()+"/Applications.json")
			if verify.Auth != "key:"+key.ID {
				t.Errorf("verify authenticated as %q, want the new key", verify.Auth)
			}

			if err := p.RevokeKey(ctx, key.ID); err != nil {
				t.Fatalf("RevokeKey: %v", err)
			}
			clienttest.AssertRevoked(t, p, key, srv.IsLive)
		})
	}
}

func TestFindKeysPagesAndTruncates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := twiliotest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, tokenFields(srv))
	for i := 0; i < 120; i++ {
		if _, err := p.CreateKey(ctx, clients.KeyRequest{Name: fmt.Sprintf("filler-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	long := "vault-" + strings.Repeat("x", 80)
	want, err := p.CreateKey(ctx, clients.KeyRequest{Name: long})
	if err != nil {
		t.Fatalf("CreateKey with a long name: %v", err)
	}
	if len(want.Name) != 64 {
		t.Fatalf("name not truncated to 64: %d", len(want.Name))
	}
	found, err := p.FindKeys(ctx, long)
	if err != nil {
		t.Fatalf("FindKeys: %v", err)
	}
	if len(found) != 1 || found[0].ID != want.ID {
		t.Fatalf("FindKeys = %+v, want %s", found, want.ID)
	}
	lists := 0
	for _, r := range srv.Requests() {
		if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/Keys.json") {
			lists++
		}
	}
	if lists != 2 {
		t.Fatalf("%d list pages fetched, want 2", lists)
	}
}

func TestRootRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := twiliotest.NewServer()
	defer srv.Close()
	oldToken := srv.AuthToken()
	old := newProvider(t, srv, tokenFields(srv))
	if !old.Capabilities().RootRotation {
		t.Fatal("auth token form must support root rotation")
	}
	oldID, err := old.RootID(ctx)
	if err != nil || oldID == "" || strings.Contains(oldID, oldToken) {
		t.Fatalf("RootID = %q, %v", oldID, err)
	}

	root, err := old.CreateRoot(ctx, "ignored")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	newToken := root.Fields["auth_token"]
	if newToken == "" || newToken != srv.SecondaryAuthToken() || root.ID == oldID {
		t.Fatalf("CreateRoot did not return the secondary token (id %q)", root.ID)
	}
	if lastRequest(t, srv, http.MethodPost, "/v1/AuthTokens/Secondary").Auth != "auth_token" {
		t.Error("secondary not created with the primary token")
	}
	if err := old.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot: %v", err)
	}
	if got := lastRequest(t, srv, http.MethodGet, "/2010-04-01/Accounts/"+srv.AccountSID()+".json").Auth; got != "auth_token:secondary" {
		t.Errorf("VerifyRoot authenticated as %q", got)
	}
	if !srv.IsLive(oldToken) {
		t.Fatal("old token died before the new one was persisted")
	}

	fresh := newProvider(t, srv, map[string]string{"account_sid": srv.AccountSID(), "auth_token": newToken})
	if err := fresh.RevokeRoot(ctx, root.ID); err == nil {
		t.Fatal("RevokeRoot accepted the id of the token in use")
	}
	if err := fresh.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	if got := lastRequest(t, srv, http.MethodPost, "/v1/AuthTokens/Promote").Auth; got != "auth_token:secondary" {
		t.Errorf("promote authenticated as %q", got)
	}
	if srv.AuthToken() != newToken || srv.SecondaryAuthToken() != "" || srv.IsLive(oldToken) {
		t.Fatal("secondary not promoted or old token still live")
	}
	if err := fresh.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"auth_token": oldToken}}); err == nil {
		t.Fatal("old token still accepted")
	}
	// Repeating the step (Vault died before recording it) changes nothing.
	if err := fresh.RevokeRoot(ctx, oldID); err != nil {
		t.Fatalf("repeated RevokeRoot: %v", err)
	}
	if srv.AuthToken() != newToken {
		t.Fatal("repeated RevokeRoot changed the primary token")
	}
	if id, _ := fresh.RootID(ctx); id != root.ID {
		t.Fatalf("RootID after rotation = %q, want %q", id, root.ID)
	}
	if _, err := fresh.CreateKey(ctx, clients.KeyRequest{Name: "after-rotation"}); err != nil {
		t.Fatalf("new token cannot issue keys: %v", err)
	}
}

// An abandoned rotation (verification failed, or WAL rollback after a
// crash) throws the new root away with the old, still-primary token: that
// must delete the secondary, never promote it. The backend uses DiscardRoot
// when a type has it and RevokeRoot(newRoot.ID) otherwise; both must be safe.
func TestAbandonedRootRotation(t *testing.T) {
	t.Parallel()
	discarders := map[string]func(p clients.Provider, root clients.Root) error{
		"DiscardRoot with the new root": func(p clients.Provider, root clients.Root) error {
			return p.(clients.RootDiscarder).DiscardRoot(context.Background(), root)
		},
		"DiscardRoot with only its id (after a restart)": func(p clients.Provider, root clients.Root) error {
			return p.(clients.RootDiscarder).DiscardRoot(context.Background(), clients.Root{ID: root.ID})
		},
		"RevokeRoot(new id)": func(p clients.Provider, root clients.Root) error {
			return p.RevokeRoot(context.Background(), root.ID)
		},
	}
	for name, discard := range discarders {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := twiliotest.NewServer()
			defer srv.Close()
			oldToken := srv.AuthToken()
			p := newProvider(t, srv, tokenFields(srv))
			root, err := p.CreateRoot(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			// A client built afresh from storage, as after a restart.
			restarted := newProvider(t, srv, tokenFields(srv))
			if err := discard(restarted, root); err != nil {
				t.Fatalf("discarding with the old token: %v", err)
			}
			if srv.AuthToken() != oldToken || !srv.IsLive(oldToken) {
				t.Fatal("the stored token stopped working")
			}
			if srv.IsLive(root.Fields["auth_token"]) || srv.SecondaryAuthToken() != "" {
				t.Fatal("abandoned secondary still live")
			}
			if err := discard(restarted, root); err != nil {
				t.Fatalf("repeated discard: %v", err)
			}
		})
	}
}

func TestDiscardRootNeverPromotes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := twiliotest.NewServer()
	defer srv.Close()
	oldToken := srv.AuthToken()
	old := newProvider(t, srv, tokenFields(srv))
	oldID, err := old.RootID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, err := old.CreateRoot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	holder := newProvider(t, srv, map[string]string{"account_sid": srv.AccountSID(), "auth_token": root.Fields["auth_token"]})
	d := holder.(clients.RootDiscarder)
	if err := d.DiscardRoot(ctx, root); err == nil {
		t.Fatal("DiscardRoot discarded the token the client holds")
	}
	if err := d.DiscardRoot(ctx, clients.Root{ID: oldID}); err == nil {
		t.Fatal("DiscardRoot from the secondary's side must refuse, not promote or delete")
	}
	if srv.AuthToken() != oldToken || srv.SecondaryAuthToken() != root.Fields["auth_token"] {
		t.Fatal("a refused discard changed the tokens")
	}
}

func TestRootIDRejectsStandardKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := twiliotest.NewServer()
	defer srv.Close()
	std, err := newProvider(t, srv, tokenFields(srv)).CreateKey(ctx, clients.KeyRequest{Name: "standard"})
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, srv, map[string]string{"account_sid": srv.AccountSID(), "api_key_sid": std.ID, "api_key_secret": std.Secret})
	_, err = p.RootID(ctx)
	var he *httpx.Error
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Fatalf("RootID with a Standard key = %v, want Twilio's 401", err)
	}
	if strings.Contains(err.Error(), std.Secret) {
		t.Fatalf("error leaks the key: %v", err)
	}
	bad := newProvider(t, srv, map[string]string{"account_sid": srv.AccountSID(), "auth_token": "0123456789abcdef0123456789abcdef"})
	if _, err := bad.RootID(ctx); err == nil {
		t.Fatal("RootID accepted a wrong auth token")
	}
}

func TestAPIKeyFormHasNoRootRotation(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer(twiliotest.WithMainKey())
	defer srv.Close()
	sid, secret := srv.MainKey()
	p := newProvider(t, srv, map[string]string{"account_sid": srv.AccountSID(), "api_key_sid": sid, "api_key_secret": secret})
	if p.Capabilities().RootRotation {
		t.Fatal("api-key form claims root rotation")
	}
	if id, err := p.RootID(context.Background()); err != nil || id != sid {
		t.Fatalf("RootID = %q, %v; want the key sid", id, err)
	}
	before := len(srv.LiveKeys())
	_, err := p.CreateRoot(context.Background(), "x")
	clienttest.AssertFieldError(t, err, "api_key_sid", "")
	if len(srv.LiveKeys()) != before || srv.SecondaryAuthToken() != "" {
		t.Fatal("refused rotation created something")
	}
}

func TestRetriesRateLimit(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, tokenFields(srv))
	srv.FailNext(2, http.StatusTooManyRequests)
	if _, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "after-429"}); err != nil {
		t.Fatalf("CreateKey after 429s: %v", err)
	}
	posts := clienttest.Count(srv.Requests(), func(r twiliotest.Recorded) bool { return r.Method == http.MethodPost })
	if posts != 3 {
		t.Fatalf("%d attempts, want 3", posts)
	}
}

func TestServerErrorsExhausted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := twiliotest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, tokenFields(srv))
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.CreateRoot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{srv.AuthToken(), key.Secret, root.Fields["auth_token"]}
	srv.FailNext(1000, http.StatusInternalServerError)
	calls := map[string]func() error{
		"create":      func() error { _, err := p.CreateKey(ctx, clients.KeyRequest{Name: "x"}); return err },
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"verify_root": func() error { return p.VerifyRoot(ctx, root) },
		"revoke_root": func() error { return p.RevokeRoot(ctx, root.ID) },
	}
	clienttest.AssertFailures(t, calls, http.StatusInternalServerError, secrets...)
}

func TestKeyOptionsRejected(t *testing.T) {
	t.Parallel()
	srv := twiliotest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, tokenFields(srv))
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"unknown parameter", nil, map[string]string{"expires": "1h"}, "parameters", "expires"},
		{"bad key type", nil, map[string]string{"key_type": "main"}, "parameters", "key_type"},
		{"policy not JSON", nil, map[string]string{"key_type": "restricted", "policy": "allow all"}, "parameters", "policy"},
		{"policy on standard key", nil, map[string]string{"policy": `{"allow":[]}`}, "parameters", "restricted"},
		{"scopes on standard key", []string{"/twilio/x"}, nil, "scopes", "restricted"},
		{"restricted without permissions", nil, map[string]string{"key_type": "restricted"}, "parameters", "policy"},
		{"scopes and policy", []string{"/twilio/x"}, map[string]string{"key_type": "restricted", "policy": `{"allow":["/twilio/y"]}`}, "scopes", "policy"},
	})
}

func TestValidate(t *testing.T) {
	t.Parallel()
	acct := "AC" + strings.Repeat("a1", 16)
	key := "SK" + strings.Repeat("b2", 16)
	clienttest.AssertValidate(t, twilio.TypeName, nil, []clienttest.FieldsCase{
		{"auth token form", map[string]string{"account_sid": acct, "auth_token": "t"}, ""},
		{"api key form", map[string]string{"account_sid": acct, "api_key_sid": key, "api_key_secret": "s"}, ""},
		{"bad account sid", map[string]string{"account_sid": "AC123", "auth_token": "t"}, "account_sid"},
		{"both forms", map[string]string{"account_sid": acct, "auth_token": "t", "api_key_sid": key, "api_key_secret": "s"}, "auth_token"},
		{"neither form", map[string]string{"account_sid": acct}, "auth_token"},
		{"secret without sid", map[string]string{"account_sid": acct, "api_key_secret": "s"}, "api_key_sid"},
		{"sid without secret", map[string]string{"account_sid": acct, "api_key_sid": key}, "api_key_secret"},
		{"bad key sid", map[string]string{"account_sid": acct, "api_key_sid": "AK1", "api_key_secret": "s"}, "api_key_sid"},
		{"bad iam url", map[string]string{"account_sid": acct, "auth_token": "t", "iam_base_url": "iam.twilio.com"}, "iam_base_url"},
		{"bad accounts url", map[string]string{"account_sid": acct, "auth_token": "t", "accounts_base_url": "ftp://x"}, "accounts_base_url"},
	})
}

func TestTypeDeclaration(t *testing.T) {
	t.Parallel()
	typ, _ := clients.Lookup(twilio.TypeName)
	sensitive := map[string]bool{"auth_token": true, "api_key_secret": true}
	defaults := map[string]string{"iam_base_url": "https://iam.twilio.com", "accounts_base_url": "https://accounts.twilio.com"}
	for _, f := range typ.Fields {
		if f.Sensitive != sensitive[f.Name] {
			t.Errorf("%s: Sensitive = %v", f.Name, f.Sensitive)
		}
		if f.Default != defaults[f.Name] {
			t.Errorf("%s: Default = %q", f.Name, f.Default)
		}
	}
	if typ.DefaultBaseURL != "https://api.twilio.com" {
		t.Errorf("DefaultBaseURL = %q", typ.DefaultBaseURL)
	}
}

// The verify works on a subaccount, which Twilio gives no balance
// information (Balance.json is a 404 there), and uses the key itself.
func TestVerifyOnSubaccount(t *testing.T) {
	srv := twiliotest.NewServer(twiliotest.AsSubaccount())
	defer srv.Close()
	p := newProvider(t, srv, tokenFields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey on a subaccount: %v", err)
	}
	v := lastRequest(t, srv, http.MethodGet, "/2010-04-01/Accounts/"+srv.AccountSID()+"/Applications.json")
	if v.Auth != "key:"+key.ID || v.Query.Get("PageSize") != "1" {
		t.Fatalf("verify request = %+v", v)
	}
}

// A Standard key already gone (404 on the 2010 delete) is revoked even when
// the IAM host, tried next for restricted keys, does not take the
// account's credentials.
func TestRevokeGoneKeyWithoutIAM(t *testing.T) {
	srv := twiliotest.NewServer(twiliotest.WithoutIAM())
	defer srv.Close()
	p := newProvider(t, srv, tokenFields(srv))
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey of a key already gone: %v", err)
	}
	reqs := srv.Requests()
	if last := reqs[len(reqs)-1]; last.Method != http.MethodDelete || last.Path != "/v1/Keys/"+key.ID {
		t.Fatalf("last request = %+v, want the IAM delete (which the fake refuses with 401)", last)
	}
}
