package evidence_test

import (
	"archive/tar"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
)

var sealAt = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

func newSigner(t *testing.T) (*evidence.Signer, evidence.KeyRing) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys := evidence.KeyRing{}
	keys.Add(pub)
	return evidence.NewSigner(priv), keys
}

// tickingClock returns a clock that advances one millisecond per call; it
// is safe for concurrent use.
func tickingClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)) * time.Millisecond) }
}

// caseClock is the clock of every case openCase opens: one clock for the
// whole test binary, so that reopening a case never moves time back (custody
// records refuse to run backwards).
var caseClock = tickingClock()

func openCase(t *testing.T, dir, incident string, s *evidence.Signer) *evidence.Case {
	t.Helper()
	return openCaseClock(t, dir, incident, s, caseClock)
}

// openCaseClock opens a case with the clock now; reopening a case with the
// same clock keeps its custody times running forward, as a real clock does.
func openCaseClock(t *testing.T, dir, incident string, s *evidence.Signer, now func() time.Time) *evidence.Case {
	t.Helper()
	c, err := evidence.OpenCase(context.Background(), evidence.CaseOptions{
		Dir: dir, Incident: incident, Signer: s, Tool: "eksir test", Actor: "tester",
		Collector: evidence.Collector{OSUser: "tester"}, Now: now,
	})
	if err != nil {
		t.Fatalf("OpenCase: %v", err)
	}
	return c
}

func add(t *testing.T, c *evidence.Case, rel, content string) evidence.Item {
	t.Helper()
	it, err := c.Add(context.Background(), rel, evidence.ItemInfo{Method: "test"}, stringReader(content))
	if err != nil {
		t.Fatalf("Add %s: %v", rel, err)
	}
	return it
}

type stringReaderT struct {
	s string
	i int
}

func (r *stringReaderT) Read(p []byte) (int, error) {
	if r.i >= len(r.s) {
		return 0, io.EOF
	}
	n := copy(p, r.s[r.i:])
	r.i += n
	return n, nil
}

func stringReader(s string) io.Reader { return &stringReaderT{s: s} }

func sealOpts(s *evidence.Signer, out, compress string) evidence.SealOptions {
	return evidence.SealOptions{
		OutDir: out, Compress: compress, SealTime: sealAt, Signer: s,
		SourceOrganization: "test lab", Examiner: "examiner", Tool: "eksir test", Actor: "tester",
	}
}

// verifyOK verifies target with keys and fails the test on any failing check.
func verifyOK(t *testing.T, target string, keys evidence.KeyRing) *evidence.Report {
	t.Helper()
	rep, err := evidence.Verify(context.Background(), target, evidence.VerifyOptions{Keys: keys})
	if err != nil {
		t.Fatalf("Verify %s: %v", target, err)
	}
	if !rep.OK || !rep.Custody.OK {
		t.Fatalf("Verify %s failed: %+v", target, rep.Failed())
	}
	return rep
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// archiveFile returns the content of bag-relative name from an uncompressed
// archive.
func archiveFile(t *testing.T, archive, name string) []byte {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in %s: %v", name, archive, err)
		}
		if _, rel, _ := cutTop(h.Name); rel == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

func cutTop(name string) (string, string, bool) {
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			return name[:i], name[i+1:], true
		}
	}
	return name, "", false
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func custodyPath(c *evidence.Case) string {
	return filepath.Join(c.Dir(), "metadata", "custody.jsonl")
}
