package evidence

import (
	"errors"
	"hash"
	"os"
	"sync"
	"syscall"
)

// archiveSink turns the archive stream into aligned 4 MiB blocks and sends
// each through a two-stage pipeline: one goroutine hashes it (for the
// sidecar), the next writes it, with O_DIRECT where the filesystem allows.
// Three blocks rotate between the tar writer, the hasher and the writer, so
// the disk always has a block to write while the next ones are filled and
// hashed: with one block, the disk sat idle during every fill and hash.
type archiveSink struct {
	f      *os.File // buffered handle of the temporary archive
	direct *os.File // O_DIRECT handle of the same file, or nil
	buf    []byte   // block being filled
	n      int
	h      hash.Hash
	total  int64

	free    chan []byte // empty blocks
	hashing chan []byte // full blocks, in archive order
	writing chan []byte // hashed blocks, in archive order
	done    chan struct{}
	mu      sync.Mutex
	err     error // first write error; later blocks are dropped
	closed  bool
}

const (
	sinkBlock  = 4 << 20
	sinkBlocks = 3
)

func newArchiveSink(f *os.File) *archiveSink { return newSink(f, true) }

func newSink(f *os.File, direct bool) *archiveSink {
	s := &archiveSink{f: f, h: NewHash(),
		free: make(chan []byte, sinkBlocks), hashing: make(chan []byte, sinkBlocks), writing: make(chan []byte, sinkBlocks), done: make(chan struct{})}
	if direct {
		s.direct = openDirect(f.Name())
	}
	for i := 0; i < sinkBlocks; i++ {
		s.free <- alignedBuffer(sinkBlock)
	}
	s.buf = <-s.free
	go func() {
		defer close(s.writing)
		for b := range s.hashing {
			s.h.Write(b)
			s.writing <- b
		}
	}()
	go func() {
		defer close(s.done)
		for b := range s.writing {
			if s.failed() == nil {
				s.setErr(s.write(b))
			}
			s.free <- b[:cap(b)]
		}
	}()
	return s
}

func (s *archiveSink) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *archiveSink) setErr(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *archiveSink) Write(p []byte) (int, error) {
	if err := s.failed(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		c := copy(s.buf[s.n:], p)
		s.n += c
		n += c
		p = p[c:]
		if s.n == len(s.buf) {
			s.flush()
		}
	}
	return n, nil
}

// flush queues the filled part of the current block and takes an empty one.
func (s *archiveSink) flush() {
	if s.n == 0 {
		return
	}
	s.total += int64(s.n)
	s.hashing <- s.buf[:s.n]
	s.buf, s.n = <-s.free, 0
}

// write runs on the writer goroutine. Only the archive's last block may be
// unaligned; O_DIRECT is dropped for it.
func (s *archiveSink) write(data []byte) error {
	if s.direct == nil {
		_, err := s.f.Write(data)
		return err
	}
	if len(data)%directAlign != 0 {
		if err := clearDirect(s.direct); err != nil {
			return err
		}
	}
	_, err := s.direct.Write(data)
	if errors.Is(err, syscall.EINVAL) {
		// The filesystem accepted O_DIRECT at open but not for writes:
		// carry on buffered from the same offset.
		if err = clearDirect(s.direct); err == nil {
			_, err = s.direct.Write(data)
		}
	}
	return err
}

// close queues the last block, waits until every block is hashed and
// written, and releases the direct handle. The caller fsyncs the buffered
// handle.
func (s *archiveSink) close() error {
	if !s.closed {
		s.flush()
		s.shutdown()
	}
	return s.failed()
}

// release stops the pipeline after a failed seal, dropping the block being
// filled; it is a no-op after close.
func (s *archiveSink) release() {
	if !s.closed {
		s.setErr(errors.New("archive abandoned"))
		s.shutdown()
	}
}

// shutdown ends the hasher and writer goroutines once they have drained the
// queued blocks, then closes the direct handle.
func (s *archiveSink) shutdown() {
	s.closed = true
	close(s.hashing)
	<-s.done
	if s.direct != nil {
		s.setErr(s.direct.Close())
		s.direct = nil
	}
}
