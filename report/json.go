package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// RenderJSON writes r as indented JSON (two spaces, members in the
// model's order, map keys sorted), the form docs/report.schema.json
// describes. Lists left nil are written as [], never null, so the same
// report always renders to the same bytes and consumers never meet null.
func RenderJSON(w io.Writer, r *Report) error {
	c := withEmptyLists(*r)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return fmt.Errorf("render report as JSON: %w", err)
	}
	return nil
}

// orEmpty returns l, or an empty list when it is nil.
func orEmpty[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

// withEmptyLists returns a copy of r whose lists (and the lists of their
// elements) are non-nil. The elements are copied, r is not changed.
func withEmptyLists(r Report) Report {
	r.Integrity.Checks = orEmpty(r.Integrity.Checks)
	s := &r.Summary
	s.Runs, s.Targets, s.Clusters, s.Accounts, s.Identities = append([]Run{}, s.Runs...), orEmpty(s.Targets), orEmpty(s.Clusters), orEmpty(s.Accounts), orEmpty(s.Identities)
	for i := range s.Runs {
		if s.Runs[i].Inputs == nil {
			s.Runs[i].Inputs = map[string]string{}
		}
	}
	r.Containment = append([]Containment{}, r.Containment...)
	for i := range r.Containment {
		r.Containment[i].Warnings = orEmpty(r.Containment[i].Warnings)
	}
	r.Timeline = append([]Step{}, r.Timeline...)
	for i := range r.Timeline {
		r.Timeline[i].Warnings, r.Timeline[i].Items = orEmpty(r.Timeline[i].Warnings), orEmpty(r.Timeline[i].Items)
	}
	r.Evidence, r.NotCollected = orEmpty(r.Evidence), orEmpty(r.NotCollected)
	r.Credentials = append([]Credential{}, r.Credentials...)
	for i := range r.Credentials {
		r.Credentials[i].BlastRadius = orEmpty(r.Credentials[i].BlastRadius)
	}
	r.Snapshots, r.MemoryImages, r.Custody = orEmpty(r.Snapshots), orEmpty(r.MemoryImages), orEmpty(r.Custody)
	r.Verify = append([]Instruction{}, r.Verify...)
	r.Release = append([]Instruction{}, r.Release...)
	for _, l := range [][]Instruction{r.Verify, r.Release} {
		for i := range l {
			l[i].Commands = orEmpty(l[i].Commands)
		}
	}
	if r.Drill != nil {
		d := *r.Drill
		d.Trend = orEmpty(d.Trend)
		d.TrendUnread = orEmpty(d.TrendUnread)
		r.Drill = &d
	}
	return r
}
