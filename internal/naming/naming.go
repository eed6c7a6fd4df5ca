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

// Domain prefixes every label, annotation, taint and API version eksir
// writes: eksir.io/quarantine-<id>, apiVersion eksir.io/v1.
const Domain = "eksir.io"

// LegacyDomain is the prefix of labels and annotations written before the
// names were unified; releases still read them, so an incident contained by
// an older eksir can be released by this one.
const LegacyDomain = "eksir.dev"

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
