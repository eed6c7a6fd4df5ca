package journal

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Query selects entries. Units: an entry matches when it belongs to one of
// the units the way `journalctl -u UNIT` (systemd 252) selects a system
// unit, that is when the entry has
//
//   - _SYSTEMD_UNIT=UNIT (the unit's own messages), or
//   - MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1 and _UID=0 and
//     COREDUMP_UNIT=UNIT (its core dumps), or
//   - _PID=1 and UNIT=UNIT (systemd's messages about it), or
//   - _UID=0 and OBJECT_SYSTEMD_UNIT=UNIT (privileged daemons' messages
//     about it), or
//   - for a UNIT ending in .slice, _SYSTEMD_SLICE=UNIT.
//
// Unit names without a unit type suffix get ".service"; glob patterns are
// not expanded. Empty Units matches everything.
type Query struct{ Units []string }

// Stats says what was read.
type Stats struct {
	Files    int      // journal files opened
	Entries  int      // entries read, over all files
	Matched  int      // entries written (after duplicates were removed)
	Problems []string // per file: what was inconsistent and where reading stopped
}

// coredumpMessageID is the MESSAGE_ID systemd-coredump logs a dump with.
const coredumpMessageID = "fc2e22bc6ee647b6b90729ab34a250b1"

// unitSuffixes are the unit types; a name ending in none gets ".service",
// as systemd's unit name mangling does.
var unitSuffixes = []string{".service", ".socket", ".target", ".device", ".mount",
	".automount", ".swap", ".timer", ".path", ".slice", ".scope"}

// MangleUnit returns the unit name journalctl -u would look for.
func MangleUnit(u string) string {
	for _, s := range unitSuffixes {
		if strings.HasSuffix(u, s) && len(u) > len(s) {
			return u
		}
	}
	return u + ".service"
}

// Match reports whether e is selected by q.
func (q Query) Match(e *Entry) bool {
	if len(q.Units) == 0 {
		return true
	}
	has := func(name, value string) bool {
		for _, f := range e.Fields {
			if f.Name == name && string(f.Value) == value {
				return true
			}
		}
		return false
	}
	for _, u := range q.Units {
		u = MangleUnit(u)
		if has("_SYSTEMD_UNIT", u) ||
			(has("COREDUMP_UNIT", u) && has("_UID", "0") && has("MESSAGE_ID", coredumpMessageID)) ||
			(has("UNIT", u) && has("_PID", "1")) ||
			(has("OBJECT_SYSTEMD_UNIT", u) && has("_UID", "0")) ||
			(strings.HasSuffix(u, ".slice") && has("_SYSTEMD_SLICE", u)) {
			return true
		}
	}
	return false
}

// match is one matched entry, remembered by place so that memory stays
// small however many entries match; it is read again to be written.
type match struct {
	file     int32
	offset   int64
	realtime uint64
	seqnum   uint64
}

// source is one journal file of an export, kept open between the pass
// that selects entries and the one that writes them.
type source struct {
	path     string
	fh       *os.File
	size     int64
	seqnumID ID128
	reread   *File
}

// Export reads every journal file (*.journal and *.journal~) under dir
// inside root, recursively, merges the entries q matches from all files in
// (realtime, seqnum) order with duplicates across files (same seqnum ID and
// seqnum) removed, and writes them to w as JSON lines in the format of
// `journalctl -o json --all`. A file that cannot be opened, or that stops
// making sense part way, is recorded in Stats.Problems and contributes the
// entries read before; only ctx, a failure to list dir, or a write error
// fail the export. Memory grows by some 32 bytes per matching entry; the
// entries themselves are read again when written.
func Export(ctx context.Context, root *os.Root, dir string, q Query, w io.Writer) (Stats, error) {
	var st Stats
	dir = path.Clean(strings.TrimPrefix(dir, "/"))
	if dir == "" {
		dir = "."
	}
	var paths []string
	err := fs.WalkDir(root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			st.Problems = append(st.Problems, fmt.Sprintf("%s: %v", p, err))
			return nil
		}
		if d.Type().IsRegular() && (strings.HasSuffix(p, ".journal") || strings.HasSuffix(p, ".journal~")) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("list journal files in %s: %w", dir, err)
	}
	var srcs []*source
	defer func() {
		for _, s := range srcs {
			s.fh.Close()
		}
	}()
	var matches []match
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		st.Files++
		src, n, err := selectEntries(ctx, root, p, q, int32(len(srcs)), &matches)
		st.Entries += n
		if src != nil {
			srcs = append(srcs, src)
		}
		if err != nil {
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			st.Problems = append(st.Problems, fmt.Sprintf("%s: %v", p, err))
		}
	}
	slices.SortStableFunc(matches, func(a, b match) int {
		if c := cmp.Compare(a.realtime, b.realtime); c != 0 {
			return c
		}
		return cmp.Compare(a.seqnum, b.seqnum)
	})
	type key struct {
		id  ID128
		seq uint64
	}
	seen := make(map[key]struct{}, len(matches))
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	for i, m := range matches {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return st, err
			}
		}
		src := srcs[m.file]
		k := key{src.seqnumID, m.seqnum}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		e, err := src.entryAt(m.offset)
		if err != nil {
			// The file changed between the passes (journald still
			// writing it) or a limit was reached.
			st.Problems = append(st.Problems, fmt.Sprintf("%s: reading again the entry at %d: %v", src.path, m.offset, err))
			continue
		}
		line = AppendJSON(line[:0], src.seqnumID, e)
		if _, err := bw.Write(line); err != nil {
			return st, fmt.Errorf("write journal export: %w", err)
		}
		st.Matched++
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("write journal export: %w", err)
	}
	return st, nil
}

// selectEntries reads one file and appends the place of each entry q
// matches; it returns the open file (nil when it cannot be read), the
// number of entries read, and why reading stopped early if it did.
func selectEntries(ctx context.Context, root *os.Root, p string, q Query, idx int32, matches *[]match) (*source, int, error) {
	fh, err := root.Open(p)
	if err != nil {
		return nil, 0, fmt.Errorf("open: %w", err)
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, 0, fmt.Errorf("stat: %w", err)
	}
	f, err := Open(fh, fi.Size())
	if err != nil {
		fh.Close()
		return nil, 0, err
	}
	src := &source{path: p, fh: fh, size: fi.Size(), seqnumID: f.Header().SeqnumID}
	n := 0
	err = f.Walk(ctx, func(e *Entry) error {
		n++
		if q.Match(e) {
			*matches = append(*matches, match{file: idx, offset: e.Offset, realtime: e.Realtime, seqnum: e.Seqnum})
		}
		return nil
	})
	return src, n, err
}

// entryAt reads again an entry the first pass selected, through a File of
// its own so that the first pass's limits are not spent twice.
func (s *source) entryAt(off int64) (*Entry, error) {
	if s.reread == nil {
		f, err := Open(s.fh, s.size)
		if err != nil {
			return nil, err
		}
		s.reread = f
	}
	e, _, err := s.reread.readEntry(off)
	return e, err
}

// Cursor returns the cursor journalctl gives the entry e of a file whose
// seqnum ID is seqnumID.
func Cursor(seqnumID ID128, e *Entry) string {
	return fmt.Sprintf("s=%s;i=%x;b=%s;m=%x;t=%x;x=%x", seqnumID, e.Seqnum, e.BootID, e.Monotonic, e.Realtime, e.XorHash)
}

// AppendJSON appends e as one line of `journalctl -o json --all`: the
// cursor, the two timestamps and the boot ID from the entry object, then
// every field; a field repeated in the entry becomes an array of its
// values, and a value that is not printable UTF-8 becomes an array of its
// byte values.
func AppendJSON(b []byte, seqnumID ID128, e *Entry) []byte {
	b = append(b, `{"__CURSOR":`...)
	b = appendString(b, Cursor(seqnumID, e))
	b = append(b, `,"__REALTIME_TIMESTAMP":"`...)
	b = strconv.AppendUint(b, e.Realtime, 10)
	b = append(b, `","__MONOTONIC_TIMESTAMP":"`...)
	b = strconv.AppendUint(b, e.Monotonic, 10)
	b = append(b, `","_BOOT_ID":"`...)
	b = append(b, e.BootID.String()...)
	b = append(b, '"')
	// Group repeated fields, keeping the order of first appearance.
	done := make([]bool, len(e.Fields))
	for i, f := range e.Fields {
		// The boot ID came from the entry object, as journalctl does.
		if done[i] || f.Name == "_BOOT_ID" {
			continue
		}
		n := 0
		for j := i; j < len(e.Fields); j++ {
			if e.Fields[j].Name == f.Name {
				n++
			}
		}
		b = append(b, ',')
		b = appendString(b, f.Name)
		b = append(b, ':')
		if n == 1 {
			b = appendValue(b, f.Value)
			continue
		}
		b = append(b, '[')
		for j := i; j < len(e.Fields); j++ {
			if e.Fields[j].Name == f.Name {
				if j > i {
					b = append(b, ',')
				}
				b = appendValue(b, e.Fields[j].Value)
				done[j] = true
			}
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendValue writes a value as a string when journalctl would print it,
// else as an array of byte values.
func appendValue(b, v []byte) []byte {
	if printable(v) {
		return appendString(b, string(v))
	}
	b = append(b, '[')
	for i, c := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(c), 10)
	}
	return append(b, ']')
}

// printable is systemd's test for a value journalctl shows as text: valid
// UTF-8 of valid code points, no control characters but newline and tab.
func printable(v []byte) bool {
	for len(v) > 0 {
		r, n := utf8.DecodeRune(v)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		v = v[n:]
		switch {
		case r == '\n' || r == '\t':
		case r < 0x20, r >= 0x7f && r <= 0x9f:
			return false
		case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
			// Non-characters: systemd does not count them as valid.
			return false
		}
	}
	return true
}

// appendString writes s as a JSON string; bytes that are not UTF-8 (only
// possible in field names) become U+FFFD.
func appendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
