package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
)

// run executes the CLI as main does and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.RunContext(context.Background(), append([]string{"eksir"}, args...))
	code := evidencecli.Report(&errOut, "eksir", err, sentinels)
	return out.String(), errOut.String(), code
}

func TestLabWithoutLab(t *testing.T) {
	dir := t.TempDir()
	for _, verb := range []string{"status", "down"} {
		_, stderr, code := runCLI(t, "lab", verb, "--dir", dir)
		if code != evidencecli.ExitFailure || !strings.Contains(stderr, "no lab running") || !strings.Contains(stderr, "hint: start one with 'eksir lab up'") {
			t.Errorf("lab %s on an empty folder: exit %d\n%s", verb, code, stderr)
		}
	}
}

func TestLabSeedUsage(t *testing.T) {
	_, stderr, code := runCLI(t, "lab", "seed", "--dir", t.TempDir())
	if code != evidencecli.ExitBadInput || !strings.Contains(stderr, "scenario") {
		t.Errorf("seed without --scenario: exit %d\n%s", code, stderr)
	}
}

func TestLabSeedUnknownScenario(t *testing.T) {
	_, stderr, code := runCLI(t, "lab", "seed", "--dir", t.TempDir(), "--scenario", "ransomware")
	if code != evidencecli.ExitBadInput || !strings.Contains(stderr, "hint: scenarios: crypto-miner, stolen-credentials") {
		t.Errorf("unknown scenario: exit %d\n%s", code, stderr)
	}
}
