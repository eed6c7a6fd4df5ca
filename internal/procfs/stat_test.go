package procfs

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// statLine renders a /proc/PID/stat line the way the kernel does, with the
// given comm and the fields this package reads set from pid.
func statLine(pid int, comm, state string, ppid int, start uint64) string {
	rest := []string{state, fmt.Sprint(ppid), "7", "7", "0", "-1", "4194560", "100", "0", "0", "0",
		"12", "34", "0", "0", "20", "0", "3", "0", fmt.Sprint(start), "1048576", "256"}
	rest = append(rest, strings.Fields("18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")...)
	return fmt.Sprintf("%d (%s) %s\n", pid, comm, strings.Join(rest, " "))
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, comm string
		wantErr    bool
		input      string
	}{
		{name: "plain", comm: "sleep"},
		{name: "spaces", comm: "my proc 1"},
		{name: "closing paren and fake fields", comm: "a) R 1 2 3 (b"},
		{name: "newline", comm: "x\ny) S 9"},
		{name: "empty comm", comm: ""},
		{name: "no paren", wantErr: true, input: "12 sleep S 1"},
		{name: "truncated", wantErr: true, input: "12 (sleep) S 1 2"},
		{name: "bad pid", wantErr: true, input: "x (sleep) " + strings.Repeat("1 ", 30)},
		{name: "bad number", wantErr: true, input: strings.Replace(statLine(5, "c", "S", 1, 9), " 3 0 9 ", " 3 0 nine ", 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.input
			if in == "" {
				in = statLine(4242, tc.comm, "S", 17, 987654)
			}
			s, err := ParseStat([]byte(in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseStat(%q) = %+v, want error", in, s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.PID != 4242 || s.Comm != tc.comm || s.State != "S" || s.PPID != 17 || s.StartTime != 987654 ||
				s.NumThreads != 3 || s.UTime != 12 || s.STime != 34 || s.Flags != 4194560 || s.VSize != 1048576 || s.RSS != 256 {
				t.Errorf("ParseStat = %+v", s)
			}
		})
	}
}

func TestParseBootTime(t *testing.T) {
	got, err := ParseBootTime([]byte("cpu  1 2 3\nintr 5\nbtime 1764490000\nprocesses 9\n"))
	if err != nil || got != 1764490000 {
		t.Errorf("ParseBootTime = %d, %v", got, err)
	}
	if _, err := ParseBootTime([]byte("cpu 1\n")); err == nil {
		t.Error("no btime: want error")
	}
}

func TestStateName(t *testing.T) {
	for in, want := range map[string]string{"R": "running", "Z": "zombie", "I": "idle", "?": "unknown"} {
		if got := StateName(in); got != want {
			t.Errorf("StateName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	in := "Name:\tevil\\nname\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t300\nNgid:\t0\nPid:\t300\nPPid:\t12\n" +
		"Uid:\t1000\t0\t0\t0\nGid:\t5\t6\t7\t8\nNSpid:\t300\t1\nThreads:\t4\nKthread:\t0\n"
	s, err := ParseStatus([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != `evil\nname` || s.Tgid != 300 || s.PPid != 12 || s.UID != [4]uint32{1000, 0, 0, 0} ||
		s.GID != [4]uint32{5, 6, 7, 8} || !slices.Equal(s.NSpid, []int{300, 1}) || s.Threads != 4 || s.Kthread != "0" {
		t.Errorf("ParseStatus = %+v", s)
	}
	for _, bad := range []string{"Uid:\t1 2 3\n", "PPid:\tx\n", "NSpid:\t1 y\n", "Gid:\t1 2 3 99999999999\n"} {
		if _, err := ParseStatus([]byte(bad)); err == nil {
			t.Errorf("ParseStatus(%q): want error", bad)
		}
	}
}

func TestParseCmdlineAndEnviron(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{}},
		{"sleep\x00100\x00", []string{"sleep", "100"}},
		{"nginx: worker process", []string{"nginx: worker process"}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}},
		{"x\ny\x00--k=v w\x00", []string{"x\ny", "--k=v w"}},
	}
	for _, tc := range tests {
		if got := ParseCmdline([]byte(tc.in)); !slices.Equal(got, tc.want) {
			t.Errorf("ParseCmdline(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	env := "PATH=/bin\x00AWS_SECRET_ACCESS_KEY=abc=def\x00NOVALUE\x00\x00=x\x00"
	want := []string{"PATH", "AWS_SECRET_ACCESS_KEY", "NOVALUE", ""}
	if got := ParseEnvironNames([]byte(env)); !slices.Equal(got, want) {
		t.Errorf("ParseEnvironNames = %q, want %q", got, want)
	}
}

func TestParseLinks(t *testing.T) {
	tests := []struct {
		in       string
		typ      string
		ino      uint64
		ok       bool
		isSocket bool
	}{
		{"net:[4026531840]", "net", 4026531840, true, false},
		{"socket:[12345]", "socket", 12345, true, true},
		{"pipe:[77]", "pipe", 77, true, false},
		{"/var/log/x", "", 0, false, false},
		{"socket:[x]", "", 0, false, false},
		{"socket:[", "", 0, false, false},
		{"[1]", "", 0, false, false},
		{"", "", 0, false, false},
	}
	for _, tc := range tests {
		typ, ino, ok := ParseNSLink(tc.in)
		if typ != tc.typ || ino != tc.ino || ok != tc.ok {
			t.Errorf("ParseNSLink(%q) = %q, %d, %v", tc.in, typ, ino, ok)
		}
		sino, sok := ParseSocketLink(tc.in)
		if sok != tc.isSocket || (sok && sino != tc.ino) {
			t.Errorf("ParseSocketLink(%q) = %d, %v", tc.in, sino, sok)
		}
	}
}
