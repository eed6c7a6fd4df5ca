// Package ui renders a playbook run for the responder: on a terminal, a
// live step list with a progress bar and approval prompts showing each
// concrete change; elsewhere, one structured log line per event. It knows
// the engine only through its Observer and Approver interfaces and knows
// nothing of command-line parsing.
package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/playbooks"
)

// Interactive reports whether a person can answer prompts: stdin and
// stderr are both terminals.
func Interactive() bool {
	return term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stderr.Fd()))
}

// Approver asks on a terminal, showing the step's concrete change; only
// "yes" approves. It implements playbooks.Approver.
type Approver struct {
	in  *bufio.Reader
	out io.Writer
}

// NewApprover returns an Approver that prompts on out and reads answers
// from in.
func NewApprover(in io.Reader, out io.Writer) *Approver {
	return &Approver{in: bufio.NewReader(in), out: out}
}

// Approve prints the plan of step, every one of its warnings included,
// and asks; it returns ctx's error when interrupted while waiting for the
// answer.
func (a *Approver) Approve(ctx context.Context, step, act string, p action.Plan) (bool, error) {
	fmt.Fprintf(a.out, "\nstep %s (%s) will:\n", step, act)
	for _, ch := range p.Changes {
		fmt.Fprintf(a.out, "  + %s %s %s\n", ch.Verb, ch.Object, ch.Detail)
	}
	if p.Done {
		fmt.Fprintf(a.out, "  (already in place: running it changes nothing)\n")
	}
	for _, pc := range p.Checks {
		fmt.Fprintf(a.out, "  permission %s allowed=%v %s\n", pc.Permission, pc.Allowed, pc.Reason)
	}
	// Warnings come last, right above the question, so that "not enforced"
	// is what the responder reads before answering.
	for _, w := range p.Warnings {
		fmt.Fprintf(a.out, "  ! WARNING: %s\n", w)
	}
	fmt.Fprintf(a.out, "approve step %s? type yes: ", step)
	type answer struct {
		line string
		err  error
	}
	// Read in a goroutine so Ctrl-C is not stuck behind a blocked read.
	ch := make(chan answer, 1)
	go func() {
		line, err := a.in.ReadString('\n')
		ch <- answer{line, err}
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(a.out)
		return false, ctx.Err()
	case ans := <-ch:
		if ans.err != nil && !errors.Is(ans.err, io.EOF) {
			return false, fmt.Errorf("read approval: %w", ans.err)
		}
		return strings.TrimSpace(ans.line) == "yes", nil
	}
}

// Log writes one structured line per event through the default slog
// logger (JSON with --output json). It implements playbooks.Observer.
type Log struct{}

// Event logs e, and each of its warnings at warning level.
func (Log) Event(e playbooks.Event) {
	attrs := []any{"step", e.Step, "action", e.Action, "state", e.State}
	if e.Duration > 0 {
		attrs = append(attrs, "duration", e.Duration.String())
	}
	if e.Err != "" {
		attrs = append(attrs, "error", e.Err)
	}
	slog.Info("step", attrs...)
	for _, w := range e.Warnings {
		slog.Warn("step warning", "step", e.Step, "action", e.Action, "warning", w)
	}
}

// Progress keeps a live step list on a terminal: a line per state change,
// and below it a progress bar of finished steps naming the steps in
// flight. The bar renders only on events (no background goroutine), and is
// cleared before an approval prompt so the prompt stays readable. It
// implements playbooks.Observer; its owner calls Close before printing
// anything else.
type Progress struct {
	mu      sync.Mutex
	w       io.Writer
	bar     *progressbar.ProgressBar
	running map[string]bool
}

// NewProgress returns a Progress that draws on w.
func NewProgress(w io.Writer) *Progress {
	return &Progress{w: w, running: map[string]bool{}}
}

// Event draws e.
func (o *Progress) Event(e playbooks.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bar == nil && e.Total > 0 {
		o.bar = progressbar.NewOptions(e.Total, progressbar.OptionSetWriter(o.w), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(false),
			progressbar.OptionThrottle(0))
	}
	if o.bar != nil {
		_ = o.bar.Clear()
	}
	mark := map[string]string{"running": "…", playbooks.StatusSucceeded: "✓", playbooks.StatusFailed: "✗", "approval": "?"}[e.State]
	if mark == "" {
		mark = "-"
	}
	if e.State == "running" {
		o.running[e.Step] = true
	} else {
		delete(o.running, e.Step)
	}
	line := fmt.Sprintf("%s %-20s %-26s %s", mark, e.Step, e.Action, e.State)
	if e.Duration > 0 {
		line += " " + e.Duration.Round(time.Millisecond).String()
	}
	if e.Err != "" {
		line += "  " + e.Err
	}
	fmt.Fprintf(o.w, "\r%s\n", line)
	for _, w := range e.Warnings {
		fmt.Fprintf(o.w, "  ! WARNING: %s\n", w)
	}
	if e.State == "approval" || o.bar == nil {
		return // the prompt follows; the bar comes back with the next event
	}
	var names []string
	for n := range o.running {
		names = append(names, n)
	}
	sort.Strings(names)
	o.bar.Describe("running " + strings.Join(names, ", "))
	_ = o.bar.Set(e.Done)
}

// ActionProgress shows how far a long step is (action.Env.Progress: an
// EBS snapshot's percent) as the bar's description, so a step that waits
// for minutes does not look stuck. It draws nothing before the bar exists.
func (o *Progress) ActionProgress(step, what string, done, total int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bar == nil || total <= 0 {
		return
	}
	o.bar.Describe(fmt.Sprintf("%s: %s %d%%", step, what, done*100/total))
}

// Close clears the bar, so that the summary table that follows starts on
// a clean line.
func (o *Progress) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bar != nil {
		_ = o.bar.Clear()
		fmt.Fprint(o.w, "\r")
	}
}

// TransferBar draws a byte-count bar for one long transfer on w (a
// terminal): update is called with the bytes done so far and the total,
// from any goroutine; finish clears the bar.
func TransferBar(w io.Writer, what string) (update func(done, total int64), finish func()) {
	var mu sync.Mutex
	var bar *progressbar.ProgressBar
	update = func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if bar == nil {
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(30),
				progressbar.OptionShowBytes(true), progressbar.OptionSetDescription(what), progressbar.OptionSetElapsedTime(true),
				progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		_ = bar.Set64(done)
	}
	finish = func() {
		mu.Lock()
		defer mu.Unlock()
		if bar != nil {
			_ = bar.Clear()
			fmt.Fprint(w, "\r")
		}
	}
	return update, finish
}
