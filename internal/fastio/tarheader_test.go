package fastio

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestHeaderRenderer builds a tar from rendered headers, content and zero
// padding, and compares it with what one tar.Writer writes for the same
// entries: plain, empty, with a name that needs a PAX record, non-ASCII,
// and with a size that is not a multiple of 512.
func TestHeaderRenderer(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	entries := []struct {
		name string
		data []byte
	}{
		{"top/a.txt", []byte("alpha\n")},
		{"top/empty", nil},
		{"top/" + strings.Repeat("long/", 30) + "name", bytes.Repeat([]byte{7}, 512)},
		{"top/données/名前", bytes.Repeat([]byte{1}, 70000)},
	}
	var want, got bytes.Buffer
	tw := tar.NewWriter(&want)
	r := NewHeaderRenderer()
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Size: int64(len(e.data)), Mode: 0o600, ModTime: at, Format: tar.FormatPAX, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
		hdr, err := r.Render(h)
		if err != nil {
			t.Fatal(err)
		}
		got.Write(hdr)
		got.Write(e.data)
		got.Write(make([]byte, -len(e.data)&511))
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("rendered headers give %d bytes that differ from tar.Writer's %d", got.Len(), want.Len())
	}
}
