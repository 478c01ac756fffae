package backend

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// "twoslottest" is an in-memory provider that, like an Okta app's client
// secrets, holds at most two live keys: a third create is refused (and
// counted, so a test sees that none was ever attempted).
const twoSlotType = "twoslottest"

var slotServers sync.Map // base URL -> *slotServer

func init() {
	clients.Register(&clients.Type{
		Name: twoSlotType, Description: "In-memory two-slot provider for backend tests.", BaseURLRequired: true,
		Fields:       []clients.Field{{Name: "root_token", Required: true, Sensitive: true, Description: "Root token."}},
		Capabilities: clients.Capabilities{MaxLiveKeys: 2},
		New: func(cfg clients.Config) (clients.Provider, error) {
			v, ok := slotServers.Load(cfg.BaseURL)
			if !ok {
				return nil, &clients.FieldError{Field: "base_url", Message: "no two-slot test provider at this URL"}
			}
			return &slotClient{srv: v.(*slotServer), name: cfg.Name}, nil
		},
	})
}

type slotServer struct {
	mu         sync.Mutex
	seq        int
	keys       map[string]string
	maxLive    int
	refused    int // creates refused for want of a slot
	failRevoke atomic.Bool
}

func newSlotServer(t *testing.T) string {
	url := fmt.Sprintf("https://%s.slots.invalid", hostLabel(t.Name()))
	slotServers.Store(url, &slotServer{keys: map[string]string{}})
	t.Cleanup(func() { slotServers.Delete(url) })
	return url
}

func slotsAt(url string) *slotServer {
	v, _ := slotServers.Load(url)
	return v.(*slotServer)
}

func (s *slotServer) live() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

type slotClient struct {
	clients.Unsupported
	srv  *slotServer
	name string
}

func (c *slotClient) Capabilities() clients.Capabilities          { return clients.Capabilities{MaxLiveKeys: 2} }
func (c *slotClient) ValidateKeyRequest(clients.KeyRequest) error { return nil }

func (c *slotClient) CreateKey(_ context.Context, req clients.KeyRequest) (clients.Key, error) {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if len(c.srv.keys) >= 2 {
		c.srv.refused++
		return clients.Key{}, &httpx.Error{Provider: c.name, Op: "create", Status: http.StatusBadRequest, Message: "at most two secrets"}
	}
	c.srv.seq++
	id := fmt.Sprintf("slot_%d", c.srv.seq)
	c.srv.keys[id] = randomToken("slotkey_")
	c.srv.maxLive = max(c.srv.maxLive, len(c.srv.keys))
	return clients.Key{ID: id, Name: req.Name, Secret: c.srv.keys[id]}, nil
}

func (c *slotClient) VerifyKey(_ context.Context, key clients.Key) error {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if c.srv.keys[key.ID] != key.Secret {
		return &httpx.Error{Provider: c.name, Op: "verify", Status: http.StatusUnauthorized}
	}
	return nil
}

func (c *slotClient) RevokeKey(_ context.Context, id string) error {
	if c.srv.failRevoke.Load() {
		return &httpx.Error{Provider: c.name, Op: "revoke", Status: http.StatusServiceUnavailable}
	}
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	delete(c.srv.keys, id)
	return nil
}

func slotProvider(e *env, name string) *slotServer {
	e.t.Helper()
	url := newSlotServer(e.t)
	e.must(logical.CreateOperation, "providers/"+name, map[string]any{"type": twoSlotType, "base_url": url, "root_token": "t"})
	return slotsAt(url)
}

// A provider with two key slots cannot serve a dynamic role: a 400 naming
// mode, nothing stored.
func TestKeySlotsRefuseDynamicRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	slotProvider(e, "two")
	resp, err := e.do(logical.CreateOperation, "roles/dyn", map[string]any{"provider": "two", "mode": "dynamic"})
	e.userError(resp, err, "mode: provider \"two\" holds at most 2 live keys")
	if r := e.must(logical.ReadOperation, "roles/dyn", nil); r != nil {
		t.Fatalf("a refused role was stored: %v", r.Data)
	}
	e.must(logical.CreateOperation, "roles/dual", map[string]any{"provider": "two", "mode": "dual", "rotation_period": "1h", "overlap": "10m"})
}

// Manual rotations of a dual role on a two-slot provider: a rotate-role
// while the previous key is in its overlap is a clear 400 and attempts no
// third key; revoke_previous=true frees the slot first.
func TestKeySlotsManualRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := slotProvider(e, "two")
	e.must(logical.CreateOperation, "roles/r", map[string]any{"provider": "two", "mode": "dual", "rotation_period": "1h", "overlap": "10m"})
	e.clock.Advance(20 * time.Minute)
	e.must(logical.UpdateOperation, "rotate-role/r", nil)
	if srv.live() != 2 {
		t.Fatalf("%d live keys after one rotation, want 2", srv.live())
	}
	prev := e.state("r").Previous

	e.clock.Advance(5 * time.Minute) // still within the overlap
	resp, err := e.do(logical.UpdateOperation, "rotate-role/r", nil)
	e.userError(resp, err, "pass revoke_previous=true")
	if !strings.Contains(resp.Error().Error(), prev.ID) {
		t.Fatalf("the 400 does not name the previous key: %v", resp.Error())
	}
	if srv.refused != 0 || srv.live() != 2 {
		t.Fatalf("a third key was attempted (%d refused) or a key lost (%d live)", srv.refused, srv.live())
	}

	r := e.must(logical.UpdateOperation, "rotate-role/r", map[string]any{"revoke_previous": true})
	if r.Data["previous_key_id"] != "" || srv.live() != 1 || srv.maxLive != 2 || srv.refused != 0 {
		t.Fatalf("revoke_previous: previous %v, %d live, max %d, refused %d", r.Data["previous_key_id"], srv.live(), srv.maxLive, srv.refused)
	}
}

// A scheduled rotation due while the previous key cannot be retired yet
// (its revocation fails) waits instead of attempting a third key, and
// runs once the previous key is revoked.
func TestKeySlotsScheduledRotationWaits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := slotProvider(e, "two")
	e.must(logical.CreateOperation, "roles/r", map[string]any{"provider": "two", "mode": "dual", "rotation_period": "1h", "overlap": "10m"})
	ctx := context.Background()
	e.clock.Advance(time.Hour + time.Second)
	e.b.roleJob(ctx, "r") // the first scheduled rotation
	st := e.state("r")
	if st.Previous == nil || srv.live() != 2 {
		t.Fatalf("after the first rotation: previous %v, %d live", st.Previous, srv.live())
	}
	prev, cur := st.Previous.ID, st.Current.ID

	srv.failRevoke.Store(true)
	e.clock.Advance(st.NextRotation.Sub(e.clock.Now()) + time.Second) // past the retire time and the next rotation
	e.b.roleJob(ctx, "r")
	st = e.state("r")
	if srv.refused != 0 || srv.live() != 2 || st.Current.ID != cur || st.Previous == nil || st.Previous.ID != prev {
		t.Fatalf("a due rotation with the previous key unrevoked: refused %d, %d live, current %s, previous %v", srv.refused, srv.live(), st.Current.ID, st.Previous)
	}
	if st.LastError == "" || !strings.Contains(st.LastError, "revoking the previous key") {
		t.Fatalf("last_error = %q, want the failed revocation", st.LastError)
	}

	srv.failRevoke.Store(false)
	e.clock.Advance(st.NextRetry.Sub(e.clock.Now()) + time.Second)
	e.b.roleJob(ctx, "r")
	st = e.state("r")
	if st.Current.ID == cur || st.Previous == nil || st.Previous.ID != cur || srv.live() != 2 {
		t.Fatalf("after the retry: current %s (was %s), previous %v, %d live", st.Current.ID, cur, st.Previous, srv.live())
	}
	if srv.maxLive != 2 || srv.refused != 0 {
		t.Fatalf("max %d live keys, %d refused creates: a third key was attempted", srv.maxLive, srv.refused)
	}
}

// A rehearsal needs a slot of its own: on a two-slot provider it is a 400
// while the previous key is in its overlap (no third key attempted), and
// runs (create, verify, revoke) once the slot is free.
func TestKeySlotsRehearsal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := slotProvider(e, "two")
	e.must(logical.CreateOperation, "roles/r", map[string]any{"provider": "two", "mode": "dual", "rotation_period": "1h", "overlap": "10m"})
	e.clock.Advance(20 * time.Minute)
	e.must(logical.UpdateOperation, "rotate-role/r", nil)

	resp, err := e.do(logical.UpdateOperation, "rotate-role/r", map[string]any{"dry_run": true})
	e.userError(resp, err, "dry_run: provider \"two\" holds at most 2 live keys")
	if srv.refused != 0 || srv.live() != 2 {
		t.Fatalf("a refused rehearsal attempted a key (%d refused) or changed the keys (%d live)", srv.refused, srv.live())
	}

	e.must(logical.UpdateOperation, "rotate-role/r", map[string]any{"revoke_previous": true})
	r := e.must(logical.UpdateOperation, "rotate-role/r", map[string]any{"dry_run": true})
	if r.Data["dry_run"] != true || srv.live() != 1 || srv.maxLive != 2 || srv.refused != 0 {
		t.Fatalf("rehearsal with a free slot: %v, %d live, max %d, refused %d", r.Data, srv.live(), srv.maxLive, srv.refused)
	}
}
