// Command demo-provider is a stand-in for a SaaS API-key service: it issues,
// lists and revokes API keys over a small JSON API, so the Vault plugin can
// be developed and tested end to end without a real third-party account.
// See docs/demo-provider.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/internal/demoserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process globals; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo-provider", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8300", "`address` to listen on; keep it on loopback, /_demo is unauthenticated")
	adminKey := fs.String("admin-key", "", "initial admin key `value`; a random one is generated and printed when empty")
	adminKeyTTL := fs.Duration("admin-key-ttl", 0, "the initial admin key expires this `long` after start (0 = never)")
	latency := fs.Duration("latency", 0, "added to every /v1 request")
	errorRate := fs.Float64("error-rate", 0, "`fraction` (0..1) of /v1 requests answered 503")
	rateLimitEvery := fs.Int("rate-limit-every", 0, "answer every `N`th /v1 request 429 (0 = off)")
	rateLimitRPS := fs.Float64("rate-limit-rps", 0, "token bucket: at most `N` /v1 requests a second (bursts of N), 429 with Retry-After and X-RateLimit-* beyond (0 = off)")
	retryAfter := fs.Int("retry-after", 1, "Retry-After `seconds` sent with 429")
	quiet := fs.Bool("quiet", false, "do not log requests to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo-provider: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *adminKeyTTL < 0 {
		fmt.Fprintln(stderr, "demo-provider: -admin-key-ttl must not be negative")
		return 2
	}
	if msg := checkFlags(*latency, *errorRate, *rateLimitEvery, *retryAfter, *rateLimitRPS); msg != "" {
		fmt.Fprintf(stderr, "demo-provider: %s\n", msg)
		return 2
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "demo-provider: %v\n", err)
		return 1
	}
	if !isLoopback(ln.Addr()) {
		fmt.Fprintln(stderr, "demo-provider: warning: not listening on loopback; /_demo endpoints are unauthenticated")
	}

	if *adminKey == "" {
		*adminKey = demoserver.NewAdminKey()
		// Printing a credential is acceptable for a throwaway demo server
		// and is the only way to learn the generated value.
		fmt.Fprintf(stdout, "admin key: %s\n", *adminKey)
	}
	var logTo io.Writer = stderr
	if *quiet {
		logTo = nil
	}
	handler := demoserver.New(demoserver.Options{
		AdminKey:       *adminKey,
		Latency:        *latency,
		ErrorRate:      *errorRate,
		RateLimitEvery: *rateLimitEvery,
		RateLimitRPS:   *rateLimitRPS,
		RetryAfter:     *retryAfter,
		AdminKeyTTL:    *adminKeyTTL,
		Log:            logTo,
	})

	// Cancelling baseCtx at shutdown ends latency sleeps in flight, so a
	// large latency knob does not hold up Ctrl-C.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	// Scripts and tests wait for this exact line; ln.Addr has the real port
	// when -listen asked for port 0.
	fmt.Fprintf(stdout, "demo-provider listening on http://%s\n", ln.Addr())

	select {
	case err := <-serveErr:
		fmt.Fprintf(stderr, "demo-provider: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	cancelBase()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Only a handler stuck past the timeout gets here; cut it off.
		fmt.Fprintf(stderr, "demo-provider: shutdown: %v\n", err)
		srv.Close()
	}
	return 0
}

// checkFlags mirrors the knob validation but names the flags, which the
// knob errors (named after JSON fields) would not; it also keeps
// demoserver.New from panicking on a bad value.
func checkFlags(latency time.Duration, errorRate float64, rateLimitEvery, retryAfter int, rateLimitRPS float64) string {
	switch {
	case latency < 0:
		return "-latency must not be negative"
	case !(errorRate >= 0 && errorRate <= 1):
		return "-error-rate must be between 0 and 1"
	case rateLimitEvery < 0:
		return "-rate-limit-every must not be negative"
	case retryAfter < 0:
		return "-retry-after must not be negative"
	case !(rateLimitRPS >= 0 && rateLimitRPS <= 1e6):
		return "-rate-limit-rps must be between 0 and 1000000"
	}
	return ""
}

func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
