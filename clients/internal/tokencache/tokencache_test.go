package tokencache

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Cache{Slack: time.Minute, Now: func() time.Time { return now }}
	fetches := 0
	fetch := func(context.Context) (string, time.Time, error) {
		fetches++
		return "tok" + string(rune('0'+fetches)), now.Add(time.Hour), nil
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if tok, err := c.Get(ctx, "a", fetch); err != nil || tok != "tok1" {
			t.Fatalf("Get = %q, %v", tok, err)
		}
	}
	if tok, _ := c.Get(ctx, "b", fetch); tok != "tok2" || fetches != 2 {
		t.Fatalf("another key shared a token: %q after %d fetches", tok, fetches)
	}
	now = now.Add(58 * time.Minute) // two minutes left: kept
	if tok, _ := c.Get(ctx, "a", fetch); tok != "tok1" {
		t.Fatalf("renewed too early: %q", tok)
	}
	now = now.Add(90 * time.Second) // within Slack
	if tok, _ := c.Get(ctx, "a", fetch); tok != "tok3" {
		t.Fatalf("not renewed within the slack: %q", tok)
	}
	if v := c.Values(); len(v) != 2 {
		t.Fatalf("Values = %v", v)
	}
	// A failed fetch keeps nothing; a token that expires at once is used once.
	boom := errors.New("boom")
	now = now.Add(2 * time.Hour)
	if _, err := c.Get(ctx, "a", func(context.Context) (string, time.Time, error) { return "", time.Time{}, boom }); err != boom {
		t.Fatalf("Get = %v", err)
	}
	once := func(context.Context) (string, time.Time, error) { fetches++; return "x", now, nil }
	before := fetches
	_, _ = c.Get(ctx, "c", once)
	_, _ = c.Get(ctx, "c", once)
	if fetches != before+2 {
		t.Fatal("a token expiring at once was kept")
	}
}
