package fastio

import (
	"errors"
	"hash"
	"os"
	"sync"
	"syscall"
)

// Writer writes a stream to a file in aligned blocks through a two-stage
// pipeline: one goroutine feeds each block to a hash, the next writes it,
// with O_DIRECT where the filesystem allows. Three blocks rotate between
// the caller filling one, the hasher and the writer, so the disk always has
// a block to write while the next ones are filled and hashed; with a single
// block the disk sat idle during every fill and hash.
//
// The written file is never read back by this process, so bypassing the
// page cache saves the kernel's copying without costing a later read.
type Writer struct {
	f      *os.File // buffered handle of the file
	direct *os.File // O_DIRECT handle of the same file, or nil
	buf    []byte   // block being filled
	n      int
	h      hash.Hash
	total  int64

	free    chan []byte // empty blocks
	hashing chan []byte // full blocks, in stream order
	writing chan []byte // hashed blocks, in stream order
	done    chan struct{}
	mu      sync.Mutex
	err     error // first write error; later blocks are dropped
	closed  bool
}

const (
	writeBlock  = 4 << 20
	writeBlocks = 3
)

// NewWriter returns a Writer that appends to f, which must be open for
// writing at offset 0, and feeds every byte, in order, to h. Write, Close
// and Abort must be called from one goroutine. After Close the caller
// still owns f: it syncs and closes it.
func NewWriter(f *os.File, h hash.Hash) *Writer { return newWriter(f, h, true) }

func newWriter(f *os.File, h hash.Hash, direct bool) *Writer {
	w := &Writer{f: f, h: h,
		free: make(chan []byte, writeBlocks), hashing: make(chan []byte, writeBlocks), writing: make(chan []byte, writeBlocks), done: make(chan struct{})}
	if direct {
		w.direct = openDirect(f.Name())
	}
	for i := 0; i < writeBlocks; i++ {
		w.free <- alignedBuffer(writeBlock)
	}
	w.buf = <-w.free
	go func() {
		defer close(w.writing)
		for b := range w.hashing {
			w.h.Write(b)
			w.writing <- b
		}
	}()
	go func() {
		defer close(w.done)
		for b := range w.writing {
			if w.failed() == nil {
				w.setErr(w.write(b))
			}
			w.free <- b[:cap(b)]
		}
	}()
	return w
}

func (w *Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Writer) setErr(err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// Write queues p. A write error surfaces on a later Write or on Close.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.failed(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		c := copy(w.buf[w.n:], p)
		w.n += c
		n += c
		p = p[c:]
		if w.n == len(w.buf) {
			w.flush()
		}
	}
	return n, nil
}

// Written returns how many bytes were queued by Write.
func (w *Writer) Written() int64 { return w.total + int64(w.n) }

// flush queues the filled part of the current block and takes an empty one.
func (w *Writer) flush() {
	if w.n == 0 {
		return
	}
	w.total += int64(w.n)
	w.hashing <- w.buf[:w.n]
	w.buf, w.n = <-w.free, 0
}

// write runs on the writer goroutine. Only the stream's last block may be
// unaligned; O_DIRECT is dropped for it.
func (w *Writer) write(data []byte) error {
	if w.direct == nil {
		_, err := w.f.Write(data)
		return err
	}
	if len(data)%directAlign != 0 {
		if err := clearDirect(w.direct); err != nil {
			return err
		}
	}
	_, err := w.direct.Write(data)
	if errors.Is(err, syscall.EINVAL) {
		// The filesystem accepted O_DIRECT at open but not for writes:
		// carry on buffered from the same offset.
		if err = clearDirect(w.direct); err == nil {
			_, err = w.direct.Write(data)
		}
	}
	return err
}

// Close queues the last block, waits until every block is hashed and
// written, and releases the O_DIRECT handle. It returns the first write
// error; calling it again returns the same.
func (w *Writer) Close() error {
	if !w.closed {
		w.flush()
		w.shutdown()
	}
	return w.failed()
}

// Abort stops the pipeline after a failure, dropping the block being
// filled; it is a no-op after Close.
func (w *Writer) Abort() {
	if !w.closed {
		w.setErr(errors.New("write abandoned"))
		w.shutdown()
	}
}

// shutdown ends the hasher and writer goroutines once they have drained the
// queued blocks, then closes the direct handle.
func (w *Writer) shutdown() {
	w.closed = true
	close(w.hashing)
	<-w.done
	if w.direct != nil {
		w.setErr(w.direct.Close())
		w.direct = nil
	}
}
