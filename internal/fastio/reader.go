package fastio

import (
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
)

// Reader reads a file in three stages on separate goroutines, so that disk
// reads, the file's hash and the caller's parsing overlap instead of taking
// turns:
//
//	read 4 MiB blocks (two reads in flight) -> feed the hash -> Read
//
// Each block is taken from the page cache when it is all there, and read
// with O_DIRECT otherwise (see blockSource): a file fresh from a Writer, a
// copy or a disk is not cached, and filling the page cache costs more CPU
// than hashing. Two reads in flight keep the disk busy. A fixed number of
// blocks circulate, so memory does not depend on the file's size; with half
// as many, the reads waited for free blocks.
type Reader struct {
	hashed <-chan []byte
	free   chan<- []byte
	stop   chan struct{}
	block  []byte // the block being consumed, returned to free when done
	rest   []byte
	err    *error
	wg     *sync.WaitGroup
	src    *blockSource
}

const (
	readBlock   = 4 << 20
	readBlocks  = 8
	readersBusy = 2
)

// readSlot is one block on its way from a reader to the hasher, which takes
// slots in file order whatever order the reads finish in.
type readSlot struct {
	off  int64
	buf  []byte
	n    int
	err  error
	done chan struct{}
}

// NewReader starts reading f, whose size is taken now, and feeds every byte
// to h in order. Once Read has returned io.EOF, h has seen the whole file.
// A file that shrinks while it is read fails the read. Close must be
// called, also after an early stop; the caller still owns f.
func NewReader(f *os.File, h hash.Hash) (*Reader, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	src := newBlockSource(f)
	free := make(chan []byte, readBlocks)
	for i := 0; i < readBlocks; i++ {
		free <- alignedBuffer(readBlock)
	}
	jobs := make(chan *readSlot)
	ordered := make(chan *readSlot, readBlocks)
	hashed := make(chan []byte, readBlocks)
	stop := make(chan struct{})
	var readErr error
	var wg sync.WaitGroup
	wg.Add(1 + readersBusy)
	go func() {
		defer wg.Done()
		defer close(ordered)
		defer close(jobs)
		for off := int64(0); off < size; off += readBlock {
			s := &readSlot{off: off, done: make(chan struct{})}
			select {
			case s.buf = <-free:
			case <-stop:
				return
			}
			s.buf = s.buf[:min(readBlock, size-off)]
			select {
			case jobs <- s:
			case <-stop:
				return
			}
			select {
			case ordered <- s:
			case <-stop:
				return
			}
		}
	}()
	for i := 0; i < readersBusy; i++ {
		go func() {
			defer wg.Done()
			for s := range jobs {
				s.n, s.err = src.readAt(s.buf, s.off)
				close(s.done)
			}
		}()
	}
	go func() {
		defer close(hashed)
		for s := range ordered {
			<-s.done
			if s.err == nil && s.n < len(s.buf) {
				s.err = fmt.Errorf("file shrank while reading: %d bytes at offset %d, expected %d", s.n, s.off, len(s.buf))
			}
			if s.err != nil {
				readErr = s.err
				return
			}
			h.Write(s.buf)
			select {
			case hashed <- s.buf:
			case <-stop:
				return
			}
		}
	}()
	return &Reader{hashed: hashed, free: free, stop: stop, err: &readErr, wg: &wg, src: src}, nil
}

// Read reads the next bytes of the file.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.block != nil {
			r.free <- r.block[:cap(r.block)]
			r.block = nil
		}
		b, ok := <-r.hashed
		if !ok {
			// The channel closes after the hasher's last write to err
			// and to the hash.
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

// Close stops the goroutines (early, after a failure, or at the end) and
// waits for the reads in flight before releasing the O_DIRECT handle. It is
// idempotent and returns nil.
func (r *Reader) Close() error {
	select {
	case <-r.stop:
		return nil
	default:
		close(r.stop)
	}
	r.wg.Wait()
	r.src.close()
	return nil
}

// DirectBlocks returns how many blocks were read from disk with O_DIRECT
// rather than from the page cache.
func (r *Reader) DirectBlocks() int64 { return r.src.directBlocks() }
