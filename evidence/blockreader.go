package evidence

import (
	"io"
	"os"
)

// Verify reads the archive in three stages on separate goroutines, so that
// disk reads, the archive hash (for the sidecar) and the tar walk with its
// payload hashes overlap instead of taking turns:
//
//	read 4 MiB blocks -> hash the archive -> blockReader (tar, payload hashes)
//
// Four blocks circulate, so memory stays at 16 MiB whatever the archive size.
const (
	readBlock  = 4 << 20
	readBlocks = 4
)

// blockReader is the consuming end: an io.Reader over the hashed blocks.
type blockReader struct {
	hashed <-chan []byte
	free   chan<- []byte
	stop   chan struct{}
	block  []byte // the block being consumed, returned to free when done
	rest   []byte
	sum    <-chan string
	err    *error
}

// readArchiveBlocks starts the reader and hasher goroutines over f.
func readArchiveBlocks(f *os.File) *blockReader {
	free := make(chan []byte, readBlocks)
	for i := 0; i < readBlocks; i++ {
		free <- make([]byte, readBlock)
	}
	raw := make(chan []byte, readBlocks)
	hashed := make(chan []byte, readBlocks)
	sum := make(chan string, 1)
	stop := make(chan struct{})
	var readErr error
	adviseSequential(f)
	go func() {
		defer close(raw)
		for {
			var b []byte
			select {
			case b = <-free:
			case <-stop:
				return
			}
			n, err := io.ReadFull(f, b[:cap(b)])
			if n > 0 {
				raw <- b[:n]
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				readErr = err
				return
			}
		}
	}()
	go func() {
		defer close(hashed)
		h := NewHash()
		for b := range raw {
			h.Write(b)
			hashed <- b
		}
		sum <- hexSum(h)
	}()
	return &blockReader{hashed: hashed, free: free, stop: stop, sum: sum, err: &readErr}
}

func (r *blockReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.block != nil {
			r.free <- r.block
			r.block = nil
		}
		b, ok := <-r.hashed
		if !ok {
			// The channel closes after the reader's last write to err.
			if *r.err != nil {
				return 0, *r.err
			}
			return 0, io.EOF
		}
		r.block, r.rest = b, b
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// finish reads to the end so every byte is hashed, and returns the archive
// hash.
func (r *blockReader) finish() (string, error) {
	_, err := io.Copy(io.Discard, r)
	if err != nil {
		r.close()
		return "", err
	}
	return <-r.sum, nil
}

// close stops the goroutines early (after a failure) without leaking them.
func (r *blockReader) close() {
	select {
	case <-r.stop:
		return
	default:
		close(r.stop)
	}
	go func() {
		for b := range r.hashed {
			select {
			case r.free <- b:
			default:
			}
		}
	}()
}
