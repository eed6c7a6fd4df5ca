package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/eksir/eksir/playbooks"
)

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
	restoredTable(w, sum)
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

// restoredTable lists, for the released steps, each object their undo
// restored or found already clean.
func restoredTable(w io.Writer, sum *playbooks.Summary) {
	n := 0
	for _, s := range sum.Steps {
		n += len(s.Restored)
	}
	if n == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "RELEASED BY\tOBJECT\tOUTCOME\tDETAIL\n")
	for _, s := range sum.Steps {
		for _, r := range s.Restored {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, r.Object, r.Outcome, r.Detail)
		}
	}
	tw.Flush()
}
