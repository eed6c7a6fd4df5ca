package lab_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/kube"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

func seed(t *testing.T, env *labtest.Env, scenario string, nodes, perNode int) *lab.SeedResult {
	t.Helper()
	res, err := lab.Seed(t.Context(), env.State, lab.SeedOptions{Scenario: scenario, Nodes: nodes, PodsPerNode: perNode,
		Prefix: env.Prefix, Account: env.Account})
	if err != nil {
		t.Fatalf("seed %s: %v", scenario, err)
	}
	return res
}

// kubectl runs the real kubectl against the lab.
func kubectl(t *testing.T, env *labtest.Env, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		labtest.SkipOrFail(t, "kubectl not on PATH; install kubectl (Debian: apt-get install kubectl, or the upstream binary)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", env.State.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// eventually retries f with backoff until it returns "" or the deadline.
func eventually(t *testing.T, what string, f func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	delay := 50 * time.Millisecond
	last := ""
	for {
		if last = f(); last == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %s", what, last)
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

func TestCryptoMinerBothSides(t *testing.T) {
	env := labtest.Start(t)
	res := seed(t, env, "crypto-miner", 4, 3)
	ns, pod, _ := strings.Cut(res.Targets[lab.TargetPod], "/")

	// Kubernetes side, through the real kubectl.
	var nodes corev1.NodeList
	if err := json.Unmarshal([]byte(kubectl(t, env, "get", "nodes", "-o", "json")), &nodes); err != nil {
		t.Fatal(err)
	}
	byInstance := map[string]corev1.Node{}
	for _, n := range nodes.Items {
		if !strings.HasPrefix(n.Name, env.Prefix) {
			continue // another test's nodes
		}
		_, id, err := awstarget.ParseProviderID(n.Spec.ProviderID)
		if err != nil {
			t.Fatalf("node %s: %v", n.Name, err)
		}
		if n.Labels["topology.kubernetes.io/zone"] == "" || n.Labels["eks.amazonaws.com/nodegroup"] == "" || n.Labels["node.kubernetes.io/instance-type"] == "" {
			t.Errorf("node %s lacks EKS labels: %v", n.Name, n.Labels)
		}
		byInstance[id] = n
	}
	if len(byInstance) != 4 {
		t.Fatalf("kubectl get nodes: %d nodes with prefix %s, want 4", len(byInstance), env.Prefix)
	}
	pods := kubectl(t, env, "get", "pods", "-A", "-o", "wide")
	if !strings.Contains(pods, pod) || strings.Count(pods, env.Prefix) < 12 {
		t.Fatalf("kubectl get pods lacks the seeded pods:\n%s", pods)
	}
	// kwok marks pods running shortly after they are created; logs need that.
	eventually(t, "suspect pod running", func() string {
		p, err := env.Kube.Typed.CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if p.Status.Phase != corev1.PodRunning {
			return "phase " + string(p.Status.Phase)
		}
		return ""
	})
	logs := kubectl(t, env, "logs", "-n", ns, pod)
	if !strings.Contains(logs, "xmrig") || !strings.Contains(logs, "203.0.113.50") {
		t.Errorf("kubectl logs of the suspect lacks the seeded lines:\n%s", logs)
	}
	if ps := kubectl(t, env, "exec", "-n", ns, pod, "--", "ps"); !strings.Contains(ps, "xmrig") {
		t.Errorf("exec ps in the suspect pod: no miner in\n%s", ps)
	}
	// Owner chain Pod → ReplicaSet → Deployment.
	p, err := env.Kube.Typed.CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "ReplicaSet" || p.Spec.NodeName != res.Targets[lab.TargetNode] {
		t.Errorf("suspect pod owner/node: %+v on %q", p.OwnerReferences, p.Spec.NodeName)
	}
	rs, err := env.Kube.Typed.AppsV1().ReplicaSets(ns).Get(t.Context(), p.OwnerReferences[0].Name, metav1.GetOptions{})
	if err != nil || len(rs.OwnerReferences) != 1 || rs.OwnerReferences[0].Kind != "Deployment" {
		t.Errorf("replicaset owner: %v %+v", err, rs)
	}

	// AWS side: the instances behind the nodes, and the volume behind the PV.
	ec2c := ec2.NewFromConfig(env.AWS)
	out, err := ec2c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
			if n, ok := byInstance[aws.ToString(in.InstanceId)]; ok && n.Labels["topology.kubernetes.io/zone"] != aws.ToString(in.Placement.AvailabilityZone) {
				t.Errorf("node %s zone %s, instance in %s", n.Name, n.Labels["topology.kubernetes.io/zone"], aws.ToString(in.Placement.AvailabilityZone))
			}
		}
	}
	for id := range byInstance {
		if !slices.Contains(ids, id) {
			t.Errorf("node providerID names %s, which moto does not have (has %v)", id, ids)
		}
	}
	if len(ids) != 4 {
		t.Errorf("account %s holds %d instances, want 4 (one account per test)", env.Account, len(ids))
	}
	pv, err := env.Kube.Typed.CoreV1().PersistentVolumes().Get(t.Context(), res.PersistentVolume, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Status.Phase != corev1.VolumeBound || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != ns {
		t.Errorf("PV not bound to the suspect's claim: %+v %+v", pv.Status, pv.Spec.ClaimRef)
	}
	vols, err := ec2c.DescribeVolumes(t.Context(), &ec2.DescribeVolumesInput{VolumeIds: []string{pv.Spec.CSI.VolumeHandle}})
	if err != nil {
		t.Fatalf("the PV's volumeHandle %s is not a moto volume: %v", pv.Spec.CSI.VolumeHandle, err)
	}
	if len(vols.Volumes) != 1 || len(vols.Volumes[0].Attachments) != 1 || aws.ToString(vols.Volumes[0].Attachments[0].InstanceId) != res.Targets[lab.TargetInstance] {
		t.Errorf("PV volume %s not attached to the suspect instance %s: %+v", pv.Spec.CSI.VolumeHandle, res.Targets[lab.TargetInstance], vols.Volumes)
	}
	mounted := false
	for _, v := range p.Spec.Volumes {
		mounted = mounted || (v.PersistentVolumeClaim != nil && ns+"/"+v.PersistentVolumeClaim.ClaimName == res.PVC)
	}
	if !mounted {
		t.Errorf("suspect pod does not mount %s", res.PVC)
	}
	// The root and data volumes of every node instance.
	nv, err := ec2c.DescribeVolumes(t.Context(), &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{res.Targets[lab.TargetInstance]}}}})
	if err != nil || len(nv.Volumes) != 3 {
		t.Errorf("suspect instance volumes: %v, %d (want root, data, PV)", err, len(nv.Volumes))
	}
}

func TestStolenCredentialsIAMAndBucket(t *testing.T) {
	env := labtest.Start(t)
	res := seed(t, env, "stolen-credentials", 2, 2)
	iamc := iam.NewFromConfig(env.AWS)
	roleName := res.Targets[lab.TargetIAMRole][strings.LastIndex(res.Targets[lab.TargetIAMRole], "/")+1:]
	role, err := iamc.GetRole(t.Context(), &iam.GetRoleInput{RoleName: aws.String(roleName)})
	if err != nil {
		t.Fatal(err)
	}
	// IAM returns policy documents URL-encoded (RFC 3986), as AWS does.
	trust, err := url.QueryUnescape(aws.ToString(role.Role.AssumeRolePolicyDocument))
	if err != nil {
		t.Fatal(err)
	}
	ns, _, _ := strings.Cut(res.Targets[lab.TargetPod], "/")
	if !strings.Contains(trust, "oidc-provider/oidc.eks.") || !strings.Contains(trust, "system:serviceaccount:"+ns+":report-builder") {
		t.Errorf("IRSA trust policy does not name the OIDC provider and service account: %s", trust)
	}
	sa, err := env.Kube.Typed.CoreV1().ServiceAccounts(ns).Get(t.Context(), "report-builder", metav1.GetOptions{})
	if err != nil || sa.Annotations["eks.amazonaws.com/role-arn"] != res.Targets[lab.TargetIAMRole] {
		t.Errorf("service account annotation: %v %v", err, sa)
	}
	keys, err := iamc.ListAccessKeys(t.Context(), &iam.ListAccessKeysInput{UserName: aws.String(res.IAMUser)})
	if err != nil || len(keys.AccessKeyMetadata) != 1 || aws.ToString(keys.AccessKeyMetadata[0].AccessKeyId) != res.Targets[lab.TargetAccessKey] {
		t.Errorf("leaked access key: %v %+v", err, keys)
	}
	lock, err := eaws.S3(env.AWS).GetObjectLockConfiguration(t.Context(), &s3.GetObjectLockConfigurationInput{Bucket: aws.String(res.EvidenceBucket)})
	if err != nil || lock.ObjectLockConfiguration.ObjectLockEnabled != s3types.ObjectLockEnabledEnabled {
		t.Errorf("evidence bucket object lock: %v %+v", err, lock)
	}
	nps, err := env.Kube.Typed.NetworkingV1().NetworkPolicies(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(nps.Items) < 2 {
		t.Fatalf("network policies: %v %d", err, len(nps.Items))
	}
	allows := false
	for _, np := range nps.Items {
		allows = allows || np.Spec.PodSelector.MatchLabels["app"] == "report-builder"
	}
	if !allows {
		t.Error("no existing NetworkPolicy selects the suspect's app label")
	}
	// A second seed of the same scenario into the same account is refused.
	if _, err := lab.Seed(t.Context(), env.State, lab.SeedOptions{Scenario: "stolen-credentials", Nodes: 2, PodsPerNode: 2,
		Prefix: env.Prefix, Account: env.Account}); err == nil {
		t.Error("second seed succeeded, want ErrAlreadySeeded")
	}
}

// TestUpDownOwnLab runs a second, private lab: a second Up on the dirty
// folder stops the first one's processes, and Down leaves none alive.
func TestUpDownOwnLab(t *testing.T) {
	if msg := labtest.Unavailable(); msg != "" {
		labtest.SkipOrFail(t, msg)
	}
	dir := t.TempDir()
	ctx := t.Context()
	first, err := lab.Up(ctx, lab.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	second, err := lab.Up(ctx, lab.Options{Dir: dir})
	if err != nil {
		lab.Down(context.WithoutCancel(ctx), dir)
		t.Fatal(err)
	}
	for _, p := range first.Procs {
		if p.Alive() {
			t.Errorf("second up left the first lab's %s (pid %d) running", p.Name, p.PID)
		}
	}
	st, err := lab.Status(ctx, dir)
	if err != nil || !st.Running || len(st.Components) != 4 {
		t.Errorf("status after up: %v %+v", err, st)
	}
	res, err := lab.Down(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stopped) != 4 {
		t.Errorf("down stopped %d processes, want 4", len(res.Stopped))
	}
	for _, p := range second.Procs {
		if p.Alive() {
			t.Errorf("%s (pid %d) alive after down", p.Name, p.PID)
		}
		if processRuns(p.PID) {
			t.Errorf("pid %d (%s) still runs after down", p.PID, p.Name)
		}
	}
	if _, err := lab.Status(ctx, dir); err == nil {
		t.Error("status after down: want ErrNotRunning")
	}
}

// A seed with the suspect process runs the scenario's process for real in
// the suspect pod's cgroup, with its connection to the scenario's remote
// host; lab down stops it and removes its cgroup.
func TestSeedSuspectProcessUntilDown(t *testing.T) {
	if msg := labtest.Unavailable(); msg != "" {
		labtest.SkipOrFail(t, msg)
	}
	if err := lab.PodProcessSupported(); err != nil {
		labtest.SkipOrFail(t, err.Error())
	}
	dir := t.TempDir()
	ctx := t.Context()
	st, err := lab.Up(ctx, lab.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Down(context.WithoutCancel(ctx), dir)
	res, err := lab.Seed(ctx, st, lab.SeedOptions{Scenario: "crypto-miner", Nodes: 1, PodsPerNode: 2, SuspectProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.SuspectProcess, "xmrig pid ") || !strings.Contains(res.SuspectProcess, "203.0.113.50:3333") {
		t.Fatalf("suspect process: %q", res.SuspectProcess)
	}
	saved, err := lab.Load(dir)
	if err != nil || len(saved.PodProcesses) != 1 {
		t.Fatalf("state: %v, %d pod processes", err, len(saved.PodProcesses))
	}
	p := saved.PodProcesses[0]
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PodPID) + "/comm")
	cgroup, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PodPID) + "/cgroup")
	ns, name, _ := strings.Cut(res.Targets[lab.TargetPod], "/")
	kc, err := kube.New(kube.Options{Kubeconfig: st.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := kc.Typed.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(comm)) != "xmrig" || !strings.Contains(string(cgroup), p.Cgroup) ||
		!strings.Contains(p.Cgroup, "pod"+strings.ReplaceAll(string(pod.UID), "-", "_")) {
		t.Errorf("pod process %d: comm %q, cgroup %q, want xmrig in %s of pod %s", p.PodPID, comm, cgroup, p.Cgroup, pod.UID)
	}
	if _, err := lab.Down(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if processRuns(p.PodPID) {
		t.Errorf("pod process %d still runs after down", p.PodPID)
	}
	if _, err := os.Stat(p.CgroupRoot + p.Cgroup); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left after down: %v", p.Cgroup, err)
	}
}
