package report_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/playbooks"
	"github.com/eksir/eksir/report"
)

// TestResumedAndInDoubt journals, into a real signed case, a step whose
// first attempt never ended (a crash) and that a resume finished, and a
// step still in doubt: the timeline counts the attempts and says resumed;
// containment says in-doubt for the second, not applied.
func TestResumedAndInDoubt(t *testing.T) {
	root := t.TempDir()
	clock := newClock("2026-11-30T08:00:00Z")
	c, err := evidence.OpenCase(t.Context(), evidence.CaseOptions{Dir: root, Incident: "INC-2", Signer: fixtureSigner(), Tool: "t", Actor: "bob@host", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	j := playbooks.CaseJournal(c)
	rec := func(a string, d any) {
		t.Helper()
		if _, err := j.Record(a, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	params := json.RawMessage(`{"pod":"shop/web-1"}`)
	rec(playbooks.RecRunStart, playbooks.RunStart{Playbook: "p", SHA256: "abc", Inputs: map[string]string{"pod": "shop/web-1"}})
	rec(playbooks.RecIntent, playbooks.Intent{Step: "isolate", Action: "isolate.pod-network", Params: params, Approval: &playbooks.StepApproval{How: playbooks.ApprovedYes}})
	rec(playbooks.RecIntent, playbooks.Intent{Step: "isolate", Action: "isolate.pod-network", Params: params, Approval: &playbooks.StepApproval{How: playbooks.ApprovedYes}})
	rec(playbooks.RecResult, playbooks.StepResult{Step: "isolate", Action: "isolate.pod-network", Status: playbooks.StatusSucceeded,
		Outputs: map[string]any{"enforcement": "enforced"}, Started: "2026-11-30T08:00:10Z", Finished: "2026-11-30T08:00:12.5Z"})
	rec(playbooks.RecIntent, playbooks.Intent{Step: "label", Action: "isolate.label", Params: params})
	c.Close()

	r, err := report.FromCase(t.Context(), filepath.Join(root, "INC-2"), report.Options{Keys: fixtureKeys(), Now: generatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Timeline) != 2 {
		t.Fatalf("timeline %+v", r.Timeline)
	}
	iso, lbl := r.Timeline[0], r.Timeline[1]
	if iso.Attempts != 2 || !iso.Resumed || iso.Status != playbooks.StatusSucceeded || iso.DurationMS != 2500 ||
		iso.Approval == nil || iso.Approval.How != "yes" || iso.Approval.By != "bob@host" {
		t.Errorf("isolate: %+v approval %+v", iso, iso.Approval)
	}
	if lbl.Status != playbooks.StatusInDoubt || lbl.Attempts != 1 || lbl.Resumed {
		t.Errorf("label: %+v", lbl)
	}
	want := map[string]string{"isolate": report.ContainApplied, "label": report.ContainInDoubt}
	for _, ct := range r.Containment {
		if ct.State != want[ct.Step] || ct.StillInPlace != (ct.State == report.ContainApplied) {
			t.Errorf("containment %+v", ct)
		}
		if ct.Step == "isolate" && !ct.Verified {
			t.Errorf("isolate enforced without warnings is verified: %+v", ct)
		}
	}
	if r.Summary.Runs[0].Outcome != "interrupted" || r.Summary.StillContained != 1 || len(r.Release) == 0 {
		t.Errorf("summary %+v, release %+v", r.Summary, r.Release)
	}
}

// TestRenderJSONNeverNull renders a report whose lists were left nil.
func TestRenderJSONNeverNull(t *testing.T) {
	var b bytes.Buffer
	r := &report.Report{Timeline: []report.Step{{ID: "x"}}, Credentials: []report.Credential{{Step: "y"}}, Drill: &report.Drill{}}
	if err := report.RenderJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "null") {
		t.Errorf("null in:\n%s", b.String())
	}
	if r.Timeline[0].Warnings != nil {
		t.Error("RenderJSON changed its input")
	}
}

// TestMarkdownEscapes puts markup and a pipe in evidence text: it must
// neither break a table nor become HTML or a link.
func TestMarkdownEscapes(t *testing.T) {
	hostile := "evil|<script>alert(1)</script>[x](http://e)\nnext"
	r := &report.Report{Source: report.Source{Incident: "I"}, Integrity: report.Integrity{Status: report.IntegrityVerified},
		NotCollected: []report.Item{{Path: "data/a|b", Group: hostile, Reason: hostile}}}
	var b bytes.Buffer
	if err := report.RenderMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if strings.Contains(md, "<script>") || regexp.MustCompile(`[^\\]\]\(`).MatchString(md) || strings.Contains(md, "\nnext") {
		t.Errorf("unescaped:\n%s", md)
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.Contains(line, "data/a") && strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") != 5 {
			t.Errorf("the row's cells are broken: %s", line)
		}
	}
}

// TestCaseItems acquires a memory image and a snapshot descriptor into a
// real case: both reach their sections; then the descriptor is changed on
// disk, and the case's report says tampered, naming it.
func TestCaseItems(t *testing.T) {
	root := t.TempDir()
	clock := newClock("2026-11-30T08:00:00Z")
	c, err := evidence.OpenCase(t.Context(), evidence.CaseOptions{Dir: root, Incident: "INC-3", Signer: fixtureSigner(), Tool: "t", Actor: "bob@host", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := c.Add(t.Context(), "aws/instances/i-1/memory.lime", evidence.ItemInfo{Source: evidence.Source{Instance: "i-1"},
		Method: "ssm avml; instance sha256 feedbeef"}, strings.NewReader("LiME image"))
	if err != nil {
		t.Fatal(err)
	}
	desc := `{"snapshot":"snap-1","volume":"vol-1","state":"completed","size_gib":8,"encrypted":true,"kms_key":"k","start":"2026-11-30T08:00:00Z"}`
	if _, err := c.Add(t.Context(), "aws/snapshots/snap-1.json", evidence.ItemInfo{Source: evidence.Source{Instance: "i-1"}, Method: "describe"}, strings.NewReader(desc)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	dir := filepath.Join(root, "INC-3")
	r, err := report.FromCase(t.Context(), dir, report.Options{Keys: fixtureKeys(), Now: generatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.MemoryImages) != 1 || r.MemoryImages[0].SHA256 != mem.SHA256 || r.MemoryImages[0].SourceSHA256 != "feedbeef" || r.MemoryImages[0].Target != "instance/i-1" {
		t.Errorf("memory images %+v", r.MemoryImages)
	}
	want := report.Snapshot{SnapshotID: "snap-1", VolumeID: "vol-1", Instance: "i-1", State: "completed", SizeGiB: 8, Encrypted: true, KMSKeyID: "k",
		Started: "2026-11-30T08:00:00.000000000Z", Descriptor: "data/aws/snapshots/snap-1.json", DescriptorSHA256: evidence.SumHex([]byte(desc))}
	if len(r.Snapshots) != 1 || r.Snapshots[0] != want || r.Integrity.Status != report.IntegrityVerified {
		t.Errorf("snapshots %+v (integrity %s)", r.Snapshots, r.Integrity.Status)
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "aws", "snapshots", "snap-1.json"), []byte(strings.Replace(desc, "vol-1", "vol-2", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err = report.FromCase(t.Context(), dir, report.Options{Keys: fixtureKeys(), Now: generatedAt})
	if err != nil {
		t.Fatal(err)
	}
	last := r.Integrity.Checks[len(r.Integrity.Checks)-1]
	if r.Integrity.Status != report.IntegrityTampered || last.Name != "item-checksum" || last.Path != "data/aws/snapshots/snap-1.json" || r.Snapshots[0].VolumeID != "" {
		t.Errorf("changed descriptor: integrity %+v, snapshots %+v", r.Integrity, r.Snapshots)
	}
}
