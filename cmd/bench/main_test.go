package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestUpdateDocCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	if err := updateDoc(path, "TABLE"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# Performance\n\n" + markerStart + "\nTABLE\n" + markerEnd + "\n"
	if string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

func TestUpdateDocReplacesOnlyBetweenMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	before := "# Performance\n\nIntro by someone else.\n\n"
	after := "\n## Go benchmarks\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
	if err := os.WriteFile(path, []byte(before+markerStart+"\nold table\nmore\n"+markerEnd+after), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, section := range []string{"first\n", "second"} {
		if err := updateDoc(path, section); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	want := before + markerStart + "\nsecond\n" + markerEnd + after
	if string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode changed to %v", st.Mode().Perm())
	}
}

func TestUpdateDocAppendsMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "performance.md")
	other := "# Performance\n\n## Go benchmarks\n\nno trailing newline"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateDoc(path, "T"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := other + "\n\n" + markerStart + "\nT\n" + markerEnd + "\n"; string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

func TestUpdateDocRefusesBrokenMarkers(t *testing.T) {
	for _, content := range []string{
		"x\n" + markerStart + "\nno end\n",
		"x\n" + markerEnd + "\nno start\n",
		markerEnd + "\n" + markerStart + "\n",
	} {
		path := filepath.Join(t.TempDir(), "performance.md")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := updateDoc(path, "T"); err == nil {
			t.Fatalf("no error for %q", content)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Fatalf("file changed: %q", b)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := pct(d, 0.50); p != 50 {
		t.Errorf("p50 = %d", p)
	}
	if p := pct(d, 0.99); p != 99 {
		t.Errorf("p99 = %d", p)
	}
	if p := pct(d[:1], 0.99); p != 1 {
		t.Errorf("p99 of one = %d", p)
	}
}

func TestRenderTableRatios(t *testing.T) {
	cells := []cell{
		{op: opNames[0], conc: 8, ops: 800, window: time.Second, p50: 2 * time.Millisecond, p99: 10 * time.Millisecond},
		{op: opNames[2], conc: 8, ops: 400, window: time.Second, p50: 4 * time.Millisecond, p99: 5 * time.Millisecond},
	}
	out := renderTable(cells)
	if !strings.Contains(out, "| 8 | creds read (dual) | 400 | 0.50× | 4.00 | 2.00× | 5.00 | 0.50× | 0 |") {
		t.Fatalf("unexpected table:\n%s", out)
	}
}

// Slices of a paired cell add up to one cell: counts, windows and CPU
// summed, percentiles over all the latencies.
func TestMergeSlices(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	var c cell
	for _, lat := range [][]time.Duration{ms(5, 1, 3), ms(2, 4)} {
		var d cell
		d.op, d.conc, d.window, d.errs = "x", 8, 2*time.Second, 1
		d.cpu.vault = time.Second
		d.setLatencies(lat)
		c.merge(d)
	}
	if c.op != "x" || c.conc != 8 || c.ops != 5 || c.window != 4*time.Second || c.errs != 2 || c.cpu.vault != 2*time.Second {
		t.Fatalf("merged cell %+v", c)
	}
	if c.p50 != 3*time.Millisecond || c.p99 != 5*time.Millisecond || c.mean != 3*time.Millisecond || c.opsPerSec() != 1.25 {
		t.Fatalf("merged latencies p50 %s p99 %s mean %s, %.2f ops/s", c.p50, c.p99, c.mean, c.opsPerSec())
	}
}

// A paired creds cell's ratios divide by the kv-v2 write slices measured
// with it, not by the kv-v2 write cell of its client count.
func TestRenderTableUsesThePairedBaseline(t *testing.T) {
	row := func(op string, ops int) cell {
		return cell{op: op, conc: 8, ops: ops, window: time.Second, p50: time.Millisecond, p99: time.Millisecond}
	}
	out := renderTable([]cell{row(opNames[0], 1000), row(opNames[0]+" (paired)", 500), row(opNames[2], 400)})
	if !strings.Contains(out, "| 8 | "+opNames[2]+" | 400 | 0.80× |") {
		t.Fatalf("dual read not against its paired baseline:\n%s", out)
	}
}

// With -ops in another order a cell divides by the kv-v2 write cell of its
// own client count, run before or after it.
func TestRenderTableBaselineInAnyOrder(t *testing.T) {
	row := func(op string, conc, ops int) cell {
		return cell{op: op, conc: conc, ops: ops, window: time.Second, p50: time.Millisecond, p99: time.Millisecond}
	}
	out := renderTable([]cell{
		row(opNames[5], 1, 300), row(opNames[0], 1, 600),
		row(opNames[2], 8, 900), row(opNames[0], 8, 1000),
	})
	for _, want := range []string{"| 1 | " + opNames[5] + " | 300 | 0.50× |", "| 8 | " + opNames[2] + " | 900 | 0.90× |"} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in:\n%s", want, out)
		}
	}
}
