package report_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/report"
)

// sealFixture copies the committed case and seals it with the fixture key
// at a fixed time, uncompressed so that a test can flip a payload byte.
func sealFixture(t *testing.T) (evidence.SealResult, string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, fixtureIncident)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(fixtureCaseRoot, fixtureIncident))); err != nil {
		t.Fatal(err)
	}
	sealAt := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return sealAt }
	c, err := evidence.OpenCase(t.Context(), evidence.CaseOptions{Dir: root, Incident: fixtureIncident, Signer: fixtureSigner(), Tool: "eksir test", Actor: "responder@lab", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := evidence.SealCase(t.Context(), c, evidence.SealOptions{Incident: fixtureIncident, OutDir: t.TempDir(), Compress: evidence.CompressNone,
		SealTime: sealAt, Signer: fixtureSigner(), Tool: "eksir test", Actor: "responder@lab", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return res, dir
}

// TestFromArchive builds the report of the sealed fixture in Verify's one
// pass: it verifies, lists what the case's report lists, and reads the
// snapshot descriptor from the archive.
func TestFromArchive(t *testing.T) {
	res, _ := sealFixture(t)
	fromCase := fixtureReport(t)
	r, err := report.FromArchive(t.Context(), res.Archive, report.Options{Keys: fixtureKeys(), Now: generatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if r.Integrity.Status != report.IntegrityVerified || !r.Integrity.Pinned {
		t.Fatalf("integrity %+v", r.Integrity)
	}
	if r.Source.Kind != report.SourceArchive || r.Source.ArchiveSHA256 != res.SHA256 || r.Source.Incident != fixtureIncident {
		t.Errorf("source %+v, archive sha256 %s", r.Source, res.SHA256)
	}
	if r.Summary.SealedAt != "2026-11-30T10:00:00.000000000Z" {
		t.Errorf("sealed at %q", r.Summary.SealedAt)
	}
	if len(r.Evidence) != len(fromCase.Evidence) || len(r.NotCollected) != len(fromCase.NotCollected) {
		t.Fatalf("archive lists %d+%d items, case %d+%d", len(r.Evidence), len(r.NotCollected), len(fromCase.Evidence), len(fromCase.NotCollected))
	}
	for i := range r.Evidence {
		if r.Evidence[i] != fromCase.Evidence[i] {
			t.Errorf("item %d: archive %+v, case %+v", i, r.Evidence[i], fromCase.Evidence[i])
		}
	}
	if len(r.Snapshots) == 0 || r.Snapshots[0].VolumeID == "" || r.Snapshots[0] != fromCase.Snapshots[0] {
		t.Errorf("snapshots: archive %+v, case %+v", r.Snapshots, fromCase.Snapshots)
	}
	last := r.Custody[len(r.Custody)-1]
	if last.Action != evidence.ActionSealed || len(r.Custody) != len(fromCase.Custody)+1 {
		t.Errorf("custody: %d entries ending with %+v; the case has %d", len(r.Custody), last, len(fromCase.Custody))
	}
	for _, c := range r.Custody {
		if !c.OK {
			t.Errorf("custody record %d: %s", c.Seq, c.Problem)
		}
	}
	// The instructions run as they are: the sidecar check and the POSIX
	// script (from the repository root, with KEY.pub the examiner's key).
	pub := filepath.Join(t.TempDir(), "KEY.pub")
	if err := os.WriteFile(pub, evidence.EncodePublicKey(fixtureSigner().Public()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, in := range r.Verify {
		if !strings.Contains(in.Title, "coreutils") && !strings.Contains(in.Title, "POSIX script") {
			continue
		}
		for _, cmd := range in.Commands {
			sh := exec.CommandContext(t.Context(), "sh", "-c", strings.ReplaceAll(cmd, "KEY.pub", pub))
			sh.Dir = ".."
			if out, err := sh.CombinedOutput(); err != nil {
				t.Errorf("%q: %v\n%s", cmd, err, out)
			}
		}
	}
	// Without a key: the key in the bag, not pinned.
	r, err = report.FromArchive(t.Context(), res.Archive, report.Options{Now: generatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if r.Integrity.Status != report.IntegrityUnpinned || r.Integrity.Pinned {
		t.Errorf("without a key: %+v", r.Integrity)
	}
}

// TestFromArchiveTampered flips one payload byte of the sealed fixture:
// the report still builds, says tampered at the very top of the Markdown
// and lists the failed checks.
func TestFromArchiveTampered(t *testing.T) {
	res, dir := sealFixture(t)
	cl, err := evidence.ReadCase(t.Context(), dir, fixtureKeys())
	if err != nil {
		t.Fatal(err)
	}
	var victim evidence.Item
	for _, it := range cl.Items {
		if it.Status == evidence.StatusCollected && it.Size > 64 && !strings.Contains(it.Path, "/snapshots/") {
			victim = it
			break
		}
	}
	content, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(victim.Path)))
	if err != nil {
		t.Fatal(err)
	}
	tar, err := os.ReadFile(res.Archive)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(tar, content)
	if at < 0 {
		t.Fatalf("%s not found in the archive", victim.Path)
	}
	tar[at+len(content)/2] ^= 0x01
	if err := os.WriteFile(res.Archive, tar, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := report.FromArchive(t.Context(), res.Archive, report.Options{Keys: fixtureKeys(), Now: generatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if r.Integrity.Status != report.IntegrityTampered {
		t.Fatalf("integrity %+v", r.Integrity)
	}
	found := false
	for _, c := range r.Integrity.Checks {
		if c.Status == evidence.StatusFail && c.Name == "payload-checksum" && c.Path == victim.Path {
			found = true
		}
	}
	if !found {
		t.Errorf("no failed payload-checksum check for %s in %+v", victim.Path, r.Integrity.Checks)
	}
	js, md := render(t, r)
	first, _, _ := strings.Cut(md, "\n")
	if !strings.Contains(first, "TAMPERED") || !strings.Contains(md, "`"+victim.Path+"`") {
		t.Errorf("the Markdown does not open with the tampering:\n%s", md[:min(len(md), 800)])
	}
	if !strings.Contains(js, `"status": "tampered"`) {
		t.Error("the JSON does not say tampered")
	}
	if len(r.Evidence) == 0 || len(r.Timeline) == 0 {
		t.Error("a tampered archive's report lost its content")
	}
}

// TestFromCaseTampered edits one custody record of a copy of the fixture:
// the record and every later one fail; and a case read without a key is
// only unpinned.
func TestFromCaseTampered(t *testing.T) {
	dir := filepath.Join(t.TempDir(), fixtureIncident)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(fixtureCaseRoot, fixtureIncident))); err != nil {
		t.Fatal(err)
	}
	r, err := report.FromCase(t.Context(), dir, report.Options{Now: generatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if r.Integrity.Status != report.IntegrityUnpinned {
		t.Errorf("without a key: %+v", r.Integrity)
	}
	p := filepath.Join(dir, "metadata", "custody.jsonl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(b, []byte(`"status":"succeeded"`), []byte(`"status":"succeedeD"`), 1)
	if bytes.Equal(edited, b) {
		t.Fatal("nothing to edit")
	}
	if err := os.WriteFile(p, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err = report.FromCase(t.Context(), dir, report.Options{Keys: fixtureKeys(), Now: generatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if r.Integrity.Status != report.IntegrityTampered || len(r.Integrity.Checks) == 0 {
		t.Fatalf("integrity %+v", r.Integrity)
	}
	bad := 0
	for _, c := range r.Custody {
		if !c.OK {
			bad++
		}
	}
	if bad == 0 || r.Custody[len(r.Custody)-1].OK {
		t.Errorf("%d records failed; the last: %+v", bad, r.Custody[len(r.Custody)-1])
	}
}
