package nodecollect

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// benchProcesses is the size of the node the benchmark simulates.
const benchProcesses = 2000

// The shell scripts that the collector's processes (exe hashes) and
// environ artefacts replace, as eksir ran them in the collector pod.
const (
	exeHashScript = `seen=' '
for p in /proc/[0-9]*; do
  e=$(readlink "$p/exe" 2>/dev/null) || continue
  case "$seen" in *" $e "*) printf '%s - %s\n' "${p#/proc/}" "$e"; continue;; esac
  seen="$seen$e "
  h=$(sha256sum < "$p/exe" 2>/dev/null) || h='unreadable'
  printf '%s %s %s\n' "${p#/proc/}" "${h%% *}" "$e"
done`
	environScript = `for p in /proc/[0-9]*; do
  [ -r "$p/environ" ] || continue
  printf '# pid %s\n' "${p#/proc/}"
  tr '\n\0' '\001\n' < "$p/environ" | sed 's/=.*/=<redacted>/'
done`
)

// BenchmarkVolatileCapture compares one pod's volatile capture by the
// collector binary with the shell tools it replaces, on a node grown to
// benchProcesses processes (background sleeps, five of them in a
// pod-shaped cgroup). It needs root for the cgroup.
func BenchmarkVolatileCapture(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create the pod cgroup")
	}
	bin := filepath.Join(b.TempDir(), "eksir-collector")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "../../cmd/eksir-collector")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	uid := benchUUID(b)
	podDir := benchPodCgroup(b, uid)

	var sleeps []*exec.Cmd
	b.Cleanup(func() {
		for _, c := range sleeps {
			c.Process.Kill()
			c.Wait()
		}
	})
	start := func() *exec.Cmd {
		c := exec.Command("sleep", "3600")
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			b.Fatalf("start sleep %d: %v", len(sleeps), err)
		}
		sleeps = append(sleeps, c)
		return c
	}
	for range 5 {
		c := start()
		if err := os.WriteFile(filepath.Join(podDir, "cgroup.procs"), []byte(strconv.Itoa(c.Process.Pid)), 0); err != nil {
			b.Fatalf("move into pod cgroup: %v", err)
		}
	}
	for n := countProcs(b); n < benchProcesses; n++ {
		start()
	}
	b.Logf("node has %d processes, %d of them background sleeps, 5 in pod %s", countProcs(b), len(sleeps), uid)

	collector := [][]string{
		{"processes", "--pod-uid", uid}, {"sockets", "--pod-uid", uid}, {"files", "--pod-uid", uid},
		{"maps", "--pod-uid", uid}, {"mounts", "--pod-uid", uid}, {"environ", "--pod-uid", uid},
		{"modules"}, {"routes"}, {"neighbours"},
	}
	shell := [][]string{
		{"ps", "auxwww"}, {"ss", "-tanupe"}, {"cat", "/proc/1/mountinfo"},
		{"sh", "-c", exeHashScript}, {"sh", "-c", environScript},
	}
	for _, tool := range []string{"ps", "ss", "cat", "sh", "sha256sum", "tr", "sed", "readlink"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("shell-tools baseline needs %s", tool)
		}
	}
	b.Run("collector", func(b *testing.B) {
		runAll(b, func(args []string) *exec.Cmd { return exec.Command(bin, args...) }, collector)
	})
	b.Run("shell-tools", func(b *testing.B) {
		runAll(b, func(args []string) *exec.Cmd { return exec.Command(args[0], args[1:]...) }, shell)
	})
}

// runAll runs every command once per iteration and reports the output
// size, which is what eksir hashes and stores.
func runAll(b *testing.B, mk func([]string) *exec.Cmd, cmds [][]string) {
	var total int64
	for b.Loop() {
		total = 0
		for _, args := range cmds {
			c := mk(args)
			var out bytes.Buffer
			c.Stdout, c.Stderr = &out, io.Discard
			// The shell tools exit non-zero for an unreadable file
			// (/proc/1/mountinfo here) yet still produce output.
			if err := c.Run(); err != nil {
				if _, ok := err.(*exec.ExitError); !ok {
					b.Fatalf("%s: %v", strings.Join(args, " "), err)
				}
			}
			total += int64(out.Len())
		}
	}
	b.ReportMetric(float64(total), "out-bytes/op")
	b.ReportMetric(float64(len(cmds)), "runs/op")
}

func countProcs(b *testing.B) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	return n
}

func benchUUID(b *testing.B) string {
	r := make([]byte, 16)
	if _, err := rand.Read(r); err != nil {
		b.Fatal(err)
	}
	h := hex.EncodeToString(r)
	return fmt.Sprintf("%s-%s-4%s-8%s-%s", h[:8], h[8:12], h[13:16], h[17:20], h[20:])
}

// benchPodCgroup creates the systemd-driver cgroup of one container of the
// pod in the unified hierarchy, and removes the levels it created at
// cleanup (processes go back to the root first).
func benchPodCgroup(b *testing.B, uid string) string {
	const root = "/sys/fs/cgroup/unified"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		b.Skipf("no cgroup2 hierarchy at %s", root)
	}
	cid := strings.Repeat(strings.ReplaceAll(uid, "-", "")[:16], 4)
	rel := []string{"kubepods.slice", "kubepods-besteffort.slice",
		"kubepods-besteffort-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice", "cri-containerd-" + cid + ".scope"}
	p := root
	var created []string
	for _, r := range rel {
		p = filepath.Join(p, r)
		if err := os.Mkdir(p, 0o755); err == nil {
			created = append(created, p)
		} else if !os.IsExist(err) {
			b.Skipf("create cgroup: %v", err)
		}
	}
	b.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			if data, err := os.ReadFile(filepath.Join(created[i], "cgroup.procs")); err == nil {
				for pid := range strings.FieldsSeq(string(data)) {
					os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(pid), 0)
				}
			}
			os.Remove(created[i])
		}
	})
	return p
}
