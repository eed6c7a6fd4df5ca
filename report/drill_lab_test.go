package report_test

// Drill scores of real game days: the eksir binary runs game-day --drill
// twice into one case folder against the lab's kube-apiserver, and the
// trend read from the two cases' journals agrees with what each run printed.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
	"github.com/eksir/eksir/playbooks"
	"github.com/eksir/eksir/report"
)

// eksirBin is EKSIR_BIN (make test), else ../cmd/eksir built once.
func eksirBin(t *testing.T) string { return labtest.Eksir(t) }

func TestLabDrillTrend(t *testing.T) {
	if testing.Short() {
		t.Skip("lab integration test; run without -short")
	}
	le := labtest.Start(t)
	bin := eksirBin(t)
	seed, err := lab.Seed(t.Context(), le.State, lab.SeedOptions{Scenario: "crypto-miner", Nodes: 1, PodsPerNode: 2, Prefix: le.Prefix, Account: le.Account})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	// As on EKS, a NetworkPolicy engine runs on every node, so the
	// quarantine is enforced and containment succeeds.
	le.RunEngineEverywhere(t, labtest.EngineAWSNode)
	target := seed.Targets[lab.TargetPod]
	nsName, _, _ := strings.Cut(target, "/")
	ns, err := le.Kube.Typed.CoreV1().Namespaces().Get(t.Context(), nsName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[playbooks.DrillLabel] = "true"
	if _, err := le.Kube.Typed.CoreV1().Namespaces().Update(t.Context(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "responder.key")
	pubPath, _, err := evidence.GenerateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cases := filepath.Join(dir, "cases")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EKSIR_") && !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "KUBECONFIG="+le.State.Kubeconfig, "EKSIR_SIGNING_KEY="+key, "EKSIR_CASE_DIR="+cases, "EKSIR_EXAMINER=lab-test",
		"EKSIR_COLLECTOR_DIR="+os.Getenv("EKSIR_COLLECTOR_DIR"))
	env = append(env, le.AWSEnv(t)...)

	printed := map[string]*playbooks.DrillScore{}
	for _, incident := range []string{"drill-b", "drill-a"} { // run order is not name order
		cmd := exec.CommandContext(t.Context(), bin, "--output", "json", "run", "game-day", "--pod", target, "--incident", incident, "--yes", "--drill")
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("drill %s: %v\n%s\n%s", incident, err, out.String(), errb.String())
		}
		var res struct {
			Summary playbooks.Summary `json:"summary"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.Summary.Drill == nil {
			t.Fatalf("drill %s output (%v): %s", incident, err, out.String())
		}
		printed[incident] = res.Summary.Drill
	}

	pubPEM, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := evidence.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	keys := evidence.KeyRing{}
	keys.Add(pub)
	pts, _, err := report.DrillTrend(t.Context(), cases, "game-day", keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 2 || pts[0].Incident != "drill-b" || pts[1].Incident != "drill-a" || pts[0].Started >= pts[1].Started {
		t.Fatalf("trend: %+v, want drill-b then drill-a, in time order", pts)
	}
	for _, p := range pts {
		d := printed[p.Incident]
		// The engine's clock starts once the start record is written; the
		// journal's start is that record's time, no later: the score from
		// the journal is never shorter than the one the run printed.
		if p.TimeToContainMS <= 0 || p.TimeToContainMS < d.TimeToContain.Milliseconds() {
			t.Errorf("%s: time to contain %d ms; the run printed %v", p.Incident, p.TimeToContainMS, d.TimeToContain)
		}
		if p.TimeToSealedEvidenceMS < p.TimeToContainMS {
			t.Errorf("%s: time to sealed evidence %d ms, time to contain %d ms; the run printed %v", p.Incident, p.TimeToSealedEvidenceMS, p.TimeToContainMS, d.TimeToSealedEvidence)
		}
		if p.StepsFailed != d.StepsFailed || p.Problem != "" || p.Completeness <= 0 || p.Completeness > 1 {
			t.Errorf("%s: point %+v; the run printed %+v", p.Incident, p, d)
		}
		// ScoreDrill on the case's own records says the same.
		res, err := evidence.ReadCase(t.Context(), filepath.Join(cases, p.Incident), keys)
		if err != nil || !res.OK {
			t.Fatalf("%s: custody log: %v %+v", p.Incident, err, res.OK)
		}
		var recs []evidence.Record
		for _, rc := range res.Records {
			recs = append(recs, rc.Record)
		}
		s, err := report.ScoreDrill(recs)
		if err != nil || s == nil || s.Playbook != "game-day" || s.TimeToContainMS != p.TimeToContainMS || s.StepsSkipped != d.StepsSkipped ||
			!strings.Contains(s.CompletenessDetail, "items collected") {
			t.Errorf("%s: ScoreDrill = %+v, %v", p.Incident, s, err)
		}
		t.Logf("%s: %+v; %s", p.Incident, p, s.CompletenessDetail)
	}
}
