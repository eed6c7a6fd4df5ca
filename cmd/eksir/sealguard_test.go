package main

// Issue #10, the seal and acquire side: seal never destroys, never adopts
// silently, refuses a custody log or seal time verify would reject, and
// acquire is all-or-nothing.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/bagitcheck"
	"github.com/eksir/eksir/report"
)

// newCase acquires files (name -> content) into a new case and returns the
// case dir.
func newCase(t *testing.T, root, key, incident string, files map[string]string) string {
	t.Helper()
	cases := filepath.Join(root, "cases")
	src := filepath.Join(root, "acq-src")
	for rel, content := range files {
		p := writeFile(t, src, rel, []byte(content))
		mustRun(t, root, "--case-dir", cases, "acquire", "--incident", incident, "--key", key, "--as", rel, p)
	}
	return cases
}

// expectCode checks the exit code, an "eksir: error:" line, a hint, and
// that stderr names each of names.
func expectCode(t *testing.T, res result, code int, names ...string) {
	t.Helper()
	expectExit(t, res, code, "eksir")
	if !strings.Contains(res.stderr, "eksir: error: ") || !strings.Contains(res.stderr, "\nhint: ") {
		t.Errorf("stderr lacks an error or a hint:\n%s", res.stderr)
	}
	for _, n := range names {
		if !strings.Contains(res.stderr, n) {
			t.Errorf("stderr does not name %q:\n%s", n, res.stderr)
		}
	}
}

// snapshot returns every file under dir with its content, to show that a
// refused command changed nothing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[rel] = string(b)
		} else {
			out[rel] = fi.Mode().String()
		}
		return nil
	})
	return out
}

func sameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("%s changed: %d entries before, %d after", what, len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed: %s", what, k)
		}
	}
}

// Item 4: an existing archive is never replaced, whether it came from the
// same input or not, and whether only its hand-over log is left.
func TestSealRefusesToReplace(t *testing.T) {
	key, pub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, src, "a.txt", []byte("a\n"))
	out := filepath.Join(root, "out")
	mustRun(t, root, "seal", "--incident", "R", "--key", key, src, "--out", out)
	archive := filepath.Join(out, "R.tar.zst")
	mustRun(t, root, "custody", "transfer", archive, "--key", key, "--pubkey", pub, "--from", "alice", "--to", "lab", "--reason", "analysis")
	before := snapshot(t, out)

	writeFile(t, src, "b.txt", []byte("b\n"))
	res := run(t, root, "seal", "--incident", "R", "--key", key, src, "--out", out)
	expectCode(t, res, 2, archive, "--out", "custody.jsonl")
	sameSnapshot(t, "output folder", before, snapshot(t, out))

	// A case sealed into the same folder twice.
	cases := newCase(t, root, key, "RC", map[string]string{"x.txt": "x\n"})
	mustRun(t, root, "--case-dir", cases, "seal", "--incident", "RC", "--key", key, "--out", out)
	before = snapshot(t, out)
	res = run(t, root, "--case-dir", cases, "seal", "--incident", "RC", "--key", key, "--out", out)
	expectCode(t, res, 2, "RC.tar.zst", "already exists")
	sameSnapshot(t, "output folder", before, snapshot(t, out))

	// Only the hand-over log of a moved archive remains: still refused.
	if err := os.Rename(archive, archive+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(archive+".sha256", archive+".sha256.moved"); err != nil {
		t.Fatal(err)
	}
	res = run(t, root, "seal", "--incident", "R", "--key", key, src, "--out", out)
	expectCode(t, res, 2, "R.tar.zst.custody.jsonl")
	if _, err := os.Stat(archive); err == nil {
		t.Error("a refused seal wrote the archive")
	}
}

// Item 4: --out inside the folder being sealed is refused, nothing written.
func TestSealRefusesOutInsideItself(t *testing.T) {
	key, _ := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, src, "a.txt", []byte("a\n"))
	for _, out := range []string{src, filepath.Join(src, "out"), filepath.Join(src, "x", "y")} {
		before := snapshot(t, src)
		res := run(t, root, "seal", "--incident", "IN", "--key", key, src, "--out", out)
		expectCode(t, res, 2, "inside")
		sameSnapshot(t, "sealed folder", before, snapshot(t, src))
	}
	// Relative paths and a link to the folder are seen through.
	if err := os.Symlink(src, filepath.Join(root, "via-link")); err != nil {
		t.Fatal(err)
	}
	res := run(t, root, "seal", "--incident", "IN", "--key", key, "src", "--out", "via-link/out")
	expectCode(t, res, 2, "inside")

	cases := newCase(t, root, key, "INC", map[string]string{"x.txt": "x\n"})
	caseDir := filepath.Join(cases, "INC")
	for _, out := range []string{caseDir, filepath.Join(caseDir, "data"), filepath.Join(caseDir, "out")} {
		before := snapshot(t, caseDir)
		res := run(t, root, "--case-dir", cases, "seal", "--incident", "INC", "--key", key, "--out", out)
		expectCode(t, res, 2, "inside")
		sameSnapshot(t, "case folder", before, snapshot(t, caseDir))
	}
}

// Item 5: files no custody record acquired stop the seal; --adopt records
// them as recovered with a warning; links, devices and FIFOs are never read.
func TestSealUnrecordedFiles(t *testing.T) {
	key, pub := newKey(t)
	root := t.TempDir()
	cases := newCase(t, root, key, "ADOPT", map[string]string{"x.txt": "x\n"})
	data := filepath.Join(cases, "ADOPT", "data")
	writeFile(t, data, "k8s/planted.json", []byte("{}\n"))
	out := filepath.Join(root, "out")
	logPath := filepath.Join(cases, "ADOPT", "metadata", "custody.jsonl")
	logBefore, _ := os.ReadFile(logPath)

	res := run(t, root, "--case-dir", cases, "seal", "--incident", "ADOPT", "--key", key, "--out", out)
	expectCode(t, res, 3, "data/k8s/planted.json", "--adopt")
	expectNoOutput(t, out)
	if after, _ := os.ReadFile(logPath); !bytes.Equal(after, logBefore) {
		t.Error("a refused seal changed the custody log")
	}

	res = mustRun(t, root, "--case-dir", cases, "seal", "--incident", "ADOPT", "--key", key, "--adopt", "--out", out)
	if !strings.Contains(res.stderr, "warning: adopted data/k8s/planted.json") || !strings.Contains(res.stderr, sha256Hex([]byte("{}\n"))) {
		t.Errorf("no adoption warning with the hash:\n%s", res.stderr)
	}
	log, _ := os.ReadFile(logPath)
	if !bytes.Contains(log, []byte(`"action":"recovered"`)) || !bytes.Contains(log, []byte(sha256Hex([]byte("{}\n")))) {
		t.Errorf("custody log has no recovered record for the adopted file:\n%s", log)
	}
	mustRun(t, root, "verify", filepath.Join(out, "ADOPT.tar.zst"), "--pubkey", pub)

	// Links, FIFOs: refused with or without --adopt, never read.
	for _, tc := range []struct {
		name string
		make func(p string) error
		kind string
	}{
		{"symlink-to-passwd", func(p string) error { return os.Symlink("/etc/passwd", p) }, "symbolic link"},
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "FIFO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			cases := newCase(t, root, key, "HOST", map[string]string{"x.txt": "x\n"})
			p := filepath.Join(cases, "HOST", "data", "evil")
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(cases, "HOST", "metadata", "custody.jsonl")
			logBefore, _ := os.ReadFile(logPath)
			for _, adopt := range [][]string{nil, {"--adopt"}} {
				out := filepath.Join(root, "out")
				args := append([]string{"--case-dir", cases, "seal", "--incident", "HOST", "--key", key, "--out", out}, adopt...)
				res := run(t, root, args...)
				expectCode(t, res, 3, "data/evil", tc.kind)
				expectNoOutput(t, out)
				after, _ := os.ReadFile(logPath)
				if !bytes.Equal(after, logBefore) {
					t.Errorf("custody log changed (%v)", adopt)
				}
				if passwd, err := os.ReadFile("/etc/passwd"); err == nil && bytes.Contains(after, []byte(sha256Hex(passwd))) {
					t.Error("the link's target was hashed into the chain")
				}
			}
		})
	}
}

// Item 6: a custody record whose signature does not verify stops the seal
// (exit 3) before anything is signed; a record by another examiner is
// accepted with --custodian-key.
func TestSealChecksCustodySignatures(t *testing.T) {
	key, _ := newKey(t)
	other, otherPub := newKey(t)
	root := t.TempDir()
	cases := newCase(t, root, key, "SIG", map[string]string{"x.txt": "x\n"})

	// Another examiner acquires into the same case.
	p := writeFile(t, root, "y.txt", []byte("y\n"))
	mustRun(t, root, "--case-dir", cases, "acquire", "--incident", "SIG", "--key", other, p)
	out := filepath.Join(root, "out")
	res := run(t, root, "--case-dir", cases, "seal", "--incident", "SIG", "--key", key, "--out", out)
	expectCode(t, res, 3, "record 2", "not trusted", "--custodian-key")
	expectNoOutput(t, out)
	mustRun(t, root, "--case-dir", cases, "seal", "--incident", "SIG", "--key", key, "--custodian-key", otherPub, "--out", out, "--seal-time", caseSealTime())
	// The report in the bag trusts the keys the seal trusted: the other
	// examiner's record is not reported as tampering.
	var sealed report.Report
	for _, e := range readEntries(t, filepath.Join(out, "SIG.tar.zst")) {
		if e.hdr.Name == "SIG/"+evidence.ReportJSONTag {
			if err := json.Unmarshal(e.data, &sealed); err != nil {
				t.Fatal(err)
			}
		}
	}
	if sealed.Integrity.Status != "verified" || len(sealed.Integrity.Checks) == 0 {
		t.Errorf("the sealed report of a case with a custodian's record: integrity %q, %d checks", sealed.Integrity.Status, len(sealed.Integrity.Checks))
	}

	// An edited last record: links still hold, the signature does not.
	root = t.TempDir()
	cases = newCase(t, root, key, "EDIT", map[string]string{"x.txt": "x\n"})
	logPath := filepath.Join(cases, "EDIT", "metadata", "custody.jsonl")
	b, _ := os.ReadFile(logPath)
	edited := bytes.Replace(b, []byte(`"method":"eksir acquire: copied from `), []byte(`"method":"eksir acquire: copied from X`), 1)
	if bytes.Equal(edited, b) {
		t.Fatal("nothing edited")
	}
	if err := os.WriteFile(logPath, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	out = filepath.Join(root, "out")
	res = run(t, root, "--case-dir", cases, "seal", "--incident", "EDIT", "--key", key, "--out", out)
	expectCode(t, res, 3, "record 1", "signature does not verify")
	expectNoOutput(t, out)
	if after, _ := os.ReadFile(logPath); !bytes.Equal(after, edited) {
		t.Error("a refused seal changed the custody log")
	}
}

// Item 6: --seal-time may not precede the last custody record nor lie in
// the future.
func TestSealTimeBounds(t *testing.T) {
	key, _ := newKey(t)
	root := t.TempDir()
	cases := newCase(t, root, key, "ST", map[string]string{"x.txt": "x\n"})
	out := filepath.Join(root, "out")
	for _, tc := range []struct{ at, says string }{
		{"2020-01-01T00:00:00Z", "precedes the last custody record"},
		{time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "future"},
	} {
		res := run(t, root, "--case-dir", cases, "seal", "--incident", "ST", "--key", key, "--seal-time", tc.at, "--out", out)
		expectCode(t, res, 2, tc.says, tc.at[:10])
		expectNoOutput(t, out)
	}
	src := filepath.Join(root, "src")
	writeFile(t, src, "a.txt", []byte("a\n"))
	res := run(t, root, "seal", "--incident", "STD", "--key", key, "--seal-time", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), src, "--out", out)
	expectCode(t, res, 2, "future")
	expectNoOutput(t, out)
}

// Item 9: an empty folder or an empty case seals into a bag with a data/
// folder, which a BagIt checker accepts.
func TestSealEmptyIsAValidBag(t *testing.T) {
	key, pub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "empty")
	if err := os.MkdirAll(src, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "out")
	mustRun(t, root, "seal", "--incident", "EMPTY", "--key", key, "--compress", "none", "--seal-time", sealTime, src, "--out", out)
	archive := filepath.Join(out, "EMPTY.tar")
	mustRun(t, root, "verify", archive, "--pubkey", pub)
	dest := filepath.Join(root, "x")
	names := extractGo(t, archive, dest)
	if !containsString(names, "EMPTY/data/") {
		t.Errorf("no data/ folder entry in %q", names)
	}
	for name, check := range map[string]func(string) []bagitcheck.Violation{"Check": bagitcheck.Check, "CheckProfile": bagitcheck.CheckProfile} {
		if v := check(filepath.Join(dest, "EMPTY")); len(v) > 0 {
			t.Errorf("bagitcheck.%s: %v", name, v)
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Item 11: acquire refuses bad input with exit 2, checks everything before
// writing anything, and leaves no case behind when it created one.
func TestAcquireBadInput(t *testing.T) {
	key, _ := newKey(t)
	root := t.TempDir()
	good := writeFile(t, root, "in/good.txt", []byte("good\n"))
	dup := writeFile(t, root, "other/good.txt", []byte("other\n"))
	if err := os.Symlink(good, filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		names []string
	}{
		{"directory", []string{good, filepath.Join(root, "in")}, []string{"is a folder"}},
		{"dev-zero", []string{"/dev/zero"}, []string{"/dev/zero", "not a regular file"}},
		{"fifo", []string{good, fifo}, []string{"fifo", "not a regular file"}},
		{"symlink", []string{good, filepath.Join(root, "link.txt")}, []string{"link.txt", "symbolic link"}},
		{"missing", []string{good, filepath.Join(root, "nope")}, []string{"nope"}},
		{"same-name-twice", []string{good, dup}, []string{"data/manual/good.txt"}},
		{"as-reserved-name", []string{"--as", "x.eksir-tmp-1", good}, []string{"reserved"}},
		{"as-escape", []string{"--as", "a\x1b[31m", good}, []string{"control character"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cases := filepath.Join(t.TempDir(), "cases")
			args := append([]string{"--case-dir", cases, "acquire", "--incident", "BAD", "--key", key}, tc.args...)
			res := run(t, root, args...)
			expectCode(t, res, 2, tc.names...)
			if _, err := os.Stat(filepath.Join(cases, "BAD")); err == nil {
				t.Errorf("a failed acquire left the case folder behind: %q", listDir(t, cases))
			}
		})
	}

	// In an existing case: a duplicate item and an --as collision are
	// exit 2 and change nothing.
	cases := newCase(t, root, key, "DUP", map[string]string{"manual/good.txt": "first\n"})
	before := snapshot(t, filepath.Join(cases, "DUP"))
	for _, args := range [][]string{
		{good},
		{"--as", "manual/good.txt", dup},
		{filepath.Join(root, "other", "new.txt"), good},
	} {
		if len(args) == 2 && args[0] != "--as" {
			writeFile(t, root, "other/new.txt", []byte("new\n"))
		}
		res := run(t, root, append([]string{"--case-dir", cases, "acquire", "--incident", "DUP", "--key", key}, args...)...)
		expectCode(t, res, 2, "data/manual/good.txt")
		sameSnapshot(t, "case folder", before, snapshot(t, filepath.Join(cases, "DUP")))
	}

	// Hidden files are evidence, in acquire as in seal DIR.
	hidden := writeFile(t, root, "home/.bash_history", []byte("ls\n"))
	mustRun(t, root, "--case-dir", cases, "acquire", "--incident", "DUP", "--key", key, hidden)
	mustRun(t, root, "seal", "--incident", "HID", "--key", key, filepath.Join(root, "home"), "--out", filepath.Join(root, "hid-out"))
}

// Item 11: seal DIR and acquire agree on names: a name acquire refuses,
// seal DIR refuses too.
func TestSealDirNamesLikeAcquire(t *testing.T) {
	key, _ := newKey(t)
	root := t.TempDir()
	for _, name := range []string{"a\x1b[31m", "x.eksir-tmp-1"} {
		src := filepath.Join(t.TempDir(), "src")
		p := writeFile(t, src, name, []byte("x\n"))
		out := filepath.Join(root, "out")
		res := run(t, root, "seal", "--incident", "N", "--key", key, src, "--out", out)
		expectExit(t, res, 2, "seal DIR "+name)
		expectNoOutput(t, out)
		res = run(t, root, "--case-dir", filepath.Join(root, "cases"), "acquire", "--incident", "N", "--key", key, p)
		expectExit(t, res, 2, "acquire "+name)
	}
}

// Item 11: custody transfer refuses empty --from/--to; --custodian-key
// trusts another examiner's earlier hand-over.
func TestCustodyTransferInput(t *testing.T) {
	key, pub := newKey(t)
	other, otherPub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, src, "a.txt", []byte("a\n"))
	out := filepath.Join(root, "out")
	mustRun(t, root, "seal", "--incident", "T", "--key", key, src, "--out", out)
	archive := filepath.Join(out, "T.tar.zst")
	for _, args := range [][]string{
		{"--from", "", "--to", "lab", "--reason", "r"},
		{"--from", "alice", "--to", " ", "--reason", "r"},
	} {
		res := run(t, root, append([]string{"custody", "transfer", archive, "--key", key, "--pubkey", pub}, args...)...)
		expectCode(t, res, 2, "is empty")
		if _, err := os.Stat(archive + ".custody.jsonl"); err == nil {
			t.Error("a refused transfer wrote a hand-over log")
		}
	}
	// Another examiner receives it and hands it on.
	mustRun(t, root, "custody", "transfer", archive, "--key", other, "--pubkey", pub, "--from", "alice", "--to", "bob", "--reason", "analysis")
	res := run(t, root, "custody", "transfer", archive, "--key", key, "--pubkey", pub, "--from", "bob", "--to", "alice", "--reason", "back")
	expectExit(t, res, 3, "transfer without the other examiner's key")
	mustRun(t, root, "custody", "transfer", archive, "--key", key, "--pubkey", pub, "--custodian-key", otherPub, "--from", "bob", "--to", "alice", "--reason", "back")
}

// Item 11: seal --help shows --seal-time in its usage line.
func TestSealHelpShowsSealTime(t *testing.T) {
	res := mustRun(t, "", "seal", "--help")
	usage := res.stdout[strings.Index(res.stdout, "USAGE:"):]
	usage = usage[:strings.Index(usage, "\n\n")]
	for _, f := range []string{"--seal-time", "--adopt"} {
		if !strings.Contains(usage, f) {
			t.Errorf("seal usage does not show %s:\n%s", f, usage)
		}
	}
}

// Item 11: an acquire interrupted in the middle of a copy removes the case
// folder it created, and in an existing case leaves the case as it was.
func TestAcquireInterruptedMidCopy(t *testing.T) {
	key, _ := newKey(t)
	root := t.TempDir()
	existing := newCase(t, root, key, "OLD", map[string]string{"x.txt": "x\n"})
	for _, tc := range []struct {
		name, cases, incident string
		wantCase              bool
	}{
		{"new-case", filepath.Join(root, "fresh"), "NEW", false},
		{"existing-case", existing, "OLD", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caseDir := filepath.Join(tc.cases, tc.incident)
			before := snapshot(t, caseDir)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, eksirBin, "--case-dir", tc.cases, "acquire", "--incident", tc.incident, "--key", key, "--as", "stream.bin", "-")
			cmd.Env = cleanEnv()
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if _, err := stdin.Write(bytes.Repeat([]byte("x"), 1<<16)); err != nil {
				t.Fatal(err)
			}
			// Wait until the copy is under way: its temporary file exists.
			deadline := time.Now().Add(30 * time.Second)
			for {
				m, _ := filepath.Glob(filepath.Join(caseDir, "data", ".stream.bin.eksir-tmp-*"))
				if len(m) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the copy never started")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			// The copy sees the interrupt at its next read.
			time.Sleep(300 * time.Millisecond)
			_, _ = stdin.Write([]byte("more"))
			stdin.Close()
			err = cmd.Wait()
			if cmd.ProcessState.ExitCode() != 130 {
				t.Fatalf("interrupted acquire: %v, exit %d\n%s", err, cmd.ProcessState.ExitCode(), stderr.String())
			}
			if !tc.wantCase {
				if _, err := os.Stat(caseDir); err == nil {
					t.Errorf("the interrupted acquire left the case it created: %q", listDir(t, caseDir))
				}
				return
			}
			after := snapshot(t, caseDir)
			delete(after, "metadata/items.json")
			delete(before, "metadata/items.json")
			sameSnapshot(t, "case folder", before, after)
		})
	}
}
