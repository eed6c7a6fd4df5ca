package main

// RFC 8493 conformance of sealed archives, checked with tools eksir does not
// share code with: the system tar extracts, internal/bagitcheck (an
// independent reading of the RFC) checks the bag rule by rule, and coreutils
// sha256sum checks the sidecar and the manifests.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eksir/eksir/internal/labtest"

	"github.com/eksir/eksir/internal/bagitcheck"
)

// trickyDir holds names a manifest must percent-encode or otherwise get
// right: newline, carriage return, '%', a literal "%0A", spaces, unicode,
// empty files and nested folders.
var trickyDir = map[string]string{
	"plain.txt":                "plain\n",
	"with space.txt":           "spaces in the name\n",
	"new\nline.txt":            "newline in the name\n",
	"carriage\rreturn.txt":     "CR in the name\n",
	"50% done.txt":             "percent in the name\n",
	"%0A":                      "a literal percent-zero-A, not a newline\n",
	"%25literal":               "a literal %25\n",
	"ünïcödé/日本語 ファイル.txt":     "unicode\n",
	"empty":                    "",
	"nested/a/b/c/deep.txt":    "deep\n",
	"nested/a/b/c/empty-too":   "",
	"nested/a/sibling\n%0D.md": "newline and literal %0D together\n",
}

// trickyCase holds the names a case item may have (item paths refuse
// control characters, so no newline here).
var trickyCase = map[string]string{
	"with space.txt":          "spaces in the name\n",
	"50% done.txt":            "percent in the name\n",
	"%0A":                     "a literal percent-zero-A\n",
	"ünïcödé/日本語 ファイル.txt":    "unicode\n",
	"empty":                   "",
	"nested/a/b/c/deep.txt":   "deep\n",
	"nested/a/b/c/empty-too":  "",
	"k8s/pods/web-0.json":     `{"kind":"Pod"}` + "\n",
	"logs/node-1/kubelet.log": strings.Repeat("log line\n", 500),
}

// sealTricky seals a folder or an acquired case holding files and returns
// the archive path.
func sealTricky(t *testing.T, key, from, incident, compress string, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	out := filepath.Join(root, "out")
	src := filepath.Join(root, "src")
	for rel, content := range files {
		writeFile(t, src, rel, []byte(content))
	}
	switch from {
	case "dir":
		mustRun(t, root, "seal", "--incident", incident, "--key", key, "--compress", compress, "--seal-time", sealTime, src, "--out", out)
	case "case":
		cases := filepath.Join(root, "cases")
		for rel := range files {
			mustRun(t, root, "--case-dir", cases, "acquire", "--incident", incident, "--key", key, "--as", rel, filepath.Join(src, filepath.FromSlash(rel)))
		}
		mustRun(t, root, "--case-dir", cases, "seal", "--incident", incident, "--key", key, "--compress", compress, "--seal-time", caseSealTime(), "--out", out)
	default:
		t.Fatalf("unknown source %q", from)
	}
	name := incident + ".tar"
	if compress == "zstd" {
		name += ".zst"
	}
	archive := filepath.Join(out, name)
	if _, err := os.Stat(archive); err != nil {
		t.Fatalf("seal wrote no %s: %v (out holds %v)", name, err, listDir(t, out))
	}
	return archive
}

// systemExtract extracts archive into dest with the system tar: `tar --zstd`
// for zstd, else `zstd -dc | tar`, else decompressing in Go.
func systemExtract(t *testing.T, archive, dest string) {
	t.Helper()
	if _, err := exec.LookPath("tar"); err != nil {
		labtest.SkipOrFail(t, "no system tar in PATH (Debian: apt-get install tar)")
	}
	if err := os.MkdirAll(dest, 0o700); err != nil {
		t.Fatal(err)
	}
	tarCmd := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.Command("tar", args...)
		if stdin != nil {
			cmd.Stdin = bytes.NewReader(stdin)
		}
		return cmd.CombinedOutput()
	}
	if !strings.HasSuffix(archive, ".zst") {
		if out, err := tarCmd(nil, "-xf", archive, "-C", dest); err != nil {
			t.Fatalf("tar -xf %s: %v\n%s", archive, err, out)
		}
		return
	}
	out, err := tarCmd(nil, "--zstd", "-xf", archive, "-C", dest)
	if err == nil {
		return
	}
	t.Logf("tar --zstd failed (%v: %s); falling back", err, out)
	var plain []byte
	if _, lerr := exec.LookPath("zstd"); lerr == nil {
		plain, err = exec.Command("zstd", "-dc", archive).Output()
		if err != nil {
			t.Fatalf("zstd -dc %s: %v", archive, err)
		}
	} else {
		r, done := openArchive(t, archive)
		var buf bytes.Buffer
		_, err := buf.ReadFrom(r)
		done()
		if err != nil {
			t.Fatal(err)
		}
		plain = buf.Bytes()
	}
	if out, err := tarCmd(plain, "-xf", "-", "-C", dest); err != nil {
		t.Fatalf("tar -xf - (decompressed %s): %v\n%s", archive, err, out)
	}
}

// checkRFC runs both independent checks on an extracted bag.
func checkRFC(t *testing.T, bag string) {
	t.Helper()
	for name, check := range map[string]func(string) []bagitcheck.Violation{
		"Check": bagitcheck.Check, "CheckProfile": bagitcheck.CheckProfile,
	} {
		for _, v := range check(bag) {
			t.Errorf("bagitcheck.%s: %v", name, v)
		}
	}
}

func TestRFC8493Conformance(t *testing.T) {
	key, pub := newKey(t)
	for _, from := range []string{"dir", "case"} {
		for _, compress := range []string{"none", "zstd"} {
			t.Run(from+"-"+compress, func(t *testing.T) {
				t.Parallel()
				files := trickyDir
				if from == "case" {
					files = trickyCase
				}
				incident := "RFC-" + from + "-" + compress
				archive := sealTricky(t, key, from, incident, compress, files)

				// The lab's first check: sha256sum -c on the sidecar, in the archive's folder.
				cmd := exec.Command("sha256sum", "-c", filepath.Base(archive)+".sha256")
				cmd.Dir = filepath.Dir(archive)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("sha256sum -c %s.sha256: %v\n%s", filepath.Base(archive), err, out)
				}

				dest := filepath.Join(t.TempDir(), "x")
				systemExtract(t, archive, dest)
				if got := listDir(t, dest); len(got) != 1 || got[0] != incident {
					t.Fatalf("archive's top level = %q, want the single folder %q", got, incident)
				}
				bag := filepath.Join(dest, incident)
				// The tricky names reached the file system as themselves.
				for rel, content := range files {
					b, err := os.ReadFile(filepath.Join(bag, "data", filepath.FromSlash(rel)))
					if err != nil || string(b) != content {
						t.Errorf("extracted data/%q: %v (content %q, want %q)", rel, err, b, content)
					}
				}
				checkRFC(t, bag)

				// eksir agrees, on the archive and on the extracted folder.
				expectExit(t, run(t, "", "verify", archive, "--pubkey", pub), 0, "verify archive")
				expectExit(t, run(t, "", "verify", bag, "--pubkey", pub), 0, "verify extracted folder")
			})
		}
	}
}

// TestRFC8493ManifestsCheckWithSha256sum: without newline or '%' in names
// (which the RFC percent-encodes and sha256sum does not decode), the
// manifests are plain `sha256sum -c` input.
func TestRFC8493ManifestsCheckWithSha256sum(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		labtest.SkipOrFail(t, "no sha256sum in PATH (Debian: apt-get install coreutils)")
	}
	key, _ := newKey(t)
	files := map[string]string{
		"plain.txt":               "plain\n",
		"with space.txt":          "spaces\n",
		"ünïcödé/日本語.txt":         "unicode\n",
		"empty":                   "",
		"nested/a/b/c/deep.txt":   "deep\n",
		"logs/node-1/kubelet.log": strings.Repeat("log line\n", 1000),
	}
	for _, compress := range []string{"none", "zstd"} {
		t.Run(compress, func(t *testing.T) {
			archive := sealTricky(t, key, "dir", "SUMS-"+compress, compress, files)
			dest := filepath.Join(t.TempDir(), "x")
			systemExtract(t, archive, dest)
			bag := filepath.Join(dest, "SUMS-"+compress)
			for _, m := range []string{"manifest-sha256.txt", "tagmanifest-sha256.txt"} {
				cmd := exec.Command("sha256sum", "--strict", "-c", m)
				cmd.Dir = bag
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("sha256sum -c %s: %v\n%s", m, err, out)
				}
				if m == "manifest-sha256.txt" && strings.Count(string(out), ": OK\n") != len(files) {
					t.Errorf("sha256sum -c %s checked %d files, want %d:\n%s", m, strings.Count(string(out), ": OK\n"), len(files), out)
				}
			}
		})
	}
}
