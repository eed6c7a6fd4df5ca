package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// maxBinarySize is the ceiling for the collector binary: it is written into
// the collector pod over exec stdin for every case.
const maxBinarySize = 8 << 20

func TestBinarySize(t *testing.T) {
	fi, err := os.Stat(collectorBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("eksir-collector (CGO_ENABLED=0 -trimpath -ldflags '-s -w'): %d bytes (%.2f MiB)", fi.Size(), float64(fi.Size())/(1<<20))
	if fi.Size() >= maxBinarySize {
		t.Errorf("binary is %d bytes, want < %d", fi.Size(), maxBinarySize)
	}
}

func TestExitCodes(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{nil, 2, "no command"},
		{[]string{"bogus"}, 2, `unknown command "bogus"`},
		{[]string{"--nope"}, 2, "flag provided but not defined"},
		{[]string{"files"}, 2, "needs --pod-uid"},
		{[]string{"sockets"}, 2, "--node"},
		{[]string{"sockets", "--node", "--pod-uid", "x"}, 2, "exclude each other"},
		{[]string{"processes", "--node"}, 2, "flag provided but not defined"},
		{[]string{"modules", "extra"}, 2, "takes no arguments"},
		{[]string{"read", "f"}, 2, "needs --root"},
		{[]string{"read", "--root", root, "missing"}, 1, "eksir-collector: error:"},
		{[]string{"read", "--root", root, "../etc/passwd"}, 1, "escapes"},
		{[]string{"--proc", filepath.Join(root, "no-proc"), "processes"}, 1, "eksir-collector: error:"},
		{[]string{"--help"}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, code := runCollector(t, tc.args...)
			if code != tc.code || !strings.Contains(string(errOut), tc.inStderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.inStderr)
			}
			if code == 2 && !strings.Contains(string(errOut), "hint:") {
				t.Errorf("usage error without hint: %q", errOut)
			}
			if code != 0 && len(out) != 0 {
				t.Errorf("failed run wrote %d bytes to stdout", len(out))
			}
		})
	}
}

func TestVersionHashesItself(t *testing.T) {
	bin := collectorBinary(t)
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	doc := collect(t, "version")
	v := doc["version"].(map[string]any)
	if v["sha256"] != hex.EncodeToString(sum[:]) || v["version"] != "test-build" {
		t.Errorf("version = %v, want sha256 %x and version test-build", v, sum)
	}
	if doc["collector"].(map[string]any)["sha256"] != v["sha256"] {
		t.Errorf("envelope collector %v", doc["collector"])
	}
}

func TestReadAndRemoveThroughCLI(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var/lib/kubelet/checkpoints"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(root, "var/lib/kubelet/checkpoints/checkpoint-pod_ns-app-2026.tar")
	if err := os.WriteFile(archive, []byte("memory pages\x00\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := runCollector(t, "read", "--root", root, "/var/lib/kubelet/checkpoints/checkpoint-pod_ns-app-2026.tar")
	if code != 0 || string(out) != "memory pages\x00\x01" {
		t.Fatalf("read: exit %d, %q", code, out)
	}
	listing := collect(t, "list", "--root", root, "var/lib/kubelet")
	if e := list(listing["entries"]); len(e) != 1 || e[0].(map[string]any)["path"] != "var/lib/kubelet/checkpoints/checkpoint-pod_ns-app-2026.tar" {
		t.Errorf("list entries %v", e)
	}
	doc := collect(t, "remove", "--root", root, "var/lib/kubelet/checkpoints/checkpoint-pod_ns-app-2026.tar")
	if doc["removed"] != true || num(doc["size"]) != 14 {
		t.Errorf("remove = %v", doc)
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Errorf("archive still there: %v", err)
	}
}

// TestDocumentsMatchSchema runs every JSON artefact on this machine as it
// is (no root needed) and validates each against docs/collector.schema.json.
func TestDocumentsMatchSchema(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "var/log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/log/a.log"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a.log", filepath.Join(root, "var/log/b.log")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"version"}, {"processes"}, {"processes", "--all-except-self"}, {"sockets", "--node"},
		{"sockets", "--all-except-self"}, {"files", "--all-except-self"}, {"maps", "--all-except-self"},
		{"mounts", "--all-except-self"}, {"environ", "--all-except-self"}, {"modules"}, {"routes"},
		{"neighbours"}, {"list", "--root", root, "/var/log"}, {"--no-redact", "processes", "--pod-uid", "0c4f2a6e-9d1b-4c8e-a3f7-5b2e1d9c8a70"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			doc := collect(t, args...)
			if a := args[0]; a != "--no-redact" && doc["artefact"] != a {
				t.Errorf("artefact %v, want %s", doc["artefact"], a)
			}
		})
	}
}

// TestSchemaRejects makes sure the schema is not vacuous: documents with
// an unknown key, a missing payload or a wrong type fail validation.
func TestSchemaRejects(t *testing.T) {
	out, _, code := runCollector(t, "modules")
	if code != 0 {
		t.Fatal("modules failed")
	}
	good := string(out)
	for name, bad := range map[string]string{
		"unknown top-level key": strings.Replace(good, `"modules":`, `"smuggled":1,"modules":`, 1),
		"missing payload":       strings.Replace(good, `"loadable_modules":`, `"loadable_modulez":`, 1),
		"wrong artefact":        strings.Replace(good, `"artefact":"modules"`, `"artefact":"routes"`, 1),
		"bad schema url":        strings.Replace(good, `collector/v1`, `collector/v2`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if bad == good {
				t.Fatal("replacement did not apply")
			}
			if err := validateErr(t, []byte(bad)); err == nil {
				t.Errorf("document validated: %s", bad)
			}
		})
	}
}

func TestIdleEndsOnSIGTERM(t *testing.T) {
	cmd := exec.Command(collectorBinary(t), "idle")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("idle returned before a signal: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("idle after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("idle ignored SIGTERM")
	}
}
