// Command eksir-verify checks sealed eksir evidence: verify and custody
// show, with the same flags, output and exit codes as in eksir.
//
// It is the binary a forensics lab receives beside the archives, as
// age-keygen ships beside age: it links package evidence, the shared CLI
// wiring (cmd/internal/evidencecli) and urfave/cli, and no Kubernetes, AWS
// or CEL package, so a lab can audit all the code that reads the evidence
// and run it alone. `go list -deps ./cmd/eksir-verify` lists it.
package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
)

// version and commit are stamped in by `make build` (-X main.version).
var (
	version = "dev"
	commit  = "none"
)

func newApp() *cli.App {
	return evidencecli.NewApp("eksir-verify", "verify sealed eksir evidence and show its custody chain", nil, []*cli.Command{
		evidencecli.VerifyCommand("eksir-verify"),
		evidencecli.VersionCommand("eksir-verify", version, commit),
		{
			Name:        "custody",
			Usage:       "show the custody chain",
			Subcommands: []*cli.Command{evidencecli.CustodyShowCommand("eksir-verify")},
		},
	})
}

func main() {
	os.Exit(evidencecli.Main(newApp(), evidencecli.Sentinels{}))
}
