package backend

// The rotation job: replacing one secret of an owner at a provider. The two
// kinds are a dual role's key (rotation.go) and a provider's root credential
// (root_rotation.go); rehearsals (rehearsal.go) run the same calls on a
// throw-away secret. The order of the steps is what keeps DESIGN.md's
// invariants, and it is written once, here:
//
//  1. At most two live: the owner's replaced secret must be retired before
//     another replacement starts (a caller may force its revocation now).
//  2. A record names the new secret from before the provider call that
//     creates it, and carries its id as soon as the provider answers, so a
//     crash at any point leaves something for a sweeper to revoke (a WAL
//     entry here, settled by rollback; the dynamic creds path's record is
//     the ledger, settled by tidy).
//  3. The new secret is verified with itself before anyone may use it; one
//     that fails, or whose id cannot be recorded, is discarded.
//  4. It is stored as current, with the replaced secret scheduled for
//     retirement, and only then is the record dropped.
//
// Roll-style APIs (the create replaces the secret at the provider and the
// old value dies in the same call) cannot keep step 3 before step 4: the new
// secret is stored first and verified after.
//
// Failures of a scheduled step are bookkept the same way for both kinds
// (attempts): backoff with jitter, at least a Retry-After, and no retries
// past a schedule's rotation window unless the secret's expiry forces them.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

const (
	// Retry backoff of failed rotations: exponential with jitter.
	backoffBase = time.Second
	backoffMax  = 5 * time.Minute
	// jobTimeout bounds one scheduled job; it stays under walRollbackMinAge
	// so rollback never races a job still in flight.
	jobTimeout = 90 * time.Second
	// rollStoreAttempts is how often a rolled root's write is tried: the
	// old root is already dead, so giving up loses the credential.
	rollStoreAttempts = 5
)

// journal is the record naming a secret from before its create until it is
// accounted for elsewhere.
type journal interface {
	// open writes the record, before the provider call.
	open(ctx context.Context) error
	// record adds the secret's id, once the provider has answered.
	record(ctx context.Context, id string) error
	// settle ends the record of a secret that will not be used: dropped
	// when the secret certainly does not exist (gone), else left for the
	// sweeper.
	settle(id string, gone bool)
}

// walRecord is a WAL entry that can name the secret's id.
type walRecord interface{ setID(id string) }

func (w *walKey) setID(id string)  { w.KeyID = id }
func (w *walRoot) setID(id string) { w.RootID = id }

// walJournal keeps the record as a WAL entry; rollback revokes what an
// entry left behind names.
type walJournal struct {
	b     *backend
	s     logical.Storage
	kind  string
	entry walRecord
	id    string // the entry's WAL id; "" once dropped
}

func (b *backend) newWALJournal(s logical.Storage, kind string, entry walRecord) *walJournal {
	return &walJournal{b: b, s: s, kind: kind, entry: entry}
}

func (j *walJournal) open(ctx context.Context) error {
	id, err := framework.PutWAL(ctx, j.s, j.kind, j.entry)
	if err != nil {
		return fmt.Errorf("writing WAL: %w", err)
	}
	j.id = id
	return nil
}

// record writes a new entry with the id, then drops the first one.
func (j *walJournal) record(ctx context.Context, id string) error {
	j.entry.setID(id)
	id2, err := framework.PutWAL(ctx, j.s, j.kind, j.entry)
	if err != nil {
		return fmt.Errorf("writing WAL: %w", err)
	}
	j.drop(ctx)
	j.id = id2
	return nil
}

func (j *walJournal) settle(_ string, gone bool) {
	if gone {
		ctx, cancel := persistContext(context.Background())
		defer cancel()
		j.drop(ctx)
	}
}

// close drops the entry of a secret now recorded in storage.
func (j *walJournal) close(ctx context.Context) { j.drop(ctx) }

func (j *walJournal) drop(ctx context.Context) {
	if j.id == "" {
		return
	}
	if err := framework.DeleteWAL(ctx, j.s, j.id); err != nil {
		// Harmless: rollback finds the secret recorded (or gone) and only
		// drops the entry.
		j.b.Logger().Warn("could not delete a WAL entry", "error", err)
	}
	j.id = ""
}

// secretOps are a kind's provider calls on a new secret S.
type secretOps[S any] struct {
	// what names the secret in errors ("key", "root").
	what    string
	create  func(ctx context.Context) (S, error)
	id      func(S) string
	verify  func(ctx context.Context, sec S) error
	discard func(ctx context.Context, sec S) error
	// notCreated says a failed create left nothing at the provider.
	notCreated func(error) bool
}

// createRecorded creates a secret under j: the record is written before
// the provider call and names the id once it answers. A failed create
// settles the record (dropped when nothing was made); a secret whose id
// cannot be recorded is discarded.
func createRecorded[S any](ctx context.Context, j journal, ops secretOps[S]) (S, error) {
	var zero S
	if err := j.open(ctx); err != nil {
		return zero, err
	}
	sec, err := ops.create(ctx)
	if err != nil {
		j.settle("", ops.notCreated(err))
		return zero, err
	}
	if err := j.record(ctx, ops.id(sec)); err != nil {
		_ = discardRecorded(ctx, j, ops, sec)
		return zero, err
	}
	return sec, nil
}

// discardRecorded discards a new secret that will not be used; its record
// goes with it, or stays for the sweeper when the discard fails.
func discardRecorded[S any](ctx context.Context, j journal, ops secretOps[S], sec S) error {
	err := ops.discard(ctx, sec)
	j.settle(ops.id(sec), err == nil)
	return err
}

// createVerified is createRecorded, then the secret verified with itself;
// one that fails is discarded.
func createVerified[S any](ctx context.Context, j journal, ops secretOps[S]) (S, error) {
	sec, err := createRecorded(ctx, j, ops)
	if err != nil {
		return sec, err
	}
	if err := ops.verify(ctx, sec); err != nil {
		_ = discardRecorded(ctx, j, ops, sec)
		var zero S
		return zero, fmt.Errorf("the new %s failed verification and was not promoted: %w", ops.what, err)
	}
	return sec, nil
}

// errPreviousNotRetired refuses a rotation that would make three live
// secrets.
type errPreviousNotRetired struct {
	what     string
	id       string
	retireAt time.Time
}

func (e errPreviousNotRetired) Error() string {
	return fmt.Sprintf("the previous %s %s retires at %s; rotate after that, or pass revoke_previous=true to revoke it now", e.what, e.id, formatTime(e.retireAt))
}

// errRetireAfterRotation: the new secret is stored, but revoking the one it
// replaced failed; that one stays recorded and is retried.
type errRetireAfterRotation struct{ err error }

func (e errRetireAfterRotation) Error() string {
	return "rotated, but revoking the replaced secret failed (it stays recorded and will be retried): " + e.err.Error()
}
func (e errRetireAfterRotation) Unwrap() error { return e.err }

// rotationJob is one replacement of an owner's secret: the kind fills in
// how its secrets are created and stored, the steps and their order are
// run's.
type rotationJob[S any] struct {
	ops     secretOps[S]
	journal *walJournal
	// roll: the create replaces the secret at the provider at once.
	roll bool
	// old reports the owner's replaced secret still live (ok), and when
	// it may be retired.
	old func() (id string, retireAt time.Time, ok bool)
	// retire revokes the owner's replaced secret and stores that it is
	// gone; it fails if the secret is still live afterwards.
	retire func(ctx context.Context) error
	// promote stores sec as the owner's current secret and the one it
	// replaces as due for retirement; when it fails nothing is stored.
	promote func(ctx context.Context, sec S) error
	// retireAtOnce: the replaced secret is revoked as soon as the new one
	// is stored (roots: no lease holds them), not after an overlap.
	retireAtOnce bool
	// lost is called when a rolled secret could not be stored.
	lost func(err error)
}

// run replaces the secret. force revokes a replaced secret still in its
// overlap (before the create) and the one this run replaces (after it),
// instead of refusing and waiting.
func (j *rotationJob[S]) run(ctx context.Context, now time.Time, force bool) (S, error) {
	var zero S
	if id, retireAt, ok := j.old(); ok {
		if !force && now.Before(retireAt) {
			return zero, errPreviousNotRetired{what: j.ops.what, id: id, retireAt: retireAt}
		}
		if err := j.retire(ctx); err != nil {
			return zero, err
		}
	}
	if j.roll {
		return j.runRoll(ctx)
	}
	sec, err := createVerified(ctx, j.journal, j.ops)
	if err != nil {
		return zero, err
	}
	if err := j.promote(ctx, sec); err != nil {
		return zero, err // the record names the new secret: rollback settles it
	}
	j.journal.close(ctx)
	if j.retireAtOnce || force {
		if _, _, ok := j.old(); ok {
			if err := j.retire(ctx); err != nil {
				return sec, errRetireAfterRotation{err}
			}
		}
	}
	return sec, nil
}

// runRoll: nothing may come between the create and storing its result.
func (j *rotationJob[S]) runRoll(ctx context.Context) (S, error) {
	var zero S
	if err := j.journal.open(ctx); err != nil {
		return zero, err
	}
	sec, err := j.ops.create(ctx)
	if err != nil {
		j.journal.settle("", true) // nothing to discard: a roll has no spare
		return zero, err
	}
	var perr error
	for range rollStoreAttempts {
		if perr = j.promote(ctx, sec); perr == nil {
			break
		}
	}
	j.journal.close(ctx)
	if perr != nil {
		j.lost(perr)
		return zero, fmt.Errorf("the provider rolled the %s but storing it failed: %w", j.ops.what, perr)
	}
	if err := j.ops.verify(ctx, sec); err != nil {
		return sec, fmt.Errorf("the rolled %s is stored but failed verification: %w", j.ops.what, err)
	}
	return sec, nil
}

// ownerTurn is the scheduler's work on one owner of a rotated secret (a
// dual role, a provider), whichever its kind: retire the replaced secret
// once due, then rotate when due, with failures bookkept and counted.
type ownerTurn struct {
	kind, name string // as the rotations metric names them
	retireDue  bool
	// retire revokes the replaced secret; it bookkeeps its own failure.
	retire func(ctx context.Context) error
	// rotateDue: a rotation is due at now (asked after any retirement).
	rotateDue func(now time.Time) bool
	rotate    func(ctx context.Context) error
	// fail bookkeeps and stores a failed rotation.
	fail func(ctx context.Context, now time.Time, err error)
	// rotated is the log line of a rotation that succeeded.
	rotatedMsg string
	rotated    func() []any
	nextDue    func() time.Time
}

// scheduledJob runs an owner's turn under its lock (lockKind, name): load
// reads the owner (nil: nothing to do, ever). It returns when the owner
// next needs attention (zero: never); a failed read is retried.
func (b *backend) scheduledJob(ctx context.Context, lockKind, name string, load func(ctx context.Context, s logical.Storage) (*ownerTurn, error)) time.Time {
	defer b.locks.lock(lockKey(lockKind, name))()
	t, err := load(ctx, b.storage)
	if err != nil {
		b.Logger().Error("rotation: reading "+lockKind, lockKind, name, "error", err)
		return b.clock.Now().Add(30 * backoffBase)
	}
	if t == nil {
		return time.Time{}
	}
	if t.retireDue {
		if err := t.retire(ctx); err != nil {
			b.metrics.rotation(t.kind, t.name, "failure")
			return t.nextDue()
		}
	}
	if !t.rotateDue(b.clock.Now()) {
		return t.nextDue()
	}
	if err := t.rotate(ctx); err != nil {
		b.metrics.rotation(t.kind, t.name, "failure")
		t.fail(ctx, b.clock.Now(), err) // after the HTTP layer's own retries
		return t.nextDue()
	}
	b.metrics.rotation(t.kind, t.name, "success")
	b.Logger().Info(t.rotatedMsg, t.rotated()...)
	return t.nextDue()
}

// attempts is an owner's failure bookkeeping, wherever its kind stores it.
type attempts struct {
	failures  *int
	lastError *string
	nextRetry *time.Time
}

// backoff records a failed step at now, with the next retry after
// retryDelay.
func (a attempts) backoff(now time.Time, rot rotationConfig, msg string, err error) {
	*a.failures++
	*a.lastError = msg
	*a.nextRetry = now.Add(retryDelay(*a.failures, rot.minInterval(now), err))
}

// failRotation records a failed rotation: backoff, and with a
// rotation_window, no retries past the window of the scheduled time (the
// owner then waits for its next scheduled time). The window does not apply
// once the secret's expiry deadline (renewAt) has come: skipping would let
// it expire. It reports whether the window passed; the caller moves its
// schedule on.
func (a attempts) failRotation(now time.Time, rot rotationConfig, scheduled, renewAt time.Time, msg string, err error) (windowPassed bool) {
	a.backoff(now, rot, msg, err)
	expiryDriven := !renewAt.IsZero() && !now.Before(renewAt)
	if w := rot.Window; w > 0 && rot.Schedule != "" && !expiryDriven && a.nextRetry.After(scheduled.Add(w)) {
		*a.nextRetry, *a.failures = time.Time{}, 0
		*a.lastError += " (rotation window passed; waiting for the next scheduled time)"
		return true
	}
	return false
}

func (a attempts) clear() {
	*a.failures, *a.lastError, *a.nextRetry = 0, "", time.Time{}
}

// retryDelay is the wait before retry number n: exponential from
// backoffBase with full jitter in its upper half, capped at backoffMax
// and at the rotation interval, and never shorter than a Retry-After.
func retryDelay(n int, interval time.Duration, err error) time.Duration {
	ceiling := backoffMax
	if interval > 0 && interval < ceiling {
		ceiling = interval
	}
	d := backoffBase << min(n-1, 20)
	if d > ceiling || d <= 0 {
		d = ceiling
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	var he *httpx.Error
	if errors.As(err, &he) && he.RetryAfter > d {
		d = he.RetryAfter
	}
	return d
}
