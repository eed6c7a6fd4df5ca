//go:build !linux

package evidence

import "os"

// Elsewhere the archive is written through the page cache.
const directAlign = 4096

func openDirect(string) *os.File    { return nil }
func clearDirect(*os.File) error    { return nil }
func alignedBuffer(size int) []byte { return make([]byte, size) }

func adviseSequential(*os.File) {}
