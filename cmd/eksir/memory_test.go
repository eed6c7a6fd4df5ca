package main

// Memory on hostile input: a small .tar.zst (one zstd frame of RLE blocks)
// that decompresses to a bag whose bag-info.txt is 1023 MiB. eksir-verify
// refuses it, and its peak memory stays within 64 MiB of its idle peak.

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// zstdRLEFrame writes one zstd frame: pre and post as raw blocks around n
// bytes of fill as RLE blocks (n a multiple of 128 KiB).
func zstdRLEFrame(pre []byte, fill byte, n int64, post []byte) []byte {
	const maxBlock = 128 << 10
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50} // no checksum, no size; window 1 MiB
	block := func(last bool, typ uint32, size int, content []byte) {
		h := uint32(size)<<3 | typ<<1
		if last {
			h |= 1
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], h)
		out = append(append(out, b[:3]...), content...)
	}
	raw := func(p []byte, last bool) {
		for len(p) > 0 {
			k := min(len(p), maxBlock)
			block(last && k == len(p), 0, k, p[:k])
			p = p[k:]
		}
	}
	raw(pre, false)
	for ; n > 0; n -= maxBlock {
		block(false, 1, maxBlock, []byte{fill})
	}
	raw(post, true)
	return out
}

// peakRSS runs bin and returns its exit code and peak resident memory in
// bytes. The child's own rusage will not do: Go starts children with
// CLONE_VM, so their ru_maxrss starts at the test process's peak (about
// 90 MiB here). GNU time forks from its own small process, so its %M is
// the command's; without it, the child's VmHWM is polled from /proc until
// it exits (a peak in its last milliseconds could be missed).
func peakRSS(t *testing.T, bin string, args ...string) (int, int64) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		out := filepath.Join(t.TempDir(), "rss")
		cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", out, bin}, args...)...)
		cmd.Env = cleanEnv()
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run %s %q: %v", bin, args, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// GNU time notes a non-zero exit on a line before the figure.
		lines := strings.Fields(string(b))
		kib, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
		if err != nil {
			t.Fatalf("GNU time wrote %q", b)
		}
		return cmd.ProcessState.ExitCode(), kib << 10
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var peak int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
			if err != nil {
				return
			}
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
					if kib, err := strconv.ParseInt(f[1], 10, 64); err == nil && kib<<10 > peak {
						peak = kib << 10
					}
				}
			}
			if !strings.Contains(string(b), "VmHWM:") {
				return // a zombie: it has exited
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	<-done
	err := cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s %q: %v", bin, args, err)
	}
	return cmd.ProcessState.ExitCode(), peak
}

func TestVerifyMemoryOnHugeTagFile(t *testing.T) {
	key, pub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, src, "a.txt", []byte("alpha\n"))
	out := filepath.Join(root, "out")
	mustRun(t, root, "seal", "--incident", "M", "--key", key, "--compress", "zstd", "--seal-time", sealTime, src, "--out", out)
	entries := readEntries(t, filepath.Join(out, "M.tar.zst"))

	// Just under 1 GiB: the old limit on all tag files together was 1 GiB,
	// and a tag file within it was read whole into memory.
	const huge = 1<<30 - 1<<20
	var pre, post bytes.Buffer
	w := &pre
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.hdr.Name, Mode: 0o600, ModTime: fixedTime, Format: tar.FormatPAX, Typeflag: e.hdr.Typeflag, Size: int64(len(e.data))}
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o700
		}
		if e.hdr.Name != "M/bag-info.txt" {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write(e.data)
			continue
		}
		h.Size = huge
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Flush()
		// The content goes in as RLE blocks; the rest of the tar after it.
		w = &post
		tw = tar.NewWriter(w)
	}
	tw.Close()
	archive := filepath.Join(t.TempDir(), "M.tar.zst")
	if err := os.WriteFile(archive, zstdRLEFrame(pre.Bytes(), 'A', huge, post.Bytes()), 0o600); err != nil {
		t.Fatal(err)
	}
	writeSidecar(t, archive)
	if fi, _ := os.Stat(archive); fi.Size() > 1<<20 {
		t.Fatalf("the hostile archive is %d bytes; it should be small", fi.Size())
	}

	_, idle := peakRSS(t, verifyBin, "--help")
	code, peak := peakRSS(t, verifyBin, "verify", archive, "--pubkey", pub)
	t.Logf("eksir-verify peak RSS: idle %d KiB, verifying a 1023 MiB tag file %d KiB (%+d KiB)", idle>>10, peak>>10, (peak-idle)>>10)
	if code != 3 {
		t.Errorf("verify exit %d, want 3", code)
	}
	if peak-idle > 64<<20 {
		t.Errorf("verify's peak memory is %d MiB above idle; the bound is 64 MiB", (peak-idle)>>20)
	}
	res := run(t, "", "verify", archive, "--pubkey", pub)
	if !failed(res.stdout, "structure", "M/bag-info.txt") {
		t.Errorf("verify does not name the oversized tag file:\n%s", res.stdout)
	}
}
