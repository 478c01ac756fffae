// Package tokencache keeps the access tokens a provider client gets from
// an OAuth token endpoint (client credentials, a signed assertion) until
// shortly before they expire, so that every API call does not cost a
// token request. It is shared by the types whose root is exchanged for a
// token (okta, databricks, auth0).
package tokencache

import (
	"context"
	"sync"
	"time"
)

// Cache holds tokens by key (a token endpoint, an audience).
type Cache struct {
	// Slack: a token is renewed this long before it expires.
	Slack time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu     sync.Mutex
	tokens map[string]entry
}

type entry struct {
	value string
	exp   time.Time
}

// Fetch gets a new token and the time it expires; an expiry at or before
// now means "use once, do not keep".
type Fetch func(ctx context.Context) (token string, expires time.Time, err error)

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Get returns the token kept under key while it has more than Slack left,
// else fetches and keeps a new one. The lock is not held while fetching:
// two callers at once may both fetch, which is harmless, where holding it
// over a request would stall every other call.
func (c *Cache) Get(ctx context.Context, key string, fetch Fetch) (string, error) {
	c.mu.Lock()
	e, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && c.now().Before(e.exp.Add(-c.Slack)) {
		return e.value, nil
	}
	tok, exp, err := fetch(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.tokens == nil {
		c.tokens = map[string]entry{}
	}
	c.tokens[key] = entry{tok, exp}
	c.mu.Unlock()
	return tok, nil
}

// Values are the tokens kept, for keeping them out of error text.
func (c *Cache) Values() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.tokens))
	for _, e := range c.tokens {
		out = append(out, e.value)
	}
	return out
}
