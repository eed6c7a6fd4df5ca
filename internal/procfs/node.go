package procfs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Module is one line of /proc/modules.
type Module struct {
	Name      string
	Size      uint64
	Instances int      // use count
	Deps      []string // modules using this one
	State     string   // Live, Loading, Unloading
	Address   string   // load address; 0x0000000000000000 unless kptr_restrict allows
	Taints    string   // e.g. "OE" for out-of-tree, unsigned; empty when untainted
}

// ParseModules parses /proc/modules.
func ParseModules(r io.Reader) ([]Module, error) {
	out := []Module{}
	err := forEachLine(r, 0, func(line string) error {
		f := strings.Fields(line)
		if len(f) < 6 {
			return fmt.Errorf("%d fields, want at least 6", len(f))
		}
		size, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return fmt.Errorf("size: %w", err)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			return fmt.Errorf("instances: %w", err)
		}
		m := Module{Name: f[0], Size: size, Instances: n, Deps: []string{}, State: f[4], Address: f[5]}
		if f[3] != "-" {
			for d := range strings.SplitSeq(f[3], ",") {
				if d != "" {
					m.Deps = append(m.Deps, d)
				}
			}
		}
		if len(f) > 6 {
			m.Taints = strings.Trim(f[6], "()")
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// Route is one line of /proc/net/route (IPv4).
type Route struct {
	Iface       string
	Destination netip.Addr
	Gateway     netip.Addr
	Mask        netip.Addr
	Flags       uint16 // RTF_* bits: 0x1 up, 0x2 gateway, 0x4 host
	RefCnt      int
	Use         int
	Metric      int
	MTU         int
	Window      int
	IRTT        int
}

// PrefixLen returns the mask as a prefix length, or -1 when the mask is not
// contiguous.
func (r Route) PrefixLen() int {
	m := r.Mask.As4()
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	n := bits.LeadingZeros32(^v)
	if v<<n != 0 {
		return -1
	}
	return n
}

// ParseRoute parses /proc/net/route, whose addresses are 8 hex digits in
// host byte order, like those of /proc/net/tcp.
func ParseRoute(r io.Reader) ([]Route, error) {
	out := []Route{}
	err := forEachLine(r, 1, func(line string) error {
		f := strings.Fields(line)
		if len(f) < 11 {
			return fmt.Errorf("%d fields, want 11", len(f))
		}
		rt := Route{Iface: f[0]}
		addrs := []*netip.Addr{&rt.Destination, &rt.Gateway, &rt.Mask}
		for i, idx := range []int{1, 2, 7} {
			if len(f[idx]) != 8 {
				return fmt.Errorf("address %q", f[idx])
			}
			a, err := ParseHexAddr(f[idx])
			if err != nil {
				return err
			}
			*addrs[i] = a
		}
		fl, err := strconv.ParseUint(f[3], 16, 16)
		if err != nil {
			return fmt.Errorf("flags: %w", err)
		}
		rt.Flags = uint16(fl)
		ints := []*int{&rt.RefCnt, &rt.Use, &rt.Metric, nil, &rt.MTU, &rt.Window, &rt.IRTT}
		for i, dst := range ints {
			if dst == nil {
				continue
			}
			if *dst, err = strconv.Atoi(f[4+i]); err != nil {
				return fmt.Errorf("field %d: %w", 5+i, err)
			}
		}
		out = append(out, rt)
		return nil
	})
	return out, err
}

// Route6 is one line of /proc/net/ipv6_route.
type Route6 struct {
	Destination netip.Prefix
	Source      netip.Prefix
	NextHop     netip.Addr
	Metric      uint32
	RefCnt      uint32
	Use         uint32
	Flags       uint32 // RTF_* bits
	Iface       string
}

// ParseIPv6Route parses /proc/net/ipv6_route. Unlike /proc/net/route its
// addresses are printed byte by byte in network order (%pi6), and every
// number is hexadecimal.
func ParseIPv6Route(r io.Reader) ([]Route6, error) {
	out := []Route6{}
	err := forEachLine(r, 0, func(line string) error {
		f := strings.Fields(line)
		if len(f) != 10 {
			return fmt.Errorf("%d fields, want 10", len(f))
		}
		var rt Route6
		var err error
		if rt.Destination, err = parsePrefix6(f[0], f[1]); err != nil {
			return fmt.Errorf("destination: %w", err)
		}
		if rt.Source, err = parsePrefix6(f[2], f[3]); err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if rt.NextHop, err = parseAddr6(f[4]); err != nil {
			return fmt.Errorf("next hop: %w", err)
		}
		nums := []*uint32{&rt.Metric, &rt.RefCnt, &rt.Use, &rt.Flags}
		for i, dst := range nums {
			v, err := strconv.ParseUint(f[5+i], 16, 32)
			if err != nil {
				return fmt.Errorf("field %d: %w", 6+i, err)
			}
			*dst = uint32(v)
		}
		rt.Iface = f[9]
		out = append(out, rt)
		return nil
	})
	return out, err
}

func parseAddr6(s string) (netip.Addr, error) {
	if len(s) != 32 {
		return netip.Addr{}, fmt.Errorf("%q: %d hex digits, want 32", s, len(s))
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom16(b), nil
}

func parsePrefix6(addr, plen string) (netip.Prefix, error) {
	a, err := parseAddr6(addr)
	if err != nil {
		return netip.Prefix{}, err
	}
	n, err := strconv.ParseUint(plen, 16, 8)
	if err != nil || n > 128 {
		return netip.Prefix{}, fmt.Errorf("prefix length %q", plen)
	}
	return netip.PrefixFrom(a, int(n)), nil
}

// Neighbour is one line of /proc/net/arp.
type Neighbour struct {
	IP     netip.Addr
	HWType uint16 // ARPHRD_*: 1 ethernet
	Flags  uint16 // ATF_*: 0x2 complete, 0x4 permanent
	HWAddr string // as printed, e.g. "02:fc:00:00:00:05"
	Mask   string
	Device string
}

// ParseARP parses /proc/net/arp.
func ParseARP(r io.Reader) ([]Neighbour, error) {
	out := []Neighbour{}
	err := forEachLine(r, 1, func(line string) error {
		f := strings.Fields(line)
		if len(f) != 6 {
			return fmt.Errorf("%d fields, want 6", len(f))
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil {
			return err
		}
		hw, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 16)
		if err != nil {
			return fmt.Errorf("hw type: %w", err)
		}
		fl, err := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 16)
		if err != nil {
			return fmt.Errorf("flags: %w", err)
		}
		if _, err := net.ParseMAC(f[3]); err != nil && f[3] != "00:00:00:00:00:00" {
			return errors.New("hardware address: " + err.Error())
		}
		out = append(out, Neighbour{IP: ip, HWType: uint16(hw), Flags: uint16(fl), HWAddr: f[3], Mask: f[4], Device: f[5]})
		return nil
	})
	return out, err
}

// Fdinfo holds the common fields of /proc/PID/fdinfo/N.
type Fdinfo struct {
	Pos   int64
	Flags uint64 // open(2) flags; printed in octal by the kernel
	MntID int
	Ino   uint64
}

// ParseFdinfo parses the first lines of /proc/PID/fdinfo/N; type-specific
// lines (eventfd counts, inotify watches) are ignored.
func ParseFdinfo(b []byte) (Fdinfo, error) {
	var fi Fdinfo
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		var err error
		switch k {
		case "pos":
			fi.Pos, err = strconv.ParseInt(v, 10, 64)
		case "flags":
			fi.Flags, err = strconv.ParseUint(v, 8, 64)
		case "mnt_id":
			fi.MntID, err = strconv.Atoi(v)
		case "ino":
			fi.Ino, err = strconv.ParseUint(v, 10, 64)
		}
		if err != nil {
			return fi, fmt.Errorf("fdinfo %s: %w", k, err)
		}
	}
	return fi, nil
}
