// Package naming holds the two naming rules the action packages share:
// splitting a "namespace/name" reference and the short stable hash that
// derived object names and annotation keys carry.
package naming

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// SplitRef splits "namespace/name"; both parts must be non-empty and the
// name must hold no further slash.
func SplitRef(ref string) (ns, name string, err error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("reference %q: want namespace/name", ref)
	}
	return ns, name, nil
}

// ShortHash returns the first n hex digits (n at most 64) of the SHA-256 of
// s: the same s always gives the same digits, which is what lets a resumed
// run find the objects and annotations an earlier run named.
func ShortHash(s string, n int) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:n]
}
