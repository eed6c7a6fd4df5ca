package journal

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// exportJSON runs Export on dir and parses its output.
func exportJSON(t testing.TB, dir string, q Query) ([]map[string]any, Stats, []byte) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var out bytes.Buffer
	st, err := Export(context.Background(), root, ".", q, &out)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return parseLines(t, out.Bytes()), st, out.Bytes()
}

// compareEntries checks got against journalctl's want entry by entry and
// field by field; nothing is ignored, the cursor included.
func compareEntries(t *testing.T, want, got []map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("Export wrote %d entries, journalctl %d", len(got), len(want))
	}
	bad := 0
	for i := 0; i < min(len(got), len(want)); i++ {
		if reflect.DeepEqual(got[i], want[i]) {
			continue
		}
		if bad++; bad > 5 {
			t.Errorf("... more entries differ")
			return
		}
		var keys []string
		for k := range want[i] {
			keys = append(keys, k)
		}
		for k := range got[i] {
			if _, ok := want[i][k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !reflect.DeepEqual(got[i][k], want[i][k]) {
				t.Errorf("entry %d field %s: Export %.200v, journalctl %.200v", i, k, got[i][k], want[i][k])
			}
		}
	}
}

// algoNames names the compressions of the fixture matrix.
var algoNames = map[byte]string{0: "none", objCompressedXZ: "xz", objCompressedLZ4: "lz4", objCompressedZSTD: "zstd"}

// TestDifferentialJournalctl builds journal files with the real
// systemd-journal-remote, compact and not, uncompressed, zstd-compressed by
// the tool, and XZ- and LZ4-compressed (transcoded in place, since systemd
// 252 always compresses with its build default), and compares Export with
// journalctl on each, for all entries and for -u kubelet -u containerd.
func TestDifferentialJournalctl(t *testing.T) {
	journalctl, remote := systemdTools(t)
	const n = 3000
	export := genExport(genOpts{seed: 1, n: n, bootID: "0123456789abcdef0123456789abcdef",
		realtime: 1_764_496_800_000_000, step: 1000})
	for _, compact := range []bool{false, true} {
		for _, algo := range []byte{0, objCompressedZSTD, objCompressedXZ, objCompressedLZ4} {
			t.Run(fmt.Sprintf("compact=%t/%s", compact, algoNames[algo]), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				path := filepath.Join(dir, "system.journal")
				buildJournal(t, remote, path, export, compact, algo == objCompressedZSTD)
				if algo == objCompressedXZ || algo == objCompressedLZ4 {
					transcode(t, path, algo)
				}
				img, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				counts := countCompressed(img)
				if algo != 0 && counts[algo] == 0 {
					t.Fatalf("no data object is %s-compressed: %v", algoNames[algo], counts)
				}
				for name, q := range map[string]Query{"all": {}, "units": {Units: []string{"kubelet", "containerd.service"}}} {
					args := []string{"--file", path}
					if name == "units" {
						args = append(args, "-u", "kubelet.service", "-u", "containerd.service")
					}
					want := journalctlJSON(t, journalctl, args...)
					got, st, _ := exportJSON(t, dir, q)
					if len(st.Problems) != 0 || st.Files != 1 || st.Entries != n {
						t.Errorf("%s: stats %+v, want 1 file, %d entries, no problems", name, st, n)
					}
					if name == "units" && (len(want) < n/3 || len(want) > n*9/10) {
						t.Errorf("journalctl -u selected %d of %d entries: the fixture does not exercise the filter", len(want), n)
					}
					compareEntries(t, want, got)
					t.Logf("%s: %d entries compared (data objects by compression flag: %v)", name, len(want), counts)
				}
			})
		}
	}
}

// TestDifferentialMergedDirectory compares Export with journalctl -D on a
// node-like directory: a machine-id folder with an archived file, the
// current file, whose entries interleave in time with the archived ones
// (another boot), and a duplicate of the archived file.
func TestDifferentialMergedDirectory(t *testing.T) {
	journalctl, remote := systemdTools(t)
	dir := t.TempDir()
	mdir := filepath.Join(dir, "ec2d1a3c0b8a4b6f9e2d7c5b4a391827")
	if err := os.Mkdir(mdir, 0o700); err != nil {
		t.Fatal(err)
	}
	a := genExport(genOpts{seed: 2, n: 800, bootID: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", realtime: 1_764_496_800_000_000, step: 2000})
	b := genExport(genOpts{seed: 3, n: 800, bootID: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", realtime: 1_764_496_800_001_000, step: 2000})
	archived := filepath.Join(mdir, "system@0000000000000001-0000000000000320.journal~")
	tmp := filepath.Join(dir, "a.journal")
	buildJournal(t, remote, tmp, a, true, true)
	if err := os.Rename(tmp, archived); err != nil {
		t.Fatal(err)
	}
	buildJournal(t, remote, filepath.Join(mdir, "system.journal"), b, false, true)
	dup, err := os.ReadFile(archived)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mdir, "system@copy.journal~"), dup, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]Query{"all": {}, "units": {Units: []string{"kubelet", "containerd"}}} {
		args := []string{"-D", dir}
		if name == "units" {
			args = append(args, "-u", "kubelet", "-u", "containerd")
		}
		want := journalctlJSON(t, journalctl, args...)
		got, st, _ := exportJSON(t, dir, q)
		if st.Files != 3 || st.Entries != 2400 || len(st.Problems) != 0 {
			t.Errorf("%s: stats %+v, want 3 files, 2400 entries read, no problems", name, st)
		}
		if name == "all" && len(want) != 1600 {
			t.Errorf("journalctl -D shows %d entries, want 1600: duplicates not removed?", len(want))
		}
		compareEntries(t, want, got)
		t.Logf("%s: %d merged entries compared", name, len(want))
	}
}
