//go:build !linux

package fastio

import (
	"io"
	"os"
	"syscall"
)

// Opener opens files for reading by their full path. The zero value is
// ready; Close is a no-op here.
type Opener struct{}

// File is an open file; its methods are for the goroutine that opened it.
type File struct {
	f       *os.File
	size    int64
	regular bool
}

// Open opens path read-only, refusing a final symbolic link (O_NOFOLLOW) and
// never waiting on a FIFO (O_NONBLOCK), and learns its size and type.
func (*Opener) Open(path string) (File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return File{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return File{}, err
	}
	return File{f: f, size: fi.Size(), regular: fi.Mode().IsRegular()}, nil
}

// Close releases nothing here.
func (*Opener) Close() {}

// Size is the file's size when it was opened.
func (f File) Size() int64 { return f.size }

// Regular reports whether the file is a regular file.
func (f File) Regular() bool { return f.regular }

// ReadFull reads until p is full or the file ends; it returns fewer bytes
// than len(p) only at the end of the file.
func (f File) ReadFull(p []byte) (int, error) {
	n, err := io.ReadFull(f.f, p)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, err
}

// Close closes the file.
func (f File) Close() {
	if f.f != nil {
		f.f.Close()
	}
}
