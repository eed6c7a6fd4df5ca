package main

// Bad input for `eksir seal`: each case ends with a clear error and exit 2
// (and nothing left in the output folder), or with a bag that verifies.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/eksir/eksir/internal/labtest"
)

// expectNoOutput fails if a failed seal left anything in out (an archive,
// a sidecar or a temporary file).
func expectNoOutput(t *testing.T, out string) {
	t.Helper()
	if left := listDir(t, out); len(left) > 0 {
		t.Errorf("failed seal left %q in %s", left, out)
	}
}

// expectUsageError checks exit 2 with "eksir: error:" naming each of names,
// and a hint.
func expectUsageError(t *testing.T, res result, names ...string) {
	t.Helper()
	expectExit(t, res, 2, "seal")
	if !strings.Contains(res.stderr, "eksir: error: ") {
		t.Errorf("stderr has no 'eksir: error:' line:\n%s", res.stderr)
	}
	if !strings.Contains(res.stderr, "\nhint: ") {
		t.Errorf("stderr has no 'hint:' line:\n%s", res.stderr)
	}
	for _, n := range names {
		if !strings.Contains(res.stderr, n) {
			t.Errorf("stderr does not name %q:\n%s", n, res.stderr)
		}
	}
}

func TestSealBadInput(t *testing.T) {
	key, _ := newKey(t)
	okSrc := t.TempDir()
	writeFile(t, okSrc, "a.txt", []byte("a\n"))
	for _, tc := range []struct {
		name  string
		args  func(out string) []string
		names []string
		hint  bool
	}{
		{"missing-folder", func(out string) []string {
			return []string{"seal", "--incident", "T", "--key", key, filepath.Join(okSrc, "no-such-folder"), "--out", out}
		}, []string{"no-such-folder"}, true},
		{"file-not-folder", func(out string) []string {
			return []string{"seal", "--incident", "T", "--key", key, filepath.Join(okSrc, "a.txt"), "--out", out}
		}, []string{"a.txt", "not a folder"}, true},
		{"no-key", func(out string) []string {
			return []string{"seal", "--incident", "T", okSrc, "--out", out}
		}, []string{"no signing key", "keygen"}, true},
		{"missing-key-file", func(out string) []string {
			return []string{"seal", "--incident", "T", "--key", filepath.Join(okSrc, "nokey"), okSrc, "--out", out}
		}, []string{"nokey"}, true},
		{"compress-bogus", func(out string) []string {
			return []string{"seal", "--incident", "T", "--key", key, "--compress", "bogus", okSrc, "--out", out}
		}, []string{"bogus"}, true},
		{"incident-dotdot", func(out string) []string {
			return []string{"seal", "--incident", "../x", "--key", key, okSrc, "--out", out}
		}, []string{"../x"}, false},
		{"incident-slash", func(out string) []string {
			return []string{"seal", "--incident", "a/b", "--key", key, okSrc, "--out", out}
		}, []string{"a/b"}, false},
		{"incident-missing", func(out string) []string {
			return []string{"seal", "--key", key, okSrc, "--out", out}
		}, []string{"--incident"}, true},
		{"two-folders", func(out string) []string {
			return []string{"seal", "--incident", "T", "--key", key, okSrc, okSrc, "--out", out}
		}, []string{"at most one folder"}, true},
		{"no-such-case", func(out string) []string {
			return []string{"--case-dir", filepath.Join(okSrc, "cases"), "seal", "--incident", "T", "--key", key, "--out", out}
		}, []string{"no case T"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res := run(t, t.TempDir(), tc.args(out)...)
			expectExit(t, res, 2, "seal")
			if !strings.Contains(res.stderr, "eksir: error: ") {
				t.Errorf("stderr has no 'eksir: error:' line:\n%s", res.stderr)
			}
			if tc.hint && !strings.Contains(res.stderr, "\nhint: ") {
				t.Errorf("stderr has no 'hint:' line:\n%s", res.stderr)
			}
			for _, n := range tc.names {
				if !strings.Contains(res.stderr, n) {
					t.Errorf("stderr does not name %q:\n%s", n, res.stderr)
				}
			}
			expectNoOutput(t, out)
		})
	}
}

func TestSealRefusesLinks(t *testing.T) {
	key, _ := newKey(t)
	for _, tc := range []struct {
		name, target, where string
		relativeDir         bool
	}{
		{"relative-target-outside", "../outside.txt", "outside", false},
		{"absolute-target-outside", "/etc/passwd", "outside", false},
		{"absolute-target-outside-relative-dir", "/etc/passwd", "outside", true},
		{"relative-target-outside-relative-dir", "../outside.txt", "outside", true},
		{"dangling-outside", "../../no/such/file", "outside", false},
		// A link is refused even when it points inside: bags hold no links.
		{"relative-target-inside", "a.txt", "inside", false},
		{"relative-target-inside-relative-dir", "a.txt", "inside", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			src := filepath.Join(root, "src")
			writeFile(t, src, "a.txt", []byte("a\n"))
			writeFile(t, root, "outside.txt", []byte("not evidence\n"))
			if err := os.Symlink(tc.target, filepath.Join(src, "sub-link")); err != nil {
				t.Fatal(err)
			}
			dirArg := src
			if tc.relativeDir {
				dirArg = "src"
			}
			out := filepath.Join(root, "out")
			res := run(t, root, "seal", "--incident", "T", "--key", key, dirArg, "--out", out)
			expectUsageError(t, res, "sub-link", tc.target, tc.where+" the folder")
			expectNoOutput(t, out)
		})
	}
}

func TestSealRefusesNonUTF8Name(t *testing.T) {
	key, _ := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, src, "ok.txt", []byte("ok\n"))
	writeFile(t, src, "sub/bad\xffname.txt", []byte("latin-1 name\n"))
	out := filepath.Join(root, "out")
	res := run(t, root, "seal", "--incident", "T", "--key", key, src, "--out", out)
	expectUsageError(t, res, `bad\xffname.txt`, "UTF-8")
	expectNoOutput(t, out)
}

// TestSealAwkwardNames: names a manifest must encode, and empty files, seal
// and verify.
func TestSealAwkwardNames(t *testing.T) {
	key, pub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	for rel, content := range map[string]string{
		"line\nbreak.txt": "newline\n", "100%.txt": "percent\n", "%0A": "literal\n", "%": "bare percent\n",
		"empty": "", "sub/empty": "", "sub/deeper/also empty": "",
	} {
		writeFile(t, src, rel, []byte(content))
	}
	out := filepath.Join(root, "out")
	res := mustRun(t, root, "seal", "--incident", "AWK", "--key", key, src, "--out", out)
	if !strings.Contains(res.stdout, "payload  37 bytes in 7 files") && !strings.Contains(res.stdout, "37 bytes in 7 files") {
		t.Errorf("seal output does not report 37 bytes in 7 files:\n%s", res.stdout)
	}
	res = mustRun(t, root, "verify", filepath.Join(out, "AWK.tar.zst"), "--pubkey", pub)
	if !strings.Contains(res.stdout, "7 files, every sha256 matches") {
		t.Errorf("verify output:\n%s", res.stdout)
	}
}

// TestSealUnreadableFile runs the seal as an unprivileged user (the tests
// run as root, which reads everything) on a tree with one mode-000 file.
func TestSealUnreadableFile(t *testing.T) {
	if os.Geteuid() != 0 {
		labtest.SkipOrFail(t, "needs root to run the seal as uid 65534 (CI runs as root)")
	}
	const nobody = 65534
	root := t.TempDir()
	// The unprivileged user must reach the tree: open up t.TempDir's folders.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(root, "src")
	writeFile(t, src, "a.txt", []byte("readable\n"))
	writeFile(t, src, "sub/z.txt", []byte("readable\n"))
	secret := writeFile(t, src, "sub/secret.bin", []byte("only root can read this\n"))
	if err := os.Chmod(secret, 0); err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(root, "key")
	if err := os.Mkdir(keyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(keyDir, "k.key")
	mustRun(t, "", "keygen", "--out", key)
	out := filepath.Join(root, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{key, out} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	res := runCmd(t, root, nil, &syscall.Credential{Uid: nobody, Gid: nobody},
		"seal", "--incident", "T", "--key", key, src, "--out", out)
	expectUsageError(t, res, "secret.bin")
	expectNoOutput(t, out)

	// The control: the same user seals the tree once the file is readable.
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	res = runCmd(t, root, nil, &syscall.Credential{Uid: nobody, Gid: nobody},
		"seal", "--incident", "T", "--key", key, src, "--out", out)
	expectExit(t, res, 0, "seal as uid 65534 after chmod 644")
	mustRun(t, "", "verify", filepath.Join(out, "T.tar.zst"), "--pubkey", key+".pub")
}

// TestSealManySmallFiles: 100,000 files of 4 KiB in 100 folders.
func TestSealManySmallFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 files: skipped with -short")
	}
	key, pub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	const dirs, perDir, size = 100, 1000, 4 << 10
	var wg sync.WaitGroup
	errs := make(chan error, dirs)
	for d := 0; d < dirs; d++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := filepath.Join(src, fmt.Sprintf("d%03d", d))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				errs <- err
				return
			}
			buf := make([]byte, size)
			for f := 0; f < perDir; f++ {
				// Distinct content per file: its own number, repeated.
				stamp := fmt.Sprintf("file %03d/%04d\n", d, f)
				for i := 0; i < size; i += len(stamp) {
					copy(buf[i:], stamp)
				}
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d.txt", f)), buf, 0o644); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	out := filepath.Join(root, "out")
	res := mustRun(t, root, "seal", "--incident", "MANY", "--key", key, "--compress", "none", src, "--out", out)
	if want := fmt.Sprintf("%d bytes in %d files", dirs*perDir*size, dirs*perDir); !strings.Contains(res.stdout, want) {
		t.Errorf("seal output does not report %s:\n%s", want, res.stdout)
	}
	res = mustRun(t, root, "verify", filepath.Join(out, "MANY.tar"), "--pubkey", pub)
	if want := fmt.Sprintf("%d.%d", dirs*perDir*size, dirs*perDir); !failedOrOK(res.stdout, "payload-oxum", want) {
		t.Errorf("verify output does not report Payload-Oxum %s:\n%s", want, res.stdout)
	}
}

// failedOrOK reports whether the verify table has a row for check whose
// detail contains detail.
func failedOrOK(out, check, detail string) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == check && strings.Contains(line, detail) {
			return true
		}
	}
	return false
}
