// Command consumer is an example of an application that reads a dual role's
// key from Vault itself (no Vault Agent) and keeps using a key that works
// while the role rotates. See README.md next to it.
//
// It holds the current key in memory, renews the key's lease with the Vault
// API's LifetimeWatcher, and reads creds/<role> again when the watcher says
// the lease can no longer be extended: the plugin caps a dual lease at the
// time its key is revoked, so "cannot be extended" means "this key is about
// to retire", and the read returns the key that replaced it. A request the
// API rejects anyway (a rotation Vault could not announce in time, a key
// revoked by hand) makes it read the key again at once and retry once.
//
//	VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=... \
//	  go run ./docs/examples/consumer -role fast -url http://127.0.0.1:8300/v1/whoami
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

func main() {
	mount := flag.String("mount", "thirdparty", "path the plugin is mounted at")
	role := flag.String("role", "", "dual role to read creds/<role> of (required)")
	target := flag.String("url", "", "API URL to call with the key as a Bearer token (required)")
	every := flag.Duration("interval", 200*time.Millisecond, "time between two API calls")
	duration := flag.Duration("duration", 0, "stop after this long (0: at SIGINT/SIGTERM)")
	summary := flag.String("summary", "", "write a JSON summary of the run to this file at exit")
	flag.Parse()
	if *role == "" || *target == "" {
		flag.Usage()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	vc, err := api.NewClient(api.DefaultConfig()) // VAULT_ADDR, VAULT_TOKEN, …
	if err != nil {
		log.Fatal(err)
	}
	k := &keeper{vault: vc, path: *mount + "/creds/" + *role, refresh: make(chan struct{}, 1)}
	if err := k.read(ctx); err != nil {
		log.Fatalf("first read of %s: %v", k.path, err)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		k.follow(ctx)
	}()

	stats := use(ctx, k, *target, *every)
	stop()
	wg.Wait()

	stats.Keys = k.keys()
	log.Printf("%d calls, %d accepted, %d rejected, %d keys used", stats.Calls, stats.Accepted, stats.Rejected, len(stats.Keys))
	if *summary != "" {
		b, _ := json.Marshal(stats)
		if err := os.WriteFile(*summary, b, 0o600); err != nil {
			log.Fatal(err)
		}
	}
}

// current is the key in use and the lease it came with.
type current struct {
	key    string
	keyID  string
	secret *api.Secret
}

// keeper holds the current key. Readers take it without a lock; follow
// replaces it.
type keeper struct {
	vault   *api.Client
	path    string
	cur     atomic.Pointer[current]
	refresh chan struct{} // a use was rejected: read the key again now

	mu   sync.Mutex
	seen []string // key ids, in the order they were first used
}

// read reads creds/<role> and makes its key the current one.
func (k *keeper) read(ctx context.Context) error {
	s, err := k.vault.Logical().ReadWithContext(ctx, k.path)
	if err != nil {
		return err
	}
	if s == nil || s.Data == nil || s.LeaseID == "" {
		return errors.New("no leased secret in the answer")
	}
	key, _ := s.Data["api_key"].(string)
	id, _ := s.Data["key_id"].(string)
	if key == "" {
		return errors.New("the answer has no api_key")
	}
	old := k.cur.Swap(&current{key: key, keyID: id, secret: s})
	if old == nil || old.keyID != id {
		k.mu.Lock()
		k.seen = append(k.seen, id)
		k.mu.Unlock()
		log.Printf("using key %s (lease %s, %ds)", id, s.LeaseID, s.LeaseDuration)
	}
	return nil
}

func (k *keeper) keys() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.seen...)
}

// follow renews the current lease until it cannot be extended (or a use was
// rejected), then reads the key again, until ctx ends.
func (k *keeper) follow(ctx context.Context) {
	for ctx.Err() == nil {
		cur := k.cur.Load()
		w, err := k.vault.NewLifetimeWatcher(&api.LifetimeWatcherInput{
			Secret: cur.secret,
			// A failed renewal is retried until the lease is nearly over;
			// the lease's end, not an error, decides when to read again.
			RenewBehavior: api.RenewBehaviorIgnoreErrors,
		})
		if err != nil {
			log.Printf("lifetime watcher: %v", err)
			return
		}
		go w.Start()
		k.wait(ctx, w)
		w.Stop()
		if ctx.Err() != nil {
			return
		}
		// Read again; the same key comes back when the role has not rotated
		// yet (its lease then runs to the key's retirement), so do not spin.
		for ctx.Err() == nil {
			before := k.cur.Load().keyID
			if err := k.read(ctx); err != nil {
				log.Printf("read %s: %v", k.path, err)
			} else if k.cur.Load().keyID != before || k.remaining() > time.Second {
				break
			}
			sleep(ctx, 250*time.Millisecond)
		}
	}
}

// wait returns when the watcher is done with the lease, a use was rejected,
// or ctx ends.
func (k *keeper) wait(ctx context.Context, w *api.LifetimeWatcher) {
	for {
		select {
		case err := <-w.DoneCh():
			if err != nil {
				log.Printf("lease renewal stopped: %v", err)
			}
			return
		case r := <-w.RenewCh():
			log.Printf("renewed lease %s for %ds", r.Secret.LeaseID, r.Secret.LeaseDuration)
		case <-k.refresh:
			return
		case <-ctx.Done():
			return
		}
	}
}

// remaining is what is left of the current lease as Vault granted it.
func (k *keeper) remaining() time.Duration {
	s := k.cur.Load().secret
	return time.Duration(s.LeaseDuration) * time.Second
}

// stats is the run's summary.
type stats struct {
	Calls    int      `json:"calls"`
	Accepted int      `json:"accepted"`
	Rejected int      `json:"rejected"`
	Retried  int      `json:"retried"`
	Keys     []string `json:"keys"`
}

// use calls the API every interval with the current key until ctx ends. A
// 401 or 403 asks follow for a fresh key and retries once with it.
func use(ctx context.Context, k *keeper, target string, every time.Duration) stats {
	var st stats
	hc := &http.Client{Timeout: 10 * time.Second}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return st
		case <-t.C:
		}
		code, err := call(ctx, hc, target, k.cur.Load().key)
		st.Calls++
		if rejected(code) {
			st.Rejected++
			log.Printf("key %s rejected (%d); reading the key again", k.cur.Load().keyID, code)
			select {
			case k.refresh <- struct{}{}:
			default:
			}
			before := k.cur.Load().keyID
			for i := 0; i < 20 && k.cur.Load().keyID == before && ctx.Err() == nil; i++ {
				sleep(ctx, 50*time.Millisecond)
			}
			st.Retried++
			code, err = call(ctx, hc, target, k.cur.Load().key)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			log.Printf("call: %v", err)
		case code/100 == 2:
			st.Accepted++
		case err == nil:
			log.Printf("call answered %d", code)
		}
	}
}

func rejected(code int) bool {
	return code == http.StatusUnauthorized || code == http.StatusForbidden
}

func call(ctx context.Context, hc *http.Client, target, key string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", target, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
