package evidence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var sampleTree = map[string]string{
	"a.txt": "alpha\n", "empty": "", "sub/b.txt": "beta\n", "sub/deeper/c.log": strings.Repeat("c\n", 5000),
	"50%.txt": "percent\n", "new\nline": "newline\n",
}

// TestSealDeterministic: the same input sealed twice with the same seal time
// gives byte-identical archives and sidecars.
func TestSealDeterministic(t *testing.T) {
	signer, keys := newSigner(t)
	src := t.TempDir()
	writeTree(t, src, sampleTree)
	for _, compress := range []string{evidence.CompressZstd, evidence.CompressNone} {
		t.Run("SealDir-"+compress, func(t *testing.T) {
			var archives [][]byte
			var firstArchive []byte
			for i := 0; i < 2; i++ {
				opts := sealOpts(signer, t.TempDir(), compress)
				opts.Incident = "DET-1"
				res, err := evidence.SealDir(context.Background(), src, opts)
				if err != nil {
					t.Fatal(err)
				}
				verifyOK(t, res.Archive, keys)
				if i == 0 {
					firstArchive = readFile(t, res.Archive)
				}
				archives = append(archives, append(readFile(t, res.Archive), readFile(t, res.Sidecar)...))
			}
			if !bytes.Equal(archives[0], archives[1]) {
				t.Error("SealDir twice with the same seal time gave different bytes")
			}
			// The seal time is what makes the archive: another one changes it.
			opts := sealOpts(signer, t.TempDir(), compress)
			opts.Incident, opts.SealTime = "DET-1", sealAt.Add(time.Second)
			res, err := evidence.SealDir(context.Background(), src, opts)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(readFile(t, res.Archive), firstArchive) {
				t.Error("a different seal time gave the same archive")
			}
		})
	}
	t.Run("SealCase", func(t *testing.T) {
		dir := t.TempDir()
		c := openCase(t, dir, "DET-2", signer)
		for rel, content := range map[string]string{"a.txt": "alpha\n", "empty": "", "sub/b.txt": "beta\n", "50%.txt": "p\n"} {
			add(t, c, rel, content)
		}
		records := func(c *evidence.Case) int64 { _, n := c.Log().Head(); return n }
		for i, compress := range []string{evidence.CompressZstd, evidence.CompressNone} {
			var first []byte
			for j := 0; j < 3; j++ {
				if j == 2 {
					// Across a reopen, as a second eksir run would.
					if err := c.Close(); err != nil {
						t.Fatal(err)
					}
					c = openCase(t, dir, "DET-2", signer)
				}
				res, err := evidence.SealCase(context.Background(), c, sealOpts(signer, t.TempDir(), compress))
				if err != nil {
					t.Fatal(err)
				}
				verifyOK(t, res.Archive, keys)
				b := append(readFile(t, res.Archive), readFile(t, res.Sidecar)...)
				if j == 0 {
					first = b
				} else if !bytes.Equal(first, b) {
					t.Errorf("%s: seal %d differs from the first", compress, j+1)
				}
				// One sealed record per archive name, however often it is re-sealed.
				if got, want := records(c), int64(4+i+1); got != want {
					t.Errorf("%s: seal %d: %d custody records, want %d", compress, j+1, got, want)
				}
			}
		}
		recs := c.Log().Records()
		sealed := 0
		for _, r := range recs {
			if r.Action == evidence.ActionSealed {
				sealed++
			}
		}
		if sealed != 2 {
			t.Errorf("%d sealed records, want 2 (one per archive)", sealed)
		}
		c.Close()
	})
}

// TestSealCaseDetectsChangedItem: an item changed after acquisition aborts
// the seal, names the item, and leaves no archive and no sealed record.
func TestSealCaseDetectsChangedItem(t *testing.T) {
	signer, _ := newSigner(t)
	for _, tc := range []struct {
		name   string
		change func(p string) error
	}{
		{"same-size-other-bytes", func(p string) error { return os.WriteFile(p, []byte("BETA\n"), 0o600) }},
		{"grown", func(p string) error { return os.WriteFile(p, []byte("beta and more\n"), 0o600) }},
		{"shrunk", func(p string) error { return os.WriteFile(p, []byte("b\n"), 0o600) }},
		{"deleted", os.Remove},
		{"replaced-by-link", func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Symlink("/etc/hostname", p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := openCase(t, t.TempDir(), "CHG-1", signer)
			defer c.Close()
			add(t, c, "a.txt", "alpha\n")
			add(t, c, "sub/b.txt", "beta\n")
			add(t, c, "z.txt", "zulu\n")
			logBefore := readFile(t, custodyPath(c))
			if err := tc.change(filepath.Join(c.Dir(), "data", "sub", "b.txt")); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out")
			_, err := evidence.SealCase(context.Background(), c, sealOpts(signer, out, evidence.CompressZstd))
			if !errors.Is(err, evidence.ErrVerification) || !strings.Contains(err.Error(), "data/sub/b.txt") {
				t.Fatalf("SealCase: err %v, want a verification error naming data/sub/b.txt", err)
			}
			if left := listDir(t, out); len(left) > 0 {
				t.Errorf("aborted seal left %q", left)
			}
			if !bytes.Equal(readFile(t, custodyPath(c)), logBefore) {
				t.Error("aborted seal changed the custody log")
			}
		})
	}
}

// TestSealRecordsTheSealTime: without an explicit seal time, the custody
// records and the item index carry the time of sealing, not the zero time.
func TestSealRecordsTheSealTime(t *testing.T) {
	signer, keys := newSigner(t)
	zero := evidence.FormatTime(time.Time{})
	check := func(t *testing.T, rep *evidence.Report, from int) {
		t.Helper()
		sealedAt := rep.Statement.Predicate.SealedAt
		if sealedAt == zero {
			t.Fatalf("statement sealedAt is the zero time")
		}
		for _, rc := range rep.Custody.Records[from:] {
			if rc.Record.Time != sealedAt {
				t.Errorf("record %d (%s): time %s, want the seal time %s", rc.Record.Seq, rc.Record.Action, rc.Record.Time, sealedAt)
			}
		}
	}
	t.Run("SealDir", func(t *testing.T) {
		src := t.TempDir()
		writeTree(t, src, map[string]string{"a.txt": "a\n"})
		opts := sealOpts(signer, t.TempDir(), evidence.CompressNone)
		opts.Incident, opts.SealTime = "TIME-1", time.Time{}
		res, err := evidence.SealDir(context.Background(), src, opts)
		if err != nil {
			t.Fatal(err)
		}
		rep := verifyOK(t, res.Archive, keys)
		check(t, rep, 0)
		var ix evidence.Index
		if err := json.Unmarshal(archiveFile(t, res.Archive, "metadata/items.json"), &ix); err != nil {
			t.Fatal(err)
		}
		for _, it := range ix.Items {
			if it.AcquisitionStart != rep.Statement.Predicate.SealedAt || it.AcquisitionEnd != rep.Statement.Predicate.SealedAt {
				t.Errorf("%s acquired %s..%s, want the seal time %s", it.Path, it.AcquisitionStart, it.AcquisitionEnd, rep.Statement.Predicate.SealedAt)
			}
		}
	})
	t.Run("SealCase", func(t *testing.T) {
		c := openCase(t, t.TempDir(), "TIME-2", signer)
		defer c.Close()
		add(t, c, "a.txt", "a\n")
		opts := sealOpts(signer, t.TempDir(), evidence.CompressZstd)
		opts.SealTime = time.Time{}
		res, err := evidence.SealCase(context.Background(), c, opts)
		if err != nil {
			t.Fatal(err)
		}
		check(t, verifyOK(t, res.Archive, keys), 1)
	})
}
