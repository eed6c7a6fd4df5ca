package nodecollect

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/eksir/eksir/internal/procfs"
)

// proc is what every artefact needs to know about a process.
type proc struct {
	pid     int
	stat    procfs.Stat
	status  procfs.Status
	cgroups []procfs.CgroupLine
	ref     procfs.ContainerRef
	hasRef  bool
	ns      map[string]uint64 // "net", "pid", "mnt" → inode
}

// listPIDs returns the numeric entries of Proc, sorted.
func (c *Collector) listPIDs() ([]int, error) {
	ents, err := os.ReadDir(c.Proc)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", c.Proc, err)
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 {
			pids = append(pids, n)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// readProc reads stat, status, cgroup and the namespace links of pid. ok is
// false when the process vanished or its stat could not be read (then the
// error is recorded).
func (c *Collector) readProc(pid int, e *errs) (p proc, ok bool) {
	p.pid = pid
	p.ns = map[string]uint64{}
	statPath := c.pidPath(pid, "stat")
	b, err := os.ReadFile(statPath)
	if err != nil {
		e.add(statPath, err)
		return p, false
	}
	if p.stat, err = procfs.ParseStat(b); err != nil {
		e.add(statPath, err)
		return p, false
	}
	statusPath := c.pidPath(pid, "status")
	if b, err = os.ReadFile(statusPath); err != nil {
		if vanished(err) {
			return p, false
		}
		e.add(statusPath, err)
	} else if p.status, err = procfs.ParseStatus(b); err != nil {
		e.add(statusPath, err)
	}
	cgPath := c.pidPath(pid, "cgroup")
	if b, err = os.ReadFile(cgPath); err != nil {
		e.add(cgPath, err)
	} else {
		p.cgroups, err = procfs.ParseCgroup(bytes.NewReader(b))
		e.add(cgPath, err)
		p.ref, p.hasRef = procfs.ContainerOf(p.cgroups)
	}
	for _, typ := range []string{"net", "pid", "mnt"} {
		lp := c.pidPath(pid, "ns", typ)
		t, err := os.Readlink(lp)
		if err != nil {
			// Kernel threads have namespaces too; ENOENT here means
			// the process is gone, which stat will tell next time.
			e.add(lp, err)
			continue
		}
		if _, ino, ok := procfs.ParseNSLink(t); ok {
			p.ns[typ] = ino
		} else {
			e.add(lp, fmt.Errorf("unexpected link target %q", t))
		}
	}
	return p, !c.gone(pid)
}

// gone reports whether pid has exited since it was listed: a process that
// vanishes while it is read is left out rather than reported half-read.
func (c *Collector) gone(pid int) bool {
	_, err := os.Stat(c.pidPath(pid, "stat"))
	return err != nil && vanished(err)
}

// scan reads every process of Proc, in PID order.
func (c *Collector) scan(ctx context.Context, e *errs) ([]proc, error) {
	pids, err := c.listPIDs()
	if err != nil {
		return nil, err
	}
	out := make([]proc, 0, len(pids))
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p, ok := c.readProc(pid, e); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// selection is the result of applying a Selector to a scan.
type selection struct {
	info     SelectorInfo
	selected map[int]bool
}

// selectProcs applies sel to procs. It does not accept Node, which only
// sockets understands.
func (c *Collector) selectProcs(procs []proc, sel Selector) selection {
	s := selection{info: SelectorInfo{Kind: "none"}, selected: map[int]bool{}}
	switch {
	case sel.PodUID != "":
		want := procfs.NormalizePodUID(sel.PodUID)
		s.info = SelectorInfo{Kind: "pod-uid", PodUID: want}
		for _, p := range procs {
			if p.hasRef && p.ref.PodUID == want {
				s.selected[p.pid] = true
			}
		}
	case sel.AllExceptSelf:
		self := c.selfPID()
		excluded := c.collectorChain(procs, self)
		s.info = SelectorInfo{Kind: "all-except-self", SelfPID: self, Excluded: excluded}
		for _, p := range procs {
			if !slices.Contains(excluded, p.pid) {
				s.selected[p.pid] = true
			}
		}
	case sel.Node:
		s.info = SelectorInfo{Kind: "node"}
	}
	return s
}

// collectorChain returns self and the ancestors that belong to the
// collector's own container: walking up from self, each parent with the
// same mount namespace and the same cgroups as the collector is excluded,
// and the walk stops at the first that differs (the suspect, or the
// container runtime outside the PID namespace).
func (c *Collector) collectorChain(procs []proc, self int) []int {
	byPID := make(map[int]*proc, len(procs))
	for i := range procs {
		byPID[procs[i].pid] = &procs[i]
	}
	out := []int{self}
	me, ok := byPID[self]
	if !ok {
		return out
	}
	seen := map[int]bool{self: true}
	for pp := me.stat.PPID; pp > 0 && !seen[pp]; {
		parent, ok := byPID[pp]
		if !ok || parent.ns["mnt"] != me.ns["mnt"] || !slices.EqualFunc(parent.cgroups, me.cgroups, sameCgroup) {
			break
		}
		seen[pp] = true
		out = append(out, pp)
		pp = parent.stat.PPID
	}
	slices.Sort(out)
	return out
}

func sameCgroup(a, b procfs.CgroupLine) bool {
	return a.HierarchyID == b.HierarchyID && a.Path == b.Path && slices.Equal(a.Controllers, b.Controllers)
}

// selectedProcs returns the selected processes of procs, in PID order.
func (s selection) procs(procs []proc) []proc {
	var out []proc
	for _, p := range procs {
		if s.selected[p.pid] {
			out = append(out, p)
		}
	}
	return out
}
