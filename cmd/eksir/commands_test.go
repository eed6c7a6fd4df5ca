package main

// The commands as a responder meets them: help, output and exit codes of
// the binary, run with os/exec.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestCommandsOutput(t *testing.T) {
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
		{[]string{"playbooks", "validate", "../../playbooks/testdata/malformed/cycle.yaml"}, 2, "cycle in needs"},
		{[]string{"lab", "status", "--dir", t.TempDir()}, 1, "hint: start one with 'eksir lab up'"},
		{[]string{"lab", "seed", "--dir", t.TempDir()}, 2, `Required flag "scenario" not set`},
		{[]string{"plan", "triage", "--no-such-flag"}, 2, "flag provided but not defined"},
	} {
		name := []string{}
		for _, a := range tc.args {
			name = append(name, filepath.Base(a))
		}
		t.Run(strings.Join(name, " "), func(t *testing.T) {
			res := run(t, "", tc.args...)
			if res.code != tc.code || !strings.Contains(res.stdout+res.stderr, tc.want) {
				t.Errorf("want exit %d and %q, got %v", tc.code, tc.want, res)
			}
		})
	}
}

// TestVersion: version, commit and Go version, and no build kind.
func TestVersion(t *testing.T) {
	res := run(t, "", "version")
	if res.code != 0 || !regexp.MustCompile(`^eksir \S+ \(commit \S+, go1\.[0-9.]+\)\n$`).MatchString(res.stdout) {
		t.Errorf("version: %v", res)
	}
	res = run(t, "", "--output", "json", "version")
	var v map[string]string
	if err := json.Unmarshal([]byte(res.stdout), &v); err != nil || len(v) != 3 || v["version"] == "" || v["commit"] == "" || v["go"] == "" {
		t.Errorf("version json: %v %v", err, res)
	}
}

// TestValidateStdin: playbooks validate reads /dev/stdin like any file.
func TestValidateStdin(t *testing.T) {
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
		res := runCmd(t, "", bytes.NewReader(b), nil, "playbooks", "validate", "/dev/stdin")
		if res.code != tc.code || !strings.Contains(res.stdout+res.stderr, tc.want) {
			t.Errorf("validate %s on stdin: want exit %d and %q, got %v", tc.file, tc.code, tc.want, res)
		}
	}
}
