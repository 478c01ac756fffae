package clienttest

import (
	"context"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

// FieldsCase is a row of a Validate table: Fields (over the table's base
// fields) must be accepted when Field is "", else rejected with a
// FieldError on Field. It is an alias of an unnamed struct so that tables
// may list rows positionally.
type FieldsCase = struct {
	Name   string
	Fields map[string]string
	Field  string
}

// AssertValidate runs each case as a subtest: provider type typeName's
// Validate of base merged with the case's Fields must pass AssertFieldError
// on the case's Field. A nil base validates each case's Fields alone.
func AssertValidate(t *testing.T, typeName string, base map[string]string, cases []FieldsCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			err := Type(t, typeName).Validate(Merge(base, tc.Fields))
			AssertFieldError(t, err, tc.Field, "")
		})
	}
}

// KeyRejection is a key request CreateKey must refuse before it sends
// anything: a key named "k" with Scopes and Params, refused with a
// FieldError on Field mentioning Text. It is an alias of an unnamed struct
// so that tables may list rows positionally.
type KeyRejection = struct {
	Name   string
	Scopes []string
	Params map[string]string
	Field  string
	Text   string
}

// AssertKeysRejected runs each case as a subtest against p, then fails t
// when sent, the number of requests the provider's fake has received, is
// not 0.
func AssertKeysRejected(t *testing.T, p clients.Provider, sent func() int, cases []KeyRejection) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			_, err := p.CreateKey(context.Background(), clients.KeyRequest{Name: "k", Scopes: tc.Scopes, Parameters: tc.Params})
			AssertFieldError(t, err, tc.Field, tc.Text)
		})
	}
	if sent() != 0 {
		t.Fatal("a request was sent for a rejected key")
	}
}
