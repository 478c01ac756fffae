// Package demoserver is the demo provider: a stand-in for a SaaS API-key
// service that issues, lists and revokes API keys over a small JSON API,
// with fault knobs and an inspection view for tests. cmd/demo-provider
// serves it as a program; Go tests serve it with httptest and read its
// state through Keys, Knobs and SetKnobs. See docs/demo-provider.md.
package demoserver

import (
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options configure a Server. The fault fields set the initial knobs (see
// Knobs); the error status starts at 503.
type Options struct {
	// AdminKey is the value of the initial admin key (named "initial").
	// Required: use NewAdminKey for a random one.
	AdminKey string
	// Latency is added to every /v1 request.
	Latency time.Duration
	// ErrorRate is the fraction (0..1) of /v1 requests answered 503.
	ErrorRate float64
	// RateLimitEvery answers every Nth /v1 request 429; 0 turns it off.
	RateLimitEvery int
	// RateLimitRPS limits /v1 requests to this many a second (token
	// bucket); 0 turns it off.
	RateLimitRPS float64
	// RetryAfter is the Retry-After value, in seconds, sent with every
	// injected 429. Zero sends "0"; the command's flag defaults to 1.
	RetryAfter int
	// Log receives one line per request (method, path, status, duration);
	// nil turns the request log off.
	Log io.Writer
	// Now is the clock for timestamps and expiry; nil means time.Now.
	Now func() time.Time
	// AdminKeyTTL, when positive, makes the initial admin key expire this
	// long after the server starts (a root with a provider-side expiry).
	AdminKeyTTL time.Duration
}

// Server is the fake provider. It implements http.Handler.
type Server struct {
	// now is injectable so tests can expire keys without sleeping.
	now     func() time.Time
	mux     *http.ServeMux
	logger  *log.Logger // nil when quiet
	adminID string      // id of the initial admin key

	// mu guards everything below. Handlers never write a response or
	// sleep while holding it.
	mu        sync.Mutex
	keys      map[string]*record   // by id; revoked and expired ones stay for inspection
	byHash    map[[32]byte]*record // by hash of the secret, for authentication
	seq       uint64               // last creation sequence number
	knobs     Knobs                // fault injection, /v1 only
	rateCount int                  // /v1 requests seen by the rate-limit knob since it was set
	bucket    *rate.Limiter        // the rate_limit_rps token bucket; nil when off
	stats     stats                // /v1 request counts
}

// New returns a server holding one live admin key, opts.AdminKey. It
// panics if AdminKey is empty or a fault setting is out of range: both are
// mistakes in the calling code, not conditions to handle at run time.
func New(opts Options) *Server {
	if opts.AdminKey == "" {
		panic("demoserver.New: Options.AdminKey is required")
	}
	k := DefaultKnobs()
	k.Latency, k.ErrorRate, k.RateLimitEvery, k.RetryAfter = opts.Latency, opts.ErrorRate, opts.RateLimitEvery, opts.RetryAfter
	k.RateLimitRPS = opts.RateLimitRPS
	if err := k.validate(); err != nil {
		panic("demoserver.New: " + err.Error())
	}
	s := &Server{
		now:    opts.Now,
		keys:   map[string]*record{},
		byHash: map[[32]byte]*record{},
		knobs:  k,
		stats:  newStats(),
		bucket: newBucket(k.RateLimitRPS),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.Log != nil {
		s.logger = log.New(opts.Log, "", log.LstdFlags)
	}
	var adminExpiry time.Time
	if opts.AdminKeyTTL > 0 {
		adminExpiry = s.nowUTC().Add(opts.AdminKeyTTL)
	}
	s.adminID = s.addLocked(KindAdmin, "initial", opts.AdminKey, nil, adminExpiry).id // no other goroutine has s yet
	s.mux = s.buildMux()
	return s
}

// AdminKeyID returns the id of the initial admin key (Options.AdminKey),
// whether or not it is still live.
func (s *Server) AdminKeyID() string { return s.adminID }

// isV1Route reports whether pattern is a /v1 route ("POST /v1/keys"), as
// the forbid knob names them.
func isV1Route(pattern string) bool {
	for _, rt := range (*Server)(nil).routes() {
		if strings.HasPrefix(rt.path, "/v1/") && rt.method+" "+rt.path == pattern {
			return true
		}
	}
	return false
}

type route struct {
	method, path string
	handler      http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{"POST", "/v1/keys", s.createKey},
		{"GET", "/v1/keys", s.listKeys},
		{"GET", "/v1/keys/{id}", s.getKey},
		{"DELETE", "/v1/keys/{id}", s.deleteKey},
		{"POST", "/v1/admin-keys", s.createAdminKey},
		{"GET", "/v1/admin-keys", s.listAdminKeys},
		{"DELETE", "/v1/admin-keys/{id}", s.deleteAdminKey},
		{"GET", "/v1/whoami", s.whoami},

		{"GET", "/_demo/knobs", s.handleGetKnobs},
		{"POST", "/_demo/knobs", s.handleSetKnobs},
		{"GET", "/_demo/keys", s.inspectKeys},
		{"GET", "/_demo/stats", s.getStats},
		{"POST", "/_demo/reset", s.reset},
		{"GET", "/healthz", s.healthz},
	}
}

// buildMux registers the routes, plus method-less fallbacks so that a
// wrong method or unknown path gets a JSON error like everything else
// (ServeMux's own 404/405 replies are plain text).
func (s *Server) buildMux() *http.ServeMux {
	mux := http.NewServeMux()
	allowed := map[string][]string{}
	for _, rt := range s.routes() {
		var h http.Handler = rt.handler
		if strings.HasPrefix(rt.path, "/v1/") {
			h = s.v1(rt.handler)
		}
		mux.Handle(rt.method+" "+rt.path, h)
		allowed[rt.path] = append(allowed[rt.path], rt.method)
	}
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "allowed methods: "+allow)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return mux
}

// ServeHTTP serves the /v1 API, the /_demo harness endpoints and /healthz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // real clock: this measures duration, not key time
	sw := &statusWriter{ResponseWriter: w}
	s.mux.ServeHTTP(sw, r)
	if s.logger != nil {
		// Method, path, status and duration only: never headers (the
		// Authorization header holds a key) and never the query string.
		s.logger.Printf("%s %s %d %s", r.Method, s.redactPath(r.URL.Path), sw.code(), time.Since(start).Round(time.Microsecond))
	}
}

// redactPath hides any path segment that is or looks like a key value, in
// case a client puts a key in the URL by mistake.
func (s *Server) redactPath(path string) string {
	segments := strings.Split(path, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, seg := range segments {
		if seg == "" {
			continue
		}
		if strings.HasPrefix(seg, keyPrefix) || strings.HasPrefix(seg, adminPrefix) || s.byHash[hashSecret(seg)] != nil {
			segments[i] = "[redacted]"
		}
	}
	return strings.Join(segments, "/")
}
