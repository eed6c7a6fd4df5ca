package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	unifiedRoot = "/sys/fs/cgroup/unified"
	pidsRoot    = "/sys/fs/cgroup/pids"
)

// podCgroups creates the cgroups a kubelet with the systemd driver (in the
// unified hierarchy) and with the cgroupfs driver (in the v1 pids
// hierarchy, when there is one) would create for one container, and
// removes what it created at cleanup, after moving processes out.
func podCgroups(t *testing.T, uid, cid string) (dirs []string) {
	t.Helper()
	uu := strings.ReplaceAll(uid, "-", "_")
	layouts := []struct{ root, rel string }{
		{unifiedRoot, filepath.Join("kubepods.slice", "kubepods-besteffort.slice", "kubepods-besteffort-pod"+uu+".slice", "cri-containerd-"+cid+".scope")},
		{pidsRoot, filepath.Join("kubepods", "besteffort", "pod"+uid, cid)},
	}
	for i, l := range layouts {
		if _, err := os.Stat(filepath.Join(l.root, "cgroup.procs")); err != nil {
			if i == 0 {
				skipOrFail(t, "a writable cgroup2 hierarchy at "+unifiedRoot)
			}
			continue
		}
		// Create level by level, remembering which levels are ours.
		var created []string
		p := l.root
		for part := range strings.SplitSeq(l.rel, "/") {
			p = filepath.Join(p, part)
			if err := os.Mkdir(p, 0o755); err == nil {
				created = append(created, p)
			} else if !errors.Is(err, fs.ErrExist) {
				if i == 0 {
					skipOrFail(t, fmt.Sprintf("creating cgroups under %s: %v", l.root, err))
				}
				break
			}
		}
		root := l.root
		t.Cleanup(func() {
			for j := len(created) - 1; j >= 0; j-- {
				if b, err := os.ReadFile(filepath.Join(created[j], "cgroup.procs")); err == nil {
					for pid := range strings.FieldsSeq(string(b)) {
						os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(pid), 0)
					}
				}
				if err := os.Remove(created[j]); err != nil {
					t.Logf("cleanup: %v", err)
				}
			}
		})
		if len(created) > 0 && created[len(created)-1] == p {
			dirs = append(dirs, p)
		}
	}
	return dirs
}

// TestEndToEndPodInOwnNamespaces runs a real process in its own network and
// PID namespaces and in pod-shaped cgroups, then checks what the built
// collector reports about it.
func TestEndToEndPodInOwnNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "root (to create cgroups and network namespaces)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		skipOrFail(t, "the unshare command (util-linux)")
	}
	uid, cid := randomUUID(t), randomHex(t, 32)
	dirs := podCgroups(t, uid, cid)

	// The host side: a listener on the same port the pod will use, with an
	// established connection, none of which may show up under the pod.
	hostLn, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	hostConn, err := net.Dial("tcp4", hostLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer hostConn.Close()
	port := strconv.Itoa(hostLn.Addr().(*net.TCPAddr).Port)
	hostInodes := socketInodes(t, os.Getpid())

	cmd := exec.Command("unshare", "--net", "--pid", "--fork", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=netns", "EKSIR_PORT="+port)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		skipOrFail(t, fmt.Sprintf("unshare --net --pid: %v", err))
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := readLine(stdout, 10*time.Second)
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ready" {
		if strings.Contains(line, "operation not permitted") {
			skipOrFail(t, "permission to create network namespaces: "+line)
		}
		t.Fatalf("helper said %q", line)
	}
	pid := atoi(t, f[1])
	clientAddr := f[2]
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatalf("move %d into %s: %v", pid, d, err)
		}
	}

	procs := collect(t, "processes", "--pod-uid", uid)
	var suspect map[string]any
	for _, p := range list(procs["processes"]) {
		pm := p.(map[string]any)
		if num(pm["pid"]) == pid {
			suspect = pm
		} else if pm["selected"] == true {
			t.Errorf("pid %v selected but not in the pod: %v", pm["pid"], pm["cgroups"])
		}
	}
	if suspect == nil {
		t.Fatalf("pid %d not listed", pid)
	}
	if suspect["pod_uid"] != uid || suspect["container_id"] != cid || suspect["selected"] != true ||
		suspect["qos"] != "besteffort" || suspect["container_runtime"] != "cri-containerd" {
		t.Errorf("suspect process = %v", suspect)
	}
	if nspid := list(suspect["nspid"]); len(nspid) != 2 || num(nspid[1]) != 1 {
		t.Errorf("nspid %v, want [%d 1]", nspid, pid)
	}
	if len(dirs) == 2 {
		// The cgroupfs-shaped v1 line names the same pod and container.
		want := "/kubepods/besteffort/pod" + uid + "/" + cid
		found := false
		for _, c := range list(suspect["cgroups"]) {
			cm := c.(map[string]any)
			found = found || (fmt.Sprint(cm["controllers"]) == "[pids]" && cm["path"] == want)
		}
		if !found {
			t.Errorf("no pids line %s in %v", want, suspect["cgroups"])
		}
	}
	podNS := uint64(num(suspect["namespaces"].(map[string]any)["net"]))

	socks := collect(t, "sockets", "--pod-uid", strings.ToUpper(strings.ReplaceAll(uid, "-", "_")))
	nss := list(socks["network_namespaces"])
	if len(nss) != 1 {
		t.Fatalf("%d network namespaces, want the pod's only: %v", len(nss), nss)
	}
	ns := nss[0].(map[string]any)
	// unshare itself entered the new network namespace before forking
	// the helper, so it is the one other member.
	var members []int
	for _, m := range list(ns["pids"]) {
		members = append(members, num(m))
	}
	if uint64(num(ns["inode"])) != podNS || !slices.Contains(members, pid) || len(members) > 2 ||
		(len(members) == 2 && !slices.Contains(members, cmd.Process.Pid)) {
		t.Errorf("namespace inode %d pids %v; want %d, [%d] or [%d %d]", uint64(num(ns["inode"])), members, podNS, cmd.Process.Pid, pid, pid)
	}
	want := map[string]bool{
		"127.0.0.1:" + port + " - LISTEN":                       false,
		"127.0.0.1:" + port + " " + clientAddr + " ESTABLISHED": false,
		clientAddr + " 127.0.0.1:" + port + " ESTABLISHED":      false,
	}
	for _, s := range list(ns["sockets"]) {
		sm := s.(map[string]any)
		if hostInodes[uint64(num(sm["inode"]))] {
			t.Errorf("host socket %v listed under the pod's namespace", sm)
		}
		if sm["proto"] != "tcp" {
			continue
		}
		remote := sm["remote"].(string)
		if remote == "0.0.0.0:0" {
			remote = "-"
		}
		key := fmt.Sprintf("%s %s %s", sm["local"], remote, sm["state"])
		if _, ok := want[key]; !ok {
			t.Errorf("unexpected socket %s", key)
			continue
		}
		owners := list(sm["owners"])
		if len(owners) != 1 || num(owners[0].(map[string]any)["pid"]) != pid {
			t.Errorf("socket %s owners %v, want pid %d", key, owners, pid)
		}
		want[key] = true
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("socket %s missing from the pod's namespace", k)
		}
	}

	// The node's view holds the host connection and not the pod's.
	node := collect(t, "sockets", "--node")
	for _, n := range list(node["network_namespaces"]) {
		nm := n.(map[string]any)
		if uint64(num(nm["inode"])) == podNS {
			t.Errorf("--node reported the pod's namespace")
		}
		found := false
		for _, s := range list(nm["sockets"]) {
			found = found || hostInodes[uint64(num(s.(map[string]any)["inode"]))]
		}
		if !found {
			t.Errorf("--node: host sockets %v not found", hostInodes)
		}
	}

	// Every other artefact, for the schema.
	for _, a := range [][]string{{"files", "--pod-uid", uid}, {"maps", "--pod-uid", uid}, {"mounts", "--pod-uid", uid},
		{"environ", "--pod-uid", uid}, {"modules"}, {"routes"}, {"neighbours"}, {"version"}} {
		doc := collect(t, a...)
		if doc["artefact"] != a[0] {
			t.Errorf("%s: artefact %v", a[0], doc["artefact"])
		}
	}
	files := collect(t, "files", "--pod-uid", uid)
	if ps := list(files["processes"]); len(ps) != 1 || num(ps[0].(map[string]any)["pid"]) != pid {
		t.Errorf("files: processes %v", ps)
	}
}

// socketInodes returns the socket inodes pid holds open.
func socketInodes(t *testing.T, pid int) map[uint64]bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bool{}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(target, "socket:["); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
			out[n] = true
		}
	}
	if len(out) == 0 {
		t.Fatal("no sockets held by the test")
	}
	return out
}

func readLine(r io.Reader, timeout time.Duration) (string, error) {
	ch := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil && line == "" {
			errc <- err
			return
		}
		ch <- strings.TrimSpace(line)
	}()
	select {
	case l := <-ch:
		return l, nil
	case err := <-errc:
		return "", err
	case <-time.After(timeout):
		return "", errors.New("timed out waiting for the helper")
	}
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}
