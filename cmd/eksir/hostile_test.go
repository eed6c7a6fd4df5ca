package main

// Hostile archives: a valid sealed bag with one entry added that could write
// outside an extraction folder or smuggle in a link or a device. verify
// refuses each (exit 3) and, since it never extracts, writes nothing.

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostileArchives(t *testing.T) {
	key, pub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, src, "a.txt", []byte("alpha\n"))
	writeFile(t, src, "sub/b.txt", []byte("beta\n"))
	out := filepath.Join(root, "out")
	mustRun(t, root, "seal", "--incident", "H", "--key", key, "--compress", "none", "--seal-time", sealTime, src, "--out", out)
	good := readEntries(t, filepath.Join(out, "H.tar"))

	// A path an extractor would write to if it obeyed the entry.
	victimDir := t.TempDir()
	absVictim := filepath.Join(victimDir, "abs-evil")

	reg := func(name string) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len("evil\n")), ModTime: fixedTime, Format: tar.FormatPAX}
	}
	for _, tc := range []struct {
		name   string
		hdr    tar.Header
		where  int // insert before this entry index; -1 appends
		expect string
	}{
		{"dotdot-inside-top", reg("H/../evil"), -1, "escapes"},
		{"dotdot-first-entry", reg("../evil"), 0, "escapes"},
		{"dotdot-deep", reg("H/data/../../../evil"), -1, "escapes"},
		{"absolute-path", reg(absVictim), -1, "escapes"},
		{"symlink-to-outside", tar.Header{Name: "H/data/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", Mode: 0o777, ModTime: fixedTime, Format: tar.FormatPAX}, -1, "refused"},
		{"symlink-relative", tar.Header{Name: "H/data/link2", Typeflag: tar.TypeSymlink, Linkname: "../../../evil", Mode: 0o777, ModTime: fixedTime, Format: tar.FormatPAX}, -1, "refused"},
		{"hardlink", tar.Header{Name: "H/data/hard", Typeflag: tar.TypeLink, Linkname: "H/data/a.txt", ModTime: fixedTime, Format: tar.FormatPAX}, -1, "refused"},
		{"char-device", tar.Header{Name: "H/data/dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o600, ModTime: fixedTime, Format: tar.FormatPAX}, -1, "refused"},
		{"block-device", tar.Header{Name: "H/data/blk", Typeflag: tar.TypeBlock, Devmajor: 7, Devminor: 0, Mode: 0o600, ModTime: fixedTime, Format: tar.FormatPAX}, -1, "refused"},
		{"fifo", tar.Header{Name: "H/data/fifo", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: fixedTime, Format: tar.FormatPAX}, -1, "refused"},
		{"second-top-level-folder", reg("OTHER/data/evil"), -1, "second top-level folder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			archive := filepath.Join(dir, "H.tar")
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			write := func(h tar.Header, data []byte) {
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
				if _, err := tw.Write(data); err != nil {
					t.Fatal(err)
				}
			}
			evil := func() {
				var data []byte
				if tc.hdr.Typeflag == tar.TypeReg {
					data = []byte("evil\n")
				}
				write(tc.hdr, data)
			}
			for i, e := range good {
				if i == tc.where {
					evil()
				}
				write(e.hdr, e.data)
			}
			if tc.where < 0 {
				evil()
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(archive, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			writeSidecar(t, archive)

			before := listDir(t, dir)
			res := run(t, dir, "verify", archive, "--pubkey", pub)
			expectExit(t, res, 3, "verify hostile archive")
			if !failed(res.stdout, "structure", tc.hdr.Name) {
				t.Errorf("output does not name structure FAIL %s:\n%s", tc.hdr.Name, res.stdout)
			}
			if !strings.Contains(res.stdout, tc.expect) {
				t.Errorf("output does not say %q:\n%s", tc.expect, res.stdout)
			}
			// Nothing was written: not next to the archive, not above it,
			// not at the absolute path.
			if after := listDir(t, dir); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("verify changed %s: %q, then %q", dir, before, after)
			}
			for _, p := range []string{filepath.Join(filepath.Dir(dir), "evil"), filepath.Join(dir, "evil"), absVictim, filepath.Join(dir, "H"), filepath.Join(dir, "OTHER")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("verify wrote %s", p)
				}
			}
		})
	}
}
