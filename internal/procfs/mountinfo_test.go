package procfs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	in := `22 27 0:21 / /proc rw,relatime - proc proc rw
36 35 98:0 /mnt1 /mnt/with\040space\012and\134nl rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue
40 36 0:50 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw,relatime - overlay overlay rw,lowerdir=/a:/b
41 36 0:51 / /x rw - tmpfs
bogus line
42 36 0:52 / /y rw shared:1 - tmpfs tmpfs
`
	got, err := ParseMountinfo(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 2 {
		t.Fatalf("err = %v, want 2 malformed lines", err)
	}
	if len(got) != 4 {
		t.Fatalf("got %d mounts, want 4: %+v", len(got), got)
	}
	m := got[1]
	if m.ID != 36 || m.ParentID != 35 || m.Major != 98 || m.Minor != 0 || m.Root != "/mnt1" ||
		m.MountPoint != "/mnt/with space\nand\\nl" || m.Options != "rw,noatime" ||
		!slices.Equal(m.Optional, []string{"master:1", "shared:7"}) || m.FSType != "ext3" ||
		m.Source != "/dev/root" || m.SuperOptions != "rw,errors=continue" {
		t.Errorf("mount = %+v", m)
	}
	if got[0].MountPoint != "/proc" || len(got[0].Optional) != 0 || got[3].SuperOptions != "" || got[3].FSType != "tmpfs" {
		t.Errorf("mounts = %+v", got)
	}
}

func TestOctalEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\040b`, "a b"},
		{`\011\012\134`, "\t\n\\"},
		{`trailing\04`, `trailing\04`},
		{`\999`, `\999`},
		{`\777`, `\777`},
		{`\`, `\`},
	}
	for _, tc := range tests {
		if got := UnescapeOctal(tc.in); got != tc.want {
			t.Errorf("UnescapeOctal(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, s := range []string{"a b", "x\ny\tz\\", "/ok/path", ""} {
		if got := UnescapeOctal(EscapeOctal(s)); got != s {
			t.Errorf("round trip of %q = %q", s, got)
		}
	}
}

func TestParseMaps(t *testing.T) {
	in := "55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1049213                    /usr/bin/sleep\n" +
		"7f1c2e000000-7f1c2e021000 rw-p 00000000 00:00 0 \n" +
		"7ffd5a1f0000-7ffd5a211000 rw-p 00000000 00:00 0                          [stack]\n" +
		"7f00-7f10 r-xp 0000a000 103:02 42   /tmp/evil name (deleted)\n" +
		"7f10-7f20 r-xp 00000000 00:1f 43   /tmp/two\\012lines\n" +
		"7f00-7f10 r-xp zz 103:02 42 /x\n" +
		"nonsense\n"
	got, err := ParseMaps(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 2 {
		t.Fatalf("err = %v, want 2 malformed lines", err)
	}
	want := []Mapping{
		{0x55d0c0a00000, 0x55d0c0a02000, "r--p", 0, 0xfd, 1, 1049213, "/usr/bin/sleep"},
		{0x7f1c2e000000, 0x7f1c2e021000, "rw-p", 0, 0, 0, 0, ""},
		{0x7ffd5a1f0000, 0x7ffd5a211000, "rw-p", 0, 0, 0, 0, "[stack]"},
		{0x7f00, 0x7f10, "r-xp", 0xa000, 0x103, 2, 42, "/tmp/evil name (deleted)"},
		{0x7f10, 0x7f20, "r-xp", 0, 0, 0x1f, 43, "/tmp/two\nlines"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParseMaps =\n%+v\nwant\n%+v", got, want)
	}
}
