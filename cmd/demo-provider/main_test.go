package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const testAdminKey = "demoadm_00112233445566778899aabbccddeeff"

var adminValuePattern = regexp.MustCompile(`^demoadm_[0-9a-f]{32}$`)

// TestBinaryEndToEnd builds the real binary, starts it on a random port,
// reads the address it prints, uses it, and stops it with SIGINT.
func TestBinaryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "demo-provider")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// No -admin-key: the binary must generate one and print it.
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string)
	stopped := false
	defer func() {
		if !stopped { // a failed test must not leave the server running
			cmd.Process.Kill()
			go func() {
				for range lines { // unblock the reader so it reaches Wait
				}
			}()
			<-exited
		}
	}()

	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait() // Wait only after stdout is drained
	}()

	var adminKey, baseURL string
	timeout := time.After(10 * time.Second)
	for baseURL == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("exited before listening; stderr:\n%s", stderr.String())
			}
			if v, ok := strings.CutPrefix(line, "admin key: "); ok {
				adminKey = v
			} else if v, ok := strings.CutPrefix(line, "demo-provider listening on "); ok {
				baseURL = v
			} else {
				t.Errorf("unexpected stdout line %q", line)
			}
		case <-timeout:
			t.Fatal("no listening line within 10s")
		}
	}
	if !adminValuePattern.MatchString(adminKey) {
		t.Fatalf("generated admin key has the wrong format (or was not printed before listening)")
	}
	if strings.HasSuffix(baseURL, ":0") || !strings.HasPrefix(baseURL, "http://127.0.0.1:") {
		t.Fatalf("printed address %q lacks the real port", baseURL)
	}

	req, _ := http.NewRequest("GET", baseURL+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var who struct{ Kind string }
	err = json.NewDecoder(resp.Body).Decode(&who)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || who.Kind != "admin" {
		t.Fatalf("whoami: status %d, %+v, %v", resp.StatusCode, who, err)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("exit after SIGINT: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not exit within 10s of SIGINT")
	}
	logText := stderr.String()
	if !strings.Contains(logText, "GET /v1/whoami 200") {
		t.Errorf("request log lacks the whoami line:\n%s", logText)
	}
	if strings.Contains(logText, adminKey) {
		t.Error("the admin key appears on stderr")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args     []string
		wantText string
	}{
		{[]string{"-error-rate", "1.5"}, "-error-rate"},
		{[]string{"-error-rate", "-1"}, "-error-rate"},
		{[]string{"-latency", "-1s"}, "-latency"},
		{[]string{"-rate-limit-every", "-1"}, "-rate-limit-every"},
		{[]string{"-retry-after", "-3"}, "-retry-after"},
		{[]string{"-rate-limit-rps", "-1"}, "-rate-limit-rps"},
		{[]string{"-no-such-flag"}, "no-such-flag"},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"-listen", "not an address"}, "not an address"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // if run got as far as serving, stop at once
			code := run(ctx, tc.args, &stdout, &stderr)
			if code == 0 {
				t.Fatal("exit code 0 for bad input")
			}
			if !strings.Contains(stderr.String(), tc.wantText) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tc.wantText)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout not empty: %q", stdout.String())
			}
		})
	}
}

// TestRunServesUntilCancelled runs main's logic in-process with a given
// admin key: it must print only the listening line and return 0 on stop.
func TestRunServesUntilCancelled(t *testing.T) {
	baseURL, stop := runInProcess(t, "-listen", "127.0.0.1:0", "-admin-key", testAdminKey, "-quiet")
	resp, err := http.Get(baseURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, stderr := stop(); code != 0 {
		t.Errorf("exit code %d; stderr %s", code, stderr)
	} else if stderr != "" {
		t.Errorf("-quiet still wrote to stderr: %q", stderr)
	}
}

// TestRunPassesFaultFlags checks that each fault flag reaches the server
// as the initial value of its knob.
func TestRunPassesFaultFlags(t *testing.T) {
	baseURL, stop := runInProcess(t, "-listen", "127.0.0.1:0", "-admin-key", testAdminKey, "-quiet",
		"-latency", "2ms", "-error-rate", "0.25", "-rate-limit-every", "3", "-retry-after", "7", "-rate-limit-rps", "20")
	defer stop()
	resp, err := http.Get(baseURL + "/_demo/knobs")
	if err != nil {
		t.Fatal(err)
	}
	var knobs map[string]any
	err = json.NewDecoder(resp.Body).Decode(&knobs)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"latency_ms": 2.0, "latency_path": "", "latency_after": false, "error_rate": 0.25, "error_status": 503.0,
		"rate_limit_every": 3.0, "rate_limit_rps": 20.0, "retry_after": 7.0, "down": false, "forbid": []any{}}
	if !reflect.DeepEqual(knobs, want) {
		t.Errorf("knobs = %v, want %v", knobs, want)
	}
}

// runInProcess starts run with args and waits for its listening line. stop
// cancels it and returns its exit code and stderr; it may be called again.
func runInProcess(t *testing.T, args ...string) (baseURL string, stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, args, pw, &stderr)
		pw.Close()
	}()
	var once sync.Once
	var code int
	stop = func() (int, string) {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return after cancel")
			}
			pr.Close()
		})
		return code, stderr.String()
	}
	t.Cleanup(func() { stop() })

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the listening line: %v", err)
	}
	baseURL, ok := strings.CutPrefix(strings.TrimSpace(line), "demo-provider listening on ")
	if !ok {
		t.Fatalf("first stdout line %q", line)
	}
	return baseURL, stop
}

// TestRunAdminKeyTTL: -admin-key-ttl makes the initial admin key expire
// (whoami shows when); a negative value is refused.
func TestRunAdminKeyTTL(t *testing.T) {
	baseURL, stop := runInProcess(t, "-listen", "127.0.0.1:0", "-admin-key", testAdminKey, "-quiet", "-admin-key-ttl", "1h")
	defer stop()
	req, _ := http.NewRequest(http.MethodGet, baseURL+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var who struct {
		ExpiresAt time.Time `json:"expires_at"`
	}
	err = json.NewDecoder(resp.Body).Decode(&who)
	resp.Body.Close()
	if err != nil || who.ExpiresAt.Before(time.Now().Add(59*time.Minute)) || who.ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Fatalf("whoami expires_at = %s, %v; want an hour from now", who.ExpiresAt, err)
	}

	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"-admin-key-ttl", "-1s"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "-admin-key-ttl") {
		t.Fatalf("negative -admin-key-ttl: exit %d, stderr %q", code, stderr.String())
	}
}
