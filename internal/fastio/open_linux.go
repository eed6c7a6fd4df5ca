//go:build linux

package fastio

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// On Linux, files are opened with raw system calls: os.Open adds an fcntl
// per file (it tries to register the descriptor with the poller) and a
// finaliser, and an absolute path costs a lookup of every parent on each
// open. Files are opened relative to their folder, which the Opener keeps
// open while consecutive files share it; with many small files, sealing is
// bound by these per-file system calls.

// Opener opens files for reading, one goroutine's worth: it keeps the folder
// of the last file open. The zero value is ready; Close releases the folder.
type Opener struct {
	path  string
	fd    int
	valid bool
}

// File is an open file; its methods are for the goroutine that opened it.
type File struct {
	fd      int
	size    int64
	regular bool
}

// Open opens path read-only, refusing a final symbolic link (O_NOFOLLOW) and
// never waiting on a FIFO (O_NONBLOCK, which regular files ignore), and
// learns its size and type.
func (o *Opener) Open(path string) (File, error) {
	dir, base := filepath.Split(path)
	if !o.valid || o.path != dir {
		o.Close()
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return File{fd: -1}, &os.PathError{Op: "open", Path: dir, Err: err}
		}
		o.path, o.fd, o.valid = dir, fd, true
	}
	fd, err := unix.Openat(o.fd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return File{fd: -1}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return File{fd: -1}, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	return File{fd: fd, size: st.Size, regular: st.Mode&unix.S_IFMT == unix.S_IFREG}, nil
}

// Close releases the folder kept open.
func (o *Opener) Close() {
	if o.valid {
		unix.Close(o.fd)
		o.valid = false
	}
}

// Size is the file's size when it was opened.
func (f File) Size() int64 { return f.size }

// Regular reports whether the file is a regular file.
func (f File) Regular() bool { return f.regular }

// ReadFull reads until p is full or the file ends; it returns fewer bytes
// than len(p) only at the end of the file.
func (f File) ReadFull(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Read(f.fd, p[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return n, &os.PathError{Op: "read", Err: err}
		case m == 0:
			return n, nil
		}
		n += m
	}
	return n, nil
}

// Close closes the file.
func (f File) Close() {
	if f.fd >= 0 {
		unix.Close(f.fd)
	}
}
