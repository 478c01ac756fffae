package mongodbatlas_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/internal/clienttest"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mongodbatlas"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/mongodbatlas/mongodbatlastest"
)

const keys = "/api/atlas/v2/orgs/" + mongodbatlastest.DefaultOrgID + "/apiKeys"

func fields(k mongodbatlastest.Key) map[string]string {
	return map[string]string{"public_key": k.PublicKey, "private_key": k.PrivateKey, "org_id": mongodbatlastest.DefaultOrgID}
}

func newProvider(t *testing.T, srv *mongodbatlastest.Server, k mongodbatlastest.Key) clients.Provider {
	t.Helper()
	return clienttest.New(t, mongodbatlas.TypeName, srv.URL, fields(k))
}

// authed are the requests that were not the Digest challenge round trip.
func authed(srv *mongodbatlastest.Server) []mongodbatlastest.Recorded {
	var out []mongodbatlastest.Recorded
	for _, r := range srv.Requests() {
		if !r.Challenge {
			out = append(out, r)
		}
	}
	return out
}

func last(srv *mongodbatlastest.Server) mongodbatlastest.Recorded {
	r := authed(srv)
	return r[len(r)-1]
}

func TestRegistered(t *testing.T) {
	typ := clienttest.Type(t, mongodbatlas.TypeName)
	if typ.DefaultBaseURL != "https://cloud.mongodb.com" || typ.KeyNameLimit() != 250 {
		t.Fatalf("base %q, name limit %d", typ.DefaultBaseURL, typ.KeyNameLimit())
	}
	if c := typ.Capabilities; c.Expiry || !c.ListByName || !c.RootRotation || c.NativeRoll {
		t.Fatalf("capabilities = %+v", c)
	}
	good := map[string]string{"public_key": "abcdefgh", "private_key": "p", "org_id": mongodbatlastest.DefaultOrgID}
	clienttest.AssertValidate(t, mongodbatlas.TypeName, good, []clienttest.FieldsCase{
		{"ok", nil, ""},
		{"public key missing", map[string]string{"public_key": ""}, "public_key"},
		{"private key missing", map[string]string{"private_key": " "}, "private_key"},
		{"org id not hex", map[string]string{"org_id": "my-org"}, "org_id"},
		{"org id with a slash", map[string]string{"org_id": "5a0a1e7e0f2912c554080adc/../x"}, "org_id"},
	})
}

// The client answers Atlas's Digest challenge (once per pair: the
// challenge is then reused), sends the versioned media type, and creates,
// verifies and deletes keys.
func TestKeyLifecycle(t *testing.T) {
	srv := mongodbatlastest.NewServer()
	defer srv.Close()
	root := srv.Root()
	p := newProvider(t, srv, root)
	ctx := context.Background()

	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "vault-app-1", Scopes: []string{"ORG_READ_ONLY", "ORG_MEMBER"}})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || !reqs[0].Challenge || reqs[0].Status != 401 || reqs[1].Auth != "root" {
		t.Fatalf("want the challenge then the authenticated create, got %+v", reqs)
	}
	c := reqs[1]
	if c.Method != http.MethodPost || c.Path != keys || c.Accept != mongodbatlastest.MediaType || c.Body["desc"] != "vault-app-1" ||
		strings.Join(clientsStrings(c.Body["roles"]), ",") != "ORG_READ_ONLY,ORG_MEMBER" {
		t.Fatalf("create request = %+v", c)
	}
	if len(key.ID) != 24 || key.Secret == "" || key.Extra["public_key"] == "" || key.Extra["org_id"] != mongodbatlastest.DefaultOrgID ||
		key.Extra["roles"] != "ORG_READ_ONLY,ORG_MEMBER" || !key.ExpiresAt.IsZero() {
		t.Fatalf("key = %+v", key)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatalf("VerifyKey: %v", err)
	}
	if v := last(srv); v.Method != http.MethodGet || v.Path != "/api/atlas/v2/orgs/"+mongodbatlastest.DefaultOrgID || v.Auth != "key:"+key.ID {
		t.Fatalf("verify request = %+v", v)
	}
	srv.ResetRequests()
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if r := srv.Requests(); len(r) != 1 || r[0].Method != http.MethodDelete || r[0].Path != keys+"/"+key.ID || r[0].Status != 204 || r[0].Auth != "root" {
		t.Fatalf("revoke requests (the root's challenge is reused) = %+v", r)
	}
	err = clienttest.AssertRevoked(t, p, key, srv.IsLive, root.PrivateKey, key.Extra["public_key"])
	if !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "USER_UNAUTHORIZED") {
		t.Fatalf("VerifyKey after revoke = %v", err)
	}
	if r := last(srv); r.Status != http.StatusNotFound {
		t.Fatalf("second revoke got %d, want the server's 404", r.Status)
	}
}

func clientsStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// Dual rotation: the new key is made and verified while the old one still
// works; revoking the old one leaves the new one working.
func TestDualRotationOverlap(t *testing.T) {
	srv := mongodbatlastest.NewServer()
	defer srv.Close()
	clienttest.AssertDualOverlap(t, newProvider(t, srv, srv.Root()), clients.KeyRequest{Name: "vault-dual", Scopes: []string{"ORG_MEMBER"}}, srv.IsLive)
}

func TestBadRequests(t *testing.T) {
	srv := mongodbatlastest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, srv.Root())
	clienttest.AssertKeysRejected(t, p, func() int { return len(srv.Requests()) }, []clienttest.KeyRejection{
		{"no roles", nil, nil, "scopes", "at least one organization role"},
		{"project role", []string{"GROUP_OWNER"}, nil, "scopes", `"GROUP_OWNER" is not an Atlas organization role`},
		{"parameters", []string{"ORG_MEMBER"}, map[string]string{"desc": "x"}, "parameters", `"desc"`},
	})
}

// A create whose answer is lost (a 500 after the key was stored) is not
// retried, and FindKeys finds the key by name so rollback can revoke it.
func TestLostCreateIsFoundNotOrphaned(t *testing.T) {
	srv := mongodbatlastest.NewServer(mongodbatlastest.WithMaxPage(1))
	defer srv.Close()
	srv.AddKey("other", "ORG_MEMBER")
	posts := func() int {
		return clienttest.Count(srv.Requests(), func(r mongodbatlastest.Recorded) bool { return r.Method == http.MethodPost && !r.Challenge })
	}
	clienttest.AssertLostCreateFound(t, newProvider(t, srv, srv.Root()), clients.KeyRequest{Name: "vault-wal-1", Scopes: []string{"ORG_MEMBER"}}, srv.LoseNextCreate, posts,
		func(name string) bool {
			return slices.ContainsFunc(srv.LiveKeys(), func(k mongodbatlastest.Key) bool { return k.Desc == name })
		})
}

func TestRootRotation(t *testing.T) {
	srv := mongodbatlastest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	old := srv.Root()
	other := srv.AddKey("someone else's", "ORG_OWNER")
	p := newProvider(t, srv, old)
	if id, err := p.RootID(ctx); err != nil || id != old.ID {
		t.Fatalf("RootID = %q, %v; want %s", id, err, old.ID)
	}
	root, err := p.CreateRoot(ctx, "vault-root-2")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	if root.ID == "" || root.ID == old.ID || root.Fields["public_key"] == "" || root.Fields["private_key"] == "" {
		t.Fatalf("root = %s", root.ID)
	}
	if c := last(srv); c.Method != http.MethodPost || c.Path != keys || c.Auth != "root" || c.Body["desc"] != "vault-root-2" ||
		strings.Join(clientsStrings(c.Body["roles"]), ",") != "ORG_OWNER" {
		t.Fatalf("create_root request = %+v", c)
	}
	if err := p.VerifyRoot(ctx, root); err != nil {
		t.Fatalf("VerifyRoot: %v", err)
	}
	if v := last(srv); v.Method != http.MethodGet || v.Path != keys || v.Auth != "key:"+root.ID {
		t.Fatalf("verify_root request = %+v", v)
	}
	next := mongodbatlastest.Key{PublicKey: root.Fields["public_key"], PrivateKey: root.Fields["private_key"]}
	cur := newProvider(t, srv, next)
	if err := cur.RevokeRoot(ctx, old.ID); err != nil {
		t.Fatalf("RevokeRoot: %v", err)
	}
	if r := last(srv); r.Method != http.MethodDelete || r.Path != keys+"/"+old.ID || r.Auth != "key:"+root.ID {
		t.Fatalf("revoke_root request = %+v", r)
	}
	if srv.IsLive(old.PrivateKey) || !srv.IsLive(next.PrivateKey) || !srv.IsLive(other.PrivateKey) {
		t.Fatal("after RevokeRoot exactly the old pair must be gone")
	}
	err = cur.VerifyRoot(ctx, clients.Root{Fields: map[string]string{"public_key": old.PublicKey, "private_key": old.PrivateKey}})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("old root verified: %v", err)
	}
	clienttest.AssertNoSecret(t, err, old.PrivateKey, next.PrivateKey, old.PublicKey)
	if err := cur.RevokeRoot(ctx, old.ID); err != nil {
		t.Fatalf("RevokeRoot again: %v", err)
	}
}

// A pair of another organization (or one that is not an owner) cannot be
// rotated: nothing is created.
func TestRootRotationRefusals(t *testing.T) {
	srv := mongodbatlastest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	member := srv.AddKey("member", "ORG_MEMBER")
	_, err := newProvider(t, srv, member).CreateRoot(ctx, "r")
	if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), "USER_CANNOT_ACCESS_ORG") {
		t.Fatalf("CreateRoot as a member = %v", err)
	}
	clienttest.AssertNoSecret(t, err, member.PrivateKey, member.PublicKey)
	f := fields(srv.Root())
	f["private_key"] = "wrong"
	_, err = clienttest.New(t, mongodbatlas.TypeName, srv.URL, f).CreateRoot(ctx, "r")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("CreateRoot with a wrong private key = %v", err)
	}
	if n := len(srv.LiveKeys()); n != 2 {
		t.Fatalf("%d keys live", n)
	}
}

func TestRateLimitRetried(t *testing.T) {
	srv := mongodbatlastest.NewServer()
	defer srv.Close()
	p := newProvider(t, srv, srv.Root())
	if _, err := p.RootID(context.Background()); err != nil { // the challenge is cached from here on
		t.Fatal(err)
	}
	mark := len(srv.Requests())
	statuses := func() []int {
		var out []int
		for _, r := range srv.Requests()[mark:] {
			out = append(out, r.Status)
		}
		return out
	}
	clienttest.AssertRetriedAfter429(t, p, clients.KeyRequest{Name: "after-429", Scopes: []string{"ORG_MEMBER"}}, srv.FailNext, statuses, http.StatusOK)
}

func TestServerErrorsExhausted(t *testing.T) {
	srv := mongodbatlastest.NewServer()
	defer srv.Close()
	root := srv.Root()
	p := newProvider(t, srv, root)
	ctx := context.Background()
	key, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k", Scopes: []string{"ORG_MEMBER"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.VerifyKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1000, http.StatusServiceUnavailable)
	rootFields := map[string]string{"public_key": key.Extra["public_key"], "private_key": key.Secret}
	calls := map[string]func() error{
		"create": func() error {
			_, err := p.CreateKey(ctx, clients.KeyRequest{Name: "k2", Scopes: []string{"ORG_MEMBER"}})
			return err
		},
		"revoke":      func() error { return p.RevokeKey(ctx, key.ID) },
		"list":        func() error { _, err := p.FindKeys(ctx, "k"); return err },
		"create_root": func() error { _, err := p.CreateRoot(ctx, "r"); return err },
		"revoke_root": func() error { return p.RevokeRoot(ctx, key.ID) },
		// A new pair's first request is the challenge, then the 503.
		"verify":      func() error { return p.VerifyKey(ctx, key) },
		"verify_root": func() error { return p.VerifyRoot(ctx, clients.Root{Fields: rootFields}) },
	}
	clienttest.AssertFailures(t, calls, http.StatusServiceUnavailable, root.PrivateKey, key.Secret, root.PublicKey, key.Extra["public_key"])
}

// A 401 that carries no Digest challenge (Atlas, or a proxy in front of
// it, refusing outright) reaches the caller whole: the status and Atlas's
// error code, not a closed body; it is not retried.
func TestUnauthorizedWithoutAChallenge(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"detail":"This request was refused.","error":401,"errorCode":"IP_ADDRESS_NOT_ON_ACCESS_LIST","reason":"Unauthorized"}`))
	}))
	defer srv.Close()
	root := map[string]string{"public_key": "abcdefgh", "private_key": "secret-part", "org_id": mongodbatlastest.DefaultOrgID}
	p := clienttest.New(t, mongodbatlas.TypeName, srv.URL, root)
	_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Scopes: []string{"ORG_READ_ONLY"}})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "IP_ADDRESS_NOT_ON_ACCESS_LIST") {
		t.Fatalf("create answered 401 without a challenge: %v; want HTTP 401 and Atlas's error code", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d requests, want 1 (a 401 is not retried)", n)
	}
	clienttest.AssertNoSecret(t, err, "secret-part")
	if err := p.RevokeKey(context.Background(), "5a0a1e7e0f2912c554080add"); err == nil || !strings.Contains(err.Error(), "IP_ADDRESS_NOT_ON_ACCESS_LIST") {
		t.Fatalf("revoke answered 401 without a challenge: %v", err)
	}
}
