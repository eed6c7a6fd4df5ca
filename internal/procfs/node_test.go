package procfs

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseModules(t *testing.T) {
	in := "nf_tables 249856 3 nft_chain_nat,nft_compat, Live 0xffffffffc0a00000\n" +
		"rootkit 16384 0 - Live 0x0000000000000000 (OE)\n" +
		"loading 100 1 - Loading 0x0\n" +
		"short 1 2\n" +
		"bad x 0 - Live 0x0\n"
	got, err := ParseModules(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 2 {
		t.Fatalf("err = %v, want 2 malformed lines", err)
	}
	if len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	if m := got[0]; m.Name != "nf_tables" || m.Size != 249856 || m.Instances != 3 ||
		!slices.Equal(m.Deps, []string{"nft_chain_nat", "nft_compat"}) || m.State != "Live" || m.Address != "0xffffffffc0a00000" || m.Taints != "" {
		t.Errorf("module 0 = %+v", m)
	}
	if m := got[1]; m.Taints != "OE" || len(m.Deps) != 0 {
		t.Errorf("module 1 = %+v", m)
	}
	if got[2].State != "Loading" {
		t.Errorf("module 2 = %+v", got[2])
	}
}

func TestParseRoute(t *testing.T) {
	in := "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
		"eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n" +
		"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t9001\t0\t0\n" +
		"eni1\t0A0B0C0D\t00000000\t0005\t0\t0\t0\t0F0FFFFF\t0\t0\t0\n" +
		"eth0\tXX\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	got, err := ParseRoute(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 1 {
		t.Fatalf("err = %v, want 1 malformed line", err)
	}
	if len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	little := hexWords(netip.MustParseAddr("192.0.2.1")) == "010200C0"
	if little {
		if got[0].Gateway != netip.MustParseAddr("192.0.2.1") || got[0].Destination != netip.IPv4Unspecified() || got[0].PrefixLen() != 0 {
			t.Errorf("default route = %+v", got[0])
		}
		if got[1].Destination != netip.MustParseAddr("192.0.2.0") || got[1].PrefixLen() != 24 || got[1].MTU != 9001 {
			t.Errorf("connected route = %+v, prefix %d", got[1], got[1].PrefixLen())
		}
		if got[2].PrefixLen() != -1 {
			t.Errorf("non-contiguous mask: prefix %d, want -1", got[2].PrefixLen())
		}
	}
	if got[0].Metric != 100 || got[0].Flags != 3 || got[0].Iface != "eth0" {
		t.Errorf("route 0 = %+v", got[0])
	}
}

func TestParseIPv6Route(t *testing.T) {
	in := "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n" +
		"00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000003 00000000 00450003     eth0\n" +
		"00000000000000000000000000000000 81 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000003 00000000 00450003     eth0\n" +
		"short line\n"
	got, err := ParseIPv6Route(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 2 {
		t.Fatalf("err = %v, want 2 malformed lines", err)
	}
	want := []Route6{
		{netip.MustParsePrefix("fd00::/64"), netip.MustParsePrefix("::/0"), netip.IPv6Unspecified(), 0x100, 1, 0, 1, "eth0"},
		{netip.MustParsePrefix("::/0"), netip.MustParsePrefix("::/0"), netip.MustParseAddr("fe80::1"), 0x400, 3, 0, 0x450003, "eth0"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParseIPv6Route = %+v\nwant %+v", got, want)
	}
}

func TestParseARP(t *testing.T) {
	in := "IP address       HW type     Flags       HW address            Mask     Device\n" +
		"192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        eth0\n" +
		"10.0.0.9         0x1         0x0         00:00:00:00:00:00     *        eni2\n" +
		"not-an-ip        0x1         0x2         02:fc:00:00:00:05     *        eth0\n"
	got, err := ParseARP(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 1 {
		t.Fatalf("err = %v, want 1 malformed line", err)
	}
	want := []Neighbour{
		{netip.MustParseAddr("192.0.2.1"), 1, 2, "02:fc:00:00:00:05", "*", "eth0"},
		{netip.MustParseAddr("10.0.0.9"), 1, 0, "00:00:00:00:00:00", "*", "eni2"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParseARP = %+v", got)
	}
}

func TestParseFdinfo(t *testing.T) {
	got, err := ParseFdinfo([]byte("pos:\t1234\nflags:\t02100002\nmnt_id:\t24\nino:\t99\neventfd-count: 5\n"))
	if err != nil || got != (Fdinfo{Pos: 1234, Flags: 0o2100002, MntID: 24, Ino: 99}) {
		t.Errorf("ParseFdinfo = %+v, %v", got, err)
	}
	if _, err := ParseFdinfo([]byte("flags:\t9\n")); err == nil {
		t.Error("non-octal flags: want error")
	}
}

func TestLineErrorsCap(t *testing.T) {
	in := strings.Repeat("junk\n", 100)
	_, err := ParseModules(strings.NewReader(in))
	var le *LineErrors
	if !errors.As(err, &le) || le.Total != 100 || len(le.Errors) != maxLineErrors || !strings.Contains(le.Error(), "100 malformed lines") {
		t.Errorf("err = %v", err)
	}
}
