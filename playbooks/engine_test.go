package playbooks

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
)

func loadValid(t *testing.T, reg *action.Registry) *Checked {
	t.Helper()
	data, err := os.ReadFile("testdata/valid/contain.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return mustCheck(t, reg, string(data))
}

var podIn = Inputs{"pod": "shop/web-1", "window": mustDur("10m")}

func TestPlanGolden(t *testing.T) {
	w := newWorld()
	c := loadValid(t, testRegistry(w))
	steps, err := Plan(t.Context(), c, podIn, &action.Env{})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/valid/contain.plan.golden.json", []byte(jsonIndent(steps)))
	if len(w.effects) != 0 || len(w.labels) != 0 {
		t.Fatalf("plan changed the world: %v %v", w.effects, w.labels)
	}
}

type answer bool

func (a answer) Approve(context.Context, string, string, action.Plan) (bool, error) {
	return bool(a), nil
}

func statuses(s *Summary) map[string]string {
	m := map[string]string{}
	for _, st := range s.Steps {
		m[st.ID] = st.Status
	}
	return m
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     Options
		fail     []string
		want     map[string]string
		partial  bool
		labelled bool
		patch    func(string) string
	}{
		{name: "yes", opts: Options{Yes: true}, labelled: true,
			want: map[string]string{"volatile": StatusSucceeded, "objects": StatusSucceeded, "label": StatusSucceeded, "revoke": StatusSucceeded}},
		{name: "approve-flag", opts: Options{Approved: []string{"label"}}, labelled: true,
			want: map[string]string{"label": StatusSucceeded, "revoke": StatusSucceeded}},
		{name: "terminal-yes", opts: Options{Approver: answer(true)}, labelled: true,
			want: map[string]string{"label": StatusSucceeded}},
		{name: "no-terminal-no-approval", opts: Options{}, partial: true,
			want: map[string]string{"volatile": StatusSucceeded, "objects": StatusSucceeded, "label": StatusNeedsApproval, "revoke": StatusSkipped}},
		{name: "terminal-no", opts: Options{Approver: answer(false)}, partial: true,
			want: map[string]string{"label": StatusNeedsApproval, "revoke": StatusSkipped}},
		{name: "capture-failed", opts: Options{Yes: true}, fail: []string{"volatile"}, partial: true,
			want: map[string]string{"volatile": StatusFailed, "label": StatusNotRun, "revoke": StatusNotRun}},
		{name: "capture-failed-continue", opts: Options{Yes: true}, fail: []string{"volatile"}, partial: true,
			patch: func(s string) string {
				return strings.Replace(s, "timeout: 30s", "timeout: 30s\n    on_error: continue", 1)
			},
			want: map[string]string{"volatile": StatusFailed, "objects": StatusSucceeded, "label": StatusSkipped, "revoke": StatusSkipped}},
		{name: "continue-on-error", opts: Options{Yes: true}, fail: []string{"objects"}, partial: true, labelled: true,
			want: map[string]string{"objects": StatusFailed, "label": StatusSucceeded, "revoke": StatusSkipped}},
		{name: "serial", opts: Options{Yes: true, Parallel: 1}, labelled: true,
			want: map[string]string{"revoke": StatusSucceeded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			for _, f := range tc.fail {
				w.fail[f] = true
			}
			reg := testRegistry(w)
			cs, _ := testCase(t)
			o := tc.opts
			o.Env, o.Journal = &action.Env{}, CaseJournal(cs)
			c := loadValid(t, reg)
			if tc.patch != nil {
				c = mustCheck(t, reg, tc.patch(string(c.source)))
			}
			sum, err := Run(t.Context(), c, podIn, o)
			if err != nil {
				t.Fatal(err)
			}
			got := statuses(sum)
			for _, st := range sum.Steps {
				if st.ID == "label" && st.Status == StatusSucceeded && (len(st.Warnings) != 1 || !strings.HasPrefix(st.Warnings[0], "no engine enforces")) {
					t.Errorf("the action's warning did not reach the summary: %+v", st)
				}
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("step %s: %s, want %s (all: %v)", k, got[k], v, got)
				}
			}
			if sum.Partial() != tc.partial {
				t.Errorf("partial = %v", sum.Partial())
			}
			if (w.labels["shop/web-1"] == "quarantine") != tc.labelled {
				t.Errorf("labels = %v", w.labels)
			}
			assertChain(t, cs)
		})
	}
}

func assertChain(t *testing.T, cs *evidence.Case) {
	t.Helper()
	recs := cs.Log().Records()
	intents := map[string]int{}
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		if r.Action == RecIntent {
			intents[string(r.Details)]++
		}
	}
}

// TestResumeInDoubt simulates a crash between intent and result: resume
// runs the step again through its idempotent Run, and the side effect
// happens once.
func TestResumeInDoubt(t *testing.T) {
	w := newWorld()
	reg := testRegistry(w)
	c := loadValid(t, reg)
	cs, _ := testCase(t)
	j := CaseJournal(cs)
	// The first run: everything up to label's action, then "crash".
	in := podIn
	if _, err := j.Record(RecRunStart, RunStart{Playbook: "contain", File: "testdata/valid/contain.yaml", Source: string(c.source), Inputs: in.strings()}, nil); err != nil {
		t.Fatal(err)
	}
	call := action.Call{Step: "label", Params: map[string]any{"target": "shop/web-1", "value": "quarantine"}}
	if _, err := (labelAct{w: w, name: "test.label"}).Run(t.Context(), nil, call); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Record(RecIntent, Intent{Step: "label", Action: "test.label", Params: []byte(`{"target":"shop/web-1","value":"quarantine"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	st, _ := Status(j, reg)
	if got := statuses(st)["label"]; got != StatusInDoubt {
		t.Fatalf("status before resume: %s", got)
	}
	sum, err := Resume(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Partial() {
		t.Fatalf("partial: %v", statuses(sum))
	}
	if n := w.count("test.label/shop/web-1"); n != 1 {
		t.Fatalf("label applied %d times", n)
	}
	// A second resume changes nothing and runs nothing.
	before := len(cs.Log().Records())
	if _, err := Resume(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true}); err != nil {
		t.Fatal(err)
	}
	if w.count("test.volatile/shop/web-1") != 1 {
		t.Fatalf("volatile capture repeated: %v", w.effects)
	}
	if after := len(cs.Log().Records()); after != before+1 { // only playbook.end
		t.Fatalf("second resume wrote %d records", after-before)
	}
}

func TestRelease(t *testing.T) {
	w := newWorld()
	reg := testRegistry(w)
	cs, _ := testCase(t)
	j := CaseJournal(cs)
	w.labels["sa-shop/web-1"] = "old"
	if _, err := Run(t.Context(), loadValid(t, reg), podIn, Options{Env: &action.Env{}, Journal: j, Yes: true}); err != nil {
		t.Fatal(err)
	}
	// Without approval and without a terminal, nothing is undone.
	sum, err := Release(t.Context(), reg, Options{Env: &action.Env{}, Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(sum); got["label"] != StatusNeedsApproval || got["revoke"] != StatusKept || w.labels["shop/web-1"] != "quarantine" {
		t.Fatalf("release without approval: %v %v", got, w.labels)
	}
	sum, err = Release(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true, RestoreCredentials: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(sum); got["label"] != StatusReleased || got["revoke"] != StatusReleased {
		t.Fatalf("release: %v", got)
	}
	if sum.Steps[0].ID != "revoke" {
		t.Fatalf("release order: %v (want reverse order of completion)", sum.Steps)
	}
	if w.labels["shop/web-1"] != "" || w.labels["sa-shop/web-1"] != "old" {
		t.Fatalf("labels after release: %v", w.labels)
	}
	// Released steps are not undone twice.
	if _, err := Release(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true, RestoreCredentials: true}); err != nil {
		t.Fatal(err)
	}
	if n := w.count("undo:test.label/shop/web-1"); n != 1 {
		t.Fatalf("undo ran %d times", n)
	}
	st, err := Status(j, reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(st); got["label"] != StatusReleased || got["volatile"] != StatusSucceeded {
		t.Fatalf("status: %v", got)
	}
}

// TestInterrupt cancels while a step is in flight: the step finishes, no
// new step starts, the journal says not-run, and resume completes the run.
func TestInterrupt(t *testing.T) {
	w := newWorld()
	w.block = make(chan struct{})
	reg := testRegistry(w)
	cs, _ := testCase(t)
	j := CaseJournal(cs)
	ctx, cancel := context.WithCancel(t.Context())
	obs := observerFunc(func(e Event) {
		if e.State == "running" && e.Step == "volatile" {
			cancel()
			close(w.block)
		}
	})
	sum, err := Run(ctx, loadValid(t, reg), podIn, Options{Env: &action.Env{}, Journal: j, Yes: true, Parallel: 1, Observer: obs})
	if err != context.Canceled {
		t.Fatalf("err = %v", err)
	}
	got := statuses(sum)
	if got["volatile"] != StatusSucceeded || got["label"] != StatusNotRun {
		t.Fatalf("after interrupt: %v", got)
	}
	w.block = nil
	sum, err = Resume(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true})
	if err != nil || sum.Partial() {
		t.Fatalf("resume: %v %v", err, statuses(sum))
	}
	if w.count("test.volatile/shop/web-1") != 1 {
		t.Fatal("volatile capture repeated")
	}
}

type observerFunc func(Event)

func (f observerFunc) Event(e Event) { f(e) }

func TestResolve(t *testing.T) {
	c := loadValid(t, testRegistry(newWorld()))
	kube := map[action.Cloud]TargetResolver{action.Kubernetes: fakeTargets{
		"shop/web-1": "shop/web-1", "web-1": "shop/web-1",
		"dup": &TargetError{Msg: "pod name \"dup\" is ambiguous", Hint: "give NAMESPACE/NAME"},
	}}
	for _, tc := range []struct {
		pod, want string
	}{
		{"shop/web-1", ""},
		{"web-1", ""},
		{"dup", "t.yaml:9:5: input \"pod\": pod name \"dup\" is ambiguous"},
		{"shop/nope", "t.yaml:9:5: input \"pod\": shop/nope not found"},
		{"", "t.yaml:9:5: missing required input \"pod\""},
	} {
		in, err := Resolve(t.Context(), c, map[string]string{"pod": tc.pod}, kube)
		if tc.want == "" {
			if err != nil || in["pod"] != "shop/web-1" {
				t.Errorf("%s: %v %v", tc.pod, in, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %s", tc.pod, err, tc.want)
		}
	}
	// Without a resolver for the target's cloud the value is taken as
	// given: the actions' plans check it.
	in, err := Resolve(t.Context(), c, map[string]string{"pod": "shop/nope"}, nil)
	if err != nil || in["pod"] != "shop/nope" {
		t.Errorf("no resolver: %v %v", in, err)
	}
	// A resolver that fails (not a TargetError) aborts with its error.
	broken := map[action.Cloud]TargetResolver{action.Kubernetes: fakeTargets{"x": errors.New("connection refused")}}
	if _, err := Resolve(t.Context(), c, map[string]string{"pod": "x"}, broken); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("lookup failure: %v", err)
	}
}

// fakeTargets maps a reference to its canonical form or an error; the
// real Kubernetes lookups are tested against the lab (TestKubeTargets).
type fakeTargets map[string]any

func (f fakeTargets) Resolve(_ context.Context, _ action.ParamType, ref string) (string, error) {
	switch v := f[ref].(type) {
	case string:
		return v, nil
	case error:
		return "", v
	}
	return "", &TargetError{Msg: ref + " not found"}
}

func TestIncidentID(t *testing.T) {
	id := NewIncidentID(mustTime("2026-11-25T23:00:00Z"))
	if !strings.HasPrefix(id, "20261125-") || len(id) != 15 || evidence.ValidIncidentID(id) != nil {
		t.Fatalf("id %q", id)
	}
}

type cancelApprover struct{ cancel func() }

func (a cancelApprover) Approve(ctx context.Context, _, _ string, _ action.Plan) (bool, error) {
	a.cancel()
	<-ctx.Done()
	return false, ctx.Err()
}

// TestInterruptDuringApproval: Ctrl-C at the prompt journals the step as
// not run, exits as interrupted, and resume finishes.
func TestInterruptDuringApproval(t *testing.T) {
	w := newWorld()
	reg := testRegistry(w)
	cs, _ := testCase(t)
	j := CaseJournal(cs)
	ctx, cancel := context.WithCancel(t.Context())
	sum, err := Run(ctx, loadValid(t, reg), podIn, Options{Env: &action.Env{}, Journal: j, Approver: cancelApprover{cancel}})
	if err != context.Canceled {
		t.Fatalf("err = %v", err)
	}
	if got := statuses(sum); got["label"] != StatusNotRun || got["revoke"] != StatusNotRun || len(w.labels) != 0 {
		t.Fatalf("after interrupt: %v %v", got, w.labels)
	}
	sum, err = Resume(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Approved: []string{"label"}})
	if err != nil || sum.Partial() {
		t.Fatalf("resume: %v %v", err, statuses(sum))
	}
}

// TestStepTimeout: a step that outlives its timeout fails with a message
// naming the timeout, and on_error: abort stops the run.
func TestStepTimeout(t *testing.T) {
	w := newWorld()
	w.block = make(chan struct{}) // never closed: the capture hangs
	reg := testRegistry(w)
	cs, _ := testCase(t)
	c := loadValid(t, reg)
	c = mustCheck(t, reg, strings.Replace(string(c.source), "timeout: 30s", "timeout: 20ms", 1))
	sum, err := Run(t.Context(), c, podIn, Options{Env: &action.Env{}, Journal: CaseJournal(cs), Yes: true, Parallel: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sum.Steps {
		if s.ID == "volatile" && (s.Status != StatusFailed || !strings.Contains(s.Error, "timed out after 20ms")) {
			t.Fatalf("volatile: %+v", s)
		}
		if s.ID == "label" && s.Status != StatusNotRun {
			t.Fatalf("label ran after the capture timed out: %+v", s)
		}
	}
}

// A step whose when is false for the given inputs is shown as skipped and
// never planned: its parameters may be empty by design (pod-compromise's
// revoke step without a service account).
func TestPlanSkipsWhenFalse(t *testing.T) {
	w := newWorld()
	c := mustCheck(t, testRegistry(w), `apiVersion: eksir.io/v1
kind: Playbook
metadata:
  name: optional
inputs:
  - name: pod
    type: pod
    required: true
  - name: sa
    type: string
    default: ""
steps:
  - id: objects
    action: test.collect
    with:
      pod: ${{ inputs.pod }}
  - id: label
    action: test.label
    when: inputs.sa != ""
    with:
      target: ${{ inputs.sa }}
`)
	steps, err := Plan(t.Context(), c, Inputs{"pod": "shop/web-1", "sa": ""}, &action.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 {
		t.Fatalf("planned %d steps, want 2", len(steps))
	}
	if s := steps[1]; s.When != "false" || s.Plan != nil || s.Error != "" || s.Params != nil {
		t.Fatalf("when-false step was planned: %+v", s)
	}
	if steps[0].Plan == nil {
		t.Fatalf("the unconditional step was not planned: %+v", steps[0])
	}
}

// TestCredentialByDeclaration: release keeps what an action declares a
// credential revocation, whatever its name, and undoes the rest.
func TestCredentialByDeclaration(t *testing.T) {
	w := newWorld()
	reg := action.NewRegistry()
	reg.Register(
		collectAct{w: w, name: "test.collect"},
		collectAct{w: w, name: "test.volatile", volatile: true},
		labelAct{w: w, name: "test.label", revokes: true}, // a credential, though not named revoke.
		labelAct{w: w, name: "revoke.test"},               // named revoke., but not declared one
	)
	cs, _ := testCase(t)
	j := CaseJournal(cs)
	if _, err := Run(t.Context(), loadValid(t, reg), podIn, Options{Env: &action.Env{}, Journal: j, Yes: true}); err != nil {
		t.Fatal(err)
	}
	sum, err := Release(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(sum); got["label"] != StatusKept || got["revoke"] != StatusReleased {
		t.Fatalf("release: %v", got)
	}
}

// connector counts what the engine asked it for; AWS always fails, as it
// does on a responder's machine without AWS configuration.
type connector struct{ kube, aws int }

func (c *connector) Kubernetes(context.Context) (kubernetes.Interface, *rest.Config, error) {
	c.kube++
	return fake.NewClientset(), &rest.Config{}, nil
}

func (c *connector) AWS(context.Context) (aws.Config, error) {
	c.aws++
	return aws.Config{}, errors.New("no region: set --region or AWS_REGION")
}

// awsStub is a registered action that needs AWS. A playbook that does not
// use it must never make the engine connect to AWS.
type awsStub struct{ labelAct }

func (a awsStub) Spec() action.Spec {
	s := a.labelAct.Spec()
	s.Name, s.Needs, s.Permissions = "test.aws", []action.Cloud{action.AWS}, action.Permissions{IAM: []action.IAMPermission{{Actions: []string{"ec2:CreateTags"}}}}
	s.RevokesCredential = false
	return s
}

// TestConnectOnlyWhatThePlaybookNeeds: run, resume and release connect to
// the clouds the (journaled) playbook's actions declare, not to every
// registered action's: with an AWS action registered and no AWS
// configuration, a Kubernetes-only incident runs and releases.
func TestConnectOnlyWhatThePlaybookNeeds(t *testing.T) {
	w := newWorld()
	reg := testRegistry(w)
	reg.Register(awsStub{labelAct{w: w, name: "test.aws"}})
	cs, _ := testCase(t)
	j := CaseJournal(cs)
	conn := &connector{}
	if _, err := Run(t.Context(), loadValid(t, reg), podIn, Options{Env: &action.Env{}, Connector: conn, Journal: j, Yes: true}); err != nil {
		t.Fatal(err)
	}
	sum, err := Release(t.Context(), reg, Options{Env: &action.Env{}, Connector: conn, Journal: j, Yes: true, RestoreCredentials: true})
	if err != nil {
		t.Fatalf("release of a Kubernetes-only incident: %v", err)
	}
	if got := statuses(sum); got["label"] != StatusReleased || got["revoke"] != StatusReleased {
		t.Fatalf("release: %v", got)
	}
	if conn.aws != 0 || conn.kube != 2 {
		t.Fatalf("connected to kubernetes %d and aws %d times; want 2 and 0", conn.kube, conn.aws)
	}
	// A playbook that does use the AWS action needs AWS, and says why not.
	p, err := Parse("aws.yaml", []byte(`apiVersion: eksir.io/v1
kind: Playbook
metadata: {name: aws}
steps:
  - id: tag
    action: test.aws
    with: {target: i-1}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Validate(p, reg)
	if err != nil {
		t.Fatal(err)
	}
	cs2, _ := testCase(t)
	_, err = Run(t.Context(), c, Inputs{}, Options{Env: &action.Env{}, Connector: conn, Journal: CaseJournal(cs2), Yes: true})
	if err == nil || !strings.Contains(err.Error(), "no region") || conn.aws != 1 {
		t.Fatalf("AWS playbook without AWS configuration: %v (aws asked %d times)", err, conn.aws)
	}
	if n := len(cs2.Log().Records()); n != 0 {
		t.Fatalf("a run that could not connect journaled %d records", n)
	}
}

// TestCaptureGate: the capture-first rule tests outcomes. A capture that
// succeeded with items missing stops containment, naming the items and the
// override; resume re-runs the incomplete capture; --contain-without-capture
// lets containment run and journals the decision.
func TestCaptureGate(t *testing.T) {
	const item = "data/volatile/ps.txt: exec refused"
	overrides := func(cs *evidence.Case) []ContainWithoutCapture {
		var out []ContainWithoutCapture
		for _, r := range cs.Log().Records() {
			if r.Action == RecContainWithoutCapture {
				var d ContainWithoutCapture
				if err := json.Unmarshal(r.Details, &d); err != nil {
					t.Fatal(err)
				}
				out = append(out, d)
			}
		}
		return out
	}
	step := func(s *Summary, id string) StepSummary {
		for _, st := range s.Steps {
			if st.ID == id {
				return st
			}
		}
		t.Fatalf("no step %s", id)
		return StepSummary{}
	}

	t.Run("incomplete-stops-then-resume-retries", func(t *testing.T) {
		w := newWorld()
		w.missing["volatile"] = []string{item}
		reg := testRegistry(w)
		cs, _ := testCase(t)
		j := CaseJournal(cs)
		sum, err := Run(t.Context(), loadValid(t, reg), podIn, Options{Env: &action.Env{Responder: "alice"}, Journal: j, Yes: true})
		if err != nil {
			t.Fatal(err)
		}
		got := statuses(sum)
		if got["volatile"] != StatusSucceeded || got["label"] != StatusSkipped || got["revoke"] != StatusSkipped || !sum.Partial() {
			t.Fatalf("statuses %v, want label and revoke skipped", got)
		}
		if e := step(sum, "label").Error; !strings.Contains(e, item) || !strings.Contains(e, "--contain-without-capture") || !strings.Contains(e, "volatile") {
			t.Errorf("label's reason %q names neither the missing item nor the override", e)
		}
		if w.labels["shop/web-1"] != "" || w.count("test.label/shop/web-1") != 0 {
			t.Fatalf("containment ran without the capture: %v", w.labels)
		}
		if o := overrides(cs); len(o) != 0 {
			t.Errorf("override journaled without the flag: %+v", o)
		}
		// Resume with the capture still failing: it runs again, and
		// containment still waits.
		if sum, err = Resume(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true}); err != nil {
			t.Fatal(err)
		}
		if n := w.count("test.volatile/shop/web-1"); n != 2 || statuses(sum)["label"] != StatusSkipped {
			t.Fatalf("resume: volatile ran %d times (want 2), statuses %v", n, statuses(sum))
		}
		// The capture works now: resume completes it and contains.
		w.mu.Lock()
		delete(w.missing, "volatile")
		w.mu.Unlock()
		if sum, err = Resume(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true}); err != nil {
			t.Fatal(err)
		}
		if got := statuses(sum); got["label"] != StatusSucceeded || got["revoke"] != StatusSucceeded || sum.Partial() {
			t.Fatalf("resume after the capture was fixed: %v", got)
		}
		if n := w.count("test.volatile/shop/web-1"); n != 3 || w.labels["shop/web-1"] != "quarantine" {
			t.Fatalf("volatile ran %d times (want 3); labels %v", n, w.labels)
		}
		// Complete now: a further resume keeps it.
		if _, err := Resume(t.Context(), reg, Options{Env: &action.Env{}, Journal: j, Yes: true}); err != nil {
			t.Fatal(err)
		}
		if n := w.count("test.volatile/shop/web-1"); n != 3 {
			t.Fatalf("a complete capture ran again: %d", n)
		}
	})

	for _, tc := range []struct {
		name, status string
		fail         bool
		wantMissing  string
	}{
		{name: "override-incomplete", status: StatusSucceeded, wantMissing: item},
		{name: "override-failed", status: StatusFailed, fail: true, wantMissing: "injected failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.missing["volatile"] = []string{item}
			w.fail["volatile"] = tc.fail
			reg := testRegistry(w)
			cs, _ := testCase(t)
			c := mustCheck(t, reg, strings.Replace(string(loadValid(t, reg).source), "timeout: 30s", "timeout: 30s\n    on_error: continue", 1))
			sum, err := Run(t.Context(), c, podIn, Options{Env: &action.Env{Responder: "alice"}, Journal: CaseJournal(cs), Yes: true, ContainWithoutCapture: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(sum); got["volatile"] != tc.status || got["label"] != StatusSucceeded {
				t.Fatalf("statuses %v", got)
			}
			if w.labels["shop/web-1"] != "quarantine" {
				t.Fatalf("containment did not run: %v", w.labels)
			}
			o := overrides(cs)
			if len(o) != 1 || o[0].Step != "label" || o[0].DecidedBy != "alice" || len(o[0].Captures) != 1 ||
				o[0].Captures[0].Step != "volatile" || len(o[0].Captures[0].Missing) != 1 || !strings.Contains(o[0].Captures[0].Missing[0], tc.wantMissing) {
				t.Fatalf("custody records of the decision: %+v", o)
			}
			ws := step(sum, "label").Warnings
			if len(ws) == 0 || !strings.Contains(ws[0], "without complete capture") || !strings.Contains(ws[0], "alice") || !strings.Contains(ws[0], tc.wantMissing) {
				t.Errorf("label's warnings %q lack the decision", ws)
			}
			// The journaled result carries the warning too (status reads it).
			st, err := Status(CaseJournal(cs), reg)
			if err != nil {
				t.Fatal(err)
			}
			if ws := step(st, "label").Warnings; len(ws) == 0 || !strings.Contains(ws[0], "without complete capture") {
				t.Errorf("status warnings %q", ws)
			}
		})
	}
}
