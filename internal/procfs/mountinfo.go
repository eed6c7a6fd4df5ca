package procfs

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo (proc(5)), with the octal
// escapes of paths decoded.
type Mount struct {
	ID           int
	ParentID     int
	Major, Minor int
	Root         string
	MountPoint   string
	Options      string   // per-mount options, e.g. "rw,relatime"
	Optional     []string // tagged fields such as "shared:1", "master:2"
	FSType       string
	Source       string
	SuperOptions string
}

// ParseMountinfo parses /proc/PID/mountinfo. The kernel escapes space, tab,
// newline and backslash in paths as \040, \011, \012 and \134; they are
// decoded, so Root, MountPoint and Source hold the real names.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	out := []Mount{}
	err := forEachLine(r, 0, func(line string) error {
		m, err := parseMountLine(line)
		if err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

func parseMountLine(line string) (Mount, error) {
	var m Mount
	// Split on ' ' only: the kernel escapes space, tab, newline and
	// backslash, but a name may hold '\r', '\v' or U+0085, which
	// strings.Fields would also split on.
	f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' })
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 7 || sep < 0 || len(f) < sep+3 {
		return m, errors.New("mountinfo: too few fields or no '-' separator")
	}
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil {
		return m, fmt.Errorf("mount id: %w", err)
	}
	if m.ParentID, err = strconv.Atoi(f[1]); err != nil {
		return m, fmt.Errorf("parent id: %w", err)
	}
	maj, mnr, ok := strings.Cut(f[2], ":")
	if !ok {
		return m, fmt.Errorf("device %q", f[2])
	}
	if m.Major, err = strconv.Atoi(maj); err != nil {
		return m, fmt.Errorf("major: %w", err)
	}
	if m.Minor, err = strconv.Atoi(mnr); err != nil {
		return m, fmt.Errorf("minor: %w", err)
	}
	m.Root = UnescapeOctal(f[3])
	m.MountPoint = UnescapeOctal(f[4])
	m.Options = f[5]
	m.Optional = append([]string{}, f[6:sep]...)
	m.FSType = UnescapeOctal(f[sep+1])
	m.Source = UnescapeOctal(f[sep+2])
	if len(f) > sep+3 {
		m.SuperOptions = f[sep+3]
	}
	return m, nil
}

// UnescapeOctal decodes the \ooo escapes the kernel's seq_file layer writes
// for characters that would break a whitespace-separated line. A backslash
// not followed by three octal digits is kept as is.
func UnescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] <= '3' && isOct(s[i+1]) && isOct(s[i+2]) && isOct(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// EscapeOctal is the inverse of UnescapeOctal for the characters the kernel
// escapes in mountinfo (space, tab, newline, backslash).
func EscapeOctal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, `\%03o`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isOct(c byte) bool { return '0' <= c && c <= '7' }
