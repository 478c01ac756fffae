//go:build e2e

package e2e

import (
	"sync"
	"testing"
	"time"
)

// A provider whose max_requests_per_second matches the account's limit
// (the demo provider's token bucket): a burst of dynamic creds reads from
// several clients all succeed, paced by the request budget instead of
// collecting 429s, and the waiting shows in
// thirdparty_provider_throttled_seconds_total.
func TestRequestBudgetPacesCredsReads(t *testing.T) {
	c := sharedVlt.client
	d, err := startDemo(uniq("budget"), "-rate-limit-rps", "5")
	if err != nil {
		t.Fatal(err)
	}
	issued.add(d.AdminKey)
	mount := uniq("budget")
	if err := sharedVlt.mount(mount); err != nil {
		t.Fatal(err)
	}
	write(t, c, mount+"/providers/p", map[string]any{"type": "demo", "base_url": d.URL, "admin_key": d.AdminKey,
		"max_requests_per_second": 5})
	if got := read(t, c, mount+"/providers/p").Data["max_requests_per_second"]; ptS(got) != "5" {
		t.Fatalf("max_requests_per_second read back as %v", got)
	}
	write(t, c, mount+"/roles/dyn", map[string]any{"provider": "p", "mode": "dynamic", "ttl": "10m"})

	const reads, clients = 30, 8
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	next := make(chan struct{}, reads)
	for range reads {
		next <- struct{}{}
	}
	close(next)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				s, err := c.Logical().Read(mount + "/creds/dyn")
				if err == nil && s != nil {
					issued.add(ptS(s.Data["api_key"]))
					continue
				}
				mu.Lock()
				failed = append(failed, ptS(err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(failed) > 0 {
		t.Fatalf("%d of %d creds reads failed: %v", len(failed), reads, failed[0])
	}
	var st struct {
		RateLimited int            `json:"rate_limited"`
		Requests    map[string]int `json:"requests"`
	}
	d.getJSON(t, "/_demo/stats", &st)
	if st.RateLimited > 1 {
		t.Errorf("the demo provider sent %d 429s, want at most 1", st.RateLimited)
	}
	body := lcMetrics(t, c, mount)
	throttled, ok := metricSample(body, `thirdparty_provider_throttled_seconds_total{provider="p"}`)
	if !ok || throttled <= 0 {
		t.Errorf("thirdparty_provider_throttled_seconds_total = %v (present %v), want > 0", throttled, ok)
	}
	t.Logf("%d creds reads from %d clients in %v; demo requests %v, 429s %d; throttled %.2fs summed over callers",
		reads, clients, elapsed.Round(time.Millisecond), st.Requests, st.RateLimited, throttled)
}
