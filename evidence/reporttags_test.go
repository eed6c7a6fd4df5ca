package evidence_test

// The incident report sealed into the bag as tag files (issue 15): covered
// by the tag manifest and so by the signature; a report changed, removed or
// added after sealing fails verify.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
)

var reportTags = map[string][]byte{
	evidence.ReportJSONTag: []byte(`{"apiVersion":"eksir.dev/report/v1","kind":"IncidentReport"}` + "\n"),
	evidence.ReportHTMLTag: []byte("<!doctype html><title>Incident RPT-1 — report</title><p>Zoë contained it</p>\n"),
}

// sealedCaseWithReport seals a small case with the report tag files,
// uncompressed so tests can edit the tar.
func sealedCaseWithReport(t *testing.T, signer *evidence.Signer, incident string) evidence.SealResult {
	t.Helper()
	c := openCase(t, t.TempDir(), incident, signer)
	add(t, c, "k8s/pod.json", `{"kind":"Pod"}`+"\n")
	add(t, c, "logs/app.log", "line\n")
	opts := sealOpts(signer, t.TempDir(), evidence.CompressNone)
	opts.TagFiles = reportTags
	res, err := evidence.SealCase(context.Background(), c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestSealReportTagFiles(t *testing.T) {
	signer, keys := newSigner(t)
	res := sealedCaseWithReport(t, signer, "RPT-1")
	if !slices.Equal(res.TagFiles, []string{"metadata/report.html", "metadata/report.json"}) {
		t.Errorf("SealResult.TagFiles = %q", res.TagFiles)
	}
	rep := verifyOK(t, res.Archive, keys)
	if !slices.ContainsFunc(rep.Checks, func(c evidence.Check) bool {
		return c.Name == "tag-manifest" && c.Status == evidence.StatusOK && c.Detail == "7 tag files match"
	}) {
		t.Errorf("tag manifest check does not count the two report files: %+v", rep.Checks)
	}
	for name, want := range reportTags {
		if got := archiveFile(t, res.Archive, name); !bytes.Equal(got, want) {
			t.Errorf("%s in the archive = %q, want %q", name, got, want)
		}
	}
	tm := string(archiveFile(t, res.Archive, "tagmanifest-sha256.txt"))
	for name, data := range reportTags {
		if !strings.Contains(tm, sha256Hex(data)+"  "+name+"\n") {
			t.Errorf("tagmanifest-sha256.txt does not list %s with its hash:\n%s", name, tm)
		}
	}
	// The report files sit after items.json, in path order, before the tag manifest.
	var order []string
	for _, s := range splitTar(t, readFile(t, res.Archive)) {
		order = append(order, strings.TrimPrefix(s.name, "RPT-1/"))
	}
	tail := order[len(order)-7:]
	want := []string{"metadata/items.json", "metadata/report.html", "metadata/report.json", "tagmanifest-sha256.txt", "signatures/", "signatures/seal.dsse.json", "signatures/seal.pub"}
	if !slices.Equal(tail, want) {
		t.Errorf("archive ends with %q, want %q", tail, want)
	}
}

// TestSealReportDeterministic: the report files keep the archive
// reproducible, and a folder seal takes them too.
func TestSealReportDeterministic(t *testing.T) {
	signer, keys := newSigner(t)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a.txt": "alpha\n"})
	var archives [][]byte
	for range 2 {
		opts := sealOpts(signer, t.TempDir(), evidence.CompressZstd)
		opts.Incident, opts.TagFiles = "RPT-DIR", reportTags
		res, err := evidence.SealDir(context.Background(), src, opts)
		if err != nil {
			t.Fatal(err)
		}
		verifyOK(t, res.Archive, keys)
		archives = append(archives, readFile(t, res.Archive))
	}
	if !bytes.Equal(archives[0], archives[1]) {
		t.Error("the same folder and report sealed twice with the same time gave different archives")
	}
}

func TestSealReportTampered(t *testing.T) {
	signer, keys := newSigner(t)
	tests := []struct {
		name   string
		change func(t *testing.T, archive string, res evidence.SealResult)
		check  string
		what   string
	}{
		{"report.html edited", func(t *testing.T, archive string, _ evidence.SealResult) {
			html := bytes.Replace(reportTags[evidence.ReportHTMLTag], []byte("Zoë contained it"), []byte("nothing happened"), 1)
			replaceEntry(t, archive, "RPT-T/metadata/report.html", html, sealAt.Truncate(time.Second))
		}, "tag-manifest", "sha256"},
		{"report.json edited", func(t *testing.T, archive string, _ evidence.SealResult) {
			replaceEntry(t, archive, "RPT-T/metadata/report.json", []byte(`{"kind":"Forged"}`+"\n"), sealAt.Truncate(time.Second))
		}, "tag-manifest", "sha256"},
		{"report files swapped in the tar", func(t *testing.T, archive string, _ evidence.SealResult) {
			segs := splitTar(t, readFile(t, archive))
			i, j := find(t, segs, "RPT-T/metadata/report.html"), find(t, segs, "RPT-T/metadata/report.json")
			segs[i], segs[j] = segs[j], segs[i]
			writeArchive(t, archive, joinTar(segs))
		}, "structure", "out of the order seal writes"},
		{"a third report file", func(t *testing.T, archive string, _ evidence.SealResult) {
			segs := splitTar(t, readFile(t, archive))
			i := find(t, segs, "RPT-T/metadata/report.json")
			extra := segment{name: "RPT-T/metadata/report.md", typ: '0', raw: render(t, &tar.Header{Name: "RPT-T/metadata/report.md", Size: 4, Mode: 0o600,
				ModTime: sealAt.Truncate(time.Second), Format: tar.FormatPAX, Typeflag: tar.TypeReg}, []byte("# x\n"))}
			writeArchive(t, archive, joinTar(slices.Insert(segs, i+1, extra)))
		}, "tag-manifest", "not a tag file seal writes"},
		{"report.html removed", func(t *testing.T, archive string, _ evidence.SealResult) {
			segs := splitTar(t, readFile(t, archive))
			i := find(t, segs, "RPT-T/metadata/report.html")
			writeArchive(t, archive, joinTar(slices.Delete(segs, i, i+1)))
		}, "tag-manifest", "listed in the tag manifest but missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := sealedCaseWithReport(t, signer, "RPT-T")
			tc.change(t, res.Archive, res)
			rep := verify(t, res.Archive, evidence.VerifyOptions{Keys: keys})
			if rep.OK {
				t.Fatal("verify passed an archive whose report changed after sealing")
			}
			if !failedWith(rep, tc.check, tc.what) {
				t.Errorf("want a failing %s check saying %q; got %+v", tc.check, tc.what, rep.Failed())
			}
		})
	}
	// A report added to a bag sealed without one is not in the tag manifest.
	t.Run("report added after sealing", func(t *testing.T) {
		res := sealedDir(t, signer, "RPT-ADD", evidence.CompressNone)
		dest := filepath.Join(t.TempDir(), "RPT-ADD")
		extractTo(t, res.Archive, filepath.Dir(dest))
		verifyOK(t, dest, keys)
		if err := os.WriteFile(filepath.Join(dest, "metadata", "report.html"), reportTags[evidence.ReportHTMLTag], 0o600); err != nil {
			t.Fatal(err)
		}
		rep := verify(t, dest, evidence.VerifyOptions{Keys: keys})
		if rep.OK || !failedWith(rep, "tag-manifest", "not in the tag manifest") {
			t.Errorf("a report added after sealing: want a failing tag-manifest check, got %+v", rep.Failed())
		}
	})
}

// TestSealReportRefused: only the two report names, as UTF-8 text; a
// refused seal writes nothing.
func TestSealReportRefused(t *testing.T) {
	signer, _ := newSigner(t)
	for name, files := range map[string]map[string][]byte{
		"other name":       {"metadata/notes.txt": []byte("x\n")},
		"outside metadata": {"report.json": []byte("{}\n")},
		"payload path":     {"data/report.json": []byte("{}\n")},
		"byte-order mark":  {evidence.ReportJSONTag: []byte("\xef\xbb\xbf{}\n")},
		"not UTF-8":        {evidence.ReportHTMLTag: []byte("<p>\xff</p>\n")},
	} {
		t.Run(name, func(t *testing.T) {
			c := openCase(t, t.TempDir(), "RPT-BAD", signer)
			add(t, c, "a.txt", "a\n")
			out := t.TempDir()
			opts := sealOpts(signer, out, evidence.CompressNone)
			opts.TagFiles = files
			_, err := evidence.SealCase(context.Background(), c, opts)
			if !errors.Is(err, evidence.ErrInvalidInput) {
				t.Fatalf("SealCase with tag files %v: %v, want an invalid-input error", files, err)
			}
			if left := listDir(t, out); len(left) != 0 {
				t.Errorf("a refused seal left %v", left)
			}
		})
	}
}

// extractTo extracts an uncompressed archive under dest.
func extractTo(t *testing.T, archive, dest string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(readFile(t, archive)))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dest, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
