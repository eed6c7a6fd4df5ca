package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/playbooks"
)

// Exit codes, documented in docs/exit-codes.md. This file is the one place
// where errors become exit codes.
const (
	exitOK          = 0
	exitFailure     = 1
	exitBadInput    = 2
	exitVerifyFail  = 3
	exitPartial     = 4
	exitInterrupted = 130
)

// usageError marks a command-line mistake (exit 2).
type usageError struct {
	msg  string
	hint string
}

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Hint() string  { return e.hint }

func usagef(hint, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), hint: hint}
}

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	var usage *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, evidence.ErrVerification):
		return exitVerifyFail
	case errors.Is(err, errPartial):
		return exitPartial
	case errors.As(err, &usage), isAny(err, badInputErrors), isCLIUsageError(err):
		return exitBadInput
	}
	return exitFailure
}

// badInputErrors are the packages' sentinels for input that is wrong (exit 2).
var badInputErrors = []error{evidence.ErrInvalidInput, playbooks.ErrInvalid}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// errPartial reports that the command finished but some steps were skipped or
// failed by policy (exit 4).
var errPartial = errors.New("partial")

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

// reportError prints "eksir: error: ..." and any hint, and returns the exit code.
func reportError(w io.Writer, err error) int {
	code := exitCode(err)
	if err == nil {
		return code
	}
	if code == exitInterrupted {
		fmt.Fprintln(w, "eksir: interrupted")
		return code
	}
	if errors.Is(err, errSilent) {
		return code
	}
	fmt.Fprintf(w, "eksir: error: %v\n", err)
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(w, "hint: %s\n", h.Hint())
	}
	return code
}

// errSilent wraps an error whose details the command already printed (for
// example a verification table); only the exit code remains to be set.
var errSilent = errors.New("already reported")

type silentError struct{ err error }

func (e silentError) Error() string { return e.err.Error() }
func (e silentError) Unwrap() []error {
	return []error{e.err, errSilent}
}

// hinted adds a hint to an error that has none.
type hinted struct {
	err  error
	hint string
}

func (h hinted) Error() string { return h.err.Error() }
func (h hinted) Unwrap() error { return h.err }
func (h hinted) Hint() string  { return h.hint }
