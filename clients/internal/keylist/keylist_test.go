package keylist

import (
	"context"
	"errors"
	"testing"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/clients"
)

func TestFind(t *testing.T) {
	keys := []clients.Key{{ID: "1", Name: "a"}, {ID: "2", Name: "b"}, {ID: "3", Name: "a"}}
	got, err := Find(context.Background(), func(context.Context) ([]clients.Key, error) { return keys, nil }, "a")
	if err != nil || len(got) != 2 || got[0].ID != "1" || got[1].ID != "3" {
		t.Fatalf("Find = %+v, %v", got, err)
	}
	if got := Named(keys, "c"); len(got) != 0 {
		t.Fatalf("Named(c) = %+v", got)
	}
	boom := errors.New("boom")
	if _, err := Find(context.Background(), func(context.Context) ([]clients.Key, error) { return nil, boom }, "a"); !errors.Is(err, boom) {
		t.Fatalf("Find error = %v", err)
	}
}
