package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eksir/eksir/report"
)

// TestReportCase reports on the committed lab-run case (report's fixture)
// in each format: Markdown on stdout by default, JSON chosen by --out's
// extension and written 0600. No key is given, so the case is verified
// unpinned and the command succeeds.
func TestReportCase(t *testing.T) {
	root := t.TempDir()
	cases := filepath.Join(root, "cases")
	if err := os.CopyFS(filepath.Join(cases, "INC-REPORT-1"), os.DirFS(filepath.Join("..", "..", "report", "testdata", "cases", "INC-REPORT-1"))); err != nil {
		t.Fatal(err)
	}
	res := mustRun(t, root, "--case-dir", cases, "report", "--incident", "INC-REPORT-1")
	first, _, _ := strings.Cut(res.stdout, "\n")
	if !strings.Contains(first, "INTEGRITY: verified, signer not pinned") || !strings.Contains(res.stdout, "## Containment") {
		t.Fatalf("markdown on stdout:\n%.600s", res.stdout)
	}
	out := filepath.Join(root, "r.json")
	mustRun(t, root, "--case-dir", cases, "report", "-i", "INC-REPORT-1", "--out", out)
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("report file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(out)
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("--out r.json is not JSON: %v", err)
	}
	if r.Integrity.Status != report.IntegrityUnpinned || r.Source.Kind != report.SourceCase || len(r.Evidence) == 0 {
		t.Errorf("report: integrity %+v, source %+v, %d items", r.Integrity, r.Source, len(r.Evidence))
	}
	html := filepath.Join(root, "r.html")
	res = run(t, root, "--case-dir", cases, "report", "-i", "INC-REPORT-1", "--out", html)
	expectExit(t, res, 0, "report to r.html")
	if b, err := os.ReadFile(html); err != nil || !strings.HasPrefix(string(b), "<!DOCTYPE html>") || !strings.Contains(string(b), "INC-REPORT-1") {
		t.Errorf("--out r.html is not the HTML report: %v %.80q", err, b)
	}
	res = run(t, root, "--case-dir", cases, "report", "-i", "NO-SUCH-CASE")
	expectExit(t, res, 2, "a case that does not exist")
}

// TestReportArchive seals a case with eksir and reports on the archive:
// verified and pinned with --pubkey (exit 0); then with one payload byte
// flipped the report is still written, says TAMPERED first, and the
// command exits 3 like eksir verify.
func TestReportArchive(t *testing.T) {
	root := t.TempDir()
	key, pub := newKey(t)
	payload := strings.Repeat("suspicious binary ", 64)
	cases := newCase(t, root, key, "INC-9", map[string]string{"host/miner.bin": payload})
	out := filepath.Join(root, "out")
	mustRun(t, root, "--case-dir", cases, "seal", "--incident", "INC-9", "--key", key, "--compress", "none", "--out", out)
	archive := filepath.Join(out, "INC-9.tar")
	res := mustRun(t, root, "report", archive, "--pubkey", pub, "--format", "json")
	var r report.Report
	if err := json.Unmarshal([]byte(res.stdout), &r); err != nil {
		t.Fatal(err)
	}
	if r.Integrity.Status != report.IntegrityVerified || len(r.Evidence) != 1 || r.Summary.SealedAt == "" {
		t.Fatalf("report of the sealed archive: %+v, %d items", r.Integrity, len(r.Evidence))
	}
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(b, []byte(payload))
	if at < 0 {
		t.Fatal("payload not found in the archive")
	}
	b[at+10] ^= 1
	if err := os.WriteFile(archive, b, 0o600); err != nil {
		t.Fatal(err)
	}
	md := filepath.Join(root, "tampered.md")
	res = run(t, root, "report", archive, "--pubkey", pub, "--out", md)
	expectExit(t, res, 3, "report of a tampered archive")
	text, err := os.ReadFile(md)
	if err != nil {
		t.Fatalf("the report of a tampered archive was not written: %v", err)
	}
	first, _, _ := strings.Cut(string(text), "\n")
	if !strings.Contains(first, "TAMPERED") || !strings.Contains(string(text), "data/host/miner.bin") {
		t.Errorf("tampered report:\n%.800s", text)
	}
	if !strings.Contains(res.stderr, "failed verification") {
		t.Errorf("stderr: %s", res.stderr)
	}
}
