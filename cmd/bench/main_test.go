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
