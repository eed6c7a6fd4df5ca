package report

// Game-day scores from the journal alone: the custody records of a case,
// as the engine wrote them (playbooks/journal.go), so a drill is scored the
// same from a case folder, an archive, or years later.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/playbooks"
)

// StepKind returns the kind of the action named action, action.Collect or
// action.Contain, from its name: the journal names a step's action but not
// its kind. eksir's collection actions are named collect.*, its containment
// actions isolate.* and revoke.*; cmd/eksir's tests hold every registered
// action to this. Any other name is taken as containment, the kind that
// changes the world.
func StepKind(name string) string {
	if strings.HasPrefix(name, "collect.") {
		return string(action.Collect)
	}
	return string(action.Contain)
}

// maxMissingShown bounds the missing items CompletenessDetail names, so a
// 1,000-pod drill's detail stays one readable line.
const maxMissingShown = 5

// ScoreDrill scores the game day journaled in records (a case's custody
// log, oldest first). It returns nil when the records hold no run, or a
// run that is not a drill (RunStart.Drill). The scores:
//   - time to contain: from the run's start record to the latest successful
//     finish of a containment step (0 when none succeeded);
//   - time to sealed evidence: from the start to the first "sealed" record
//     after it (0 when the case was not sealed);
//   - steps failed, and skipped (skipped, not run, or waiting for approval),
//     as the engine counts them, by each step's last result;
//   - completeness: of the items the playbook's collection steps set out to
//     take, the share collected. A step's items are those it collected over
//     all its attempts plus those its last result lists as missing; a
//     collection step that failed, was skipped or did not run counts as one
//     missing item ("the whole capture") beside what it did collect. A step
//     whose condition was false intended nothing.
//
// Trend is left empty: DrillTrend finds the drills to compare.
func ScoreDrill(records []evidence.Record) (*Drill, error) {
	startAt := -1
	var start playbooks.RunStart
	for i, r := range records {
		if r.Action != playbooks.RecRunStart {
			continue
		}
		if err := json.Unmarshal(r.Details, &start); err != nil {
			return nil, fmt.Errorf("custody record %d: %s details: %w", r.Seq, r.Action, err)
		}
		startAt = i
		break // a resume writes no second start: the first is the run's
	}
	if startAt < 0 || !start.Drill {
		return nil, nil
	}
	started, err := time.Parse(evidence.TimeFormat, records[startAt].Time)
	if err != nil {
		return nil, fmt.Errorf("custody record %d: time %q: %w", records[startAt].Seq, records[startAt].Time, err)
	}
	d := &Drill{Playbook: start.Playbook, Trend: []DrillPoint{}, TrendUnread: []string{}}
	last := map[string]playbooks.StepResult{}
	var order []string
	collected := map[string][]string{} // step -> items collected over its attempts
	var sealedAt time.Time
	for _, r := range records[startAt+1:] {
		switch r.Action {
		case playbooks.RecResult:
			var res playbooks.StepResult
			if err := json.Unmarshal(r.Details, &res); err != nil {
				return nil, fmt.Errorf("custody record %d: %s details: %w", r.Seq, r.Action, err)
			}
			if res.Finished == "" {
				res.Finished = r.Time
			}
			if _, seen := last[res.Step]; !seen {
				order = append(order, res.Step)
			}
			last[res.Step] = res
			for _, it := range collectedItems(res) {
				if !slices.Contains(collected[res.Step], it) {
					collected[res.Step] = append(collected[res.Step], it)
				}
			}
		case evidence.ActionSealed:
			if sealedAt.IsZero() {
				sealedAt, _ = time.Parse(evidence.TimeFormat, r.Time)
			}
		}
	}
	var contained time.Time
	var got, want int
	var missing []string
	for _, id := range order {
		res := last[id]
		switch res.Status {
		case playbooks.StatusFailed:
			d.StepsFailed++
		case playbooks.StatusSkipped, playbooks.StatusNotRun, playbooks.StatusNeedsApproval:
			d.StepsSkipped++
		}
		if StepKind(res.Action) == string(action.Contain) {
			if f, err := time.Parse(time.RFC3339Nano, res.Finished); err == nil && res.Status == playbooks.StatusSucceeded && f.After(contained) {
				contained = f
			}
			continue
		}
		if res.Status == playbooks.StatusConditionFalse {
			continue
		}
		n := len(collected[id])
		gone := missingItems(res)
		if res.Status != playbooks.StatusSucceeded && len(gone) == 0 {
			why := res.Status
			if res.Error != "" {
				why += ": " + res.Error
			}
			gone = []string{"step " + id + ": the whole capture (" + why + ")"}
		}
		got += n
		want += n + len(gone)
		missing = append(missing, gone...)
	}
	if !contained.IsZero() {
		d.TimeToContainMS = contained.Sub(started).Milliseconds()
	}
	if !sealedAt.IsZero() {
		d.TimeToSealedEvidenceMS = sealedAt.Sub(started).Milliseconds()
	}
	d.Completeness, d.CompletenessDetail = completeness(got, want, missing)
	return d, nil
}

// completeness is got of want as a share, and a line saying what was
// missing.
func completeness(got, want int, missing []string) (float64, string) {
	if want == 0 {
		return 1, "the playbook's collection steps intended no item"
	}
	detail := fmt.Sprintf("%d of %d items collected", got, want)
	if len(missing) == 0 {
		return 1, detail
	}
	shown := missing[:min(len(missing), maxMissingShown)]
	detail += "; missing: " + strings.Join(shown, "; ")
	if more := len(missing) - len(shown); more > 0 {
		detail += fmt.Sprintf("; and %d more", more)
	}
	return float64(got) / float64(want), detail
}

// collectedItems are the items a collection step's result says it
// collected: its "collected" output, or, for an action without the shared
// capture outputs, its items less those listed as missing.
func collectedItems(res playbooks.StepResult) []string {
	if c, ok := res.Outputs["collected"]; ok {
		return strList(c)
	}
	gone := map[string]bool{}
	for _, m := range missingItems(res) {
		p, _, _ := strings.Cut(m, ": ")
		gone[p] = true
	}
	var out []string
	for _, it := range res.Items {
		if !gone[it] {
			out = append(out, it)
		}
	}
	return out
}

// missingItems is a collection step's "missing" output ("data/PATH: reason").
func missingItems(res playbooks.StepResult) []string { return strList(res.Outputs["missing"]) }

// DrillTrend scores every drill of playbook found in caseRoot, the folder
// holding one folder per incident (the case dir), oldest first by the run's
// start. Each case is read read-only from its metadata/custody.jsonl, never
// opened as a case (which may write). With keys, every record must verify
// (link and signature by one of keys); a case whose log does not keeps its
// point, with Problem saying what is wrong, so a tampered or foreign drill
// is shown as such rather than silently dropped. Without keys only the
// chain links and times are checked. Folders without a custody log, and cases whose run is
// not a drill of playbook, are left out. unread names, with the reason,
// the cases whose log could not be read or scored at all: one broken case
// does not stop the trend.
func DrillTrend(ctx context.Context, caseRoot, playbook string, keys evidence.KeyRing) (points []DrillPoint, unread []string, err error) {
	return drillTrend(ctx, caseRoot, playbook, keys, nil)
}

// readCase is a case folder whose custody log was already read and checked
// (with the same keys): drillTrend takes its records instead of reading and
// verifying the whole log a second time, which was half of FromCase's time
// on a 15,000-record case.
type readCase struct {
	dir     string
	records []evidence.RecordCheck
}

// drillTrend is DrillTrend, with known (nil or a case already read) used
// for its folder when caseRoot holds it.
func drillTrend(ctx context.Context, caseRoot, playbook string, keys evidence.KeyRing, known *readCase) (points []DrillPoint, unread []string, err error) {
	var knownInfo os.FileInfo
	if known != nil {
		knownInfo, _ = os.Stat(known.dir) // unreadable: every case is read from its folder
	}
	ents, err := os.ReadDir(caseRoot)
	if err != nil {
		return nil, nil, fmt.Errorf("drill trend: read the case folder: %w", err)
	}
	unread = []string{}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(caseRoot, e.Name(), "metadata", "custody.jsonl")); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		dir := filepath.Join(caseRoot, e.Name())
		var recs []evidence.Record
		var problem string
		if fi, err := os.Stat(dir); err == nil && knownInfo != nil && os.SameFile(fi, knownInfo) {
			recs, problem = checkedRecords(known.records)
		} else if recs, problem, err = readCustody(ctx, dir, keys); err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			// Another case's broken log does not stop this case's report.
			unread = append(unread, fmt.Sprintf("%s: %v", e.Name(), err))
			continue
		}
		if !drillOf(recs, playbook) {
			continue
		}
		d, err := ScoreDrill(recs)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s: %v", e.Name(), err))
			continue
		}
		points = append(points, DrillPoint{Incident: e.Name(), Started: runStarted(recs), TimeToContainMS: d.TimeToContainMS,
			TimeToSealedEvidenceMS: d.TimeToSealedEvidenceMS, StepsFailed: d.StepsFailed, Completeness: d.Completeness, Problem: problem})
	}
	// TimeFormat is fixed width: text order is time order.
	slices.SortStableFunc(points, func(a, b DrillPoint) int {
		return strings.Compare(a.Started+"\x00"+a.Incident, b.Started+"\x00"+b.Incident)
	})
	return points, unread, nil
}

// drillOf reports whether the first run in recs is a drill of playbook.
func drillOf(recs []evidence.Record, playbook string) bool {
	for _, r := range recs {
		if r.Action == playbooks.RecRunStart {
			var s playbooks.RunStart
			return json.Unmarshal(r.Details, &s) == nil && s.Drill && s.Playbook == playbook
		}
	}
	return false
}

// runStarted is the time of the first run's start record.
func runStarted(recs []evidence.Record) string {
	for _, r := range recs {
		if r.Action == playbooks.RecRunStart {
			return r.Time
		}
	}
	return ""
}

// readCustody reads a case's custody records read-only (evidence.ReadCase):
// with keys, every signature is checked; without, the chain links and
// times only. problem names the first record that fails.
func readCustody(ctx context.Context, caseDir string, keys evidence.KeyRing) (recs []evidence.Record, problem string, err error) {
	cl, err := evidence.ReadCase(ctx, caseDir, keys)
	if err != nil {
		return nil, "", err
	}
	recs, problem = checkedRecords(cl.Records)
	return recs, problem, nil
}

// checkedRecords are the records of checks, and the first one's problem.
func checkedRecords(checks []evidence.RecordCheck) (recs []evidence.Record, problem string) {
	for _, rc := range checks {
		recs = append(recs, rc.Record)
		if !rc.OK && problem == "" {
			problem = fmt.Sprintf("custody record %d: %s", rc.Record.Seq, rc.Problem)
		}
	}
	return recs, problem
}

// custodyOf is what a trend row says of its case's custody log: the
// problem found, else whether its signatures were checked at all.
func custodyOf(p DrillPoint) string {
	if p.Problem != "" {
		return p.Problem
	}
	return "ok"
}
