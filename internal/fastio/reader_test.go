//go:build linux

package fastio

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestReader reads files whose sizes hit every block boundary case
// through the Reader pipeline, from the page cache, from disk (the file's
// pages dropped first, so every block takes the O_DIRECT path) and, where
// /dev/shm is mounted, from tmpfs. The bytes and the hash must be exactly
// the file's.
func TestReader(t *testing.T) {
	sizes := []int{0, 1, directAlign - 1, directAlign, readBlock - 1, readBlock, readBlock + 1, 3*readBlock + 12345}
	dirs := map[string]string{"disk": t.TempDir()}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "eksir-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs["tmpfs"] = d
		}
	}
	coldTested := false
	for fs, dir := range dirs {
		for _, size := range sizes {
			data := make([]byte, size)
			rand.New(rand.NewSource(int64(size))).Read(data)
			p := filepath.Join(dir, "a.tar")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, cached := range []bool{true, false} {
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				evicted := false
				if !cached {
					// Push the pages out so the reads must go to disk.
					_ = f.Sync()
					_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
					evicted = !pageCached(f)
					coldTested = coldTested || (evicted && fs == "disk")
				}
				h := sha256.New()
				br, err := NewReader(f, h)
				if err != nil {
					t.Fatal(err)
				}
				// Read in odd sizes, as the tar reader does.
				var got bytes.Buffer
				buf := make([]byte, 777)
				for {
					n, err := br.Read(buf)
					got.Write(buf[:n])
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("%s size=%d cached=%v: %v", fs, size, cached, err)
					}
				}
				sum := h.Sum(nil)
				err = br.Close()
				// On disk, cached blocks come from the page cache and the
				// others with O_DIRECT. (tmpfs takes O_DIRECT since Linux
				// 6.6 but not RWF_NOWAIT, so there only the bytes count.)
				if direct := br.DirectBlocks(); fs == "disk" {
					switch {
					// (One-page files are left out: the kernel sometimes
					// brings a lone page back before the read.)
					case evicted && size > directAlign && direct == 0:
						t.Errorf("size=%d: the file was not cached, yet no block was read with O_DIRECT", size)
					case cached && direct > 0:
						t.Errorf("size=%d: %d blocks read with O_DIRECT, want them from the page cache", size, direct)
					}
				}
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				if want := sha256.Sum256(data); !bytes.Equal(got.Bytes(), data) || !bytes.Equal(sum, want[:]) {
					t.Fatalf("%s size=%d cached=%v: read %d bytes, hash %x; want %d bytes, %x", fs, size, cached, got.Len(), sum, size, want)
				}
			}
		}
	}
	if !coldTested {
		t.Error("no file could be pushed out of the page cache, so the O_DIRECT path went untested")
	}
}

// pageCached reports whether any page of f is in the page cache (mincore,
// which unlike a probing read starts no readahead).
func pageCached(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return false
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return true
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return true
	}
	for _, v := range vec {
		if v&1 != 0 {
			return true
		}
	}
	return false
}

// TestReaderStopsEarly closes the pipeline after one read, as verify
// does when a check fails, and must neither hang nor leak a read in flight.
func TestReaderStopsEarly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(p, make([]byte, 5*readBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br, err := NewReader(f, sha256.New())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := br.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	br.Close()
	br.Close() // idempotent
}
