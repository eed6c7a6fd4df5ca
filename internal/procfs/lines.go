package procfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds one line of a /proc file. mountinfo lines hold two escaped
// paths of up to PATH_MAX each plus options, so 1 MiB leaves ample room while
// still stopping a runaway read.
const maxLine = 1 << 20

// maxLineErrors caps how many malformed lines a LineErrors keeps, so that a
// file full of garbage cannot blow up the output document.
const maxLineErrors = 20

// LineError is one line a parser could not understand.
type LineError struct {
	Line int    // 1-based line number in the input
	Err  string // what was wrong with it
}

// LineErrors is returned, alongside the values that did parse, when some
// lines of a file were malformed. Total counts every bad line; Errors holds
// at most the first few.
type LineErrors struct {
	Errors []LineError
	Total  int
}

// Error summarises the malformed lines.
func (e *LineErrors) Error() string {
	if len(e.Errors) == 0 {
		return "no malformed lines"
	}
	first := e.Errors[0]
	if e.Total == 1 {
		return fmt.Sprintf("line %d: %s", first.Line, first.Err)
	}
	return fmt.Sprintf("%d malformed lines, first: line %d: %s", e.Total, first.Line, first.Err)
}

func (e *LineErrors) add(line int, err error) {
	e.Total++
	if len(e.Errors) < maxLineErrors {
		e.Errors = append(e.Errors, LineError{Line: line, Err: err.Error()})
	}
}

// err returns nil when nothing was recorded, so callers can return it directly.
func (e *LineErrors) err() error {
	if e.Total == 0 {
		return nil
	}
	return e
}

// forEachLine calls fn for every line of r after skipping the first skip
// lines (table headers). Errors returned by fn are collected per line; a read
// error ends the scan and is joined to them.
func forEachLine(r io.Reader, skip int, fn func(line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var bad LineErrors
	n := 0
	for sc.Scan() {
		n++
		if n <= skip {
			continue
		}
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if err := fn(line); err != nil {
			bad.add(n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return errors.Join(bad.err(), fmt.Errorf("read: %w", err))
	}
	return bad.err()
}
