package totp

import (
	"testing"
	"time"
)

// RFC 6238 appendix B (SHA-1 rows, last 6 digits) with its 20-byte seed
// "12345678901234567890".
func TestRFC6238(t *testing.T) {
	key, err := Key("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
	if err != nil {
		t.Fatal(err)
	}
	for unix, want := range map[int64]string{59: "287082", 1111111109: "081804", 1234567890: "005924", 2000000000: "279037"} {
		if got := Code(key, time.Unix(unix, 0)); got != want {
			t.Errorf("Code(%d) = %s, want %s", unix, got, want)
		}
	}
	if _, err := Key("not base32!"); err == nil {
		t.Error("Key accepted a bad secret")
	}
	if k2, err := Key("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"); err != nil || string(k2) != string(key) {
		t.Error("Key does not accept the spaced, lower-case form")
	}
}
