package procfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// hexWords renders an address the way /proc/net/tcp does: 32-bit words,
// each printed as a number read in the host's byte order. It is written
// independently of ParseHexAddr so that the two can check each other.
func hexWords(a netip.Addr) string {
	b := a.AsSlice()
	var s strings.Builder
	for i := 0; i < len(b); i += 4 {
		fmt.Fprintf(&s, "%08X", binary.NativeEndian.Uint32(b[i:i+4]))
	}
	return s.String()
}

func TestHexWordsKnownLittleEndian(t *testing.T) {
	// Values captured from an x86-64 kernel, to anchor hexWords itself.
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("big-endian host")
	}
	known := map[string]string{
		"127.0.0.1":      "0100007F",
		"10.0.12.34":     "220C000A",
		"::1":            "00000000000000000000000001000000",
		"fe80::1":        "000080FE000000000000000001000000",
		"::ffff:1.2.3.4": "0000000000000000FFFF000004030201",
		"2001:db8::a:b":  "B80D012000000000000000000B000A00",
	}
	for addr, want := range known {
		a := netip.MustParseAddr(addr)
		if got := hexWords(a); got != want {
			t.Errorf("hexWords(%s) = %s, want %s", addr, got, want)
		}
		if got, err := ParseHexAddr(want); err != nil || got != a {
			t.Errorf("ParseHexAddr(%s) = %v, %v; want %v", want, got, err, a)
		}
	}
}

func TestParseNetIP(t *testing.T) {
	tcp6Local := netip.MustParseAddrPort("[2001:db8::5]:443")
	tcp6Remote := netip.MustParseAddrPort("[fe80::1:2]:51000")
	in := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 24571 1 0000000000000000 100 0 0 10 0\n" +
		"   1: 0100007F:1F90 0100007F:D2F0 01 0000000A:00000002 00:00000000 00000000  1000        0 24680 1 0000000000000000 20 4 30 10 -1\n" +
		fmt.Sprintf("   2: %s:%04X %s:%04X 06 00000000:00000000 03:00000A1C 00000000     0        0 0 3 0000000000000000\n",
			hexWords(tcp6Local.Addr()), tcp6Local.Port(), hexWords(tcp6Remote.Addr()), tcp6Remote.Port()) +
		"   3: 0100007F:XYZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n" +
		"   4: short\n"
	got, err := ParseNetIP(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 2 {
		t.Fatalf("err = %v, want 2 malformed lines", err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d sockets: %+v", len(got), got)
	}
	want := []IPSocket{
		{0, netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("0.0.0.0:0"), 10, 0, 0, 0, 24571},
		{1, netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("127.0.0.1:54000"), 1, 10, 2, 1000, 24680},
		{2, tcp6Local, tcp6Remote, 6, 0, 0, 0, 0},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("socket %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if TCPStateName(got[0].State) != "LISTEN" || TCPStateName(1) != "ESTABLISHED" || TCPStateName(6) != "TIME_WAIT" || TCPStateName(99) != "UNKNOWN_99" {
		t.Error("TCPStateName")
	}
}

func TestParseHexAddrErrors(t *testing.T) {
	for _, s := range []string{"", "0100007", "0100007G", "0100007F0", strings.Repeat("Z", 32)} {
		if _, err := ParseHexAddr(s); err == nil {
			t.Errorf("ParseHexAddr(%q): want error", s)
		}
	}
	for _, s := range []string{"0100007F", "0100007F:", "0100007F:10000"} {
		if _, err := ParseHexAddrPort(s); err == nil {
			t.Errorf("ParseHexAddrPort(%q): want error", s)
		}
	}
}

func TestParseNetUnix(t *testing.T) {
	in := "Num       RefCount Protocol Flags    Type St Inode Path\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 17811 /run/containerd/containerd.sock\n" +
		"0000000000000000: 00000003 00000000 00000000 0001 03 20001\n" +
		"0000000000000000: 00000002 00000000 00000000 0002 01 20002 @abstract name\n" +
		"0000000000000000: 00000002 00000000 00000000 0005 01 20003 /tmp/a b  c\n" +
		"0000000000000000 00000002 00000000 00000000 0005 01 20004 /tmp/no-colon\n" +
		"0000000000000000: 00000002 00000000 00000000 0005 01 2000x /tmp/bad-inode\n"
	got, err := ParseNetUnix(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 2 {
		t.Fatalf("err = %v, want 2 malformed lines", err)
	}
	want := []UnixSocket{
		{2, 0x10000, 1, 1, 17811, "/run/containerd/containerd.sock"},
		{3, 0, 1, 3, 20001, ""},
		{2, 0, 2, 1, 20002, "@abstract name"},
		{2, 0, 5, 1, 20003, "/tmp/a b  c"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("unix %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if UnixStateName(got[0]) != "LISTEN" || UnixStateName(got[1]) != "CONNECTED" || UnixTypeName(got[2].Type) != "DGRAM" || UnixTypeName(got[3].Type) != "SEQPACKET" {
		t.Error("unix names")
	}
}
