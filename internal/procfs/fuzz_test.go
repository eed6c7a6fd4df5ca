package procfs

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets run their seed corpus in every `go test`; `go test
// -fuzz FuzzX` explores further. Each asserts no panic plus an invariant.

func FuzzStat(f *testing.F) {
	f.Add([]byte(statLine(1, "systemd", "S", 0, 5)), "sleep")
	f.Add([]byte("12 (a) b) R 1"), "a) R 1 2 (")
	f.Add([]byte(""), "x\ny")
	f.Add([]byte("(((((("), ")))")
	f.Fuzz(func(t *testing.T, raw []byte, comm string) {
		if s, err := ParseStat(raw); err == nil && s.PID < 0 {
			// Atoi accepts a sign; a negative PID is parsed, not invented.
			if !bytes.Contains(raw, []byte("-")) {
				t.Errorf("negative pid from %q", raw)
			}
		}
		// Whatever comm holds, the fields after it are found.
		s, err := ParseStat([]byte(statLine(77, comm, "Z", 3, 42)))
		if err != nil {
			t.Fatalf("comm %q: %v", comm, err)
		}
		if s.Comm != comm || s.PID != 77 || s.PPID != 3 || s.State != "Z" || s.StartTime != 42 {
			t.Errorf("comm %q: %+v", comm, s)
		}
	})
}

func FuzzStatus(f *testing.F) {
	f.Add([]byte("Name:\tx\nUid:\t1 2 3 4\nNSpid:\t5 1\n"))
	f.Add([]byte("Uid:\n:\n::::\nGid:\t-1 0 0 0\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := ParseStatus(raw)
		if err == nil && len(s.NSpid) > 0 && !bytes.Contains(raw, []byte("NSpid")) {
			t.Errorf("NSpid from nowhere: %q", raw)
		}
	})
}

func FuzzCmdline(f *testing.F) {
	f.Add([]byte("a\x00b\x00"))
	f.Add([]byte("PATH=/x\x00K=v=w\x00\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		args := ParseCmdline(raw)
		// Joining the arguments back with NULs gives the input, minus
		// one trailing NUL.
		joined := strings.Join(args, "\x00")
		if want := string(bytes.TrimSuffix(raw, []byte{0})); joined != want {
			t.Errorf("cmdline round trip: %q -> %q", want, joined)
		}
		for _, n := range ParseEnvironNames(raw) {
			if strings.ContainsAny(n, "=\x00") {
				t.Errorf("environ name %q holds '=' or NUL", n)
			}
		}
	})
}

func FuzzCgroup(f *testing.F) {
	f.Add("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + strings.ReplaceAll(testUID, "-", "_") + ".slice/cri-containerd-" + testCID + ".scope")
	f.Add("4:memory:/kubepods/burstable/pod" + testUID + "/" + testCID + "\n1:name=systemd:/x:y")
	f.Add("/docker/" + testCID)
	f.Add("::::\n:\n0:")
	f.Fuzz(func(t *testing.T, raw string) {
		lines, _ := ParseCgroup(strings.NewReader(raw))
		for _, l := range lines {
			if strings.Contains(l.Path, "\n") {
				t.Errorf("path with newline: %q", l.Path)
			}
			re := fmt.Sprintf("%d:%s:%s\n", l.HierarchyID, strings.Join(l.Controllers, ","), l.Path)
			again, err := ParseCgroup(strings.NewReader(re))
			if err != nil || len(again) != 1 || again[0].Path != l.Path || again[0].HierarchyID != l.HierarchyID {
				t.Errorf("re-render %q: %+v, %v", re, again, err)
			}
		}
		ref, ok := ParseCgroupPath(raw)
		if !ok {
			if ref != (ContainerRef{}) {
				t.Errorf("not ok but %+v", ref)
			}
			return
		}
		if ref.PodUID == "" && ref.ContainerID == "" {
			t.Errorf("ok with nothing found in %q", raw)
		}
		if ref.PodUID != NormalizePodUID(ref.PodUID) || (ref.PodUID != "" && !strings.Contains(strings.ToLower(strings.ReplaceAll(raw, "_", "-")), ref.PodUID)) {
			t.Errorf("pod uid %q not normalised or not from %q", ref.PodUID, raw)
		}
		if ref.ContainerID != strings.ToLower(ref.ContainerID) || !strings.Contains(strings.ToLower(raw), ref.ContainerID) {
			t.Errorf("container id %q not from %q", ref.ContainerID, raw)
		}
	})
}

func FuzzMountinfo(f *testing.F) {
	f.Add("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw\n", "/a b")
	f.Add("1 1 1:1 \\ \\0 - - - -\n", "\\040")
	f.Add("", "\n\t\\")
	f.Fuzz(func(t *testing.T, raw, mountPoint string) {
		ms, _ := ParseMountinfo(strings.NewReader(raw))
		for _, m := range ms {
			if m.Optional == nil {
				t.Error("nil Optional")
			}
		}
		_ = UnescapeOctal(raw)
		if !utf8.ValidString(mountPoint) || mountPoint == "" {
			return
		}
		line := fmt.Sprintf("36 35 98:0 / %s rw shared:1 - ext4 %s rw\n", EscapeOctal(mountPoint), EscapeOctal(mountPoint))
		got, err := ParseMountinfo(strings.NewReader(line))
		if err != nil || len(got) != 1 || got[0].MountPoint != mountPoint || got[0].Source != mountPoint {
			t.Errorf("round trip of %q via %q: %+v, %v", mountPoint, line, got, err)
		}
	})
}

func FuzzMaps(f *testing.F) {
	f.Add("7f00-7f10 r-xp 0000a000 103:02 42   /tmp/x\n", "/usr/lib/libc.so.6")
	f.Add("0-0 ---- 0 0:0 0\n", "/a b (deleted)")
	f.Fuzz(func(t *testing.T, raw, path string) {
		ms, _ := ParseMaps(strings.NewReader(raw))
		for _, m := range ms {
			if len(m.Perms) != 4 {
				t.Errorf("perms %q", m.Perms)
			}
		}
		if strings.ContainsAny(path, "\n\r") || strings.Contains(path, `\012`) || strings.HasPrefix(path, " ") || strings.TrimSpace(path) == "" {
			return
		}
		line := "7f00-7f10 r-xp 00000000 fd:01 9 " + strings.ReplaceAll(path, "\n", `\012`) + "\n"
		got, err := ParseMaps(strings.NewReader(line))
		if err != nil || len(got) != 1 || got[0].Path != path {
			t.Errorf("round trip of %q: %+v, %v", path, got, err)
		}
	})
}

func FuzzNetIP(f *testing.F) {
	f.Add("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 24571 1\n", []byte{127, 0, 0, 1}, uint16(80))
	f.Add("x\n0: :: :: 0 0:0 0 0 0 0 0\n", []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(0))
	f.Fuzz(func(t *testing.T, raw string, addr []byte, port uint16) {
		_, _ = ParseNetIP(strings.NewReader("header\n" + raw))
		_, _ = ParseNetUnix(strings.NewReader("header\n" + raw))
		a, ok := netip.AddrFromSlice(addr)
		if !ok {
			return
		}
		want := netip.AddrPortFrom(a, port)
		line := fmt.Sprintf("header\n 0: %s:%04X %s:%04X 01 00000000:00000000 00:00000000 00000000 0 0 7 1\n", hexWords(a), port, hexWords(a), port)
		got, err := ParseNetIP(strings.NewReader(line))
		if err != nil || len(got) != 1 || got[0].Local != want || got[0].Remote != want {
			t.Errorf("round trip of %v: %+v, %v", want, got, err)
		}
	})
}

func FuzzNodeTables(f *testing.F) {
	f.Add(byte(0), "nf_tables 249856 3 a,b, Live 0xffffffffc0a00000 (OE)\n")
	f.Add(byte(1), "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
	f.Add(byte(2), "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n")
	f.Add(byte(3), "192.0.2.1 0x1 0x2 02:fc:00:00:00:05 * eth0\n")
	f.Add(byte(4), "pos:\t0\nflags:\t0100000\n")
	f.Fuzz(func(t *testing.T, which byte, raw string) {
		switch which % 5 {
		case 0:
			ms, _ := ParseModules(strings.NewReader(raw))
			for _, m := range ms {
				if m.Deps == nil || slicesContain(m.Deps, "") {
					t.Errorf("deps %q", m.Deps)
				}
			}
		case 1:
			rs, _ := ParseRoute(strings.NewReader("header\n" + raw))
			for _, r := range rs {
				if p := r.PrefixLen(); p < -1 || p > 32 {
					t.Errorf("prefix %d", p)
				}
			}
		case 2:
			rs, _ := ParseIPv6Route(strings.NewReader(raw))
			for _, r := range rs {
				if !r.Destination.IsValid() || r.Destination.Bits() > 128 {
					t.Errorf("destination %v", r.Destination)
				}
			}
		case 3:
			_, _ = ParseARP(strings.NewReader("header\n" + raw))
		case 4:
			_, _ = ParseFdinfo([]byte(raw))
		}
	})
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
