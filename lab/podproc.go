package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// PodProcess is a real process standing in for a pod's container on the
// suspect's node, for what kwok cannot show: it runs in its own PID and
// network namespaces (unshare), in a cgroup shaped as the kubelet's systemd
// driver makes them on Amazon Linux 2023 (cgroup v2), from an executable
// deleted once running (as a dropper deletes its miner), and holds an
// established TCP connection from the pod's address to Remote inside its
// network namespace. eksir's collector, run on the lab host, finds it by
// the pod's UID as it would on a node.
type PodProcess struct {
	// Proc is the unshare process the lab records and stops; stopping it
	// kills the pod process (--kill-child).
	Proc
	// PodPID is the pod process as the node sees it.
	PodPID int `json:"podPid"`
	// ContainerID is the 64-hex ID in its cgroup's scope name.
	ContainerID string `json:"containerId"`
	// Cgroup is its cgroup path as /proc/PID/cgroup names it; CgroupRoot
	// the cgroup v2 mount it lives under.
	Cgroup     string `json:"cgroup"`
	CgroupRoot string `json:"cgroupRoot"`
	// Local and Remote are the two ends of its connection.
	Local  string `json:"local"`
	Remote string `json:"remote"`
	// Exe is the deleted executable's path.
	Exe string `json:"exe"`
}

// ErrNoPodProcess says this machine cannot run a pod process; the message
// says why (not root, no unshare, no cgroup v2).
var ErrNoPodProcess = errors.New("cannot start a pod process here")

const podProcessEnv = "EKSIR_LAB_POD_PROCESS"

// RunPodProcessIfAsked turns this process into a pod process when it was
// started as one; eksir's main and the test harness call it first thing.
// It returns only when the process is not one.
func RunPodProcessIfAsked() {
	if spec := os.Getenv(podProcessEnv); spec != "" {
		os.Exit(runPodProcess(spec))
	}
}

// runPodProcess listens at remote, connects from local, prints
// "ready LOCAL" and holds both ends until SIGTERM or SIGINT.
func runPodProcess(spec string) int {
	local, remote, _ := strings.Cut(spec, " ")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	l, err := net.Listen("tcp", remote)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pod process:", err)
		return 1
	}
	lip, _, _ := net.SplitHostPort(local)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(lip)}}
	c, err := d.Dial("tcp", remote)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pod process:", err)
		return 1
	}
	a, err := l.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pod process:", err)
		return 1
	}
	fmt.Printf("ready %s\n", c.LocalAddr())
	<-sig
	a.Close()
	c.Close()
	return 0
}

// unifiedCgroup is where cgroup v2 is mounted: /sys/fs/cgroup on a pure
// v2 host (Amazon Linux 2023), /sys/fs/cgroup/unified in a hybrid layout.
func unifiedCgroup() (string, error) {
	for _, d := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "cgroup.controllers")); err == nil || d == "/sys/fs/cgroup/unified" {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no cgroup v2 hierarchy mounted", ErrNoPodProcess)
}

// PodProcessSupported says whether StartPodProcess can work here, and if
// not, why.
func PodProcessSupported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: network and PID namespaces and cgroups need root", ErrNoPodProcess)
	}
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found (apt-get install util-linux iproute2)", ErrNoPodProcess, tool)
		}
	}
	_, err := unifiedCgroup()
	return err
}

// StartPodProcess starts a PodProcess called name (its executable's name,
// as ps shows it) for the pod with UID podUID, connected from local to
// remote ("203.0.113.50:3333"), its copy of this executable under dir. It
// outlives the caller (its own session) until Stop, or lab down when the
// lab records it.
func StartPodProcess(dir, name, podUID, local, remote string) (*PodProcess, error) {
	if err := PodProcessSupported(); err != nil {
		return nil, err
	}
	root, _ := unifiedCgroup()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	idb := make([]byte, 32)
	rand.Read(idb)
	id := hex.EncodeToString(idb)
	slice := "kubepods-besteffort-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice"
	rel := "/kubepods.slice/kubepods-besteffort.slice/" + slice + "/cri-containerd-" + id + ".scope"
	cg := filepath.Join(root, rel)
	if err := os.MkdirAll(cg, 0o755); err != nil {
		return nil, fmt.Errorf("%w: create a pod-style cgroup: %v", ErrNoPodProcess, err)
	}
	p := &PodProcess{ContainerID: id, Cgroup: rel, CgroupRoot: root, Remote: remote}
	fail := func(err error) (*PodProcess, error) {
		p.Stop(context.Background())
		return nil, err
	}
	exeDir, err := os.MkdirTemp(dir, "pod-process-")
	if err != nil {
		return fail(err)
	}
	p.Exe = filepath.Join(exeDir, name)
	b, err := os.ReadFile(self)
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(p.Exe, b, 0o755); err != nil {
		return fail(err)
	}
	lip, _, _ := net.SplitHostPort(local)
	rip, _, _ := net.SplitHostPort(remote)
	// Only the "container's" process joins the cgroup: the shell inside the
	// new namespaces moves itself ($$ is 1 there, which the kernel reads in
	// the writer's PID namespace) and then becomes the executable.
	script := fmt.Sprintf(`set -e; ip link set lo up; ip addr add %s/32 dev lo; ip addr add %s/32 dev lo; echo $$ > %q; exec %q`,
		lip, rip, filepath.Join(cg, "cgroup.procs"), p.Exe)
	cmd := exec.Command("unshare", "--net", "--pid", "--fork", "--kill-child", "sh", "-c", script)
	cmd.Env = append(os.Environ(), podProcessEnv+"="+local+" "+remote)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("start the pod process: %w", err))
	}
	go func() { _ = cmd.Wait() }()
	ticks, err := procStartTicks(cmd.Process.Pid)
	if err != nil {
		cmd.Process.Kill()
		return fail(err)
	}
	p.Proc = Proc{Name: "pod-process-" + name, PID: cmd.Process.Pid, StartTicks: ticks, Args: cmd.Args}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if _, err := fmt.Sscanf(line, "ready %s", &p.Local); err != nil {
			return fail(fmt.Errorf("pod process said %q", line))
		}
	case <-time.After(30 * time.Second):
		return fail(errors.New("pod process did not start within 30 s"))
	}
	for deadline := time.Now().Add(10 * time.Second); p.PodPID == 0 && time.Now().Before(deadline); {
		b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if target, _ := os.Readlink("/proc/" + f + "/exe"); target == p.Exe {
				fmt.Sscan(f, &p.PodPID)
			}
		}
	}
	if p.PodPID == 0 {
		return fail(errors.New("pod process not found in its cgroup"))
	}
	if err := os.Remove(p.Exe); err != nil {
		return fail(err)
	}
	return p, nil
}

// Stop ends the pod process and removes its container scope and pod slice
// (the QoS slices above are shared and stay).
func (p *PodProcess) Stop(ctx context.Context) error {
	// The pod process goes first, so unshare reaps it at once and its
	// cgroup empties; killed the other way round, it would wait as a zombie
	// for whatever adopts it.
	if p.PodPID > 0 && p.CgroupRoot != "" {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.PodPID)); err == nil && strings.Contains(string(b), p.Cgroup) {
			_ = syscall.Kill(p.PodPID, syscall.SIGTERM)
		}
		procs := filepath.Join(p.CgroupRoot, p.Cgroup, "cgroup.procs")
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if b, err := os.ReadFile(procs); err != nil || len(strings.TrimSpace(string(b))) == 0 {
				break
			}
		}
	}
	if p.PID > 0 && p.Alive() {
		if err := stopAll(ctx, []Proc{p.Proc}); err != nil {
			return err
		}
	}
	if p.Exe != "" {
		os.RemoveAll(filepath.Dir(p.Exe))
	}
	if p.CgroupRoot == "" || p.Cgroup == "" {
		return nil
	}
	var err error
	for _, rel := range []string{p.Cgroup, filepath.Dir(p.Cgroup)} {
		// The killed process may take a moment to leave its cgroup.
		for i := 0; i < 50; i++ {
			if err = os.Remove(filepath.Join(p.CgroupRoot, rel)); err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return err
}
