package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/kube"
	"github.com/eksir/eksir/playbooks"
)

func playbooksList(c *cli.Context) error {
	type row struct{ Name, Description string }
	var rows []row
	for _, n := range playbooks.Builtins() {
		p, err := playbooks.Load(n)
		if err != nil {
			return err
		}
		rows = append(rows, row{n, p.Metadata.Description})
	}
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, rows)
	}
	for _, r := range rows {
		fmt.Fprintf(c.App.Writer, "%s\t%s\n", r.Name, r.Description)
	}
	return nil
}

func playbooksShow(c *cli.Context) error {
	name, err := oneArg(c, "name")
	if err != nil {
		return err
	}
	b, ok := playbooks.Builtin(name)
	if !ok {
		return usagef("list them with 'eksir playbooks list'", "no built-in playbook %q", name)
	}
	_, err = c.App.Writer.Write(b)
	return err
}

func playbooksValidate(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("usage: eksir playbooks validate FILE...", "validate expects playbook files")
	}
	reg := newRegistry()
	var all []error
	for _, f := range c.Args().Slice() {
		if _, err := loadChecked(f, reg); err != nil {
			all = append(all, err)
			continue
		}
		if !jsonOutput(c) {
			fmt.Fprintf(c.App.Writer, "%s: ok\n", f)
		}
	}
	return errors.Join(all...)
}

func loadChecked(arg string, reg *action.Registry) (*playbooks.Checked, error) {
	p, err := playbooks.Load(arg)
	if err != nil {
		return nil, err
	}
	return playbooks.Validate(p, reg)
}

// givenInputs maps target flags to the inputs of their type and --set
// NAME=VALUE to inputs by name.
func givenInputs(c *cli.Context, ck *playbooks.Checked) (map[string]string, error) {
	given := map[string]string{}
	for _, t := range targetFlags {
		v := c.String(t.flag)
		if v == "" {
			continue
		}
		used := false
		for _, in := range ck.Inputs {
			if string(in.Type) == t.inType {
				given[in.Name], used = v, true
			}
		}
		if !used {
			return nil, usagef("see its inputs with 'eksir playbooks show'", "playbook %s takes no %s input (--%s)", ck.Metadata.Name, t.inType, t.flag)
		}
	}
	for _, kv := range c.StringSlice("set") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usagef("use --set NAME=VALUE", "bad --set %q", kv)
		}
		given[k] = v
	}
	return given, nil
}

// clients builds the Kubernetes client, honouring the crash test hook.
func kubeClient(c *cli.Context) (kubernetes.Interface, *kube.Clients, error) {
	cfg, err := kube.RESTConfig(kube.Options{Kubeconfig: c.String(kubeconfigFlag.Name), Context: c.String(kubeCtxFlag.Name)})
	if err != nil {
		return nil, nil, err
	}
	if spec := os.Getenv(playbooks.CrashEnv); spec != "" {
		cfg.WrapTransport = playbooks.CrashTransport(spec)
	}
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("build Kubernetes client: %w", err)
	}
	return typed, &kube.Clients{Config: cfg, Typed: typed}, nil
}

// actionEnv builds what actions may touch. AWS is configured only when one
// of the playbook's actions needs it, so Kubernetes-only playbooks work
// without AWS configuration.
func actionEnv(c *cli.Context, specs []action.Spec, incident string, ev action.Evidence) (*action.Env, error) {
	k, kc, err := kubeClient(c)
	if err != nil {
		return nil, err
	}
	env := &action.Env{Kube: k, RESTConfig: kc.Config, Evidence: ev, Incident: incident,
		Responder: evidence.Actor(c.String(actFlag.Name)), Cluster: c.String(clusterFlag.Name), Log: slog.Default(), Now: time.Now}
	for _, s := range specs {
		if len(s.Permissions.IAM) > 0 {
			env.AWS, err = eaws.Load(c.Context, eaws.Options{Region: c.String(regionFlag.Name)})
			if err != nil {
				return nil, err
			}
			break
		}
	}
	return env, nil
}

// prepared is a playbook checked against the registry with its targets
// resolved, before anything changes.
type prepared struct {
	reg      *action.Registry
	ck       *playbooks.Checked
	in       playbooks.Inputs
	env      *action.Env
	incident string
}

// preparePlaybook loads and validates the playbook argument, picks the
// incident ID (a fresh one when none is given: object names derive from it,
// so a plan shows the names a run would use) and resolves the targets. A bad
// playbook or target changes nothing anywhere, not even the case folder.
func preparePlaybook(c *cli.Context) (*prepared, error) {
	arg, err := oneArg(c, "playbook")
	if err != nil {
		return nil, err
	}
	p := &prepared{reg: newRegistry()}
	if p.ck, err = loadChecked(arg, p.reg); err != nil {
		return nil, err
	}
	given, err := givenInputs(c, p.ck)
	if err != nil {
		return nil, err
	}
	p.incident = c.String(incFlag.Name)
	if p.incident == "" {
		p.incident = playbooks.NewIncidentID(time.Now())
	}
	if err := evidence.ValidIncidentID(p.incident); err != nil {
		return nil, err
	}
	if p.env, err = actionEnv(c, p.ck.Specs(), p.incident, nil); err != nil {
		return nil, err
	}
	if p.in, err = playbooks.Resolve(c.Context, p.ck, given, playbooks.KubeTargets(p.env.Kube)); err != nil {
		return nil, err
	}
	return p, nil
}

func planAction(c *cli.Context) error {
	p, err := preparePlaybook(c)
	if err != nil {
		return err
	}
	ck, in, env, incident := p.ck, p.in, p.env, p.incident
	steps, err := playbooks.Plan(c.Context, ck, in, env)
	if err != nil {
		return err
	}
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, map[string]any{"playbook": ck.Metadata.Name, "incident": incident, "inputs": in, "steps": steps})
	}
	w := c.App.Writer
	fmt.Fprintf(w, "playbook %s, incident %s: %d steps, nothing changed\n", ck.Metadata.Name, incident, len(steps))
	failed := 0
	for i, s := range steps {
		flags := string(s.Kind)
		if s.Approve {
			flags += ", asks approval"
		}
		fmt.Fprintf(w, "\n%d. %s  %s  (%s)\n", i+1, s.ID, s.Action, flags)
		if len(s.Needs) > 0 {
			fmt.Fprintf(w, "   after: %s\n", strings.Join(s.Needs, ", "))
		}
		if s.When != "" {
			if s.When == "false" {
				fmt.Fprintln(w, "   skipped: its when is false for these inputs")
			} else {
				fmt.Fprintf(w, "   when: %s\n", s.When)
			}
		}
		switch {
		case s.Error != "":
			failed++
			fmt.Fprintf(w, "   ERROR: %s\n", s.Error)
		case s.Deferred != "":
			fmt.Fprintf(w, "   planned at run time: %s\n", s.Deferred)
		case s.Plan != nil:
			if s.Plan.Done {
				fmt.Fprintln(w, "   already in place: nothing to change")
			}
			for _, ch := range s.Plan.Changes {
				fmt.Fprintf(w, "   + %s %s", ch.Verb, ch.Object)
				if ch.Detail != "" {
					fmt.Fprintf(w, " (%s)", ch.Detail)
				}
				fmt.Fprintln(w)
			}
			for _, pc := range s.Plan.Checks {
				mark := "allowed"
				if !pc.Allowed {
					mark, failed = "DENIED", failed+1
				}
				fmt.Fprintf(w, "   permission %s: %s %s\n", pc.Permission, mark, pc.Reason)
			}
			for _, wn := range s.Plan.Warnings {
				fmt.Fprintf(w, "   warning: %s\n", wn)
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d steps cannot be planned or lack permissions", evidencecli.ErrPartial, failed)
	}
	return nil
}

// engineOptions gathers what run, resume and release share.
func engineOptions(c *cli.Context, env *action.Env, cs *evidence.Case) playbooks.Options {
	var approved []string
	for _, a := range c.StringSlice("approve") {
		for _, s := range strings.Split(a, ",") {
			if s = strings.TrimSpace(s); s != "" {
				approved = append(approved, s)
			}
		}
	}
	o := playbooks.Options{Env: env, Journal: playbooks.CaseJournal(cs), Yes: c.Bool("yes"), Approved: approved,
		Parallel: c.Int("parallel"), CrashAt: os.Getenv(playbooks.CrashEnv), RestoreCredentials: c.Bool("restore-credentials")}
	if interactive() {
		o.Approver = termApprover{in: bufio.NewReader(os.Stdin), out: c.App.ErrWriter}
		to := &termObserver{w: c.App.ErrWriter}
		o.Observer = to
		if c.App.Metadata == nil {
			c.App.Metadata = map[string]any{}
		}
		c.App.Metadata["observer"] = to
	} else {
		o.Observer = slogObserver{}
	}
	return o
}

// interactive reports whether a person can answer prompts.
func interactive() bool {
	return term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stderr.Fd()))
}

func runAction(c *cli.Context) error {
	p, err := preparePlaybook(c)
	if err != nil {
		return err
	}
	reg, ck, in, env, incident := p.reg, p.ck, p.in, p.env, p.incident
	cs, err := openCase(c, incident)
	if err != nil {
		return err
	}
	defer cs.Close()
	env.Evidence = cs
	o := engineOptions(c, env, cs)
	o.Drill = c.Bool("drill")
	slog.Info("run", "incident", incident, "playbook", ck.Metadata.Name, "case", cs.Dir())
	sum, err := playbooks.Run(c.Context, ck, in, o)
	if err == nil && o.Drill {
		err = drillEnd(c, reg, o, cs, incident, sum)
	}
	return finish(c, incident, cs, sum, err)
}

// journalStep continues an incident from its journal alone: resume and
// release differ only in what the engine does with it.
type journalStep func(context.Context, *action.Registry, playbooks.Options) (*playbooks.Summary, error)

func fromJournal(step journalStep) cli.ActionFunc {
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
		sum, err := step(c.Context, newRegistry(), engineOptions(c, env, cs))
		return finish(c, incident, cs, sum, err)
	}
}

var (
	resumeAction  = fromJournal(playbooks.Resume)
	releaseAction = fromJournal(playbooks.Release)
)

// openForJournal opens an existing case (resume and release never create
// one) and the clients its actions need.
func openForJournal(c *cli.Context, incident string) (*evidence.Case, *action.Env, error) {
	if _, err := os.Stat(filepath.Join(c.String(flagCaseDir), incident)); err != nil {
		return nil, nil, usagef("check --incident and --case-dir", "no case %s in %s", incident, c.String(flagCaseDir))
	}
	cs, err := openCase(c, incident)
	if err != nil {
		return nil, nil, err
	}
	env, err := actionEnv(c, newRegistry().Specs(), incident, cs)
	if err != nil {
		cs.Close()
		return nil, nil, err
	}
	return cs, env, nil
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
// outcome into the error main maps to an exit code.
func finish(c *cli.Context, incident string, cs *evidence.Case, sum *playbooks.Summary, err error) error {
	if o, ok := c.App.Metadata["observer"].(*termObserver); ok {
		o.close()
	}
	if sum != nil {
		if jsonOutput(c) {
			if werr := writeJSON(c.App.Writer, map[string]any{"incident": incident, "case": cs.Dir(), "summary": sum}); werr != nil {
				return werr
			}
		} else {
			summaryTable(c.App.Writer, sum)
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
		return evidencecli.Partial("some steps did not complete (see the table)", fmt.Sprintf("approve with --approve STEP or --yes, then 'eksir resume --incident %s'", incident))
	}
	return nil
}

func summaryTable(w io.Writer, sum *playbooks.Summary) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "STEP\tACTION\tSTATUS\tDURATION\tNOTE\n")
	for _, s := range sum.Steps {
		d := ""
		if s.Duration > 0 {
			d = s.Duration.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Action, s.Status, d, s.Error)
	}
	tw.Flush()
	for _, s := range sum.Steps {
		for _, wn := range s.Warnings {
			fmt.Fprintf(w, "WARNING (%s): %s\n", s.ID, wn)
		}
	}
	if len(sum.Outputs) > 0 {
		keys := make([]string, 0, len(sum.Outputs))
		for k := range sum.Outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "output %s = %v\n", k, sum.Outputs[k])
		}
	}
}

func permissionsAction(c *cli.Context) error {
	reg := newRegistry()
	specs := reg.Specs()
	if names := c.StringSlice("playbook"); len(names) > 0 {
		seen := map[string]bool{}
		specs = nil
		for _, n := range names {
			ck, err := loadChecked(n, reg)
			if err != nil {
				return err
			}
			for _, s := range ck.Specs() {
				if !seen[s.Name] {
					seen[s.Name] = true
					specs = append(specs, s)
				}
			}
		}
	}
	switch c.String("format") {
	case "iam":
		b, err := action.IAMPolicy(specs)
		if err != nil {
			return err
		}
		_, err = c.App.Writer.Write(b)
		return err
	case "rbac":
		b, err := yaml.Marshal(action.ClusterRole("eksir-responder", specs))
		if err != nil {
			return err
		}
		_, err = c.App.Writer.Write(b)
		return err
	}
	return usagef("use --format iam or --format rbac", "unknown format %q", c.String("format"))
}

// termApprover asks on the terminal, showing the concrete change.
type termApprover struct {
	in  *bufio.Reader
	out io.Writer
}

func (a termApprover) Approve(ctx context.Context, step, act string, p action.Plan) (bool, error) {
	fmt.Fprintf(a.out, "\nstep %s (%s) will:\n", step, act)
	for _, ch := range p.Changes {
		fmt.Fprintf(a.out, "  + %s %s %s\n", ch.Verb, ch.Object, ch.Detail)
	}
	for _, pc := range p.Checks {
		fmt.Fprintf(a.out, "  permission %s allowed=%v %s\n", pc.Permission, pc.Allowed, pc.Reason)
	}
	fmt.Fprintf(a.out, "approve step %s? type yes: ", step)
	type answer struct {
		line string
		err  error
	}
	// Read in a goroutine so Ctrl-C is not stuck behind a blocked read.
	ch := make(chan answer, 1)
	go func() {
		line, err := a.in.ReadString('\n')
		ch <- answer{line, err}
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(a.out)
		return false, ctx.Err()
	case ans := <-ch:
		if ans.err != nil && !errors.Is(ans.err, io.EOF) {
			return false, fmt.Errorf("read approval: %w", ans.err)
		}
		return strings.TrimSpace(ans.line) == "yes", nil
	}
}

// slogObserver writes one structured line per event (JSON with --output
// json, through the default logger setupGlobals configured).
type slogObserver struct{}

func (slogObserver) Event(e playbooks.Event) {
	attrs := []any{"step", e.Step, "action", e.Action, "state", e.State}
	if e.Duration > 0 {
		attrs = append(attrs, "duration", e.Duration.String())
	}
	if e.Err != "" {
		attrs = append(attrs, "error", e.Err)
	}
	slog.Info("step", attrs...)
	for _, w := range e.Warnings {
		slog.Warn("step warning", "step", e.Step, "action", e.Action, "warning", w)
	}
}

// termObserver keeps a live step list on the terminal: a line per state
// change, and below it a progress bar of finished steps naming the steps
// in flight. The bar renders only on events (no background goroutine), and
// is cleared before an approval prompt so the prompt stays readable.
type termObserver struct {
	mu      sync.Mutex
	w       io.Writer
	bar     *progressbar.ProgressBar
	running map[string]bool
}

func (o *termObserver) Event(e playbooks.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.running == nil {
		o.running = map[string]bool{}
	}
	if o.bar == nil && e.Total > 0 {
		o.bar = progressbar.NewOptions(e.Total, progressbar.OptionSetWriter(o.w), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(false),
			progressbar.OptionThrottle(0))
	}
	if o.bar != nil {
		_ = o.bar.Clear()
	}
	mark := map[string]string{"running": "…", playbooks.StatusSucceeded: "✓", playbooks.StatusFailed: "✗", "approval": "?"}[e.State]
	if mark == "" {
		mark = "-"
	}
	if e.State == "running" {
		o.running[e.Step] = true
	} else {
		delete(o.running, e.Step)
	}
	line := fmt.Sprintf("%s %-20s %-26s %s", mark, e.Step, e.Action, e.State)
	if e.Duration > 0 {
		line += " " + e.Duration.Round(time.Millisecond).String()
	}
	if e.Err != "" {
		line += "  " + e.Err
	}
	fmt.Fprintf(o.w, "\r%s\n", line)
	for _, w := range e.Warnings {
		fmt.Fprintf(o.w, "  ! WARNING: %s\n", w)
	}
	if e.State == "approval" || o.bar == nil {
		return // the prompt follows; the bar comes back with the next event
	}
	var names []string
	for n := range o.running {
		names = append(names, n)
	}
	sort.Strings(names)
	o.bar.Describe("running " + strings.Join(names, ", "))
	_ = o.bar.Set(e.Done)
}

// close clears the bar before the summary table.
func (o *termObserver) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.bar != nil {
		_ = o.bar.Clear()
		fmt.Fprint(o.w, "\r")
	}
}

// drillEnd finishes a game day: seal the evidence (timing it), then release
// everything, credentials included, without asking: the target is a drill
// target and a game day must leave nothing behind.
func drillEnd(c *cli.Context, reg *action.Registry, o playbooks.Options, cs *evidence.Case, incident string, sum *playbooks.Summary) error {
	signer, err := loadSigner(c)
	if err != nil {
		return err
	}
	if _, err := evidence.SealCase(c.Context, cs, evidence.SealOptions{Incident: incident, OutDir: c.String(flagCaseDir), Signer: signer,
		Examiner: evidence.Actor(c.String(actFlag.Name)), Actor: c.String(actFlag.Name), Tool: toolName(), Collector: collector()}); err != nil {
		return fmt.Errorf("drill: seal: %w", err)
	}
	if sum.Drill != nil && !sum.Started.IsZero() {
		sum.Drill.TimeToSealedEvidence = time.Since(sum.Started)
	}
	o.Yes, o.RestoreCredentials = true, true
	rel, err := playbooks.Release(c.Context, reg, o)
	if err != nil {
		return err
	}
	for _, s := range rel.Steps {
		if s.Status != playbooks.StatusReleased {
			return fmt.Errorf("%w: drill: release of %s: %s %s", evidencecli.ErrPartial, s.ID, s.Status, s.Error)
		}
	}
	return nil
}
