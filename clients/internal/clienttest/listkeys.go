package clienttest

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// Lister returns p as a clients.KeyLister, failing t when it is not one.
func Lister(t testing.TB, p clients.Provider) clients.KeyLister {
	t.Helper()
	l, ok := p.(clients.KeyLister)
	if !ok {
		t.Fatalf("%T does not implement clients.KeyLister", p)
	}
	return l
}

// AssertListKeys checks what tidy's orphan scan relies on: ListKeys lists
// exactly the keys of want (id → name), every page of them, each with its
// Name, no Secret and, when dated, a CreatedAt between 2000 and a day from
// now (a wrong unit of an epoch is far off), else a zero CreatedAt. It
// returns the keys listed by id for the caller's checks of exact times.
func AssertListKeys(t testing.TB, p clients.Provider, want map[string]string, dated bool) map[string]clients.Key {
	t.Helper()
	keys, err := Lister(t, p).ListKeys(context.Background())
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	got := map[string]clients.Key{}
	for _, k := range keys {
		if _, dup := got[k.ID]; dup {
			t.Fatalf("ListKeys lists %s twice", k.ID)
		}
		got[k.ID] = k
		name, ok := want[k.ID]
		switch {
		case !ok:
			t.Fatalf("ListKeys lists %s (%q), which is not one of the account's keys", k.ID, k.Name)
		case k.Name != name:
			t.Fatalf("ListKeys: key %s named %q, want %q", k.ID, k.Name, name)
		case k.Secret != "":
			t.Fatalf("ListKeys: key %s carries a secret", k.ID)
		case dated && (k.CreatedAt.Before(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)) || time.Until(k.CreatedAt) > 24*time.Hour):
			t.Fatalf("ListKeys: key %s created %v, want a time parsed from the list", k.ID, k.CreatedAt)
		case !dated && !k.CreatedAt.IsZero():
			t.Fatalf("ListKeys: key %s has a creation time %v the API does not give", k.ID, k.CreatedAt)
		}
	}
	for id, name := range want {
		if _, ok := got[id]; !ok {
			t.Fatalf("ListKeys misses %s (%q)", id, name)
		}
	}
	return got
}

// AssertListFailures checks ListKeys against a provider that fails
// (failNext injects failures in the provider's fake): a 401 and 500s on
// every attempt are errors naming provider "test" and the status with none
// of secrets, and two 429s are waited out and the list succeeds.
func AssertListFailures(t testing.TB, p clients.Provider, failNext func(n, status int), secrets ...string) {
	t.Helper()
	l := Lister(t, p)
	ctx := context.Background()
	list := func() error { _, err := l.ListKeys(ctx); return err }
	failNext(1000, http.StatusUnauthorized)
	AssertFailures(t, map[string]func() error{"list": list}, http.StatusUnauthorized, secrets...)
	failNext(1000, http.StatusInternalServerError)
	AssertFailures(t, map[string]func() error{"list": list}, http.StatusInternalServerError, secrets...)
	failNext(2, http.StatusTooManyRequests)
	if err := list(); err != nil {
		t.Fatalf("ListKeys after two 429s: %v", err)
	}
	failNext(0, 0)
}

// WithListedRoot returns want plus the root credential, when ListKeys lists
// it (types whose roots are keys of the same list): it must be listed under
// the id RootID returns, the id the backend stores and tidy never revokes.
func WithListedRoot(t testing.TB, p clients.Provider, want map[string]string) map[string]string {
	t.Helper()
	ctx := context.Background()
	rootID, err := p.RootID(ctx)
	if err != nil {
		t.Fatalf("RootID: %v", err)
	}
	keys, err := Lister(t, p).ListKeys(ctx)
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	out := Merge(want)
	for _, k := range keys {
		if _, ours := want[k.ID]; !ours && rootID != "" && k.ID == rootID {
			out[k.ID] = k.Name
		}
	}
	return out
}
