// Package clienttest is what the provider packages' unit tests share:
// building a provider the way the backend does, over an HTTP layer that
// retries in milliseconds, and the checks every provider's errors must pass.
package clienttest

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients/httpx"
)

// Provider is the provider instance name of clients built here; their
// errors name it as provider "test".
const Provider = "test"

// HTTP is the shared HTTP layer for instance Provider, retrying after
// 1–10ms so tests of retries and exhausted retries run fast.
func HTTP(t testing.TB) *httpx.Client {
	t.Helper()
	hc, err := httpx.New(httpx.Options{Provider: Provider, RetryWaitMin: time.Millisecond, RetryWaitMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

// Type is the registered provider type name.
func Type(t testing.TB, name string) *clients.Type {
	t.Helper()
	typ, ok := clients.Lookup(name)
	if !ok {
		t.Fatalf("provider type %q is not registered", name)
	}
	return typ
}

// WithDefaults is fields over the defaults of provider type typeName, as
// the backend merges them. A field the type does not declare fails t.
func WithDefaults(t testing.TB, typeName string, fields map[string]string) map[string]string {
	t.Helper()
	merged := map[string]string{}
	for _, f := range Type(t, typeName).Fields {
		merged[f.Name] = f.Default
	}
	for k, v := range fields {
		if _, declared := merged[k]; !declared {
			t.Fatalf("field %q is not declared by provider type %q", k, typeName)
		}
		merged[k] = v
	}
	return merged
}

// New builds a provider of type typeName as the backend does: fields
// WithDefaults, then Build with the HTTP layer. A field Validate rejects
// fails t.
func New(t testing.TB, typeName, baseURL string, fields map[string]string) clients.Provider {
	t.Helper()
	merged := WithDefaults(t, typeName, fields)
	p, err := Type(t, typeName).Build(clients.Config{Name: Provider, BaseURL: baseURL, Fields: merged, HTTP: HTTP(t)})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p
}

// Merge returns a new map of base's entries overridden by each of over's.
func Merge(base map[string]string, over ...map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	for _, m := range over {
		maps.Copy(out, m)
	}
	return out
}

// AssertFieldError checks that err is a *clients.FieldError on field whose
// message contains text, or, when field is "", that err is nil.
func AssertFieldError(t testing.TB, err error, field, text string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var fe *clients.FieldError
	if !errors.As(err, &fe) || fe.Field != field || !strings.Contains(fe.Message, text) {
		t.Fatalf("err = %v, want a FieldError on %s mentioning %q", err, field, text)
	}
}

// AssertNoSecret fails t when err's text contains any non-empty secret.
func AssertNoSecret(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error contains a secret: %v", err)
		}
	}
}

// AssertRevoked checks what every provider promises once RevokeKey(key.ID)
// has succeeded: the key no longer authenticates at the provider (live
// reports whether a secret does), VerifyKey fails without quoting the key
// or any of secrets, and revoking it again is not an error (a key already
// gone counts as revoked). It returns VerifyKey's error for the provider's
// own checks.
func AssertRevoked(t testing.TB, p clients.Provider, key clients.Key, live func(secret string) bool, secrets ...string) error {
	t.Helper()
	ctx := context.Background()
	if live(key.Secret) {
		t.Fatal("the key still works after RevokeKey")
	}
	err := p.VerifyKey(ctx, key)
	if err == nil {
		t.Fatal("VerifyKey accepted a revoked key")
	}
	AssertNoSecret(t, err, append([]string{key.Secret}, secrets...)...)
	if err := p.RevokeKey(ctx, key.ID); err != nil {
		t.Fatalf("second RevokeKey: %v", err)
	}
	return err
}

// AssertFailures runs each call against a provider answering every request
// with status, in name order, and checks that each fails with an error that
// names provider "test" and the status and contains none of secrets. It
// returns the errors by call name for checks of the provider's own.
func AssertFailures(t testing.TB, calls map[string]func() error, status int, secrets ...string) map[string]error {
	t.Helper()
	errs := map[string]error{}
	for _, name := range slices.Sorted(maps.Keys(calls)) {
		err := calls[name]()
		if err == nil {
			t.Fatalf("%s succeeded against a provider answering %d", name, status)
		}
		msg := err.Error()
		if !strings.Contains(msg, `provider "`+Provider+`"`) || !strings.Contains(msg, "HTTP "+strconv.Itoa(status)) {
			t.Errorf("%s: error does not name provider and status: %v", name, msg)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(msg, s) {
				t.Errorf("%s: error leaks a secret: %v", name, msg)
			}
		}
		errs[name] = err
	}
	return errs
}

// Count is how many of reqs match.
func Count[R any](reqs []R, match func(R) bool) int {
	n := 0
	for _, r := range reqs {
		if match(r) {
			n++
		}
	}
	return n
}

// Statuses returns a function listing the status of each request reqs
// returns (a fake's Requests), for AssertRetriedAfter429.
func Statuses[R any](reqs func() []R, status func(R) int) func() []int {
	return func() []int {
		var out []int
		for _, r := range reqs() {
			out = append(out, status(r))
		}
		return out
	}
}

// Last is the last of reqs that matches; it fails t, naming what, when
// none does.
func Last[R any](t testing.TB, reqs []R, what string, match func(R) bool) R {
	t.Helper()
	for i := len(reqs) - 1; i >= 0; i-- {
		if match(reqs[i]) {
			return reqs[i]
		}
	}
	t.Fatalf("no %s request recorded", what)
	var zero R
	return zero
}

// AssertCreateRetriedAfter429 checks that a create the provider answers
// twice with 429 (failNext injects them) is sent again and succeeds: three
// requests since the call, the first a 429 and the last a 2xx. reqs are
// the fake's requests and status reads one's status.
func AssertCreateRetriedAfter429[R any](t testing.TB, failNext func(n, status int), create func() error, reqs func() []R, status func(R) int) {
	t.Helper()
	mark := len(reqs())
	failNext(2, http.StatusTooManyRequests)
	if err := create(); err != nil {
		t.Fatalf("create after two 429s: %v", err)
	}
	seen := reqs()[mark:]
	if len(seen) != 3 || status(seen[0]) != http.StatusTooManyRequests || status(seen[2]) < 200 || status(seen[2]) > 299 {
		t.Fatalf("after two 429s: %d requests %+v, want 429, 429, 2xx", len(seen), seen)
	}
}

// AssertCreateNotRetriedAfter500 checks that a create the provider answers
// with 500 is sent once (the key may exist; the caller's WAL entry finds
// it) and fails naming the status. It returns the error.
func AssertCreateNotRetriedAfter500[R any](t testing.TB, failNext func(n, status int), create func() error, reqs func() []R) error {
	t.Helper()
	mark := len(reqs())
	failNext(1, http.StatusInternalServerError)
	err := create()
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("create answered 500 = %v, want an error naming HTTP 500", err)
	}
	if n := len(reqs()) - mark; n != 1 {
		t.Fatalf("a create answered 500 was sent %d times, want once", n)
	}
	return err
}

// AssertDualOverlap plays a dual role's rotation against p: two keys are
// created (req named with -1 and -2), the new one verifies while the old one
// still works (the overlap), and revoking the old one leaves exactly the new
// one working. live reports whether a secret works at the provider.
func AssertDualOverlap(t testing.TB, p clients.Provider, req clients.KeyRequest, live func(secret string) bool) {
	t.Helper()
	ctx := context.Background()
	name := req.Name
	req.Name = name + "-1"
	old, err := p.CreateKey(ctx, req)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	req.Name = name + "-2"
	cur, err := p.CreateKey(ctx, req)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	if err := p.VerifyKey(ctx, cur); err != nil || !live(old.Secret) {
		t.Fatalf("during the overlap: verify of the new key %v, old key live %v", err, live(old.Secret))
	}
	if err := p.RevokeKey(ctx, old.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if live(old.Secret) || !live(cur.Secret) {
		t.Fatal("after retiring the old key exactly the new one must work")
	}
}

// AssertLostCreateFound checks the answer to a create that happened but
// whose answer was lost: with loseNext armed (the provider's fake stores the
// key, then answers 500), CreateKey(req) fails naming the 500 and is sent
// once (creates counts the create requests sent), FindKeys(req.Name) finds
// exactly that key, and RevokeKey of what it found leaves no key named so
// (named reports whether the provider still has a live key of that name).
func AssertLostCreateFound(t testing.TB, p clients.Provider, req clients.KeyRequest, loseNext func(), creates func() int, named func(name string) bool) {
	t.Helper()
	ctx := context.Background()
	before := creates()
	loseNext()
	if _, err := p.CreateKey(ctx, req); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("CreateKey whose answer was lost = %v, want an error naming HTTP 500", err)
	}
	if n := creates() - before; n != 1 {
		t.Fatalf("a create answered 500 was sent %d times; it may have happened, so once", n)
	}
	found, err := p.FindKeys(ctx, req.Name)
	if err != nil || len(found) != 1 {
		t.Fatalf("FindKeys(%q) = %+v, %v; want the one key of the lost create", req.Name, found, err)
	}
	if err := p.RevokeKey(ctx, found[0].ID); err != nil {
		t.Fatalf("RevokeKey of the found key: %v", err)
	}
	if named(req.Name) {
		t.Fatal("the key of the lost create is still live")
	}
}

// AssertRetriedAfter429 checks that a create answered 429 twice (failNext
// injects them) is sent again until it succeeds: statuses are the statuses
// of the requests the provider saw since the call, which must be 429, 429,
// then ok.
func AssertRetriedAfter429(t testing.TB, p clients.Provider, req clients.KeyRequest, failNext func(n, status int), statuses func() []int, ok int) {
	t.Helper()
	failNext(2, http.StatusTooManyRequests)
	if _, err := p.CreateKey(context.Background(), req); err != nil {
		t.Fatalf("CreateKey after two 429s: %v", err)
	}
	if got := statuses(); !slices.Equal(got, []int{http.StatusTooManyRequests, http.StatusTooManyRequests, ok}) {
		t.Fatalf("statuses = %v, want 429, 429, %d", got, ok)
	}
}
