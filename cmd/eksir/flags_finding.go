package main

// --finding: a GuardDuty finding fills the playbook's target inputs, so a
// responder starts from the alert.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/finding"
	"github.com/eksir/eksir/playbooks"
)

var findingFlag = &cli.StringFlag{Name: "finding", Usage: "Amazon GuardDuty finding (JSON: the finding, 'aws guardduty get-findings' output with one, or its EventBridge event): fills the target inputs it names; target flags win"}

const findingHint = "give one GuardDuty finding as JSON, for example 'aws guardduty get-findings --detector-id ID --finding-ids ID > finding.json'"

// givenFinding is the finding of --finding and its bytes, kept as evidence.
type givenFinding struct {
	*finding.Finding
	raw  []byte
	path string
}

// findingInputs reads --finding and fills each target input of the
// playbook that given lacks with the finding's target of its type. A
// finding about another cluster than --cluster, or naming no target the
// playbook takes, is a usage error.
func findingInputs(c *cli.Context, ck *playbooks.Checked, given map[string]string) (*givenFinding, error) {
	path := c.String(findingFlag.Name)
	if path == "" {
		return nil, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, usagef(findingHint, "--finding: %v", err)
	}
	defer fh.Close()
	f, raw, err := finding.Read(fh)
	if err != nil {
		return nil, usagef(findingHint, "--finding %s: %v", path, err)
	}
	if cl := c.String(clusterFlag.Name); cl != "" && f.Cluster != "" && cl != f.Cluster {
		return nil, usagef("respond in the finding's cluster (its kubeconfig context), or drop --cluster",
			"--finding %s is about cluster %s, not --cluster %s", path, f.Cluster, cl)
	}
	used := false
	for _, in := range ck.Inputs {
		v, ok := f.Targets[in.Type]
		if !ok {
			continue
		}
		used = true
		if _, set := given[in.Name]; !set {
			given[in.Name] = v
		}
	}
	if !used {
		var names []string
		for t, v := range f.Targets {
			names = append(names, fmt.Sprintf("%s %s", t, v))
		}
		sort.Strings(names)
		return nil, usagef("run a playbook that takes one of them ('eksir playbooks list'), or give its targets with flags",
			"--finding %s (%s) names %s; playbook %s takes none of these", path, f.Type, strings.Join(names, ", "), ck.Metadata.Name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return &givenFinding{Finding: f, raw: raw, path: abs}, nil
}

// findingRel is where a run keeps the finding in the case.
func findingRel(f *finding.Finding) string { return "findings/" + f.ID + ".json" }

// keepFinding adds the finding to the case as evidence, so the case
// records why the run started; a second run from the same finding finds
// it there.
func keepFinding(ctx context.Context, cs *evidence.Case, f *givenFinding) error {
	if f == nil || cs.Has(findingRel(f.Finding)) {
		return nil
	}
	_, err := cs.Add(ctx, findingRel(f.Finding), evidence.ItemInfo{
		Source: evidence.Source{Host: "guardduty", ARN: f.ARN, Region: f.Region, Cluster: f.Cluster, Path: f.path},
		Method: "Amazon GuardDuty finding " + f.Type + " given with --finding"}, bytes.NewReader(f.raw))
	if err != nil {
		return fmt.Errorf("keep the finding in the case: %w", err)
	}
	return nil
}

// findingTargets lists a finding's targets for the plan's header.
func findingTargets(f *finding.Finding) string {
	var s []string
	for _, t := range action.TargetTypes() {
		if v, ok := f.Targets[t]; ok {
			s = append(s, string(t)+" "+v)
		}
	}
	return strings.Join(s, ", ")
}
