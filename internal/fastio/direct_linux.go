//go:build linux

package fastio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directAlign is the alignment O_DIRECT needs for buffer address, length and
// file offset on the block devices eksir runs on.
const directAlign = 4096

// openDirect reopens path for writing with O_DIRECT when the filesystem
// supports it; otherwise it returns nil and the caller writes buffered.
func openDirect(path string) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}

// clearDirect switches f back to buffered I/O for an unaligned tail.
func clearDirect(f *os.File) error {
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("clear O_DIRECT: %w", err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFL, flags&^syscall.O_DIRECT); err != nil {
		return fmt.Errorf("clear O_DIRECT: %w", err)
	}
	return nil
}

func setDirect(f *os.File) error {
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETFL, flags|syscall.O_DIRECT)
	return err
}

// alignedBuffer returns a size-byte slice whose start is directAlign-aligned.
func alignedBuffer(size int) []byte {
	b := make([]byte, size+directAlign)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	if off != 0 {
		off = directAlign - off
	}
	return b[off : off+size : off+size]
}

// blockSource reads aligned blocks of a file, from the page cache when a
// block is all there and with O_DIRECT otherwise. Whether a block is cached
// is asked with cachestat(2) (Linux 6.5), which reads nothing; a probing
// read with RWF_NOWAIT starts readahead on a miss, so the kernel would fill
// the page cache while the O_DIRECT read fetched the same bytes again.
// Without cachestat every block is read through the page cache.
type blockSource struct {
	f        *os.File
	direct   *os.File     // nil where O_DIRECT or cachestat is unavailable
	noDirect atomic.Bool  // set when a direct read is refused later
	fromDisk atomic.Int64 // blocks read with O_DIRECT
}

func newBlockSource(f *os.File) *blockSource {
	s := &blockSource{f: f}
	var st unix.Cachestat_t
	if unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{Off: 0, Len: 1}, &st, 0) != nil {
		return s
	}
	if d, err := os.Open(f.Name()); err == nil {
		if err := setDirect(d); err == nil {
			s.direct = d
		} else {
			d.Close()
		}
	}
	return s
}

// cached reports whether every page of [off, off+n) is in the page cache.
func (s *blockSource) cached(off int64, n int) bool {
	var st unix.Cachestat_t
	var err error
	rc, rcErr := s.f.SyscallConn()
	if rcErr != nil {
		return true
	}
	_ = rc.Control(func(fd uintptr) {
		err = unix.Cachestat(uint(fd), &unix.CachestatRange{Off: uint64(off), Len: uint64(n)}, &st, 0)
	})
	pages := (uint64(n) + uint64(os.Getpagesize()) - 1) / uint64(os.Getpagesize())
	return err != nil || st.Cache >= pages
}

// readAt fills b (aligned, at an aligned offset) from off.
func (s *blockSource) readAt(b []byte, off int64) (int, error) {
	if s.direct == nil || s.noDirect.Load() || s.cached(off, len(b)) {
		return readFull(s.f, b, off)
	}
	// O_DIRECT needs an aligned length; the file may end inside it, which
	// readFull reports as a short count.
	full := b[:cap(b)&^(directAlign-1)]
	s.fromDisk.Add(1)
	n, err := readFull(s.direct, full, off)
	if errors.Is(err, syscall.EINVAL) {
		s.noDirect.Store(true)
		return readFull(s.f, b, off)
	}
	return min(n, len(b)), err
}

// readFull reads len(b) bytes at off, or fewer at the end of the file.
func readFull(f *os.File, b []byte, off int64) (int, error) {
	n, err := f.ReadAt(b, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// directBlocks is how many blocks were read from disk with O_DIRECT.
func (s *blockSource) directBlocks() int64 { return s.fromDisk.Load() }

func (s *blockSource) close() {
	if s.direct != nil {
		s.direct.Close()
	}
}
