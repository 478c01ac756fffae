// Command bench-floor-plugin is the floor `make bench` measures creds reads
// against: an external secrets plugin, served exactly like the real one
// (internal/pluginserve), that does only what a leased read must do, with
// no storage of its own, locks, caches, retries or metrics:
//
//   - creds/<role> answers a constant leased key of the same shape as a
//     dual role's read (the same data and internal data fields, values of
//     the same length);
//   - dynamic/<role> does what invariant 4 asks of a dynamic read: one
//     storage write naming the attempt, then one create at the demo
//     provider (plain net/http and encoding/json), then a lease; its
//     revocation deletes the key and the entry.
//
// What a creds read costs above its floor is the real plugin's own work;
// what the floor costs above a kv-v2 write is the price of any external
// plugin's leased read on the same machine. Not for use outside the bench.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-uuid"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/pluginserve"
)

func main() { pluginserve.Main(factory) }

const secretType = "floor_key"

type floor struct {
	*framework.Backend
	// demo is the demo provider to create dynamic keys at (config).
	demo atomic.Pointer[demoConfig]
	http *http.Client
}

type demoConfig struct{ baseURL, adminKey string }

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32 // as the real plugin's provider clients
	f := &floor{http: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
	role := map[string]*framework.FieldSchema{"role": {Type: framework.TypeLowerCaseString, Required: true}}
	// Callbacks, not Operations: with Operations the framework asks Vault
	// for the replication state on every request, a round trip the real
	// plugin answers from a cache (backend/system_view.go).
	f.Backend = &framework.Backend{
		BackendType: logical.TypeLogical,
		Help:        "The floor of make bench.",
		Paths: []*framework.Path{
			{
				Pattern:   "creds/" + framework.GenericNameRegex("role"),
				Fields:    role,
				Callbacks: map[logical.Operation]framework.OperationFunc{logical.ReadOperation: dualRead},
			},
			{
				Pattern:   "dynamic/" + framework.GenericNameRegex("role"),
				Fields:    role,
				Callbacks: map[logical.Operation]framework.OperationFunc{logical.ReadOperation: f.dynamicRead},
			},
			{
				Pattern: "config",
				Fields: map[string]*framework.FieldSchema{
					"base_url": {Type: framework.TypeString}, "admin_key": {Type: framework.TypeString},
				},
				Callbacks: map[logical.Operation]framework.OperationFunc{logical.UpdateOperation: f.configWrite},
			},
		},
		Secrets: []*framework.Secret{{
			Type: secretType,
			Renew: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
				return nil, nil
			},
			Revoke: f.revoke,
		}},
	}
	if err := f.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *floor) configWrite(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	f.demo.Store(&demoConfig{baseURL: d.Get("base_url").(string), adminKey: d.Get("admin_key").(string)})
	return nil, nil
}

// The values have the lengths of a demo provider key of the bench's dual
// role.
const (
	floorKey  = "demo_0123456789abcdef0123456789abcdef01234567"
	floorID   = "key_0123456789ab"
	floorName = "vault-tp0123456789-bench-dual-rotation-1796540000-Qw81zX"
	// A dual key at the demo provider expires (RFC 3339, seconds).
	floorExpiry = "2027-01-06T03:58:23Z"
)

func dualRead(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	role := d.Get("role").(string)
	return &logical.Response{
		Secret: &logical.Secret{
			LeaseOptions: logical.LeaseOptions{TTL: time.Hour, MaxTTL: 2 * time.Hour, Renewable: true},
			InternalData: map[string]any{
				"secret_type": secretType,
				"provider":    "demo", "role": role, "mode": "dual", "key_id": floorID, "key_name": floorName,
			},
		},
		Data: map[string]any{
			"api_key": floorKey, "key_id": floorID, "key_name": floorName,
			"provider": "demo", "role": role, "mode": "dual", "expires_at": floorExpiry,
		},
	}, nil
}

// entry is the storage record of a dynamic attempt, the size of the real
// plugin's ledger entry.
type entry struct {
	ID        string    `json:"id"`
	Provider  string    `json:"provider"`
	Role      string    `json:"role"`
	Name      string    `json:"name"`
	Created   time.Time `json:"created"`
	ExpiresAt time.Time `json:"expires_at"`
}

type demoKey struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Key       string `json:"key"`
	ExpiresAt string `json:"expires_at"`
}

func (f *floor) dynamicRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg := f.demo.Load()
	if cfg == nil {
		return nil, fmt.Errorf("write config first")
	}
	role := d.Get("role").(string)
	id, err := uuid.GenerateUUID()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	e := entry{ID: id, Provider: "demo", Role: role, Name: fmt.Sprintf("vault-tp0123456789-%s-%d-%s", role, now.Unix(), id[:6]),
		Created: now, ExpiresAt: now.Add(time.Hour)}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: "ledger/" + id, Value: b}); err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"name": e.Name, "expires_at": now.Add(2 * time.Hour).UTC().Format(time.RFC3339)})
	var k demoKey
	if err := f.call(ctx, cfg, http.MethodPost, "/v1/keys", body, http.StatusCreated, &k); err != nil {
		return nil, err
	}
	return &logical.Response{
		Secret: &logical.Secret{
			LeaseOptions: logical.LeaseOptions{TTL: time.Hour, MaxTTL: 2 * time.Hour, Renewable: true},
			InternalData: map[string]any{
				"secret_type": secretType, "provider": "demo", "role": role, "mode": "dynamic",
				"key_id": k.ID, "key_name": k.Name, "ledger_id": id, "expires_at": k.ExpiresAt,
			},
		},
		Data: map[string]any{
			"api_key": k.Key, "key_id": k.ID, "key_name": k.Name,
			"provider": "demo", "role": role, "mode": "dynamic", "expires_at": k.ExpiresAt,
		},
	}, nil
}

// revoke deletes a dynamic lease's key and entry; a dual lease names no
// real key.
func (f *floor) revoke(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	ledger, _ := req.Secret.InternalData["ledger_id"].(string)
	if ledger == "" {
		return nil, nil
	}
	cfg := f.demo.Load()
	if cfg == nil {
		return nil, fmt.Errorf("write config first")
	}
	id, _ := req.Secret.InternalData["key_id"].(string)
	if err := f.call(ctx, cfg, http.MethodDelete, "/v1/keys/"+id, nil, http.StatusNoContent, nil); err != nil {
		return nil, err
	}
	return nil, req.Storage.Delete(ctx, "ledger/"+ledger)
}

func (f *floor) call(ctx context.Context, cfg *demoConfig, method, path string, body []byte, want int, out any) error {
	hr, err := http.NewRequestWithContext(ctx, method, cfg.baseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Authorization", "Bearer "+cfg.adminKey)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.http.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
