package playbooks_test

// Lab integration tests: the eksir binary runs as a responder runs it,
// against the lab's real kube-apiserver and moto.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
	"github.com/eksir/eksir/playbooks"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// crashEnv names the crash points of a binary built with -tags eksirtest
// (crash_eksirtest.go).
const crashEnv = "EKSIR_TEST_CRASH_AT"

// eksirBin is the binary under test: EKSIR_BIN (make test), else built on
// first use so that unit tests and the fuzz target do not pay for it.
func eksirBin(t *testing.T) string { return labtest.Eksir(t) }

// crashingBin is eksir built with the crash hooks, which a responder's
// binary does not have.
func crashingBin(t *testing.T) string { return labtest.Eksir(t, "eksirtest") }

type labFixture struct {
	le      *labtest.Env
	seed    *lab.SeedResult
	ns, pod string
	dir     string
	env     []string
}

func setupLab(t *testing.T) *labFixture {
	t.Helper()
	if testing.Short() {
		t.Skip("lab integration test; run without -short")
	}
	le := labtest.Start(t)
	eksirBin(t)
	res, err := lab.Seed(t.Context(), le.State, lab.SeedOptions{Scenario: "crypto-miner", Nodes: 2, PodsPerNode: 2, Prefix: le.Prefix, Account: le.Account})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "responder.key")
	if _, _, err := evidence.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	ns, pod, _ := strings.Cut(res.Targets[lab.TargetPod], "/")
	// The cluster these tests stand for enforces NetworkPolicies: the VPC
	// CNI's policy agent runs on every node (its DaemonSet pods, as on EKS;
	// the lab itself enforces nothing, which the isolate tests and the demo
	// show as not-enforceable).
	le.RunEngineEverywhere(t, labtest.EngineAWSNode)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EKSIR_") && !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env, "KUBECONFIG="+le.State.Kubeconfig, "EKSIR_SIGNING_KEY="+key, "EKSIR_CASE_DIR="+filepath.Join(dir, "cases"),
		"EKSIR_EXAMINER=lab-test",
		// labtest.Main built the static collector the binary delivers.
		"EKSIR_COLLECTOR_DIR="+os.Getenv("EKSIR_COLLECTOR_DIR"))
	// The binary reaches the test's moto account (the seed's instances,
	// roles and keys) through a responder key created there.
	env = append(env, le.AWSEnv(t)...)
	return &labFixture{le: le, seed: res, ns: ns, pod: pod, dir: dir, env: env}
}

type result struct {
	code           int
	killed         bool
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d killed=%v\n--- stdout:\n%s--- stderr:\n%s", r.code, r.killed, r.stdout, r.stderr)
}

// eksir runs the binary without a terminal (stdin is empty).
func (f *labFixture) eksir(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	return f.run(t, eksirBin(t), extraEnv, args...)
}

// run runs bin, an eksir, without a terminal.
func (f *labFixture) run(t *testing.T, bin string, extraEnv []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(append([]string{}, f.env...), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			r.killed = true
		}
	default:
		t.Fatalf("eksir %v: %v", args, err)
	}
	return r
}

// snapshot is every object's resourceVersion in the test namespace and in
// the cluster-scoped resources eksir may touch, plus moto's EC2 state.
func (f *labFixture) snapshot(t *testing.T) map[string]string {
	t.Helper()
	ctx := t.Context()
	out := map[string]string{}
	lists, err := f.le.Kube.Typed.Discovery().ServerPreferredResources()
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	for _, l := range lists {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") || r.Name == "events" || r.Name == "leases" {
				continue // events and leases move on their own (kwok heartbeats)
			}
			if r.Name == "nodes" {
				continue // kwok updates node status on its own; cordon is checked via spec below
			}
			ri := f.le.Kube.Dynamic.Resource(gv.WithResource(r.Name))
			lst, err := func() (any, error) {
				if r.Namespaced {
					return ri.Namespace(f.ns).List(ctx, metav1.ListOptions{})
				}
				if r.Name == "clusterrolebindings" || r.Name == "clusterroles" || r.Name == "namespaces" {
					return ri.List(ctx, metav1.ListOptions{})
				}
				return nil, nil
			}()
			if err != nil {
				t.Fatalf("list %s: %v", r.Name, err)
			}
			if lst == nil {
				continue
			}
			type lister interface {
				UnstructuredContent() map[string]any
			}
			for _, it := range lst.(lister).UnstructuredContent()["items"].([]any) {
				m := it.(map[string]any)["metadata"].(map[string]any)
				out[fmt.Sprintf("%s %v/%v", r.Name, m["namespace"], m["name"])] = fmt.Sprint(m["resourceVersion"])
			}
		}
	}
	nodes, err := f.le.Kube.Typed.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		b, _ := json.Marshal(map[string]any{"spec": n.Spec, "labels": n.Labels})
		out["node-spec "+n.Name] = string(b)
	}
	ec2c := ec2.NewFromConfig(f.le.AWS)
	for name, call := range map[string]func() (any, error){
		"instances":       func() (any, error) { return ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}) },
		"security-groups": func() (any, error) { return ec2c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{}) },
		"snapshots": func() (any, error) {
			return ec2c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
		},
		"volumes": func() (any, error) { return ec2c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{}) },
	} {
		v, err := call()
		if err != nil {
			t.Fatalf("moto %s: %v", name, err)
		}
		b, _ := json.Marshal(v)
		out["moto "+name] = string(b)
	}
	return out
}

// settled is a snapshot once kwok has stopped moving the freshly seeded
// objects (pod status): two snapshots a second apart are equal.
func (f *labFixture) settled(t *testing.T) map[string]string {
	t.Helper()
	prev := f.snapshot(t)
	for range 30 {
		time.Sleep(time.Second)
		cur := f.snapshot(t)
		if maps.Equal(prev, cur) {
			return cur
		}
		prev = cur
	}
	return prev
}

func diffSnap(t *testing.T, what string, a, b map[string]string) {
	t.Helper()
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if a[k] != b[k] {
			t.Errorf("%s: %s changed: %.200q -> %.200q", what, k, a[k], b[k])
		}
	}
}

// TestLabPlanChangesNothing: plan on a real target changes no object in the
// namespace, no cluster-scoped RBAC, no node spec and nothing in moto.
func TestLabPlanChangesNothing(t *testing.T) {
	f := setupLab(t)
	before := f.snapshot(t)
	for _, pb := range []string{"pod-compromise", "triage"} {
		r := f.eksir(t, nil, "plan", pb, "--pod", f.ns+"/"+f.pod, "--incident", "plan-1")
		if r.code != 0 && r.code != 4 {
			t.Fatalf("plan %s: %v", pb, r)
		}
		if !strings.Contains(r.stdout, "nothing changed") {
			t.Errorf("plan %s output: %s", pb, r.stdout)
		}
	}
	r := f.eksir(t, nil, "--output", "json", "plan", "pod-compromise", "--pod", f.pod)
	var plan struct {
		Steps []playbooks.PlannedStep `json:"steps"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || len(plan.Steps) != 10 {
		t.Fatalf("plan json (%v): %v", err, r)
	}
	for _, s := range plan.Steps {
		if (s.ID == "isolate" || s.ID == "cordon" || s.ID == "revoke") && (s.Plan == nil || len(s.Plan.Changes) == 0) {
			t.Errorf("%s plan has no concrete change: %+v", s.ID, s)
		}
		// The node and the service account come from the pod at plan time.
		if s.ID == "cordon" && s.Params["node"] != f.seed.Targets[lab.TargetNode] {
			t.Errorf("cordon's node was not resolved from the pod: %+v", s.Params)
		}
		if s.ID == "revoke" && s.Params["service-account"] != f.ns+"/"+lab.Scenarios["crypto-miner"].ServiceAccount {
			t.Errorf("revoke's service account is not the pod's: %+v", s.Params)
		}
		// The pod's IRSA role, found from its spec, with its blast radius.
		if s.ID == "revoke_irsa" && (s.Plan == nil || !strings.Contains(fmt.Sprint(s.Plan.Changes), path.Base(f.seed.Targets[lab.TargetIAMRole]))) {
			t.Errorf("revoke_irsa does not plan the pod's role %s: %+v", f.seed.Targets[lab.TargetIAMRole], s.Plan)
		}
	}
	diffSnap(t, "after plan", before, f.snapshot(t))
	if _, err := os.Stat(filepath.Join(f.dir, "cases")); err == nil {
		t.Errorf("plan created a case folder")
	}
	// A target that does not exist: exit 2, nothing changed.
	r = f.eksir(t, nil, "run", "pod-compromise", "--pod", f.ns+"/nope", "--yes")
	if r.code != 2 || !strings.Contains(r.stderr, "builtin/pod-compromise.yaml:") || !strings.Contains(r.stderr, "not found") {
		t.Errorf("missing target: %v", r)
	}
	diffSnap(t, "after a refused run", before, f.snapshot(t))
}

func (f *labFixture) quarantinePolicies(t *testing.T) []string {
	t.Helper()
	l, err := f.le.Kube.Typed.NetworkingV1().NetworkPolicies(f.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range l.Items {
		if strings.HasPrefix(p.Name, "eksir-") {
			out = append(out, p.Name)
		}
	}
	return out
}

// TestLabApprovalWithoutTerminal: no terminal, no --yes: the approve steps
// are journaled as needing approval, their dependents skipped, exit 4, and
// nothing that needed approval changed; resume --approve finishes the run.
func TestLabApprovalWithoutTerminal(t *testing.T) {
	f := setupLab(t)
	r := f.eksir(t, nil, "run", "pod-compromise", "--pod", f.ns+"/"+f.pod, "--set", "service_account="+f.ns+"/"+lab.Scenarios["crypto-miner"].ServiceAccount, "--incident", "appr-1")
	if r.code != 4 {
		t.Fatalf("want exit 4: %v", r)
	}
	if p := f.quarantinePolicies(t); len(p) != 0 {
		t.Fatalf("a step that needed approval changed the cluster: %v", p)
	}
	st := f.eksir(t, nil, "--output", "json", "status", "--incident", "appr-1")
	var sum playbooks.Summary
	if err := json.Unmarshal([]byte(st.stdout), &sum); err != nil {
		t.Fatalf("status: %v %v", err, st)
	}
	got := map[string]string{}
	for _, s := range sum.Steps {
		got[s.ID] = s.Status
	}
	if got["isolate"] != playbooks.StatusNeedsApproval || got["cordon"] != playbooks.StatusNeedsApproval || got["revoke"] != playbooks.StatusSkipped || got["volatile"] != playbooks.StatusSucceeded {
		t.Fatalf("status: %v", got)
	}
	r = f.eksir(t, nil, "resume", "--incident", "appr-1", "--approve", "isolate,cordon,revoke,revoke_irsa")
	if r.code != 0 {
		t.Fatalf("resume: %v", r)
	}
	if p := f.quarantinePolicies(t); len(p) != 1 {
		t.Fatalf("policies after resume: %v", p)
	}
}

// TestLabCrashResume kills the run with SIGKILL at every step boundary and
// inside each mutating step, resumes, and checks that every side effect
// happened exactly once and the custody chain verifies after sealing.
func TestLabCrashResume(t *testing.T) {
	f := setupLab(t)
	pb := filepath.Join(f.dir, "crash.yaml")
	if err := os.WriteFile(pb, []byte(crashPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	type point struct{ step, where string }
	var points []point
	for _, s := range []string{"objects", "isolate", "label"} {
		points = append(points, point{s, "before"}, point{s, "after"})
		if s != "objects" {
			points = append(points, point{s, "inside"})
		}
	}
	for i, p := range points {
		inc := fmt.Sprintf("crash-%d", i)
		t.Run(p.step+"-"+p.where, func(t *testing.T) {
			r := f.run(t, crashingBin(t), []string{crashEnv + "=" + p.step + ":" + p.where}, "run", pb, "--pod", f.ns+"/"+f.pod, "--incident", inc, "--yes", "--parallel", "1")
			if !r.killed {
				t.Fatalf("crash hook did not fire: %v", r)
			}
			r = f.eksir(t, nil, "resume", "--incident", inc, "--yes")
			if r.code != 0 {
				t.Fatalf("resume: %v", r)
			}
			if pol := f.quarantinePolicies(t); len(pol) != 1 {
				t.Fatalf("want exactly one quarantine NetworkPolicy, got %v", pol)
			}
			pod, err := f.le.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), f.pod, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for k := range pod.Labels {
				if strings.HasPrefix(k, "eksir") {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("labels not applied: %v", pod.Labels)
			}
			f.checkJournal(t, inc)
			// Release for the next crash point; evidence stays.
			r = f.eksir(t, nil, "release", "--incident", inc, "--yes")
			if r.code != 0 {
				t.Fatalf("release: %v", r)
			}
			if pol := f.quarantinePolicies(t); len(pol) != 0 {
				t.Fatalf("release left %v", pol)
			}
		})
	}
}

// TestLabNoCrashHookInRelease: the eksir responders run ignores the crash
// variable: the run completes and nothing is killed.
func TestLabNoCrashHookInRelease(t *testing.T) {
	f := setupLab(t)
	pb := filepath.Join(f.dir, "crash.yaml")
	if err := os.WriteFile(pb, []byte(crashPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	// A point of each kind, on each step; TestLabCrashResume shows that
	// each kills the eksirtest build.
	for i, s := range []string{"objects:before", "isolate:inside", "label:after"} {
		inc := fmt.Sprintf("nocrash-%d", i)
		r := f.eksir(t, []string{crashEnv + "=" + s}, "run", pb, "--pod", f.ns+"/"+f.pod, "--incident", inc, "--yes", "--parallel", "1")
		if r.killed || r.code != 0 {
			t.Fatalf("%s=%s: the release binary must ignore it: %v", crashEnv, s, r)
		}
		if r = f.eksir(t, nil, "release", "--incident", inc, "--yes"); r.code != 0 {
			t.Fatalf("release: %v", r)
		}
	}
}

// checkJournal seals the case and verifies it, and checks the journal:
// every step has exactly one succeeded result, and at most two intents
// (the crashed attempt and the resumed one).
func (f *labFixture) checkJournal(t *testing.T, inc string) {
	t.Helper()
	out := filepath.Join(f.dir, "sealed-"+inc)
	r := f.eksir(t, nil, "seal", "--incident", inc, "--out", out)
	if r.code != 0 {
		t.Fatalf("seal: %v", r)
	}
	archives, _ := filepath.Glob(filepath.Join(out, "*.tar*"))
	var archive string
	for _, a := range archives {
		if strings.HasSuffix(a, ".tar.zst") || strings.HasSuffix(a, ".tar") {
			archive = a
		}
	}
	rep, err := evidence.Verify(context.Background(), archive, evidence.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("verify %s: %v %+v", archive, err, rep)
	}
	data, err := os.ReadFile(filepath.Join(f.dir, "cases", inc, "metadata", "custody.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	succeeded := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var rec evidence.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Action == playbooks.RecResult {
			var res playbooks.StepResult
			_ = json.Unmarshal(rec.Details, &res)
			if res.Status == playbooks.StatusSucceeded {
				succeeded[res.Step]++
			}
		}
	}
	for _, s := range []string{"objects", "isolate", "label"} {
		if succeeded[s] != 1 {
			t.Errorf("step %s has %d succeeded results", s, succeeded[s])
		}
	}
}

const crashPlaybook = `apiVersion: eksir.io/v1
kind: Playbook
metadata:
  name: crash-test
inputs:
  - name: pod
    type: pod
    required: true
steps:
  - id: objects
    action: collect.k8s-objects
    with:
      pod: ${{ inputs.pod }}
  - id: isolate
    action: isolate.pod-network
    needs: [objects]
    approve: true
    with:
      pod: ${{ inputs.pod }}
  - id: label
    action: isolate.label
    needs: [isolate]
    with:
      pod: ${{ inputs.pod }}
`

// TestLabGameDay: --drill is refused on pod-compromise (not a drill
// playbook) and on a target not labelled as a drill target; on a labelled
// target the game-day playbook contains, seals, releases and scores,
// leaving no quarantine behind.
func TestLabGameDay(t *testing.T) {
	f := setupLab(t)
	target := f.ns + "/" + f.pod
	// Refused, exit 2, nothing changed and no case: a playbook not marked
	// drill: true, and game-day on a target not labelled as a drill target.
	before := f.settled(t)
	for _, tc := range []struct{ playbook, want string }{
		{"pod-compromise", "not a drill playbook"},
		{"game-day", "not a drill target"},
	} {
		r := f.eksir(t, nil, "run", tc.playbook, "--pod", target, "--incident", "refused-"+tc.playbook, "--yes", "--drill")
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "hint: ") {
			t.Errorf("%s --drill: want exit 2 and %q with a hint: %v", tc.playbook, tc.want, r)
		}
	}
	diffSnap(t, "after refused drills", before, f.snapshot(t))
	if _, err := os.Stat(filepath.Join(f.dir, "cases")); err == nil {
		t.Errorf("a refused drill created a case folder")
	}
	// The drill target: its namespace is labelled.
	ns, err := f.le.Kube.Typed.CoreV1().Namespaces().Get(t.Context(), f.ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[playbooks.DrillLabel] = "true"
	if _, err := f.le.Kube.Typed.CoreV1().Namespaces().Update(t.Context(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := f.eksir(t, nil, "--output", "json", "run", "game-day", "--pod", target, "--incident", "drill-1", "--yes", "--drill")
	if r.code != 0 {
		t.Fatalf("game day: %v", r)
	}
	var out struct {
		Summary playbooks.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Summary.Drill == nil {
		t.Fatalf("drill output (%v): %s", err, r.stdout)
	}
	d := out.Summary.Drill
	if d.TimeToContain <= 0 || d.TimeToSealedEvidence < d.TimeToContain || d.StepsFailed != 0 {
		t.Errorf("drill score: %+v", d)
	}
	for _, s := range out.Summary.Steps {
		if s.Duration <= 0 && s.Status == playbooks.StatusSucceeded {
			t.Errorf("step %s has no timing", s.ID)
		}
	}
	if pol := f.quarantinePolicies(t); len(pol) != 0 {
		t.Errorf("drill left %v", pol)
	}
	archives, _ := filepath.Glob(filepath.Join(f.dir, "cases", "drill-1*.tar.zst"))
	if len(archives) != 1 {
		t.Fatalf("sealed archives: %v", archives)
	}
	manualVerify(t, archives[0], filepath.Join(f.dir, "responder.key.pub"))
}

// manualVerify checks a lab case's sealed archive as a forensics lab would
// without eksir (docs/verify-bag.sh: sha256sum, tar, jq, openssl), then a
// copy with one payload byte changed and its sidecar recomputed, which the
// script must refuse.
func manualVerify(t *testing.T, archive, pub string) {
	t.Helper()
	for _, tool := range []string{"sh", "tar", "zstd", "jq", "openssl", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			labtest.SkipOrFail(t, tool+" not found (make host-tools installs it)")
		}
	}
	script, _ := filepath.Abs("../docs/verify-bag.sh")
	run := func(a string) (string, error) {
		out, err := exec.Command("sh", script, a, pub).CombinedOutput()
		return string(out), err
	}
	if out, err := run(archive); err != nil {
		t.Fatalf("verify-bag.sh on the sealed lab case: %v\n%s", err, out)
	}
	// Tamper: rewrite the archive with one payload byte flipped, keep the
	// layout, and recompute the sidecar so only the deeper checks can tell.
	dir := t.TempDir()
	if out, err := exec.Command("tar", "--zstd", "-xf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("extract: %v\n%s", err, out)
	}
	var victim string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && victim == "" && fi.Mode().IsRegular() && fi.Size() > 0 && strings.Contains(p, "/data/") {
			victim = p
		}
		return nil
	})
	if victim == "" {
		t.Fatal("no payload file in the lab case")
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(t.TempDir(), filepath.Base(archive))
	top := strings.TrimSuffix(filepath.Base(archive), ".tar.zst")
	if out, err := exec.Command("tar", "--zstd", "-cf", tampered, "-C", dir, top).CombinedOutput(); err != nil {
		t.Fatalf("repack: %v\n%s", err, out)
	}
	sum, err := exec.Command("sha256sum", tampered).Output()
	if err != nil {
		t.Fatal(err)
	}
	hexsum, _, _ := strings.Cut(string(sum), " ")
	if err := os.WriteFile(tampered+".sha256", []byte(hexsum+"  "+filepath.Base(archive)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(tampered); err == nil || !strings.Contains(out, "FAIL") {
		t.Fatalf("verify-bag.sh passed a tampered lab case: %v\n%s", err, out)
	}
}

// A service account that does not exist is bad input: plan and run exit 2,
// run before the case exists, and nothing changes.
func TestLabMissingServiceAccountExit2(t *testing.T) {
	f := setupLab(t)
	before := f.snapshot(t)
	for _, cmd := range []string{"plan", "run"} {
		args := []string{cmd, "pod-compromise", "--pod", f.ns + "/" + f.pod, "--set", "service_account=" + f.ns + "/no-such-account", "--incident", "sa-1"}
		if cmd == "run" {
			args = append(args, "--yes")
		}
		r := f.eksir(t, nil, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "no-such-account") || !strings.Contains(r.stderr, "revoke") {
			t.Errorf("%s with a missing service account: %v", cmd, r)
		}
	}
	if _, err := os.Stat(filepath.Join(f.dir, "cases", "sa-1")); !os.IsNotExist(err) {
		t.Errorf("run left a case folder: %v", err)
	}
	if after := f.snapshot(t); !maps.Equal(after, before) {
		t.Error("the cluster changed")
	}
}

// Every built-in playbook runs end to end under exactly the roles `eksir
// permissions --playbook P --format rbac` prints for it (the responder's
// and, where the playbook revokes credentials, the revoker's), and its
// release too: the generated roles are enough, and hold no wildcard.
func TestLabBuiltinsUnderGeneratedRoles(t *testing.T) {
	f := setupLab(t)
	target := f.ns + "/" + f.pod
	// game-day runs only on drill targets.
	ns, err := f.le.Kube.Typed.CoreV1().Namespaces().Get(t.Context(), f.ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels[playbooks.DrillLabel] = "true"
	if _, err := f.le.Kube.Typed.CoreV1().Namespaces().Update(t.Context(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		playbook string
		run      []string
	}{
		{"triage", nil},
		{"pod-compromise", nil},
		{"game-day", []string{"--drill", "--set", "service_account=" + f.ns + "/checkout-api"}},
		{"node-compromise", []string{"--node", f.seed.Targets[lab.TargetNode], "--set", "settle=0s", "--set", "memory=node-pod"}},
	} {
		r := f.eksir(t, nil, "permissions", "--playbook", tc.playbook, "--format", "rbac")
		if r.code != 0 {
			t.Fatalf("permissions %s: %v", tc.playbook, r)
		}
		role := &rbacv1.ClusterRole{}
		for _, doc := range strings.Split(r.stdout, "\n---\n") {
			var cr rbacv1.ClusterRole
			if err := yaml.Unmarshal([]byte(doc), &cr); err != nil {
				t.Fatalf("permissions %s: %v\n%s", tc.playbook, err, doc)
			}
			role.Rules = append(role.Rules, cr.Rules...)
		}
		for _, rule := range role.Rules {
			if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.Verbs, "escalate") {
				t.Errorf("%s role: %+v", tc.playbook, rule)
			}
		}
		env := []string{"KUBECONFIG=" + f.roleKubeconfig(t, fmt.Sprintf("gen-%d", i), role)}
		inc := fmt.Sprintf("gen-%d", i)
		args := []string{"run", tc.playbook, "--incident", inc, "--yes"}
		if tc.playbook != "node-compromise" {
			args = append(args, "--pod", target)
		}
		r = f.eksir(t, env, append(args, tc.run...)...)
		if r.code != 0 || strings.Contains(strings.ToLower(r.stdout+r.stderr), "forbidden") {
			t.Fatalf("%s under its generated roles: %v", tc.playbook, r)
		}
		if tc.playbook == "game-day" {
			continue // a drill releases itself
		}
		if r = f.eksir(t, env, "release", "--incident", inc, "--yes", "--restore-credentials"); r.code != 0 || strings.Contains(strings.ToLower(r.stdout+r.stderr), "forbidden") {
			t.Fatalf("release %s under its generated roles: %v", tc.playbook, r)
		}
	}
	if f.suspectMarked(t) || len(f.quarantinePolicies(t)) != 0 {
		t.Error("the releases left containment in place")
	}
}
