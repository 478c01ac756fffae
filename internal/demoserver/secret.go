package demoserver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// Key formats. The prefixes make a leaked value recognisable (and let the
// request log redact one that a client wrongly put in a URL).
const (
	keyPrefix      = "demo_"
	adminPrefix    = "demoadm_"
	keyIDPrefix    = "key_"
	adminIDPrefix  = "adm_"
	keySecretBytes = 20 // 40 hex chars
	admSecretBytes = 16 // 32 hex chars
	idBytes        = 6  // 12 hex chars
)

// randomHex returns n random bytes from crypto/rand, hex-encoded.
func randomHex(n int) string {
	b := make([]byte, n)
	// Since Go 1.24 crypto/rand.Read never returns an error (it aborts the
	// program instead), so there is nothing to handle here.
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newSecret returns a fresh key value of the given kind.
func newSecret(k Kind) string {
	if k == KindAdmin {
		return adminPrefix + randomHex(admSecretBytes)
	}
	return keyPrefix + randomHex(keySecretBytes)
}

// NewAdminKey returns a random admin key value (demoadm_ and 32 hex
// characters) for Options.AdminKey.
func NewAdminKey() string { return newSecret(KindAdmin) }

// hashSecret is the only form in which a key value is kept. Looking keys up
// by this hash means a presented key is never compared byte by byte with a
// stored one, so response timing says nothing about how much of it matched.
func hashSecret(secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte(secret))
}
