package evidence

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidInput marks input the caller can fix: a missing folder, a
	// file name a bag cannot hold, a missing key. Nothing was changed.
	ErrInvalidInput = errors.New("invalid input")
	// ErrVerification marks evidence that failed a check: a hash, the bag
	// structure, a signature or the custody chain.
	ErrVerification = errors.New("verification failed")
)

// Error carries a message, an optional hint for the responder, and the kind
// (ErrInvalidInput or ErrVerification) that errors.Is matches.
type Error struct {
	Kind error
	Msg  string
	hint string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Hint is advice for the responder, printed after the error.
func (e *Error) Hint() string { return e.hint }

func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

func invalidf(hint, format string, args ...any) error {
	return &Error{Kind: ErrInvalidInput, Msg: fmt.Sprintf(format, args...), hint: hint}
}

func invalidErr(err error, hint, format string, args ...any) error {
	return &Error{Kind: ErrInvalidInput, Msg: fmt.Sprintf(format, args...), hint: hint, Err: err}
}
