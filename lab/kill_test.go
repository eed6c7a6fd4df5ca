package lab_test

import (
	"bytes"
	"os"
	"strconv"
)

// processRuns reports whether pid names a live process, read straight from
// /proc rather than through lab's own bookkeeping. A zombie (exited, not yet
// reaped by its parent) does not run.
func processRuns(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}
