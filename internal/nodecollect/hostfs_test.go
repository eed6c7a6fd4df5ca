package nodecollect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hostRoot builds a small host tree with a file, a relative and an
// absolute symlink, a symlink escaping the root and a FIFO, plus a secret
// file outside the root.
func hostRoot(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "host")
	outside = filepath.Join(base, "secret")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(outside, []byte("outside"), 0o600))
	must(os.MkdirAll(filepath.Join(root, "var/log/pods/ns_pod_uid/app"), 0o755))
	must(os.WriteFile(filepath.Join(root, "var/log/pods/ns_pod_uid/app/0.log"), []byte("line 1\nline 2\n"), 0o640))
	must(os.MkdirAll(filepath.Join(root, "var/log/containers"), 0o755))
	must(os.Symlink("../pods/ns_pod_uid/app/0.log", filepath.Join(root, "var/log/containers/app.log")))
	must(os.Symlink("/var/log/pods/ns_pod_uid/app/0.log", filepath.Join(root, "var/log/containers/abs.log")))
	must(os.Symlink("../../../../secret", filepath.Join(root, "var/log/escape")))
	return root, outside
}

func TestListDoesNotFollowSymlinks(t *testing.T) {
	root, _ := hostRoot(t)
	c := &Collector{Proc: "/proc"}
	doc, err := c.List(context.Background(), root, "/var/log")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range doc.Entries {
		got = append(got, e.Path+" "+e.Type+" "+e.Target)
	}
	want := []string{
		"var/log/containers/abs.log symlink /var/log/pods/ns_pod_uid/app/0.log",
		"var/log/containers/app.log symlink ../pods/ns_pod_uid/app/0.log",
		"var/log/escape symlink ../../../../secret",
		"var/log/pods/ns_pod_uid/app/0.log file ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries\n%q\nwant\n%q", got, want)
	}
	if e := doc.Entries[3]; e.Size != 14 || e.Mode != "-rw-r-----" {
		t.Errorf("file entry %+v", e)
	}
	one, err := c.List(context.Background(), root, "var/log/escape")
	if err != nil || len(one.Entries) != 1 || one.Entries[0].Type != "symlink" || one.Entries[0].Target != "../../../../secret" {
		t.Errorf("listing a symlink itself = %+v, %v; want the link, not its target", one, err)
	}
	if _, err := c.List(context.Background(), root, "../"); err == nil {
		t.Error("listing above the root: want error")
	}
}

func TestReadFileOnlyRegularInsideRoot(t *testing.T) {
	root, _ := hostRoot(t)
	ctx := context.Background()
	var buf bytes.Buffer
	if n, err := ReadFile(ctx, &buf, root, "/var/log/pods/ns_pod_uid/app/0.log"); err != nil || n != 14 || buf.String() != "line 1\nline 2\n" {
		t.Errorf("read = %d, %q, %v", n, buf.String(), err)
	}
	for _, p := range []string{"var/log/containers/app.log", "var/log/escape", "var/log", "../secret", "var/log/../../secret", "missing"} {
		buf.Reset()
		if _, err := ReadFile(ctx, &buf, root, p); err == nil || buf.Len() != 0 {
			t.Errorf("read %s: err %v, %d bytes; want refusal and nothing written", p, err, buf.Len())
		}
	}
	if _, err := ReadFile(ctx, &buf, root, "var/log/containers/app.log"); !errors.Is(err, ErrNotRegular) {
		t.Errorf("symlink: err %v, want ErrNotRegular", err)
	}
}

func TestRemoveFile(t *testing.T) {
	root, outside := hostRoot(t)
	c := &Collector{Proc: "/proc"}
	ctx := context.Background()
	if _, err := c.RemoveFile(ctx, root, "var/log/escape", ""); !errors.Is(err, ErrNotRegular) {
		t.Errorf("remove symlink: %v, want ErrNotRegular", err)
	}
	if _, err := c.RemoveFile(ctx, root, "../secret", ""); err == nil {
		t.Error("remove outside root: want error")
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("outside file touched: %v", err)
	}
	if _, err := c.RemoveFile(ctx, root, "var/log/pods", ""); err == nil {
		t.Error("remove directory: want error")
	}
	// A hash that is not the file's leaves it in place.
	if _, err := c.RemoveFile(ctx, root, "/var/log/pods/ns_pod_uid/app/0.log", strings.Repeat("0", 64)); !errors.Is(err, ErrHashMismatch) {
		t.Errorf("remove with another hash: %v, want ErrHashMismatch", err)
	}
	b, err := os.ReadFile(filepath.Join(root, "var/log/pods/ns_pod_uid/app/0.log"))
	if err != nil {
		t.Fatalf("file removed despite the hash: %v", err)
	}
	sum := sha256.Sum256(b)
	doc, err := c.RemoveFile(ctx, root, "/var/log/pods/ns_pod_uid/app/0.log", hex.EncodeToString(sum[:]))
	if err != nil || !doc.Removed || doc.Size != 14 || doc.Path != "var/log/pods/ns_pod_uid/app/0.log" || doc.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("remove = %+v, %v", doc, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "var/log/pods/ns_pod_uid/app/0.log")); !os.IsNotExist(err) {
		t.Errorf("file still there: %v", err)
	}
	again, err := c.RemoveFile(ctx, root, "var/log/pods/ns_pod_uid/app/0.log", "")
	if err != nil || again.Removed {
		t.Errorf("second remove = %+v, %v; want success with removed=false", again, err)
	}
}
