package procfs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const (
	testUID = "0c4f2a6e-9d1b-4c8e-a3f7-5b2e1d9c8a70"
	testCID = "3f1a9c0e5b7d2f4a6c8e0b1d3f5a7c9e1b3d5f7a9c0e2b4d6f8a0c2e4b6d8f0a"
)

func TestParseCgroup(t *testing.T) {
	in := "12:pids:/kubepods/besteffort/pod" + testUID + "/" + testCID + "\n" +
		"1:name=systemd:/a:b:c\n" +
		"3:cpu,cpuacct:/\n" +
		"0::/kubepods.slice/x.scope\n" +
		"garbage\n" +
		"x:cpu:/\n"
	got, err := ParseCgroup(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 2 || le.Errors[0].Line != 5 || le.Errors[1].Line != 6 {
		t.Fatalf("err = %v, want two malformed lines (5, 6)", err)
	}
	want := []CgroupLine{
		{12, []string{"pids"}, "/kubepods/besteffort/pod" + testUID + "/" + testCID},
		{1, []string{"name=systemd"}, "/a:b:c"},
		{3, []string{"cpu", "cpuacct"}, "/"},
		{0, []string{}, "/kubepods.slice/x.scope"},
	}
	if !slices.EqualFunc(got, want, func(a, b CgroupLine) bool {
		return a.HierarchyID == b.HierarchyID && a.Path == b.Path && slices.Equal(a.Controllers, b.Controllers)
	}) {
		t.Errorf("ParseCgroup = %+v\nwant %+v", got, want)
	}
}

func TestParseCgroupPath(t *testing.T) {
	u := strings.ReplaceAll(testUID, "-", "_")
	static := "7b0c2e6f4a8d1c3e5f7a9b0d2c4e6f8a" // the kubelet's hash UID of a static pod
	tests := []struct {
		name string
		path string
		want ContainerRef
		ok   bool
	}{
		{"cgroupfs burstable", "/kubepods/burstable/pod" + testUID + "/" + testCID,
			ContainerRef{PodUID: testUID, ContainerID: testCID}, true},
		{"cgroupfs besteffort", "/kubepods/besteffort/pod" + testUID + "/" + testCID,
			ContainerRef{PodUID: testUID, ContainerID: testCID}, true},
		{"cgroupfs guaranteed", "/kubepods/pod" + testUID + "/" + testCID,
			ContainerRef{PodUID: testUID, ContainerID: testCID}, true},
		{"cgroupfs pod level (sandbox)", "/kubepods/burstable/pod" + testUID,
			ContainerRef{PodUID: testUID}, true},
		{"cgroupfs crio", "/kubepods/pod" + testUID + "/crio-" + testCID,
			ContainerRef{PodUID: testUID, ContainerID: testCID, Runtime: "crio"}, true},
		{"systemd burstable containerd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u + ".slice/cri-containerd-" + testCID + ".scope",
			ContainerRef{PodUID: testUID, QoS: "burstable", ContainerID: testCID, Runtime: "cri-containerd"}, true},
		{"systemd besteffort docker", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + u + ".slice/docker-" + testCID + ".scope",
			ContainerRef{PodUID: testUID, QoS: "besteffort", ContainerID: testCID, Runtime: "docker"}, true},
		{"systemd guaranteed crio", "/kubepods.slice/kubepods-pod" + u + ".slice/crio-" + testCID + ".scope",
			ContainerRef{PodUID: testUID, QoS: "guaranteed", ContainerID: testCID, Runtime: "crio"}, true},
		{"systemd crio conmon", "/kubepods.slice/kubepods-pod" + u + ".slice/crio-conmon-" + testCID + ".scope",
			ContainerRef{PodUID: testUID, QoS: "guaranteed", ContainerID: testCID, Runtime: "crio-conmon"}, true},
		{"systemd pod level", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u + ".slice",
			ContainerRef{PodUID: testUID, QoS: "burstable"}, true},
		{"systemd sub-cgroup of container", "/kubepods.slice/kubepods-pod" + u + ".slice/cri-containerd-" + testCID + ".scope/init",
			ContainerRef{PodUID: testUID, QoS: "guaranteed", ContainerID: testCID, Runtime: "cri-containerd"}, true},
		{"kind prefix", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + u + ".slice/cri-containerd-" + testCID + ".scope",
			ContainerRef{PodUID: testUID, QoS: "besteffort", ContainerID: testCID, Runtime: "cri-containerd"}, true},
		{"cgroup namespace prefix", "/../../kubepods/besteffort/pod" + testUID + "/" + testCID,
			ContainerRef{PodUID: testUID, ContainerID: testCID}, true},
		{"static pod uid", "/kubepods/burstable/pod" + static + "/" + testCID,
			ContainerRef{PodUID: static, ContainerID: testCID}, true},
		{"upper case uid", "/kubepods/pod" + strings.ToUpper(testUID) + "/" + testCID,
			ContainerRef{PodUID: testUID, ContainerID: testCID}, true},
		{"docker cgroupfs", "/docker/" + testCID, ContainerRef{ContainerID: testCID}, true},
		{"docker systemd", "/system.slice/docker-" + testCID + ".scope", ContainerRef{ContainerID: testCID, Runtime: "docker"}, true},
		{"root", "/", ContainerRef{}, false},
		{"user session", "/user.slice/user-1000.slice/session-3.scope", ContainerRef{}, false},
		{"hex scope that is no runtime", "/system.slice/foo-" + testCID + ".scope", ContainerRef{}, false},
		{"pod without kubepods", "/pod" + testUID + "/" + testCID, ContainerRef{}, false},
		{"kubepods qos only", "/kubepods/burstable", ContainerRef{}, false},
		{"bad uid", "/kubepods/podnot-a-uid/" + testCID, ContainerRef{}, false},
		{"non-hex container", "/kubepods/pod" + testUID + "/zzzz", ContainerRef{PodUID: testUID}, true},
		{"empty", "", ContainerRef{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseCgroupPath(tc.path)
			if ok != tc.ok || got != tc.want {
				t.Errorf("ParseCgroupPath(%q) = %+v, %v; want %+v, %v", tc.path, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestContainerOfPrefersUnified(t *testing.T) {
	other := strings.Repeat("ab", 32)
	lines := []CgroupLine{
		{HierarchyID: 4, Controllers: []string{"memory"}, Path: "/kubepods/pod" + testUID + "/" + other},
		{HierarchyID: 0, Controllers: []string{}, Path: "/kubepods/pod" + testUID + "/" + testCID},
	}
	if ref, ok := ContainerOf(lines); !ok || ref.ContainerID != testCID {
		t.Errorf("ContainerOf = %+v, %v; want the unified line's container", ref, ok)
	}
	if ref, ok := ContainerOf(lines[:1]); !ok || ref.ContainerID != other {
		t.Errorf("ContainerOf(v1 only) = %+v, %v", ref, ok)
	}
	if _, ok := ContainerOf([]CgroupLine{{Path: "/"}}); ok {
		t.Error("ContainerOf(root) ok")
	}
}

func TestNormalizePodUID(t *testing.T) {
	if got := NormalizePodUID(" 0C4F2A6E_9D1B_4c8e-a3f7-5b2e1d9c8a70 "); got != testUID {
		t.Errorf("NormalizePodUID = %q", got)
	}
}
