//go:build linux

package evidence

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// With 100,000 small files, sealing is bound by per-file system calls, so
// payload files are read with raw ones: os.Open adds an fcntl per file (it
// tries to register the descriptor with the poller) and a finaliser, and an
// absolute path costs a lookup of every parent on each open. Files are opened
// relative to their folder, which each reader keeps open while consecutive
// files share it (the walk lists them folder by folder).

// payloadHandle is an open payload file.
type payloadHandle int

// dirCache holds one reader's current folder.
type dirCache struct {
	path  string
	fd    int
	valid bool
}

// open opens path read-only, refusing a final link (O_NOFOLLOW) and never
// waiting on a FIFO (O_NONBLOCK, which regular files ignore).
func (d *dirCache) open(path string) (payloadHandle, int64, bool, error) {
	dir, base := filepath.Split(path)
	if !d.valid || d.path != dir {
		d.close()
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, 0, false, &os.PathError{Op: "open", Path: dir, Err: err}
		}
		d.path, d.fd, d.valid = dir, fd, true
	}
	fd, err := unix.Openat(d.fd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, 0, false, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, 0, false, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	return payloadHandle(fd), st.Size, st.Mode&unix.S_IFMT == unix.S_IFREG, nil
}

func (d *dirCache) close() {
	if d.valid {
		unix.Close(d.fd)
		d.valid = false
	}
}

// readFull reads until p is full or the file ends.
func (h payloadHandle) readFull(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Read(int(h), p[n:])
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

func (h payloadHandle) close() {
	if h >= 0 {
		unix.Close(int(h))
	}
}
