package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/playbooks"
)

// playbooksCommand declares `eksir playbooks list|show|validate`.
func playbooksCommand() *cli.Command {
	return &cli.Command{
		Name:  "playbooks",
		Usage: "list, show and validate playbooks",
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list built-in playbooks, one a line, name first", Action: playbooksList},
			{Name: "show", Usage: "print a built-in playbook's YAML exactly as embedded", UsageText: "eksir playbooks show NAME", Action: playbooksShow},
			{Name: "validate", Usage: "validate playbook files against the action registry", UsageText: "eksir playbooks validate FILE...", Action: playbooksValidate},
		},
	}
}

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
