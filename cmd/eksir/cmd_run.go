package main

// run, resume, release and status: the commands that drive the engine
// through an incident's journal.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/ui"
	"github.com/eksir/eksir/playbooks"
)

func approvalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "approve every step that asks for approval"},
		&cli.StringSliceFlag{Name: "approve", Usage: "approve these steps (STEP,STEP...)"},
		&cli.IntFlag{Name: "parallel", Value: 4, Usage: "run at most N independent steps at once"},
	}
}

// containWithoutCaptureFlag is the responder's override of the
// capture-first rule, journaled in the custody log as their decision.
var containWithoutCaptureFlag = &cli.BoolFlag{Name: "contain-without-capture",
	Usage: "let containment run although a capture it requires failed or missed items (journaled in the custody log as your decision)"}

// runCommand declares `eksir run`.
func runCommand() *cli.Command {
	return &cli.Command{
		Name: "run", Usage: "run a playbook, journaling every step into the incident's custody log; into a case holding a run of the same playbook, add new pods to it",
		UsageText: "eksir run PLAYBOOK [target flags] [--finding FILE] [--incident ID] [--yes | --approve STEP,...] [--parallel N] [--contain-without-capture] [--drill]",
		Flags: append(append(targetCLIFlags(), approvalFlags()...), containWithoutCaptureFlag,
			&cli.BoolFlag{Name: "drill", Usage: "game day: seal, release (asking unless --yes) and print a drill score; only for playbooks marked drill: true and targets labelled " + playbooks.DrillLabel + "=true (the pod or its namespace)"}),
		Action: runAction,
	}
}

// resumeCommand declares `eksir resume`.
func resumeCommand() *cli.Command {
	return &cli.Command{
		Name: "resume", Usage: "continue an interrupted run from its journal; no step's side effect happens twice",
		UsageText: "eksir resume --incident ID [--yes | --approve STEP,...] [--parallel N] [--contain-without-capture]",
		Flags:     append([]cli.Flag{incFlag, keyFlag, actFlag, kubeconfigFlag, kubeCtxFlag, regionFlag, profileFlag, roleARNFlag, externalIDFlag, awsTimeoutFlag, clusterFlag, containWithoutCaptureFlag}, approvalFlags()...),
		Action:    fromJournal(playbooks.Resume, "resume"),
	}
}

// releaseCommand declares `eksir release`.
func releaseCommand() *cli.Command {
	return &cli.Command{
		Name: "release", Usage: "undo the run's containment steps in reverse order; evidence is never deleted",
		UsageText: "eksir release --incident ID [--yes | --approve STEP,...] [--restore-credentials]",
		Flags: append([]cli.Flag{incFlag, keyFlag, actFlag, kubeconfigFlag, kubeCtxFlag, regionFlag, profileFlag, roleARNFlag, externalIDFlag, awsTimeoutFlag, clusterFlag,
			&cli.BoolFlag{Name: "restore-credentials", Usage: "also re-enable revoked credentials"}}, approvalFlags()...),
		Action: fromJournal(playbooks.Release, "release"),
	}
}

// statusCommand declares `eksir status`.
func statusCommand() *cli.Command {
	return &cli.Command{
		Name: "status", Usage: "show each step's state from the incident's journal",
		UsageText: "eksir status --incident ID",
		Flags:     []cli.Flag{incFlag, keyFlag, actFlag},
		Action:    statusAction,
	}
}

// engineOptions gathers what run, resume and release share. The observer
// draws on the terminal when a person is there; the caller closes it with
// the returned function before printing the summary.
func engineOptions(c *cli.Context, env *action.Env, cs *evidence.Case) (playbooks.Options, func()) {
	var approved []string
	for _, a := range c.StringSlice("approve") {
		for _, s := range strings.Split(a, ",") {
			if s = strings.TrimSpace(s); s != "" {
				approved = append(approved, s)
			}
		}
	}
	o := playbooks.Options{Env: env, Connector: connector{c, env.Incident}, Journal: playbooks.CaseJournal(cs), Yes: c.Bool("yes"), Approved: approved,
		Parallel: c.Int("parallel"), RestoreCredentials: c.Bool("restore-credentials"), ContainWithoutCapture: c.Bool(containWithoutCaptureFlag.Name),
		Stop: c.Context}
	stopNotice := interruptNotice(c)
	if !ui.Interactive() {
		o.Observer = ui.Log{}
		return o, stopNotice
	}
	o.Approver = ui.NewApprover(os.Stdin, c.App.ErrWriter)
	p := ui.NewProgress(c.App.ErrWriter)
	o.Observer = p
	env.Progress = p.ActionProgress
	return o, func() { stopNotice(); p.Close() }
}

// engineContext is the context the engine's running steps work under:
// only the second interrupt cancels it (the first is Options.Stop).
func engineContext(c *cli.Context) context.Context { return evidencecli.Hard(c.Context) }

// interruptNotice tells the responder, at the first interrupt, what
// happens now and what a second one does; the returned function stops
// watching.
func interruptNotice(c *cli.Context) func() {
	stop := context.AfterFunc(c.Context, func() {
		if engineContext(c).Err() == nil {
			fmt.Fprintln(c.App.ErrWriter, "eksir: interrupted: the running steps finish and no new step starts; interrupt again to cancel the running steps")
		}
	})
	return func() { stop() }
}

func runAction(c *cli.Context) error {
	p, err := preparePlaybook(c)
	if err != nil {
		return err
	}
	reg, ck, in, env, incident := p.reg, p.ck, p.in, p.env, p.incident
	// Bad input found by a step's plan (a service account that does not
	// exist) stops the run before the case exists: nothing changes.
	if _, err := playbooks.Plan(c.Context, ck, in, env); errors.Is(err, action.ErrBadInput) {
		return err
	}
	if c.Bool("drill") {
		// Before the case exists: a refused drill leaves nothing behind.
		if err := playbooks.CheckDrill(c.Context, ck, in, env.Kube); err != nil {
			return err
		}
	}
	cs, err := openCase(c, incident)
	if err != nil {
		return err
	}
	defer cs.Close()
	if err := keepFinding(c.Context, cs, p.finding); err != nil {
		return err
	}
	env.Evidence = cs
	o, closeUI := engineOptions(c, env, cs)
	slog.Info("run", "incident", incident, "playbook", ck.Metadata.Name, "case", cs.Dir())
	var sum *playbooks.Summary
	if c.Bool("drill") {
		sum, err = playbooks.Drill(engineContext(c), ck, in, reg, o, sealCase(c, cs, incident))
	} else {
		sum, err = playbooks.Run(engineContext(c), ck, in, o)
	}
	closeUI()
	return finish(c, incident, cs, sum, err, "resume")
}

// sealCase returns the seal of a drill: the case into the case folder,
// signed with --key, with the incident report in the bag, as `eksir seal
// --incident` would.
func sealCase(c *cli.Context, cs *evidence.Case, incident string) func(context.Context) error {
	return func(ctx context.Context) error {
		signer, err := loadSigner(c)
		if err != nil {
			return err
		}
		_, err = sealCaseWithReport(ctx, cs, evidence.SealOptions{Incident: incident, OutDir: c.String(flagCaseDir), Signer: signer,
			Examiner: evidence.Actor(c.String(actFlag.Name)), Actor: c.String(actFlag.Name), Tool: toolName(), Collector: collector()}, caseReport)
		return err
	}
}

// journalStep continues an incident from its journal alone: resume and
// release differ only in what the engine does with it.
type journalStep func(context.Context, *action.Registry, playbooks.Options) (*playbooks.Summary, error)

func fromJournal(step journalStep, verb string) cli.ActionFunc {
	return func(c *cli.Context) error {
		incident, err := requireIncident(c)
		if err != nil {
			return err
		}
		cs, env, err := openForJournal(c, incident)
		if err != nil {
			return err
		}
		defer cs.Close()
		o, closeUI := engineOptions(c, env, cs)
		sum, err := step(engineContext(c), newRegistry(), o)
		closeUI()
		return finish(c, incident, cs, sum, err, verb)
	}
}

func statusAction(c *cli.Context) error {
	incident, err := requireIncident(c)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.String(flagCaseDir), incident)); err != nil {
		return usagef("check --incident and --case-dir", "no case %s in %s", incident, c.String(flagCaseDir))
	}
	cs, err := openCase(c, incident)
	if err != nil {
		return err
	}
	defer cs.Close()
	sum, err := playbooks.Status(playbooks.CaseJournal(cs), newRegistry())
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, sum)
	}
	summaryTable(c.App.Writer, sum)
	return nil
}

// finish prints the summary and where the evidence is, and turns the
// outcome into the error main maps to an exit code; again is the command
// that continues (resume, or release after a release).
func finish(c *cli.Context, incident string, cs *evidence.Case, sum *playbooks.Summary, err error, again string) error {
	if sum != nil {
		if jsonOutput(c) {
			if werr := writeJSON(c.App.Writer, map[string]any{"incident": incident, "case": cs.Dir(), "summary": sum}); werr != nil {
				return werr
			}
		} else {
			summaryTable(c.App.Writer, sum)
			if sum.Interrupted {
				fmt.Fprintf(c.App.Writer, "\ninterrupted: what was not started is not-run; continue with 'eksir %s --incident %s'\n", again, incident)
			}
			if sum.Drill != nil {
				fmt.Fprintf(c.App.Writer, "\ndrill score: time to contain %s, time to sealed evidence %s, steps failed %d, skipped %d\n",
					sum.Drill.TimeToContain.Round(time.Millisecond), sum.Drill.TimeToSealedEvidence.Round(time.Millisecond), sum.Drill.StepsFailed, sum.Drill.StepsSkipped)
			}
			fmt.Fprintf(c.App.Writer, "\nincident %s\nevidence and journal: %s\nnext: eksir status --incident %s; eksir seal --incident %s\n", incident, cs.Dir(), incident, incident)
		}
	}
	if err != nil {
		return err
	}
	if sum != nil && sum.Partial() {
		return evidencecli.Partial("some steps did not complete (see the table)", fmt.Sprintf("fix the cause or approve with --approve STEP or --yes, then 'eksir %s --incident %s'", again, incident))
	}
	return nil
}
