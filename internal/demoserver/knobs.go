package demoserver

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Knobs are the fault-injection settings applied to /v1 requests (see
// docs/demo-provider.md for the order they apply in).
type Knobs struct {
	Latency     time.Duration // added before every /v1 request is handled
	LatencyPath string        // when set, Latency applies only to this /v1 path
	// LatencyAfter applies Latency after the handler has run instead of
	// before: the request takes effect, then its answer is held (a client
	// that gives up meanwhile loses the answer, not the effect).
	LatencyAfter   bool
	ErrorRate      float64 // fraction of /v1 requests answered ErrorStatus
	ErrorStatus    int     // status for ErrorRate and Down
	RateLimitEvery int     // every Nth /v1 request gets 429; 0 = off
	// RateLimitRPS is a token bucket over /v1 requests: this many a second,
	// bursts of as many (at least 1); a request without a token gets 429
	// with Retry-After and X-RateLimit-* headers. 0 = off.
	RateLimitRPS float64
	RetryAfter   int  // seconds, sent with every injected 429
	Down         bool // every /v1 request gets ErrorStatus
	// Forbid lists /v1 routes ("POST /v1/keys", as in GET /_demo/stats)
	// that every key, once authenticated, is refused with 403: a key
	// lacking a permission.
	Forbid []string
}

// DefaultKnobs are the knobs after POST /_demo/reset: no faults, 503 as the
// error status and a one-second Retry-After.
func DefaultKnobs() Knobs {
	return Knobs{ErrorStatus: 503, RetryAfter: 1}
}

// validate reports the first bad setting, naming it as the JSON field.
func (k Knobs) validate() error {
	switch {
	case k.Latency < 0:
		return errors.New("latency_ms must not be negative")
	case k.LatencyPath != "" && !strings.HasPrefix(k.LatencyPath, "/v1/"):
		return errors.New("latency_path must be a /v1/ path, e.g. /v1/whoami")
	case !(k.ErrorRate >= 0 && k.ErrorRate <= 1): // also rejects NaN
		return errors.New("error_rate must be between 0 and 1")
	case k.ErrorStatus < 400 || k.ErrorStatus > 599:
		return errors.New("error_status must be an HTTP error status (400..599)")
	case k.RateLimitEvery < 0:
		return errors.New("rate_limit_every must not be negative")
	case !(k.RateLimitRPS >= 0 && k.RateLimitRPS <= 1e6): // also rejects NaN
		return errors.New("rate_limit_rps must be between 0 and 1000000")
	case k.RetryAfter < 0:
		return errors.New("retry_after must not be negative")
	}
	for _, f := range k.Forbid {
		if !isV1Route(f) {
			return fmt.Errorf("forbid: %q is not a /v1 route such as \"POST /v1/keys\"", f)
		}
	}
	return nil
}

// knobsJSON is the wire form served by GET /_demo/knobs.
type knobsJSON struct {
	LatencyMS      int64    `json:"latency_ms"`
	LatencyPath    string   `json:"latency_path"`
	LatencyAfter   bool     `json:"latency_after"`
	ErrorRate      float64  `json:"error_rate"`
	ErrorStatus    int      `json:"error_status"`
	RateLimitEvery int      `json:"rate_limit_every"`
	RateLimitRPS   float64  `json:"rate_limit_rps"`
	RetryAfter     int      `json:"retry_after"`
	Down           bool     `json:"down"`
	Forbid         []string `json:"forbid"`
}

func (k Knobs) view() knobsJSON {
	return knobsJSON{
		LatencyMS:      k.Latency.Milliseconds(),
		LatencyPath:    k.LatencyPath,
		LatencyAfter:   k.LatencyAfter,
		ErrorRate:      k.ErrorRate,
		ErrorStatus:    k.ErrorStatus,
		RateLimitEvery: k.RateLimitEvery,
		RateLimitRPS:   k.RateLimitRPS,
		RetryAfter:     k.RetryAfter,
		Down:           k.Down,
		Forbid:         append([]string{}, k.Forbid...),
	}
}

// knobsPatch is the body of POST /_demo/knobs: absent fields keep their
// current value, hence the pointers.
type knobsPatch struct {
	LatencyMS      *int64   `json:"latency_ms"`
	LatencyPath    *string  `json:"latency_path"`
	LatencyAfter   *bool    `json:"latency_after"`
	ErrorRate      *float64 `json:"error_rate"`
	ErrorStatus    *int     `json:"error_status"`
	RateLimitEvery *int     `json:"rate_limit_every"`
	RateLimitRPS   *float64 `json:"rate_limit_rps"`
	RetryAfter     *int     `json:"retry_after"`
	Down           *bool    `json:"down"`
	Forbid         []string `json:"forbid"`
}

func (p knobsPatch) apply(k Knobs) (Knobs, error) {
	if p.LatencyMS != nil {
		// Check before multiplying so a huge value cannot overflow into range.
		if *p.LatencyMS < 0 || *p.LatencyMS > int64(time.Hour/time.Millisecond) {
			return k, fmt.Errorf("latency_ms must be between 0 and %d", time.Hour/time.Millisecond)
		}
		k.Latency = time.Duration(*p.LatencyMS) * time.Millisecond
	}
	if p.LatencyPath != nil {
		k.LatencyPath = *p.LatencyPath
	}
	if p.LatencyAfter != nil {
		k.LatencyAfter = *p.LatencyAfter
	}
	if p.ErrorRate != nil {
		k.ErrorRate = *p.ErrorRate
	}
	if p.ErrorStatus != nil {
		k.ErrorStatus = *p.ErrorStatus
	}
	if p.RateLimitEvery != nil {
		k.RateLimitEvery = *p.RateLimitEvery
	}
	if p.RateLimitRPS != nil {
		k.RateLimitRPS = *p.RateLimitRPS
	}
	if p.RetryAfter != nil {
		k.RetryAfter = *p.RetryAfter
	}
	if p.Down != nil {
		k.Down = *p.Down
	}
	if p.Forbid != nil {
		k.Forbid = nil // an empty list turns the knob off
		if len(p.Forbid) > 0 {
			k.Forbid = append([]string{}, p.Forbid...)
		}
	}
	return k, k.validate()
}
