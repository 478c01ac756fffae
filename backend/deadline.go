package backend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// persistTimeout bounds storing the outcome of work whose own context may
// have run out: a failure that cannot be stored is a failure nobody sees.
const persistTimeout = 10 * time.Second

// persistContext is a context to store the outcome of work done under ctx:
// ctx's values, not its deadline or cancellation, with its own short
// timeout.
func persistContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), persistTimeout)
}

// withDeadline returns a copy of pc whose provider calls all end by one
// deadline, request_timeout from now: one operation (a dynamic creds read,
// a rotation), retries and waits included, gives up within the provider's
// request_timeout instead of each HTTP attempt getting it anew. Storage
// calls are not bounded by it, so the operation's outcome is still stored.
func (pc *providerClient) withDeadline() *providerClient {
	if pc == nil {
		return nil
	}
	if _, ok := pc.api.(*deadlineProvider); ok {
		return pc
	}
	timeout := pc.entry.RequestTimeout
	if timeout <= 0 {
		timeout = defaultRequestTimeout
	}
	cp := *pc
	cp.api = &deadlineProvider{Provider: pc.api, name: pc.name, timeout: timeout, deadline: time.Now().Add(timeout)}
	return &cp
}

// deadlineProvider bounds every call of a Provider by one deadline.
type deadlineProvider struct {
	clients.Provider
	name     string
	timeout  time.Duration
	deadline time.Time
}

// call runs f under the deadline; a failure because the deadline passed
// (and not because ctx itself ended) names the provider and the timeout.
func (p *deadlineProvider) call(ctx context.Context, op string, f func(ctx context.Context) error) error {
	dctx, cancel := context.WithDeadline(ctx, p.deadline)
	defer cancel()
	err := f(dctx)
	if err != nil && ctx.Err() == nil && errors.Is(dctx.Err(), context.DeadlineExceeded) {
		return &deadlineError{provider: p.name, op: op, timeout: p.timeout, err: err}
	}
	return err
}

// deadlineError is a provider operation that ran out of request_timeout.
type deadlineError struct {
	provider string
	op       string
	timeout  time.Duration
	err      error
}

func (e *deadlineError) Error() string {
	return fmt.Sprintf("provider %q did not answer %s within its request_timeout (%s): %v", e.provider, e.op, e.timeout, e.err)
}

func (e *deadlineError) Unwrap() error { return e.err }

func (p *deadlineProvider) CreateKey(ctx context.Context, req clients.KeyRequest) (k clients.Key, err error) {
	err = p.call(ctx, "create", func(ctx context.Context) error { k, err = p.Provider.CreateKey(ctx, req); return err })
	return k, err
}

func (p *deadlineProvider) VerifyKey(ctx context.Context, key clients.Key) error {
	return p.call(ctx, "verify", func(ctx context.Context) error { return p.Provider.VerifyKey(ctx, key) })
}

func (p *deadlineProvider) RevokeKey(ctx context.Context, id string) error {
	return p.call(ctx, "revoke", func(ctx context.Context) error { return p.Provider.RevokeKey(ctx, id) })
}

func (p *deadlineProvider) FindKeys(ctx context.Context, name string) (keys []clients.Key, err error) {
	err = p.call(ctx, "list", func(ctx context.Context) error { keys, err = p.Provider.FindKeys(ctx, name); return err })
	return keys, err
}

func (p *deadlineProvider) RootID(ctx context.Context) (id string, err error) {
	err = p.call(ctx, "verify_root", func(ctx context.Context) error { id, err = p.Provider.RootID(ctx); return err })
	return id, err
}

// InspectRoot keeps the wrapped type's InspectRoot (see inspectRoot),
// else answers RootID's id alone.
func (p *deadlineProvider) InspectRoot(ctx context.Context) (r clients.Root, err error) {
	err = p.call(ctx, "verify_root", func(ctx context.Context) error {
		if ri, ok := p.Provider.(clients.RootInspector); ok {
			r, err = ri.InspectRoot(ctx)
			return err
		}
		r.ID, err = p.Provider.RootID(ctx)
		return err
	})
	return r, err
}

func (p *deadlineProvider) CreateRoot(ctx context.Context, name string) (r clients.Root, err error) {
	err = p.call(ctx, "create_root", func(ctx context.Context) error { r, err = p.Provider.CreateRoot(ctx, name); return err })
	return r, err
}

func (p *deadlineProvider) VerifyRoot(ctx context.Context, root clients.Root) error {
	return p.call(ctx, "verify_root", func(ctx context.Context) error { return p.Provider.VerifyRoot(ctx, root) })
}

func (p *deadlineProvider) RevokeRoot(ctx context.Context, oldID string) error {
	return p.call(ctx, "revoke_root", func(ctx context.Context) error { return p.Provider.RevokeRoot(ctx, oldID) })
}

// DiscardRoot keeps the wrapped type's way of discarding an unused new
// root (see discardRoot): its own DiscardRoot, else RevokeRoot.
func (p *deadlineProvider) DiscardRoot(ctx context.Context, root clients.Root) error {
	return p.call(ctx, "discard_root", func(ctx context.Context) error {
		if d, ok := p.Provider.(clients.RootDiscarder); ok {
			return d.DiscardRoot(ctx, root)
		}
		return p.Provider.RevokeRoot(ctx, root.ID)
	})
}
