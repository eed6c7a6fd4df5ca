package evidencecli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
)

func TestExitCode(t *testing.T) {
	badInput, partial := errors.New("their bad input"), errors.New("their partial")
	s := Sentinels{BadInput: []error{badInput}, Partial: []error{partial}}
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, ExitOK},
		{errors.New("disk on fire"), ExitFailure},
		{wrap(context.Canceled), ExitInterrupted},
		{wrap(evidence.ErrVerification), ExitVerifyFail},
		{Silent(wrap(evidence.ErrVerification)), ExitVerifyFail},
		{wrap(evidence.ErrInvalidInput), ExitBadInput},
		{Usagef("hint", "bad"), ExitBadInput},
		{errors.New(`Required flag "scenario" not set`), ExitBadInput},
		{wrap(badInput), ExitBadInput},
		{Partial("some steps", "resume"), ExitPartial},
		{wrap(ErrPartial), ExitPartial},
		{wrap(partial), ExitPartial},
		{Hint(wrap(partial), "h"), ExitPartial},
	} {
		if got := ExitCode(tc.err, s); got != tc.code {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.code)
		}
	}
	// A sentinel another binary passes means nothing to this one.
	if got := ExitCode(wrap(badInput), Sentinels{}); got != ExitFailure {
		t.Errorf("unlisted sentinel: %d", got)
	}
}

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{Hint(errors.New("no lab running"), "start one"), "prog: error: no lab running\nhint: start one\n"},
		{Usagef("use --format iam", "unknown format %q", "x"), "prog: error: unknown format \"x\"\nhint: use --format iam\n"},
		{Silent(evidence.ErrVerification), ""},
		{wrap2(context.Canceled), "prog: interrupted\n"},
	} {
		var b bytes.Buffer
		Report(&b, "prog", tc.err, Sentinels{})
		if b.String() != tc.want {
			t.Errorf("Report(%v) = %q, want %q", tc.err, b.String(), tc.want)
		}
	}
}

func wrap2(err error) error { return fmt.Errorf("run: %w", err) }

// TestInterrupts sends this process real signals: the first cancels the
// context, the second its Hard context.
func TestInterrupts(t *testing.T) {
	ctx, stop := Interrupts(context.Background())
	defer stop()
	hard := Hard(ctx)
	if hard == ctx || hard.Err() != nil {
		t.Fatal("no hard context")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first interrupt did not cancel the context")
	}
	if hard.Err() != nil {
		t.Fatal("the first interrupt cancelled the hard context")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hard.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the second interrupt did not cancel the hard context")
	}
	if Hard(context.Background()) != context.Background() {
		t.Error("Hard of a plain context is not the context itself")
	}
}
