package main

import (
	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/playbooks"
)

// flagCaseDir is eksir's own global flag; the others are evidencecli's.
const flagCaseDir = "case-dir"

// Short names for the helpers eksir shares with eksir-verify.
var (
	usagef     = evidencecli.Usagef
	oneArg     = evidencecli.OneArg
	jsonOutput = evidencecli.JSONOutput
	writeJSON  = evidencecli.WriteJSON
)

// sentinels are the errors of the packages eksir links that mean an exit
// code of their own (evidencecli.ExitCode maps them).
var sentinels = evidencecli.Sentinels{BadInput: []error{playbooks.ErrInvalid}, Partial: []error{playbooks.ErrNotReleased}}

func newApp() *cli.App {
	return evidencecli.NewApp("eksir", "incident response and forensics for Amazon EKS",
		[]cli.Flag{&cli.StringFlag{Name: flagCaseDir, Value: "./cases", EnvVars: []string{"EKSIR_CASE_DIR"}, Usage: "folder that holds one case folder per incident"}},
		[]*cli.Command{
			evidencecli.VersionCommand("eksir", version, commit),
			keygenCommand(),
			acquireCommand(),
			sealCommand(),
			evidencecli.VerifyCommand("eksir"),
			custodyCommand(),
			labCommand(),
			playbooksCommand(),
			planCommand(),
			runCommand(),
			resumeCommand(),
			releaseCommand(),
			statusCommand(),
			reportCommand(),
			permissionsCommand(),
		})
}
