package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// hostToolsHint says how to get the systemd tools the fixtures need.
const hostToolsHint = "`make host-tools` installs them (Debian packages systemd and systemd-journal-remote)"

// systemdTools finds journalctl and systemd-journal-remote; Debian installs
// the latter off PATH, in /usr/lib/systemd. Without them the test fails in
// CI (CI=true) and is skipped elsewhere.
func systemdTools(t testing.TB) (journalctl, remote string) {
	t.Helper()
	journalctl, err := exec.LookPath("journalctl")
	if err == nil {
		remote, err = exec.LookPath("systemd-journal-remote")
	}
	if err != nil {
		for _, p := range []string{"/usr/lib/systemd/systemd-journal-remote", "/lib/systemd/systemd-journal-remote"} {
			if _, serr := os.Stat(p); serr == nil && journalctl != "" {
				remote, err = p, nil
				break
			}
		}
	}
	if err != nil {
		msg := fmt.Sprintf("journalctl and systemd-journal-remote are needed to build journal fixtures with real systemd tools (%v); %s", err, hostToolsHint)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return journalctl, remote
}

// genOpts shape one generated export stream.
type genOpts struct {
	seed     uint64
	n        int
	bootID   string
	realtime uint64 // of the first entry
	step     uint64 // µs between entries
}

var words = strings.Fields(`pod sandbox container image pull volume mount node lease
status sync probe readiness liveness kube-proxy aws-node coredns eviction cgroup
memory pressure network plugin cni runtime shim task snapshot overlayfs`)

// genExport writes a journal export stream (the format `journalctl -o
// export` writes and systemd-journal-remote reads) with entries of the
// kinds an EKS node logs and the oddities the reader must get right.
func genExport(o genOpts) []byte {
	r := rand.New(rand.NewPCG(o.seed, 99))
	text := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		return b.String()[:n]
	}
	var out bytes.Buffer
	field := func(name string, v []byte) {
		// Values with a newline or a NUL need the binary form; use it
		// now and then for plain ones too.
		special := strings.HasPrefix(name, "__") || name == "_BOOT_ID"
		if bytes.ContainsAny(v, "\n\x00") || (!special && r.IntN(10) == 0) {
			out.WriteString(name + "\n")
			binary.Write(&out, binary.LittleEndian, uint64(len(v)))
			out.Write(v)
			out.WriteByte('\n')
			return
		}
		out.WriteString(name + "=")
		out.Write(v)
		out.WriteByte('\n')
	}
	f := func(name, v string) { field(name, []byte(v)) }
	for i := 0; i < o.n; i++ {
		f("__REALTIME_TIMESTAMP", fmt.Sprint(o.realtime+uint64(i)*o.step))
		f("__MONOTONIC_TIMESTAMP", fmt.Sprint(5_000_000+uint64(i)*o.step))
		f("_BOOT_ID", o.bootID)
		f("_HOSTNAME", "ip-10-0-1-23.ec2.internal")
		f("_TRANSPORT", "stdout")
		unit := func(name, comm, pid string) {
			f("_SYSTEMD_UNIT", name)
			f("_COMM", comm)
			f("_PID", pid)
			f("_UID", "0")
			f("SYSLOG_IDENTIFIER", comm)
		}
		switch k := r.IntN(16); k {
		case 0, 1, 2, 3:
			unit("kubelet.service", "kubelet", "2345")
			f("PRIORITY", "6")
			f("MESSAGE", fmt.Sprintf("I1130 10:00:%02d.%06d 2345 kubelet.go:%d] %s", i%60, i, 100+i%900, text(20+r.IntN(80))))
		case 4, 5:
			unit("containerd.service", "containerd", "1987")
			f("MESSAGE", fmt.Sprintf("time=\"2026-11-30T10:00:00Z\" level=info msg=%q", text(30+r.IntN(60))))
		case 6:
			f("_SYSTEMD_UNIT", "sshd.service")
			f("_PID", fmt.Sprint(3000+i))
			f("_UID", "0")
			f("MESSAGE", "Accepted publickey for ec2-user from 10.0.0.5 port 51234 ssh2")
		case 7:
			// systemd about a unit: matched through UNIT= with _PID=1.
			f("_SYSTEMD_UNIT", "init.scope")
			f("_PID", "1")
			f("_UID", "0")
			f("UNIT", []string{"kubelet.service", "containerd.service", "sshd.service"}[r.IntN(3)])
			f("MESSAGE", "Started the unit.")
		case 8:
			// Look-alikes journalctl -u must not select, and the
			// ones it must.
			switch r.IntN(5) {
			case 0:
				f("_PID", "777")
				f("UNIT", "kubelet.service")
			case 1:
				f("_UID", "0")
				f("OBJECT_SYSTEMD_UNIT", "containerd.service")
			case 2:
				f("_UID", "1000")
				f("OBJECT_SYSTEMD_UNIT", "containerd.service")
			case 3:
				f("_UID", "0")
				f("COREDUMP_UNIT", "kubelet.service")
				f("MESSAGE_ID", coredumpMessageID)
			case 4:
				f("_UID", "0")
				f("COREDUMP_UNIT", "kubelet.service")
			}
			f("MESSAGE", "about a unit")
		case 9:
			unit("kubelet.service", "kubelet", "2345")
			f("MESSAGE", "E1130 panic: runtime error\ngoroutine 1 [running]:\n\tmain.main()\n")
		case 10:
			unit("containerd.service", "containerd", "1987")
			field("BLOB", []byte{'a', 0, 'b', 1, 0xff})
			f("TAG", "first")
			f("TAG", "second")
			f("TAG", "first")
			field("MESSAGE", []byte("bad utf8 \xff\xfe here"))
		case 11:
			unit("kubelet.service", "kubelet", "2345")
			f("ESC", "colour \x1b[31mred")
			f("DEL", "del \x7f char")
			f("C1", "next line \u0085 char")
			f("NONCHAR", "non \ufffe char")
			f("NONCHAR2", "non \ufdd0 char")
			f("UNICODE", "grüße 日本 🙂")
			f("TABS", "a\tb")
			f("MESSAGE", "odd characters")
		case 12, 13:
			// Past the 512-byte compression threshold.
			unit("kubelet.service", "kubelet", "2345")
			f("MESSAGE", text(600+r.IntN(2500)))
		case 14:
			unit("containerd.service", "containerd", "1987")
			// Past journalctl's 4096-byte JSON threshold, and one
			// past the 64 KiB page size of the reader.
			n := 5000
			if r.IntN(8) == 0 {
				n = 70000
			}
			f("MESSAGE", text(n))
		default:
			f("_SYSTEMD_UNIT", "systemd-logind.service")
			f("_UID", "0")
			f("MESSAGE", "New session of user ec2-user.")
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// buildJournal turns an export stream into the journal file path with the
// real systemd-journal-remote.
func buildJournal(t testing.TB, remote, path string, export []byte, compact, compress bool) {
	t.Helper()
	in := path + ".export"
	if err := os.WriteFile(in, export, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(in)
	cmd := exec.Command(remote, "--output="+path, fmt.Sprintf("--compress=%t", compress), in)
	env := "0"
	if compact {
		env = "1"
	}
	cmd.Env = append(os.Environ(), "SYSTEMD_JOURNAL_COMPACT="+env)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemd-journal-remote: %v\n%s", err, out)
	}
	h := readTestHeader(t, path)
	if h.Compact() != compact {
		t.Fatalf("%s: compact=%t, asked for %t (SYSTEMD_JOURNAL_COMPACT ignored?)", path, h.Compact(), compact)
	}
}

func readTestHeader(t testing.TB, path string) Header {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fi, _ := fh.Stat()
	f, err := Open(fh, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return f.Header()
}

// scanObjects visits the objects of a journal file image in file order,
// walking object sizes from the header on: independent of the entry array
// chain the reader follows. It returns the end of the last object.
func scanObjects(b []byte, fn func(off int, typ, flags byte, size int)) int {
	le := binary.LittleEndian
	off := int(le.Uint64(b[88:]))
	tail := int(le.Uint64(b[136:]))
	end := off
	for off != 0 && off <= tail && off+16 <= len(b) {
		typ, flags, size := b[off], b[off+1], int(le.Uint64(b[off+8:]))
		if size < 16 {
			break
		}
		fn(off, typ, flags, size)
		end = off + size
		off += (size + 7) &^ 7
	}
	return end
}

// countCompressed counts the data objects compressed with each algorithm.
func countCompressed(b []byte) map[byte]int {
	n := map[byte]int{}
	scanObjects(b, func(_ int, typ, flags byte, _ int) {
		if typ == objectData {
			n[flags&objCompressedMask]++
		}
	})
	return n
}

// transcode compresses, in place, the large uncompressed data objects of
// the journal file at path with XZ or LZ4, as journald built with that
// default would have. The object shrinks and leaves a gap, which readers
// (journalctl included) never look at: they follow offsets.
func transcode(t testing.TB, path string, algo byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	compact := le.Uint32(b[12:])&IncompatibleCompact != 0
	payloadOff := dataPayloadRegular
	if compact {
		payloadOff = dataPayloadCompact
	}
	scanObjects(b, func(off int, typ, flags byte, size int) {
		if typ != objectData || flags != 0 || size-payloadOff < 512 {
			return
		}
		src := b[off+payloadOff : off+size]
		var c []byte
		switch algo {
		case objCompressedXZ:
			var buf bytes.Buffer
			w, err := xz.WriterConfig{DictCap: 1 << 20}.NewWriter(&buf)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(src)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			c = buf.Bytes()
		case objCompressedLZ4:
			dst := make([]byte, 8+lz4.CompressBlockBound(len(src)))
			le.PutUint64(dst, uint64(len(src)))
			n, err := lz4.CompressBlock(src, dst[8:], nil)
			if err != nil || n == 0 {
				return
			}
			c = dst[:8+n]
		}
		// The gap left behind becomes an unused object, so the file
		// still scans object by object.
		oldEnd := off + (size+7)&^7
		newEnd := off + (payloadOff+len(c)+7)&^7
		if oldEnd-newEnd < 16 {
			return
		}
		copy(b[off+payloadOff:], c)
		b[off+1] = algo
		le.PutUint64(b[off+8:], uint64(payloadOff+len(c)))
		clear(b[off+payloadOff+len(c) : oldEnd])
		le.PutUint64(b[newEnd+8:], uint64(oldEnd-newEnd))
	})
	flag := uint32(IncompatibleCompressedXZ)
	if algo == objCompressedLZ4 {
		flag = IncompatibleCompressedLZ4
	}
	le.PutUint32(b[12:], le.Uint32(b[12:])|flag)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// journalctlJSON runs journalctl with args and -o json --all and parses its
// lines.
func journalctlJSON(t testing.TB, journalctl string, args ...string) []map[string]any {
	t.Helper()
	cmd := exec.Command(journalctl, append(args, "-o", "json", "--all", "--no-pager")...)
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=cat", "SYSTEMD_COLORS=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("journalctl %v: %v\n%s", args, err, stderr.Bytes())
	}
	return parseLines(t, out)
}

func parseLines(t testing.TB, out []byte) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("bad JSON line %.200q: %v", line, err)
		}
		res = append(res, m)
	}
	return res
}

// fixtureDir puts a copy of a file alone in a new directory.
func fixtureDir(t testing.TB, src, name string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	if data == nil {
		var err error
		data, err = os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dropHashTables returns a copy of a journal file image without its two
// hash tables, the objects after them moved down and the offsets the
// reader follows (header, entry arrays, entry items) moved with them. The
// tables take megabytes even in a tiny file and the reader never looks at
// them; without them a real file is small enough to seed the fuzzer.
func dropHashTables(b []byte) []byte {
	le := binary.LittleEndian
	hsize := int(le.Uint64(b[88:]))
	start := objectsStart(b)
	end := scanObjects(b, func(int, byte, byte, int) {})
	delta := uint64(start - hsize)
	out := append(bytes.Clone(b[:hsize]), b[start:end]...)
	move := func(p []byte, wide bool) {
		if wide {
			if v := le.Uint64(p); v != 0 {
				le.PutUint64(p, v-delta)
			}
		} else if v := le.Uint32(p); v != 0 {
			le.PutUint32(p, v-uint32(delta))
		}
	}
	for _, at := range []int{104, 120} { // the tables are gone
		le.PutUint64(out[at:], 0)
		le.PutUint64(out[at+8:], 0)
	}
	move(out[136:], true) // tail object
	move(out[176:], true) // entry array
	compact := le.Uint32(out[12:])&IncompatibleCompact != 0
	arrayItem, entryItem := 8, 16
	if compact {
		arrayItem, entryItem = 4, 4
	}
	scanObjects(out, func(off int, typ, _ byte, size int) {
		switch typ {
		case objectEntryArray:
			move(out[off+16:], true)
			for p := off + arrayItemsOffset; p+arrayItem <= off+size; p += arrayItem {
				move(out[p:], !compact)
			}
		case objectEntry:
			for p := off + entryItemsOffset; p+entryItem <= off+size; p += entryItem {
				move(out[p:], !compact)
			}
		}
	})
	return out
}
