// Package httpx is the one HTTP layer every provider client uses: timeouts,
// retries on 5xx and 429 honouring Retry-After (through go-retryablehttp),
// a per-provider concurrency limit and request budget (budget.go), a response size limit, context
// cancellation, and errors that name the provider and status but never
// carry a secret.
//
// A POST or PATCH creates or changes something, so it is repeated only when
// the provider cannot have acted on it (see CreateRetryPolicy); the callers
// guard such requests with a WAL entry and recover from the rest.
//
// Redirects are never followed to another scheme, host or port: the request
// carries the provider's credentials in headers that Go forwards to any host
// (it strips only Authorization and Cookie). See checkRedirect.
//
// Every error the package produces is built by newError, which passes the
// path and the message through the request's redactor (see redact.go).
package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-retryablehttp"
)

// Defaults for Options left zero.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxRetries       = 4
	DefaultMaxResponseBytes = 1 << 20
	DefaultRetryWaitMin     = 250 * time.Millisecond
	DefaultRetryWaitMax     = 30 * time.Second
)

// Options configure a Client for one provider instance.
type Options struct {
	// Provider names the provider instance in errors and metrics.
	Provider string
	// Timeout bounds each attempt.
	Timeout time.Duration
	// MaxRetries after the first attempt; negative disables retries.
	MaxRetries   int
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration
	// MaxResponseBytes caps how much of a response body is read.
	MaxResponseBytes int64
	// MaxConcurrency caps parallel requests to this provider (0 = no cap).
	MaxConcurrency int
	// TLSCACert is a PEM bundle trusted in addition to nothing else when set.
	TLSCACert string
	// Observe, when set, is called after every request with its operation
	// name, duration and final status (0 on a transport error).
	Observe func(op string, d time.Duration, status int)
	// ObserveAnswer, when set, is called for every answer the provider
	// sends, retried ones included, with the operation name and the HTTP
	// status: a 429 that a retry got past is seen here and not by Observe.
	ObserveAnswer func(op string, status int)
	// FollowSameOriginRedirects follows a redirect whose target has the
	// request's own scheme, host and port (at most maxRedirects of them).
	// Set it only for a provider type whose API documents such redirects;
	// otherwise every 3xx answer is an error naming its status. A redirect
	// to another origin is never followed.
	FollowSameOriginRedirects bool
	// Budget, when set, is the provider's request budget (see Budget),
	// taken before every attempt; share one between the Clients of a
	// provider so that all its callers draw on the same bucket.
	Budget *Budget
	// ObserveThrottle, when set, is told each wait on the Budget.
	ObserveThrottle func(time.Duration)
}

// maxRedirects caps the same-origin redirects followed for one request.
const maxRedirects = 3

// Client sends requests for one provider instance.
type Client struct {
	opts Options
	rc   *retryablehttp.Client
	// rcOnce shares rc's connections but never retries.
	rcOnce *retryablehttp.Client
	// rcCreate shares rc's connections and retries only under
	// CreateRetryPolicy: for POST and PATCH.
	rcCreate *retryablehttp.Client
}

// New builds a Client.
func New(opts Options) (*Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	} else if opts.MaxRetries < 0 {
		opts.MaxRetries = 0
	}
	if opts.RetryWaitMin <= 0 {
		opts.RetryWaitMin = DefaultRetryWaitMin
	}
	if opts.RetryWaitMax <= 0 {
		opts.RetryWaitMax = DefaultRetryWaitMax
	}
	if opts.RetryWaitMin > opts.RetryWaitMax {
		// A cap set below the default minimum still caps every wait.
		opts.RetryWaitMin = opts.RetryWaitMax
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	if opts.TLSCACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(opts.TLSCACert)) {
			return nil, errors.New("tls_ca_cert: no PEM certificate found")
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = transport
	c := &Client{opts: opts}
	if opts.MaxConcurrency > 0 {
		rt = &slotTransport{next: rt, sem: make(chan struct{}, opts.MaxConcurrency)}
	}
	if opts.Budget != nil {
		// Outside the slots: a caller waiting for its turn on the budget
		// holds no slot that an interactive caller would queue behind.
		rt = &budgetTransport{next: rt, budget: opts.Budget, waited: opts.ObserveThrottle}
	}
	rc := &retryablehttp.Client{
		HTTPClient:   &http.Client{Transport: rt, Timeout: opts.Timeout, CheckRedirect: c.checkRedirect},
		Logger:       nil, // retryablehttp would log URLs; we log nothing here
		RetryWaitMin: opts.RetryWaitMin,
		RetryWaitMax: opts.RetryWaitMax,
		RetryMax:     opts.MaxRetries,
		CheckRetry:   retryablehttp.DefaultRetryPolicy,
		Backoff:      Backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	once := &retryablehttp.Client{HTTPClient: rc.HTTPClient, CheckRetry: rc.CheckRetry, Backoff: Backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler, RetryMax: 0}
	create := &retryablehttp.Client{HTTPClient: rc.HTTPClient, CheckRetry: CreateRetryPolicy, Backoff: Backoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler, RetryMax: rc.RetryMax,
		RetryWaitMin: rc.RetryWaitMin, RetryWaitMax: rc.RetryWaitMax}
	if opts.ObserveAnswer != nil {
		hook := func(_ retryablehttp.Logger, resp *http.Response) {
			op, _ := resp.Request.Context().Value(opKey{}).(string)
			opts.ObserveAnswer(op, resp.StatusCode)
		}
		rc.ResponseLogHook, once.ResponseLogHook, create.ResponseLogHook = hook, hook, hook
	}
	c.rc, c.rcOnce, c.rcCreate = rc, once, create
	return c, nil
}

// WithTransport returns a Client for the same provider instance whose
// requests pass through wrap(the instance's transport), for an auth scheme
// that takes a round trip of its own (HTTP Digest answers a challenge). The
// retries, Retry-After handling, redirect policy, timeouts, size limit and
// error redaction stay in this layer, above the wrapper; the Budget and the
// concurrency limit are shared with c and taken under the wrapper, for each
// of its round trips.
func (c *Client) WithTransport(wrap func(http.RoundTripper) http.RoundTripper) *Client {
	n := &Client{opts: c.opts}
	hc := &http.Client{Transport: wrap(c.rc.HTTPClient.Transport), Timeout: c.rc.HTTPClient.Timeout, CheckRedirect: n.checkRedirect}
	with := func(rc *retryablehttp.Client) *retryablehttp.Client {
		return &retryablehttp.Client{HTTPClient: hc, Logger: rc.Logger, RetryWaitMin: rc.RetryWaitMin, RetryWaitMax: rc.RetryWaitMax,
			RetryMax: rc.RetryMax, CheckRetry: rc.CheckRetry, Backoff: rc.Backoff, ErrorHandler: rc.ErrorHandler,
			ResponseLogHook: rc.ResponseLogHook}
	}
	n.rc, n.rcOnce, n.rcCreate = with(c.rc), with(c.rcOnce), with(c.rcCreate)
	return n
}

// opKey carries a request's operation name to ObserveAnswer.
type opKey struct{}

// Provider returns the provider instance name the client was built for.
func (c *Client) Provider() string { return c.opts.Provider }

// Request is one call to the provider API.
type Request struct {
	// Op names the operation ("create", "revoke", "verify", …) for errors
	// and metrics.
	Op     string
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// NoRetry sends the request once: for calls that must not be repeated
	// blindly, such as a roll-style rotation whose answer may be lost.
	NoRetry bool
	// Idempotent marks a POST or PATCH that may be repeated like a GET
	// (a search, a validation): it gets the full retry policy.
	Idempotent bool
	// Secrets are values kept out of every error about this request, on
	// top of those the client finds itself (credential headers and query
	// parameters, the body): the credentials the caller put anywhere else
	// and every value it derived from them. Each is also removed in its
	// common encodings (URL, JSON, base64, hex…), decoded, and cut where a
	// query or form parser would cut it.
	Secrets []string
	// Carriers are texts that hold a secret (a rendered path, a header
	// value): removed whole and in their encodings, but never cut into
	// pieces, which would take the request's ordinary words with them.
	Carriers []string
	// ShownPath, when set, is the request path as errors show it, for a
	// caller that renders paths from secrets and can replace the parts
	// derived from them (however short) with "[redacted]". It is redacted
	// again like everything else. Empty: the URL's path, redacted.
	ShownPath string
}

// Response is a fully read response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends the request, retrying on 429 and 5xx (Retry-After honoured; a
// POST or PATCH only as CreateRetryPolicy allows), and returns the final
// response whatever its status. The error is non-nil only
// when no response was received; it never contains header values or the
// body, so no credential can leak through it.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	var body any
	if r.Body != nil {
		body = r.Body
	}
	if c.opts.ObserveAnswer != nil {
		ctx = context.WithValue(ctx, opKey{}, r.Op)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return nil, c.transportError(r, err)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "vault-plugin-secrets-thirdparty")
	}
	rc := c.rc
	switch {
	case r.NoRetry:
		rc = c.rcOnce
	case (r.Method == http.MethodPost || r.Method == http.MethodPatch) && !r.Idempotent:
		rc = c.rcCreate
	}
	start := time.Now()
	resp, err := rc.Do(req)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	if c.opts.Observe != nil {
		c.opts.Observe(r.Op, time.Since(start), status)
	}
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, c.transportError(r, err)
	}
	defer resp.Body.Close()
	if msg, ok := c.refusedRedirect(req.Request, resp); ok {
		return nil, c.newError(r, resp.StatusCode, msg, 0)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1))
	if err != nil {
		return nil, c.transportError(r, err)
	}
	if int64(len(data)) > c.opts.MaxResponseBytes {
		return nil, c.newError(r, resp.StatusCode, fmt.Sprintf("response larger than %d bytes", c.opts.MaxResponseBytes), 0)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// checkRedirect is the http.Client's redirect policy. It never lets the
// client follow a redirect to another scheme, host or port: the provider's
// credentials travel in headers (DD-API-KEY, X-Api-Key, …) that Go copies to
// any redirect target. A same-origin redirect is followed only when the
// provider type documents one (FollowSameOriginRedirects). A redirect not
// followed ends the request with the 3xx answer, which Do turns into an
// error (refusedRedirect).
func (c *Client) checkRedirect(next *http.Request, via []*http.Request) error {
	if !c.opts.FollowSameOriginRedirects || len(via) > maxRedirects || !sameOrigin(next.URL, via[0].URL) {
		return http.ErrUseLastResponse
	}
	return nil
}

// refusedRedirect reports whether resp is a redirect the client did not
// follow, and says why without the target's path or query (which may carry
// anything, even a secret a hostile server echoes back).
func (c *Client) refusedRedirect(orig *http.Request, resp *http.Response) (string, bool) {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return "", false
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", false // not a redirect Go would follow; the caller judges the status
	}
	target, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "redirect not followed: the Location is not a valid URL", true
	}
	if !sameOrigin(target, orig.URL) {
		return fmt.Sprintf("redirect to %s://%s not followed: a request never follows a redirect to another scheme, host or port (check base_url)",
			target.Scheme, target.Host), true
	}
	if c.opts.FollowSameOriginRedirects {
		return fmt.Sprintf("redirect not followed: more than %d redirects", maxRedirects), true
	}
	return "redirect not followed: this provider's API documents no redirects (check base_url)", true
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (an omitted port is the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// transportError describes a failure without the URL's query or any header.
func (c *Client) transportError(r Request, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	// Go's transport may quote what it could not parse (a malformed header
	// line of the answer), and a provider may have echoed a credential
	// there: newError passes the message through the request's redactor.
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out"
	} else if errors.Is(err, context.Canceled) {
		msg = "canceled"
	}
	e := c.newError(r, 0, msg, 0)
	// The cause is kept for errors.Is (timeouts, cancellation) and the
	// retry policy; Error() never prints it.
	e.cause = err
	return e
}

// newError is the only place an Error is made: the path and the message
// pass through the request's redactor, and the message is then capped.
func (c *Client) newError(r Request, status int, message string, retryAfter time.Duration) *Error {
	rd := newRedactor(r)
	message = rd.text(strings.TrimSpace(message))
	if len(message) > maxMessageBytes {
		cut := maxMessageBytes
		for cut > 0 && !utf8.RuneStart(message[cut]) {
			cut-- // never split a character
		}
		message = message[:cut] + "…"
	}
	return &Error{Provider: c.opts.Provider, Op: r.Op, Method: r.Method, Path: rd.path(r), Status: status,
		Message: message, RetryAfter: retryAfter}
}

// Error is a provider failure: it names the provider, the operation, the
// request path and the HTTP status (0 when no response), with a short
// provider message. It never holds a credential: outside this package it
// is made only by Client.StatusError (a test checks that no other package
// builds one), so its path and message have passed through the redactor.
type Error struct {
	Provider string
	Op       string
	Method   string
	Path     string
	Status   int
	Message  string
	// RetryAfter is the wait the provider asked for on a 429/503, if any.
	RetryAfter time.Duration
	cause      error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "provider %q: %s (%s %s)", e.Provider, e.Op, e.Method, e.Path)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.cause }

// NotFound reports whether err is a provider 404.
func NotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Forbidden reports whether err is a provider 403: the credential was
// recognised but lacks a right (a verify call may take that as proof that a
// new key authenticates).
func Forbidden(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusForbidden
}

// StatusError builds the error for an unexpected status, or for a 2xx
// answer the client cannot use. message is the provider's own error text
// (extracted by the client from its error shape) or the client's own words;
// it is trimmed and has the request's credentials, body and Secrets and
// every value in redact removed, in their common encodings too.
func (c *Client) StatusError(r Request, resp *Response, message string, redact ...string) error {
	// The request's own credentials and body go too: some APIs echo the
	// request back in their errors, whatever the caller thought to pass.
	r.Secrets = append(slices.Clip(r.Secrets), redact...)
	return c.newError(r, resp.Status, message, retryAfterOf(resp))
}

// maxMessageBytes caps the provider text kept in an Error.
const maxMessageBytes = 300

// requestSecrets lists what in r may be a credential: the values of
// credential headers and query parameters (whole, without their auth
// scheme, and a Basic password on its own); and what may hold one: the
// body.
func requestSecrets(r Request) (out, carriers []string) {
	for name, values := range r.Header {
		if !credentialName(name) {
			continue
		}
		for _, v := range values {
			out = append(out, v)
			if _, cred, ok := strings.Cut(v, " "); ok {
				out = append(out, strings.TrimSpace(cred))
			}
			if user, pass, ok := (&http.Request{Header: http.Header{"Authorization": {v}}}).BasicAuth(); ok {
				out = append(out, pass, user+":"+pass)
			}
		}
	}
	if u, err := url.Parse(r.URL); err == nil {
		for name, values := range u.Query() {
			if credentialName(name) {
				out = append(out, values...)
			}
		}
	}
	if len(r.Body) > 0 {
		carriers = append(carriers, string(r.Body))
	}
	return out, carriers
}

// credentialName reports whether a header or parameter name suggests a
// credential (Authorization, X-Api-Key, PRIVATE-TOKEN, DD-APPLICATION-KEY…).
func credentialName(name string) bool {
	n := strings.ToLower(name)
	if n == "cookie" {
		return true
	}
	for _, word := range []string{"auth", "key", "token", "secret", "password", "signature", "session"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	return false
}

// retryAfterOf is the wait a throttling answer asks for; other statuses
// carry rate-limit headers on every response and mean nothing by them.
func retryAfterOf(resp *Response) time.Duration {
	if resp.Status != http.StatusTooManyRequests && resp.Status != http.StatusServiceUnavailable {
		return 0
	}
	return throttleWait(resp.Status, resp.Header, time.Now())
}

// RedactError removes secrets from the message of err when it is an *Error
// (Do's own errors already redact the request's Secrets; the caller may know
// others a provider could echo), with the same redactor, and returns err.
func RedactError(err error, secrets ...string) error {
	var e *Error
	if errors.As(err, &e) && len(secrets) > 0 {
		e.Message = Redact(e.Message, secrets...)
	}
	return err
}

// RetryAfter reads the wait a response asks for: Retry-After (seconds or an
// HTTP date), else a rate-limit reset header (epoch seconds or seconds).
// Okta spells it X-Rate-Limit-Reset and sends no Retry-After. An epoch
// reset is measured from the answer's Date when it has one (the server's
// clock, not ours), plus the second that Date was truncated by, as Okta's
// SDKs do.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if d, ok := retryAfterHeader(h, now); ok {
		return d
	}
	for _, name := range []string{"X-RateLimit-Reset", "RateLimit-Reset", "X-Rate-Limit-Reset"} {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			continue
		}
		if f > 1e9 { // epoch seconds
			base := now
			if date, err := http.ParseTime(h.Get("Date")); err == nil {
				base = date.Add(-time.Second)
			}
			d := time.Unix(int64(f), 0).Sub(base)
			if d < 0 {
				d = 0
			}
			return d
		}
		return time.Duration(f * float64(time.Second))
	}
	return 0
}

// throttleWait is the wait an answer asks for. A 429 may say it with
// Retry-After or a rate-limit reset header; a 503 only with Retry-After
// (some APIs send reset headers on every answer, meaning the end of the
// rate-limit window, not "come back then").
func throttleWait(status int, h http.Header, now time.Time) time.Duration {
	switch status {
	case http.StatusTooManyRequests:
		return RetryAfter(h, now)
	case http.StatusServiceUnavailable:
		d, _ := retryAfterHeader(h, now)
		return d
	}
	return 0
}

// retryAfterHeader parses Retry-After: seconds or an HTTP date.
func retryAfterHeader(h http.Header, now time.Time) (time.Duration, bool) {
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return d, true
			}
			return 0, true
		}
	}
	return 0, false
}

// CreateRetryPolicy decides whether a request that creates something is
// sent again. It is, only when the provider cannot have acted on it: the
// connection was never made, or the answer was a 429 or a 503 (throttled or
// not serving). After a 500, 502 or 504, a timeout or a connection lost
// mid-request, the create may have happened; sending it again could make a
// second key that nothing records. The caller's WAL entry, which names the
// key, lets rollback find and revoke a key made that way instead.
func CreateRetryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		var op *net.OpError
		return errors.As(err, &op) && op.Op == "dial", nil
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable, nil
}

// Backoff is the retry wait: what a 429/503 asks for (capped at max), else
// exponential backoff with full jitter between min and max.
func Backoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d := throttleWait(resp.StatusCode, resp.Header, time.Now()); d > 0 {
			if d > max {
				d = max
			}
			return d
		}
	}
	ceiling := float64(min) * math.Pow(2, float64(attempt))
	if ceiling > float64(max) || math.IsInf(ceiling, 0) {
		ceiling = float64(max)
	}
	return min + time.Duration(rand.Float64()*(ceiling-float64(min)))
}

// JSONHeader sets the JSON content headers on h (a new header when nil).
func JSONHeader(h http.Header) http.Header {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	return h
}

// Expect says what a call through JSON or Call accepts and how its
// failures read.
type Expect struct {
	// OK lists the statuses that succeed; empty means any 2xx. A listed
	// status outside 2xx (say a 404 on a delete of something already gone)
	// is returned with its response and no error, its body not decoded:
	// what it means is the caller's decision.
	OK []int
	// Message extracts the provider's own error text from the body of a
	// failure (nil: the error carries no provider text).
	Message func(body []byte) string
	// Redact lists values to keep out of error text besides the request's
	// own credentials and body (see StatusError), e.g. other credentials of
	// the provider that an API might echo.
	Redact []string
	// AllowEmpty leaves out as it is when a 2xx body is empty, for APIs
	// that answer some successes with no body; otherwise an empty body
	// fails to decode.
	AllowEmpty bool
}

// JSON makes one call to a JSON API: in (when not nil) is encoded as the
// request body, the request asks for and declares JSON (Content-Type and
// Accept: application/json), and the answer is handled as by Call. r.Header
// carries the credentials; r.Body is replaced by in.
func (c *Client) JSON(ctx context.Context, r Request, in, out any, ex Expect) (*Response, error) {
	r.Body = nil
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("provider %q: %s: encoding the request: %w", c.opts.Provider, r.Op, err)
		}
		r.Body = b
	}
	r.Header = JSONHeader(r.Header.Clone())
	return c.Call(ctx, r, out, ex)
}

// Call sends r as it is (for a body the caller encoded, such as a form)
// and reads a JSON answer: a status ex does not accept becomes a
// StatusError carrying ex.Message's text, and a 2xx body is decoded into
// out (when not nil). A body that does not decode is an error naming the
// provider, the operation and the status, never the body's content, which
// may hold a credential. The response is returned whenever err is nil.
func (c *Client) Call(ctx context.Context, r Request, out any, ex Expect) (*Response, error) {
	resp, err := c.Do(ctx, r)
	if err != nil {
		return nil, RedactError(err, ex.Redact...)
	}
	if !ex.accepts(resp.Status) {
		message := ""
		if ex.Message != nil {
			message = ex.Message(resp.Body)
		}
		return nil, c.StatusError(r, resp, message, ex.Redact...)
	}
	success := resp.Status >= 200 && resp.Status <= 299
	if out == nil || !success || (ex.AllowEmpty && len(resp.Body) == 0) {
		return resp, nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		// Neither the JSON error's text nor the error itself: it can quote
		// part of the body (a number, a time that did not parse).
		return nil, c.newError(r, resp.Status, "decoding response: the body is not the expected JSON", 0)
	}
	return resp, nil
}

func (ex Expect) accepts(status int) bool {
	if len(ex.OK) == 0 {
		return status >= 200 && status <= 299
	}
	return slices.Contains(ex.OK, status)
}

// TextMessage is the error text of a body that is not the API's JSON error
// shape: its first line, or nothing for an HTML page (a proxy's or a login
// page says nothing useful).
func TextMessage(body []byte) string {
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "<") {
		return ""
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// ErrorBody decodes a JSON error body into v (a provider's error shape).
// ok is false when it does not decode; text is then what to show instead:
// the first line of a text body (TextMessage), or nothing for JSON of
// another shape.
func ErrorBody(body []byte, v any) (text string, ok bool) {
	if err := json.Unmarshal(body, v); err != nil {
		if strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			return "", false
		}
		return TextMessage(body), false
	}
	return "", true
}

// MessageField is the error text of APIs whose errors are {"message": …}
// (Algolia, Mailgun), or of a text body (TextMessage).
func MessageField(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if text, ok := ErrorBody(body, &e); !ok {
		return text
	}
	return e.Message
}

// slotTransport bounds the requests in flight to a provider
// (MaxConcurrency): a slot is taken for each attempt, after the budget's
// turn, and given back when the answer's body is closed, so neither a
// caller waiting on the budget nor one sleeping before a retry holds one.
type slotTransport struct {
	next http.RoundTripper
	sem  chan struct{}
}

func (t *slotTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case t.sem <- struct{}{}:
	case <-req.Context().Done():
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, req.Context().Err()
	}
	resp, err := t.next.RoundTrip(req)
	if resp == nil || resp.Body == nil {
		<-t.sem
		return resp, err
	}
	resp.Body = &slotBody{ReadCloser: resp.Body, release: sync.OnceFunc(func() { <-t.sem })}
	return resp, err
}

// slotBody gives its request's slot back when closed.
type slotBody struct {
	io.ReadCloser
	release func()
}

func (b *slotBody) Close() error {
	defer b.release()
	return b.ReadCloser.Close()
}
