package main

// docs/verify-bag.sh is the procedure a forensics lab runs without eksir.
// These tests seal archives with awkward names, record hand-overs, and check
// that the script passes them and stops with a clear message on each kind of
// tampering, including changes that keep the archive's sidecar hash right.

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/eksir/eksir/internal/labtest"
)

// manualTools are the programs docs/verify-bag.sh runs.
var manualTools = []string{"sh", "sha256sum", "tar", "zstd", "jq", "openssl", "awk", "sed", "find", "sort", "od", "cmp", "tail", "mktemp", "tr", "cut", "wc"}

// verifyBagScript returns the script's path, or skips (fails under CI=true)
// when a tool it needs is missing.
func verifyBagScript(t *testing.T) string {
	t.Helper()
	for _, tool := range manualTools {
		if _, err := exec.LookPath(tool); err != nil {
			labtest.SkipOrFail(t, "docs/verify-bag.sh needs "+tool+" (Debian/Ubuntu: apt-get install coreutils findutils tar zstd jq openssl mawk)")
		}
	}
	if out, err := exec.Command("tar", "--version").Output(); err != nil || !strings.Contains(string(out), "GNU tar") {
		labtest.SkipOrFail(t, "docs/verify-bag.sh needs GNU tar (Debian/Ubuntu: apt-get install tar)")
	}
	p, err := filepath.Abs(filepath.Join("..", "..", "docs", "verify-bag.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// verifyBag runs the script with shell on args.
func verifyBag(t *testing.T, shell string, args ...string) result {
	t.Helper()
	return runProcess(t, shell, "", nil, cleanEnv(), nil, append([]string{verifyBagScript(t)}, args...)...)
}

// manualFiles holds names a manifest must percent-encode or otherwise get
// right. Case items refuse control characters, so these are sealed from a
// folder; manualCase below covers a case.
var manualFiles = map[string]string{
	"plain.txt":                "plain\n",
	"with space.txt":           "spaces in the name\n",
	"new\nline.txt":            "newline in the name\n",
	"carriage\rreturn.txt":     "CR in the name\n",
	"ends in a newline\n":      "trailing newline in the name\n",
	"50% done.txt":             "percent in the name\n",
	"%0A":                      "a literal percent-zero-A, not a newline\n",
	"%25literal":               "a literal %25\n",
	"ünïcödé/日本語 ファイル.txt":     "unicode\n",
	"empty":                    "",
	"nested/a/sibling\n%0D.md": "newline and literal %0D together\n",
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// handOver records a transfer of archive signed with key.
func handOver(t *testing.T, archive, key, pub, from, to string) {
	t.Helper()
	mustRun(t, "", "custody", "transfer", archive, "--key", key, "--pubkey", pub, "--from", from, "--to", to, "--reason", "lab intake", "--location", "HQ")
}

// systemTar rebuilds archive from the folders names under dir with GNU tar
// and zstd, and writes a fresh sidecar, as someone changing the evidence
// would.
func systemTar(t *testing.T, dir, archive string, names ...string) {
	t.Helper()
	args := append([]string{"--zstd", "-C", dir, "-cf", archive}, names...)
	if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
		t.Fatalf("tar %q: %v\n%s", args, err, out)
	}
	writeSidecar(t, archive)
}

func TestManualVerifyScript(t *testing.T) {
	verifyBagScript(t)
	key, pub := newKey(t)
	const id = "MANUAL-1"
	archive := sealTricky(t, key, "dir", id, "zstd", manualFiles)
	handOver(t, archive, key, pub, "alice", "bob")
	handOver(t, archive, key, pub, "bob", "carol")
	name := filepath.Base(archive)

	// fresh copies archive, sidecar and hand-over log into a new folder.
	fresh := func(t *testing.T) (dir, copied string) {
		dir = t.TempDir()
		copied = filepath.Join(dir, name)
		for _, suffix := range []string{"", ".sha256", ".custody.jsonl"} {
			copyFile(t, archive+suffix, copied+suffix)
		}
		return dir, copied
	}
	// extracted returns a copy of the bag's tree: dir/x/<id>/...
	extracted := func(t *testing.T, dir string) string {
		extractGo(t, archive, filepath.Join(dir, "x"))
		return filepath.Join(dir, "x", id)
	}

	t.Run("untouched", func(t *testing.T) {
		shells := []string{"sh"}
		for _, s := range []string{"dash", "bash"} {
			if _, err := exec.LookPath(s); err == nil {
				shells = append(shells, s)
			}
		}
		for _, shell := range shells {
			res := verifyBag(t, shell, archive, pub)
			expectExit(t, res, 0, shell+" docs/verify-bag.sh (pinned)")
			for _, want := range []string{"11 files, complete", "pinned: ", "hand-over log: 2 record(s)", "PASS: " + name} {
				if !strings.Contains(res.stdout, want) {
					t.Errorf("%s: output lacks %q:\n%s", shell, want, res.stdout)
				}
			}
		}
		res := verifyBag(t, "sh", archive)
		expectExit(t, res, 0, "docs/verify-bag.sh without a pinned key")
		if !strings.Contains(res.stdout, "NOT pinned") {
			t.Errorf("an unpinned run does not say so:\n%s", res.stdout)
		}
	})

	t.Run("sidecar-forms", func(t *testing.T) {
		// sha256sum's binary-mode and BSD-tag outputs are valid sidecars too.
		for _, args := range [][]string{{"-b", name}, {"--tag", name}} {
			dir, copied := fresh(t)
			cmd := exec.Command("sha256sum", args...)
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(copied+".sha256", out, 0o600); err != nil {
				t.Fatal(err)
			}
			expectExit(t, verifyBag(t, "sh", copied, pub), 0, "sidecar from sha256sum "+strings.Join(args, " "))
		}
	})

	t.Run("case", func(t *testing.T) {
		// An acquired case (names a case item may have), with a hand-over.
		caseArchive := sealTricky(t, key, "case", "MANUAL-CASE", "zstd", trickyCase)
		handOver(t, caseArchive, key, pub, "alice", "bob")
		expectExit(t, verifyBag(t, "sh", caseArchive, pub), 0, "docs/verify-bag.sh on a sealed case")
	})

	t.Run("dropped-last-hand-over-is-not-detectable", func(t *testing.T) {
		// The threat model in docs/evidence-format.md says so: only a copy of
		// the head kept elsewhere catches it. The script prints the head so a
		// lab can compare.
		_, copied := fresh(t)
		editLines(t, copied+".custody.jsonl", func(l []string) []string { return l[:len(l)-1] })
		res := verifyBag(t, "sh", copied, pub)
		expectExit(t, res, 0, "docs/verify-bag.sh after dropping the last hand-over")
		if !strings.Contains(res.stdout, "custody head: record") {
			t.Errorf("output does not show the custody head:\n%s", res.stdout)
		}
	})

	otherKey, otherPub := newKey(t)
	t.Run("hand-over-by-a-named-custodian", func(t *testing.T) {
		// Another examiner's key signs a hand-over: it passes when that key
		// is given as a custodian's, and never stands in for the sealer's.
		_, copied := fresh(t)
		handOver(t, copied, otherKey, pub, "carol", "dave")
		expectExit(t, verifyBag(t, "sh", copied, pub, otherPub), 0, "docs/verify-bag.sh with the custodian's key")
		if res := verifyBag(t, "sh", copied, otherPub, otherPub); res.code == 0 {
			t.Errorf("the custodian's key passed as the sealer's:\n%s", res.stdout)
		}
	})
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir, copied string) (pin string)
		want   string // in the FAIL message
	}{
		{"archive-byte-flipped", func(t *testing.T, dir, copied string) string {
			flipByte(t, copied)
			return pub
		}, name + ".sha256 says"},
		{"sidecar-names-another-file", func(t *testing.T, dir, copied string) string {
			b, err := os.ReadFile(copied + ".sha256")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(copied+".sha256", []byte(strings.Replace(string(b), name, "other.tar.zst", 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			return pub
		}, "does not name " + name},
		{"payload-byte-flipped", func(t *testing.T, dir, copied string) string {
			bag := extracted(t, dir)
			flipByte(t, filepath.Join(bag, "data", "new\nline.txt"))
			systemTar(t, filepath.Join(dir, "x"), copied, id)
			return pub
		}, "data/new%0Aline.txt has sha256"},
		{"extra-payload-file", func(t *testing.T, dir, copied string) string {
			bag := extracted(t, dir)
			writeFile(t, bag, "data/planted\n%.txt", []byte("planted\n"))
			systemTar(t, filepath.Join(dir, "x"), copied, id)
			return pub
		}, "data/planted%0A%25.txt is in the bag but not in manifest-sha256.txt"},
		{"payload-file-removed", func(t *testing.T, dir, copied string) string {
			bag := extracted(t, dir)
			if err := os.Remove(filepath.Join(bag, "data", "carriage\rreturn.txt")); err != nil {
				t.Fatal(err)
			}
			systemTar(t, filepath.Join(dir, "x"), copied, id)
			return pub
		}, "data/carriage%0Dreturn.txt is listed in manifest-sha256.txt but missing"},
		{"payload-file-replaced-by-symlink", func(t *testing.T, dir, copied string) string {
			bag := extracted(t, dir)
			p := filepath.Join(bag, "data", "plain.txt")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../../outside-the-bag", p); err != nil {
				t.Fatal(err)
			}
			systemTar(t, filepath.Join(dir, "x"), copied, id)
			return pub
		}, "a link or special file"},
		{"hard-link-in-payload", func(t *testing.T, dir, copied string) string {
			bag := extracted(t, dir)
			if err := os.Link(filepath.Join(bag, "data", "plain.txt"), filepath.Join(bag, "data", "zz-hard")); err != nil {
				t.Fatal(err)
			}
			systemTar(t, filepath.Join(dir, "x"), copied, id)
			return pub
		}, "a link or special file"},
		{"second-top-folder", func(t *testing.T, dir, copied string) string {
			extracted(t, dir)
			writeFile(t, filepath.Join(dir, "x"), "OTHER/readme.txt", []byte("not evidence\n"))
			systemTar(t, filepath.Join(dir, "x"), copied, id, "OTHER")
			return pub
		}, "outside the single top folder"},
		{"entry-appears-twice", func(t *testing.T, dir, copied string) string {
			// A second copy of a payload file appended to the tar: extracting
			// it would overwrite the first.
			bag := extracted(t, dir)
			writeFile(t, bag, "data/plain.txt", []byte("planted\n"))
			plain := filepath.Join(dir, "plain.tar")
			for _, c := range [][]string{
				{"zstd", "-dqf", copied, "-o", plain},
				{"tar", "-C", filepath.Join(dir, "x"), "-rf", plain, id + "/data/plain.txt"},
				{"zstd", "-qf", plain, "-o", copied},
			} {
				if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
					t.Fatalf("%q: %v\n%s", c, err, out)
				}
			}
			writeSidecar(t, copied)
			return pub
		}, "File exists"},
		{"custody-record-forged-in-bag", func(t *testing.T, dir, copied string) string {
			bag := extracted(t, dir)
			editLines(t, filepath.Join(bag, "metadata", "custody.jsonl"), func(l []string) []string {
				l[0] = strings.Replace(l[0], `"action":"acquired"`, `"action":"acquireD"`, 1)
				return l
			})
			systemTar(t, filepath.Join(dir, "x"), copied, id)
			return pub
		}, "metadata/custody.jsonl has sha256"},
		{"custody-record-forged-in-bag-tag-manifest-fixed", func(t *testing.T, dir, copied string) string {
			bag := extracted(t, dir)
			editLines(t, filepath.Join(bag, "metadata", "custody.jsonl"), func(l []string) []string {
				l[0] = strings.Replace(l[0], `"action":"acquired"`, `"action":"acquireD"`, 1)
				return l
			})
			fixTagManifest(t, bag, "metadata/custody.jsonl")
			systemTar(t, filepath.Join(dir, "x"), copied, id)
			return pub
		}, "subject is not this tagmanifest-sha256.txt"},
		{"hand-over-record-forged", func(t *testing.T, dir, copied string) string {
			editLines(t, copied+".custody.jsonl", func(l []string) []string {
				l[1] = strings.Replace(l[1], `"to":"carol"`, `"to":"mallory"`, 1)
				return l
			})
			return pub
		}, "record 4: signature does not verify"},
		{"hand-over-record-removed", func(t *testing.T, dir, copied string) string {
			editLines(t, copied+".custody.jsonl", func(l []string) []string { return l[1:] })
			return pub
		}, "seq 4 where 3 was expected"},
		{"hand-over-by-another-key", func(t *testing.T, dir, copied string) string {
			handOver(t, copied, otherKey, pub, "carol", "dave")
			return pub
		}, "record 5: signed by key"},
		{"hand-over-names-another-archive", func(t *testing.T, dir, copied string) string {
			// The same bag compressed differently verifies but has another
			// hash; a genuine hand-over of that copy, signed by the right
			// key and continuing the sealed chain, must not pass for this one.
			other := filepath.Join(t.TempDir(), name)
			r, done := openArchive(t, archive)
			enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(r)
			done()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(other, enc.EncodeAll(plain, nil), 0o600); err != nil {
				t.Fatal(err)
			}
			writeSidecar(t, other)
			handOver(t, other, key, pub, "alice", "mallory")
			copyFile(t, other+".custody.jsonl", copied+".custody.jsonl")
			return pub
		}, "record 3 names archive sha256"},
		{"wrong-pinned-key", func(t *testing.T, dir, copied string) string {
			return otherPub
		}, "the seal signature does not verify with key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, copied := fresh(t)
			pin := tc.change(t, dir, copied)
			res := verifyBag(t, "sh", copied, pin)
			expectExit(t, res, 1, "docs/verify-bag.sh after "+tc.name)
			if !strings.Contains(res.stderr, "FAIL: ") || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("FAIL message does not say %q:\n%v", tc.want, res)
			}
		})
	}
}
