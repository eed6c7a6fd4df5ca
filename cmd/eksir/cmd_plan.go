package main

import (
	"cmp"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/playbooks"
)

// planCommand declares `eksir plan`.
func planCommand() *cli.Command {
	return &cli.Command{
		Name: "plan", Usage: "resolve targets and show every step's concrete change and permission check; changes nothing",
		UsageText: "eksir plan PLAYBOOK " + targetUsage() + " [--set NAME=VALUE]... [--finding FILE] [--incident ID]",
		Flags:     targetCLIFlags(), Action: planAction,
	}
}

func planAction(c *cli.Context) error {
	p, err := preparePlaybook(c)
	if err != nil {
		return err
	}
	ck, in, env, incident := p.ck, p.in, p.env, p.incident
	steps, err := playbooks.Plan(c.Context, ck, in, env)
	if err != nil && !errors.Is(err, action.ErrBadInput) {
		return err
	}
	bad := err
	if jsonOutput(c) {
		out := map[string]any{"playbook": ck.Metadata.Name, "incident": incident, "inputs": in, "steps": steps}
		if p.finding != nil {
			out["finding"] = p.finding.Finding
		}
		if werr := writeJSON(c.App.Writer, out); werr != nil {
			return werr
		}
		return bad
	}
	if f := p.finding; f != nil {
		fmt.Fprintf(c.App.Writer, "finding %s: %s (severity %g, account %s, region %s, cluster %s): %s\n\n",
			f.ID, f.Type, f.Severity, f.Account, f.Region, cmp.Or(f.Cluster, "not named"), findingTargets(f.Finding))
	}
	failed := printPlan(c.App.Writer, ck.Metadata.Name, incident, steps)
	if bad != nil {
		return bad
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d steps cannot be planned or lack permissions", evidencecli.ErrPartial, failed)
	}
	return nil
}
