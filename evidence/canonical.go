package evidence

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eksir/eksir/internal/fastio"
)

// The canonical layout: seal is deterministic, so every header it writes is
// a function of the entry's name, size and type and of the seal time. Verify
// reads the raw 512-byte blocks itself, re-renders each header as seal
// would and compares bytes, rather than trusting archive/tar's merged view
// of PAX, GNU and ustar fields (where extractors disagree on which wins).

// Size limits for what verify holds in memory.
const (
	// maxPAXBytes bounds one PAX extended header's records.
	maxPAXBytes = 64 << 10
	// maxSmallTag bounds the tag files that do not grow with the payload.
	maxSmallTag = 1 << 20
	// maxListTag bounds manifest-sha256.txt and metadata/custody.jsonl,
	// which have a line per payload file.
	maxListTag = 48 << 20
	// maxManifestLine bounds one line of a manifest.
	maxManifestLine = 8 << 10
	// maxHandOverRecord bounds one record of <archive>.custody.jsonl, and
	// maxHandOverLog the whole file.
	maxHandOverRecord = 64 << 10
	maxHandOverLog    = 16 << 20
	// maxSidecar bounds the .sha256 sidecar.
	maxSidecar = 64 << 10
)

// sealTagFiles are the tag files seal writes, in the order it writes them
// after the payload; bagit.txt comes first, before the payload. The two
// report files are optional (SealOptions.TagFiles): archives sealed before
// them, or without a report, have neither. They sit in path order among the
// metadata/ files, so the order stays the byte order of the tag paths.
var sealTagFiles = []string{bagInfoTxt, manifestTxt, custodyJSONL, itemsJSON, reportHTML, reportJSON, tagManifestTxt, sealDSSE, sealPub}

// tagLimit returns the most bytes the tag file rel may hold, or 0 when rel
// is not a tag file seal writes.
func tagLimit(rel string) int64 {
	switch rel {
	case bagitTxt, bagInfoTxt, tagManifestTxt, sealDSSE, sealPub:
		return maxSmallTag
	case manifestTxt, custodyJSONL:
		return maxListTag
	case itemsJSON, reportHTML, reportJSON:
		// Only hashed, never held: no limit needed.
		return -1
	}
	return 0
}

// layoutError is a departure from the layout seal writes; Name is the
// entry it concerns.
type layoutError struct {
	Name string
	Msg  string
}

func (e *layoutError) Error() string { return e.Name + ": " + e.Msg }

// shown is name as a report shows it: quoted when it holds control
// characters, so that a hostile name cannot forge lines of the report.
func shown(name string) string {
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return strconv.Quote(name)
		}
	}
	return name
}

// rawEntry is one archive entry as its blocks say.
type rawEntry struct {
	name string
	typ  byte
	size int64
	raw  []byte // every header byte: PAX header and records, then the ustar block
	mod  int64  // the ustar block's mtime
}

// canonReader reads a tar stream block by block.
type canonReader struct {
	r    io.Reader
	blk  [tarBlock]byte
	left int64 // content bytes of the current entry not yet read
	pad  int64 // padding after them
	// top and time are learnt from the first entry.
	top  string
	time time.Time
	rend *fastio.HeaderRenderer
	// ended is set once the end-of-archive marker was read.
	ended bool
	// off counts the bytes read, for messages.
	off int64
}

func newCanonReader(r io.Reader) *canonReader {
	c := &canonReader{rend: fastio.NewHeaderRenderer()}
	c.r = &counting{r, &c.off}
	return c
}

// counting counts the bytes read through it.
type counting struct {
	r io.Reader
	n *int64
}

func (c *counting) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

func (c *canonReader) block() error {
	_, err := io.ReadFull(c.r, c.blk[:])
	return err
}

// checksumOK checks a header block's checksum (unsigned, as POSIX says and
// seal writes).
func checksumOK(b []byte) bool {
	want, ok := octal(b[148:156])
	if !ok {
		return false
	}
	var sum int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	return sum == want
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// cstr is a NUL-terminated header field.
func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// octal parses a numeric header field in the octal form seal writes.
func octal(b []byte) (int64, bool) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		return 0, false // base-256: seal never writes it
	}
	s := strings.Trim(cstr(b), " ")
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 8, 64)
	return n, err == nil && n >= 0
}

// ustarName is the name a ustar block gives (prefix/name).
func ustarName(b []byte) string {
	name := cstr(b[0:100])
	if string(b[257:263]) == "ustar\x00" {
		if p := cstr(b[345:500]); p != "" {
			name = p + "/" + name
		}
	}
	return name
}

// typeName describes a typeflag for a message.
func typeName(t byte) string {
	switch t {
	case '1':
		return "hard link"
	case '2':
		return "symbolic link"
	case '3':
		return "character device"
	case '4':
		return "block device"
	case '6':
		return "FIFO"
	case '7':
		return "contiguous file"
	case 'g':
		return "global PAX header"
	case 'L', 'K':
		return "GNU long name header"
	case 'S':
		return "GNU sparse file"
	case 'x':
		return "PAX header"
	}
	return fmt.Sprintf("type %q", t)
}

// next reads the next entry's headers. It returns io.EOF after a correct
// end-of-archive marker followed by nothing, and a *layoutError for
// anything seal does not write. The caller reads the content with content.
func (c *canonReader) next() (rawEntry, error) {
	if c.left > 0 || c.pad > 0 {
		if _, err := io.CopyN(io.Discard, c.r, c.left+c.pad); err != nil {
			return rawEntry{}, truncated(err)
		}
		c.left, c.pad = 0, 0
	}
	var e rawEntry
	var pax map[string]string
	for {
		if err := c.block(); err != nil {
			if err == io.EOF && len(e.raw) == 0 {
				return e, &layoutError{"end of archive", "the archive ends without tar's end-of-archive marker (cut off?)"}
			}
			return e, truncated(err)
		}
		if len(e.raw) == 0 && isZero(c.blk[:]) {
			return e, c.end()
		}
		if !checksumOK(c.blk[:]) {
			return e, &layoutError{fmt.Sprintf("byte %d", c.off-tarBlock), "not a tar header (its checksum does not match): not a tar archive, or a damaged one"}
		}
		e.raw = append(e.raw, c.blk[:]...)
		typ := c.blk[156]
		name := ustarName(c.blk[:])
		if p, ok := pax["path"]; ok {
			name = p
		}
		switch typ {
		case 'x':
			if pax != nil {
				return e, &layoutError{name, "two PAX headers for one entry; seal writes at most one"}
			}
			size, ok := octal(c.blk[124:136])
			if !ok || size > maxPAXBytes {
				return e, &layoutError{name, "PAX header with a bad or oversized length"}
			}
			data := make([]byte, (size+tarBlock-1)/tarBlock*tarBlock)
			if _, err := io.ReadFull(c.r, data); err != nil {
				return e, truncated(err)
			}
			e.raw = append(e.raw, data...)
			var err error
			if pax, err = parsePAX(data[:size]); err != nil {
				return e, &layoutError{name, err.Error()}
			}
			for k := range pax {
				if strings.HasPrefix(k, "GNU.sparse") {
					if n, ok := pax["GNU.sparse.name"]; ok {
						name = n
					}
					return e, &layoutError{paxName(pax, name), "sparse file (PAX GNU.sparse records); seal writes none"}
				}
			}
			continue
		case 'g', 'S', 'L', 'K':
			msg := typeName(typ) + "; seal writes none"
			if typ == 'L' || typ == 'K' {
				if size, ok := octal(c.blk[124:136]); ok && size <= maxPAXBytes {
					data := make([]byte, (size+tarBlock-1)/tarBlock*tarBlock)
					if _, err := io.ReadFull(c.r, data); err == nil {
						msg = fmt.Sprintf("GNU long name header naming %q; seal writes none", cstr(data[:size]))
						if _, ok := pax["path"]; ok {
							msg += " (with a PAX path as well: extractors disagree on which name wins)"
						} else {
							name = cstr(data[:size])
						}
					}
				}
			}
			return e, &layoutError{name, msg}
		}
		e.name, e.typ = name, typ
		size, ok := octal(c.blk[124:136])
		if !ok {
			return e, &layoutError{name, "size field is not the octal number seal writes"}
		}
		if s, ok := pax["size"]; ok {
			if size, ok = parseSize(s); !ok {
				return e, &layoutError{name, "PAX size record is not a number"}
			}
		}
		e.size = size
		if e.mod, ok = octal(c.blk[136:148]); !ok {
			return e, &layoutError{name, "mtime field is not the octal number seal writes"}
		}
		return e, nil
	}
}

func paxName(pax map[string]string, name string) string {
	if p, ok := pax["path"]; ok {
		return p
	}
	return name
}

func parseSize(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// parsePAX reads "<len> <key>=<value>\n" records; a key given twice is
// refused, since extractors disagree on which one wins.
func parsePAX(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for len(b) > 0 {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return nil, errors.New("malformed PAX record")
		}
		n, err := strconv.Atoi(string(b[:sp]))
		if err != nil || n <= sp+1 || n > len(b) || b[n-1] != '\n' {
			return nil, errors.New("malformed PAX record")
		}
		k, v, ok := strings.Cut(string(b[sp+1:n-1]), "=")
		if !ok || k == "" {
			return nil, errors.New("malformed PAX record")
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("PAX record %q given twice", k)
		}
		out[k] = v
		b = b[n:]
	}
	return out, nil
}

func truncated(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return &layoutError{"end of archive", "the archive is cut off inside an entry"}
	}
	return err
}

// end checks the rest of the end-of-archive marker: a second zero block
// and then nothing at all.
func (c *canonReader) end() error {
	if err := c.block(); err != nil {
		return &layoutError{"end of archive", "only one of the two zero blocks that end a tar archive"}
	}
	if !isZero(c.blk[:]) {
		return &layoutError{"end of archive", "a single zero block inside the archive; seal writes two, only at the end"}
	}
	var one [1]byte
	n, err := io.ReadFull(c.r, one[:])
	if n > 0 {
		return &layoutError{"end of archive", "data after the end-of-archive marker; seal writes nothing there"}
	}
	if err != io.EOF {
		return err
	}
	c.ended = true
	return io.EOF
}

// content returns the reader for the current entry's e.size bytes; the
// padding after them is checked by the next call to padding.
func (c *canonReader) content(size int64) io.Reader {
	c.left, c.pad = size, -size&(tarBlock-1)
	return &contentReader{c}
}

type contentReader struct{ c *canonReader }

func (r *contentReader) Read(p []byte) (int, error) {
	if r.c.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.c.left {
		p = p[:r.c.left]
	}
	n, err := r.c.r.Read(p)
	r.c.left -= int64(n)
	if err == io.EOF && r.c.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// padding reads the zeros after the current entry's content.
func (c *canonReader) padding(name string) error {
	if c.left > 0 {
		if _, err := io.CopyN(io.Discard, c.r, c.left); err != nil {
			return truncated(err)
		}
		c.left = 0
	}
	if c.pad == 0 {
		return nil
	}
	buf := c.blk[:c.pad]
	c.pad = 0
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return truncated(err)
	}
	if !isZero(buf) {
		return &layoutError{name, "padding after the content is not zeros"}
	}
	return nil
}

// check compares e's header bytes with what seal writes for rel (a file,
// or a folder when dir). The first entry sets the top folder and the time.
func (c *canonReader) check(e rawEntry, rel string, dir bool) error {
	aw := archiveWriter{top: c.top, time: c.time}
	want, err := c.rend.Render(aw.header(rel, e.size, dir))
	if err != nil {
		return &layoutError{e.name, "seal could not have written this entry: " + err.Error()}
	}
	if !bytes.Equal(want, e.raw) {
		return &layoutError{e.name, "header differs from the one seal writes (" + headerDiff(want, e.raw) + ")"}
	}
	return nil
}

// headerDiff names the first header field where got differs from want.
func headerDiff(want, got []byte) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%d header bytes, seal writes %d: PAX records differ", len(got), len(want))
	}
	fields := []struct {
		name     string
		off, end int
	}{{"name", 0, 100}, {"mode", 100, 108}, {"uid", 108, 116}, {"gid", 116, 124}, {"size", 124, 136}, {"mtime", 136, 148},
		{"checksum", 148, 156}, {"typeflag", 156, 157}, {"linkname", 157, 257}, {"magic/version", 257, 265}, {"uname", 265, 297},
		{"gname", 297, 329}, {"devmajor", 329, 337}, {"devminor", 337, 345}, {"prefix", 345, 500}, {"padding", 500, 512}}
	// The checksum differs whenever another field does: name that one.
	where := ""
	for i := 0; i < len(want); i++ {
		if want[i] == got[i] {
			continue
		}
		blk, off := i/tarBlock, i%tarBlock
		f := "PAX records"
		if last := len(want)/tarBlock - 1; blk == last || blk == 0 {
			for _, fl := range fields {
				if off >= fl.off && off < fl.end {
					f = fl.name
				}
			}
			if blk != last {
				f = "PAX header's " + f
			}
		}
		if where == "" || strings.HasSuffix(where, "checksum") {
			where = f
		}
		if !strings.HasSuffix(where, "checksum") {
			break
		}
	}
	if where == "" {
		return "same bytes"
	}
	return where + " field"
}

// expectedOrder returns the entries seal writes for the given files (bag
// paths of regular files), in its order: folders end with "/", the top
// folder is "".
func expectedOrder(files map[string]bool) []string {
	var payload []string
	for f := range files {
		if strings.HasPrefix(f, "data/") {
			payload = append(payload, f)
		}
	}
	slices.Sort(payload)
	out := []string{""}
	dirs := map[string]bool{"": true}
	add := func(name string) {
		var missing []string
		for d := pathDir(name); !dirs[d]; d = pathDir(d) {
			missing = append(missing, d)
			dirs[d] = true
		}
		for i := len(missing) - 1; i >= 0; i-- {
			out = append(out, missing[i]+"/")
		}
		out = append(out, name)
	}
	if files[bagitTxt] {
		add(bagitTxt)
	}
	if len(payload) == 0 {
		// An empty payload is still a data/ folder (RFC 8493 §2.1.2).
		out, dirs["data"] = append(out, "data/"), true
	}
	for _, p := range payload {
		add(p)
	}
	for _, t := range sealTagFiles {
		if files[t] {
			add(t)
		}
	}
	return out
}

// cleanRel reports why rel (a bag-relative path from an entry name) is not
// a path seal writes, or "".
func cleanRel(rel string) string {
	switch {
	case rel == "":
		return "a regular file with an empty path inside the bag; refused"
	case path.Clean(rel) != rel || strings.HasPrefix(rel, "./"):
		return "not a clean path (\".\", \"..\", \"//\" or a trailing \"/\"); seal writes clean paths only"
	case strings.ContainsRune(rel, 0):
		return "NUL in the name"
	}
	return ""
}

// zstdFrames watches the compressed bytes going to the decoder: exactly one
// zstd frame, no skippable frame, nothing after it. It walks frame and
// block headers only; the decoder does the decoding.
type zstdFrames struct {
	r      io.Reader
	frames int
	err    error
	// state: the bytes still to collect into hdr (need) for the next
	// header, or to pass (skip) inside a block.
	hdr    []byte
	need   int
	skip   int64
	stage  int // 0 magic, 1 frame header descriptor, 2 rest of frame header, 3 block header, 4 checksum
	check  bool
	offset int64
}

func newZstdFrames(r io.Reader) *zstdFrames { return &zstdFrames{r: r, need: 4} }

func (z *zstdFrames) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	if z.err == nil {
		z.walk(p[:n])
	}
	return n, err
}

func (z *zstdFrames) fail(format string, args ...any) {
	if z.err == nil {
		z.err = &layoutError{"zstd stream", fmt.Sprintf(format, args...)}
	}
}

func (z *zstdFrames) walk(b []byte) {
	for len(b) > 0 && z.err == nil {
		if z.skip > 0 {
			n := min(int64(len(b)), z.skip)
			z.skip -= n
			z.offset += n
			b = b[n:]
			continue
		}
		n := min(len(b), z.need-len(z.hdr))
		z.hdr = append(z.hdr, b[:n]...)
		z.offset += int64(n)
		b = b[n:]
		if len(z.hdr) < z.need {
			continue
		}
		z.advance()
	}
}

// advance acts on a complete z.hdr for the current stage.
func (z *zstdFrames) advance() {
	h := z.hdr
	z.hdr = z.hdr[:0]
	switch z.stage {
	case 0:
		magic := binary.LittleEndian.Uint32(h)
		switch {
		case magic&0xFFFFFFF0 == 0x184D2A50:
			z.fail("skippable zstd frame at byte %d; seal writes one frame", z.offset-4)
		case magic != 0xFD2FB528 && z.frames > 0:
			z.fail("%d bytes after the zstd frame; seal writes nothing there", z.offset-4)
		case magic != 0xFD2FB528:
			z.fail("not a zstd frame")
		case z.frames > 0:
			z.fail("a second zstd frame at byte %d; seal writes one", z.offset-4)
		}
		z.frames++
		z.stage, z.need = 1, 1
	case 1:
		fhd := h[0]
		fcs := [4]int{0, 2, 4, 8}[fhd>>6]
		single := fhd>>5&1 == 1
		if fhd>>6 == 0 && single {
			fcs = 1
		}
		rest := fcs + [4]int{0, 1, 2, 4}[fhd&3]
		if !single {
			rest++
		}
		if fhd&0x08 != 0 {
			z.fail("reserved bit set in the zstd frame header")
		}
		z.check = fhd&0x04 != 0
		if rest == 0 {
			z.stage, z.need = 3, 3
		} else {
			z.stage, z.need = 2, rest
		}
	case 2:
		z.stage, z.need = 3, 3
	case 3:
		bh := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
		last, typ, size := bh&1 == 1, bh>>1&3, int64(bh>>3)
		switch typ {
		case 1:
			size = 1
		case 3:
			z.fail("reserved zstd block type")
		}
		z.skip = size
		switch {
		case !last:
			z.need = 3
		case z.check:
			z.stage, z.need = 4, 4
		default:
			z.stage, z.need = 0, 4
		}
	case 4:
		z.stage, z.need = 0, 4
	}
}

// finish reports what is wrong with the compressed stream once it was read
// to the end.
func (z *zstdFrames) finish() error {
	switch {
	case z.err != nil:
		return z.err
	case z.frames != 1:
		return &layoutError{"zstd stream", fmt.Sprintf("%d zstd frames; seal writes one", z.frames)}
	case z.stage != 0 || z.skip > 0 || len(z.hdr) > 0:
		return &layoutError{"zstd stream", "the zstd frame is cut off"}
	}
	return nil
}
