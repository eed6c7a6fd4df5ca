package fastio

import (
	"bytes"
	"crypto/sha256"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestWriter writes streams whose lengths hit every alignment case
// (empty, below one block, exactly aligned, unaligned tail after full
// blocks) through the Writer, with and without O_DIRECT, and checks the file
// and the hash hold exactly the bytes written.
func TestWriter(t *testing.T) {
	sizes := []int{0, 1, 511, directAlign, directAlign + 1, writeBlock - 1, writeBlock, writeBlock + 4097, 3*writeBlock + 12345}
	for _, direct := range []bool{true, false} {
		for _, size := range sizes {
			data := make([]byte, size)
			rand.New(rand.NewSource(int64(size))).Read(data)
			f, err := os.Create(filepath.Join(t.TempDir(), "a.tar"))
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			s := newWriter(f, h, direct)
			// Uneven write sizes, as tar headers and file chunks arrive.
			for p, step := data, 1; len(p) > 0; step = (step*7 + 3) % (1 << 20) {
				n := min(step+1, len(p))
				if _, err := s.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, _ := os.ReadFile(f.Name())
			if !bytes.Equal(got, data) {
				t.Fatalf("direct=%v size=%d: file differs from the bytes written (%d bytes on disk)", direct, size, len(got))
			}
			if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) || s.Written() != int64(size) {
				t.Fatalf("direct=%v size=%d: hash or count differs", direct, size)
			}
		}
	}
}
