package procfs

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	Start, End uint64
	Perms      string // "r-xp": read, write, execute, p(rivate) or s(hared)
	Offset     uint64
	Major      uint32
	Minor      uint32
	Inode      uint64
	// Path is the backing file or a pseudo-path such as "[heap]"; it is
	// empty for an anonymous mapping and ends in " (deleted)" when the file
	// was unlinked. The kernel escapes only a newline in it, as \012, and
	// not the backslash, so only that escape is decoded; a name holding a
	// literal `\012` cannot be told apart.
	Path string
}

// ParseMaps parses /proc/PID/maps. The path is everything after the inode
// column, leading padding removed, so a file name with spaces stays whole.
func ParseMaps(r io.Reader) ([]Mapping, error) {
	out := []Mapping{}
	err := forEachLine(r, 0, func(line string) error {
		m, err := parseMapLine(line)
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

func parseMapLine(line string) (Mapping, error) {
	var m Mapping
	rest := line
	var fields [5]string
	for i := range fields {
		rest = strings.TrimLeft(rest, " ")
		j := strings.IndexByte(rest, ' ')
		if j < 0 {
			if i < 4 {
				return m, errors.New("maps: too few fields")
			}
			j = len(rest)
		}
		fields[i], rest = rest[:j], rest[j:]
	}
	start, end, ok := strings.Cut(fields[0], "-")
	if !ok {
		return m, fmt.Errorf("maps: address range %q", fields[0])
	}
	var err error
	if m.Start, err = strconv.ParseUint(start, 16, 64); err != nil {
		return m, fmt.Errorf("maps: start: %w", err)
	}
	if m.End, err = strconv.ParseUint(end, 16, 64); err != nil {
		return m, fmt.Errorf("maps: end: %w", err)
	}
	if len(fields[1]) != 4 {
		return m, fmt.Errorf("maps: perms %q", fields[1])
	}
	m.Perms = fields[1]
	if m.Offset, err = strconv.ParseUint(fields[2], 16, 64); err != nil {
		return m, fmt.Errorf("maps: offset: %w", err)
	}
	maj, mnr, ok := strings.Cut(fields[3], ":")
	if !ok {
		return m, fmt.Errorf("maps: device %q", fields[3])
	}
	v, err := strconv.ParseUint(maj, 16, 32)
	if err != nil {
		return m, fmt.Errorf("maps: major: %w", err)
	}
	m.Major = uint32(v)
	if v, err = strconv.ParseUint(mnr, 16, 32); err != nil {
		return m, fmt.Errorf("maps: minor: %w", err)
	}
	m.Minor = uint32(v)
	if m.Inode, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return m, fmt.Errorf("maps: inode: %w", err)
	}
	m.Path = strings.ReplaceAll(strings.TrimLeft(rest, " "), `\012`, "\n")
	return m, nil
}
