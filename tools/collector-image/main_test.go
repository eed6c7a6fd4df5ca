package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// writeFakeBinaries writes two files of arbitrary bytes: the tool must not
// care what the binaries hold.
func writeFakeBinaries(t *testing.T, dir string) (amd64, arm64 string) {
	t.Helper()
	amd64, arm64 = filepath.Join(dir, "amd64"), filepath.Join(dir, "arm64")
	for path, content := range map[string]string{amd64: "not really an amd64 binary\n", arm64: "not really an arm64 binary\n"} {
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return amd64, arm64
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestCLI runs the command twice, the second time into an archive with the
// flags in another order, and checks what it prints: the index digest (the
// one index.json points at) and one manifest digest per platform, the same
// both times.
func TestCLI(t *testing.T) {
	dir := t.TempDir()
	amd64, arm64 := writeFakeBinaries(t, dir)
	getenv := env(map[string]string{"SOURCE_DATE_EPOCH": "1764460800"})

	var out1, err1 bytes.Buffer
	layoutDir := filepath.Join(dir, "layout")
	if code := run([]string{"--binary", "linux/amd64=" + amd64, "--binary", "linux/arm64=" + arm64, "--out", layoutDir, "--tag", "eksir-collector:v2.0.0"}, getenv, &out1, &err1); code != 0 {
		t.Fatalf("exit %d: %s", code, err1.String())
	}
	want := regexp.MustCompile(`^index (sha256:[0-9a-f]{64})\nlinux/amd64 sha256:[0-9a-f]{64}\nlinux/arm64 sha256:[0-9a-f]{64}\n$`)
	m := want.FindStringSubmatch(out1.String())
	if m == nil {
		t.Fatalf("stdout %q, want index and per-platform digest lines", out1.String())
	}
	var top struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(layoutDir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &top); err != nil || len(top.Manifests) != 1 || top.Manifests[0].Digest != m[1] {
		t.Errorf("index.json %s does not point at the printed index %s (%v)", b, m[1], err)
	}
	idx, err := os.ReadFile(filepath.Join(layoutDir, "blobs", "sha256", strings.TrimPrefix(m[1], "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(idx); "sha256:"+hex.EncodeToString(sum[:]) != m[1] {
		t.Errorf("the printed index digest %s is not the index blob's sha256", m[1])
	}
	if !strings.Contains(err1.String(), "created 2025-11-30T00:00:00Z") {
		t.Errorf("stderr %q does not say the SOURCE_DATE_EPOCH time", err1.String())
	}

	var out2, err2 bytes.Buffer
	if code := run([]string{"--tag", "eksir-collector:v2.0.0", "--out", filepath.Join(dir, "image.tar"), "--binary", "linux/arm64=" + arm64, "--binary", "linux/amd64=" + amd64}, getenv, &out2, &err2); code != 0 {
		t.Fatalf("exit %d: %s", code, err2.String())
	}
	if out1.String() != out2.String() {
		t.Errorf("second run printed\n%s\nfirst run\n%s", out2.String(), out1.String())
	}

	// --created wins over SOURCE_DATE_EPOCH, so the digest changes.
	var out3, err3 bytes.Buffer
	if code := run([]string{"--binary", "linux/amd64=" + amd64, "--out", filepath.Join(dir, "amd64-only"), "--tag", "eksir-collector:v2.0.0", "--created", "2026-01-01T00:00:00Z"}, getenv, &out3, &err3); code != 0 {
		t.Fatalf("exit %d: %s", code, err3.String())
	}
	if !strings.Contains(err3.String(), "created 2026-01-01T00:00:00Z") || strings.Count(out3.String(), "\n") != 2 {
		t.Errorf("--created run: stdout %q stderr %q", out3.String(), err3.String())
	}
}

// TestCLIBadInput checks exit codes and messages for bad flags, and that
// nothing is written.
func TestCLIBadInput(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  func(amd64, arm64, out string) []string
		epoch string
		code  int
		want  string
	}{
		{"malformed --binary", func(a, b, out string) []string {
			return []string{"--binary", "linux/amd64" + a, "--out", out, "--tag", "eksir-collector:v1"}
		}, "", 2, "want PLATFORM=PATH"},
		{"--binary without path", func(a, b, out string) []string {
			return []string{"--binary", "linux/amd64=", "--out", out, "--tag", "eksir-collector:v1"}
		}, "", 2, "want PLATFORM=PATH"},
		{"unknown platform", func(a, b, out string) []string {
			return []string{"--binary", "linux/amd64=" + a, "--binary", "linux/riscv64=" + b, "--out", out, "--tag", "eksir-collector:v1"}
		}, "", 2, `unknown platform "linux/riscv64" (known: linux/amd64, linux/arm64)`},
		{"missing binary", func(a, b, out string) []string {
			return []string{"--binary", "linux/amd64=" + a, "--binary", "linux/arm64=" + b + ".missing", "--out", out, "--tag", "eksir-collector:v1"}
		}, "", 1, "linux/arm64 binary: open "},
		{"bad --created", func(a, b, out string) []string {
			return []string{"--binary", "linux/amd64=" + a, "--out", out, "--tag", "eksir-collector:v1", "--created", "2026-13-01"}
		}, "", 2, "not an RFC 3339 time"},
		{"bad SOURCE_DATE_EPOCH", func(a, b, out string) []string {
			return []string{"--binary", "linux/amd64=" + a, "--out", out, "--tag", "eksir-collector:v1"}
		}, "last tuesday", 2, "SOURCE_DATE_EPOCH"},
		{"extra argument", func(a, b, out string) []string {
			return []string{"--binary", "linux/amd64=" + a, "--out", out, "--tag", "eksir-collector:v1", "extra"}
		}, "", 2, `unexpected argument "extra"`},
		{"no tag", func(a, b, out string) []string {
			return []string{"--binary", "linux/amd64=" + a, "--out", out}
		}, "", 1, "--tag is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bins := t.TempDir()
			amd64, arm64 := writeFakeBinaries(t, bins)
			outDir := t.TempDir()
			var stdout, stderr bytes.Buffer
			code := run(tc.args(amd64, arm64, filepath.Join(outDir, "image.tar")), env(map[string]string{"SOURCE_DATE_EPOCH": tc.epoch}), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tc.code, tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if entries, _ := os.ReadDir(outDir); len(entries) != 0 {
				t.Errorf("the run left %d entries in the output folder", len(entries))
			}
		})
	}
}
