package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// smallFixture builds a journal file with n entries and returns its bytes
// cut after the last object (the rest of a journal file is preallocated
// zeros).
func smallFixture(t testing.TB, n int, compact, compress bool, algo byte) []byte {
	t.Helper()
	_, remote := systemdTools(t)
	path := filepath.Join(t.TempDir(), "system.journal")
	buildJournal(t, remote, path, genExport(genOpts{seed: 7, n: n, bootID: "0123456789abcdef0123456789abcdef",
		realtime: 1_764_496_800_000_000, step: 1000}), compact, compress)
	if algo == objCompressedXZ || algo == objCompressedLZ4 {
		transcode(t, path, algo)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[:scanObjects(b, func(int, byte, byte, int) {})]
}

// objectsStart is where the objects after the two hash tables begin: the
// reader does not use the hash tables, so damage there changes nothing.
func objectsStart(b []byte) int {
	le := binary.LittleEndian
	end := max(le.Uint64(b[104:])+le.Uint64(b[112:]), le.Uint64(b[120:])+le.Uint64(b[128:]), le.Uint64(b[88:]))
	return int(end+7) &^ 7
}

// exportLines runs Export on a directory holding only data as one file.
func exportLines(t testing.TB, data []byte) ([][]byte, Stats) {
	t.Helper()
	dir := fixtureDir(t, "", "system.journal~", data)
	_, st, out := exportJSON(t, dir, Query{})
	return bytes.SplitAfter(out, []byte("\n"))[:bytes.Count(out, []byte("\n"))], st
}

// TestTruncated cuts real journal files at many offsets, as a crash or a
// copy of a file being written leaves them: Export must return a prefix of
// the entries of the whole file, exactly, and report that it stopped.
func TestTruncated(t *testing.T) {
	for _, c := range []struct {
		compact bool
		algo    byte
	}{{true, objCompressedZSTD}, {false, objCompressedXZ}, {true, objCompressedLZ4}, {false, 0}} {
		t.Run(fmt.Sprintf("compact=%t/%s", c.compact, algoNames[c.algo]), func(t *testing.T) {
			t.Parallel()
			full := smallFixture(t, 300, c.compact, c.algo == objCompressedZSTD, c.algo)
			truth, st := exportLines(t, full)
			if len(truth) != 300 || len(st.Problems) != 0 {
				t.Fatalf("whole file: %d entries, problems %v", len(truth), st.Problems)
			}
			r := rand.New(rand.NewPCG(11, 12))
			start := objectsStart(full)
			cuts := []int{0, 7, 100, 207, 263, start, len(full) - 1, len(full) - 8, len(full) - 100}
			for range map[bool]int{false: 60, true: 15}[testing.Short()] {
				cuts = append(cuts, start+r.IntN(len(full)-start))
			}
			partial := 0
			for _, cut := range cuts {
				got, st := exportLines(t, full[:cut])
				if len(st.Problems) == 0 {
					t.Errorf("cut at %d of %d: no problem reported", cut, len(full))
				}
				if len(got) > len(truth) {
					t.Fatalf("cut at %d: %d entries, more than the %d of the whole file", cut, len(got), len(truth))
				}
				for i := range got {
					if !bytes.Equal(got[i], truth[i]) {
						t.Fatalf("cut at %d: entry %d is not the whole file's:\n%.300s\nwant\n%.300s", cut, i, got[i], truth[i])
					}
				}
				if len(got) > 0 && len(got) < len(truth) {
					partial++
				}
			}
			if partial < len(cuts)/3 {
				t.Errorf("only %d of %d cuts gave a partial export: the cuts miss the entries", partial, len(cuts))
			}
		})
	}
}

// content is an exported entry without what no hash protects (cursor,
// timestamps, boot ID): what a damaged file must never make up.
func content(t testing.TB, line []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("bad JSON %.200q: %v", line, err)
	}
	for _, k := range []string{"__CURSOR", "__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP", "_BOOT_ID"} {
		delete(m, k)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// TestCorrupted flips bytes of real journal files: Export must not panic,
// must not invent entries (every entry's fields are those of an entry of
// the intact file, checked through the entry's xor_hash) and must report
// the damage it runs into.
func TestCorrupted(t *testing.T) {
	for _, c := range []struct {
		compact bool
		algo    byte
	}{{true, objCompressedZSTD}, {false, objCompressedLZ4}, {true, objCompressedXZ}, {false, 0}} {
		t.Run(fmt.Sprintf("compact=%t/%s", c.compact, algoNames[c.algo]), func(t *testing.T) {
			t.Parallel()
			full := smallFixture(t, 200, c.compact, c.algo == objCompressedZSTD, c.algo)
			truth, _ := exportLines(t, full)
			real := map[string]bool{}
			for _, l := range truth {
				real[content(t, l)] = true
			}
			r := rand.New(rand.NewPCG(21, uint64(c.algo)))
			reported := 0
			rounds := map[bool]int{false: 100, true: 25}[testing.Short()]
			for round := range rounds {
				b := bytes.Clone(full)
				var at []int
				start := objectsStart(b)
				for range 1 + r.IntN(4) {
					// Mostly objects, now and then the header.
					i := start + r.IntN(len(b)-start)
					if r.IntN(10) == 0 {
						i = r.IntN(272)
					}
					b[i] ^= byte(1 + r.IntN(255))
					at = append(at, i)
				}
				got, st := exportLines(t, b)
				if len(st.Problems) > 0 {
					reported++
				}
				for _, l := range got {
					if !real[content(t, l)] {
						t.Errorf("round %d (bytes %v flipped): invented entry %.300s", round, at, l)
					}
				}
			}
			if reported < rounds/4 {
				t.Errorf("only %d of %d damaged files reported a problem", reported, rounds)
			}
		})
	}
}

func jsonValid(b []byte) bool { return json.Valid(b) }
