package backend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// Tidy finds the keys this mount created but no longer accounts for, as
// Vault PKI's tidy does for certificates: keys of ledger entries whose lease
// ended long ago (Vault crashed before persisting the lease, or failed to
// revoke it), tombstones of deleted providers whose last key is gone, and,
// for types that list keys, keys at the provider that carry the mount's
// marker but match nothing in storage.
const (
	autoTidyConfigKey = "config/auto-tidy"
	// autoTidyStateKey holds when auto-tidy last ran, so a restart or a
	// leader change does not postpone it by a whole interval.
	autoTidyStateKey = "tidy/auto-state"
	// autoTidyItem is auto-tidy's scheduler item.
	autoTidyItem = "tidy/auto"
)

const (
	defaultTidySafetyBuffer = 72 * time.Hour
	defaultAutoTidyInterval = 12 * time.Hour
	minAutoTidyInterval     = time.Minute
	// maxTidyStatusKeys caps the keys tidy-status lists.
	maxTidyStatusKeys = 1000
)

// States of tidy-status.
const (
	tidyInactive = "Inactive"
	tidyRunning  = "Running"
	tidyFinished = "Finished"
	tidyError    = "Error"
	// tidy-cancel asked a running tidy to stop (Cancelling) and it did
	// (Cancelled).
	tidyCancelling = "Cancelling"
	tidyCancelled  = "Cancelled"
)

// Why tidy looked at a key, and what it did.
const (
	reasonExpired = "expired ledger entry"
	reasonOrphan  = "orphan"
	// reasonOldRoot: a root replaced by rotation (or by a credential
	// written over one Vault created) whose revocation failed, kept with
	// its deleted provider's tombstone.
	reasonOldRoot = "replaced root"

	actionRevoked     = "revoked"
	actionWouldRevoke = "would revoke"
	actionFailed      = "failed"
	actionReported    = "reported"
	actionCancelled   = "cancelled"
)

var errTidyRunning = errors.New("a tidy is already running")

func pathTidy(b *backend) []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "tidy$",
			Fields: map[string]*framework.FieldSchema{
				"dry_run": {Type: framework.TypeBool, Default: false,
					Description: "List what a real run would revoke and remove, changing nothing."},
				"safety_buffer": {Type: framework.TypeDurationSecond, Default: int(defaultTidySafetyBuffer.Seconds()),
					Description: "How long past its lease's end a ledger entry, or since its creation an orphan key, is left alone (>= 0)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.tidyWrite,
					Summary:                   "Start a tidy in the background; see tidy-status.",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
			},
			HelpSynopsis:    "Revoke the keys this mount created but no longer accounts for, and remove empty tombstones.",
			HelpDescription: tidyHelp,
		},
		{
			Pattern: "tidy-cancel$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: &framework.PathOperation{Callback: b.tidyCancelWrite,
					Summary:                   "Stop the running tidy; see tidy-status.",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
			},
			HelpSynopsis:    "Stop the running tidy after the call it is making.",
			HelpDescription: tidyCancelHelp,
		},
		{
			Pattern: "tidy-status$",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.tidyStatusRead,
					Summary: "The state of the running or last tidy.",
					// The tidy runs on the active node; so does this read.
					ForwardPerformanceStandby: true},
			},
			HelpSynopsis:    "Show the running or last tidy: counts, errors and the keys it revoked or reported.",
			HelpDescription: tidyStatusHelp,
		},
		{
			Pattern: "config/auto-tidy$",
			Fields: map[string]*framework.FieldSchema{
				"enabled": {Type: framework.TypeBool, Default: false,
					Description: "Run tidy every interval on the active node."},
				"interval": {Type: framework.TypeDurationSecond, Default: int(defaultAutoTidyInterval.Seconds()),
					Description: "Time between two automatic tidies (at least 1m)."},
				"safety_buffer": {Type: framework.TypeDurationSecond, Default: int(defaultTidySafetyBuffer.Seconds()),
					Description: "safety_buffer of the automatic tidies (>= 0)."},
			},
			ExistenceCheck: b.autoTidyExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{Callback: b.autoTidyRead, Summary: "Read the auto-tidy configuration."},
				logical.CreateOperation: &framework.PathOperation{Callback: b.autoTidyWrite, Summary: "Configure auto-tidy.",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
				logical.UpdateOperation: &framework.PathOperation{Callback: b.autoTidyWrite, Summary: "Configure auto-tidy (partial).",
					ForwardPerformanceStandby: true, ForwardPerformanceSecondary: true},
			},
			HelpSynopsis:    "Configure the periodic tidy run by the active node.",
			HelpDescription: autoTidyHelp,
		},
	}
}

// tidyKey is one key tidy revoked, would revoke, failed to revoke or
// reported. Never a secret.
type tidyKey struct {
	Provider    string `json:"provider"`
	Incarnation string `json:"incarnation"`
	KeyID       string `json:"key_id"`
	KeyName     string `json:"key_name"`
	Reason      string `json:"reason"`
	Action      string `json:"action"`
}

// tidyStatus is what tidy-status shows.
type tidyStatus struct {
	State             string
	Auto              bool
	DryRun            bool
	SafetyBuffer      time.Duration
	Started, Finished time.Time
	EntriesExamined   int
	KeysRevoked       int
	TombstonesRemoved int
	OrphansFound      int
	OrphansRevoked    int
	RootsRevoked      int
	ErrorCount        int
	LastError         string
	Keys              []tidyKey
}

// tidyRunner runs at most one tidy at a time in the background and keeps
// its status (in memory, on the node that runs it: the active node).
type tidyRunner struct {
	runs    *prometheus.CounterVec
	orphans *prometheus.CounterVec

	mu      sync.Mutex
	running bool
	// cancelled: tidy-cancel stopped the running tidy.
	cancelled bool
	cancel    context.CancelFunc
	done      chan struct{}
	status    tidyStatus
}

func newTidyRunner(registry *prometheus.Registry) *tidyRunner {
	r := &tidyRunner{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thirdparty_tidy_runs_total", Help: "Tidy runs, by result (success; failure when the run stopped on an error or a key could not be revoked; cancelled by tidy-cancel).",
		}, []string{"result"}),
		orphans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "thirdparty_orphans_revoked_total", Help: "Keys carrying this mount's marker that matched nothing in storage, revoked by tidy.",
		}, []string{"provider"}),
		status: tidyStatus{State: tidyInactive},
	}
	registry.MustRegister(r.runs, r.orphans)
	return r
}

// tidyOptions are one run's settings.
type tidyOptions struct {
	dryRun       bool
	safetyBuffer time.Duration
	auto         bool
}

// startTidy starts a tidy in the background, or returns errTidyRunning.
func (b *backend) startTidy(s logical.Storage, opts tidyOptions) error {
	r := b.tidy
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return errTidyRunning
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.running, r.cancelled, r.cancel, r.done = true, false, cancel, make(chan struct{})
	r.status = tidyStatus{State: tidyRunning, Auto: opts.auto, DryRun: opts.dryRun, SafetyBuffer: opts.safetyBuffer, Started: b.clock.Now()}
	done := r.done
	go func() {
		defer close(done)
		defer cancel()
		err := b.runTidy(ctx, s, opts)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.running = false
		r.status.Finished = b.clock.Now()
		r.status.State = tidyFinished
		result := "success"
		switch {
		case r.cancelled:
			// Whatever it was doing was cut short on purpose: what it did
			// not finish is where it was (a revocation cut short keeps its
			// ledger entry), for the next tidy.
			r.status.State, result = tidyCancelled, "cancelled"
		case err != nil:
			r.status.State = tidyError
			r.status.ErrorCount++
			r.status.LastError = err.Error()
		}
		if r.status.ErrorCount > 0 && !r.cancelled {
			result = "failure"
		}
		r.runs.WithLabelValues(result).Inc()
		b.Logger().Info("tidy finished", "state", r.status.State, "dry_run", opts.dryRun, "auto", opts.auto,
			"entries_examined", r.status.EntriesExamined, "keys_revoked", r.status.KeysRevoked,
			"tombstones_removed", r.status.TombstonesRemoved, "orphans_found", r.status.OrphansFound,
			"orphans_revoked", r.status.OrphansRevoked, "roots_revoked", r.status.RootsRevoked, "errors", r.status.ErrorCount)
	}()
	return nil
}

// stop cancels a running tidy and waits for it to return.
func (r *tidyRunner) stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// isRunning reports whether a tidy is running.
func (r *tidyRunner) isRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// cancelRunning asks the running tidy to stop (it ends Cancelled) and
// reports whether one was running.
func (r *tidyRunner) cancelRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return false
	}
	if !r.cancelled {
		r.cancelled = true
		r.status.State = tidyCancelling
		r.cancel()
	}
	return true
}

// wasCancelled reports whether tidy-cancel stopped the running tidy.
func (r *tidyRunner) wasCancelled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running && r.cancelled
}

// wait returns once no tidy is running.
func (r *tidyRunner) wait() {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

func (r *tidyRunner) update(f func(st *tidyStatus)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.status)
}

func (r *tidyRunner) snapshot() tidyStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	st.Keys = slices.Clone(r.status.Keys)
	return st
}

// note records a key tidy acted on.
func (r *tidyRunner) note(k tidyKey) {
	r.update(func(st *tidyStatus) {
		if len(st.Keys) < maxTidyStatusKeys {
			st.Keys = append(st.Keys, k)
		}
	})
}

// fail counts an error that did not stop the run.
func (r *tidyRunner) fail(err error) {
	r.update(func(st *tidyStatus) {
		st.ErrorCount++
		st.LastError = err.Error()
	})
}

func (b *backend) tidyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	buffer := time.Duration(d.Get("safety_buffer").(int)) * time.Second
	if buffer < 0 {
		return logical.ErrorResponse("safety_buffer must not be negative"), nil
	}
	s := b.storage
	if s == nil {
		s = req.Storage
	}
	if err := b.startTidy(s, tidyOptions{dryRun: d.Get("dry_run").(bool), safetyBuffer: buffer}); err != nil {
		return logical.ErrorResponse("%s; see tidy-status", err.Error()), nil
	}
	resp := &logical.Response{}
	resp.AddWarning("tidy started; see tidy-status")
	return logical.RespondWithStatusCode(resp, req, http.StatusAccepted)
}

// tidyCancelWrite stops the running tidy, as Vault PKI's tidy-cancel does:
// it answers tidy-status (state Cancelling until the run has returned,
// then Cancelled), with a warning when no tidy was running.
func (b *backend) tidyCancelWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	running := b.tidy.cancelRunning()
	resp, err := b.tidyStatusRead(ctx, req, d)
	if err == nil && !running {
		resp.AddWarning("no tidy is running; nothing to cancel")
	}
	return resp, err
}

func (b *backend) tidyStatusRead(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	st := b.tidy.snapshot()
	keys := make([]map[string]any, 0, len(st.Keys))
	for _, k := range st.Keys {
		keys = append(keys, map[string]any{
			"provider": k.Provider, "incarnation": k.Incarnation, "key_id": k.KeyID,
			"key_name": k.KeyName, "reason": k.Reason, "action": k.Action,
		})
	}
	return &logical.Response{Data: map[string]any{
		"state":              st.State,
		"auto":               st.Auto,
		"dry_run":            st.DryRun,
		"safety_buffer":      int64(st.SafetyBuffer.Seconds()),
		"time_started":       formatTime(st.Started),
		"time_finished":      formatTime(st.Finished),
		"entries_examined":   st.EntriesExamined,
		"keys_revoked":       st.KeysRevoked,
		"tombstones_removed": st.TombstonesRemoved,
		"orphans_found":      st.OrphansFound,
		"orphans_revoked":    st.OrphansRevoked,
		"roots_revoked":      st.RootsRevoked,
		"error_count":        st.ErrorCount,
		"last_error":         st.LastError,
		"keys":               keys,
	}}, nil
}

// runTidy is one tidy: expired ledger entries, then the orphan scan, then
// tombstones. An error stops the run; failures on single keys are counted
// and the run goes on (the next run retries them).
func (b *backend) runTidy(ctx context.Context, s logical.Storage, opts tidyOptions) error {
	cutoff := b.clock.Now().Add(-opts.safetyBuffer)
	t := &tidyPass{b: b, s: s, opts: opts, cutoff: cutoff, removed: map[string]bool{}, handled: map[string]bool{}, seen: newFirstSeen(),
		rootsGone: map[tombstoneRef]bool{}}
	// Tombstones last: the orphan scan lists a tombstone's account while it
	// is still there, and a tombstone with orphans pending stays.
	for _, step := range []func(context.Context) error{t.ledger, t.orphans, t.tombstones} {
		if err := step(ctx); err != nil {
			return err
		}
		// A run cut short (the plugin stopping) is an error, even where a
		// step counted the cancelled calls as failures and went on.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("tidy stopped: %w", err)
		}
	}
	return nil
}

// tidyPass is the state of one run.
type tidyPass struct {
	b      *backend
	s      logical.Storage
	opts   tidyOptions
	cutoff time.Time
	// removed holds the ledger keys of entries this run removed (a dry run:
	// would remove), so that later steps see storage as a real run leaves it.
	removed map[string]bool
	// handled holds the ids of keys the ledger step revoked (or would).
	handled map[string]bool
	// seen holds the orphans the scan left pending, for the sources it
	// listed (a dry run's as a real run would leave them).
	seen *firstSeen
	// rootsGone holds the tombstones whose replaced roots a dry run would
	// revoke.
	rootsGone map[tombstoneRef]bool
}

// ledger revokes the key of every entry whose lease ended before the cutoff
// and removes the entry.
func (t *tidyPass) ledger(ctx context.Context) error {
	incs, err := ledgerIncarnations(ctx, t.s)
	if err != nil {
		return err
	}
	for _, provider := range slices.Sorted(maps.Keys(incs)) {
		for _, inc := range incs[provider] {
			ids, err := ledgerIDs(ctx, t.s, provider, inc)
			if err != nil {
				return err
			}
			for _, id := range ids {
				if err := ctx.Err(); err != nil {
					return err
				}
				e, err := getLedger(ctx, t.s, provider, inc, id)
				if err != nil {
					t.b.tidy.fail(err)
					continue
				}
				if e == nil {
					continue
				}
				t.b.tidy.update(func(st *tidyStatus) { st.EntriesExamined++ })
				if e.ExpiresAt.Before(t.cutoff) {
					t.expired(ctx, e)
				}
			}
		}
	}
	return nil
}

// expired deals with one expired ledger entry.
func (t *tidyPass) expired(ctx context.Context, e *ledgerEntry) {
	if isRetiring(e.ID) {
		// Its retirement job (or a delete with revoke_keys) may be at it.
		defer t.b.locks.lock(lockKey("retire", e.ID))()
	}
	key := tidyKey{Provider: e.Provider, Incarnation: e.Incarnation, KeyID: e.KeyID, KeyName: e.Name, Reason: reasonExpired}
	pc, release, err := t.b.clientFor(ctx, t.s, e.Provider, e.Incarnation)
	if err != nil {
		t.failed(key, err)
		return
	}
	defer release()
	if pc == nil {
		t.report(ctx, e, key, "neither the provider nor a tombstone of this incarnation is left")
		return
	}
	var ids []string
	switch {
	case e.KeyID != "":
		ids = []string{e.KeyID}
	case e.UniqueName && pc.api.Capabilities().ListByName:
		keys, err := pc.api.FindKeys(ctx, e.Name)
		if err != nil {
			t.failed(key, fmt.Errorf("provider %q: finding key %q: %w", e.Provider, e.Name, err))
			return
		}
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
	default:
		t.report(ctx, e, key, "its id was never recorded and it cannot be found by name")
		return
	}

	if t.opts.dryRun {
		for _, id := range ids {
			key.KeyID, key.Action = id, actionWouldRevoke
			t.b.tidy.note(key)
			t.b.tidy.update(func(st *tidyStatus) { st.KeysRevoked++ })
			t.handled[id] = true
		}
		t.removed[ledgerKey(e.Provider, e.Incarnation, e.ID)] = true
		return
	}
	// A renew or a revocation may have moved or removed the entry since
	// it was read.
	if cur, err := getLedger(ctx, t.s, e.Provider, e.Incarnation, e.ID); err != nil {
		t.failed(key, err)
		return
	} else if cur == nil || !cur.ExpiresAt.Before(t.cutoff) {
		return
	}
	for _, id := range ids {
		key.KeyID = id
		if err := pc.api.RevokeKey(ctx, id); err != nil {
			t.failed(key, fmt.Errorf("provider %q: revoking key %s: %w", e.Provider, id, err))
			return
		}
		key.Action = actionRevoked
		t.b.tidy.note(key)
		t.b.tidy.update(func(st *tidyStatus) { st.KeysRevoked++ })
		t.b.metrics.keyRevoked(e.Role)
		t.handled[id] = true
		t.b.Logger().Info("tidy revoked the key of an expired ledger entry", "provider", e.Provider,
			"incarnation", e.Incarnation, "role", e.Role, "key_id", id, "key_name", e.Name, "lease_ended", formatTime(e.ExpiresAt))
	}
	t.drop(ctx, e)
}

// drop removes a ledger entry whose key is gone or handed to the operator.
func (t *tidyPass) drop(ctx context.Context, e *ledgerEntry) {
	if err := deleteLedger(ctx, t.s, e.Provider, e.Incarnation, e.ID); err != nil {
		t.b.tidy.fail(err)
		return
	}
	t.b.ledgerEntryGone(e.Provider, e.Incarnation, e.ID)
	t.removed[ledgerKey(e.Provider, e.Incarnation, e.ID)] = true
}

// report hands a key tidy cannot reach to the operator (tidy-status and the
// log name it) and, in a real run, removes its entry: keeping it would only
// report it again. A key that carries the mount's marker is still found by
// the orphan scan where the type lists keys.
func (t *tidyPass) report(ctx context.Context, e *ledgerEntry, key tidyKey, why string) {
	key.Action = actionReported
	t.b.tidy.note(key)
	if t.opts.dryRun {
		t.removed[ledgerKey(e.Provider, e.Incarnation, e.ID)] = true
		return
	}
	t.b.Logger().Warn("tidy cannot revoke the key of an expired ledger entry: "+why+"; delete it at the provider by hand",
		"provider", e.Provider, "incarnation", e.Incarnation, "role", e.Role, "key_name", e.Name, "lease_ended", formatTime(e.ExpiresAt))
	t.drop(ctx, e)
}

func (t *tidyPass) failed(key tidyKey, err error) {
	if t.b.tidy.wasCancelled() {
		// tidy-cancel cut the call short: not the provider's failure.
		key.Action = actionCancelled
		t.b.tidy.note(key)
		t.b.Logger().Info("tidy cancelled while revoking a key; the next tidy retries", "provider", key.Provider,
			"incarnation", key.Incarnation, "key_id", key.KeyID, "key_name", key.KeyName, "reason", key.Reason)
		return
	}
	key.Action = actionFailed
	t.b.tidy.note(key)
	t.b.tidy.fail(err)
	t.b.Logger().Warn("tidy could not revoke a key; the next tidy retries", "provider", key.Provider,
		"incarnation", key.Incarnation, "key_id", key.KeyID, "key_name", key.KeyName, "reason", key.Reason, "error", err)
}

// tombstones revokes the replaced roots tombstones keep, and removes every
// tombstone whose last key is gone.
func (t *tidyPass) tombstones(ctx context.Context) error {
	refs, err := listTombstones(ctx, t.s)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		t.oldRoots(ctx, ref)
		var done bool
		if t.opts.dryRun {
			done, err = t.tombstoneWouldGo(ctx, ref)
		} else {
			done, err = t.b.removeTombstoneIfDone(ctx, t.s, ref.Name, ref.Incarnation)
		}
		if err != nil {
			t.b.tidy.fail(err)
			continue
		}
		if done {
			t.b.tidy.update(func(st *tidyStatus) { st.TombstonesRemoved++ })
		}
	}
	return nil
}

// oldRoots revokes the replaced roots a tombstone keeps (their revocation
// failed before or when the provider was deleted) with the tombstone's
// root, in order, stopping at the first failure; a dry run lists them.
func (t *tidyPass) oldRoots(ctx context.Context, ref tombstoneRef) {
	defer t.b.locks.lock(lockKey("provider", ref.Name))()
	ts, err := getTombstone(ctx, t.s, ref.Name, ref.Incarnation)
	if err != nil {
		t.b.tidy.fail(err)
		return
	}
	if ts == nil || len(ts.Provider.PendingRootRevocations) == 0 {
		return
	}
	pending := ts.Provider.PendingRootRevocations
	key := tidyKey{Provider: ref.Name, Incarnation: ref.Incarnation, Reason: reasonOldRoot}
	if t.opts.dryRun {
		for _, id := range pending {
			key.KeyID, key.Action = id, actionWouldRevoke
			t.b.tidy.note(key)
			t.b.tidy.update(func(st *tidyStatus) { st.RootsRevoked++; st.KeysRevoked++ })
		}
		t.rootsGone[ref] = true
		return
	}
	pc, release, err := t.b.clientFor(ctx, t.s, ref.Name, ref.Incarnation)
	defer release()
	if err == nil && pc == nil {
		err = fmt.Errorf("provider %q: the tombstone of incarnation %s is gone", ref.Name, ref.Incarnation)
	}
	if err != nil {
		key.KeyID = pending[0]
		t.failed(key, err)
		return
	}
	left, err := revokeRoots(ctx, pc, pending, func(id string) {
		key.KeyID, key.Action = id, actionRevoked
		t.b.tidy.note(key)
		t.b.tidy.update(func(st *tidyStatus) { st.RootsRevoked++; st.KeysRevoked++ })
		t.b.Logger().Info("tidy revoked a replaced root of a deleted provider", "provider", ref.Name, "incarnation", ref.Incarnation, "root_key_id", id)
	})
	if err != nil {
		key.KeyID = left[0]
		t.failed(key, fmt.Errorf("provider %q: revoking replaced root %s: %w", ref.Name, left[0], err))
	}
	revoked := len(pending) - len(left)
	if revoked == 0 {
		return
	}
	ts.Provider.PendingRootRevocations = left
	if err := putTombstone(ctx, t.s, ts); err != nil {
		// The next tidy revokes them again: gone already is no error.
		t.b.tidy.fail(err)
		return
	}
	t.b.tombstoneRoots.Add(-int64(revoked))
}

// tombstoneWouldGo is tombstoneDone as storage would be after a real run.
func (t *tidyPass) tombstoneWouldGo(ctx context.Context, ref tombstoneRef) (bool, error) {
	ts, err := getTombstone(ctx, t.s, ref.Name, ref.Incarnation)
	if err != nil || ts == nil {
		return false, err
	}
	if t.b.clock.Now().Before(ts.Provider.LegacyLeasesUntil) || (len(ts.Provider.PendingRootRevocations) > 0 && !t.rootsGone[ref]) {
		return false, nil
	}
	ids, err := ledgerIDs(ctx, t.s, ref.Name, ref.Incarnation)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if !t.removed[ledgerKey(ref.Name, ref.Incarnation, id)] {
			return false, nil
		}
	}
	if n, err := t.seen.pending(ctx, t.s, ref.Name, ref.Incarnation); n > 0 || err != nil {
		return false, err
	}
	n, err := walEntriesOf(ctx, t.s, ref.Name, ref.Incarnation)
	return n == 0, err
}

// listedKey is a key a provider (or a tombstone) listed.
type listedKey struct {
	provider, incarnation string
	key                   clients.Key
}

// orphans lists the keys at every provider and tombstone whose type can
// list keys, keeps those whose name carries the mount's marker, and revokes
// (or reports) those that storage does not account for. Keys without the
// marker are never touched.
func (t *tidyPass) orphans(ctx context.Context) error {
	marker, err := t.b.mountMarker(ctx, t.s)
	if err != nil {
		return err
	}
	// The listing comes before reading what storage accounts for: every
	// key in it was created before that read, so its ledger entry (written
	// before the create) or its WAL entry and then its role's state is
	// already there.
	listed, sources, err := t.listKeys(ctx, marker)
	if err != nil {
		return err
	}
	seen := t.seen
	for _, src := range sources {
		if err := seen.load(ctx, t.s, src.name, src.incarnation); err != nil {
			return fmt.Errorf("reading tidy's sightings of orphans: %w", err)
		}
	}
	if len(listed) > 0 {
		known, err := t.knownKeys(ctx)
		if err != nil {
			return err
		}
		for _, l := range listed {
			if err := ctx.Err(); err != nil {
				return err
			}
			if t.handled[l.key.ID] || known.ids[l.key.ID] || known.names[l.key.Name] {
				continue
			}
			t.orphan(ctx, l, seen)
		}
	}
	if t.opts.dryRun {
		return nil
	}
	if err := seen.save(ctx, t.s); err != nil {
		return fmt.Errorf("storing tidy's sightings of orphans: %w", err)
	}
	if err := dropStaleSightings(ctx, t.s, sources); err != nil {
		return fmt.Errorf("removing the sightings of deleted providers: %w", err)
	}
	return nil
}

// tidySource names a provider incarnation, or a tombstone, whose keys tidy
// lists.
type tidySource struct{ name, incarnation string }

// listKeys returns the keys carrying marker at every provider and tombstone
// whose client is a clients.KeyLister, each account's key once, and the
// sources it listed (those whose list failed, or that cannot list, left
// out).
func (t *tidyPass) listKeys(ctx context.Context, marker string) ([]listedKey, []tidySource, error) {
	var sources []tidySource
	names, err := listAll(ctx, t.s, providerPrefix)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		sources = append(sources, tidySource{name: n})
	}
	refs, err := listTombstones(ctx, t.s)
	if err != nil {
		return nil, nil, err
	}
	for _, ref := range refs {
		sources = append(sources, tidySource{ref.Name, ref.Incarnation})
	}

	seen := map[string]bool{}
	var out []listedKey
	var listed []tidySource
	for _, src := range sources {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		keys, inc, account, err := t.listSource(ctx, src.name, src.incarnation)
		if err != nil {
			t.b.tidy.fail(err)
			continue
		}
		if inc != "" {
			listed = append(listed, tidySource{src.name, inc})
		}
		for _, k := range keys {
			// Two providers of the mount may be one account.
			if !strings.Contains(k.Name, marker) || seen[account+"\x00"+k.ID] {
				continue
			}
			seen[account+"\x00"+k.ID] = true
			out = append(out, listedKey{provider: src.name, incarnation: inc, key: k})
		}
	}
	return out, listed, nil
}

// listSource lists the keys of one provider ("" incarnation: the live one)
// or tombstone; it returns no keys when the type cannot list them.
func (t *tidyPass) listSource(ctx context.Context, name, incarnation string) (keys []clients.Key, inc, account string, err error) {
	var pc *providerClient
	release := func() {}
	if incarnation == "" {
		pc, release, err = t.b.client(ctx, t.s, name)
	} else {
		pc, release, err = t.b.clientFor(ctx, t.s, name, incarnation)
	}
	if err != nil || pc == nil {
		return nil, "", "", err
	}
	defer release()
	lister, ok := pc.api.(clients.KeyLister)
	if !ok {
		return nil, "", "", nil
	}
	keys, err = lister.ListKeys(ctx)
	if err != nil {
		return nil, "", "", fmt.Errorf("provider %q: listing keys: %w", name, err)
	}
	return keys, pc.entry.Incarnation, pc.entry.Type + "\x00" + pc.entry.BaseURL, nil
}

// knownSet is every key id and name storage accounts for.
type knownSet struct{ ids, names map[string]bool }

func (k knownSet) add(id, name string) {
	if id != "" {
		k.ids[id] = true
	}
	if name != "" {
		k.names[name] = true
	}
}

// knownKeys reads what storage accounts for: WAL entries first (a dual
// role's new key moves from its WAL entry to the role's state before the
// entry goes), then the ledger (less what this run removed), dual roles'
// keys, and every provider's and tombstone's roots.
func (t *tidyPass) knownKeys(ctx context.Context) (knownSet, error) {
	known := knownSet{ids: map[string]bool{}, names: map[string]bool{}}
	walIDs, err := framework.ListWAL(ctx, t.s)
	if err != nil {
		return known, fmt.Errorf("listing WAL entries: %w", err)
	}
	for _, id := range walIDs {
		w, err := framework.GetWAL(ctx, t.s, id)
		if err != nil {
			return known, fmt.Errorf("reading WAL entry: %w", err)
		}
		if w == nil {
			continue
		}
		switch w.Kind {
		case walKindKey:
			if k, err := decodeWAL[walKey](w.Data); err == nil {
				known.add(k.KeyID, k.Name)
			}
		case walKindRoot:
			if r, err := decodeWAL[walRoot](w.Data); err == nil {
				known.add(r.RootID, r.Name)
			}
		}
	}

	incs, err := ledgerIncarnations(ctx, t.s)
	if err != nil {
		return known, err
	}
	for provider, list := range incs {
		for _, inc := range list {
			ids, err := ledgerIDs(ctx, t.s, provider, inc)
			if err != nil {
				return known, err
			}
			for _, id := range ids {
				if t.removed[ledgerKey(provider, inc, id)] {
					continue
				}
				e, err := getLedger(ctx, t.s, provider, inc, id)
				if err != nil {
					return known, err
				}
				if e != nil {
					known.add(e.KeyID, e.Name)
				}
			}
		}
	}

	roles, err := listAll(ctx, t.s, roleKeysPrefix)
	if err != nil {
		return known, err
	}
	for _, r := range roles {
		st, err := getDualState(ctx, t.s, r)
		if err != nil {
			return known, err
		}
		if st == nil {
			continue
		}
		for _, k := range []*dualKey{st.Current, st.Previous} {
			if k != nil {
				known.add(k.ID, k.Name)
			}
		}
	}

	addRoots := func(e *providerEntry) {
		known.add(e.RootKeyID, "")
		for _, id := range e.PendingRootRevocations {
			known.add(id, "")
		}
	}
	names, err := listAll(ctx, t.s, providerPrefix)
	if err != nil {
		return known, err
	}
	for _, n := range names {
		e, err := getProvider(ctx, t.s, n)
		if err != nil {
			return known, err
		}
		if e != nil {
			addRoots(e)
		}
	}
	refs, err := listTombstones(ctx, t.s)
	if err != nil {
		return known, err
	}
	for _, ref := range refs {
		ts, err := getTombstone(ctx, t.s, ref.Name, ref.Incarnation)
		if err != nil {
			return known, err
		}
		if ts != nil && ts.Provider != nil {
			addRoots(ts.Provider)
		}
	}
	return known, nil
}

// orphan revokes (or reports) one key that storage does not account for:
// only one created before the cutoff, so a key whose record is being
// written right now is never taken.
func (t *tidyPass) orphan(ctx context.Context, l listedKey, seen *firstSeen) {
	t.b.tidy.update(func(st *tidyStatus) { st.OrphansFound++ })
	key := tidyKey{Provider: l.provider, Incarnation: l.incarnation, KeyID: l.key.ID, KeyName: l.key.Name, Reason: reasonOrphan}
	// Pending until revoked. Its age is when it was created, or, when its
	// list does not say, when tidy first saw it unaccounted for (it is at
	// least that old).
	firstSeen := seen.see(l.provider, l.incarnation, l.key.ID, t.b.clock.Now())
	age, ageField, unknownAge := l.key.CreatedAt, "created", l.key.CreatedAt.IsZero()
	if unknownAge {
		age, ageField = firstSeen, "first_seen"
	}
	switch {
	case !age.Before(t.cutoff):
		// Too young to be sure.
		key.Action = actionReported
		t.b.tidy.note(key)
		if unknownAge {
			// Say so where an operator looks, not only in tidy-status
			// (which keeps 1000).
			t.b.Logger().Warn("tidy found an orphan key of unknown age (the provider's list gives no creation time): a tidy revokes it once safety_buffer has passed since it was first seen, if nothing accounts for it by then",
				"provider", l.provider, "incarnation", l.incarnation, "key_id", l.key.ID, "key_name", l.key.Name, "first_seen", formatTime(age))
		}
		return
	case t.opts.dryRun:
		key.Action = actionWouldRevoke
		t.b.tidy.note(key)
		t.b.tidy.update(func(st *tidyStatus) { st.OrphansRevoked++; st.KeysRevoked++ })
		seen.forget(l.provider, l.incarnation, l.key.ID)
		return
	}
	pc, release, err := t.b.clientFor(ctx, t.s, l.provider, l.incarnation)
	if err == nil && pc == nil {
		err = fmt.Errorf("provider %q: gone during tidy", l.provider)
	}
	if err != nil {
		t.failed(key, err)
		return
	}
	defer release()
	if err := pc.api.RevokeKey(ctx, l.key.ID); err != nil {
		t.failed(key, fmt.Errorf("provider %q: revoking orphan key %s: %w", l.provider, l.key.ID, err))
		return
	}
	key.Action = actionRevoked
	t.b.tidy.note(key)
	t.b.tidy.update(func(st *tidyStatus) { st.OrphansRevoked++; st.KeysRevoked++ })
	t.b.tidy.orphans.WithLabelValues(l.provider).Inc()
	seen.forget(l.provider, l.incarnation, l.key.ID)
	t.b.Logger().Info("tidy revoked an orphan key: it carries this mount's marker but nothing in storage accounts for it",
		"provider", l.provider, "incarnation", l.incarnation, "key_id", l.key.ID, "key_name", l.key.Name, ageField, formatTime(age))
}

// autoTidyConfig is config/auto-tidy.
type autoTidyConfig struct {
	Enabled      bool          `json:"enabled"`
	Interval     time.Duration `json:"interval"`
	SafetyBuffer time.Duration `json:"safety_buffer"`
	// EnabledAt is when auto-tidy was last switched on: the first run is
	// one interval later.
	EnabledAt time.Time `json:"enabled_at"`
}

type autoTidyState struct {
	LastRun time.Time `json:"last_run"`
}

func getAutoTidyConfig(ctx context.Context, s logical.Storage) (*autoTidyConfig, error) {
	var c autoTidyConfig
	ok, err := getJSON(ctx, s, autoTidyConfigKey, &c)
	if err != nil || !ok {
		return nil, err
	}
	return &c, nil
}

func getAutoTidyState(ctx context.Context, s logical.Storage) (autoTidyState, error) {
	var st autoTidyState
	_, err := getJSON(ctx, s, autoTidyStateKey, &st)
	return st, err
}

// next is when auto-tidy is next due (zero when disabled).
func (c *autoTidyConfig) next(lastRun time.Time) time.Time {
	if c == nil || !c.Enabled {
		return time.Time{}
	}
	from := c.EnabledAt
	if lastRun.After(from) {
		from = lastRun
	}
	return from.Add(c.Interval)
}

func (b *backend) autoTidyExists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	c, err := getAutoTidyConfig(ctx, req.Storage)
	return c != nil, err
}

func (b *backend) autoTidyRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	c, err := getAutoTidyConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = &autoTidyConfig{Interval: defaultAutoTidyInterval, SafetyBuffer: defaultTidySafetyBuffer}
	}
	st, err := getAutoTidyState(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"enabled":       c.Enabled,
		"interval":      int64(c.Interval.Seconds()),
		"safety_buffer": int64(c.SafetyBuffer.Seconds()),
		"last_run":      formatTime(st.LastRun),
		"next_run":      formatTime(c.next(st.LastRun)),
	}}, nil
}

func (b *backend) autoTidyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	old, err := getAutoTidyConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	c := autoTidyConfig{Interval: defaultAutoTidyInterval, SafetyBuffer: defaultTidySafetyBuffer}
	if old != nil {
		c = *old
	}
	if v, ok := d.GetOk("enabled"); ok {
		c.Enabled = v.(bool)
	}
	if v, ok := durationField(d, "interval"); ok {
		if v < minAutoTidyInterval {
			return logical.ErrorResponse("interval must be at least %s", minAutoTidyInterval), nil
		}
		c.Interval = v
	}
	if v, ok := durationField(d, "safety_buffer"); ok {
		if v < 0 {
			return logical.ErrorResponse("safety_buffer must not be negative"), nil
		}
		c.SafetyBuffer = v
	}
	if c.Enabled && (old == nil || !old.Enabled) {
		c.EnabledAt = b.clock.Now()
	}
	if err := putJSON(ctx, req.Storage, autoTidyConfigKey, &c); err != nil {
		return nil, err
	}
	st, err := getAutoTidyState(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	b.sched.schedule(autoTidyItem, c.next(st.LastRun))
	return nil, nil
}

// scheduleAutoTidy queues auto-tidy from storage (at start).
func (b *backend) scheduleAutoTidy(ctx context.Context, s logical.Storage) error {
	c, err := getAutoTidyConfig(ctx, s)
	if err != nil || c == nil {
		return err
	}
	st, err := getAutoTidyState(ctx, s)
	if err != nil {
		return err
	}
	b.sched.schedule(autoTidyItem, c.next(st.LastRun))
	return nil
}

// autoTidyJob is auto-tidy's scheduler job: it starts a tidy in the
// background and says when the next one is due. A tidy already running
// counts as this interval's.
func (b *backend) autoTidyJob(ctx context.Context) time.Time {
	now := b.clock.Now()
	c, err := getAutoTidyConfig(ctx, b.storage)
	if err != nil {
		b.Logger().Warn("auto-tidy: reading its configuration failed; retrying", "error", err)
		return now.Add(minAutoTidyInterval)
	}
	st, err := getAutoTidyState(ctx, b.storage)
	if err != nil {
		b.Logger().Warn("auto-tidy: reading its state failed; retrying", "error", err)
		return now.Add(minAutoTidyInterval)
	}
	due := c.next(st.LastRun)
	if due.IsZero() || due.After(now) {
		return due
	}
	if err := b.startTidy(b.storage, tidyOptions{safetyBuffer: c.SafetyBuffer, auto: true}); err != nil && !errors.Is(err, errTidyRunning) {
		b.Logger().Warn("auto-tidy could not start", "error", err)
	}
	if err := putJSON(ctx, b.storage, autoTidyStateKey, &autoTidyState{LastRun: now}); err != nil {
		b.Logger().Warn("auto-tidy: recording its run failed", "error", err)
	}
	return now.Add(c.Interval)
}

const tidyHelp = `
Starts a tidy in the background (202; follow it with tidy-status). A tidy:

1. revokes the key of every ledger entry whose lease ended more than
   safety_buffer ago (Vault lost the lease: a crash between the answer and
   the lease, or a revocation that never succeeded), with the configuration
   of the provider incarnation that created it, then removes the entry;
2. for provider types that can list keys, finds keys whose name carries this
   mount's marker but that no ledger entry, dual role or root accounts for
   (orphans), and revokes those created more than safety_buffer ago; the
   others stay pending for a later tidy;
3. removes the tombstones of deleted providers whose last key is gone (no
   ledger entry, no orphan pending).

Keys without the mount's marker are never touched. dry_run=true lists what a
real run would revoke and changes nothing. safety_buffer defaults to 72h.
One tidy runs at a time; tidy-cancel stops it.
`

const tidyCancelHelp = `
Stops the running tidy, as Vault PKI's tidy-cancel does, and answers
tidy-status: state Cancelling until the call the tidy is making has
returned, then Cancelled. What it had not done yet is left for the next
tidy (a revocation cut short keeps its ledger entry; orphans seen this run
are not recorded). With no tidy running it answers tidy-status with a
warning.
`

const tidyStatusHelp = `
The running or last tidy of this node (the active node): state (Inactive,
Running, Finished, Error, Cancelling, Cancelled), auto (started by auto-tidy), dry_run,
safety_buffer, time_started,
time_finished, entries_examined, keys_revoked (orphans included),
tombstones_removed, orphans_found, orphans_revoked, error_count, last_error,
and keys: up to 1000 keys with provider, incarnation, key_id, key_name, reason
("expired ledger entry" or "orphan") and action ("revoked", "would revoke",
"failed" or "reported"). In a dry run the counts say what a real run would
do: keys_revoked, orphans_revoked and tombstones_removed count what it would
revoke and remove. Never a secret.
`

const autoTidyHelp = `
Runs tidy every interval (default 12h, at least 1m) on the active node, with
the given safety_buffer (default 72h), when enabled (default false). The first
run is one interval after enabling; the time of the last run is kept in
storage, so a restart or a leader change does not postpone it.
`
