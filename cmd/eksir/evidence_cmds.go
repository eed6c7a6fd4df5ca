package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
)

// Flags shared by the commands that sign or verify evidence.
var (
	keyFlag = &cli.StringFlag{Name: "key", EnvVars: []string{"EKSIR_SIGNING_KEY"}, Usage: "Ed25519 private key (PEM) that signs custody records and seals"}
	incFlag = &cli.StringFlag{Name: "incident", Aliases: []string{"i"}, Usage: "incident ID (letters, digits, '.', '_', '-')"}
	actFlag = &cli.StringFlag{Name: "examiner", EnvVars: []string{"EKSIR_EXAMINER"}, Usage: "who acts, as recorded in custody records (default: OS user@host)"}
)

func loadSigner(c *cli.Context) (*evidence.Signer, error) {
	p := c.String(keyFlag.Name)
	if p == "" {
		return nil, usagef("create one with 'eksir keygen --out FILE', then pass --key FILE or set EKSIR_SIGNING_KEY", "no signing key: evidence is never written unsigned")
	}
	return evidence.LoadSigner(p)
}

func collector() evidence.Collector {
	host, _ := os.Hostname()
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return evidence.Collector{OSUser: name, Host: host}
}

func requireIncident(c *cli.Context) (string, error) {
	id := c.String(incFlag.Name)
	if id == "" {
		return "", usagef("pass --incident ID, for example --incident INC-2041", "--incident is required")
	}
	return id, evidence.ValidIncidentID(id)
}

func openCase(c *cli.Context, incident string) (*evidence.Case, error) {
	signer, err := loadSigner(c)
	if err != nil {
		return nil, err
	}
	return evidence.OpenCase(c.Context, evidence.CaseOptions{
		Dir: c.String(flagCaseDir), Incident: incident, Signer: signer, Tool: toolName(),
		Collector: collector(), Actor: c.String(actFlag.Name),
	})
}

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "create an Ed25519 key pair for signing evidence",
		UsageText: "eksir keygen [--out FILE]",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "out", Value: "eksir.key", Usage: "private key file (0600); the public key goes to FILE.pub"}},
		Action: func(c *cli.Context) error {
			out := c.String("out")
			pub, id, err := evidence.GenerateKey(out)
			if err != nil {
				return err
			}
			if jsonOutput(c) {
				return writeJSON(c.App.Writer, map[string]string{"private_key": out, "public_key": pub, "key_id": id})
			}
			fmt.Fprintf(c.App.Writer, "private key  %s (keep it secret; mode 0600)\npublic key   %s (publish it to the forensics lab)\nkey ID       %s\n", out, pub, id)
			return nil
		},
	}
}

func acquireCommand() *cli.Command {
	return &cli.Command{
		Name:      "acquire",
		Usage:     "add local files (or stdin) to a case as evidence, hashed as they are copied",
		UsageText: "eksir acquire --incident ID [--as PATH] FILE... | -",
		Flags: []cli.Flag{incFlag, keyFlag, actFlag,
			&cli.StringFlag{Name: "as", Usage: "path under data/ in the case (required for stdin; default manual/<file name>)"},
			&cli.StringFlag{Name: "method", Usage: "how the data was obtained, for the record (default: copied from the local file)"},
		},
		Action: func(c *cli.Context) error {
			incident, err := requireIncident(c)
			if err != nil {
				return err
			}
			if c.NArg() == 0 || (c.NArg() > 1 && c.String("as") != "") {
				return usagef("usage: eksir acquire --incident ID [--as PATH] FILE... (or - for stdin, with --as)", "acquire expects files, and --as only with one")
			}
			cs, err := openCase(c, incident)
			if err != nil {
				return err
			}
			defer cs.Close()
			host, _ := os.Hostname()
			for _, arg := range c.Args().Slice() {
				rel, method := c.String("as"), c.String("method")
				var r io.Reader
				src := evidence.Source{Host: host}
				if arg == "-" {
					if rel == "" {
						return usagef("name the item with --as PATH", "reading stdin needs --as")
					}
					r, src.Path = os.Stdin, "stdin"
				} else {
					f, err := os.Open(arg)
					if err != nil {
						return usagef("check the path and permissions", "cannot read %s: %v", arg, err)
					}
					defer f.Close()
					abs, _ := filepath.Abs(arg)
					r, src.Path = f, abs
					if rel == "" {
						rel = "manual/" + filepath.Base(arg)
					}
				}
				if method == "" {
					method = "eksir acquire: copied from " + src.Path
				}
				it, err := cs.Add(c.Context, rel, evidence.ItemInfo{Source: src, Method: method}, r)
				if err != nil {
					return err
				}
				if jsonOutput(c) {
					if err := writeJSON(c.App.Writer, it); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(c.App.Writer, "acquired  %s  %d bytes  sha256 %s\n", it.Path, it.Size, it.SHA256)
				}
			}
			return nil
		},
	}
}

func sealCommand() *cli.Command {
	return &cli.Command{
		Name:      "seal",
		Usage:     "seal a case (or any folder) into a signed BagIt archive",
		UsageText: "eksir seal --incident ID [DIR] [--compress zstd|none] [--out DIR]",
		Description: "Without DIR, seals the case folder <case-dir>/<ID>: every item is re-hashed and must match its\n" +
			"acquisition hash. With DIR, seals that folder's files as a new bag named ID.",
		Flags: []cli.Flag{incFlag, keyFlag, actFlag,
			&cli.StringFlag{Name: "compress", Value: evidence.CompressZstd, Usage: "zstd or none"},
			&cli.StringFlag{Name: "out", Usage: "folder for the archive (default: the case dir)"},
			&cli.StringFlag{Name: "org", EnvVars: []string{"EKSIR_ORGANIZATION"}, Value: "unspecified", Usage: "Source-Organization in bag-info.txt"},
			&cli.TimestampFlag{Name: "seal-time", Layout: time.RFC3339Nano, Usage: "seal time to record (RFC 3339); the same case sealed twice with the same time gives identical bytes"},
		},
		Action: func(c *cli.Context) error {
			evidencecli.RelaxGC()
			incident, err := requireIncident(c)
			if err != nil {
				return err
			}
			if c.NArg() > 1 {
				return usagef("usage: eksir seal --incident ID [DIR]", "seal takes at most one folder")
			}
			signer, err := loadSigner(c)
			if err != nil {
				return err
			}
			opts := evidence.SealOptions{
				Incident: incident, OutDir: c.String("out"), Compress: c.String("compress"), Signer: signer,
				SourceOrganization: c.String("org"), Examiner: evidence.Actor(c.String(actFlag.Name)), Actor: c.String(actFlag.Name),
				Tool: toolName(), Collector: collector(),
			}
			if opts.OutDir == "" {
				opts.OutDir = c.String(flagCaseDir)
			}
			if t := c.Timestamp("seal-time"); t != nil {
				opts.SealTime = *t
			}
			var res evidence.SealResult
			if c.NArg() == 1 {
				res, err = evidence.SealDir(c.Context, c.Args().First(), opts)
			} else {
				if _, statErr := os.Stat(filepath.Join(c.String(flagCaseDir), incident)); statErr != nil {
					return usagef("check --case-dir and --incident, or pass a folder to seal: eksir seal --incident ID DIR", "no case %s in %s", incident, c.String(flagCaseDir))
				}
				cs, openErr := openCase(c, incident)
				if openErr != nil {
					return openErr
				}
				res, err = evidence.SealCase(c.Context, cs, opts)
				err = errors.Join(err, cs.Close())
			}
			if err != nil {
				return err
			}
			if jsonOutput(c) {
				return writeJSON(c.App.Writer, res)
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "sealed\t%s\n", incident)
			fmt.Fprintf(w, "archive\t%s (%d bytes)\n", res.Archive, res.ArchiveBytes)
			fmt.Fprintf(w, "sha256\t%s (%s)\n", res.SHA256, res.Sidecar)
			fmt.Fprintf(w, "payload\t%d bytes in %d files\n", res.PayloadBytes, res.PayloadFiles)
			fmt.Fprintf(w, "custody\t%d records, head %s\n", res.CustodyRecords, res.CustodyHead)
			fmt.Fprintf(w, "signed by\tkey %s\n", res.KeyID)
			return w.Flush()
		},
	}
}

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
