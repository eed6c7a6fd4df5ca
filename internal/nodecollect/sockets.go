package nodecollect

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"

	"github.com/eksir/eksir/internal/procfs"
)

// SocketsDoc is the document of the sockets artefact.
type SocketsDoc struct {
	Envelope
	NetNamespaces []NetNamespace `json:"network_namespaces"`
}

// NetNamespace holds the sockets of one network namespace.
type NetNamespace struct {
	Inode uint64 `json:"inode"`
	// PIDs are every process in the namespace, selected or not.
	PIDs []int `json:"pids"`
	// ReaderPID is the process whose /proc/PID/net was read.
	ReaderPID int      `json:"reader_pid"`
	Sockets   []Socket `json:"sockets"`
}

// Socket is one socket of a network namespace.
type Socket struct {
	// Proto is tcp, tcp6, udp, udp6 or unix.
	Proto  string `json:"proto"`
	Local  string `json:"local"`
	Remote string `json:"remote,omitempty"`
	State  string `json:"state"`
	// Type is STREAM, DGRAM or SEQPACKET for a unix socket.
	Type    string  `json:"type,omitempty"`
	Inode   uint64  `json:"inode"`
	UID     *uint32 `json:"uid,omitempty"`
	TxQueue uint64  `json:"tx_queue,omitempty"`
	RxQueue uint64  `json:"rx_queue,omitempty"`
	Owners  []Owner `json:"owners"`
}

// Owner is a process holding a socket open.
type Owner struct {
	PID  int    `json:"pid"`
	FD   int    `json:"fd"`
	Comm string `json:"comm"`
}

var ipProtos = []string{"tcp", "tcp6", "udp", "udp6"}

// Sockets lists the sockets of each distinct network namespace of the
// selected processes, or with sel.Node of PID 1's namespace (the node's,
// when the collector sees the host PID namespace). Owners are found among
// all processes in the same namespace by their socket:[INODE] fd links.
// Because /proc/PID/net shows the namespace of PID, a namespace's sockets
// are read through one of its own members, never through another's.
func (c *Collector) Sockets(ctx context.Context, sel Selector) (*SocketsDoc, error) {
	if sel.IsZero() {
		return nil, fmt.Errorf("sockets: %w (or the node)", ErrNoSelector)
	}
	var e errs
	env := c.envelope("sockets", &e)
	procs, err := c.scan(ctx, &e)
	if err != nil {
		return nil, err
	}
	s := c.selectProcs(procs, sel)
	env.Selector = s.info
	members := map[uint64][]proc{}
	for _, p := range procs {
		if ino, ok := p.ns["net"]; ok {
			members[ino] = append(members[ino], p)
		}
	}
	// Readers are tried in this order: selected processes first, so a
	// pod's sockets are read through the pod's own processes.
	targets := map[uint64][]int{}
	if sel.Node {
		ino, reader, err := c.nodeNetNS()
		if err != nil {
			return nil, err
		}
		targets[ino] = []int{reader}
	}
	for _, p := range s.procs(procs) {
		if ino, ok := p.ns["net"]; ok {
			targets[ino] = append(targets[ino], p.pid)
		}
	}
	out := []NetNamespace{}
	for _, ino := range slices.Sorted(maps.Keys(targets)) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ns, ok := c.netNamespace(ino, targets[ino], members[ino], &e)
		if ok {
			out = append(out, ns)
		}
	}
	finish(&env, &e)
	return &SocketsDoc{Envelope: env, NetNamespaces: out}, nil
}

// nodeNetNS returns the network namespace of PID 1, or of the collector
// when PID 1 is not visible.
func (c *Collector) nodeNetNS() (ino uint64, reader int, err error) {
	for _, pid := range []int{1, c.selfPID()} {
		t, lerr := os.Readlink(c.pidPath(pid, "ns", "net"))
		if lerr != nil {
			err = errors.Join(err, lerr)
			continue
		}
		if _, n, ok := procfs.ParseNSLink(t); ok {
			return n, pid, nil
		}
	}
	return 0, 0, fmt.Errorf("network namespace of the node: %w", err)
}

// netNamespace reads the socket tables of namespace ino through the first
// candidate still in it, and names the owners among members.
func (c *Collector) netNamespace(ino uint64, candidates []int, members []proc, e *errs) (NetNamespace, bool) {
	ns := NetNamespace{Inode: ino, PIDs: []int{}, Sockets: []Socket{}}
	for _, m := range members {
		ns.PIDs = append(ns.PIDs, m.pid)
	}
	// Fall back to any member when the preferred readers are gone.
	for _, m := range members {
		candidates = append(candidates, m.pid)
	}
	var socks []Socket
	read := false
	for _, pid := range candidates {
		var ok bool
		socks, ok = c.readNetTables(pid, ino, e)
		if ok {
			ns.ReaderPID, read = pid, true
			break
		}
	}
	if !read {
		e.add(fmt.Sprintf("net:[%d]", ino), errors.New("no process of this network namespace could be read"))
		return ns, false
	}
	owners := c.socketOwners(members, e)
	for i := range socks {
		socks[i].Owners = owners[socks[i].Inode]
		if socks[i].Owners == nil || socks[i].Inode == 0 {
			socks[i].Owners = []Owner{}
		}
	}
	slices.SortFunc(socks, func(a, b Socket) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Local, b.Local),
			cmp.Compare(a.Remote, b.Remote), cmp.Compare(a.Inode, b.Inode))
	})
	ns.Sockets = socks
	return ns, true
}

// readNetTables reads /proc/PID/net/* and checks, before and after, that
// PID is in namespace ino, so that a process that exited (and whose PID was
// reused) or moved with setns cannot lend another namespace's sockets.
func (c *Collector) readNetTables(pid int, ino uint64, e *errs) ([]Socket, bool) {
	inNS := func() bool {
		t, err := os.Readlink(c.pidPath(pid, "ns", "net"))
		if err != nil {
			return false
		}
		_, n, ok := procfs.ParseNSLink(t)
		return ok && n == ino
	}
	if !inNS() {
		return nil, false
	}
	var out []Socket
	for _, proto := range append(slices.Clone(ipProtos), "unix") {
		p := c.pidPath(pid, "net", proto)
		b, err := os.ReadFile(p)
		if err != nil {
			if vanished(err) && !inNS() {
				return nil, false
			}
			// A kernel without IPv6 has no tcp6/udp6: not an error.
			if !errors.Is(err, os.ErrNotExist) {
				e.add(p, err)
			}
			continue
		}
		if proto == "unix" {
			us, perr := procfs.ParseNetUnix(bytes.NewReader(b))
			e.add(p, perr)
			for _, u := range us {
				out = append(out, Socket{Proto: "unix", Local: u.Path, State: procfs.UnixStateName(u),
					Type: procfs.UnixTypeName(u.Type), Inode: u.Inode})
			}
			continue
		}
		is, perr := procfs.ParseNetIP(bytes.NewReader(b))
		e.add(p, perr)
		for _, s := range is {
			uid := s.UID
			out = append(out, Socket{Proto: proto, Local: s.Local.String(), Remote: s.Remote.String(),
				State: procfs.TCPStateName(s.State), Inode: s.Inode, UID: &uid, TxQueue: s.TxQueue, RxQueue: s.RxQueue})
		}
	}
	if !inNS() {
		return nil, false
	}
	return out, true
}

// socketOwners maps socket inodes to the fds of members that hold them.
func (c *Collector) socketOwners(members []proc, e *errs) map[uint64][]Owner {
	owners := map[uint64][]Owner{}
	for _, m := range members {
		dir := c.pidPath(m.pid, "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			e.add(dir, err)
			continue
		}
		for _, ent := range ents {
			fd, err := strconv.Atoi(ent.Name())
			if err != nil {
				continue
			}
			t, err := os.Readlink(c.pidPath(m.pid, "fd", ent.Name()))
			if err != nil {
				// fds close all the time; only other errors matter.
				e.add(c.pidPath(m.pid, "fd", ent.Name()), err)
				continue
			}
			if ino, ok := procfs.ParseSocketLink(t); ok {
				owners[ino] = append(owners[ino], Owner{PID: m.pid, FD: fd, Comm: m.stat.Comm})
			}
		}
	}
	for _, o := range owners {
		slices.SortFunc(o, func(a, b Owner) int { return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.FD, b.FD)) })
	}
	return owners
}
