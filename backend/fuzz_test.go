package backend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// fuzzMount is a mount with in-memory providers "p" (cannot rotate its
// root) and "r" (rolls its root), a dynamic role "dyn" and a dual role
// "dual", kept as a storage snapshot: each fuzz input runs against a fresh
// backend on a copy of it. Nothing talks to the network.
type fuzzMount struct {
	ms       *memServer
	snapshot map[string][]byte
}

func newFuzzMount(f *testing.F) *fuzzMount {
	f.Helper()
	ms := &memServer{url: fmt.Sprintf("https://fuzz-%d.mem.invalid", memSeq.Add(1)), rootID: "root_0", root: randomToken("memroot_"), keys: map[string]string{}}
	memServers.Store(ms.url, ms)
	f.Cleanup(func() { memServers.Delete(ms.url) })
	m := &fuzzMount{ms: ms, snapshot: map[string][]byte{}}
	b, s := m.backend(f)
	for _, r := range []struct {
		path string
		data map[string]any
	}{
		{"providers/p", map[string]any{"type": noRotateType, "base_url": ms.url, "root_token": ms.root}},
		{"providers/r", map[string]any{"type": rollType, "base_url": ms.url, "root_token": ms.root}},
		{"roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "1h", "max_ttl": "2h"}},
		{"roles/dual", map[string]any{"provider": "p", "mode": "dual", "rotation_period": "1h", "overlap": "10m"}},
	} {
		resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.CreateOperation, Path: r.path, Data: r.data, Storage: s})
		if err != nil || (resp != nil && resp.IsError()) {
			f.Fatalf("fuzz mount %s: %v %v", r.path, resp, err)
		}
	}
	m.snapshot = dump(f, s)
	b.Clean(context.Background())
	return m
}

// backend returns a fresh backend on a copy of the snapshot.
func (m *fuzzMount) backend(tb testing.TB) (*backend, logical.Storage) {
	s := &logical.InmemStorage{}
	for k, v := range m.snapshot {
		if err := s.Put(context.Background(), &logical.StorageEntry{Key: k, Value: v}); err != nil {
			tb.Fatal(err)
		}
	}
	b := newBackend(newFakeClock())
	conf := &logical.BackendConfig{
		Logger:      hclog.NewNullLogger(),
		System:      &logical.StaticSystemView{DefaultLeaseTTLVal: time.Hour, MaxLeaseTTLVal: 24 * time.Hour},
		StorageView: s,
	}
	if err := b.Setup(context.Background(), conf); err != nil {
		tb.Fatal(err)
	}
	b.setStorage(s)
	b.verifyAttempts, b.verifyWait = 1, 0
	return b, s
}

func dump(tb testing.TB, s logical.Storage) map[string][]byte {
	keys, err := logical.CollectKeys(context.Background(), s)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range keys {
		e, err := s.Get(context.Background(), k)
		if err != nil || e == nil {
			tb.Fatalf("storage %s: %v", k, err)
		}
		out[k] = e.Value
	}
	return out
}

// parseFuzzData reads "key=value" lines; a value "[a,b]" is a list.
func parseFuzzData(raw string) map[string]any {
	data := map[string]any{}
	for _, line := range strings.Split(raw, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if inner, ok := strings.CutPrefix(v, "["); ok && strings.HasSuffix(inner, "]") {
			data[k] = strings.Split(strings.TrimSuffix(inner, "]"), ",")
			continue
		}
		data[k] = v
	}
	return data
}

// run sends one write and checks what any input must give: no panic, no
// server error, and on a refusal nothing stored (byte for byte) and no key
// created at the provider.
func (m *fuzzMount) run(t *testing.T, prefix string, create bool, name, raw string) {
	data := parseFuzzData(raw)
	if typ, ok := data["type"].(string); ok && typ != noRotateType && typ != rollType {
		t.Skip("only in-memory types: the others would call the network")
	}
	b, s := m.backend(t)
	defer b.Clean(context.Background())
	var op logical.Operation = logical.UpdateOperation
	if create {
		op = logical.CreateOperation
	}
	keysBefore := m.ms.liveKeys()
	req := &logical.Request{Operation: op, Path: prefix + name, Data: data, Storage: s, DisplayName: "token-fuzz"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := b.HandleRequest(ctx, req)
	code, _ := logical.RespondErrorCommon(req, resp, err)
	if errors.Is(err, logical.ErrUnsupportedPath) || errors.Is(err, logical.ErrUnsupportedOperation) {
		return // the name does not match the path pattern: Vault's 404/405
	}
	if code >= http.StatusInternalServerError || (err != nil && code == 0) {
		t.Fatalf("%s %s%s %q: status %d, err %v, resp %v", op, prefix, name, raw, code, err, resp)
	}
	if resp != nil && resp.IsError() {
		if after := dump(t, s); !maps.EqualFunc(after, m.snapshot, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Fatalf("%s %s%s %q: refused (%v) but storage changed", op, prefix, name, raw, resp.Error())
		}
		if n := m.ms.liveKeys(); n != keysBefore {
			t.Fatalf("%s %s%s %q: refused (%v) but %d keys were created", op, prefix, name, raw, resp.Error(), n-keysBefore)
		}
	}
}

// FuzzProviderWrite drives providers/<name> writes with arbitrary names
// and fields.
func FuzzProviderWrite(f *testing.F) {
	m := newFuzzMount(f)
	url := m.ms.url
	for _, s := range []struct {
		create bool
		name   string
		data   string
	}{
		{true, "new", "type=" + noRotateType + "\nbase_url=" + url + "\nroot_token=" + m.ms.root},
		{true, "a..", "type=" + noRotateType + "\nbase_url=" + url + "\nroot_token=x"},
		{false, "p", "base_url=http://169.254.169.254"},
		{false, "p", "base_url=https://user:pass@host"},
		{false, "p", "allow_insecure_http=true"},
		{false, "p", "request_timeout=2000000h"},
		{false, "p", "request_timeout=-1"},
		{false, "p", "max_concurrency=0"},
		{false, "p", "rotation_schedule=0 0 30 2 *"},
		{false, "r", "rotation_schedule=@daily\nrotation_window=30s"},
		{false, "r", "rotation_period=1h\nrotation_schedule=@daily"},
		{false, "p", "tls_ca_cert=not a PEM"},
		{false, "p", "bogus=1"},
		{false, "r", "type=" + noRotateType},
		{false, "p", "root_token=wrong"},
		{true, strings.Repeat("x", 200), "type=" + rollType},
	} {
		f.Add(s.create, s.name, s.data)
	}
	f.Fuzz(func(t *testing.T, create bool, name, raw string) {
		m.run(t, "providers/", create, name, raw)
	})
}

// FuzzRoleWrite drives roles/<name> writes with arbitrary names and
// fields.
func FuzzRoleWrite(f *testing.F) {
	m := newFuzzMount(f)
	for _, s := range []struct {
		create bool
		name   string
		data   string
	}{
		{true, "new", "provider=p\nmode=dynamic"},
		{true, "new", "provider=p\nmode=dual\nrotation_period=10s\noverlap=5s"},
		{true, "a..", "provider=p\nmode=dynamic"},
		{true, "new", "provider=a..\nmode=dynamic"},
		{false, "dyn", "tll=1h"},
		{false, "dyn", "name_template={{.Nope}}"},
		{false, "dyn", "name_template={{random 100000000}}"},
		{false, "dyn", "name_template={{.RoleName | truncate 100000}}"},
		{false, "dyn", `name_template={{printf "%0100000000d" 1}}`},
		{false, "dyn", "name_template={{range 100000000}}x{{end}}"},
		{false, "dyn", "name_template={{.DisplayName | replace \"d\" \"dddddddddddddddd\"}}"},
		{false, "dyn", "scopes=[a,b]\nparameters=[x=1]"},
		{false, "dyn", "ttl=2h\nmax_ttl=1h"},
		{false, "dual", "rotation_schedule=0 0 30 2 *"},
		{false, "dual", "rotation_schedule=@hourly\nrotation_window=2h"},
		{false, "dual", "overlap=2h"},
		{false, "dual", "mode=dynamic"},
		{false, "dual", "provider=r"},
	} {
		f.Add(s.create, s.name, s.data)
	}
	f.Fuzz(func(t *testing.T, create bool, name, raw string) {
		m.run(t, "roles/", create, name, raw)
	})
}
