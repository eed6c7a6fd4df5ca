package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/report"
)

// Report formats.
const (
	formatHTML     = "html"
	formatMarkdown = "md"
	formatJSON     = "json"
)

var formatFlag = &cli.StringFlag{Name: "format", Usage: "html, md or json (default: from --out's extension, .html, .json or .md; else md)"}

// reportCommand declares `eksir report`.
func reportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "write the incident report of a case or a sealed archive (integrity first, containment, timeline, evidence, custody, how to verify and release)",
		UsageText: "eksir report --incident ID [--format html|md|json] [--out FILE] [--pubkey FILE]... [--key FILE] [--custodian-key FILE]...\n" +
			"eksir report ARCHIVE [--format html|md|json] [--out FILE] [--pubkey FILE]... [--custodian-key FILE]...",
		Flags: []cli.Flag{incFlag, formatFlag, &cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "file to write (0600); default: standard output"},
			evidencecli.PubKeyFlag, custodianKeyFlag, keyFlag},
		Action: reportAction,
	}
}

// reportFormat picks the format: --format, else --out's extension, else
// Markdown, which reads on a terminal and pastes into a ticket.
func reportFormat(c *cli.Context) (string, error) {
	f := strings.ToLower(c.String(formatFlag.Name))
	if f == "" {
		switch strings.ToLower(filepath.Ext(c.String("out"))) {
		case ".html", ".htm":
			f = formatHTML
		case ".json":
			f = formatJSON
		default:
			f = formatMarkdown
		}
	}
	switch f {
	case formatMarkdown, "markdown":
		return formatMarkdown, nil
	case formatJSON:
		return formatJSON, nil
	case formatHTML:
		return formatHTML, nil
	}
	return "", usagef("use html, md or json", "unknown --format %q", f)
}

// reportKeys are the trusted keys: --pubkey, and the public half of --key
// (the examiner's own key signed the case's records).
func reportKeys(c *cli.Context) (keys, custodians evidence.KeyRing, err error) {
	if keys, err = evidencecli.TrustedKeys(c); err != nil {
		return nil, nil, err
	}
	if p := c.String(keyFlag.Name); p != "" {
		s, err := evidence.LoadSigner(p)
		if err != nil {
			return nil, nil, err
		}
		keys.Add(s.Public())
	}
	custodians, err = custodianKeys(c)
	return keys, custodians, err
}

func reportAction(c *cli.Context) error {
	format, err := reportFormat(c)
	if err != nil {
		return err
	}
	keys, custodians, err := reportKeys(c)
	if err != nil {
		return err
	}
	o := report.Options{Keys: keys, CustodyKeys: custodians, Tool: toolName(), CaseRoot: c.String(flagCaseDir)}
	var r *report.Report
	switch {
	case c.NArg() > 1 || (c.NArg() == 1 && c.String(incFlag.Name) != ""):
		return usagef("give either --incident ID (a case) or one ARCHIVE", "too many sources")
	case c.NArg() == 1:
		r, err = report.FromArchive(c.Context, c.Args().First(), o)
	default:
		id, ierr := requireIncident(c)
		if ierr != nil {
			return evidencecli.Hint(ierr, "or give a sealed ARCHIVE")
		}
		r, err = report.FromCase(c.Context, filepath.Join(c.String(flagCaseDir), id), o)
	}
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	switch format {
	case formatJSON:
		err = report.RenderJSON(&buf, r)
	case formatHTML:
		err = report.RenderHTML(&buf, r)
	default:
		err = report.RenderMarkdown(&buf, r)
	}
	if err != nil {
		return err
	}
	if out := c.String("out"); out != "" {
		if err := writePrivate(out, buf.Bytes()); err != nil {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "eksir: report written to %s\n", out)
	} else if _, err := c.App.Writer.Write(buf.Bytes()); err != nil {
		return err
	}
	if r.Integrity.Status == report.IntegrityTampered {
		return evidencecli.Hint(fmt.Errorf("%s failed verification (the report lists the failed checks at the top): %w", r.Source.Path, evidence.ErrVerification),
			"preserve the source as it is and escalate; the report was still written")
	}
	return nil
}

// writePrivate writes b to path with mode 0600 through a temporary file in
// the same folder, so a reader never sees half a report.
func writePrivate(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write report: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
