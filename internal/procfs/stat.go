package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PFKthread is the PF_KTHREAD bit of Stat.Flags, set for kernel threads.
const PFKthread = 0x00200000

// Stat holds the fields of /proc/PID/stat that eksir uses. Field numbers in
// the comments are those of proc(5).
type Stat struct {
	PID        int    // (1)
	Comm       string // (2) without the surrounding parentheses
	State      string // (3) one letter: R, S, D, Z, T, t, X, I...
	PPID       int    // (4)
	PGRP       int    // (5)
	Session    int    // (6)
	TTYNr      int    // (7)
	Flags      uint64 // (9) PF_* bits
	UTime      uint64 // (14) clock ticks
	STime      uint64 // (15) clock ticks
	NumThreads int    // (20)
	StartTime  uint64 // (22) clock ticks after boot
	VSize      uint64 // (23) bytes
	RSS        int64  // (24) pages
}

// ParseStat parses the content of /proc/PID/stat.
//
// comm is whatever the process set (up to 15 bytes) and may itself contain
// ") " or newlines, so the fields after it are found from the LAST ')' in the
// file: the kernel writes nothing after comm that could hold one.
func ParseStat(b []byte) (Stat, error) {
	var s Stat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return s, errors.New("stat: no (comm) field")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return s, fmt.Errorf("stat: pid: %w", err)
	}
	s.PID = pid
	s.Comm = string(b[open+1 : closing])
	rest := strings.Fields(string(b[closing+1:]))
	// rest[0] is field 3; proc(5) has at least 52 fields on current kernels,
	// but only those up to RSS (24) are required here.
	if len(rest) < 22 {
		return s, fmt.Errorf("stat: %d fields after comm, want at least 22", len(rest))
	}
	s.State = rest[0]
	ints := []struct {
		dst *int
		idx int
	}{{&s.PPID, 1}, {&s.PGRP, 2}, {&s.Session, 3}, {&s.TTYNr, 4}, {&s.NumThreads, 17}}
	for _, f := range ints {
		if *f.dst, err = strconv.Atoi(rest[f.idx]); err != nil {
			return s, fmt.Errorf("stat: field %d: %w", f.idx+3, err)
		}
	}
	uints := []struct {
		dst *uint64
		idx int
	}{{&s.Flags, 6}, {&s.UTime, 11}, {&s.STime, 12}, {&s.StartTime, 19}, {&s.VSize, 20}}
	for _, f := range uints {
		if *f.dst, err = strconv.ParseUint(rest[f.idx], 10, 64); err != nil {
			return s, fmt.Errorf("stat: field %d: %w", f.idx+3, err)
		}
	}
	if s.RSS, err = strconv.ParseInt(rest[21], 10, 64); err != nil {
		return s, fmt.Errorf("stat: field 24: %w", err)
	}
	return s, nil
}

// StateName names a one-letter process state of /proc/PID/stat.
func StateName(state string) string {
	switch state {
	case "R":
		return "running"
	case "S":
		return "sleeping"
	case "D":
		return "disk-sleep"
	case "Z":
		return "zombie"
	case "T":
		return "stopped"
	case "t":
		return "tracing-stop"
	case "X", "x":
		return "dead"
	case "K":
		return "wakekill"
	case "W":
		return "waking"
	case "P":
		return "parked"
	case "I":
		return "idle"
	}
	return "unknown"
}

// ParseBootTime returns the btime line of /proc/stat: the boot time in
// seconds since the Unix epoch.
func ParseBootTime(b []byte) (int64, error) {
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("btime: %w", err)
			}
			return t, nil
		}
	}
	return 0, errors.New("no btime line")
}
