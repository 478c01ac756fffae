package clienttest

import (
	"context"
	"fmt"
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

// RootListing says whether a type's ListKeys lists its root credential.
type RootListing int

const (
	// RootNotListed: the root is never listed (another list, or left out).
	RootNotListed RootListing = iota
	// RootListed: the root is one of the keys, under the id RootID returns.
	RootListed
	// RootMayBeListed: it depends on the configuration; when listed, it is
	// under the id RootID returns.
	RootMayBeListed
)

// ListCheck is one configuration's check of ListKeys (see AssertLists).
type ListCheck struct {
	// Request is what each of Keys keys is created with; its Name is set
	// to vault-k-<i>.
	Request clients.KeyRequest
	Keys    int
	// Dated: the type's list gives each key's creation time.
	Dated bool
	Root  RootListing
	// FailNext injects failures in the type's fake; Secrets must never
	// show in an error.
	FailNext func(n, status int)
	Secrets  []string
}

// AssertLists creates c.Keys keys with p, then checks that ListKeys lists
// exactly them (AssertListKeys) and the root as c.Root says, and fails as
// AssertListFailures wants. It returns the keys listed by id.
func AssertLists(t testing.TB, p clients.Provider, c ListCheck) map[string]clients.Key {
	t.Helper()
	want := map[string]string{}
	for i := 0; i < c.Keys; i++ {
		req := c.Request
		req.Name = fmt.Sprintf("vault-k-%d", i)
		k, err := p.CreateKey(context.Background(), req)
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		want[k.ID] = k.Name
	}
	if c.Root != RootNotListed {
		withRoot := WithListedRoot(t, p, want)
		if c.Root == RootListed && len(withRoot) != len(want)+1 {
			t.Fatal("the root credential is not listed under the id RootID returns")
		}
		want = withRoot
	}
	got := AssertListKeys(t, p, want, c.Dated)
	AssertListFailures(t, p, c.FailNext, c.Secrets...)
	return got
}
