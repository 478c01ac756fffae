package main

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

// The dynamic floor creates a key at the demo provider and its revocation
// deletes it, as the bench's final check (one live key left) relies on.
func TestDynamicFloorCreatesAndRevokes(t *testing.T) {
	ctx := context.Background()
	admin := demoserver.NewAdminKey()
	demo := demoserver.New(demoserver.Options{AdminKey: admin})
	srv := httptest.NewServer(demo)
	defer srv.Close()
	conf := logical.TestBackendConfig()
	s := &logical.InmemStorage{}
	conf.StorageView = s
	b, err := factory(ctx, conf)
	if err != nil {
		t.Fatal(err)
	}
	do := func(op logical.Operation, path string, data map[string]any) *logical.Response {
		t.Helper()
		resp, err := b.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: data, Storage: s})
		if err != nil || resp.IsError() {
			t.Fatalf("%s %s: %v %v", op, path, err, resp)
		}
		return resp
	}
	do(logical.UpdateOperation, "config", map[string]any{"base_url": srv.URL, "admin_key": admin})
	resp := do(logical.ReadOperation, "dynamic/r", nil)
	keys, _ := s.List(ctx, "ledger/")
	if resp.Data["api_key"] == "" || len(keys) != 1 {
		t.Fatalf("read %v, ledger %v", resp.Data, keys)
	}
	_, err = b.HandleRequest(ctx, &logical.Request{Operation: logical.RevokeOperation, Storage: s, Secret: resp.Secret})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ = s.List(ctx, "ledger/")
	if len(keys) != 0 {
		t.Fatalf("ledger after revoke: %v", keys)
	}
}
