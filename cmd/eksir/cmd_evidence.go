package main

// keygen, acquire and seal: the commands that make evidence.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/report"
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
		Description: "Every FILE is checked before anything is copied: it must be a regular file (not a link, which is\n" +
			"never followed, nor a folder, device or FIFO), readable, and its item name (--as, or manual/<file name>)\n" +
			"must be new to the case and allowed in a bag. If a copy fails midway, the items already copied stay\n" +
			"recorded (custody records are never removed) and the error names what was and was not acquired;\n" +
			"a case folder this acquire created is removed again.",
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
			inputs, err := openInputs(c)
			if err != nil {
				return err
			}
			defer func() {
				for _, in := range inputs {
					in.close()
				}
			}()
			cs, err := openCase(c, incident)
			if err != nil {
				return err
			}
			for _, in := range inputs {
				if cs.Has(in.rel) {
					return closeCase(cs, usagef("name the item differently with --as PATH; evidence is never replaced", "data/%s is already in case %s (from %s)", in.rel, incident, in.arg))
				}
			}
			var done []string
			for _, in := range inputs {
				method := c.String("method")
				if method == "" {
					method = "eksir acquire: copied from " + in.src.Path
				}
				it, err := cs.Add(c.Context, in.rel, evidence.ItemInfo{Source: in.src, Method: method}, in.r)
				if err != nil {
					return closeCase(cs, acquireFailed(err, in, done, cs.Created()))
				}
				done = append(done, it.Path)
				if jsonOutput(c) {
					if err := writeJSON(c.App.Writer, it); err != nil {
						return closeCase(cs, err)
					}
				} else {
					fmt.Fprintf(c.App.Writer, "acquired  %s  %d bytes  sha256 %s\n", it.Path, it.Size, it.SHA256)
				}
			}
			return cs.Close()
		},
	}
}

// closeCase closes cs after err. A case folder that this command created
// holds nothing worth keeping after a failure, and is removed.
func closeCase(cs *evidence.Case, err error) error {
	err = errors.Join(err, cs.Close())
	if cs.Created() {
		if rmErr := os.RemoveAll(cs.Dir()); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove the case folder this acquire created: %w", rmErr))
		}
	}
	return err
}

// acquireFailed says which items of this call were acquired before err.
func acquireFailed(err error, in acquireInput, done []string, created bool) error {
	msg := fmt.Sprintf("acquiring %s as data/%s failed", in.arg, in.rel)
	switch {
	case created:
		msg += "; the case folder this acquire created was removed"
	case len(done) > 0:
		msg += fmt.Sprintf("; already acquired and recorded by this call: %s", strings.Join(done, ", "))
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// acquireInput is one argument of acquire, checked and opened.
type acquireInput struct {
	arg string
	rel string
	src evidence.Source
	r   io.Reader
	f   *os.File
}

func (in acquireInput) close() {
	if in.f != nil {
		in.f.Close()
	}
}

// openInputs checks and opens every argument before anything is written:
// regular files only, opened without following a link or blocking on a
// FIFO; allowed item names, none twice.
func openInputs(c *cli.Context) (inputs []acquireInput, err error) {
	defer func() {
		if err != nil {
			for _, in := range inputs {
				in.close()
			}
			inputs = nil
		}
	}()
	host, _ := os.Hostname()
	seen := map[string]string{}
	for _, arg := range c.Args().Slice() {
		in := acquireInput{arg: arg, rel: c.String("as"), src: evidence.Source{Host: host}}
		if arg == "-" {
			if in.rel == "" {
				return inputs, usagef("name the item with --as PATH", "reading stdin needs --as")
			}
			in.r, in.src.Path = os.Stdin, "stdin"
		} else {
			f, err := openRegular(arg)
			if err != nil {
				return inputs, err
			}
			in.f, in.r = f, f
			in.src.Path, _ = filepath.Abs(arg)
			if in.rel == "" {
				in.rel = "manual/" + filepath.Base(arg)
			}
		}
		inputs = append(inputs, in)
		if err := evidence.ValidItemPath(in.rel); err != nil {
			return inputs, fmt.Errorf("%s: %w", arg, err)
		}
		if prev, dup := seen[in.rel]; dup {
			return inputs, usagef("give files with the same name one at a time, each with its own --as PATH",
				"%s and %s would both be acquired as data/%s", prev, arg, in.rel)
		}
		seen[in.rel] = arg
	}
	return inputs, nil
}

// openRegular opens path for reading if it is a regular file, without
// following a final symbolic link or waiting on a FIFO.
func openRegular(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, usagef("check the path and permissions", "cannot read %s: %v", path, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		return nil, usagef("acquire does not follow links: give the file it points to, if that is the evidence", "%s is a symbolic link (to %s)", path, target)
	}
	if fi.IsDir() {
		return nil, usagef("give the files in it, or seal the folder as a bag: eksir seal --incident ID DIR", "%s is a folder; acquire takes files", path)
	}
	if !fi.Mode().IsRegular() {
		return nil, usagef("copy the content into a regular file first, or read it through stdin with --as PATH if that is intended", "%s is not a regular file (%v)", path, fi.Mode().Type())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, usagef("check the path and permissions", "cannot read %s: %v", path, err)
	}
	// The file may have been swapped since Lstat: check what was opened.
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, usagef("the file changed while it was checked; try again", "%s is not a regular file", path)
	}
	return f, nil
}

func sealCommand() *cli.Command {
	return &cli.Command{
		Name:      "seal",
		Usage:     "seal a case (or any folder) into a signed BagIt archive",
		UsageText: "eksir seal --incident ID [DIR] [--compress zstd|none] [--out DIR] [--seal-time TIME] [--adopt] [--no-report] [--custodian-key FILE]...",
		Description: "Without DIR, seals the case folder <case-dir>/<ID>: every item is re-hashed and must match its\n" +
			"acquisition hash, and every custody record's signature must verify. Files in data/ that no custody\n" +
			"record acquired stop the seal unless --adopt records each as recovered; links, devices and FIFOs\n" +
			"stop it always. The incident report of the case, as it is before the seal, goes into the bag as\n" +
			"metadata/report.json and metadata/report.html, covered by the signature (--no-report leaves it out).\n" +
			"With DIR, seals that folder's files as a new bag named ID.\n" +
			"Seal never replaces an archive (or its .sha256 or .custody.jsonl) and never writes into the folder\n" +
			"it seals. --seal-time may not precede the case's last custody record nor lie more than 5 minutes ahead.",
		Flags: []cli.Flag{incFlag, keyFlag, actFlag,
			&cli.StringFlag{Name: "compress", Value: evidence.CompressZstd, Usage: "zstd or none"},
			&cli.StringFlag{Name: "out", Usage: "folder for the archive (default: the case dir)"},
			&cli.StringFlag{Name: "org", EnvVars: []string{"EKSIR_ORGANIZATION"}, Value: "unspecified", Usage: "Source-Organization in bag-info.txt"},
			&cli.TimestampFlag{Name: "seal-time", Layout: time.RFC3339Nano, Usage: "seal time to record (RFC 3339), not before the last custody record nor in the future; the same case sealed twice with the same time gives identical bytes"},
			&cli.BoolFlag{Name: "adopt", Usage: "record files found in the case without a custody record as recovered, with their hash, instead of refusing"},
			custodianKeyFlag,
			noReportFlag,
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
			custodians, err := custodianKeys(c)
			if err != nil {
				return err
			}
			opts := evidence.SealOptions{
				Adopt: c.Bool("adopt"), CustodyKeys: custodians,
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
				if c.Bool("adopt") {
					return usagef("--adopt applies to a case: eksir seal --incident ID --adopt", "--adopt is for sealing a case, not a folder")
				}
				res, err = evidence.SealDir(c.Context, c.Args().First(), opts)
			} else {
				if _, statErr := os.Stat(filepath.Join(c.String(flagCaseDir), incident)); statErr != nil {
					return usagef("check --case-dir and --incident, or pass a folder to seal: eksir seal --incident ID DIR", "no case %s in %s", incident, c.String(flagCaseDir))
				}
				cs, openErr := openCase(c, incident)
				if openErr != nil {
					return openErr
				}
				build := caseReport
				if c.Bool(noReportFlag.Name) {
					build = nil
				}
				res, err = sealCaseWithReport(c.Context, cs, opts, build)
				err = errors.Join(err, cs.Close())
				for _, it := range res.Adopted {
					fmt.Fprintf(c.App.ErrWriter, "warning: adopted %s (%d bytes, sha256 %s): found in the case without a custody record, recorded as recovered\n", it.Path, it.Size, it.SHA256)
				}
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
			if len(res.TagFiles) > 0 {
				fmt.Fprintf(w, "report\t%s (tag files, covered by the signature)\n", strings.Join(res.TagFiles, ", "))
			}
			return w.Flush()
		},
	}
}

// noReportFlag seals a case without the incident report in the bag.
var noReportFlag = &cli.BoolFlag{Name: "no-report", Usage: "seal without the incident report (metadata/report.json and metadata/report.html) in the bag, for example when the report cannot be built"}

// reportBuilder builds the incident report files of the case in caseDir
// for the seal opts describes.
type reportBuilder func(ctx context.Context, caseDir string, opts evidence.SealOptions) (map[string][]byte, error)

// caseReport builds the report of the case as it is at sealing, before the
// "sealed" record, which the report therefore cannot show: JSON and HTML,
// dated at the seal time when one is given (a seal with --seal-time stays
// reproducible) and checked against the keys the seal itself trusts: the
// sealer's and the --custodian-key ones (a case with another examiner's
// records seals, and its report must not call it tampered).
func caseReport(ctx context.Context, caseDir string, opts evidence.SealOptions) (map[string][]byte, error) {
	keys := evidence.KeyRing{}
	if opts.Signer != nil {
		keys.Add(opts.Signer.Public())
	}
	at := opts.SealTime
	if at.IsZero() {
		at = time.Now()
	}
	r, err := report.FromCase(ctx, caseDir, report.Options{Keys: keys, CustodyKeys: opts.CustodyKeys, Now: func() time.Time { return at }, Tool: opts.Tool, AtSeal: true})
	if err != nil {
		return nil, err
	}
	var j, h bytes.Buffer
	if err := report.RenderJSON(&j, r); err != nil {
		return nil, err
	}
	if err := report.RenderHTML(&h, r); err != nil {
		return nil, err
	}
	return map[string][]byte{evidence.ReportJSONTag: j.Bytes(), evidence.ReportHTMLTag: h.Bytes()}, nil
}

// sealCaseWithReport seals cs with the report that build makes of it (no
// report when build is nil). A report that cannot be built stops the seal:
// the hint says how to seal without it.
func sealCaseWithReport(ctx context.Context, cs *evidence.Case, opts evidence.SealOptions, build reportBuilder) (evidence.SealResult, error) {
	if build != nil {
		files, err := build(ctx, cs.Dir(), opts)
		if err != nil {
			return evidence.SealResult{}, evidencecli.Hint(fmt.Errorf("build the incident report to seal into the bag: %w", err),
				"nothing was sealed; fix the cause, or seal without the report: eksir seal --incident "+cs.Incident()+" --no-report")
		}
		if len(files) > 0 {
			opts.TagFiles = files
		}
	}
	return evidence.SealCase(ctx, cs, opts)
}
