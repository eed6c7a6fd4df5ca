package journal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// labFixture is the committed lab journal (compact, zstd), small enough to
// seed the fuzzer without systemd tools.
const labFixture = "../../lab/assets/journal/system.journal.zst"

func readLabFixture(t testing.TB) []byte {
	t.Helper()
	z, err := os.ReadFile(labFixture)
	if err != nil {
		t.Fatal(err)
	}
	d, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := d.DecodeAll(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLabFixture checks the committed lab journal reads completely and
// holds what generate.sh says: about fifty kubelet and containerd entries
// among others, one of them zstd-compressed.
func TestLabFixture(t *testing.T) {
	b := readLabFixture(t)
	f, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Header().Compact() || f.Header().IncompatibleFlags&IncompatibleCompressedZSTD == 0 {
		t.Errorf("flags %s, want compact and zstd", flagNames(f.Header().IncompatibleFlags))
	}
	q := Query{Units: []string{"kubelet", "containerd"}}
	all, matched := 0, 0
	if err := f.Walk(context.Background(), func(e *Entry) error {
		all++
		if q.Match(e) {
			matched++
		}
		for _, fl := range e.Fields {
			if fl.Name == "_HOSTNAME" {
				t.Errorf("entry %d names a host", e.Seqnum)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if matched < 40 || matched > 60 || all <= matched {
		t.Errorf("%d entries, %d of kubelet and containerd; want about 50 among others", all, matched)
	}
	if n := countCompressed(b)[objCompressedZSTD]; n == 0 {
		t.Errorf("no zstd-compressed data object")
	}
}

// fuzzLimits keep one fuzz input's work small.
var fuzzLimits = Limits{MaxDataSize: 1 << 20, MaxFileData: 8 << 20, MaxItems: 4096}

// FuzzOpen feeds damaged journal files to Open and Walk: they must not
// panic, and the work is bounded: entries move strictly forward through
// the file, so there are at most size/64 of them, and every JSON line is
// well formed.
func FuzzOpen(f *testing.F) {
	lab := readLabFixture(f)
	f.Add(dropHashTables(lab))
	// Files the real tools write, in every layout and compression, when
	// the tools are here.
	if _, err := exec.LookPath("journalctl"); err == nil {
		if _, err := os.Stat("/usr/lib/systemd/systemd-journal-remote"); err == nil {
			for _, c := range []struct {
				compact bool
				algo    byte
			}{{true, objCompressedZSTD}, {false, objCompressedXZ}, {true, objCompressedLZ4}, {false, 0}} {
				f.Add(dropHashTables(smallFixture(f, 12, c.compact, c.algo == objCompressedZSTD, c.algo)))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		jf, err := OpenWithLimits(bytes.NewReader(data), int64(len(data)), fuzzLimits)
		if err != nil {
			if !errors.Is(err, ErrNotJournal) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Open error wraps neither ErrNotJournal nor ErrUnsupported: %v", err)
			}
			return
		}
		n := 0
		var last int64
		err = jf.Walk(context.Background(), func(e *Entry) error {
			n++
			if e.Offset <= last {
				t.Fatalf("entry at %d after one at %d", e.Offset, last)
			}
			last = e.Offset
			line := AppendJSON(nil, jf.Header().SeqnumID, e)
			if !jsonValid(line) {
				t.Fatalf("invalid JSON line %q", line)
			}
			return nil
		})
		if n > len(data)/entryItemsOffset {
			t.Fatalf("%d entries from %d bytes", n, len(data))
		}
		var ce *CorruptError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("Walk error is not a CorruptError: %v", err)
		}
	})
}

// TestDropHashTables checks the fuzz seeds: a real file without its hash
// tables still reads to the same entries, and is small.
func TestDropHashTables(t *testing.T) {
	lab := readLabFixture(t)
	small := dropHashTables(lab)
	if len(small) > 64<<10 {
		t.Errorf("seed is %d bytes", len(small))
	}
	read := func(b []byte) []string {
		f, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		if err := f.Walk(context.Background(), func(e *Entry) error {
			lines = append(lines, string(AppendJSON(nil, f.Header().SeqnumID, e)))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return lines
	}
	a, b := read(lab), read(small)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d entries, %d without hash tables", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("entry %d differs:\n%s\n%s", i, a[i], b[i])
		}
	}
}
