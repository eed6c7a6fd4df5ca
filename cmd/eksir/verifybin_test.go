package main

// eksir-verify as a forensics lab runs it: alone in a folder, on an archive
// eksir sealed, with the output and exit codes of eksir's own commands.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyBinaryMatchesEksir(t *testing.T) {
	s := sealSample(t, "INC-V")
	// Alone in a folder, as the lab receives it: nothing else of eksir.
	lab := t.TempDir()
	b, err := os.ReadFile(verifyBin)
	if err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(lab, "eksir-verify")
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(t.TempDir(), "INC-V.tar.zst")
	copyTree(t, filepath.Dir(s.archive), filepath.Dir(tampered))
	flipByte(t, tampered)

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"verify", []string{"verify", s.archive, "--pubkey", s.pub}, 0, "verified: "},
		{"verify json", []string{"--output", "json", "verify", s.archive}, 0, `"ok": true`},
		{"custody show", []string{"custody", "show", s.archive, "--pubkey", s.pub}, 0, "sealed"},
		{"verify tampered", []string{"verify", tampered, "--pubkey", s.pub}, 3, "FAILED: "},
		{"custody show tampered", []string{"custody", "show", tampered, "--pubkey", s.pub}, 3, ""},
		{"no argument", []string{"verify"}, 2, "expects one archive"},
		{"unknown key file", []string{"verify", s.archive, "--pubkey", filepath.Join(lab, "none.pub")}, 2, "none.pub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runProcess(t, alone, lab, nil, cleanEnv(), nil, tc.args...)
			want := run(t, lab, tc.args...)
			if got.code != tc.code || !strings.Contains(got.stdout+got.stderr, tc.want) {
				t.Errorf("eksir-verify: want exit %d and %q, got %v", tc.code, tc.want, got)
			}
			// Only the program's name in an error line may differ.
			if got.code != want.code || got.stdout != want.stdout ||
				strings.ReplaceAll(got.stderr, "eksir-verify", "eksir") != want.stderr {
				t.Errorf("eksir-verify and eksir differ\neksir-verify: %v\neksir: %v", got, want)
			}
		})
	}
}
