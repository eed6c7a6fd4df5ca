package evidence

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestArchiveSink writes streams whose lengths hit every alignment case
// (empty, below one block, exactly aligned, unaligned tail after full
// blocks) through the sink, with and without O_DIRECT, and checks the file
// and the hash hold exactly the bytes written.
func TestArchiveSink(t *testing.T) {
	sizes := []int{0, 1, 511, directAlign, directAlign + 1, sinkBlock - 1, sinkBlock, sinkBlock + 4097, 3*sinkBlock + 12345}
	for _, direct := range []bool{true, false} {
		for _, size := range sizes {
			data := make([]byte, size)
			rand.New(rand.NewSource(int64(size))).Read(data)
			f, err := os.Create(filepath.Join(t.TempDir(), "a.tar"))
			if err != nil {
				t.Fatal(err)
			}
			s := newSink(f, direct)
			// Uneven write sizes, as tar headers and file chunks arrive.
			for p, step := data, 1; len(p) > 0; step = (step*7 + 3) % (1 << 20) {
				n := min(step+1, len(p))
				if _, err := s.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			if err := s.close(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, _ := os.ReadFile(f.Name())
			if !bytes.Equal(got, data) {
				t.Fatalf("direct=%v size=%d: file differs from the bytes written (%d bytes on disk)", direct, size, len(got))
			}
			if hexSum(s.h) != SumHex(data) || s.total != int64(size) {
				t.Fatalf("direct=%v size=%d: hash or count differs", direct, size)
			}
		}
	}
}
