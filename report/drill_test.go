package report_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/playbooks"
	"github.com/eksir/eksir/report"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// journal builds custody records as the engine writes them, one second
// apart unless a step says when it finished.
type journal struct {
	recs []evidence.Record
	at   time.Time
}

func newJournal() *journal { return &journal{at: t0} }

func (j *journal) add(t *testing.T, act string, details any) {
	t.Helper()
	b, err := json.Marshal(details)
	if err != nil {
		t.Fatal(err)
	}
	j.recs = append(j.recs, evidence.Record{Seq: int64(len(j.recs) + 1), Time: evidence.FormatTime(j.at), Actor: "alice@ws1", Action: act, Details: b})
	j.at = j.at.Add(time.Second)
}

func (j *journal) start(t *testing.T, playbook string, drill bool) {
	t.Helper()
	j.add(t, playbooks.RecRunStart, playbooks.RunStart{Playbook: playbook, SHA256: "abc", Inputs: map[string]string{"pod": "shop/web-1"}, Drill: drill})
}

// result journals a step's intent and result; finished is the offset from
// t0 the step says it finished at (0: the record's own time).
func (j *journal) result(t *testing.T, step, act, status string, finished time.Duration, outputs map[string]any, errText string) {
	t.Helper()
	j.add(t, playbooks.RecIntent, playbooks.Intent{Step: step, Action: act})
	res := playbooks.StepResult{Step: step, Action: act, Status: status, Outputs: outputs, Error: errText}
	if finished > 0 {
		res.Finished = t0.Add(finished).Format(time.RFC3339Nano)
	}
	j.add(t, playbooks.RecResult, res)
}

func capture(collected []string, missing ...string) map[string]any {
	return map[string]any{"collected": collected, "missing": missing, "complete": len(missing) == 0}
}

func TestScoreDrill(t *testing.T) {
	j := newJournal()
	j.add(t, evidence.ActionAcquired, map[string]string{"path": "data/finding.json"})
	j.start(t, "game-day", true)
	j.result(t, "volatile", "collect.volatile", playbooks.StatusSucceeded, 0, capture([]string{"data/a", "data/b"}), "")
	j.result(t, "objects", "collect.k8s-objects", playbooks.StatusSucceeded, 0, capture([]string{"data/c"}, "data/d: forbidden"), "")
	j.result(t, "logs", "collect.pod-logs", playbooks.StatusFailed, 0, nil, "container not found")
	j.result(t, "label", "isolate.label", playbooks.StatusSucceeded, 8*time.Second, nil, "")
	j.result(t, "isolate", "isolate.pod-network", playbooks.StatusSucceeded, 12500*time.Millisecond, nil, "")
	j.result(t, "revoke", "revoke.service-account", playbooks.StatusConditionFalse, 0, nil, "")
	j.add(t, playbooks.RecRunEnd, map[string]any{"partial": true})
	j.at = t0.Add(20 * time.Second)
	j.add(t, evidence.ActionSealed, map[string]string{"bag": "drill-1"})
	j.add(t, playbooks.RecUndone, playbooks.StepResult{Step: "isolate", Action: "isolate.pod-network", Status: playbooks.StatusReleased})

	d, err := report.ScoreDrill(j.recs)
	if err != nil {
		t.Fatal(err)
	}
	// The run started at t0+1s (the finding was acquired first).
	want := report.Drill{Playbook: "game-day", TimeToContainMS: 11500, TimeToSealedEvidenceMS: 19000, StepsFailed: 1, StepsSkipped: 0, Completeness: 0.6}
	if d == nil || d.Playbook != want.Playbook || d.TimeToContainMS != want.TimeToContainMS || d.TimeToSealedEvidenceMS != want.TimeToSealedEvidenceMS ||
		d.StepsFailed != want.StepsFailed || d.StepsSkipped != want.StepsSkipped || d.Completeness != want.Completeness {
		t.Fatalf("ScoreDrill = %+v, want %+v", d, want)
	}
	for _, s := range []string{"3 of 5 items collected", "data/d: forbidden", "step logs: the whole capture (failed: container not found)"} {
		if !strings.Contains(d.CompletenessDetail, s) {
			t.Errorf("completeness detail %q lacks %q", d.CompletenessDetail, s)
		}
	}
	if d.Trend == nil || len(d.Trend) != 0 {
		t.Errorf("Trend = %#v, want an empty, non-nil list", d.Trend)
	}
}

func TestScoreDrillNotADrill(t *testing.T) {
	j := newJournal()
	if d, err := report.ScoreDrill(j.recs); d != nil || err != nil {
		t.Errorf("no records: %+v, %v", d, err)
	}
	j.add(t, evidence.ActionAcquired, map[string]string{})
	if d, err := report.ScoreDrill(j.recs); d != nil || err != nil {
		t.Errorf("no run: %+v, %v", d, err)
	}
	j.start(t, "pod-compromise", false)
	j.result(t, "isolate", "isolate.pod-network", playbooks.StatusSucceeded, 0, nil, "")
	if d, err := report.ScoreDrill(j.recs); d != nil || err != nil {
		t.Errorf("a run that is not a drill: %+v, %v", d, err)
	}
}

// TestScoreDrillResumed: a capture retried by a resume counts what both
// attempts collected; the last result decides what is missing and the
// step's status.
func TestScoreDrillResumed(t *testing.T) {
	j := newJournal()
	j.start(t, "game-day", true)
	j.result(t, "volatile", "collect.volatile", playbooks.StatusSucceeded, 0, capture([]string{"data/a"}, "data/b: node unreachable"), "")
	j.result(t, "isolate", "isolate.pod-network", playbooks.StatusSkipped, 0, nil, "capture volatile is incomplete")
	j.result(t, "label", "isolate.label", playbooks.StatusNotRun, 0, nil, "interrupted")
	d, err := report.ScoreDrill(j.recs)
	if err != nil {
		t.Fatal(err)
	}
	if d.Completeness != 0.5 || d.StepsSkipped != 2 || d.TimeToContainMS != 0 || d.TimeToSealedEvidenceMS != 0 {
		t.Errorf("before the resume: %+v", d)
	}
	// The resume: the capture takes the missing item, containment runs.
	j.result(t, "volatile", "collect.volatile", playbooks.StatusSucceeded, 0, capture([]string{"data/b"}), "")
	j.result(t, "isolate", "isolate.pod-network", playbooks.StatusSucceeded, 30*time.Second, nil, "")
	j.result(t, "label", "isolate.label", playbooks.StatusSucceeded, 31*time.Second, nil, "")
	if d, err = report.ScoreDrill(j.recs); err != nil {
		t.Fatal(err)
	}
	if d.Completeness != 1 || d.CompletenessDetail != "2 of 2 items collected" || d.StepsSkipped != 0 || d.TimeToContainMS != 31000 {
		t.Errorf("after the resume: %+v", d)
	}
}

// TestScoreDrillManyMissing: the detail names a few missing items and
// counts the rest.
func TestScoreDrillManyMissing(t *testing.T) {
	j := newJournal()
	j.start(t, "game-day", true)
	var missing []string
	for i := range 8 {
		missing = append(missing, "data/pods/p"+string(rune('0'+i))+".json: gone")
	}
	j.result(t, "objects", "collect.k8s-objects", playbooks.StatusSucceeded, 0, capture([]string{"data/x", "data/y"}, missing...), "")
	d, err := report.ScoreDrill(j.recs)
	if err != nil {
		t.Fatal(err)
	}
	if d.Completeness != 0.2 || !strings.Contains(d.CompletenessDetail, "2 of 10 items collected") || !strings.HasSuffix(d.CompletenessDetail, "; and 3 more") ||
		strings.Contains(d.CompletenessDetail, "p5.json") {
		t.Errorf("many missing: %+v", d)
	}
	// A drill without collection steps is complete by definition.
	j = newJournal()
	j.start(t, "contain-only", true)
	j.result(t, "label", "isolate.label", playbooks.StatusSucceeded, 0, nil, "")
	if d, err = report.ScoreDrill(j.recs); err != nil || d.Completeness != 1 {
		t.Errorf("no collection step: %+v, %v", d, err)
	}
}

func TestStepKind(t *testing.T) {
	for name, want := range map[string]string{
		"collect.volatile": "collect", "collect.ebs-snapshot": "collect",
		"isolate.pod-network": "contain", "revoke.access-key": "contain", "something.else": "contain",
	} {
		if got := report.StepKind(name); got != want {
			t.Errorf("StepKind(%q) = %q, want %q", name, got, want)
		}
	}
}

// drillCase writes a real, signed case under root whose journal is a run
// of playbook started at start, contained after contain and sealed after
// seal.
func drillCase(t *testing.T, root, incident, playbook string, drill bool, signer *evidence.Signer, start time.Time, contain, seal time.Duration) {
	t.Helper()
	now := start
	cs, err := evidence.OpenCase(context.Background(), evidence.CaseOptions{Dir: root, Incident: incident, Signer: signer, Tool: "eksir test", Actor: "alice",
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	rec := func(at time.Duration, act string, details any) {
		now = start.Add(at)
		if _, err := cs.Record(act, details, nil); err != nil {
			t.Fatal(err)
		}
	}
	rec(0, playbooks.RecRunStart, playbooks.RunStart{Playbook: playbook, Drill: drill})
	rec(time.Second, playbooks.RecResult, playbooks.StepResult{Step: "volatile", Action: "collect.volatile", Status: playbooks.StatusSucceeded,
		Outputs: capture([]string{"data/a"})})
	rec(contain, playbooks.RecResult, playbooks.StepResult{Step: "isolate", Action: "isolate.pod-network", Status: playbooks.StatusSucceeded,
		Finished: start.Add(contain).Format(time.RFC3339Nano)})
	rec(seal, evidence.ActionSealed, map[string]string{"bag": incident})
}

func TestDrillTrend(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := evidence.NewSigner(priv)
	keys := evidence.KeyRing{}
	keys.Add(pub)
	root := t.TempDir()
	// Folder order (a, b, ...) is not time order.
	drillCase(t, root, "a-late", "game-day", true, signer, t0.Add(48*time.Hour), 4*time.Second, 9*time.Second)
	drillCase(t, root, "b-early", "game-day", true, signer, t0, 7*time.Second, 12*time.Second)
	drillCase(t, root, "c-real", "game-day", false, signer, t0.Add(time.Hour), time.Second, 2*time.Second)
	drillCase(t, root, "d-other", "other-drill", true, signer, t0.Add(2*time.Hour), time.Second, 2*time.Second)
	if err := os.MkdirAll(filepath.Join(root, "e-empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "f-archive.tar.zst"), []byte("not a case"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, root)

	check := func(name string, k evidence.KeyRing, wantProblem string) []report.DrillPoint {
		t.Helper()
		pts, _, err := report.DrillTrend(t.Context(), root, "game-day", k)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(pts) != 2 || pts[0].Incident != "b-early" || pts[1].Incident != "a-late" {
			t.Fatalf("%s: trend %+v, want b-early then a-late", name, pts)
		}
		if pts[0].TimeToContainMS != 7000 || pts[0].TimeToSealedEvidenceMS != 12000 || pts[1].TimeToContainMS != 4000 || pts[1].TimeToSealedEvidenceMS != 9000 ||
			pts[0].Completeness != 1 || pts[0].Started != evidence.FormatTime(t0) {
			t.Errorf("%s: trend values %+v", name, pts)
		}
		for _, p := range pts {
			if (wantProblem == "") != (p.Problem == "") || !strings.Contains(p.Problem, wantProblem) {
				t.Errorf("%s: %s problem %q, want %q", name, p.Incident, p.Problem, wantProblem)
			}
		}
		return pts
	}
	check("with the signer's key", keys, "")
	check("without keys", nil, "")
	other := evidence.KeyRing{}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other.Add(otherPub)
	check("with another key", other, "not trusted")

	// A record edited after the fact: the point stays, marked.
	log := filepath.Join(root, "a-late", "metadata", "custody.jsonl")
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, bytes.Replace(b, []byte(`"volatile"`), []byte(`"volatilE"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	pts, _, err := report.DrillTrend(t.Context(), root, "game-day", keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2 || pts[0].Problem != "" || !strings.Contains(pts[1].Problem, "custody record 2") {
		t.Errorf("tampered a-late: %+v", pts)
	}
	// Read-only: nothing in the case root changed but the edit above.
	after := snapshot(t, root)
	delete(after, "a-late/metadata/custody.jsonl")
	delete(before, "a-late/metadata/custody.jsonl")
	if len(after) != len(before) {
		t.Errorf("DrillTrend changed the case root: %d files before, %d after", len(before), len(after))
	}
	for p, v := range before {
		if after[p] != v {
			t.Errorf("DrillTrend changed %s", p)
		}
	}

	// A case whose log cannot be read at all is named, and the trend stands.
	if err := os.MkdirAll(filepath.Join(root, "g-broken", "metadata", "custody.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	pts, unread, err := report.DrillTrend(t.Context(), root, "game-day", keys)
	if err != nil {
		t.Fatalf("one unreadable case stopped the trend: %v", err)
	}
	if len(pts) != 2 || len(unread) != 1 || !strings.HasPrefix(unread[0], "g-broken: ") {
		t.Errorf("with g-broken: points %+v, unread %q", pts, unread)
	}

	if _, _, err := report.DrillTrend(t.Context(), filepath.Join(root, "none"), "game-day", nil); err == nil {
		t.Error("a missing case root: no error")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := report.DrillTrend(ctx, root, "game-day", nil); err == nil {
		t.Error("a cancelled context: no error")
	}
}

// snapshot maps every file under root to its content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
