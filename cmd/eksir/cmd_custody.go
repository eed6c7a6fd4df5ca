package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
)

// handOverWho says what each required hand-over flag names.
var handOverWho = map[string]string{"from": "who releases the evidence", "to": "who receives it", "reason": "why it is handed over"}

func custodyCommand() *cli.Command {
	handOver := func(name, action, usage string) *cli.Command {
		return &cli.Command{
			Name:      name,
			Usage:     usage,
			UsageText: "eksir custody " + name + " ARCHIVE --from A --to B --reason R [--location L] [--custodian-key FILE]...",
			Flags: []cli.Flag{keyFlag, evidencecli.PubKeyFlag, custodianKeyFlag, actFlag,
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
				for _, f := range []string{"from", "to", "reason"} {
					if strings.TrimSpace(c.String(f)) == "" {
						return usagef(fmt.Sprintf("say %s, for example --from 'alice@ir-team' --to 'bob@forensics-lab' --reason 'analysis'", handOverWho[f]),
							"--%s is empty", f)
					}
				}
				keys, err := evidencecli.TrustedKeys(c)
				if err != nil {
					return err
				}
				custodians, err := custodianKeys(c)
				if err != nil {
					return err
				}
				h := evidence.HandOver{From: c.String("from"), To: c.String("to"), Reason: c.String("reason"), Location: c.String("location")}
				rep, rec, err := evidence.RecordHandOver(c.Context, archive, action, h, signer, c.String(actFlag.Name), time.Now(),
					evidence.VerifyOptions{Keys: keys, CustodyKeys: custodians})
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
