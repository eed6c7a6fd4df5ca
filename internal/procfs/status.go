package procfs

import (
	"fmt"
	"strconv"
	"strings"
)

// Status holds the fields of /proc/PID/status that eksir uses.
type Status struct {
	Name    string    // escaped by the kernel (a newline reads as \n)
	State   string    // e.g. "S (sleeping)"
	Tgid    int       //
	PPid    int       //
	UID     [4]uint32 // real, effective, saved set, filesystem
	GID     [4]uint32 // real, effective, saved set, filesystem
	NSpid   []int     // the PID in each nested PID namespace, outermost first
	Threads int       //
	// Kthread is "1" on kernels that report it (6.x), "" otherwise.
	Kthread string
}

// ParseStatus parses the content of /proc/PID/status. Unknown keys are
// ignored; a malformed value of a known key is an error.
func ParseStatus(b []byte) (Status, error) {
	var s Status
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Name":
			s.Name = val
		case "State":
			s.State = val
		case "Tgid":
			s.Tgid, err = strconv.Atoi(val)
		case "PPid":
			s.PPid, err = strconv.Atoi(val)
		case "Threads":
			s.Threads, err = strconv.Atoi(val)
		case "Kthread":
			s.Kthread = val
		case "Uid":
			err = parseIDs(val, &s.UID)
		case "Gid":
			err = parseIDs(val, &s.GID)
		case "NSpid":
			s.NSpid = s.NSpid[:0]
			for f := range strings.FieldsSeq(val) {
				n, perr := strconv.Atoi(f)
				if perr != nil {
					err = perr
					break
				}
				s.NSpid = append(s.NSpid, n)
			}
		}
		if err != nil {
			return s, fmt.Errorf("status: %s: %w", key, err)
		}
	}
	return s, nil
}

func parseIDs(val string, dst *[4]uint32) error {
	f := strings.Fields(val)
	if len(f) != 4 {
		return fmt.Errorf("%d ids, want 4", len(f))
	}
	for i := range f {
		n, err := strconv.ParseUint(f[i], 10, 32)
		if err != nil {
			return err
		}
		dst[i] = uint32(n)
	}
	return nil
}
