// Package backend is the Vault logical backend of the thirdparty secrets
// engine: the paths, storage, leases, WAL rollback, rotation scheduler,
// status and metrics.
package backend

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	// Every provider type registers itself.
	_ "github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/all"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/version"
)

const backendHelp = `
The thirdparty secrets engine issues leased API keys for third-party services
(SendGrid, Twilio, Datadog, Cloudflare, GitLab, Grafana, OpenAI, any REST API
through the templated "http" type, ...). Dynamic roles create one key per
lease; dual roles hand every reader the current key of a pair that rotates
with overlap. Each provider's own root credential can be rotated so that only
Vault knows it.

Configure a provider with "providers/<name>", a role with "roles/<name>", then
read "creds/<role>".
`

// Factory builds the backend; it is what the plugin serves.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(systemClock{})
	cfg := *conf
	cfg.System = newSystemView(conf.System)
	if err := b.Setup(ctx, &cfg); err != nil {
		return nil, err
	}
	b.setStorage(conf.StorageView)
	return b, nil
}

type backend struct {
	*framework.Backend

	clock clock

	// locks serialise changes to one provider or role (keyed "provider/<n>",
	// "role/<n>"); they are never held across a call to another lock.
	locks *keyedLocks
	// useLocks are held (read) by every operation using a provider's
	// client, so a root rotation can wait for operations still holding the
	// old root before revoking it.
	useLocks useLocks

	metrics   *metrics
	inventory *inventory
	sched     *scheduler
	tidy      *tidyRunner
	// storage is the mount's storage for background jobs.
	storage logical.Storage

	// A new key is verified up to verifyAttempts times, waiting verifyWait,
	// then twice that, between attempts.
	verifyAttempts int
	verifyWait     time.Duration

	// cache holds decoded roles and dual states for creds reads.
	cache *readCache

	// clients caches built provider clients by provider name (tombstones:
	// by tombstoneClientKey).
	clients sync.Map
	// clientGens holds a *clientGeneration per provider name (see
	// cachedClient).
	clientGens sync.Map
	// budgets holds the *httpx.Budget of each provider name: every client
	// built for the provider (after an update or a root rotation too, and
	// its tombstones) draws on the same one. See budget.go.
	budgets sync.Map
	// testHookClientBuilt, set by tests only, runs in cachedClient between
	// building a client and caching it.
	testHookClientBuilt func(provider string)

	marker markerCache
	// ledgerCounts counts the dynamic keys outstanding per provider.
	ledgerCounts ledgerCounter
	// retiring holds the keys of deleted dual roles waiting for their
	// leases to end, for status (retire.go).
	retiring retiringKeys
	// tombstones counts the deleted providers kept as tombstones, and
	// tombstoneRoots the replaced roots they hold whose revocation failed.
	tombstones     atomic.Int64
	tombstoneRoots atomic.Int64
	// rolledBack holds the tombstones WAL rollback went through, for the
	// next rollback pass to remove if done (rollback.go).
	rolledBack sync.Map // tombstoneRef -> struct{}
}

func newBackend(c clock) *backend {
	b := &backend{
		clock:          c,
		locks:          newKeyedLocks(),
		inventory:      newInventory(),
		cache:          newReadCache(),
		verifyAttempts: 3,
		verifyWait:     500 * time.Millisecond,
	}
	b.metrics = newMetrics(b)
	b.tidy = newTidyRunner(b.metrics.registry)
	b.sched = newScheduler(c, b.runItem)
	b.sched.provider, b.sched.limit = b.itemProvider, b.jobLimit
	b.Backend = &framework.Backend{
		Help:           strings.TrimSpace(backendHelp),
		BackendType:    logical.TypeLogical,
		RunningVersion: version.Version,
		PathsSpecial: &logical.Paths{
			// Provider config (root credentials), tombstones of deleted
			// providers and dual-role keys are seal-wrapped where the
			// Vault supports it.
			SealWrapStorage: []string{providerPrefix, roleKeysPrefix, tombstonePrefix},
		},
		Paths: framework.PathAppend(
			pathProviders(b),
			pathRoles(b),
			pathCreds(b),
			pathRotate(b),
			pathStatus(b),
			pathMetrics(b),
			pathTidy(b),
			pathTombstones(b),
		),
		Secrets:           []*framework.Secret{secretKey(b)},
		WALRollback:       b.walRollback,
		PeriodicFunc:      b.periodic,
		WALRollbackMinAge: walRollbackMinAge,
		Invalidate:        b.invalidate,
		InitializeFunc:    b.initialize,
		Clean:             b.clean,
	}
	return b
}

// lockKey names the lock of a provider or role ("provider"/"role", name).
func lockKey(kind, name string) string { return kind + "/" + name }

// invalidate drops what this node cached of a key another node changed.
func (b *backend) invalidate(_ context.Context, key string) {
	if name, ok := strings.CutPrefix(key, providerPrefix); ok {
		b.dropClient(name)
	}
	if cacheable(key) {
		b.cache.drop(key)
	}
}

// HandleRequest gives every request a storage whose writes keep the read
// cache honest.
func (b *backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if resp := checkPathName(req.Path); resp != nil {
		return resp, nil
	}
	if req.Storage != nil {
		req.Storage = cachingStorage{Storage: req.Storage, cache: b.cache}
	}
	return b.Backend.HandleRequest(ctx, req)
}

// HandleExistenceCheck answers "does not exist" for a name checkPathName
// refuses: Vault asks before the write itself (which is then the 400),
// and looking such a name up in storage is an error.
func (b *backend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	if checkPathName(req.Path) != nil {
		return true, false, nil
	}
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// setStorage sets the storage background jobs use.
func (b *backend) setStorage(s logical.Storage) {
	if s != nil {
		b.storage = cachingStorage{Storage: s, cache: b.cache}
	}
}

// cachedRole reads a role through the read cache (the result is shared:
// do not modify it).
func (b *backend) cachedRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	return cachedRead(b.cache, rolePrefix+name, func() (*roleEntry, error) { return getRole(ctx, s, name) })
}

// cachedDualState reads a dual role's keys through the read cache (shared:
// do not modify).
func (b *backend) cachedDualState(ctx context.Context, s logical.Storage, name string) (*dualState, error) {
	return cachedRead(b.cache, roleKeysPrefix+name, func() (*dualState, error) { return getDualState(ctx, s, name) })
}

func (b *backend) clean(context.Context) {
	b.sched.stop()
	b.tidy.stop()
	b.clients.Range(func(k, _ any) bool { b.clients.Delete(k); return true })
}
