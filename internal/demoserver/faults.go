package demoserver

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// fault is a response the knobs give instead of the real handler.
type fault struct {
	status  int
	code    string
	message string
	retry   int // Retry-After seconds, sent when status is 429
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
		if f := s.nextFault(); f != nil {
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
func (s *Server) nextFault() *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.knobs
	if k.Down {
		return s.statusFault(k.ErrorStatus, "the provider is down (demo knob)")
	}
	if k.RateLimitEvery > 0 {
		s.rateCount++
		if s.rateCount%k.RateLimitEvery == 0 {
			return &fault{http.StatusTooManyRequests, "rate_limited", "rate limit exceeded (demo knob)", k.RetryAfter}
		}
	}
	// rand.Float64 is in [0,1): a rate of 1 always fails and 0 never does.
	if k.ErrorRate > 0 && rand.Float64() < k.ErrorRate {
		return s.statusFault(k.ErrorStatus, "injected failure (demo knob)")
	}
	return nil
}

// statusFault builds a fault for a configurable status. The caller holds s.mu.
func (s *Server) statusFault(status int, message string) *fault {
	code := codeForStatus(status)
	if status == http.StatusTooManyRequests {
		code = "rate_limited"
	}
	return &fault{status, code, message, s.knobs.RetryAfter}
}

// stats counts /v1 requests by route pattern and by status.
type stats struct {
	Requests map[string]int `json:"requests"`
	Status   map[int]int    `json:"status"` // encoding/json writes int keys as strings
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
