package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
	"github.com/eksir/eksir/playbooks"
)

const findingFixtures = "../../internal/finding/testdata/"

// expectRefusal checks exit 2, an error naming each of names, a hint,
// and that nothing was created in the case folder.
func expectRefusal(t *testing.T, what, caseDir string, code int, stderr string, names ...string) {
	t.Helper()
	if code != 2 || !strings.Contains(stderr, "eksir: error: ") || !strings.Contains(stderr, "\nhint: ") {
		t.Errorf("%s: exit %d, want 2 with an error and a hint:\n%s", what, code, stderr)
	}
	for _, n := range names {
		if !strings.Contains(stderr, n) {
			t.Errorf("%s: stderr does not name %q:\n%s", what, n, stderr)
		}
	}
	if left := listDir(t, caseDir); len(left) > 0 {
		t.Errorf("%s: refused run left %q in the case folder", what, left)
	}
}

// TestFindingRefused: a finding eksir cannot use stops plan and run
// before anything (a cluster connection, the case) with the field named.
func TestFindingRefused(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(findingFixtures + "eks-runtime-new-binary.json")
	if err != nil {
		t.Fatal(err)
	}
	ec2Finding := findingFixtures + "ec2-bitcoin-tool.json"
	for _, tc := range []struct {
		name, doc string
		extra     []string
		names     []string
	}{
		{"malformed", "{\n  \"Findings\": [\n    {\"Id\": }\n  ]\n}", nil, []string{"not JSON: line 3, column 12"}},
		{"wrong-type", strings.Replace(string(good), `"resourceType": "EKSCluster"`, `"resourceType": "S3Bucket"`, 1), nil,
			[]string{`detail.Resource.ResourceType: "S3Bucket" is not a Kubernetes, instance or access key finding`}},
		{"missing-namespace", strings.Replace(string(good), `"namespace": "payments",`, "", 1), nil,
			[]string{"detail.Resource.KubernetesDetails.KubernetesWorkloadDetails.Namespace: missing"}},
		{"other-cluster", string(good), []string{"--cluster", "billing"}, []string{"cluster shop-prod, not --cluster billing"}},
		{"no-target-taken", "", []string{"--finding", ec2Finding}, []string{"names instance i-0fedcba9876543210; playbook pod-compromise takes none of these"}},
		{"no-file", "", []string{"--finding", filepath.Join(dir, "nope.json")}, []string{"nope.json"}},
	} {
		path := filepath.Join(dir, tc.name+".json")
		if err := os.WriteFile(path, []byte(tc.doc), 0o600); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--finding", path}, tc.extra...)
		for _, verb := range []string{"plan", "run"} {
			caseDir := filepath.Join(dir, "cases-"+tc.name+"-"+verb)
			if err := os.Mkdir(caseDir, 0o700); err != nil {
				t.Fatal(err)
			}
			// No cluster behind this kubeconfig: the finding is refused first.
			_, stderr, code := runCLI(t, append(append([]string{"--case-dir", caseDir, verb, "--kubeconfig", filepath.Join(dir, "none")}, args...), "pod-compromise")...)
			expectRefusal(t, tc.name+" "+verb, caseDir, code, stderr, tc.names...)
		}
	}
}

// cliSeed is crypto-miner seeded once per test binary in the lab's
// default moto account, which the CLI (configured by the environment like
// the AWS CLI, so without the per-test account header) talks to.
var cliSeed struct {
	once sync.Once
	le   *labtest.Env
	res  *lab.SeedResult
	err  error
}

func labCLI(t *testing.T) (*labtest.Env, *lab.SeedResult) {
	t.Helper()
	if testing.Short() {
		t.Skip("lab integration test (-short)")
	}
	le := labtest.Start(t)
	cliSeed.once.Do(func() {
		cliSeed.le = le
		cliSeed.res, cliSeed.err = lab.Seed(t.Context(), le.State, lab.SeedOptions{Scenario: "crypto-miner", Nodes: 2, PodsPerNode: 2, Prefix: le.Prefix})
	})
	if cliSeed.err != nil {
		t.Fatalf("seed: %v", cliSeed.err)
	}
	for k, v := range map[string]string{"AWS_REGION": le.State.Region, "AWS_ENDPOINT_URL": le.State.AWSEndpoint,
		"AWS_ACCESS_KEY_ID": "AKIAEKSIRLABTEST0000", "AWS_SECRET_ACCESS_KEY": "test", "AWS_PROFILE": "", "AWS_CONFIG_FILE": os.DevNull} {
		t.Setenv(k, v)
	}
	return cliSeed.le, cliSeed.res
}

// runtimeFinding is a Runtime Monitoring finding about the seeded suspect
// pod on its node's instance, as GuardDuty would raise it.
func runtimeFinding(t *testing.T, res *lab.SeedResult) string {
	t.Helper()
	ns, pod, _ := strings.Cut(res.Targets[lab.TargetPod], "/")
	doc := fmt.Sprintf(`{"Findings": [{
  "AccountId": %q, "Region": %q, "Partition": "aws",
  "Id": "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
  "Arn": "arn:aws:guardduty:%s:%s:detector/0f1e2d3c4b5a69788796a5b4c3d2e1f0/finding/5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
  "Type": "CryptoCurrency:Runtime/BitcoinTool.B!DNS", "Severity": 8,
  "Title": "A container is querying a domain name that is associated with cryptocurrency-related activity.",
  "Resource": {
    "ResourceType": "EKSCluster",
    "EksClusterDetails": {"Name": %q, "Status": "ACTIVE"},
    "KubernetesDetails": {"KubernetesWorkloadDetails": {"Name": %q, "Namespace": %q, "Type": "pods"}},
    "InstanceDetails": {"InstanceId": %q}
  },
  "Service": {"ServiceName": "guardduty", "FeatureName": "RuntimeMonitoring", "RuntimeDetails": {"Process": {"Name": "xmrig"}}}
}]}`, res.Account, res.Region, res.Region, res.Account, res.Cluster, pod, ns, res.Targets[lab.TargetInstance])
	path := filepath.Join(t.TempDir(), "finding.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLabFindingPlan: a runtime finding about the seeded suspect plans
// pod-compromise on that pod, and the finding's instance fills a
// playbook's instance input; a run keeps the finding in the case.
func TestLabFindingPlan(t *testing.T) {
	le, res := labCLI(t)
	path := runtimeFinding(t, res)
	stdout, stderr, code := runCLI(t, "--output", "json", "plan", "--finding", path, "--kubeconfig", le.State.Kubeconfig, "pod-compromise")
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var plan struct {
		Inputs  map[string]any `json:"inputs"`
		Finding struct {
			ID string `json:"id"`
		} `json:"finding"`
	}
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Inputs["pod"] != res.Targets[lab.TargetPod] || plan.Inputs["node"] != res.Targets[lab.TargetNode] || plan.Finding.ID != "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b" {
		t.Errorf("plan from the finding: inputs %v finding %q, want pod %s on %s", plan.Inputs, plan.Finding.ID, res.Targets[lab.TargetPod], res.Targets[lab.TargetNode])
	}
	stdout, _, code = runCLI(t, "plan", "--finding", path, "--kubeconfig", le.State.Kubeconfig, "pod-compromise")
	if head := "finding 5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b: CryptoCurrency:Runtime/BitcoinTool.B!DNS (severity 8, account " + res.Account + ", region " + res.Region +
		", cluster " + res.Cluster + "): pod " + res.Targets[lab.TargetPod] + ", instance " + res.Targets[lab.TargetInstance]; code != 0 || !strings.HasPrefix(stdout, head) {
		t.Errorf("text plan: exit %d, want it to start with %q:\n%s", code, head, stdout)
	}
	// A flag wins over the finding.
	other := strings.Replace(res.Targets[lab.TargetPod], "/", "/no-such-", 1)
	_, stderr, code = runCLI(t, "plan", "--finding", path, "--pod", other, "--kubeconfig", le.State.Kubeconfig, "pod-compromise")
	if code != 2 || !strings.Contains(stderr, other) {
		t.Errorf("--pod with --finding: exit %d, want 2 naming %s:\n%s", code, other, stderr)
	}

	// A run keeps the finding as evidence.
	pb := filepath.Join(t.TempDir(), "label.yaml")
	writePlaybook(t, pb, "")
	key, _ := newKey(t)
	cases := t.TempDir()
	stdout, stderr, code = runCLI(t, "--case-dir", cases, "run", "--finding", path, "--kubeconfig", le.State.Kubeconfig, "--key", key, "--incident", "gd-1", "--yes", pb)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	got, err := os.ReadFile(filepath.Join(cases, "gd-1", "data", "findings", "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b.json"))
	want, _ := os.ReadFile(path)
	if err != nil || string(got) != string(want) {
		t.Errorf("the case does not hold the finding as given: %v", err)
	}
	idx, err := os.ReadFile(filepath.Join(cases, "gd-1", "metadata", "items.json"))
	var index evidence.Index
	if err == nil {
		err = json.Unmarshal(idx, &index)
	}
	found := false
	for _, it := range index.Items {
		if strings.HasSuffix(it.Path, "findings/5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b.json") {
			found = true
		}
	}
	if err != nil || !found {
		t.Errorf("items.json has no finding item: %v\n%s", err, idx)
	}
}

// writePlaybook writes a playbook labelling a pod, with an instance and
// an IAM role input (extra lines of inputs, if any, follow).
func writePlaybook(t *testing.T, path, extra string) {
	t.Helper()
	src := `apiVersion: eksir.io/v1
kind: Playbook
metadata:
  name: label-aws
inputs:
  - name: pod
    type: pod
    required: true
  - name: instance
    type: instance
  - name: role
    type: iam-role
` + extra + `steps:
  - id: label
    action: isolate.label
    with:
      pod: ${{ inputs.pod }}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLabBadAWSTarget: an unknown instance, a role in another account and
// a node without an EC2 instance stop the run with exit 2 before the case
// exists, and change nothing in moto.
func TestLabBadAWSTarget(t *testing.T) {
	le, res := labCLI(t)
	pb := filepath.Join(t.TempDir(), "label.yaml")
	writePlaybook(t, pb, "")
	fromNode := filepath.Join(t.TempDir(), "fromnode.yaml")
	if err := os.WriteFile(fromNode, []byte(`apiVersion: eksir.io/v1
kind: Playbook
metadata:
  name: node-instance
inputs:
  - name: node
    type: node
    required: true
  - name: instance
    type: instance
    from: node.instance
steps:
  - id: label
    action: isolate.label
    with:
      node: ${{ inputs.node }}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A node the seed did not create, without spec.providerID.
	bare := le.Prefix + "bare"
	if out, err := le.Kube.Typed.CoreV1().Nodes().Create(t.Context(), nodeNamed(bare), createOpts); err != nil {
		t.Fatalf("create node: %v %v", out, err)
	}
	key, _ := newKey(t)
	state := motoState(t, le)
	pod := res.Targets[lab.TargetPod]
	for _, tc := range []struct {
		name  string
		args  []string
		names []string
	}{
		{"unknown-instance", []string{"--pod", pod, "--instance", "i-0123456789abcdef0", pb}, []string{`input "instance"`, "i-0123456789abcdef0 not found"}},
		{"malformed-instance", []string{"--pod", pod, "--instance", "i-xyz", pb}, []string{`input "instance"`, `"i-xyz" is malformed`}},
		{"role-other-account", []string{"--pod", pod, "--iam-role", "arn:aws:iam::999999999999:role/web", pb},
			[]string{`input "role"`, "is in account 999999999999; these credentials are for account 123456789012", "--role-arn"}},
		{"node-without-provider-id", []string{"--node", bare, fromNode}, []string{`input "instance" from node.instance`, "spec.providerID"}},
	} {
		cases := t.TempDir()
		_, stderr, code := runCLI(t, append([]string{"--case-dir", cases, "run", "--kubeconfig", le.State.Kubeconfig, "--key", key, "--yes"}, tc.args...)...)
		expectRefusal(t, tc.name, cases, code, stderr, tc.names...)
	}
	if after := motoState(t, le); after != state {
		t.Errorf("refused runs changed moto:\nbefore %s\nafter  %s", state, after)
	}
	// And the same playbook with the seeded targets plans.
	_, stderr, code := runCLI(t, "plan", "--pod", pod, "--instance", res.Targets[lab.TargetInstance], "--iam-role", res.Targets[lab.TargetIAMRole], "--kubeconfig", le.State.Kubeconfig, pb)
	if code != 0 {
		t.Errorf("plan with the seeded targets: exit %d\n%s", code, stderr)
	}
}

// motoState is the default account's instances, roles, users and keys.
func motoState(t *testing.T, le *labtest.Env) string {
	t.Helper()
	cfg := le.AWS.Copy()
	cfg.APIOptions = nil // the default account: no x-moto-account-id
	ctx := t.Context()
	ec2c, iamc := ec2.NewFromConfig(cfg), iam.NewFromConfig(cfg)
	inst, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	roles, err := iamc.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		t.Fatal(err)
	}
	users, err := iamc.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	out := []any{inst.Reservations, roles.Roles, users.Users}
	for _, u := range users.Users {
		k, err := iamc.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(aws.ToString(u.UserName))})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.AccessKeyMetadata)
	}
	if len(inst.Reservations) == 0 || len(roles.Roles) == 0 {
		t.Fatal("the default account holds no seed")
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var createOpts = metav1.CreateOptions{}

func nodeNamed(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// TestAttributesDoc keeps docs/playbooks.md's table of from attributes
// equal to playbooks.Attributes.
func TestAttributesDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/playbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := playbooks.AttributesMarkdown(); !strings.Contains(string(doc), want) {
		t.Errorf("docs/playbooks.md lacks the attribute table; put in:\n%s", want)
	}
}
