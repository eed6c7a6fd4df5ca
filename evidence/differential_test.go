package evidence_test

// The parser-differential corpus: archives crafted from a sealed bag, each
// an attack on the gap between what verify reads and what an extractor
// writes. Every archive verify accepts must extract, with GNU tar (with and
// without -i), Go's archive/tar and Python's tarfile, to identical trees
// that match the manifest; every crafted hostile archive must be refused.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/text/unicode/norm"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/fastio"
	"github.com/eksir/eksir/internal/labtest"
)

// segment is one entry of a tar stream: its header blocks, content and
// padding, as bytes.
type segment struct {
	name string
	typ  byte
	raw  []byte
}

// splitTar cuts an uncompressed tar into entries (PAX headers stay with
// their entry); the end-of-archive marker is dropped.
func splitTar(t *testing.T, b []byte) []segment {
	t.Helper()
	var out []segment
	var cur []byte
	paxPath := ""
	for off := 0; off+512 <= len(b); {
		blk := b[off : off+512]
		if bytes.Equal(blk, make([]byte, 512)) {
			return out
		}
		size, err := strconv.ParseInt(strings.Trim(string(blk[124:136]), " \x00"), 8, 64)
		if err != nil {
			t.Fatalf("size at %d: %v", off, err)
		}
		n := 512 + int((size+511)/512*512)
		cur = append(cur, b[off:off+n]...)
		typ := blk[156]
		if typ == 'x' {
			for _, rec := range strings.Split(string(b[off+512:off+512+int(size)]), "\n") {
				if _, kv, ok := strings.Cut(rec, " "); ok && strings.HasPrefix(kv, "path=") {
					paxPath = strings.TrimPrefix(kv, "path=")
				}
			}
			off += n
			continue
		}
		name := strings.TrimRight(string(blk[:100]), "\x00")
		if p := strings.TrimRight(string(blk[345:500]), "\x00"); p != "" {
			name = p + "/" + name
		}
		if paxPath != "" {
			name = paxPath
		}
		out = append(out, segment{name: name, typ: typ, raw: cur})
		cur, paxPath = nil, ""
		off += n
	}
	t.Fatal("no end-of-archive marker")
	return nil
}

func joinTar(segs []segment) []byte {
	var b []byte
	for _, s := range segs {
		b = append(b, s.raw...)
	}
	return append(b, make([]byte, 1024)...)
}

func find(t *testing.T, segs []segment, name string) int {
	t.Helper()
	for i, s := range segs {
		if s.name == name {
			return i
		}
	}
	t.Fatalf("no entry %s", name)
	return -1
}

// ustarBlock renders a raw header block, for what archive/tar will not
// write (GNU long names beside PAX paths, sparse types).
func ustarBlock(name string, typ byte, size int64, mtime time.Time) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], fmt.Sprintf("%07o\x00", 0o600))
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", mtime.Unix()))
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func padded(data []byte) []byte {
	return append(bytes.Clone(data), make([]byte, -len(data)&511)...)
}

func paxRecords(kv ...string) []byte {
	var b []byte
	for i := 0; i < len(kv); i += 2 {
		rec := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rec) + 1
		for len(strconv.Itoa(n))+len(rec) != n {
			n++
		}
		b = append(b, strconv.Itoa(n)+rec...)
	}
	return b
}

// render writes a header as archive/tar does, with seal's fixed fields
// unless h says otherwise.
func render(t *testing.T, h *tar.Header, data []byte) []byte {
	t.Helper()
	hdr, err := fastio.NewHeaderRenderer().Render(h)
	if err != nil {
		t.Fatal(err)
	}
	return append(hdr, padded(data)...)
}

func zstdFrame(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := zstd.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

type crafted struct {
	name string
	// zst writes the archive as .tar.zst: build returns the compressed
	// bytes then.
	zst     bool
	hostile bool
	build   func(t *testing.T) []byte
}

// diffBag seals the corpus's source bag: names that need a PAX record, a
// subfolder and an NFC name.
func diffBag(t *testing.T) (plain, zst []byte, sealTime time.Time, keys evidence.KeyRing) {
	t.Helper()
	signer, keys := newSigner(t)
	src := t.TempDir()
	files := map[string]string{
		"a.txt":     "alpha\n",
		"sub/b.txt": "beta\n",
		strings.Repeat("long-name-", 12) + ".log": "a name over 100 bytes\n",
		norm.NFC.String("café.txt"):               "composed\n",
	}
	for rel, content := range files {
		p := filepath.Join(src, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string][]byte{}
	for _, compress := range []string{evidence.CompressNone, evidence.CompressZstd} {
		opts := sealOpts(signer, t.TempDir(), compress)
		opts.Incident = "D"
		res, err := evidence.SealDir(context.Background(), src, opts)
		if err != nil {
			t.Fatal(err)
		}
		out[compress] = readFile(t, res.Archive)
	}
	return out[evidence.CompressNone], out[evidence.CompressZstd], sealAt.Truncate(time.Second), keys
}

func corpus(t *testing.T, plain, zbytes []byte, mtime time.Time) []crafted {
	segs := func() []segment { return splitTar(t, plain) }
	reg := func(name string, data []byte) []byte {
		return render(t, &tar.Header{Name: name, Size: int64(len(data)), Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg}, data)
	}
	evil := []byte("EVIL\n")
	insertAt := func(s []segment, i int, raw []byte) []segment {
		return slices.Insert(s, i, segment{raw: raw})
	}
	beforeEnd := func(raw []byte) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { s := segs(); return joinTar(append(s, segment{raw: raw})) }
	}
	long := "D/data/" + strings.Repeat("long-name-", 12) + ".log"
	return []crafted{
		{name: "sealed", build: func(*testing.T) []byte { return plain }},
		{name: "sealed-zstd", zst: true, build: func(t *testing.T) []byte { return zbytes }},

		// The attack: one entry with a PAX path and a GNU long
		// name. archive/tar lets the GNU name ("D/", an empty path the
		// old verify skipped) win; GNU tar and Python let the PAX path win
		// and write EVIL over data/a.txt.
		{name: "gnu-longname-and-pax-path", hostile: true, build: func(t *testing.T) []byte {
			pax := paxRecords("path", "D/data/a.txt")
			raw := append(ustarBlock("D/PaxHeaders/a.txt", 'x', int64(len(pax)), mtime), padded(pax)...)
			gnu := []byte("D/\x00")
			raw = append(raw, ustarBlock("././@LongLink", 'L', int64(len(gnu)), mtime)...)
			raw = append(raw, padded(gnu)...)
			raw = append(raw, ustarBlock("D/data/a.txt", '0', int64(len(evil)), mtime)...)
			raw = append(raw, padded(evil)...)
			return beforeEnd(raw)(t)
		}},
		{name: "gnu-longname-instead-of-pax", hostile: true, build: func(t *testing.T) []byte {
			s := segs()
			i := find(t, s, long)
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			data := []byte("a name over 100 bytes\n")
			if err := tw.WriteHeader(&tar.Header{Name: long, Size: int64(len(data)), Mode: 0o600, ModTime: mtime, Format: tar.FormatGNU, Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			tw.Write(data)
			tw.Flush()
			s[i].raw = b.Bytes()
			return joinTar(s)
		}},
		{name: "pax-path-and-ustar-name-differ", hostile: true, build: func(t *testing.T) []byte {
			s := segs()
			i := find(t, s, "D/data/a.txt")
			pax := paxRecords("path", "D/data/a.txt")
			raw := append(ustarBlock("D/PaxHeaders/a.txt", 'x', int64(len(pax)), mtime), padded(pax)...)
			s[i].raw = append(raw, append(ustarBlock("D/data/zz.txt", '0', 6, mtime), padded([]byte("alpha\n"))...)...)
			return joinTar(s)
		}},
		{name: "pax-extra-record", hostile: true, build: func(t *testing.T) []byte {
			s := segs()
			i := find(t, s, "D/data/a.txt")
			s[i].raw = render(t, &tar.Header{Name: "D/data/a.txt", Size: 6, Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg,
				PAXRecords: map[string]string{"comment": "hello"}}, []byte("alpha\n"))
			return joinTar(s)
		}},
		{name: "duplicate-entry", hostile: true, build: func(t *testing.T) []byte {
			s := segs()
			i := find(t, s, "D/data/a.txt")
			return joinTar(insertAt(s, i+1, s[i].raw))
		}},
		{name: "alias-dot-slash", hostile: true, build: beforeEnd(reg("D/./data/a.txt", evil))},
		{name: "alias-double-slash", hostile: true, build: beforeEnd(reg("D/data//a.txt", evil))},
		{name: "alias-dot-top", hostile: true, build: beforeEnd(reg("./D/data/a.txt", evil))},
		{name: "nfd-twin", hostile: true, build: beforeEnd(reg("D/data/"+norm.NFD.String("café.txt"), evil))},
		{name: "empty-relative-path", hostile: true, build: beforeEnd(append(ustarBlock("D/", '0', int64(len(evil)), mtime), padded(evil)...))},
		{name: "trailing-junk", hostile: true, build: func(t *testing.T) []byte { return append(bytes.Clone(plain), "junk"...) }},
		{name: "trailing-zero-blocks", hostile: true, build: func(t *testing.T) []byte { return append(bytes.Clone(plain), make([]byte, 10240)...) }},
		{name: "trailing-tar", hostile: true, build: func(t *testing.T) []byte {
			return append(bytes.Clone(plain), joinTar([]segment{{raw: reg("D/data/a.txt", evil)}})...)
		}},
		{name: "one-zero-block", hostile: true, build: func(t *testing.T) []byte { return plain[:len(plain)-512] }},
		{name: "no-end-marker", hostile: true, build: func(t *testing.T) []byte { return plain[:len(plain)-1024] }},
		{name: "second-zstd-frame-with-tar", zst: true, hostile: true, build: func(t *testing.T) []byte {
			second := joinTar([]segment{{raw: reg("D/data/a.txt", evil)}})
			return append(bytes.Clone(zbytes), zstdFrame(t, second)...)
		}},
		{name: "zstd-trailing-junk", zst: true, hostile: true, build: func(t *testing.T) []byte { return append(bytes.Clone(zbytes), "junk"...) }},
		{name: "zstd-skippable-frame", zst: true, hostile: true, build: func(t *testing.T) []byte {
			skip := []byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'e', 'v', 'i', 'l'}
			return append(bytes.Clone(zbytes), skip...)
		}},
		{name: "reordered", hostile: true, build: func(t *testing.T) []byte {
			s := segs()
			i, j := find(t, s, "D/data/a.txt"), find(t, s, "D/data/"+norm.NFC.String("café.txt"))
			s[i], s[j] = s[j], s[i]
			return joinTar(s)
		}},
		{name: "gnu-sparse", hostile: true, build: beforeEnd(ustarBlock("D/data/sparse", 'S', 0, mtime))},
		{name: "pax-sparse", hostile: true, build: func(t *testing.T) []byte {
			pax := paxRecords("GNU.sparse.major", "1", "GNU.sparse.minor", "0", "GNU.sparse.name", "D/data/a.txt", "GNU.sparse.realsize", "5")
			raw := append(ustarBlock("D/PaxHeaders/s", 'x', int64(len(pax)), mtime), padded(pax)...)
			raw = append(raw, ustarBlock("D/GNUSparseFile.0/a.txt", '0', 512, mtime)...)
			raw = append(raw, make([]byte, 512)...)
			return beforeEnd(raw)(t)
		}},
		{name: "hardlink", hostile: true, build: beforeEnd(render(t, &tar.Header{Name: "D/data/hard", Linkname: "D/data/a.txt", ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeLink}, nil))},
		{name: "symlink", hostile: true, build: beforeEnd(render(t, &tar.Header{Name: "D/data/link", Linkname: "/etc/passwd", ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeSymlink}, nil))},
		{name: "global-pax-header", hostile: true, build: func(t *testing.T) []byte {
			s := segs()
			g := render(t, &tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"path": "D/data/a.txt"}, Format: tar.FormatPAX}, nil)
			return joinTar(insertAt(s, 1, g))
		}},
		{name: "mode-changed", hostile: true, build: func(t *testing.T) []byte {
			s := segs()
			i := find(t, s, "D/data/a.txt")
			s[i].raw = render(t, &tar.Header{Name: "D/data/a.txt", Size: 6, Mode: 0o4755, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg}, []byte("alpha\n"))
			return joinTar(s)
		}},
		{name: "owner-named", hostile: true, build: func(t *testing.T) []byte {
			s := segs()
			i := find(t, s, "D/data/a.txt")
			s[i].raw = render(t, &tar.Header{Name: "D/data/a.txt", Size: 6, Mode: 0o600, Uname: "root", Uid: 0, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg}, []byte("alpha\n"))
			return joinTar(s)
		}},
		{name: "empty-folder", hostile: true, build: func(t *testing.T) []byte {
			s := segs()
			dir := render(t, &tar.Header{Name: "D/data/empty/", Mode: 0o700, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeDir}, nil)
			return joinTar(insertAt(s, find(t, s, "D/data/a.txt"), dir))
		}},
		{name: "bogus-tagmanifest-md5", hostile: true, build: beforeEnd(reg("D/tagmanifest-md5.txt", []byte("d41d8cd98f00b204e9800998ecf8427e  bagit.txt\n")))},
		{name: "extra-signature-file", hostile: true, build: beforeEnd(reg("D/signatures/extra.sig", evil))},
	}
}

// TestParserDifferential verifies every archive of the corpus and extracts
// the ones verify accepts with every extractor at hand.
func TestParserDifferential(t *testing.T) {
	plain, zbytes, mtime, keys := diffBag(t)
	tools := extractors(t)
	for _, c := range corpus(t, plain, zbytes, mtime) {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			archive := filepath.Join(dir, evidence.ArchiveName("D", map[bool]string{true: evidence.CompressZstd, false: evidence.CompressNone}[c.zst]))
			b := c.build(t)
			if err := os.WriteFile(archive, b, 0o600); err != nil {
				t.Fatal(err)
			}
			// A fresh sidecar, as the attacker would write one.
			if err := os.WriteFile(archive+".sha256", []byte(sha256Hex(b)+"  "+filepath.Base(archive)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			rep, err := evidence.Verify(context.Background(), archive, evidence.VerifyOptions{Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			if c.hostile && rep.OK {
				t.Errorf("verify accepted the hostile archive %s", c.name)
			}
			if !c.hostile && !rep.OK {
				t.Fatalf("verify refused the sealed archive: %+v", rep.Failed())
			}
			if !rep.OK {
				t.Logf("refused: %+v", rep.Failed())
				if f := rep.Failed(); f[0].Path == "" || f[0].Detail == "" {
					t.Errorf("the failure names nothing: %+v", f[0])
				}
				return
			}
			// Accepted: every extractor writes the same tree, which
			// matches the manifest.
			manifest := manifestOf(t, decompress(t, b, c.zst))
			var first map[string]string
			var firstTool string
			for _, x := range tools {
				tree := x.extract(t, b, c.zst)
				if first == nil {
					first, firstTool = tree, x.name
				} else if !maps.Equal(tree, first) {
					t.Errorf("%s and %s extract different trees:\n%v\n%v", firstTool, x.name, first, tree)
				}
				for p, sum := range tree {
					if strings.HasPrefix(p, "D/data/") && manifest[strings.TrimPrefix(p, "D/")] != sum {
						t.Errorf("%s extracts %s with sha256 %s; the manifest says %q", x.name, p, sum, manifest[strings.TrimPrefix(p, "D/")])
					}
				}
				for p := range manifest {
					if _, ok := tree["D/"+p]; !ok {
						t.Errorf("%s does not extract %s", x.name, p)
					}
				}
			}
		})
	}
}

// manifestOf reads manifest-sha256.txt from the sealed tar.
func manifestOf(t *testing.T, plain []byte) map[string]string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(plain))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "D/manifest-sha256.txt" {
			b, _ := io.ReadAll(tr)
			out := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				sum, p, _ := strings.Cut(l, "  ")
				out[p] = sum
			}
			return out
		}
	}
}

type extractor struct {
	name    string
	extract func(t *testing.T, archive []byte, zst bool) map[string]string
}

// decompress returns the tar stream as `zstd -d` gives it: every frame's
// content, one after the other.
func decompress(t *testing.T, b []byte, zst bool) []byte {
	t.Helper()
	if !zst {
		return b
	}
	zr, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Logf("zstd: %v (extracting what decoded)", err)
	}
	return out
}

// extractors returns GNU tar (with and without -i), archive/tar and, when
// python3 is installed, tarfile. CI must have them all.
func extractors(t *testing.T) []extractor {
	out := []extractor{{"archive/tar", extractGo}}
	// A missing extractor fails the test in CI (labtest.SkipOrFail);
	// elsewhere the corpus still runs, with the extractors at hand.
	missing := func(tool string) {
		if os.Getenv("CI") == "true" {
			labtest.SkipOrFail(t, tool)
		}
		t.Logf("%s not found: the archives verify accepts are not extracted with it", tool)
	}
	if v, err := exec.Command("tar", "--version").Output(); err != nil || !strings.Contains(string(v), "GNU tar") {
		missing("GNU tar")
	} else {
		out = append(out, gnuTar(t)...)
	}
	if _, err := exec.LookPath("python3"); err != nil {
		missing("python3 (tarfile)")
		return out
	}
	return append(out, pythonTar)
}

func gnuTar(t *testing.T) []extractor {
	var out []extractor
	for _, flags := range [][]string{{"-x"}, {"-x", "-i"}} {
		out = append(out, extractor{"GNU tar " + strings.Join(flags, " "), func(t *testing.T, b []byte, zst bool) map[string]string {
			dir := t.TempDir()
			cmd := exec.Command("tar", append(flags, "-f", "-", "-C", dir, "--no-same-owner", "--no-same-permissions")...)
			cmd.Stdin = bytes.NewReader(decompress(t, b, zst))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Logf("tar %v: %v: %s", flags, err, out)
			}
			return tree(t, dir)
		}})
	}
	return out
}

var pythonTar = extractor{"python tarfile", func(t *testing.T, b []byte, zst bool) map[string]string {
	dir := t.TempDir()
	script := `import sys, tarfile
t = tarfile.open(fileobj=sys.stdin.buffer, mode="r|")
try:
    t.extractall(sys.argv[1], filter="data")
except TypeError:
    t.extractall(sys.argv[1])
`
	cmd := exec.Command("python3", "-c", script, dir)
	cmd.Stdin = bytes.NewReader(decompress(t, b, zst))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("python tarfile: %v: %s", err, out)
	}
	return tree(t, dir)
}}

// extractGo writes the regular files archive/tar reads, inside dir only.
func extractGo(t *testing.T, b []byte, zst bool) map[string]string {
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(decompress(t, b, zst)))
	for {
		h, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Logf("archive/tar: %v", err)
			}
			break
		}
		clean := path.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(clean) || clean == "." || strings.HasSuffix(h.Name, "/") {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Logf("archive/tar: %v", err)
			continue
		}
		data, _ := io.ReadAll(tr)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Logf("archive/tar: %v", err)
		}
	}
	return tree(t, dir)
}

// tree maps each regular file under dir to its sha256; a link or other
// special file maps to its kind.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !d.Type().IsRegular() {
			out[filepath.ToSlash(rel)] = "special " + d.Type().String()
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := sha256.Sum256(b)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(s[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
