package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// Two in-memory provider types for tests, kept out of the real registry's
// reach (names end in "test"):
//   - "rolltest" rotates its root roll-style, as some SaaS APIs do: the new
//     root exists only in the response and the old one dies at once;
//   - "norotatetest" cannot rotate its root at all.
//
// An instance's state lives in a memServer found by base_url, so clients
// rebuilt from storage talk to the same "account".
const (
	rollType     = "rolltest"
	noRotateType = "norotatetest"
)

func init() {
	for _, tc := range []struct {
		name string
		caps clients.Capabilities
	}{
		{rollType, clients.Capabilities{RootRotation: true, NativeRoll: true}},
		{noRotateType, clients.Capabilities{}},
	} {
		caps := tc.caps
		clients.Register(&clients.Type{
			Name:            tc.name,
			Description:     "In-memory provider for backend tests.",
			BaseURLRequired: true,
			Fields: []clients.Field{{Name: "root_token", Required: true, Sensitive: true,
				Description: "Root token of the in-memory test provider."}},
			Capabilities: caps,
			New: func(cfg clients.Config) (clients.Provider, error) {
				v, ok := memServers.Load(cfg.BaseURL)
				if !ok {
					return nil, &clients.FieldError{Field: "base_url", Message: "no in-memory test provider at this URL"}
				}
				return &memClient{srv: v.(*memServer), caps: caps, name: cfg.Name, token: cfg.Fields["root_token"]}, nil
			},
		})
	}
}

var (
	memServers sync.Map // base URL -> *memServer
	memSeq     atomic.Int64
)

// memServer is one account of the in-memory provider.
type memServer struct {
	url string

	mu     sync.Mutex
	rootID string
	root   string
	seq    int
	rolls  int
	keys   map[string]string // id -> secret of live keys

	// hang makes every call wait until its context ends, as a provider
	// that accepts connections and never answers.
	hang atomic.Bool
}

// stall waits for ctx when the account hangs; it returns ctx's error then.
func (s *memServer) stall(ctx context.Context) error {
	if !s.hang.Load() {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func randomToken(prefix string) string {
	b := make([]byte, 16)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newMemServer starts an account and returns it; its root is ms.root.
func newMemServer(t *testing.T) *memServer {
	t.Helper()
	ms := &memServer{
		url:    fmt.Sprintf("https://%s-%d.mem.invalid", hostLabel(t.Name()), memSeq.Add(1)),
		rootID: "root_0",
		root:   randomToken("memroot_"),
		keys:   map[string]string{},
	}
	if _, dup := memServers.LoadOrStore(ms.url, ms); dup {
		t.Fatalf("two in-memory providers at %s", ms.url)
	}
	t.Cleanup(func() { memServers.Delete(ms.url) })
	return ms
}

// hostLabel turns a test name into a DNS label.
func hostLabel(name string) string {
	label := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, name)
	if len(label) > 40 {
		label = label[len(label)-40:]
	}
	return strings.Trim(label, "-")
}

func (s *memServer) currentRoot() (id, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rootID, s.root
}

func (s *memServer) liveKeys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

type memClient struct {
	srv   *memServer
	caps  clients.Capabilities
	name  string
	token string
}

func (c *memClient) Capabilities() clients.Capabilities { return c.caps }

// auth checks the client's root; the caller holds srv.mu.
func (c *memClient) auth(op string) error {
	if c.token != c.srv.root {
		return &httpx.Error{Provider: c.name, Op: op, Method: http.MethodPost, Path: "/" + op, Status: http.StatusUnauthorized, Message: "bad root token"}
	}
	return nil
}

func (c *memClient) ValidateKeyRequest(clients.KeyRequest) error { return nil }

func (c *memClient) CreateKey(ctx context.Context, req clients.KeyRequest) (clients.Key, error) {
	if err := c.srv.stall(ctx); err != nil {
		return clients.Key{}, err
	}
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if err := c.auth("create"); err != nil {
		return clients.Key{}, err
	}
	c.srv.seq++
	id := fmt.Sprintf("mkey_%d", c.srv.seq)
	secret := randomToken("memkey_")
	c.srv.keys[id] = secret
	return clients.Key{ID: id, Name: req.Name, Secret: secret}, nil
}

func (c *memClient) VerifyKey(ctx context.Context, key clients.Key) error {
	if err := c.srv.stall(ctx); err != nil {
		return err
	}
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if c.srv.keys[key.ID] != key.Secret {
		return &httpx.Error{Provider: c.name, Op: "verify", Status: http.StatusUnauthorized}
	}
	return nil
}

func (c *memClient) RevokeKey(ctx context.Context, id string) error {
	if err := c.srv.stall(ctx); err != nil {
		return err
	}
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if err := c.auth("revoke"); err != nil {
		return err
	}
	delete(c.srv.keys, id)
	return nil
}

func (c *memClient) FindKeys(context.Context, string) ([]clients.Key, error) {
	return nil, clients.ErrNotSupported
}

func (c *memClient) RootID(ctx context.Context) (string, error) {
	if err := c.srv.stall(ctx); err != nil {
		return "", err
	}
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if err := c.auth("whoami"); err != nil {
		return "", err
	}
	return c.srv.rootID, nil
}

// CreateRoot rolls the root: the old token stops working at once.
func (c *memClient) CreateRoot(ctx context.Context, _ string) (clients.Root, error) {
	if !c.caps.RootRotation {
		return clients.Root{}, clients.ErrNotSupported
	}
	if err := c.srv.stall(ctx); err != nil {
		return clients.Root{}, err
	}
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if err := c.auth("roll_root"); err != nil {
		return clients.Root{}, err
	}
	c.srv.rolls++
	c.srv.rootID = fmt.Sprintf("root_%d", c.srv.rolls)
	c.srv.root = randomToken("memroot_")
	return clients.Root{ID: c.srv.rootID, Fields: map[string]string{"root_token": c.srv.root}}, nil
}

func (c *memClient) VerifyRoot(_ context.Context, root clients.Root) error {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if root.Fields["root_token"] != c.srv.root {
		return &httpx.Error{Provider: c.name, Op: "verify_root", Status: http.StatusUnauthorized}
	}
	return nil
}

func (c *memClient) RevokeRoot(context.Context, string) error {
	if !c.caps.RootRotation {
		return clients.ErrNotSupported
	}
	return nil // a roll has already killed the old root
}
