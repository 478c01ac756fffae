package clienttest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// recorder is a testing.TB that notes failures instead of failing; Fatalf
// stops the helper as the real one would.
type recorder struct {
	testing.TB
	failures []string
}

type stopped struct{}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(stopped{})
}
func (r *recorder) Error(args ...any) { r.failures = append(r.failures, fmt.Sprint(args...)) }
func (r *recorder) Fatal(args ...any) {
	r.Error(args...)
	panic(stopped{})
}

// failures runs check with a recorder and returns what it reported.
func failures(t *testing.T, check func(tb testing.TB)) []string {
	t.Helper()
	r := &recorder{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil && v != (stopped{}) {
				panic(v)
			}
		}()
		check(r)
	}()
	return r.failures
}

func statusErr(status int, text string) error {
	return fmt.Errorf(`provider "test": create (POST /v1/keys): HTTP %d: %s`, status, text)
}

func TestAssertFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want string
	}{
		"names provider and status": {statusErr(503, "unavailable"), ""},
		"succeeds":                  {nil, "succeeded"},
		"other status":              {statusErr(500, "oops"), "does not name provider and status"},
		"other provider":            {errors.New(`provider "prod": HTTP 503`), "does not name provider and status"},
		"leaks":                     {statusErr(503, "key sk_live_123 is bad"), "leaks a secret"},
	} {
		got := failures(t, func(tb testing.TB) {
			AssertFailures(tb, map[string]func() error{"create": func() error { return tc.err }}, 503, "sk_live_123", "")
		})
		if (tc.want == "") != (len(got) == 0) || (tc.want != "" && !strings.Contains(strings.Join(got, "\n"), tc.want)) {
			t.Errorf("%s: reported %q, want %q", name, got, tc.want)
		}
	}
}

func TestAssertFieldError(t *testing.T) {
	fe := &clients.FieldError{Field: "scopes", Message: "take no scopes"}
	for name, tc := range map[string]struct {
		err         error
		field, text string
		fails       bool
	}{
		"match":            {fe, "scopes", "no scopes", false},
		"wrapped":          {fmt.Errorf("create: %w", fe), "scopes", "", false},
		"other field":      {fe, "parameters", "", true},
		"other text":       {fe, "scopes", "policies", true},
		"not a FieldError": {errors.New("scopes: take no scopes"), "scopes", "", true},
		"nil wanted":       {nil, "", "", false},
		"error unwanted":   {fe, "", "", true},
	} {
		got := failures(t, func(tb testing.TB) { AssertFieldError(tb, tc.err, tc.field, tc.text) })
		if (len(got) > 0) != tc.fails {
			t.Errorf("%s: reported %q, want failure %v", name, got, tc.fails)
		}
	}
}

func TestAssertNoSecret(t *testing.T) {
	if got := failures(t, func(tb testing.TB) { AssertNoSecret(tb, errors.New("token glpat-x1 rejected"), "", "glpat-x1") }); len(got) != 1 {
		t.Errorf("a secret in the error: reported %q", got)
	}
	if got := failures(t, func(tb testing.TB) { AssertNoSecret(tb, errors.New("token [redacted] rejected"), "", "glpat-x1") }); len(got) != 0 {
		t.Errorf("a redacted error: reported %q", got)
	}
}

func TestMergeCopies(t *testing.T) {
	base := map[string]string{"a": "1", "b": "2"}
	got := Merge(base, map[string]string{"b": "3"}, nil, map[string]string{"c": "4"})
	if fmt.Sprint(got) != "map[a:1 b:3 c:4]" || base["b"] != "2" {
		t.Fatalf("Merge = %v, base now %v", got, base)
	}
}

func TestLastAndCount(t *testing.T) {
	reqs := []string{"GET /a", "POST /b", "GET /a?x"}
	get := func(r string) bool { return strings.HasPrefix(r, "GET") }
	if n := Count(reqs, get); n != 2 {
		t.Errorf("Count = %d", n)
	}
	if last := Last(t, reqs, "GET", get); last != "GET /a?x" {
		t.Errorf("Last = %q", last)
	}
	if got := failures(t, func(tb testing.TB) { Last(tb, reqs, "DELETE /c", func(string) bool { return false }) }); len(got) != 1 {
		t.Errorf("Last without a match: reported %q", got)
	}
}

// revoked is a provider whose VerifyKey and RevokeKey answer as set.
type revoked struct {
	clients.Provider
	verify, revoke error
}

func (p revoked) VerifyKey(context.Context, clients.Key) error { return p.verify }
func (p revoked) RevokeKey(context.Context, string) error      { return p.revoke }

func TestAssertRevoked(t *testing.T) {
	key := clients.Key{ID: "k1", Secret: "sk_live_k1"}
	dead := func(string) bool { return false }
	unauthorized := errors.New(`provider "test": verify: HTTP 401`)
	for name, tc := range map[string]struct {
		p     revoked
		live  func(string) bool
		fails bool
	}{
		"revoked":           {revoked{verify: unauthorized}, dead, false},
		"still live":        {revoked{verify: unauthorized}, func(string) bool { return true }, true},
		"still verifies":    {revoked{}, dead, true},
		"leaks the key":     {revoked{verify: errors.New("key sk_live_k1 is revoked")}, dead, true},
		"leaks the root":    {revoked{verify: errors.New("root root-secret rejected")}, dead, true},
		"second revoke 404": {revoked{verify: unauthorized, revoke: errors.New("HTTP 404")}, dead, true},
	} {
		var err error
		got := failures(t, func(tb testing.TB) { err = AssertRevoked(tb, tc.p, key, tc.live, "root-secret") })
		if (len(got) > 0) != tc.fails {
			t.Errorf("%s: reported %q, want failure %v", name, got, tc.fails)
		}
		if !tc.fails && err != unauthorized {
			t.Errorf("%s: returned %v, want VerifyKey's error", name, err)
		}
	}
}
