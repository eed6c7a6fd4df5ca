package evidencecli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/eksir/eksir/evidence"
)

// Exit codes, documented in docs/exit-codes.md. ExitCode is the one place
// where errors become exit codes, for every eksir binary.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitBadInput    = 2
	ExitVerifyFail  = 3
	ExitPartial     = 4
	ExitInterrupted = 130
)

// Sentinels are the errors of packages a binary links, beyond evidence,
// that map to an exit code other than ExitFailure. evidencecli imports no
// such package, so each binary passes its own.
type Sentinels struct {
	// BadInput errors mean input that is wrong (exit 2).
	BadInput []error
	// Partial errors mean the command finished but not everything it
	// should have done happened (exit 4).
	Partial []error
}

// ExitCode maps an error to the documented exit code.
func ExitCode(err error, s Sentinels) int {
	var usage *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.Is(err, evidence.ErrVerification):
		return ExitVerifyFail
	case errors.Is(err, ErrPartial), isAny(err, s.Partial):
		return ExitPartial
	case errors.As(err, &usage), errors.Is(err, evidence.ErrInvalidInput), isAny(err, s.BadInput), isCLIUsageError(err):
		return ExitBadInput
	}
	return ExitFailure
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// isCLIUsageError recognises urfave/cli's own flag and argument errors, which
// are plain errors with well-known texts.
func isCLIUsageError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"flag provided but not defined", "Required flag", "invalid value", "flag needs an argument", "No help topic"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Report prints "PROG: error: ..." and any hint to w, and returns the exit
// code.
func Report(w io.Writer, prog string, err error, s Sentinels) int {
	code := ExitCode(err, s)
	if err == nil {
		return code
	}
	if code == ExitInterrupted {
		fmt.Fprintf(w, "%s: interrupted\n", prog)
		return code
	}
	if errors.Is(err, errSilent) {
		return code
	}
	fmt.Fprintf(w, "%s: error: %v\n", prog, err)
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(w, "hint: %s\n", h.Hint())
	}
	return code
}

// usageError marks a command-line mistake (exit 2).
type usageError struct {
	msg  string
	hint string
}

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Hint() string  { return e.hint }

// Usagef returns a command-line mistake (exit 2) with a hint saying what to
// type instead.
func Usagef(hint, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), hint: hint}
}

// ErrPartial reports that the command finished but some steps were skipped
// or failed by policy (exit 4).
var ErrPartial = errors.New("partial")

// Partial returns an error that is ErrPartial, with a message and a hint.
func Partial(msg, hint string) error { return &partialError{msg, hint} }

type partialError struct{ msg, hint string }

func (e *partialError) Error() string { return e.msg }
func (e *partialError) Hint() string  { return e.hint }
func (e *partialError) Unwrap() error { return ErrPartial }

// errSilent marks an error whose details the command already printed (for
// example a verification table); only the exit code remains to be set.
var errSilent = errors.New("already reported")

type silentError struct{ err error }

func (e silentError) Error() string   { return e.err.Error() }
func (e silentError) Unwrap() []error { return []error{e.err, errSilent} }

// Silent wraps err, already reported by the command, so that Report prints
// nothing and only sets its exit code.
func Silent(err error) error { return silentError{err} }

type hinted struct {
	err  error
	hint string
}

func (h hinted) Error() string { return h.err.Error() }
func (h hinted) Unwrap() error { return h.err }
func (h hinted) Hint() string  { return h.hint }

// Hint adds a hint, the responder's next step, to err.
func Hint(err error, hint string) error { return hinted{err, hint} }
