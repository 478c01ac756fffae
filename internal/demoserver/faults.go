package demoserver

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// fault is a response the knobs give instead of the real handler.
type fault struct {
	status  int
	code    string
	message string
	retry   int // Retry-After seconds, sent when status is 429
	// header holds the token bucket's X-RateLimit-* headers.
	header http.Header
}

// v1 wraps a /v1 handler with the knobs and the per-route stats. Order:
// latency, then down, then rate limit, then random errors, then the real
// handler (with latency_after, the latency comes last: the handler runs and
// its answer is held). A request answered by a knob never reaches
// authentication, so it records no use on any key.
func (s *Server) v1(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer s.countRequest(r, sw)

		s.mu.Lock()
		after := s.knobs.LatencyAfter
		s.mu.Unlock()
		if !after && !s.sleepLatency(r.Context(), r.URL.Path) {
			writeError(sw, statusClientClosed, "client_closed_request", "request cancelled during injected latency")
			return
		}
		f, limits := s.nextFault()
		for k, v := range limits {
			sw.Header()[k] = v
		}
		if f != nil {
			if f.status == http.StatusTooManyRequests {
				sw.Header().Set("Retry-After", strconv.Itoa(f.retry))
			}
			writeError(sw, f.status, f.code, f.message)
			return
		}
		if !after {
			next(sw, r)
			return
		}
		held := &heldResponse{header: http.Header{}}
		next(held, r)
		if !s.sleepLatency(r.Context(), r.URL.Path) {
			writeError(sw, statusClientClosed, "client_closed_request", "request cancelled while its answer was held (it took effect)")
			return
		}
		held.send(sw)
	})
}

// heldResponse keeps a handler's answer until latency_after's wait is over.
type heldResponse struct {
	header http.Header
	status int
	body   []byte
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	h.body = append(h.body, b...)
	return len(b), nil
}

func (h *heldResponse) send(w http.ResponseWriter) {
	for k, v := range h.header {
		w.Header()[k] = v
	}
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
	w.Write(h.body)
}

// sleepLatency waits for the latency knob without holding the lock, so
// other requests and the /_demo endpoints are not blocked meanwhile. It
// uses the real clock: the injectable one only drives key expiry. It
// returns false if the request was cancelled first. With latency_path set,
// only requests to that path wait.
func (s *Server) sleepLatency(ctx context.Context, path string) bool {
	s.mu.Lock()
	d := s.knobs.Latency
	if s.knobs.LatencyPath != "" && s.knobs.LatencyPath != path {
		d = 0
	}
	s.mu.Unlock()
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// nextFault decides whether the knobs answer this request. It reads the
// knobs after the latency, so a knob changed meanwhile already applies.
// limits are the token bucket's headers, sent with every answer while
// rate_limit_rps is on.
func (s *Server) nextFault() (f *fault, limits http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.knobs
	if k.Down {
		return s.statusFault(k.ErrorStatus, "the provider is down (demo knob)"), nil
	}
	if s.bucket != nil {
		var ok bool
		ok, limits = s.takeToken(time.Now())
		if !ok {
			retry, _ := strconv.Atoi(limits.Get("Retry-After"))
			limits.Del("Retry-After")
			return &fault{status: http.StatusTooManyRequests, code: "rate_limited",
				message: "rate limit exceeded (demo knob rate_limit_rps)", retry: retry}, limits
		}
	}
	if k.RateLimitEvery > 0 {
		s.rateCount++
		if s.rateCount%k.RateLimitEvery == 0 {
			return &fault{status: http.StatusTooManyRequests, code: "rate_limited", message: "rate limit exceeded (demo knob)", retry: k.RetryAfter}, limits
		}
	}
	// rand.Float64 is in [0,1): a rate of 1 always fails and 0 never does.
	if k.ErrorRate > 0 && rand.Float64() < k.ErrorRate {
		return s.statusFault(k.ErrorStatus, "injected failure (demo knob)"), limits
	}
	return nil, limits
}

// newBucket is the token bucket of rate_limit_rps (nil when 0): rps tokens
// a second, as many at most (at least one), starting full.
func newBucket(rps float64) *rate.Limiter {
	if rps <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(rps), max(1, int(math.Ceil(rps))))
}

// takeToken takes a token from the bucket if there is one, and returns the
// headers a rate-limited API sends: X-RateLimit-Limit (requests a second),
// X-RateLimit-Remaining (whole tokens left), X-RateLimit-Reset (epoch
// seconds when the next token is there) and, when refused, Retry-After
// (whole seconds until then, at least 1). The caller holds s.mu.
func (s *Server) takeToken(now time.Time) (bool, http.Header) {
	ok := s.bucket.AllowN(now, 1)
	tokens := s.bucket.TokensAt(now)
	h := http.Header{}
	h.Set("X-RateLimit-Limit", strconv.FormatFloat(float64(s.bucket.Limit()), 'f', -1, 64))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, int(math.Floor(tokens)))))
	wait := time.Duration(0)
	if tokens < 1 {
		wait = time.Duration((1 - tokens) / float64(s.bucket.Limit()) * float64(time.Second))
	}
	h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Add(wait).Add(time.Second-1).Unix(), 10))
	if !ok {
		h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		s.stats.RateLimited++
	}
	return ok, h
}

// statusFault builds a fault for a configurable status. The caller holds s.mu.
func (s *Server) statusFault(status int, message string) *fault {
	code := codeForStatus(status)
	if status == http.StatusTooManyRequests {
		code = "rate_limited"
	}
	return &fault{status: status, code: code, message: message, retry: s.knobs.RetryAfter}
}

// stats counts /v1 requests by route pattern and by status.
type stats struct {
	Requests map[string]int `json:"requests"`
	Status   map[int]int    `json:"status"` // encoding/json writes int keys as strings
	// RateLimited counts the 429s the rate_limit_rps bucket sent.
	RateLimited int `json:"rate_limited"`
}

func newStats() stats {
	return stats{Requests: map[string]int{}, Status: map[int]int{}}
}

func (s *Server) countRequest(r *http.Request, sw *statusWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// r.Pattern is the ServeMux pattern, e.g. "DELETE /v1/keys/{id}".
	s.stats.Requests[r.Pattern]++
	s.stats.Status[sw.code()]++
}
