package fastio

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOpener reads files in two folders in turn (the kept folder changes),
// refuses a symbolic link and reports a FIFO as not regular without
// blocking on it.
func TestOpener(t *testing.T) {
	root := t.TempDir()
	files := map[string][]byte{"a/one": []byte("first\n"), "a/two": nil, "b/three": bytes.Repeat([]byte("x"), 70000)}
	for rel, data := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var o Opener
	defer o.Close()
	for _, rel := range []string{"a/one", "a/two", "b/three", "a/one"} {
		f, err := o.Open(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		want := files[rel]
		got := make([]byte, len(want)+10)
		n, err := f.ReadFull(got)
		f.Close()
		if err != nil || !f.Regular() || f.Size() != int64(len(want)) || !bytes.Equal(got[:n], want) {
			t.Fatalf("%s: read %d bytes (err %v), size %d, regular %v; want %d bytes", rel, n, err, f.Size(), f.Regular(), len(want))
		}
	}
	link := filepath.Join(root, "a", "link")
	if err := os.Symlink("one", link); err != nil {
		t.Fatal(err)
	}
	if f, err := o.Open(link); err == nil {
		f.Close()
		t.Error("a symbolic link was opened; want it refused")
	}
	fifo := filepath.Join(root, "b", "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	f, err := o.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Regular() {
		t.Error("a FIFO was reported as a regular file")
	}
}
