package main

// Helpers shared by the CLI-level acceptance tests: the eksir and
// eksir-verify binaries are built once in TestMain (or taken from EKSIR_BIN
// and the eksir-verify beside it, as make build writes them) and run with
// os/exec, the way a responder and a forensics lab run them.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/eksir/eksir/internal/labtest"
)

// eksirBin and verifyBin are the binaries under test.
var eksirBin, verifyBin string

// sealTime is passed as --seal-time so that archives are reproducible.
const sealTime = "2026-03-04T05:06:07.123456789Z"

// caseSealTime is the seal time for a case acquired just now: a seal may
// not precede the case's last custody record, nor lie in the future.
func caseSealTime() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if b := os.Getenv("EKSIR_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			fmt.Fprintln(os.Stderr, "EKSIR_BIN:", err)
			return 1
		}
		eksirBin, verifyBin = abs, filepath.Join(filepath.Dir(abs), "eksir-verify")
		if _, err := os.Stat(verifyBin); err != nil {
			fmt.Fprintf(os.Stderr, "EKSIR_BIN=%s: no eksir-verify beside it ('make build' writes both): %v\n", b, err)
			return 1
		}
		return labtest.Main(m)
	}
	dir, err := os.MkdirTemp("", "eksir-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The unreadable-file test runs the binary as another user.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	eksirBin, verifyBin = filepath.Join(dir, "eksir"), filepath.Join(dir, "eksir-verify")
	for bin, pkg := range map[string]string{eksirBin: ".", verifyBin: "../eksir-verify"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			return 1
		}
	}
	return labtest.Main(m) // the lab starts only for the tests that use it
}

// result is what one run of eksir produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// cleanEnv is the environment without any EKSIR_* setting of the caller.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		// The collector folder is not a setting: labtest.Main built the
		// static collector there for the binary under test to deliver.
		if !strings.HasPrefix(kv, "EKSIR_") || strings.HasPrefix(kv, "EKSIR_COLLECTOR_DIR=") {
			env = append(env, kv)
		}
	}
	return env
}

// run runs eksir in dir (the current directory when "") with args.
func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return runCmd(t, dir, nil, nil, args...)
}

// runCmd runs eksir with optional stdin and credentials.
func runCmd(t *testing.T, dir string, stdin io.Reader, cred *syscall.Credential, args ...string) result {
	t.Helper()
	return runProcess(t, eksirBin, dir, stdin, cleanEnv(), cred, args...)
}

// runProcess runs bin and returns its exit code and output. A run that
// hangs fails after five minutes.
func runProcess(t *testing.T, bin, dir string, stdin io.Reader, env []string, cred *syscall.Credential, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, stdin
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %q did not finish in five minutes", bin, args)
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("run %s %q: %v", bin, args, err)
	}
	return res
}

// mustRun runs eksir and fails the test unless it exits 0.
func mustRun(t *testing.T, dir string, args ...string) result {
	t.Helper()
	res := run(t, dir, args...)
	if res.code != 0 {
		t.Fatalf("eksir %q: want exit 0, got %v", args, res)
	}
	return res
}

// expectExit fails the test unless res exited with code.
func expectExit(t *testing.T, res result, code int, what string) {
	t.Helper()
	if res.code != code {
		t.Fatalf("%s: want exit %d, got %v", what, code, res)
	}
}

// newKey creates a key pair with 'eksir keygen' and returns both paths.
func newKey(t *testing.T) (key, pub string) {
	t.Helper()
	key = filepath.Join(t.TempDir(), "examiner.key")
	mustRun(t, "", "keygen", "--out", key)
	return key, key + ".pub"
}

// writeFile writes content to root/rel, creating parent folders.
func writeFile(t *testing.T, root, rel string, content []byte) string {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pseudoRandom returns n deterministic, incompressible-looking bytes.
func pseudoRandom(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// failed reports whether the verify table in out has a FAIL row for check
// and path. Paths used with it contain no spaces.
func failed(out, check, path string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == check && f[1] == "FAIL" && f[2] == path {
			return true
		}
	}
	return false
}

// tarEntry is one entry of an archive as read back.
type tarEntry struct {
	hdr  tar.Header
	data []byte
}

// openArchive returns a reader of the tar stream inside a .tar or .tar.zst.
func openArchive(t *testing.T, archive string) (io.Reader, func()) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(f)
	if magic, _ := br.Peek(4); bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		zr, err := zstd.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		return zr, func() { zr.Close(); f.Close() }
	}
	return br, func() { f.Close() }
}

// readEntries reads every entry of an archive, in order, with its content.
func readEntries(t *testing.T, archive string) []tarEntry {
	t.Helper()
	r, done := openArchive(t, archive)
	defer done()
	tr := tar.NewReader(r)
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read %s: %v", archive, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{hdr: *h, data: b})
	}
}

// extractGo extracts a bag archive (regular files and folders only) into
// dest with archive/tar and returns the entry names in archive order.
func extractGo(t *testing.T, archive, dest string) []string {
	t.Helper()
	var names []string
	for _, e := range readEntries(t, archive) {
		names = append(names, e.hdr.Name)
		p := filepath.Join(dest, filepath.FromSlash(e.hdr.Name))
		switch e.hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, e.data, 0o600); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected entry type %q for %s", e.hdr.Typeflag, e.hdr.Name)
		}
	}
	return names
}

// fixedTime is the mtime repacked entries get.
var fixedTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// repackAt writes the tree under src (which holds the bag's top folder) into
// a tar at archive: first the entries of order that still exist, in that
// order, then any new files in sorted order, as an attacker repacking by
// hand would. The tar is zstd-compressed when zst is set.
// mtime is the entries' mtime, which seal sets to the seal time (to the
// second).
func repackAt(t *testing.T, src string, order []string, archive string, zst bool, mtime time.Time) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	add := func(name string) {
		if seen[name] {
			return
		}
		p := filepath.Join(src, filepath.FromSlash(strings.TrimSuffix(name, "/")))
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[name] = true
		h := &tar.Header{Name: name, Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX, Typeflag: tar.TypeReg}
		var data []byte
		if fi.IsDir() {
			h.Typeflag, h.Mode = tar.TypeDir, 0o700
			if !strings.HasSuffix(h.Name, "/") {
				h.Name += "/"
			}
		} else {
			if data, err = os.ReadFile(p); err != nil {
				t.Fatal(err)
			}
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range order {
		add(name)
	}
	var extra []string
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		if fi.IsDir() {
			rel += "/"
		}
		if !seen[rel] {
			extra = append(extra, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(extra)
	for _, name := range extra {
		add(name)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if zst {
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		data = enc.EncodeAll(data, nil)
		enc.Close()
	}
	if err := os.WriteFile(archive, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeSidecar writes archive.sha256 in sha256sum format, as an attacker
// who changed the archive would.
func writeSidecar(t *testing.T, archive string) {
	t.Helper()
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	line := sha256Hex(b) + "  " + filepath.Base(archive) + "\n"
	if err := os.WriteFile(archive+".sha256", []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the regular files and folders under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listDir returns the names in dir, sorted; none when dir does not exist.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
