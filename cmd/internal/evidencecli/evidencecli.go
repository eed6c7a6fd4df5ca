// Package evidencecli is the command-line wiring that eksir and
// eksir-verify share: the application frame with its global flags, the
// verify and custody show commands, their output, and the mapping of errors
// to exit codes.
//
// It imports urfave/cli, the standard library and package evidence, and
// nothing else of the project, so that eksir-verify, which a forensics lab
// audits and runs alone, links no Kubernetes, AWS or CEL package
// (docs/architecture.md).
package evidencecli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"
)

// Names of the global flags every eksir binary has.
const (
	FlagOutput   = "output"
	FlagLogLevel = "log-level"
	FlagNoColor  = "no-color"
)

// NewApp returns an application named name with the global flags (extra
// ones first), the given commands, and errors left to Main: printed once,
// with their hint and exit code.
func NewApp(name, usage string, extra []cli.Flag, cmds []*cli.Command) *cli.App {
	return &cli.App{
		Name:                 name,
		Usage:                usage,
		EnableBashCompletion: true,
		HideVersion:          true,
		Flags: append(extra,
			&cli.StringFlag{Name: FlagOutput, Aliases: []string{"o"}, Value: "text", Usage: "output format: text or json"},
			&cli.StringFlag{Name: FlagLogLevel, Value: "info", EnvVars: []string{"EKSIR_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: FlagNoColor, EnvVars: []string{"NO_COLOR"}, Usage: "plain output without colour"},
		),
		Before:         setupGlobals,
		Commands:       cmds,
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return Usagef(fmt.Sprintf("run '%s help' or '%s COMMAND --help'", name, name), "%s", err.Error())
		},
	}
}

// Main runs app on the process's arguments, with the context of
// Interrupts, reports the error on stderr and returns the exit code.
func Main(app *cli.App, s Sentinels) int {
	ctx, stop := Interrupts(context.Background())
	defer stop()
	err := app.RunContext(ctx, InterleaveFlags(app, os.Args))
	return Report(os.Stderr, app.Name, err, s)
}

type hardKey struct{}

// Interrupts returns a context that the first SIGINT or SIGTERM cancels,
// carrying a second one (Hard) that the second signal cancels: a command
// may let its running work finish after the first interrupt and cancel it
// on the second. After the second, the signals' default action is back, so
// a third ends the process at once. stop releases the signals.
func Interrupts(parent context.Context) (ctx context.Context, stop func()) {
	hard, cancelHard := context.WithCancel(parent)
	soft, cancelSoft := context.WithCancel(context.WithValue(hard, hardKey{}, hard))
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer signal.Stop(ch)
		for _, cancel := range []context.CancelFunc{cancelSoft, cancelHard} {
			select {
			case <-ch:
				cancel()
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return soft, func() {
		once.Do(func() {
			close(done)
			cancelSoft()
			cancelHard()
		})
	}
}

// Hard returns the context of Interrupts that only the second interrupt
// cancels, or ctx itself when it carries none.
func Hard(ctx context.Context) context.Context {
	if h, ok := ctx.Value(hardKey{}).(context.Context); ok {
		return h
	}
	return ctx
}

func setupGlobals(c *cli.Context) error {
	out := c.String(FlagOutput)
	if out != "text" && out != "json" {
		return Usagef("use --output text or --output json", "unknown output format %q", out)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String(FlagLogLevel))); err != nil {
		return Usagef("use debug, info, warn or error", "unknown log level %q", c.String(FlagLogLevel))
	}
	var h slog.Handler
	if out == "json" {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	} else {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	}
	slog.SetDefault(slog.New(h))
	return nil
}

// JSONOutput reports whether the command's output is JSON (--output json).
func JSONOutput(c *cli.Context) bool { return c.String(FlagOutput) == "json" }

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// OneArg returns the command's single positional argument or a usage error
// naming it.
func OneArg(c *cli.Context, name string) (string, error) {
	if c.NArg() != 1 {
		return "", Usagef(fmt.Sprintf("usage: %s %s %s", c.App.Name, c.Command.Name, strings.ToUpper(name)), "%s expects one %s, got %d arguments", c.Command.Name, name, c.NArg())
	}
	return c.Args().First(), nil
}

// VersionCommand prints the binary's version, commit and Go version, which
// `make build` stamps in: a lab's report names the verifier it ran.
func VersionCommand(prog, version, commit string) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print version, commit and Go version",
		Action: func(c *cli.Context) error {
			info := map[string]string{"version": version, "commit": commit, "go": runtime.Version()}
			if JSONOutput(c) {
				return WriteJSON(c.App.Writer, info)
			}
			fmt.Fprintf(c.App.Writer, "%s %s (commit %s, %s)\n", prog, version, commit, runtime.Version())
			return nil
		},
	}
}
