package procfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	prom "github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/eksir/eksir/internal/procfs"
)

// The differential tests compare this package with github.com/prometheus/procfs,
// an independent implementation, on this machine's live /proc. /proc changes
// between two reads (a process changes state, exits), so each file is read
// once into a snapshot directory and both implementations parse the same
// bytes: prometheus/procfs through an FS rooted at the snapshot.

// snapshot copies the named files of /proc into dir, keeping their relative
// paths. A process that vanished is reported with ok=false.
func snapshot(t *testing.T, dir string, rel ...string) (ok bool) {
	t.Helper()
	for _, r := range rel {
		b, err := os.ReadFile(filepath.Join("/proc", r))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
				return false
			}
			if errors.Is(err, fs.ErrPermission) {
				return false
			}
			t.Fatalf("read /proc/%s: %v", r, err)
		}
		p := filepath.Join(dir, r)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return true
}

func livePIDs(t *testing.T) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var pids []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

func TestDifferentialProcesses(t *testing.T) {
	dir := t.TempDir()
	pfs, err := prom.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, pid := range livePIDs(t) {
		p := strconv.Itoa(pid)
		if !snapshot(t, dir, p+"/stat", p+"/cmdline", p+"/status", p+"/cgroup") {
			continue
		}
		read := func(name string) []byte {
			b, err := os.ReadFile(filepath.Join(dir, p, name))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		theirs, err := pfs.Proc(pid)
		if err != nil {
			t.Fatal(err)
		}

		ps, err := theirs.Stat()
		if err != nil {
			t.Fatalf("pid %d: prometheus stat: %v", pid, err)
		}
		s, err := procfs.ParseStat(read("stat"))
		if err != nil {
			t.Fatalf("pid %d: stat: %v", pid, err)
		}
		if s.PID != ps.PID || s.PPID != ps.PPID || s.Comm != ps.Comm || s.State != ps.State || s.StartTime != ps.Starttime ||
			s.NumThreads != ps.NumThreads || s.UTime != uint64(ps.UTime) || s.STime != uint64(ps.STime) || s.VSize != uint64(ps.VSize) || s.RSS != int64(ps.RSS) {
			t.Errorf("pid %d stat:\n ours   %+v\n theirs %+v", pid, s, ps)
		}

		pc, err := theirs.CmdLine()
		if err != nil {
			t.Fatal(err)
		}
		c := procfs.ParseCmdline(read("cmdline"))
		// prometheus/procfs trims every trailing NUL and so drops empty
		// trailing arguments ("sh -c ''"), which this package keeps.
		trimmed := c
		for len(trimmed) > 0 && trimmed[len(trimmed)-1] == "" {
			trimmed = trimmed[:len(trimmed)-1]
		}
		if !slices.Equal(trimmed, pc) && !(len(pc) == 1 && pc[0] == "" && len(trimmed) == 0) {
			t.Errorf("pid %d cmdline: ours %q theirs %q", pid, c, pc)
		}

		pst, err := theirs.NewStatus()
		if err != nil {
			t.Fatal(err)
		}
		st, err := procfs.ParseStatus(read("status"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			if uint64(st.UID[i]) != pst.UIDs[i] || uint64(st.GID[i]) != pst.GIDs[i] {
				t.Errorf("pid %d ids: ours %v/%v theirs %v/%v", pid, st.UID, st.GID, pst.UIDs, pst.GIDs)
				break
			}
		}
		if st.PPid != s.PPID || st.Tgid != pid {
			t.Errorf("pid %d status: PPid %d Tgid %d, stat says %d", pid, st.PPid, st.Tgid, s.PPID)
		}

		pcg, err := theirs.Cgroups()
		if err != nil {
			t.Fatal(err)
		}
		cg, err := procfs.ParseCgroup(bytes.NewReader(read("cgroup")))
		if err != nil {
			t.Fatal(err)
		}
		if len(cg) != len(pcg) {
			t.Fatalf("pid %d cgroup: %d lines, theirs %d", pid, len(cg), len(pcg))
		}
		for i := range cg {
			pctrl := pcg[i].Controllers
			if pctrl == nil {
				pctrl = []string{}
			}
			if cg[i].HierarchyID != pcg[i].HierarchyID || cg[i].Path != pcg[i].Path || !slices.Equal(cg[i].Controllers, pctrl) {
				t.Errorf("pid %d cgroup line %d: ours %+v theirs %+v", pid, i, cg[i], pcg[i])
			}
		}
		compared++
	}
	if compared < 2 {
		t.Fatalf("compared %d processes; /proc looks empty", compared)
	}
	t.Logf("compared stat, cmdline, status and cgroup of %d processes", compared)
}

func TestDifferentialSelf(t *testing.T) {
	// Give the socket tables something to hold: a listener with an
	// established connection, IPv6 when available, UDP, and unix sockets
	// with awkward names.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if ln6, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		defer ln6.Close()
		if c6, err := net.Dial("tcp6", ln6.Addr().String()); err == nil {
			defer c6.Close()
		}
	}
	if u, err := net.ListenPacket("udp4", "127.0.0.1:0"); err == nil {
		defer u.Close()
	}
	if u6, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		defer u6.Close()
	}
	unixPath := filepath.Join(t.TempDir(), "sock with space")
	if ul, err := net.Listen("unix", unixPath); err == nil {
		defer ul.Close()
	}
	if ua, err := net.Listen("unix", "@eksir-diff-"+strconv.Itoa(os.Getpid())); err == nil {
		defer ua.Close()
	}

	dir := t.TempDir()
	self := strconv.Itoa(os.Getpid())
	if !snapshot(t, dir, self+"/mountinfo", self+"/maps", "net/tcp", "net/udp", "net/unix") {
		t.Skip("cannot read own /proc files")
	}
	has6 := snapshot(t, dir, "net/tcp6", "net/udp6")
	pfs, err := prom.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	open := func(rel string) *os.File {
		f, err := os.Open(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	me, err := pfs.Proc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("mountinfo", func(t *testing.T) {
		theirs, err := me.MountInfo()
		if err != nil {
			t.Fatal(err)
		}
		ours, err := procfs.ParseMountinfo(open(self + "/mountinfo"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) != len(theirs) || len(ours) == 0 {
			t.Fatalf("%d mounts, theirs %d", len(ours), len(theirs))
		}
		for i, m := range ours {
			o := theirs[i]
			// prometheus/procfs leaves the octal escapes in place.
			if m.ID != o.MountID || m.ParentID != o.ParentID || fmt.Sprintf("%d:%d", m.Major, m.Minor) != o.MajorMinorVer ||
				m.Root != procfs.UnescapeOctal(o.Root) || m.MountPoint != procfs.UnescapeOctal(o.MountPoint) ||
				m.FSType != o.FSType || m.Source != procfs.UnescapeOctal(o.Source) || len(m.Optional) != len(o.OptionalFields) {
				t.Errorf("mount %d: ours %+v theirs %+v", i, m, o)
			}
			for opt := range strings.SplitSeq(m.Options, ",") {
				k, _, _ := strings.Cut(opt, "=")
				if _, ok := o.Options[k]; !ok {
					t.Errorf("mount %d: option %q missing from theirs %v", i, k, o.Options)
				}
			}
		}
	})

	t.Run("maps", func(t *testing.T) {
		theirs, err := me.ProcMaps()
		if err != nil {
			t.Fatal(err)
		}
		ours, err := procfs.ParseMaps(open(self + "/maps"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) != len(theirs) || len(ours) == 0 {
			t.Fatalf("%d maps, theirs %d", len(ours), len(theirs))
		}
		for i, m := range ours {
			o := theirs[i]
			perms := fmt.Sprintf("%s%s%s%s", flag(o.Perms.Read, "r"), flag(o.Perms.Write, "w"), flag(o.Perms.Execute, "x"),
				map[bool]string{true: "s", false: "p"}[o.Perms.Shared])
			if m.Start != uint64(o.StartAddr) || m.End != uint64(o.EndAddr) || m.Perms != perms || m.Offset != uint64(o.Offset) ||
				unix.Mkdev(m.Major, m.Minor) != o.Dev || m.Inode != o.Inode || m.Path != o.Pathname {
				t.Errorf("map %d: ours %+v theirs %+v", i, m, o)
			}
		}
	})

	compareIP := func(t *testing.T, file string, theirs prom.NetTCP, want net.Addr) {
		ours, err := procfs.ParseNetIP(open(file))
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) != len(theirs) {
			t.Fatalf("%d sockets, theirs %d", len(ours), len(theirs))
		}
		found := want == nil
		for i, s := range ours {
			o := theirs[i]
			la, _ := netipFrom(o.LocalAddr)
			ra, _ := netipFrom(o.RemAddr)
			if s.Local.Addr() != la || uint64(s.Local.Port()) != o.LocalPort || s.Remote.Addr() != ra || uint64(s.Remote.Port()) != o.RemPort ||
				uint64(s.State) != o.St || s.TxQueue != o.TxQueue || s.RxQueue != o.RxQueue || uint64(s.UID) != o.UID || s.Inode != o.Inode {
				t.Errorf("socket %d: ours %+v theirs %+v", i, s, o)
			}
			if want != nil && s.Local.String() == want.String() {
				found = true
			}
		}
		if !found {
			t.Errorf("own socket %v not in %s", want, file)
		}
	}
	t.Run("tcp", func(t *testing.T) {
		theirs, err := pfs.NetTCP()
		if err != nil {
			t.Fatal(err)
		}
		compareIP(t, "net/tcp", theirs, ln.Addr())
	})
	t.Run("udp", func(t *testing.T) {
		theirs, err := pfs.NetUDP()
		if err != nil {
			t.Fatal(err)
		}
		compareIP(t, "net/udp", prom.NetTCP(theirs), nil)
	})
	t.Run("tcp6+udp6", func(t *testing.T) {
		if !has6 {
			t.Skip("no IPv6 on this kernel")
		}
		t6, err := pfs.NetTCP6()
		if err != nil {
			t.Fatal(err)
		}
		compareIP(t, "net/tcp6", t6, nil)
		u6, err := pfs.NetUDP6()
		if err != nil {
			t.Fatal(err)
		}
		compareIP(t, "net/udp6", prom.NetTCP(u6), nil)
	})
	t.Run("unix", func(t *testing.T) {
		theirs, err := pfs.NetUNIX()
		if err != nil {
			t.Fatal(err)
		}
		ours, err := procfs.ParseNetUnix(open("net/unix"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ours) != len(theirs.Rows) {
			t.Fatalf("%d unix sockets, theirs %d", len(ours), len(theirs.Rows))
		}
		sawSpace := false
		for i, u := range ours {
			o := theirs.Rows[i]
			if uint64(u.RefCount) != o.RefCount || uint64(u.Flags) != uint64(o.Flags) || uint64(u.Type) != uint64(o.Type) ||
				uint64(u.State) != uint64(o.State) || u.Inode != o.Inode {
				t.Errorf("unix %d: ours %+v theirs %+v", i, u, o)
			}
			// prometheus/procfs splits on whitespace and keeps only the
			// first word of a path; this package keeps it whole.
			if !strings.HasPrefix(u.Path, o.Path) {
				t.Errorf("unix %d path: ours %q theirs %q", i, u.Path, o.Path)
			}
			sawSpace = sawSpace || u.Path == unixPath
		}
		if !sawSpace {
			t.Errorf("unix socket %q not found whole", unixPath)
		}
	})
}

func flag(b bool, s string) string {
	if b {
		return s
	}
	return "-"
}

func TestDifferentialModules(t *testing.T) {
	b, err := os.ReadFile("/proc/modules")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("kernel without loadable modules (no /proc/modules)")
	}
	if err != nil {
		t.Fatal(err)
	}
	// prometheus/procfs has no modules parser; sysfs is the independent
	// view: every loaded module has /sys/module/NAME with its refcnt.
	ms, err := procfs.ParseModules(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if _, err := os.Stat(filepath.Join("/sys/module", m.Name)); err != nil {
			t.Errorf("module %s: %v", m.Name, err)
		}
		if rc, err := os.ReadFile(filepath.Join("/sys/module", m.Name, "refcnt")); err == nil {
			if n, _ := strconv.Atoi(strings.TrimSpace(string(rc))); n != m.Instances && m.State == "Live" {
				t.Logf("module %s: refcnt %d, /proc/modules %d (may change between reads)", m.Name, n, m.Instances)
			}
		}
	}
}

// netipFrom converts prometheus/procfs's net.IP, 4 bytes for IPv4 and 16
// for IPv6, as it decodes them.
func netipFrom(ip net.IP) (netip.Addr, bool) { return netip.AddrFromSlice(ip) }
