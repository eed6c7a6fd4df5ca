package evidencecli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/evidence"
)

// PubKeyFlag is the trusted public keys of the commands that verify: the
// sealers' keys, pinned.
var PubKeyFlag = &cli.StringSliceFlag{Name: "pubkey", EnvVars: []string{"EKSIR_TRUSTED_KEYS"}, Usage: "trusted sealer's public key (repeatable); without it the key inside the bag is used and reported as not pinned"}

// CustodianKeyFlag is the public keys trusted to sign custody records (an
// examiner's who acquired into the case, or recorded a hand-over), never
// the seal: a custodian's key alone cannot make a bag verify.
var CustodianKeyFlag = &cli.StringSliceFlag{Name: "custodian-key", Usage: "public key trusted for custody records only (acquisitions and hand-overs by another examiner), never for the seal (repeatable)"}

// CustodianKeys loads the --custodian-key keys.
func CustodianKeys(c *cli.Context) (evidence.KeyRing, error) { return loadKeys(c, CustodianKeyFlag) }

// TrustedKeys loads the --pubkey keys.
func TrustedKeys(c *cli.Context) (evidence.KeyRing, error) { return loadKeys(c, PubKeyFlag) }

func loadKeys(c *cli.Context, f *cli.StringSliceFlag) (evidence.KeyRing, error) {
	keys := evidence.KeyRing{}
	for _, p := range c.StringSlice(f.Name) {
		pub, err := evidence.LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys.Add(pub)
	}
	return keys, nil
}

// VerifyCommand declares `PROG verify ARCHIVE|FOLDER`: it prints a table of
// checks (JSON with --output json) and exits 3 when one fails.
func VerifyCommand(prog string) *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "verify a sealed archive or an extracted bag: hashes, BagIt, signature, custody chain",
		UsageText: prog + " verify ARCHIVE|FOLDER [--pubkey FILE]... [--custodian-key FILE]...",
		Flags:     []cli.Flag{PubKeyFlag, CustodianKeyFlag},
		Action: func(c *cli.Context) error {
			RelaxGC()
			target, rep, err := verifyArg(c)
			if err != nil {
				return err
			}
			if JSONOutput(c) {
				if err := WriteJSON(c.App.Writer, rep); err != nil {
					return err
				}
			} else {
				PrintChecks(c.App.Writer, rep)
			}
			if !rep.OK {
				return Silent(fmt.Errorf("%s: %w", target, evidence.ErrVerification))
			}
			return nil
		},
	}
}

// CustodyShowCommand declares `PROG custody show ARCHIVE|FOLDER`: it prints
// the whole custody chain with a verdict per record and exits 3 when the
// chain does not verify.
func CustodyShowCommand(prog string) *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "print the whole custody chain with a verdict per record",
		UsageText: prog + " custody show ARCHIVE|FOLDER [--pubkey FILE]... [--custodian-key FILE]...",
		Flags:     []cli.Flag{PubKeyFlag, CustodianKeyFlag},
		Action: func(c *cli.Context) error {
			target, rep, err := verifyArg(c)
			if err != nil {
				return err
			}
			if JSONOutput(c) {
				if err := WriteJSON(c.App.Writer, rep.Custody); err != nil {
					return err
				}
			} else {
				PrintCustody(c.App.Writer, rep)
			}
			if !rep.Custody.OK {
				return Silent(fmt.Errorf("custody chain of %s: %w", target, evidence.ErrVerification))
			}
			return nil
		},
	}
}

// verifyArg verifies the command's one archive or folder argument against
// the --pubkey (sealer) and --custodian-key (hand-over) keys.
func verifyArg(c *cli.Context) (string, *evidence.Report, error) {
	target, err := OneArg(c, "archive")
	if err != nil {
		return "", nil, err
	}
	keys, err := TrustedKeys(c)
	if err != nil {
		return "", nil, err
	}
	custodians, err := CustodianKeys(c)
	if err != nil {
		return "", nil, err
	}
	rep, err := evidence.Verify(c.Context, target, evidence.VerifyOptions{Keys: keys, CustodyKeys: custodians})
	return target, rep, err
}

// PrintChecks writes the table of a verification's checks and its verdict.
func PrintChecks(w io.Writer, rep *evidence.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tRESULT\tPATH\tDETAIL")
	for _, ch := range rep.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.Name, strings.ToUpper(ch.Status), ch.Path, ch.Detail)
	}
	tw.Flush()
	if rep.OK {
		fmt.Fprintf(w, "\nverified: %s is intact (bag %s, signer %s)\n", rep.Target, rep.Bag, rep.SignerKeyID)
		return
	}
	fmt.Fprintf(w, "\nFAILED: %d check(s) failed for %s\n", len(rep.Failed()), rep.Target)
}

// PrintCustody writes the custody chain, a line per record with ✓ or ✗.
func PrintCustody(w io.Writer, rep *evidence.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tSEQ\tTIME\tACTION\tACTOR\tKEY\tSUMMARY")
	for _, rc := range rep.Custody.Records {
		mark := "✓"
		if !rc.OK {
			mark = "✗"
		}
		r := rc.Record
		summary := fmt.Sprintf("%d item(s)", len(r.Items))
		var h evidence.HandOver
		if !rc.OK {
			summary = rc.Problem
		} else if json.Unmarshal(r.Details, &h) == nil && h.To != "" {
			summary = fmt.Sprintf("%s -> %s: %s", h.From, h.To, h.Reason)
		} else if len(r.Items) == 1 {
			for p := range r.Items {
				summary = p
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", mark, r.Seq, r.Time, r.Action, r.Actor, short(r.Key), summary)
	}
	tw.Flush()
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// RelaxGC lets the heap grow to five times the live data between
// collections (GOGC=400) unless the user set GOGC. Sealing or verifying
// 100,000 files keeps their names, hashes and index live to the end, and the
// default collector re-marked them so often that it took a fifth of the CPU
// (docs/BENCHMARKS.md); streaming big files makes almost no garbage, so
// their peak memory does not move.
func RelaxGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// TightenGC collects when the heap has grown a quarter above the live data
// (GOGC=25) unless the user set GOGC. An upload's live heap is the transfer
// manager's part buffers, held to the end; what it allocates besides is
// small and short-lived, so collecting often costs little CPU and keeps
// the peak near the buffers instead of twice them.
func TightenGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
}
