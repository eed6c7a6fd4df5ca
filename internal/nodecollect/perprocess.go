package nodecollect

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/eksir/eksir/internal/procfs"
)

// forSelected scans Proc, applies sel, which must select processes, and
// calls fn for each selected process in PID order.
func (c *Collector) forSelected(ctx context.Context, artefact string, sel Selector, fn func(p proc, e *errs)) (Envelope, error) {
	if sel.PodUID == "" && !sel.AllExceptSelf {
		return Envelope{}, fmt.Errorf("%s: %w", artefact, ErrNoSelector)
	}
	var e errs
	env := c.envelope(artefact, &e)
	procs, err := c.scan(ctx, &e)
	if err != nil {
		return env, err
	}
	s := c.selectProcs(procs, sel)
	env.Selector = s.info
	for _, p := range s.procs(procs) {
		if err := ctx.Err(); err != nil {
			return env, err
		}
		fn(p, &e)
	}
	finish(&env, &e)
	return env, nil
}

// FilesDoc is the document of the files artefact.
type FilesDoc struct {
	Envelope
	Processes []ProcessFiles `json:"processes"`
}

// ProcessFiles are the open file descriptors of one process.
type ProcessFiles struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	FDs  []FD   `json:"fds"`
}

// FD is one open file descriptor.
type FD struct {
	FD int `json:"fd"`
	// Target is the readlink of /proc/PID/fd/N: a path, or a pseudo-file
	// such as "socket:[123]", "pipe:[456]", "anon_inode:[eventfd]".
	Target string `json:"target"`
	// Type is file, dir, socket, pipe, anon_inode, char, block, fifo or other.
	Type string `json:"type"`
	// Path, Deleted, Size and Inode are set for a regular file.
	Path    string `json:"path,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
	Size    *int64 `json:"size,omitempty"`
	Inode   uint64 `json:"inode,omitempty"`
	// Pos, Flags (octal open flags) and MntID come from /proc/PID/fdinfo/N.
	Pos   *int64 `json:"pos,omitempty"`
	Flags string `json:"flags,omitempty"`
	MntID int    `json:"mnt_id,omitempty"`
}

// Files lists the open file descriptors of the selected processes.
func (c *Collector) Files(ctx context.Context, sel Selector) (*FilesDoc, error) {
	doc := &FilesDoc{Processes: []ProcessFiles{}}
	env, err := c.forSelected(ctx, "files", sel, func(p proc, e *errs) {
		if pf, ok := c.processFiles(p, e); ok {
			doc.Processes = append(doc.Processes, pf)
		}
	})
	if err != nil {
		return nil, err
	}
	doc.Envelope = env
	return doc, nil
}

func (c *Collector) processFiles(p proc, e *errs) (ProcessFiles, bool) {
	pf := ProcessFiles{PID: p.pid, Comm: p.stat.Comm, FDs: []FD{}}
	dir := c.pidPath(p.pid, "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		e.add(dir, err)
		return pf, !vanished(err)
	}
	for _, ent := range ents {
		n, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		lp := dir + "/" + ent.Name()
		t, err := os.Readlink(lp)
		if err != nil {
			e.add(lp, err)
			continue
		}
		fd := FD{FD: n, Target: t, Type: fdType(t)}
		if fd.Type == "" {
			// A path: stat through the magic link, which reaches the
			// open file even when its name was unlinked.
			fi, err := os.Stat(lp)
			if err != nil {
				e.add(lp, err)
				fd.Type = "other"
			} else {
				fd.Type = modeType(fi.Mode())
				if fd.Type == "file" {
					size := fi.Size()
					fd.Size = &size
					fd.Path = strings.TrimSuffix(t, " (deleted)")
					if st, ok := fi.Sys().(*syscall.Stat_t); ok {
						fd.Inode = st.Ino
						fd.Deleted = fd.Path != t && st.Nlink == 0
						if !fd.Deleted {
							fd.Path = t
						}
					}
				}
			}
		}
		ip := c.pidPath(p.pid, "fdinfo", ent.Name())
		if b, err := os.ReadFile(ip); err == nil {
			if fi, err := procfs.ParseFdinfo(b); err == nil {
				pos := fi.Pos
				fd.Pos, fd.Flags, fd.MntID = &pos, "0"+strconv.FormatUint(fi.Flags, 8), fi.MntID
			} else {
				e.add(ip, err)
			}
		}
		pf.FDs = append(pf.FDs, fd)
	}
	slices.SortFunc(pf.FDs, func(a, b FD) int { return a.FD - b.FD })
	return pf, true
}

// fdType classifies the pseudo-file targets; "" means a path.
func fdType(t string) string {
	switch {
	case strings.HasPrefix(t, "socket:["):
		return "socket"
	case strings.HasPrefix(t, "pipe:["):
		return "pipe"
	case strings.HasPrefix(t, "anon_inode:"):
		return "anon_inode"
	case strings.HasPrefix(t, "/"):
		return ""
	}
	return "other"
}

// modeType names a file's type, as the files and list artefacts report it.
func modeType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "dir"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeCharDevice != 0:
		return "char"
	case m&fs.ModeDevice != 0:
		return "block"
	}
	return "other"
}

// MapsDoc is the document of the maps artefact.
type MapsDoc struct {
	Envelope
	Processes []ProcessMaps `json:"processes"`
}

// ProcessMaps are the memory mappings of one process.
type ProcessMaps struct {
	PID      int       `json:"pid"`
	Comm     string    `json:"comm"`
	Mappings []Mapping `json:"mappings"`
}

// Mapping is one line of /proc/PID/maps; addresses and offsets are hex
// strings because they exceed the integers JSON readers handle exactly.
type Mapping struct {
	Start  string `json:"start"`
	End    string `json:"end"`
	Perms  string `json:"perms"`
	Offset string `json:"offset"`
	Dev    string `json:"dev"`
	Inode  uint64 `json:"inode"`
	Path   string `json:"path,omitempty"`
}

// Maps lists the memory mappings of the selected processes.
func (c *Collector) Maps(ctx context.Context, sel Selector) (*MapsDoc, error) {
	doc := &MapsDoc{Processes: []ProcessMaps{}}
	env, err := c.forSelected(ctx, "maps", sel, func(p proc, e *errs) {
		path := c.pidPath(p.pid, "maps")
		b, err := os.ReadFile(path)
		if err != nil {
			e.add(path, err)
			return
		}
		ms, err := procfs.ParseMaps(bytes.NewReader(b))
		e.add(path, err)
		pm := ProcessMaps{PID: p.pid, Comm: p.stat.Comm, Mappings: make([]Mapping, 0, len(ms))}
		for _, m := range ms {
			pm.Mappings = append(pm.Mappings, Mapping{
				Start: fmt.Sprintf("0x%x", m.Start), End: fmt.Sprintf("0x%x", m.End), Perms: m.Perms,
				Offset: fmt.Sprintf("0x%x", m.Offset), Dev: fmt.Sprintf("%02x:%02x", m.Major, m.Minor),
				Inode: m.Inode, Path: m.Path,
			})
		}
		doc.Processes = append(doc.Processes, pm)
	})
	if err != nil {
		return nil, err
	}
	doc.Envelope = env
	return doc, nil
}

// MountsDoc is the document of the mounts artefact.
type MountsDoc struct {
	Envelope
	MountNamespaces []MountNamespace `json:"mount_namespaces"`
}

// MountNamespace is the mount table of one mount namespace.
type MountNamespace struct {
	Inode     uint64  `json:"inode"`
	PIDs      []int   `json:"pids"`
	ReaderPID int     `json:"reader_pid"`
	Mounts    []Mount `json:"mounts"`
}

// Mount is one line of mountinfo, paths decoded.
type Mount struct {
	ID           int      `json:"mount_id"`
	ParentID     int      `json:"parent_id"`
	Dev          string   `json:"dev"`
	Root         string   `json:"root"`
	MountPoint   string   `json:"mount_point"`
	Options      string   `json:"options"`
	Optional     []string `json:"optional"`
	FSType       string   `json:"fstype"`
	Source       string   `json:"source"`
	SuperOptions string   `json:"super_options"`
}

// Mounts reads mountinfo once per distinct mount namespace of the selected
// processes, through the first of them that can be read.
func (c *Collector) Mounts(ctx context.Context, sel Selector) (*MountsDoc, error) {
	byNS := map[uint64]*MountNamespace{}
	var order []uint64
	env, err := c.forSelected(ctx, "mounts", sel, func(p proc, e *errs) {
		ino, ok := p.ns["mnt"]
		if !ok {
			return
		}
		ns := byNS[ino]
		if ns == nil {
			ns = &MountNamespace{Inode: ino, PIDs: []int{}, Mounts: []Mount{}}
			byNS[ino] = ns
			order = append(order, ino)
		}
		ns.PIDs = append(ns.PIDs, p.pid)
		if ns.ReaderPID != 0 {
			return
		}
		path := c.pidPath(p.pid, "mountinfo")
		b, err := os.ReadFile(path)
		if err != nil {
			e.add(path, err)
			return
		}
		ms, err := procfs.ParseMountinfo(bytes.NewReader(b))
		e.add(path, err)
		ns.ReaderPID = p.pid
		for _, m := range ms {
			ns.Mounts = append(ns.Mounts, Mount{
				ID: m.ID, ParentID: m.ParentID, Dev: fmt.Sprintf("%d:%d", m.Major, m.Minor),
				Root: m.Root, MountPoint: m.MountPoint, Options: m.Options, Optional: m.Optional,
				FSType: m.FSType, Source: m.Source, SuperOptions: m.SuperOptions,
			})
		}
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(order)
	doc := &MountsDoc{Envelope: env, MountNamespaces: []MountNamespace{}}
	for _, ino := range order {
		if byNS[ino].ReaderPID != 0 {
			doc.MountNamespaces = append(doc.MountNamespaces, *byNS[ino])
		}
	}
	return doc, nil
}

// EnvironDoc is the document of the environ artefact.
type EnvironDoc struct {
	Envelope
	Processes []ProcessEnviron `json:"processes"`
}

// ProcessEnviron holds the environment variable names of one process.
// Values are never copied into the document: they hold credentials.
type ProcessEnviron struct {
	PID   int      `json:"pid"`
	Comm  string   `json:"comm"`
	Names []string `json:"names"`
}

// Environ lists the environment variable names of the selected processes.
func (c *Collector) Environ(ctx context.Context, sel Selector) (*EnvironDoc, error) {
	doc := &EnvironDoc{Processes: []ProcessEnviron{}}
	env, err := c.forSelected(ctx, "environ", sel, func(p proc, e *errs) {
		path := c.pidPath(p.pid, "environ")
		b, err := os.ReadFile(path)
		if err != nil {
			e.add(path, err)
			return
		}
		doc.Processes = append(doc.Processes, ProcessEnviron{PID: p.pid, Comm: p.stat.Comm, Names: procfs.ParseEnvironNames(b)})
		clear(b)
	})
	if err != nil {
		return nil, err
	}
	doc.Envelope = env
	return doc, nil
}
