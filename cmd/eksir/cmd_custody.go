package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/handoff"
	"github.com/eksir/eksir/internal/ui"
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
			uploadCommand(),
			fetchCommand(),
			evidencecli.CustodyShowCommand("eksir"),
		},
	}
}

// s3Client builds the S3 client for a hand-off from the AWS flags.
func s3Client(ctx context.Context, c *cli.Context) (*s3.Client, error) {
	t := c.Duration(awsTimeoutFlag.Name)
	if t <= 0 {
		return nil, usagef("give a positive duration such as 30s", "--aws-timeout %s must be positive", t)
	}
	cfg, err := eaws.Load(ctx, eaws.Options{Region: c.String(regionFlag.Name), Profile: c.String(profileFlag.Name), Timeout: t})
	if err != nil {
		return nil, err
	}
	return eaws.S3(cfg), nil
}

func uploadCommand() *cli.Command {
	return &cli.Command{
		Name:  "upload",
		Usage: "re-verify the archive, store it in an S3 bucket under Object Lock, read it back and record the transfer",
		UsageText: "eksir custody upload ARCHIVE --bucket B [--prefix P] [--retain-until T | --retain-days N] [--mode governance|compliance]\n" +
			"   [--legal-hold] [--allow-unlocked] [--verify-readback=false] [--to WHO] [--reason WHY]",
		Flags: append(s3HandOverFlags(),
			&cli.StringFlag{Name: "bucket", Required: true, Usage: "evidence bucket (created with Object Lock)"},
			&cli.StringFlag{Name: "prefix", Usage: "key prefix, such as cases/INCIDENT/"},
			&cli.TimestampFlag{Name: "retain-until", Layout: time.RFC3339, Usage: "Object Lock retain-until date (RFC 3339)"},
			&cli.IntFlag{Name: "retain-days", Usage: "Object Lock retention in days from now (default: the bucket's default retention)"},
			&cli.StringFlag{Name: "mode", Usage: "Object Lock mode: governance or compliance (default: the bucket's, else governance)"},
			&cli.BoolFlag{Name: "legal-hold", Usage: "also place a legal hold on every object"},
			&cli.BoolFlag{Name: "allow-unlocked", Usage: "accept a bucket without Object Lock (not WORM: anyone with write access can delete the evidence)"},
			&cli.BoolFlag{Name: "verify-readback", Value: true, Usage: "hash the stored object read back from S3 before recording the transfer"},
			&cli.IntFlag{Name: "part-size", Value: handoff.DefaultPartSize >> 20, Usage: "multipart part size in MiB (5 to 5120); each part in flight is held in memory"},
			&cli.IntFlag{Name: "concurrency", Value: handoff.DefaultConcurrency, Usage: "parts sent at once"},
			&cli.StringFlag{Name: "to", Usage: "who receives the evidence (default: the bucket URL)"},
			&cli.StringFlag{Name: "reason", Value: "hand-off to the evidence bucket", Usage: "why"},
		),
		Action: func(c *cli.Context) error {
			archive, err := oneArg(c, "archive")
			if err != nil {
				return err
			}
			signer, err := loadSigner(c)
			if err != nil {
				return err
			}
			if c.IsSet("retain-until") && c.IsSet("retain-days") {
				return usagef("give one of them", "--retain-until and --retain-days both given")
			}
			vo, err := verifyOptions(c)
			if err != nil {
				return err
			}
			client, err := s3Client(c.Context, c)
			if err != nil {
				return err
			}
			o := handoff.UploadOptions{Bucket: c.String("bucket"), Prefix: c.String("prefix"), RetainDays: c.Int("retain-days"),
				Mode: c.String("mode"), LegalHold: c.Bool("legal-hold"), AllowUnlocked: c.Bool("allow-unlocked"),
				SkipReadBack: !c.Bool("verify-readback"), Signer: signer, Actor: c.String(actFlag.Name), Verify: vo, Warn: c.App.ErrWriter,
				HandOver: evidence.HandOver{From: evidence.Actor(c.String(actFlag.Name)), To: c.String("to"), Reason: c.String("reason")}}
			if mib := c.Int("part-size"); mib < 5 || mib > 5120 {
				return usagef("S3 parts are 5 MiB to 5 GiB: give --part-size 5 to 5120", "--part-size %d", mib)
			}
			if n := c.Int("concurrency"); n < 1 || n > 64 {
				return usagef("give 1 to 64", "--concurrency %d", n)
			}
			o.PartSize, o.Concurrency = int64(c.Int("part-size"))<<20, c.Int("concurrency")
			if t := c.Timestamp("retain-until"); t != nil {
				o.RetainUntil = *t
			}
			if o.HandOver.To == "" {
				o.HandOver.To = "s3://" + o.Bucket
			}
			evidencecli.TightenGC()
			if ui.Interactive() {
				update, finish := ui.TransferBar(c.App.ErrWriter, "uploading "+filepath.Base(archive))
				defer finish()
				o.Progress = update
			}
			res, err := handoff.Upload(c.Context, client, archive, o)
			if res != nil && res.Report != nil && !res.Report.OK && !jsonOutput(c) {
				evidencecli.PrintChecks(c.App.ErrWriter, res.Report)
			}
			if err != nil {
				return err
			}
			if jsonOutput(c) {
				return writeJSON(c.App.Writer, res)
			}
			a := res.Archive
			fmt.Fprintf(c.App.Writer, "stored s3://%s/%s version %s (%d bytes, sha256 %s", a.Bucket, a.Key, a.VersionID, res.Size, res.SHA256)
			if a.LockMode != "" {
				fmt.Fprintf(c.App.Writer, ", %s until %s", a.LockMode, a.RetainUntil)
			}
			if a.LegalHold {
				fmt.Fprint(c.App.Writer, ", legal hold")
			}
			fmt.Fprintln(c.App.Writer, ")")
			fmt.Fprintf(c.App.Writer, "stored %s and %s; recorded transferred (record %d) in %s.custody.jsonl\n", res.Sidecar.Key, res.Custody.Key, res.Record.Seq, archive)
			return nil
		},
	}
}

// s3HandOverFlags are the flags upload and fetch share: who signs and whom
// to trust, and how to reach AWS.
func s3HandOverFlags() []cli.Flag {
	return []cli.Flag{keyFlag, evidencecli.PubKeyFlag, custodianKeyFlag, actFlag, regionFlag, profileFlag, awsTimeoutFlag}
}

func fetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "fetch",
		Usage:     "download an archive from S3, verify it as 'eksir verify' does and record its receipt",
		UsageText: "eksir custody fetch s3://BUCKET/KEY --out DIR [--version-id V] [--pubkey FILE] [--custodian-key FILE]...",
		Flags: append(s3HandOverFlags(),
			&cli.StringFlag{Name: "out", Required: true, Usage: "folder that receives the archive, its .sha256 and its custody log"},
			&cli.StringFlag{Name: "version-id", Usage: "object version (default: the latest)"},
			&cli.StringFlag{Name: "reason", Value: "fetched from the evidence bucket", Usage: "why"},
		),
		Action: func(c *cli.Context) error {
			u, err := oneArg(c, "s3://BUCKET/KEY")
			if err != nil {
				return err
			}
			bucket, key, err := handoff.ParseS3URL(u)
			if err != nil {
				return usagef("name the archive object, for example s3://eksir-evidence-123456789012-us-east-1/inc-1.tar.zst", "%v", err)
			}
			signer, err := loadSigner(c)
			if err != nil {
				return err
			}
			vo, err := verifyOptions(c)
			if err != nil {
				return err
			}
			client, err := s3Client(c.Context, c)
			if err != nil {
				return err
			}
			res, err := handoff.Fetch(c.Context, client, bucket, key, handoff.FetchOptions{VersionID: c.String("version-id"), OutDir: c.String("out"),
				Signer: signer, Actor: c.String(actFlag.Name), Verify: vo, HandOver: evidence.HandOver{Reason: c.String("reason")}})
			if res != nil && res.Report != nil && !res.Report.OK && !jsonOutput(c) {
				evidencecli.PrintChecks(c.App.ErrWriter, res.Report)
			}
			if err != nil {
				return err
			}
			if jsonOutput(c) {
				return writeJSON(c.App.Writer, res)
			}
			fmt.Fprintf(c.App.Writer, "fetched s3://%s/%s version %s to %s; verified; recorded received (record %d) in %s.custody.jsonl\n",
				bucket, key, res.Object.VersionID, res.Archive, res.Record.Seq, res.Archive)
			return nil
		},
	}
}

// verifyOptions are the trusted sealer and custodian keys.
func verifyOptions(c *cli.Context) (evidence.VerifyOptions, error) {
	keys, err := evidencecli.TrustedKeys(c)
	if err != nil {
		return evidence.VerifyOptions{}, err
	}
	custodians, err := custodianKeys(c)
	if err != nil {
		return evidence.VerifyOptions{}, err
	}
	return evidence.VerifyOptions{Keys: keys, CustodyKeys: custodians}, nil
}
