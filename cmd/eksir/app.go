package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"
)

// Global flag names, shared by the commands that read them.
const (
	flagCaseDir  = "case-dir"
	flagOutput   = "output"
	flagLogLevel = "log-level"
	flagNoColor  = "no-color"
)

func newApp() *cli.App {
	return &cli.App{
		Name:                 "eksir",
		Usage:                "incident response and forensics for Amazon EKS",
		Version:              version,
		EnableBashCompletion: true,
		HideVersion:          true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagCaseDir, Value: "./cases", EnvVars: []string{"EKSIR_CASE_DIR"}, Usage: "folder that holds one case folder per incident"},
			&cli.StringFlag{Name: flagOutput, Aliases: []string{"o"}, Value: "text", Usage: "output format: text or json"},
			&cli.StringFlag{Name: flagLogLevel, Value: "info", EnvVars: []string{"EKSIR_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: flagNoColor, EnvVars: []string{"NO_COLOR"}, Usage: "plain output without colour"},
		},
		Before: setupGlobals,
		Commands: append([]*cli.Command{
			versionCommand(),
			keygenCommand(),
			acquireCommand(),
			sealCommand(),
			verifyCommand(),
			custodyCommand(),
			labCommand(),
		}, playbookCommands()...),
		// Errors are printed once, by main, with their hint and exit code.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &usageError{msg: err.Error(), hint: "run 'eksir help' or 'eksir COMMAND --help'"}
		},
	}
}

func setupGlobals(c *cli.Context) error {
	out := c.String(flagOutput)
	if out != "text" && out != "json" {
		return usagef("use --output text or --output json", "unknown output format %q", out)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String(flagLogLevel))); err != nil {
		return usagef("use debug, info, warn or error", "unknown log level %q", c.String(flagLogLevel))
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

func jsonOutput(c *cli.Context) bool { return c.String(flagOutput) == "json" }

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print version, commit and Go version",
		Action: func(c *cli.Context) error {
			info := map[string]string{"version": version, "commit": commit, "go": runtime.Version()}
			if jsonOutput(c) {
				return writeJSON(c.App.Writer, info)
			}
			fmt.Fprintf(c.App.Writer, "eksir %s (commit %s, %s)\n", version, commit, runtime.Version())
			return nil
		},
	}
}

// oneArg returns the single positional argument or a usage error naming it.
func oneArg(c *cli.Context, name string) (string, error) {
	if c.NArg() != 1 {
		return "", usagef(fmt.Sprintf("usage: eksir %s %s", c.Command.Name, strings.ToUpper(name)), "%s expects one %s, got %d arguments", c.Command.Name, name, c.NArg())
	}
	return c.Args().First(), nil
}
