package nodecollect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDeletedExecutableStillHashes runs a copy of sleep, deletes the copy,
// and checks that the live /proc still yields its path, the deleted flag and
// the hash of the original bytes.
func TestDeletedExecutableStillHashes(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	src, err := os.Open(sleep)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(t.TempDir(), "payload")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, h), src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	want := hex.EncodeToString(h.Sum(nil))
	cmd := exec.Command(bin, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	c := &Collector{Proc: "/proc", Redact: true}
	doc, err := c.Processes(context.Background(), Selector{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Processes {
		if p.PID != cmd.Process.Pid {
			continue
		}
		if !p.ExeDeleted || p.Exe != bin || p.ExeSHA256 != want {
			t.Errorf("deleted exe: %+v; want path %s, deleted, sha256 %s", p, bin, want)
		}
		return
	}
	t.Fatalf("pid %d not listed", cmd.Process.Pid)
}
