package nodecollect

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/eksir/eksir/internal/procfs"
)

// ProcessesDoc is the document of the processes artefact: every process of
// Proc, selected or not.
type ProcessesDoc struct {
	Envelope
	// BootTime is the btime of /proc/stat that start times are based on.
	BootTime   string    `json:"boot_time"`
	ClockTicks int       `json:"clock_ticks"`
	Processes  []Process `json:"processes"`
}

// Process describes one process.
type Process struct {
	PID          int    `json:"pid"`
	PPID         int    `json:"ppid"`
	Comm         string `json:"comm"`
	State        string `json:"state"`
	Threads      int    `json:"threads"`
	KernelThread bool   `json:"kernel_thread"`
	UID          IDs    `json:"uid"`
	GID          IDs    `json:"gid"`
	// NSpid is the PID in each nested PID namespace, outermost first.
	NSpid      []int  `json:"nspid,omitempty"`
	StartTicks uint64 `json:"start_ticks"`
	StartTime  string `json:"start_time,omitempty"`
	// Cmdline is argv, with secret-looking values replaced unless
	// redaction is off; CmdlineRedacted says whether any was.
	Cmdline         []string `json:"cmdline"`
	CmdlineRedacted bool     `json:"cmdline_redacted"`
	// Exe is the link target of /proc/PID/exe; kernel threads have none.
	Exe        string `json:"exe,omitempty"`
	ExeDeleted bool   `json:"exe_deleted"`
	ExeSHA256  string `json:"exe_sha256,omitempty"`
	// ExeDev and ExeInode identify the executable file; processes sharing
	// them run the same file and share one hash.
	ExeDev      uint64            `json:"exe_dev,omitempty"`
	ExeInode    uint64            `json:"exe_inode,omitempty"`
	Cgroups     []Cgroup          `json:"cgroups"`
	PodUID      string            `json:"pod_uid,omitempty"`
	QoS         string            `json:"qos,omitempty"`
	ContainerID string            `json:"container_id,omitempty"`
	Runtime     string            `json:"container_runtime,omitempty"`
	Namespaces  map[string]uint64 `json:"namespaces"`
	Selected    bool              `json:"selected"`
}

// IDs are the real and effective user or group IDs of a process.
type IDs struct {
	Real      uint32 `json:"real"`
	Effective uint32 `json:"effective"`
}

// Cgroup is one line of /proc/PID/cgroup.
type Cgroup struct {
	Hierarchy   int      `json:"hierarchy"`
	Controllers []string `json:"controllers"`
	Path        string   `json:"path"`
}

// exeKey identifies an executable file.
type exeKey struct{ dev, ino uint64 }

type exeHash struct {
	sum string
	err error
}

// Processes lists every process of Proc and marks those sel selects (sel
// may be empty). Each distinct executable, by device and inode, is hashed
// once, read through /proc/PID/exe so that a binary deleted after it
// started still hashes.
func (c *Collector) Processes(ctx context.Context, sel Selector) (*ProcessesDoc, error) {
	if sel.Node {
		return nil, errors.New("processes: the node selector applies to sockets only")
	}
	var e errs
	env := c.envelope("processes", &e)
	statPath := c.path("stat")
	var boot time.Time
	if b, err := os.ReadFile(statPath); err != nil {
		e.add(statPath, err)
	} else if bt, err := procfs.ParseBootTime(b); err != nil {
		e.add(statPath, err)
	} else {
		boot = time.Unix(bt, 0).UTC()
	}
	procs, err := c.scan(ctx, &e)
	if err != nil {
		return nil, err
	}
	s := c.selectProcs(procs, sel)
	env.Selector = s.info
	hashes := map[exeKey]exeHash{}
	out := make([]Process, 0, len(procs))
	for _, p := range procs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		proc := c.process(p, boot, s.selected[p.pid], hashes, &e)
		if c.gone(p.pid) {
			continue
		}
		out = append(out, proc)
	}
	finish(&env, &e)
	doc := &ProcessesDoc{Envelope: env, ClockTicks: ClockTicks, Processes: out}
	if !boot.IsZero() {
		doc.BootTime = boot.Format(time.RFC3339)
	}
	return doc, nil
}

func (c *Collector) process(p proc, boot time.Time, selected bool, hashes map[exeKey]exeHash, e *errs) Process {
	out := Process{
		PID:          p.pid,
		PPID:         p.stat.PPID,
		Comm:         p.stat.Comm,
		State:        p.stat.State,
		Threads:      p.stat.NumThreads,
		KernelThread: p.stat.Flags&procfs.PFKthread != 0,
		UID:          IDs{Real: p.status.UID[0], Effective: p.status.UID[1]},
		GID:          IDs{Real: p.status.GID[0], Effective: p.status.GID[1]},
		NSpid:        p.status.NSpid,
		StartTicks:   p.stat.StartTime,
		Cmdline:      []string{},
		Cgroups:      make([]Cgroup, 0, len(p.cgroups)),
		Namespaces:   p.ns,
		Selected:     selected,
	}
	if !boot.IsZero() {
		// StartTime counts USER_HZ ticks; see ClockTicks.
		start := boot.Add(time.Duration(p.stat.StartTime) * (time.Second / ClockTicks))
		out.StartTime = start.Format(time.RFC3339Nano)
	}
	for _, l := range p.cgroups {
		out.Cgroups = append(out.Cgroups, Cgroup{Hierarchy: l.HierarchyID, Controllers: l.Controllers, Path: l.Path})
	}
	if p.hasRef {
		out.PodUID, out.QoS, out.ContainerID, out.Runtime = p.ref.PodUID, p.ref.QoS, p.ref.ContainerID, p.ref.Runtime
	}
	cmdPath := c.pidPath(p.pid, "cmdline")
	if b, err := os.ReadFile(cmdPath); err != nil {
		e.add(cmdPath, err)
	} else {
		out.Cmdline = procfs.ParseCmdline(b)
		if c.Redact {
			out.Cmdline, out.CmdlineRedacted = RedactArgs(out.Cmdline)
		}
	}
	if out.KernelThread {
		return out
	}
	exePath := c.pidPath(p.pid, "exe")
	target, err := os.Readlink(exePath)
	if err != nil {
		// ENOENT for a zombie, or for a process that has exited.
		e.add(exePath, err)
		return out
	}
	out.Exe = strings.TrimSuffix(target, " (deleted)")
	out.ExeDeleted = out.Exe != target
	fi, err := os.Stat(exePath)
	if err != nil {
		e.add(exePath, err)
		return out
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return out
	}
	if out.ExeDeleted && st.Nlink > 0 {
		// The file is still linked: " (deleted)" is part of its name.
		out.Exe, out.ExeDeleted = target, false
	}
	key := exeKey{dev: uint64(st.Dev), ino: st.Ino}
	out.ExeDev, out.ExeInode = key.dev, key.ino
	h, seen := hashes[key]
	if !seen {
		h.sum, h.err = hashFile(exePath)
		if h.err != nil && vanished(h.err) {
			// The next process running this file may still be there.
			return out
		}
		hashes[key] = h
	}
	if h.err != nil && !seen {
		e.add(exePath, h.err)
	}
	out.ExeSHA256 = h.sum
	return out
}
