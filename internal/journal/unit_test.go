package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMangleUnit(t *testing.T) {
	for in, want := range map[string]string{
		"kubelet":            "kubelet.service",
		"containerd.service": "containerd.service",
		"system.slice":       "system.slice",
		"docker.socket":      "docker.socket",
		"kubepods.slice.d":   "kubepods.slice.d.service",
		".service":           ".service.service",
	} {
		if got := MangleUnit(in); got != want {
			t.Errorf("MangleUnit(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestQueryMatch pins the journalctl -u rule on hand-made entries; the
// differential test checks the same rule against journalctl itself.
func TestQueryMatch(t *testing.T) {
	entry := func(kv ...string) *Entry {
		e := &Entry{}
		for i := 0; i < len(kv); i += 2 {
			e.Fields = append(e.Fields, Field{Name: kv[i], Value: []byte(kv[i+1])})
		}
		return e
	}
	q := Query{Units: []string{"kubelet"}}
	for _, c := range []struct {
		e    *Entry
		want bool
	}{
		{entry("_SYSTEMD_UNIT", "kubelet.service"), true},
		{entry("_SYSTEMD_UNIT", "kubelet"), false},
		{entry("UNIT", "kubelet.service", "_PID", "1"), true},
		{entry("UNIT", "kubelet.service", "_PID", "10"), false},
		{entry("OBJECT_SYSTEMD_UNIT", "kubelet.service", "_UID", "0"), true},
		{entry("OBJECT_SYSTEMD_UNIT", "kubelet.service", "_UID", "1000"), false},
		{entry("COREDUMP_UNIT", "kubelet.service", "_UID", "0", "MESSAGE_ID", coredumpMessageID), true},
		{entry("COREDUMP_UNIT", "kubelet.service", "_UID", "0"), false},
		{entry("_SYSTEMD_UNIT", "containerd.service"), false},
	} {
		if got := q.Match(c.e); got != c.want {
			t.Errorf("Match(%v) = %t, want %t", c.e.Fields, got, c.want)
		}
	}
	if !(Query{}).Match(entry("A", "b")) {
		t.Error("an empty query must match everything")
	}
	if !(Query{Units: []string{"system.slice"}}).Match(entry("_SYSTEMD_SLICE", "system.slice")) {
		t.Error("a slice must match _SYSTEMD_SLICE")
	}
}

func TestPrintable(t *testing.T) {
	for v, want := range map[string]bool{
		"plain": true, "a\nb\tc": true, "grüße 🙂": true, "": true,
		"\x00": false, "\x1b[0m": false, "\x7f": false, "\u0085": false, "\xff": false,
		"\ufffe": false, "\ufdd0": false, "\xed\xa0\x80": false, "\xc0\xaf": false, "\r": false,
	} {
		if got := printable([]byte(v)); got != want {
			t.Errorf("printable(%q) = %t, want %t", v, got, want)
		}
	}
}

// TestUnknownIncompatibleFlag: a file with a feature this reader does not
// know is refused with a message naming it, and Export reports it.
func TestUnknownIncompatibleFlag(t *testing.T) {
	b := readLabFixture(t)
	binary.LittleEndian.PutUint32(b[12:], binary.LittleEndian.Uint32(b[12:])|1<<5)
	_, err := Open(bytes.NewReader(b), int64(len(b)))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "unknown incompatible flags 0x20") {
		t.Fatalf("Open: %v, want ErrUnsupported naming 0x20", err)
	}
	dir := fixtureDir(t, "", "system.journal", b)
	got, st, _ := exportJSON(t, dir, Query{})
	if len(got) != 0 || st.Files != 1 || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "0x20") {
		t.Errorf("Export: %d entries, stats %+v", len(got), st)
	}
	if _, err := Open(bytes.NewReader([]byte("not a journal at all, not at all")), 32); !errors.Is(err, ErrNotJournal) {
		t.Errorf("Open of garbage: %v, want ErrNotJournal", err)
	}
}

// TestLimits: a data object over MaxDataSize and a file over MaxFileData
// stop reading with a CorruptError after the entries before them.
func TestLimits(t *testing.T) {
	b := readLabFixture(t)
	for _, lim := range []Limits{{MaxDataSize: 600}, {MaxFileData: 10000}} {
		f, err := OpenWithLimits(bytes.NewReader(b), int64(len(b)), lim)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		err = f.Walk(context.Background(), func(*Entry) error { n++; return nil })
		var ce *CorruptError
		if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "limit") || ce.Entries != n || n == 0 {
			t.Errorf("limits %+v: %d entries, error %v", lim, n, err)
		}
	}
}

// TestExportCancelled: a cancelled context ends Export with its error.
func TestExportCancelled(t *testing.T) {
	dir := fixtureDir(t, "", "system.journal", readLabFixture(t))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Export(ctx, root, ".", Query{}, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Export: %v, want context.Canceled", err)
	}
	if _, err := Export(context.Background(), root, filepath.Join("no", "such"), Query{}, &bytes.Buffer{}); err == nil {
		t.Error("Export of a missing directory: no error")
	}
}

// TestOnlineFile: a file journald is still writing (state ONLINE, the
// header already counting entries not yet linked) yields every linked
// entry and a problem saying where the chain ended.
func TestOnlineFile(t *testing.T) {
	b := readLabFixture(t)
	full, st, _ := exportJSON(t, fixtureDir(t, "", "system.journal", b), Query{})
	if len(full) == 0 || len(st.Problems) != 0 {
		t.Fatalf("intact file: %d entries, problems %v", len(full), st.Problems)
	}
	b[16] = StateOnline
	n := binary.LittleEndian.Uint64(b[152:])
	binary.LittleEndian.PutUint64(b[152:], n+3)
	got, st, _ := exportJSON(t, fixtureDir(t, "", "system.journal", b), Query{})
	if len(got) != len(full) || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], fmt.Sprintf("ends after %d of the %d entries", n, n+3)) {
		t.Errorf("online file: %d of %d entries, problems %v", len(got), len(full), st.Problems)
	}
}
