package procfs

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// CgroupLine is one line of /proc/PID/cgroup: "N:controllers:/path" for a
// v1 hierarchy, "0::/path" for the v2 unified hierarchy.
type CgroupLine struct {
	HierarchyID int
	Controllers []string // empty for v2; may hold "name=systemd"
	Path        string
}

// ParseCgroup parses /proc/PID/cgroup. The path is everything after the
// second ':' since a cgroup name may itself contain ':'.
func ParseCgroup(r io.Reader) ([]CgroupLine, error) {
	out := []CgroupLine{}
	err := forEachLine(r, 0, func(line string) error {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			return errors.New("no ':'")
		}
		ctrl, path, ok := strings.Cut(rest, ":")
		if !ok {
			return errors.New("one ':', want two")
		}
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 {
			return fmt.Errorf("hierarchy id %q", id)
		}
		l := CgroupLine{HierarchyID: n, Controllers: []string{}, Path: path}
		if ctrl != "" {
			l.Controllers = strings.Split(ctrl, ",")
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// ContainerRef is what a cgroup path says about the Kubernetes pod and the
// container a process runs in.
type ContainerRef struct {
	// PodUID is the pod's metadata.uid in its canonical form (lower case,
	// dashes), empty when the path is not under a kubepods hierarchy.
	PodUID string
	// QoS is "guaranteed", "burstable" or "besteffort" for a pod.
	QoS string
	// ContainerID is the runtime's container ID (64 hex digits for
	// containerd, CRI-O and Docker), empty for a process in the pod-level
	// cgroup itself.
	ContainerID string
	// Runtime is the prefix of a systemd scope ("cri-containerd", "crio",
	// "crio-conmon", "docker"), empty for the cgroupfs driver, which does
	// not name the runtime.
	Runtime string
}

// NormalizePodUID returns uid in the form Kubernetes prints it: the systemd
// cgroup driver writes a pod UID with '_' for '-' because '-' separates the
// levels of a slice name.
func NormalizePodUID(uid string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(uid), "_", "-"))
}

// ParseCgroupPath finds the pod UID and the container ID in a cgroup path
// written by the kubelet and its container runtime. It recognises
//
//	cgroupfs driver: /kubepods[/burstable|/besteffort]/pod<uid>[/<id>]
//	systemd driver:  /kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<uid_>.slice[/<runtime>-<id>.scope]
//
// with any prefix before the kubepods level (kind's /kubelet.slice/kubelet-kubepods.slice,
// a cgroup namespace's "/.."), and plain Docker containers (/docker/<id>,
// /system.slice/docker-<id>.scope), which have a container ID but no pod.
// Levels below the container (a container that made its own sub-cgroups)
// are ignored. ok is false when the path names neither a pod nor a container.
func ParseCgroupPath(path string) (ref ContainerRef, ok bool) {
	parts := strings.Split(path, "/")
	inKubepods := false
	podAt := -1
	for i, p := range parts {
		if strings.Contains(p, "kubepods") {
			inKubepods = true
		}
		if !inKubepods {
			continue
		}
		if uid, qos, found := podLevel(p); found {
			ref.PodUID, ref.QoS, podAt = uid, qos, i
			break
		}
	}
	if podAt >= 0 {
		if podAt+1 < len(parts) {
			ref.ContainerID, ref.Runtime = containerLevel(parts[podAt+1])
		}
		return ref, true
	}
	// Docker outside Kubernetes: the ID is the level right under "docker"
	// (cgroupfs) or a docker-<id>.scope (systemd).
	for i, p := range parts {
		if id, rt := containerLevel(p); id != "" && (knownRuntime[rt] || (rt == "" && i > 0 && parts[i-1] == "docker")) {
			ref.ContainerID, ref.Runtime = id, rt
			return ref, true
		}
	}
	return ContainerRef{}, false
}

// knownRuntime lists the scope prefixes that name a container runtime, so
// that an unrelated systemd scope ending in hex digits is not taken for one.
var knownRuntime = map[string]bool{"cri-containerd": true, "crio": true, "crio-conmon": true, "docker": true, "libpod": true}

// podLevel recognises "pod<uid>" (cgroupfs) and "kubepods[-qos]-pod<uid_>.slice" (systemd).
func podLevel(p string) (uid, qos string, ok bool) {
	if name, isSlice := strings.CutSuffix(p, ".slice"); isSlice {
		i := strings.LastIndex(name, "-pod")
		if i < 0 || !strings.Contains(name[:i], "kubepods") {
			return "", "", false
		}
		uid = name[i+len("-pod"):]
		qos = "guaranteed"
		switch {
		case strings.HasSuffix(name[:i], "-burstable"):
			qos = "burstable"
		case strings.HasSuffix(name[:i], "-besteffort"):
			qos = "besteffort"
		}
		if !validPodUID(uid) {
			return "", "", false
		}
		return NormalizePodUID(uid), qos, true
	}
	uid, found := strings.CutPrefix(p, "pod")
	if !found || !validPodUID(uid) {
		return "", "", false
	}
	return NormalizePodUID(uid), "", true
}

// validPodUID accepts a UUID (API pods, with '-' or '_') and the 32 hex digit
// hash the kubelet uses as the UID of a static pod.
func validPodUID(s string) bool {
	if len(s) < 32 || len(s) > 36 {
		return false
	}
	for _, c := range s {
		if !isHex(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// containerLevel recognises "<hexid>" (cgroupfs), "crio-<hexid>" (CRI-O with
// cgroupfs) and "<runtime>-<hexid>.scope" (systemd).
func containerLevel(p string) (id, runtime string) {
	name, scope := strings.CutSuffix(p, ".scope")
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		runtime, name = name[:i], name[i+1:]
		if runtime == "" {
			return "", ""
		}
	} else if scope {
		return "", ""
	}
	if len(name) < 12 || len(name) > 128 {
		return "", ""
	}
	for _, c := range name {
		if !isHex(c) {
			return "", ""
		}
	}
	return strings.ToLower(name), runtime
}

func isHex(c rune) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// ContainerOf returns the first pod/container reference found in a
// process's cgroup lines, preferring the v2 unified line, which every
// runtime uses on a cgroup v2 node, then the v1 lines in file order.
func ContainerOf(lines []CgroupLine) (ContainerRef, bool) {
	for _, l := range lines {
		if l.HierarchyID == 0 && len(l.Controllers) == 0 {
			if ref, ok := ParseCgroupPath(l.Path); ok {
				return ref, true
			}
		}
	}
	for _, l := range lines {
		if ref, ok := ParseCgroupPath(l.Path); ok {
			return ref, true
		}
	}
	return ContainerRef{}, false
}
