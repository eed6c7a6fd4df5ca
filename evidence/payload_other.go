//go:build !linux

package evidence

import (
	"io"
	"os"
	"syscall"
)

// payloadHandle is an open payload file.
type payloadHandle struct{ f *os.File }

// dirCache is a no-op where files are opened by full path.
type dirCache struct{}

func (*dirCache) open(path string) (payloadHandle, int64, bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return payloadHandle{}, 0, false, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return payloadHandle{}, 0, false, err
	}
	return payloadHandle{f}, fi.Size(), fi.Mode().IsRegular(), nil
}

func (*dirCache) close() {}

func (h payloadHandle) readFull(p []byte) (int, error) {
	n, err := io.ReadFull(h.f, p)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, err
}

func (h payloadHandle) close() {
	if h.f != nil {
		h.f.Close()
	}
}
