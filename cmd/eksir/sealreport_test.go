package main

// The incident report sealed into the bag (issue 15): the seal path of
// `eksir seal` and of a drill, with fixed report bytes, checked by every
// verifier a lab may use: eksir verify, eksir-verify, docs/verify-bag.sh and
// the independent BagIt checker; and a report changed after sealing fails
// each of them.

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
	"github.com/eksir/eksir/internal/bagitcheck"
	"github.com/eksir/eksir/report"
)

var fixedReport = map[string][]byte{
	evidence.ReportJSONTag: []byte(`{"apiVersion":"eksir.dev/report/v1","kind":"IncidentReport","summary":{"incident":"INC-RPT"}}` + "\n"),
	evidence.ReportHTMLTag: []byte("<!doctype html>\n<html lang=\"en\"><title>INC-RPT</title><h1>Incident INC-RPT</h1><p>contained</p></html>\n"),
}

// sealedWithReport acquires two items into a case and seals it through
// sealCaseWithReport with build; it returns the archive and the public key.
func sealedWithReport(t *testing.T, incident string, build reportBuilder) (archive, pub string, err error) {
	t.Helper()
	key, pub := newKey(t)
	signer, lerr := evidence.LoadSigner(key)
	if lerr != nil {
		t.Fatal(lerr)
	}
	root := t.TempDir()
	cs, oerr := evidence.OpenCase(context.Background(), evidence.CaseOptions{Dir: filepath.Join(root, "cases"), Incident: incident, Signer: signer, Tool: "eksir test", Actor: "tester"})
	if oerr != nil {
		t.Fatal(oerr)
	}
	defer cs.Close()
	for rel, content := range map[string]string{"k8s/pod.json": `{"kind":"Pod"}` + "\n", "logs/app.log": "line\n"} {
		if _, aerr := cs.Add(context.Background(), rel, evidence.ItemInfo{Method: "test"}, strings.NewReader(content)); aerr != nil {
			t.Fatal(aerr)
		}
	}
	out := filepath.Join(root, "out")
	res, err := sealCaseWithReport(context.Background(), cs, evidence.SealOptions{Incident: incident, OutDir: out, Signer: signer,
		SealTime: time.Now().UTC(), SourceOrganization: "test lab", Tool: "eksir test", Actor: "tester", Examiner: "tester"}, build)
	return res.Archive, pub, err
}

func TestSealCarriesReport(t *testing.T) {
	var gotDir string
	archive, pub, err := sealedWithReport(t, "INC-RPT", func(_ context.Context, dir string, _ evidence.SealOptions) (map[string][]byte, error) {
		gotDir = dir
		return fixedReport, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(gotDir) != "INC-RPT" {
		t.Errorf("the report was built from %q, want the case folder", gotDir)
	}
	entries := map[string][]byte{}
	for _, e := range readEntries(t, archive) {
		entries[e.hdr.Name] = e.data
	}
	for name, want := range fixedReport {
		if got, ok := entries["INC-RPT/"+name]; !ok || string(got) != string(want) {
			t.Errorf("%s in the archive = %q (present %v), want %q", name, got, ok, want)
		}
	}
	expectExit(t, run(t, "", "verify", archive, "--pubkey", pub), 0, "eksir verify")
	expectExit(t, runProcess(t, verifyBin, "", nil, cleanEnv(), nil, "verify", archive, "--pubkey", pub), 0, "eksir-verify verify")
	if res := verifyBag(t, "sh", archive, pub); res.code != 0 || !strings.Contains(res.stdout, "tag files: 7 files match") ||
		!strings.Contains(res.stdout, "incident report in the bag: metadata/report.json metadata/report.html") {
		t.Errorf("verify-bag.sh: want a pass over 7 tag files naming the report, got %v", res)
	}
	dest := filepath.Join(t.TempDir(), "x")
	systemExtract(t, archive, dest)
	checkRFC(t, filepath.Join(dest, "INC-RPT"))
	expectExit(t, run(t, "", "verify", filepath.Join(dest, "INC-RPT"), "--pubkey", pub), 0, "eksir verify of the extracted bag")

	// The report changed after sealing, the archive repacked and its
	// sidecar rewritten as an attacker would: every verifier refuses it.
	t.Run("tampered report.html", func(t *testing.T) {
		src := t.TempDir()
		names := extractGo(t, archive, src)
		html := filepath.Join(src, "INC-RPT", "metadata", "report.html")
		if err := os.WriteFile(html, []byte(strings.Replace(string(fixedReport[evidence.ReportHTMLTag]), "contained", "nothing happened", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		tampered := filepath.Join(t.TempDir(), "INC-RPT.tar.zst")
		mtime := readEntries(t, archive)[0].hdr.ModTime
		repackAt(t, src, names, tampered, true, mtime)
		writeSidecar(t, tampered)
		for name, res := range map[string]result{
			"eksir verify":  run(t, "", "verify", tampered, "--pubkey", pub),
			"eksir-verify":  runProcess(t, verifyBin, "", nil, cleanEnv(), nil, "verify", tampered, "--pubkey", pub),
			"verify-bag.sh": verifyBag(t, "sh", tampered, pub),
		} {
			want := 3
			if name == "verify-bag.sh" {
				want = 1
			}
			if res.code != want || !strings.Contains(res.stdout+res.stderr, "metadata/report.html") {
				t.Errorf("%s on a tampered report.html: want exit %d naming metadata/report.html, got %v", name, want, res)
			}
		}
		bag := filepath.Join(src, "INC-RPT")
		if vs := checkBagit(bag); !strings.Contains(vs, "metadata/report.html") {
			t.Errorf("bagitcheck on a tampered report.html: want a violation naming it, got %q", vs)
		}
	})
}

// checkBagit returns the independent checker's violations as text.
func checkBagit(bag string) string {
	var sb strings.Builder
	for _, v := range bagitViolations(bag) {
		sb.WriteString(v.String() + "\n")
	}
	return sb.String()
}

// TestSealReportBuildFails: a report that cannot be built stops the seal
// before anything is written, and says how to seal without it.
func TestSealReportBuildFails(t *testing.T) {
	boom := errors.New("custody log unreadable")
	archive, _, err := sealedWithReport(t, "INC-NORPT", func(context.Context, string, evidence.SealOptions) (map[string][]byte, error) { return nil, boom })
	if !errors.Is(err, boom) || !strings.Contains(hintOf(err), "--no-report") {
		t.Fatalf("seal with a failing report: %v (hint %q), want the cause and a --no-report hint", err, hintOf(err))
	}
	if archive != "" {
		t.Errorf("a refused seal returned archive %q", archive)
	}
}

// TestSealWithoutReport: no builder (--no-report), or one that has no
// report yet, seals the bag as before: no report files.
func TestSealWithoutReport(t *testing.T) {
	for name, build := range map[string]reportBuilder{
		"no-report":    nil,
		"empty report": func(context.Context, string, evidence.SealOptions) (map[string][]byte, error) { return nil, nil },
	} {
		t.Run(name, func(t *testing.T) {
			archive, pub, err := sealedWithReport(t, "INC-PLAIN", build)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range readEntries(t, archive) {
				if strings.HasPrefix(e.hdr.Name, "INC-PLAIN/metadata/report.") {
					t.Errorf("a seal without a report wrote %s", e.hdr.Name)
				}
			}
			expectExit(t, run(t, "", "verify", archive, "--pubkey", pub), 0, "eksir verify")
		})
	}
}

func hintOf(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// bagitViolations runs both independent BagIt checks on an extracted bag.
func bagitViolations(bag string) []bagitcheck.Violation {
	return append(bagitcheck.Check(bag), bagitcheck.CheckProfile(bag)...)
}

// TestSealCarriesTheCaseReport seals a case with `eksir seal` as a
// responder would: the bag carries the report of that case (JSON naming
// every item's hash, HTML), sealing again with the same --seal-time gives
// the same bytes (the report is dated at the seal time and made from the
// case before its sealed record), and `eksir report ARCHIVE` reads it back
// verified.
func TestSealCarriesTheCaseReport(t *testing.T) {
	root := t.TempDir()
	key, pub := newKey(t)
	files := map[string]string{"host/miner.bin": strings.Repeat("xmrig ", 100), "k8s/pod.json": `{"kind":"Pod"}`}
	cases := newCase(t, root, key, "INC-SEALRPT", files)
	at := time.Now().UTC().Add(time.Minute).Format(time.RFC3339)
	seal := func(out string) []byte {
		mustRun(t, root, "--case-dir", cases, "seal", "--incident", "INC-SEALRPT", "--key", key, "--seal-time", at, "--out", out)
		b, err := os.ReadFile(filepath.Join(out, "INC-SEALRPT.tar.zst"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first, second := seal(filepath.Join(root, "out1")), seal(filepath.Join(root, "out2"))
	if !bytes.Equal(first, second) {
		t.Error("sealing the same case twice with the same --seal-time gave different archives")
	}
	archive := filepath.Join(root, "out1", "INC-SEALRPT.tar.zst")
	var rj, rh []byte
	for _, e := range readEntries(t, archive) {
		switch e.hdr.Name {
		case "INC-SEALRPT/" + evidence.ReportJSONTag:
			rj = e.data
		case "INC-SEALRPT/" + evidence.ReportHTMLTag:
			rh = e.data
		}
	}
	var r report.Report
	if err := json.Unmarshal(rj, &r); err != nil {
		t.Fatalf("metadata/report.json: %v", err)
	}
	if r.APIVersion != report.APIVersion || r.Summary.Incident != "INC-SEALRPT" || r.Integrity.Status != report.IntegrityVerified || len(r.Evidence) != len(files) {
		t.Errorf("sealed report: %s %q integrity %q, %d items", r.APIVersion, r.Summary.Incident, r.Integrity.Status, len(r.Evidence))
	}
	for _, it := range r.Evidence {
		if it.SHA256 == "" || !bytes.Contains(rh, []byte(it.SHA256)) {
			t.Errorf("metadata/report.html does not show %s's sha256 %q", it.Path, it.SHA256)
		}
	}
	if r.GeneratedAt != strings.Replace(at, "Z", ".000000000Z", 1) {
		t.Errorf("sealed report dated %s, seal time %s", r.GeneratedAt, at)
	}
	res := run(t, root, "report", archive, "--pubkey", pub, "--format", "json")
	expectExit(t, res, 0, "eksir report of the sealed archive")
	if !strings.Contains(res.stdout, `"status": "verified"`) {
		t.Errorf("report of the archive is not verified:\n%.400s", res.stdout)
	}
}
