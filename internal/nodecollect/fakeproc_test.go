package nodecollect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	podUID    = "6a1d0c3e-2b4f-4e8a-9c7d-1f3e5a7b9c0d"
	otherUID  = "11111111-2222-3333-4444-555555555555"
	container = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
	hostNetNS = 4026531840
	podNetNS  = 4026532100
	hostMntNS = 4026531841
	podMntNS  = 4026532101
)

// fakeProc builds a /proc tree in a temporary directory, so that the
// collector's joins and selection can be checked against known answers.
type fakeProc struct {
	t    *testing.T
	root string
	exe  string // a real file the exe links point at
}

type fakeProcess struct {
	pid, ppid   int
	comm        string
	cmdline     []string
	cgroup      string // the unified line's path
	netNS       uint64
	mntNS       uint64
	socketFDs   map[int]uint64 // fd → socket inode
	environ     string
	kernelThrd  bool
	noExe       bool
	status      string // overrides the generated status when set
	statContent string // overrides the generated stat when set
}

func newFakeProc(t *testing.T) *fakeProc {
	t.Helper()
	f := &fakeProc{t: t, root: filepath.Join(t.TempDir(), "proc")}
	f.exe = filepath.Join(t.TempDir(), "app")
	f.write("stat", "cpu  1 2 3 4\nbtime 1700000000\nprocesses 10\n")
	f.write("sys/kernel/hostname", "node-a\n")
	f.write("sys/kernel/osrelease", "6.1.0-test\n")
	f.write("sys/kernel/random/boot_id", "2f0e9c1a-0000-4000-8000-000000000001\n")
	if err := os.WriteFile(f.exe, []byte("#!/bin/false\nfake executable\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeProc) write(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeProc) link(rel, target string) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeProc) add(p fakeProcess) {
	d := strconv.Itoa(p.pid)
	flags := 4194560
	if p.kernelThrd {
		flags |= 0x00200000
	}
	stat := fmt.Sprintf("%d (%s) S %d %d %d 0 -1 %d 0 0 0 0 5 6 0 0 20 0 1 0 %d 1000 10 18446744073709551615\n",
		p.pid, p.comm, p.ppid, p.pid, p.pid, flags, 1000+p.pid)
	if p.statContent != "" {
		stat = p.statContent
	}
	f.write(d+"/stat", stat)
	status := p.status
	if status == "" {
		status = fmt.Sprintf("Name:\t%s\nTgid:\t%d\nPPid:\t%d\nUid:\t1000\t1001\t1001\t1001\nGid:\t2000\t2001\t2001\t2001\nNSpid:\t%d\nThreads:\t1\n",
			p.comm, p.pid, p.ppid, p.pid)
	}
	f.write(d+"/status", status)
	f.write(d+"/cmdline", strings.Join(p.cmdline, "\x00")+"\x00")
	f.write(d+"/cgroup", "4:memory:"+p.cgroup+"\n0::"+p.cgroup+"\n")
	f.write(d+"/environ", p.environ)
	f.write(d+"/maps", "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/app\n")
	f.write(d+"/mountinfo", fmt.Sprintf("1 0 8:2 / / rw - ext4 /dev/sda2 rw\n2 1 0:5 / /mnt/ns%d rw - tmpfs tmpfs rw\n", p.mntNS))
	f.link(d+"/ns/net", fmt.Sprintf("net:[%d]", p.netNS))
	f.link(d+"/ns/mnt", fmt.Sprintf("mnt:[%d]", p.mntNS))
	f.link(d+"/ns/pid", "pid:[4026531836]")
	if !p.noExe && !p.kernelThrd {
		f.link(d+"/exe", f.exe)
	}
	if err := os.MkdirAll(filepath.Join(f.root, d, "fd"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	for fd, ino := range p.socketFDs {
		f.link(fmt.Sprintf("%s/fd/%d", d, fd), fmt.Sprintf("socket:[%d]", ino))
	}
}

// netTables writes pid's /proc/PID/net/{tcp,unix} with one TCP socket per
// inode, listening on 127.0.0.1:port.
func (f *fakeProc) netTables(pid int, port uint16, inodes ...uint64) {
	var tcp strings.Builder
	tcp.WriteString("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
	for i, ino := range inodes {
		fmt.Fprintf(&tcp, "%4d: 0100007F:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n", i, port, ino)
	}
	f.write(strconv.Itoa(pid)+"/net/tcp", tcp.String())
	f.write(strconv.Itoa(pid)+"/net/unix", "Num       RefCount Protocol Flags    Type St Inode Path\n")
}

func (f *fakeProc) collector() *Collector {
	return &Collector{Proc: f.root, Self: 999, Redact: true, Version: "test", SelfExe: f.exe,
		Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC) }}
}

func podCgroup(uid, id string) string {
	return "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + strings.ReplaceAll(uid, "-", "_") +
		".slice/cri-containerd-" + id + ".scope"
}

// standardNode is a host process, two processes of the pod (one in its
// container, one the sandbox at pod level), a process of another pod and a
// kernel thread; the pod has its own network and mount namespaces.
func standardNode(t *testing.T) *fakeProc {
	f := newFakeProc(t)
	f.add(fakeProcess{pid: 1, comm: "systemd", cmdline: []string{"/sbin/init"}, cgroup: "/init.scope", netNS: hostNetNS, mntNS: hostMntNS,
		socketFDs: map[int]uint64{4: 900}})
	f.add(fakeProcess{pid: 2, comm: "kthreadd", cgroup: "/", netNS: hostNetNS, mntNS: hostMntNS, kernelThrd: true})
	f.add(fakeProcess{pid: 100, ppid: 1, comm: "app) S 1 (x", cmdline: []string{"/app", "--token", "tok-123", "--port=80"},
		cgroup: podCgroup(podUID, container), netNS: podNetNS, mntNS: podMntNS, socketFDs: map[int]uint64{3: 500, 7: 501},
		environ: "PATH=/bin\x00DB_PASSWORD=very-secret-value\x00"})
	f.add(fakeProcess{pid: 101, ppid: 1, comm: "pause", cmdline: []string{"/pause"},
		cgroup: strings.TrimSuffix(podCgroup(podUID, container), "/cri-containerd-"+container+".scope"), netNS: podNetNS, mntNS: podMntNS})
	f.add(fakeProcess{pid: 102, ppid: 1, comm: "sidecar-helper", cmdline: []string{"/helper"},
		cgroup: podCgroup(otherUID, strings.Repeat("ab", 32)), netNS: podNetNS, mntNS: hostMntNS, socketFDs: map[int]uint64{5: 500}})
	f.add(fakeProcess{pid: 103, ppid: 1, comm: "other", cmdline: []string{"/other"},
		cgroup: podCgroup(otherUID, strings.Repeat("cd", 32)), netNS: hostNetNS, mntNS: hostMntNS})
	f.netTables(1, 22, 900)
	f.netTables(100, 8080, 500, 501)
	f.netTables(101, 8080, 500, 501)
	f.netTables(102, 8080, 500, 501)
	f.netTables(103, 22, 900)
	return f
}

func TestProcessesSelectionAndFields(t *testing.T) {
	f := standardNode(t)
	// A process that vanished between the listing and the read: its
	// directory is there but stat is gone. It must be skipped silently.
	if err := os.MkdirAll(filepath.Join(f.root, "555"), 0o755); err != nil {
		t.Fatal(err)
	}
	doc, err := f.collector().Processes(context.Background(), Selector{PodUID: strings.ToUpper(strings.ReplaceAll(podUID, "-", "_"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Errors) != 0 {
		t.Errorf("errors: %+v", doc.Errors)
	}
	var pids, selected []int
	for _, p := range doc.Processes {
		pids = append(pids, p.PID)
		if p.Selected {
			selected = append(selected, p.PID)
		}
	}
	if !slices.Equal(pids, []int{1, 2, 100, 101, 102, 103}) || !slices.Equal(selected, []int{100, 101}) {
		t.Fatalf("pids %v selected %v", pids, selected)
	}
	if doc.Selector.Kind != "pod-uid" || doc.Selector.PodUID != podUID {
		t.Errorf("selector %+v", doc.Selector)
	}
	sum := sha256.Sum256([]byte("#!/bin/false\nfake executable\n"))
	p := doc.Processes[2]
	if p.Comm != "app) S 1 (x" || p.PPID != 1 || p.PodUID != podUID || p.ContainerID != container || p.Runtime != "cri-containerd" ||
		p.QoS != "besteffort" || p.ExeSHA256 != hex.EncodeToString(sum[:]) || p.Exe != f.exe || p.ExeDeleted ||
		p.UID != (IDs{1000, 1001}) || p.GID != (IDs{2000, 2001}) || p.Namespaces["net"] != podNetNS || p.Namespaces["mnt"] != podMntNS {
		t.Errorf("process 100 = %+v", p)
	}
	if !slices.Equal(p.Cmdline, []string{"/app", "--token", Redacted, "--port=80"}) || !p.CmdlineRedacted {
		t.Errorf("cmdline %q", p.Cmdline)
	}
	if want := time.Unix(1700000000, 0).Add(1100 * 10 * time.Millisecond).UTC().Format(time.RFC3339Nano); p.StartTime != want {
		t.Errorf("start time %s, want %s", p.StartTime, want)
	}
	if sandbox := doc.Processes[3]; sandbox.PodUID != podUID || sandbox.ContainerID != "" {
		t.Errorf("sandbox %+v", sandbox)
	}
	if k := doc.Processes[1]; !k.KernelThread || k.Exe != "" || len(k.Cmdline) != 0 {
		t.Errorf("kernel thread %+v", k)
	}
	if doc.Host != (HostInfo{"node-a", "6.1.0-test", "2f0e9c1a-0000-4000-8000-000000000001"}) || doc.BootTime != "2023-11-14T22:13:20Z" {
		t.Errorf("host %+v boot %s", doc.Host, doc.BootTime)
	}
}

func TestProcessesRecordsErrors(t *testing.T) {
	f := standardNode(t)
	f.add(fakeProcess{pid: 300, comm: "bad", statContent: "300 no parens\n", cgroup: "/", netNS: 1, mntNS: 1})
	f.add(fakeProcess{pid: 301, comm: "gone-exe", cgroup: "/", netNS: 1, mntNS: 1, noExe: true})
	doc, err := f.collector().Processes(context.Background(), Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Errors) != 1 || !strings.HasSuffix(doc.Errors[0].Path, "/300/stat") {
		t.Errorf("errors %+v, want one for 300/stat (301's missing exe is a vanished process, not an error)", doc.Errors)
	}
	for _, p := range doc.Processes {
		if p.PID == 300 || p.Selected {
			t.Errorf("unexpected %+v", p)
		}
	}
}

func TestAllExceptSelf(t *testing.T) {
	f := standardNode(t)
	// The collector (999) runs under a shell (998) in its own container
	// (own mount namespace and cgroup); the shell's parent is the suspect.
	coll := "/kubepods/besteffort/pod" + podUID + "/" + strings.Repeat("ef", 32)
	f.add(fakeProcess{pid: 998, ppid: 100, comm: "sh", cgroup: coll, netNS: podNetNS, mntNS: 77})
	f.add(fakeProcess{pid: 999, ppid: 998, comm: "eksir-collector", cgroup: coll, netNS: podNetNS, mntNS: 77})
	doc, err := f.collector().Processes(context.Background(), Selector{AllExceptSelf: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(doc.Selector.Excluded, []int{998, 999}) || doc.Selector.SelfPID != 999 {
		t.Errorf("selector %+v", doc.Selector)
	}
	for _, p := range doc.Processes {
		if want := p.PID < 998; p.Selected != want {
			t.Errorf("pid %d selected=%v", p.PID, p.Selected)
		}
	}
}

func TestSocketsKeepNamespacesApart(t *testing.T) {
	f := standardNode(t)
	c := f.collector()
	doc, err := c.Sockets(context.Background(), Selector{PodUID: podUID})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.NetNamespaces) != 1 {
		t.Fatalf("namespaces %+v", doc.NetNamespaces)
	}
	ns := doc.NetNamespaces[0]
	if ns.Inode != podNetNS || !slices.Equal(ns.PIDs, []int{100, 101, 102}) || ns.ReaderPID != 100 {
		t.Errorf("namespace %+v", ns)
	}
	var inodes []uint64
	for _, s := range ns.Sockets {
		inodes = append(inodes, s.Inode)
	}
	if !slices.Equal(inodes, []uint64{500, 501}) {
		t.Fatalf("socket inodes %v, want the pod's only", inodes)
	}
	wantOwners := []Owner{{PID: 100, FD: 3, Comm: "app) S 1 (x"}, {PID: 102, FD: 5, Comm: "sidecar-helper"}}
	if !slices.Equal(ns.Sockets[0].Owners, wantOwners) || ns.Sockets[0].Local != "127.0.0.1:8080" || ns.Sockets[0].State != "LISTEN" {
		t.Errorf("socket 500 = %+v", ns.Sockets[0])
	}

	node, err := c.Sockets(context.Background(), Selector{Node: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(node.NetNamespaces) != 1 || node.NetNamespaces[0].Inode != hostNetNS || len(node.NetNamespaces[0].Sockets) != 1 ||
		node.NetNamespaces[0].Sockets[0].Inode != 900 || !slices.Equal(node.NetNamespaces[0].Sockets[0].Owners, []Owner{{1, 4, "systemd"}}) {
		t.Errorf("node namespaces %+v", node.NetNamespaces)
	}
	if _, err := c.Sockets(context.Background(), Selector{}); err == nil {
		t.Error("no selector: want error")
	}
}

func TestSocketsReaderMovedNamespace(t *testing.T) {
	f := standardNode(t)
	// A pod process in the host's network namespace (hostNetwork, or one
	// that called setns) brings the host namespace into the document, under
	// the host's inode; the pod's own namespace is still read through a
	// process that is in it, and holds none of the host's sockets.
	os.Remove(filepath.Join(f.root, "100/ns/net"))
	f.link("100/ns/net", fmt.Sprintf("net:[%d]", hostNetNS))
	doc, err := f.collector().Sockets(context.Background(), Selector{PodUID: podUID})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range doc.NetNamespaces {
		for _, s := range ns.Sockets {
			if ns.Inode == podNetNS && s.Inode == 900 {
				t.Errorf("host socket under the pod namespace")
			}
		}
		if ns.Inode == podNetNS && ns.ReaderPID != 101 {
			t.Errorf("pod namespace read through %d, want 101", ns.ReaderPID)
		}
	}
}

func TestPerProcessArtefacts(t *testing.T) {
	f := standardNode(t)
	c := f.collector()
	ctx := context.Background()
	sel := Selector{PodUID: podUID}

	env, err := c.Environ(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, env); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "very-secret-value") || strings.Contains(buf.String(), "/bin") {
		t.Errorf("environ document holds a value: %s", buf.String())
	}
	if len(env.Processes) != 2 || !slices.Equal(env.Processes[0].Names, []string{"PATH", "DB_PASSWORD"}) {
		t.Errorf("environ %+v", env.Processes)
	}

	files, err := c.Files(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(files.Processes) != 2 || len(files.Processes[0].FDs) != 2 || files.Processes[0].FDs[0].FD != 3 ||
		files.Processes[0].FDs[0].Type != "socket" || files.Processes[0].FDs[1].Target != "socket:[501]" {
		t.Errorf("files %+v", files.Processes)
	}

	maps, err := c.Maps(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps.Processes) != 2 || maps.Processes[0].Mappings[0] != (Mapping{"0x400000", "0x452000", "r-xp", "0x0", "08:02", 173521, "/usr/bin/app"}) {
		t.Errorf("maps %+v", maps.Processes)
	}

	mounts, err := c.Mounts(ctx, Selector{AllExceptSelf: true})
	if err != nil {
		t.Fatal(err)
	}
	var inodes []uint64
	for _, ns := range mounts.MountNamespaces {
		inodes = append(inodes, ns.Inode)
		if want := fmt.Sprintf("/mnt/ns%d", ns.Inode); len(ns.Mounts) != 2 || ns.Mounts[1].MountPoint != want {
			t.Errorf("namespace %d mounts %+v, want %s (read through a member)", ns.Inode, ns.Mounts, want)
		}
	}
	if !slices.Equal(inodes, []uint64{hostMntNS, podMntNS}) {
		t.Errorf("mount namespaces %v", inodes)
	}
	for name, fn := range map[string]func() error{
		"files":   func() error { _, err := c.Files(ctx, Selector{}); return err },
		"maps":    func() error { _, err := c.Maps(ctx, Selector{}); return err },
		"mounts":  func() error { _, err := c.Mounts(ctx, Selector{}); return err },
		"environ": func() error { _, err := c.Environ(ctx, Selector{}); return err },
	} {
		if err := fn(); err == nil {
			t.Errorf("%s without selector: want error", name)
		}
	}
}

func TestDocumentsAreDeterministic(t *testing.T) {
	f := standardNode(t)
	c := f.collector()
	render := func() string {
		doc, err := c.Sockets(context.Background(), Selector{PodUID: podUID})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := Write(&b, doc); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if a, b := render(), render(); a != b {
		t.Errorf("two runs differ:\n%s\n%s", a, b)
	}
}
