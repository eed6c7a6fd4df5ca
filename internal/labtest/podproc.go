package labtest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// PodProcess is a real process standing in for a pod's container on a
// node, for what kwok cannot show: it runs in its own PID and network
// namespaces (unshare), in a cgroup shaped as the kubelet's systemd driver
// makes them on Amazon Linux 2023 (cgroup v2), from an executable deleted
// after start (as a dropper deletes its miner), and holds an established
// TCP connection from the pod's address to Remote inside its network
// namespace.
type PodProcess struct {
	// PID is the process as the node sees it.
	PID int
	// ContainerID is the 64-hex ID in its cgroup's scope name.
	ContainerID string
	// Cgroup is its cgroup path (as /proc/PID/cgroup names it).
	Cgroup string
	// Local and Remote are the two ends of its connection.
	Local, Remote string
	// Exe is the deleted executable's path.
	Exe string
}

const podProcessEnv = "EKSIR_LABTEST_POD_PROCESS"

// unifiedCgroup is where this machine kind mounts cgroup v2 (a hybrid
// layout); on a pure v2 host it is /sys/fs/cgroup.
func unifiedCgroup() (string, error) {
	for _, d := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "cgroup.controllers")); err == nil || d == "/sys/fs/cgroup/unified" {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("no cgroup v2 hierarchy mounted")
}

// StartPodProcess starts a PodProcess named name for the pod with the given
// UID, connected from local to remote ("203.0.113.50:3333"). It needs root
// (namespaces, cgroups); without it the test is skipped, or fails in CI.
// The process and its cgroups are removed when the test ends.
func StartPodProcess(t testing.TB, name, podUID, local, remote string) *PodProcess {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "a pod-like process needs root for network/PID namespaces and cgroups (run the tests as root, as CI does)")
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			SkipOrFail(t, tool+" not found: apt-get install util-linux iproute2")
		}
	}
	root, err := unifiedCgroup()
	if err != nil {
		SkipOrFail(t, err.Error())
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	idb := make([]byte, 32)
	rand.Read(idb)
	id := hex.EncodeToString(idb)
	slice := "kubepods-besteffort-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice"
	rel := "/kubepods.slice/kubepods-besteffort.slice/" + slice + "/cri-containerd-" + id + ".scope"
	cg := filepath.Join(root, rel)
	if err := os.MkdirAll(cg, 0o755); err != nil {
		SkipOrFail(t, "create a pod-style cgroup: "+err.Error())
	}
	// The "container's" executable: a copy of this test binary under the
	// name, deleted once running.
	exe := filepath.Join(t.TempDir(), name)
	if err := copyFile(self, exe); err != nil {
		t.Fatal(err)
	}
	lip, _, _ := net.SplitHostPort(local)
	rip, _, _ := net.SplitHostPort(remote)
	// Only the "container's" process joins the cgroup: the shell inside the
	// new namespaces moves itself ($$ is 1 there, which the kernel reads in
	// the writer's PID namespace) and then becomes exe.
	script := fmt.Sprintf(`exec unshare --net --pid --fork --kill-child sh -c 'set -e; ip link set lo up; ip addr add %s/32 dev lo; ip addr add %s/32 dev lo; echo $$ > %q; exec %q'`,
		lip, rip, filepath.Join(cg, "cgroup.procs"), exe)
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), podProcessEnv+"="+local+" "+remote)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		removeCgroups(root, rel)
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("pod process did not start: %v", err)
	}
	var pid int
	var l string
	if _, err := fmt.Sscanf(line, "ready %s", &l); err != nil {
		t.Fatalf("pod process said %q", line)
	}
	// The process the node sees is the one running exe in the cgroup.
	deadline := time.Now().Add(10 * time.Second)
	for pid == 0 && time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if target, _ := os.Readlink("/proc/" + f + "/exe"); target == exe {
				fmt.Sscan(f, &pid)
			}
		}
	}
	if pid == 0 {
		t.Fatal("pod process not found in its cgroup")
	}
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	return &PodProcess{PID: pid, ContainerID: id, Cgroup: rel, Local: l, Remote: remote, Exe: exe}
}

// runPodProcess is the pod process's own code: listen at remote, connect
// from local, print "ready LOCAL", hold both ends until stdin closes.
func runPodProcess(spec string) {
	local, remote, _ := strings.Cut(spec, " ")
	l, err := net.Listen("tcp", remote)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pod process:", err)
		os.Exit(1)
	}
	lip, _, _ := net.SplitHostPort(local)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(lip)}}
	c, err := d.Dial("tcp", remote)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pod process:", err)
		os.Exit(1)
	}
	a, err := l.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pod process:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %s\n", c.LocalAddr())
	io.Copy(io.Discard, os.Stdin)
	a.Close()
	c.Close()
	os.Exit(0)
}

// removeCgroups removes the container's scope and the pod's slice; the
// QoS slices above are shared with other tests and stay.
func removeCgroups(root, rel string) {
	for _, p := range []string{rel, filepath.Dir(rel)} {
		// Left-over processes go back to the root first.
		if b, err := os.ReadFile(filepath.Join(root, p, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(f), 0o644)
			}
		}
		os.Remove(filepath.Join(root, p))
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}
