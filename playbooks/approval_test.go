package playbooks

import (
	"encoding/json"
	"testing"

	"github.com/eksir/eksir/action"
)

// TestApprovalJournaled runs the contain playbook, whose label step
// requires approval, approved each way, and reads the label step's intent
// back from the signed custody log: how it was approved and by whom. The
// collection steps, which need no approval, carry none.
func TestApprovalJournaled(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want StepApproval
	}{
		{"prompt", Options{Approver: answer(true), ApprovedBy: "alice@soc"}, StepApproval{How: ApprovedPrompt, By: "alice@soc"}},
		{"flag", Options{Approved: []string{"label"}}, StepApproval{How: ApprovedFlag}},
		{"yes", Options{Yes: true, ApprovedBy: "bob"}, StepApproval{How: ApprovedYes, By: "bob"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := testRegistry(newWorld())
			cs, _ := testCase(t)
			o := tc.opts
			o.Env, o.Journal = &action.Env{}, CaseJournal(cs)
			if _, err := Run(t.Context(), loadValid(t, reg), podIn, o); err != nil {
				t.Fatal(err)
			}
			seen := map[string]*StepApproval{}
			for _, r := range cs.Log().Records() {
				if r.Action != RecIntent {
					continue
				}
				var in Intent
				if err := json.Unmarshal(r.Details, &in); err != nil {
					t.Fatal(err)
				}
				seen[in.Step] = in.Approval
			}
			got := seen["label"]
			if got == nil || *got != tc.want {
				t.Fatalf("label's intent approval = %+v, want %+v", got, tc.want)
			}
			if a, ok := seen["volatile"]; !ok || a != nil {
				t.Errorf("volatile (no approval required): intent seen %v, approval %+v", ok, a)
			}
		})
	}
}
