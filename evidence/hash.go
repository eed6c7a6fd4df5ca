package evidence

import (
	"encoding/hex"
	"hash"

	sha256simd "github.com/minio/sha256-simd"
)

// NewHash is the single factory for every SHA-256 eksir computes. sha256-simd
// picks SHA-NI or AVX2 where the CPU has them; the standard library is as fast
// on SHA-NI machines, so switching is this one line. Its AVX-512 server is not
// used: it crashes with SIGILL on CPUs without AVX-512.
var NewHash func() hash.Hash = sha256simd.New

// hexSum returns the lower-case hex digest of h.
func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// SumHex returns the hex SHA-256 of b.
func SumHex(b []byte) string {
	h := NewHash()
	h.Write(b)
	return hexSum(h)
}
