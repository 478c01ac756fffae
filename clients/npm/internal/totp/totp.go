// Package totp computes RFC 6238 one-time passwords (HMAC-SHA1, 30-second
// steps, 6 digits) as authenticator apps do for npm's two-factor
// authentication.
package totp

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 6238's default, which npm's authenticator codes use
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Step is the time step of a code.
const Step = 30 * time.Second

// Key decodes a base32 secret as authenticator apps show it (spaces and
// padding allowed, any case).
func Key(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.NewReplacer(" ", "", "-", "").Replace(secret))
	s = strings.TrimRight(s, "=")
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil || len(key) < 10 {
		return nil, fmt.Errorf("not a base32 TOTP secret of at least 16 characters")
	}
	return key, nil
}

// Code is the 6-digit code of key at t.
func Code(key []byte, t time.Time) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(t.Unix()/int64(Step/time.Second)))
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	n := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", n%1_000_000)
}
