//go:build !linux

package fastio

import (
	"io"
	"os"
)

// Elsewhere files are written and read through the page cache.
const directAlign = 4096

func openDirect(string) *os.File    { return nil }
func clearDirect(*os.File) error    { return nil }
func alignedBuffer(size int) []byte { return make([]byte, size) }

// blockSource reads blocks of a file through the page cache.
type blockSource struct{ f *os.File }

func newBlockSource(f *os.File) *blockSource { return &blockSource{f: f} }

func (s *blockSource) readAt(b []byte, off int64) (int, error) {
	n, err := s.f.ReadAt(b, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (s *blockSource) directBlocks() int64 { return 0 }

func (s *blockSource) close() {}
