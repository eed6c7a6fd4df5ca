//go:build lean

package main

// The lean build is the evidence front: it runs the evidence commands itself
// and hands every other command to eksir-engine, the full build. It links
// neither client-go nor the AWS SDK, whose package initialisers alone cost
// more memory than sealing 2 GiB (docs/architecture.md).

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"
)

// buildKind names this build in `eksir version`.
const buildKind = "lean"

// engineBadInput is empty: the packages whose sentinels it lists in the full
// build are not linked here, so their errors cannot reach exit.go.
var engineBadInput []error

const (
	engineName = "eksir-engine"
	engineEnv  = "EKSIR_ENGINE"
	engineHint = "this eksir is the evidence front (keygen, acquire, seal, verify, custody); put eksir-engine next to it " +
		"('make build' builds both) or set EKSIR_ENGINE, or install the full build with 'go install ./cmd/eksir'"
)

// engine returns an action that replaces this process with eksir-engine,
// given the original arguments unchanged: the engine parses them exactly as
// the front did (same declarations). exec keeps the pid, so the exit code,
// signals, the terminal, stdin and stdout are the engine's, with nothing in
// between. argv[0] stays "eksir", the command the responder typed.
func engine(path string) cli.ActionFunc {
	return func(c *cli.Context) error {
		self, bin, err := findEngine()
		if err != nil {
			return hinted{fmt.Errorf("'eksir %s' runs in %s: %w", path, engineName, err), engineHint}
		}
		// main's handler would swallow a Ctrl-C that arrives before the exec.
		// Without it the signal ends this process, as it would the engine;
		// one that came already is honoured here.
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		if err := c.Context.Err(); err != nil {
			return err
		}
		if err := os.Setenv(frontEnv, self); err != nil {
			return err
		}
		err = syscall.Exec(bin, append([]string{"eksir"}, os.Args[1:]...), os.Environ())
		return hinted{fmt.Errorf("run %s: %w", bin, err), "eksir-engine must be an executable full build of eksir ('make build' writes one)"}
	}
}

// findEngine returns this executable and the engine to run, looked up in
// order: $EKSIR_ENGINE; eksir-engine beside this executable (symlinks
// resolved, so a link in PATH to bin/eksir finds bin/eksir-engine);
// eksir-engine in PATH. An engine that is this front itself, or another
// front, is refused: exec'ing it would loop forever.
func findEngine() (self, bin string, err error) {
	if from := os.Getenv(frontEnv); from != "" {
		exe, _ := os.Executable()
		return "", "", fmt.Errorf("%s handed the command to %s, which is an evidence front too (built with -tags lean), not the full build", from, exe)
	}
	if self, err = os.Executable(); err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		return "", "", fmt.Errorf("locate this executable: %w", err)
	}
	if p := os.Getenv(engineEnv); p != "" {
		bin, err = checkEngine(p, self)
		if err != nil {
			return "", "", fmt.Errorf("%s=%s: %w", engineEnv, p, err)
		}
		return self, bin, nil
	}
	if p := filepath.Join(filepath.Dir(self), engineName); isFile(p) {
		bin, err = checkEngine(p, self)
		return self, bin, err
	}
	if p, lerr := exec.LookPath(engineName); lerr == nil {
		bin, err = checkEngine(p, self)
		return self, bin, err
	}
	return "", "", fmt.Errorf("not found: %s is unset, no %s in %s, none in PATH", engineEnv, engineName, filepath.Dir(self))
}

// checkEngine resolves p and refuses this executable itself.
func checkEngine(p, self string) (string, error) {
	abs, err := filepath.Abs(p)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a file", abs)
	}
	if me, err := os.Stat(self); err == nil && os.SameFile(fi, me) {
		return "", errors.New(abs + " is this evidence front itself, not the full build")
	}
	return abs, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
