package main

// The front/engine split as a responder meets it: the lean eksir runs the
// evidence commands itself, hands everything else to eksir-engine with the
// same output and exit code, and says what to do when there is no engine.

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLeanDeps keeps the heavy dependencies out of the front: their package
// initialisers alone cost more memory than sealing 2 GiB.
func TestLeanDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "lean", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -tags lean -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	forbidden := []string{
		"k8s.io", "sigs.k8s.io", "github.com/aws", "cel.dev", "github.com/google/cel-go",
		"github.com/eksir/eksir/playbooks", "github.com/eksir/eksir/isolate", "github.com/eksir/eksir/collect",
		"github.com/eksir/eksir/lab", "github.com/eksir/eksir/action",
		"github.com/eksir/eksir/internal/kube", "github.com/eksir/eksir/internal/aws",
	}
	have := map[string]bool{}
	for _, d := range deps {
		have[d] = true
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("the lean build links %s", d)
			}
		}
	}
	// The list must be the real one, not an empty answer.
	for _, want := range []string{"github.com/eksir/eksir/evidence", "github.com/urfave/cli/v2"} {
		if !have[want] {
			t.Errorf("the lean build does not link %s; go list said:\n%s", want, out)
		}
	}
}

// splitLayout fails the test unless eksirBin is the lean front with the
// full build beside it as eksir-engine (what make build writes).
func splitLayout(t *testing.T) {
	t.Helper()
	for bin, want := range map[string]string{eksirBin: "lean", engineBin: "full"} {
		res := runBin(t, bin, "", nil, cleanEnv(), "--output", "json", "version")
		var v struct{ Build string }
		if res.code != 0 || json.Unmarshal([]byte(res.stdout), &v) != nil || v.Build != want {
			t.Fatalf("%s must be the %s build (make build writes bin/eksir lean and bin/eksir-engine full): %v", bin, want, res)
		}
	}
}

// runBin runs bin with args in dir, with env and optional stdin.
func runBin(t *testing.T, bin, dir string, stdin io.Reader, env []string, args ...string) result {
	t.Helper()
	return runProcess(t, bin, dir, stdin, env, nil, args...)
}

// copyBin copies bin to dir/name, executable.
func copyBin(t *testing.T, bin, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// noEngineEnv is the clean environment with no eksir-engine in PATH.
func noEngineEnv() []string {
	var env []string
	for _, kv := range cleanEnv() {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			var keep []string
			for _, d := range filepath.SplitList(v) {
				if !isRegular(filepath.Join(d, "eksir-engine")) {
					keep = append(keep, d)
				}
			}
			kv = "PATH=" + strings.Join(keep, string(filepath.ListSeparator))
		}
		env = append(env, kv)
	}
	return env
}

func isRegular(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// TestFrontSealsAlone seals and verifies with the front alone in a folder and
// no engine anywhere: the evidence commands are in the front itself.
func TestFrontSealsAlone(t *testing.T) {
	splitLayout(t)
	front := copyBin(t, eksirBin, t.TempDir(), "eksir")
	env, work := noEngineEnv(), t.TempDir()
	src := t.TempDir()
	writeFile(t, src, "logs/app.log", pseudoRandom(1<<20, 7))
	key := filepath.Join(work, "k.key")
	for _, args := range [][]string{
		{"keygen", "--out", key},
		{"seal", "--incident", "INC-1", "--key", key, "--out", work, src},
		{"verify", filepath.Join(work, "INC-1.tar.zst"), "--pubkey", key + ".pub"},
	} {
		if res := runBin(t, front, work, nil, env, args...); res.code != 0 {
			t.Fatalf("front alone: eksir %q: %v", args, res)
		}
	}
}

// TestFrontDelegatesSameOutput runs commands of the engine through the front
// and directly: help (declared once, printed by each build itself) and real
// runs (exec'd) must match byte for byte, exit code included.
func TestFrontDelegatesSameOutput(t *testing.T) {
	splitLayout(t)
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{[]string{"--help"}, 0, "playbooks"},
		{[]string{"playbooks", "list"}, 0, "game-day\t"},
		{[]string{"playbooks", "show", "triage"}, 0, "name: triage"},
		{[]string{"plan", "--help"}, 0, "--access-key"},
		{[]string{"run", "--help"}, 0, "--drill"},
		{[]string{"lab", "--help"}, 0, "seed"},
		{[]string{"lab", "seed", "--help"}, 0, "one of: crypto-miner, stolen-credentials"},
		{[]string{"permissions", "--format", "iam"}, 0, `"Version": "2012-10-17"`},
		{[]string{"playbooks", "validate", "../../playbooks/builtin/triage.yaml"}, 0, "triage.yaml: ok"},
		// exit codes 1 and 2 pass through exec unchanged
		{[]string{"playbooks", "validate", "../../playbooks/testdata/malformed/cycle.yaml"}, 2, "cycle in needs"},
		{[]string{"lab", "status", "--dir", t.TempDir()}, 1, "hint: start one with 'eksir lab up'"},
		// parsed by the front before any exec, with the same declarations
		{[]string{"lab", "seed", "--dir", t.TempDir()}, 2, `Required flag "scenario" not set`},
		{[]string{"plan", "triage", "--no-such-flag"}, 2, "flag provided but not defined"},
	} {
		name := []string{}
		for _, a := range tc.args {
			name = append(name, filepath.Base(a))
		}
		t.Run(strings.Join(name, " "), func(t *testing.T) {
			front := runBin(t, eksirBin, "", nil, cleanEnv(), tc.args...)
			eng := runBin(t, engineBin, "", nil, cleanEnv(), tc.args...)
			if front.code != tc.code || !strings.Contains(front.stdout+front.stderr, tc.want) {
				t.Errorf("through the front: want exit %d and %q, got %v", tc.code, tc.want, front)
			}
			if front != eng {
				t.Errorf("front and engine differ\nfront: %v\nengine: %v", front, eng)
			}
		})
	}
}

// TestFrontPassesStdin: the engine reads the front's stdin.
func TestFrontPassesStdin(t *testing.T) {
	splitLayout(t)
	for _, tc := range []struct {
		file string
		code int
		want string
	}{
		{"../../playbooks/testdata/malformed/cycle.yaml", 2, "cycle in needs"},
		{"../../playbooks/builtin/triage.yaml", 0, "/dev/stdin: ok"},
	} {
		b, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		res := runBin(t, eksirBin, "", bytes.NewReader(b), cleanEnv(), "playbooks", "validate", "/dev/stdin")
		if res.code != tc.code || !strings.Contains(res.stdout+res.stderr, tc.want) {
			t.Errorf("validate %s on stdin through the front: want exit %d and %q, got %v", tc.file, tc.code, tc.want, res)
		}
	}
}

// TestFrontWithoutEngine: the front alone refuses the engine's commands
// with exit 1, saying what it is and how to get the rest.
func TestFrontWithoutEngine(t *testing.T) {
	splitLayout(t)
	front := copyBin(t, eksirBin, t.TempDir(), "eksir")
	res := runBin(t, front, "", nil, noEngineEnv(), "playbooks", "list")
	expectExit(t, res, 1, "playbooks list without an engine")
	for _, want := range []string{"eksir: error: 'eksir playbooks list' runs in eksir-engine", "not found",
		"\nhint: this eksir is the evidence front", "make build", "go install ./cmd/eksir"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
	if res.stdout != "" {
		t.Errorf("stdout: %q", res.stdout)
	}
}

// TestFrontEngineLookup checks the lookup order ($EKSIR_ENGINE, beside the
// front with symlinks resolved, PATH) and that a front never execs a front.
func TestFrontEngineLookup(t *testing.T) {
	splitLayout(t)
	withEnv := func(env []string, kv ...string) []string { return append(append([]string{}, env...), kv...) }
	setPath := func(env []string, dir string) []string {
		out := []string{}
		for _, e := range env {
			if strings.HasPrefix(e, "PATH=") {
				e += string(filepath.ListSeparator) + dir
			}
			out = append(out, e)
		}
		return out
	}
	alone := copyBin(t, eksirBin, t.TempDir(), "eksir")
	pair := t.TempDir()
	paired := copyBin(t, eksirBin, pair, "eksir")
	copyBin(t, engineBin, pair, "eksir-engine")
	linkDir := t.TempDir()
	linked := filepath.Join(linkDir, "eksir")
	if err := os.Symlink(paired, linked); err != nil {
		t.Fatal(err)
	}
	inPath := t.TempDir()
	copyBin(t, engineBin, inPath, "eksir-engine")
	twin := t.TempDir()
	twinFront := copyBin(t, eksirBin, twin, "eksir")
	copyBin(t, eksirBin, twin, "eksir-engine")

	const ok = "game-day\t"
	for _, tc := range []struct {
		name string
		bin  string
		env  []string
		code int
		want string
	}{
		{"EKSIR_ENGINE", alone, withEnv(noEngineEnv(), "EKSIR_ENGINE="+engineBin), 0, ok},
		{"EKSIR_ENGINE wins over the one beside", paired, withEnv(noEngineEnv(), "EKSIR_ENGINE="+filepath.Join(t.TempDir(), "gone")), 1, "EKSIR_ENGINE="},
		{"beside the front", paired, noEngineEnv(), 0, ok},
		{"beside the symlink's target", linked, noEngineEnv(), 0, ok},
		{"PATH", alone, setPath(noEngineEnv(), inPath), 0, ok},
		{"EKSIR_ENGINE is the front itself", alone, withEnv(noEngineEnv(), "EKSIR_ENGINE="+alone), 1, "is this evidence front itself"},
		{"the engine beside is a copy of the front", twinFront, noEngineEnv(), 1, "is an evidence front too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runBin(t, tc.bin, "", nil, tc.env, "playbooks", "list")
			if res.code != tc.code || !strings.Contains(res.stdout+res.stderr, tc.want) {
				t.Errorf("want exit %d and %q, got %v", tc.code, tc.want, res)
			}
		})
	}
}

// TestFrontExecsInPlace: the engine replaces the front in the same process,
// so signals sent to the pid the responder's shell knows, and the exit
// status it waits for, are the engine's. The engine is caught while it
// waits on stdin.
func TestFrontExecsInPlace(t *testing.T) {
	splitLayout(t)
	cmd := exec.Command(eksirBin, "playbooks", "validate", "/dev/stdin")
	cmd.Env = cleanEnv()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	want, err := filepath.EvalSymlinks(engineBin)
	if err != nil {
		t.Fatal(err)
	}
	exe := ""
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if exe, _ = os.Readlink(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "exe")); exe == want {
			break
		}
	}
	if exe != want {
		t.Fatalf("pid %d runs %q, want the engine %s", cmd.Process.Pid, exe, want)
	}
	b, err := os.ReadFile("../../playbooks/builtin/triage.yaml")
	if err != nil {
		t.Fatal(err)
	}
	stdin.Write(b)
	stdin.Close()
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "/dev/stdin: ok") {
		t.Errorf("validate through the front: %v\n%s", err, out.String())
	}
}
