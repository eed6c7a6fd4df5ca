package fastio

import "sync"

// Read buffers come in three sizes, so that many small files do not each
// take (and zero) a megabyte, and big files move in few large reads.
const (
	tinyBuf  = 4 << 10
	smallBuf = 64 << 10
	bigBuf   = 1 << 20
)

// WholeFile is the largest file a single buffer from GetBuffer holds: files
// up to this size can be read in one piece.
const WholeFile = smallBuf

var bufPools = [...]struct {
	size int
	pool sync.Pool
}{{size: tinyBuf}, {size: smallBuf}, {size: bigBuf}}

// GetBuffer returns a pooled buffer for reading a file of which remaining
// bytes are left: the smallest that holds them, or the largest there is.
// Give it back with PutBuffer once its bytes are used.
func GetBuffer(remaining int64) *[]byte {
	i := 0
	for i < len(bufPools)-1 && remaining > int64(bufPools[i].size) {
		i++
	}
	if b, ok := bufPools[i].pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, bufPools[i].size)
	return &b
}

// PutBuffer returns a buffer from GetBuffer to its pool.
func PutBuffer(b *[]byte) {
	for i := range bufPools {
		if cap(*b) == bufPools[i].size {
			bufPools[i].pool.Put(b)
			return
		}
	}
}
