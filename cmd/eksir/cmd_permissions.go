package main

import (
	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"

	"github.com/eksir/eksir/action"
)

// permissionsCommand declares `eksir permissions`.
func permissionsCommand() *cli.Command {
	return &cli.Command{
		Name: "permissions", Usage: "print the least-privilege IAM policy or ClusterRole for playbooks' actions",
		UsageText: "eksir permissions [--playbook P]... --format iam|rbac",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "playbook", Usage: "built-in name or file (repeatable); default: every registered action"},
			&cli.StringFlag{Name: "format", Value: "iam", Usage: "iam (policy JSON) or rbac (ClusterRole YAML)"},
		},
		Action: permissionsAction,
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
