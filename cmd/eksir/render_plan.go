package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/eksir/eksir/playbooks"
)

// printPlan writes the plan of a playbook's steps and returns how many
// steps cannot be planned or lack a permission.
func printPlan(w io.Writer, playbook, incident string, steps []playbooks.PlannedStep) (failed int) {
	fmt.Fprintf(w, "playbook %s, incident %s: %d steps, nothing changed\n", playbook, incident, len(steps))
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
	return failed
}
