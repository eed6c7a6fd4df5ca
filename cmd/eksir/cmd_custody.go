package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
)

func custodyCommand() *cli.Command {
	handOver := func(name, action, usage string) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			UsageText: "eksir custody " + name + " ARCHIVE --from A --to B --reason R [--location L]",
			Flags: []cli.Flag{keyFlag, evidencecli.PubKeyFlag, actFlag,
				&cli.StringFlag{Name: "from", Required: true, Usage: "who releases the evidence"},
				&cli.StringFlag{Name: "to", Required: true, Usage: "who receives it"},
				&cli.StringFlag{Name: "reason", Required: true, Usage: "why"},
				&cli.StringFlag{Name: "location", Usage: "where the hand-over happens"},
			},
			Action: func(c *cli.Context) error {
				archive, err := oneArg(c, "archive")
				if err != nil {
					return err
				}
				signer, err := loadSigner(c)
				if err != nil {
					return err
				}
				keys, err := evidencecli.TrustedKeys(c)
				if err != nil {
					return err
				}
				h := evidence.HandOver{From: c.String("from"), To: c.String("to"), Reason: c.String("reason"), Location: c.String("location")}
				rep, rec, err := evidence.RecordHandOver(c.Context, archive, action, h, signer, c.String(actFlag.Name), time.Now(), evidence.VerifyOptions{Keys: keys})
				if rep != nil && !rep.OK && !jsonOutput(c) {
					evidencecli.PrintChecks(c.App.ErrWriter, rep)
				}
				if err != nil {
					return err
				}
				if jsonOutput(c) {
					return writeJSON(c.App.Writer, rec)
				}
				fmt.Fprintf(c.App.Writer, "recorded %s (record %d) in %s.custody.jsonl after re-verifying the archive\n", action, rec.Seq, archive)
				return nil
			},
		}
	}
	return &cli.Command{
		Name:  "custody",
		Usage: "record hand-overs after sealing and show the custody chain",
		Subcommands: []*cli.Command{
			handOver("transfer", evidence.ActionTransferred, "re-verify the archive and record a signed transfer"),
			handOver("release", evidence.ActionReleased, "re-verify the archive and record its release"),
			evidencecli.CustodyShowCommand("eksir"),
		},
	}
}
