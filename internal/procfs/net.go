package procfs

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// IPSocket is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type IPSocket struct {
	Slot    int
	Local   netip.AddrPort
	Remote  netip.AddrPort
	State   uint8 // kernel TCP state number; see TCPStateName
	TxQueue uint64
	RxQueue uint64
	UID     uint32
	Inode   uint64 // 0 for a socket no longer attached to a file (TIME_WAIT)
}

// ParseNetIP parses /proc/net/tcp, tcp6, udp or udp6 (the four share one
// layout). The first line is the header.
func ParseNetIP(r io.Reader) ([]IPSocket, error) {
	out := []IPSocket{}
	err := forEachLine(r, 1, func(line string) error {
		s, err := parseIPSocketLine(line)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

func parseIPSocketLine(line string) (IPSocket, error) {
	var s IPSocket
	f := strings.Fields(line)
	if len(f) < 10 {
		return s, fmt.Errorf("%d fields, want at least 10", len(f))
	}
	slot, err := strconv.Atoi(strings.TrimSuffix(f[0], ":"))
	if err != nil {
		return s, fmt.Errorf("slot: %w", err)
	}
	s.Slot = slot
	if s.Local, err = ParseHexAddrPort(f[1]); err != nil {
		return s, fmt.Errorf("local address: %w", err)
	}
	if s.Remote, err = ParseHexAddrPort(f[2]); err != nil {
		return s, fmt.Errorf("remote address: %w", err)
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return s, fmt.Errorf("state: %w", err)
	}
	s.State = uint8(st)
	tx, rx, ok := strings.Cut(f[4], ":")
	if !ok {
		return s, fmt.Errorf("queues %q", f[4])
	}
	if s.TxQueue, err = strconv.ParseUint(tx, 16, 64); err != nil {
		return s, fmt.Errorf("tx_queue: %w", err)
	}
	if s.RxQueue, err = strconv.ParseUint(rx, 16, 64); err != nil {
		return s, fmt.Errorf("rx_queue: %w", err)
	}
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return s, fmt.Errorf("uid: %w", err)
	}
	s.UID = uint32(uid)
	if s.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
		return s, fmt.Errorf("inode: %w", err)
	}
	return s, nil
}

// ParseHexAddrPort decodes "0100007F:0016" or a 32-digit IPv6 form. The
// kernel prints the address as 32-bit words, each in the host's byte order,
// and the port as a number, so each word is put back into memory order
// with the machine's own endianness.
func ParseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q: no ':'", s)
	}
	addr, err := ParseHexAddr(a)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", p, err)
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// ParseHexAddr decodes an 8 (IPv4) or 32 (IPv6) hex digit address of
// /proc/net in host byte order per 32-bit word.
func ParseHexAddr(s string) (netip.Addr, error) {
	if len(s) != 8 && len(s) != 32 {
		return netip.Addr{}, fmt.Errorf("address %q: %d hex digits, want 8 or 32", s, len(s))
	}
	raw, err := hex.DecodeString(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q: %w", s, err)
	}
	buf := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(buf[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(buf)
	return addr, nil
}

// TCP states as numbered by the kernel (include/net/tcp_states.h).
var tcpStates = [...]string{
	1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
	6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
	11: "CLOSING", 12: "NEW_SYN_RECV", 13: "BOUND_INACTIVE",
}

// TCPStateName names a state of /proc/net/tcp. UDP sockets reuse the
// numbers: ESTABLISHED for a connected socket, CLOSE for an unconnected one.
func TCPStateName(st uint8) string {
	if int(st) < len(tcpStates) && tcpStates[st] != "" {
		return tcpStates[st]
	}
	return "UNKNOWN_" + strconv.Itoa(int(st))
}

// UnixSocket is one line of /proc/net/unix.
type UnixSocket struct {
	RefCount uint32
	Flags    uint32 // 0x10000 (__SO_ACCEPTCON) on a listening socket
	Type     uint16 // 1 stream, 2 dgram, 5 seqpacket
	State    uint8  // 1 unconnected, 2 connecting, 3 connected, 4 disconnecting
	Inode    uint64
	// Path is the bound name: a file path, "@name" for the abstract
	// namespace, empty for an unbound socket. The kernel does not escape
	// it, so a name holding a newline splits its line; the fragment is
	// reported as malformed or, if crafted, read as a socket of its own.
	Path string
}

// ParseNetUnix parses /proc/net/unix. The path is everything after the inode
// column, so a name with spaces stays whole.
func ParseNetUnix(r io.Reader) ([]UnixSocket, error) {
	out := []UnixSocket{}
	err := forEachLine(r, 1, func(line string) error {
		var u UnixSocket
		rest := line
		var f [7]string
		for i := range f {
			rest = strings.TrimLeft(rest, " ")
			j := strings.IndexByte(rest, ' ')
			if j < 0 {
				if i < 6 {
					return errors.New("too few fields")
				}
				j = len(rest)
			}
			f[i], rest = rest[:j], rest[j:]
		}
		if !strings.HasSuffix(f[0], ":") {
			return fmt.Errorf("slot %q", f[0])
		}
		vals := []struct {
			s    string
			base int
			bits int
		}{{f[1], 16, 32}, {f[3], 16, 32}, {f[4], 16, 16}, {f[5], 16, 8}, {f[6], 10, 64}}
		var n [5]uint64
		for i, v := range vals {
			x, err := strconv.ParseUint(v.s, v.base, v.bits)
			if err != nil {
				return fmt.Errorf("field %d: %w", i, err)
			}
			n[i] = x
		}
		if _, err := strconv.ParseUint(f[2], 16, 32); err != nil {
			return fmt.Errorf("protocol: %w", err)
		}
		u.RefCount, u.Flags, u.Type, u.State, u.Inode = uint32(n[0]), uint32(n[1]), uint16(n[2]), uint8(n[3]), n[4]
		if len(rest) > 0 {
			u.Path = rest[1:]
		}
		out = append(out, u)
		return nil
	})
	return out, err
}

// UnixTypeName names a unix socket type.
func UnixTypeName(t uint16) string {
	switch t {
	case 1:
		return "STREAM"
	case 2:
		return "DGRAM"
	case 5:
		return "SEQPACKET"
	}
	return "UNKNOWN_" + strconv.Itoa(int(t))
}

// UnixStateName names a unix socket state (socket_state in linux/net.h);
// a listening socket is reported as LISTEN from its flags.
func UnixStateName(u UnixSocket) string {
	if u.Flags&0x10000 != 0 {
		return "LISTEN"
	}
	switch u.State {
	case 1:
		return "UNCONNECTED"
	case 2:
		return "CONNECTING"
	case 3:
		return "CONNECTED"
	case 4:
		return "DISCONNECTING"
	}
	return "UNKNOWN_" + strconv.Itoa(int(u.State))
}
