package main

// keygen, acquire and seal: the commands that make evidence.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
)

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
