package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/kube"
)

// timeNow is a variable so tests of pure helpers can pin it.
var timeNow = time.Now

// ErrUnknownScenario reports a scenario name Seed does not know.
var ErrUnknownScenario = errors.New("unknown scenario")

// ErrAlreadySeeded reports a second seed of the same scenario into one lab.
var ErrAlreadySeeded = errors.New("scenario already seeded in this lab")

// SeedOptions configure Seed.
type SeedOptions struct {
	Scenario string
	// Nodes and PodsPerNode size the cluster; zero means 3 and 4.
	Nodes, PodsPerNode int
	// Cluster names the EKS cluster; empty means "eksir-lab".
	Cluster string
	// Prefix is prepended to namespace and node names so that several seeds
	// (one per test) can share a lab.
	Prefix string
	// Account selects a moto account (x-moto-account-id); empty means the
	// lab's default account.
	Account string
	// Progress, if set, receives one line per phase.
	Progress func(string)
	// SuspectProcess starts the scenario's process for real, in the
	// suspect pod's cgroup (StartPodProcess); lab down stops it. It needs
	// root; without it the seed says why and goes on.
	SuspectProcess bool
}

// SeedResult describes what Seed created. Targets maps pod (namespace/name),
// node, instance, iam-role (ARN) and access-key (ID) to the suspects.
type SeedResult struct {
	Scenario         string            `json:"scenario"`
	Description      string            `json:"description"`
	Cluster          string            `json:"cluster"`
	Account          string            `json:"account"`
	Region           string            `json:"region"`
	Targets          map[string]string `json:"targets"`
	Nodes            int               `json:"nodes"`
	Pods             int               `json:"pods"`
	VPC              string            `json:"vpc"`
	SecurityGroup    string            `json:"securityGroup"`
	AutoScalingGroup string            `json:"autoScalingGroup"`
	EvidenceBucket   string            `json:"evidenceBucket"`
	OIDCIssuer       string            `json:"oidcIssuer"`
	IAMUser          string            `json:"iamUser"`
	PersistentVolume string            `json:"persistentVolume"`
	PVC              string            `json:"persistentVolumeClaim"`
	DataVolume       string            `json:"dataVolume"`
	Duration         string            `json:"duration"`
	// SuspectProcess says which real process stands in for the suspect's
	// container, or why none does.
	SuspectProcess string `json:"suspectProcess,omitempty"`
}

// Target keys of SeedResult.Targets.
const (
	TargetPod       = "pod"
	TargetNode      = "node"
	TargetInstance  = "instance"
	TargetIAMRole   = "iam-role"
	TargetAccessKey = "access-key"
)

// Seed creates scenario o.Scenario in the running lab st: the AWS side in
// moto first (the nodes need their instance IDs), then the Kubernetes side.
func Seed(ctx context.Context, st *State, o SeedOptions) (*SeedResult, error) {
	sc, ok := Scenarios[o.Scenario]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownScenario, o.Scenario, ScenarioNames())
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.PodsPerNode == 0 {
		o.PodsPerNode = 4
	}
	if o.Nodes < 1 || o.PodsPerNode < 1 || o.Nodes > 1000 || o.PodsPerNode > 110 {
		return nil, fmt.Errorf("nodes must be 1..1000 and pods per node 1..110 (EKS's default maximum), got %d and %d", o.Nodes, o.PodsPerNode)
	}
	if o.Cluster == "" {
		o.Cluster = "eksir-lab"
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	for _, p := range st.Procs {
		if !p.Alive() {
			return nil, fmt.Errorf("%w: %s (pid %d) has stopped; see %s", ErrNotRunning, p.Name, p.PID, p.Log)
		}
	}
	marker := filepath.Join(st.Dir, "run", "seeded-"+o.Prefix+o.Scenario+"-"+o.Account+".json")
	if _, err := os.Stat(marker); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrAlreadySeeded, o.Scenario)
	}
	began := time.Now()

	headers := map[string]string{}
	if o.Account != "" {
		headers["x-moto-account-id"] = o.Account
	}
	cfg, err := eaws.Load(ctx, eaws.Options{Region: st.Region, Endpoint: st.AWSEndpoint,
		StaticKey: dummyKeyID, StaticSecret: dummySecret, Headers: headers})
	if err != nil {
		return nil, err
	}
	// The AWS side names the (prefixed) namespace in the IRSA trust policy.
	sc.Namespace = o.Prefix + sc.Namespace
	progress(fmt.Sprintf("seeding AWS (moto): VPC, IAM, %d instances, volumes, Auto Scaling group, evidence bucket", o.Nodes))
	aw, err := seedAWS(ctx, cfg, sc, o.Cluster, o.Nodes)
	if err != nil {
		return nil, fmt.Errorf("seed AWS: %w", err)
	}

	c, err := kube.New(kube.Options{Kubeconfig: st.Kubeconfig, QPS: 500, Burst: 1000})
	if err != nil {
		return nil, err
	}
	deps := layout(Scenarios[o.Scenario], o.Prefix, o.Nodes, o.PodsPerNode)
	progress(fmt.Sprintf("seeding Kubernetes: %d nodes, %d pods in %d deployments", o.Nodes, o.Nodes*o.PodsPerNode, len(deps)))
	ks := &kubeSeeder{c: c, sc: Scenarios[o.Scenario], aws: aw, deps: deps, prefix: o.Prefix, dir: st.Dir}
	kw, err := ks.seed(ctx)
	if err != nil {
		return nil, fmt.Errorf("seed Kubernetes: %w", err)
	}
	suspect := aw.Instances[deps[0].Nodes[0]]
	res := &SeedResult{
		Scenario: sc.Name, Description: sc.Description, Cluster: o.Cluster, Account: aw.Account, Region: aw.Region,
		Targets: map[string]string{
			TargetPod:       deps[0].Namespace + "/" + kw.SuspectPod,
			TargetNode:      kw.SuspectNode,
			TargetInstance:  suspect.ID,
			TargetIAMRole:   aw.IRSARoleArn,
			TargetAccessKey: aw.AccessKeyID,
		},
		Nodes: kw.Nodes, Pods: kw.Pods, VPC: aw.VPC, SecurityGroup: aw.SecurityGroup, AutoScalingGroup: aw.ASG,
		EvidenceBucket: aw.EvidenceBucket, OIDCIssuer: aw.OIDCIssuer, IAMUser: aw.LeakedUser,
		PersistentVolume: kw.PV, PVC: kw.PVC, DataVolume: aw.DataVolume,
		Duration: time.Since(began).Round(time.Millisecond).String(),
	}
	if o.SuspectProcess {
		progress("starting the suspect's process (" + sc.Process + ", connected to " + sc.ProcessRemote + ")")
		res.SuspectProcess = startSuspectProcess(ctx, st, c, sc, res.Targets[TargetPod])
	}
	if b, err := json.MarshalIndent(res, "", "  "); err == nil {
		_ = os.WriteFile(marker, b, 0o644)
	}
	return res, nil
}

// startSuspectProcess starts the scenario's process in the suspect pod's
// cgroup and records it in the lab state, so lab down stops it; it returns
// what it started, or why it could not (the seed goes on without it).
func startSuspectProcess(ctx context.Context, st *State, c *kube.Clients, sc Scenario, pod string) string {
	ns, name, _ := strings.Cut(pod, "/")
	p, err := c.Typed.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "not started: " + err.Error()
	}
	pp, err := StartPodProcess(filepath.Join(st.Dir, "run"), sc.Process, string(p.UID), "10.0.1.23:0", sc.ProcessRemote)
	if err != nil {
		return "not started: " + err.Error()
	}
	st.PodProcesses = append(st.PodProcesses, *pp)
	if err := st.save(); err != nil {
		pp.Stop(ctx)
		return "not started: " + err.Error()
	}
	return fmt.Sprintf("%s pid %d in pod %s (container %s), connected %s -> %s", sc.Process, pp.PodPID, pod, pp.ContainerID[:12], pp.Local, pp.Remote)
}

// memoryImage is the "memory" a collector reads: a deterministic blob with
// the scenario's artefacts (pool address, leaked key ID, miner strings)
// embedded at fixed offsets, so that string searches on the image find them.
func memoryImage(sc Scenario, aw *awsWorld, view string) []byte {
	const size = 1 << 20
	img := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(len(sc.Name)), 42))
	for i := 0; i < size; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < size; j++ {
			img[i+j] = byte(v >> (8 * j))
		}
	}
	header := []byte("EMiL\x01\x00\x00\x00eksir-lab memory image: view=" + view + " scenario=" + sc.Name + "\n")
	copy(img, header)
	artefacts := [][]byte{
		[]byte("AWS_ROLE_ARN=" + aw.IRSARoleArn),
		[]byte("AWS_ACCESS_KEY_ID=" + aw.AccessKeyID),
	}
	for _, l := range sc.SuspectLog {
		artefacts = append(artefacts, []byte(l))
	}
	off := 4096
	for _, a := range artefacts {
		if off+len(a)+1 >= size {
			break
		}
		copy(img[off:], a)
		img[off+len(a)] = 0
		off += 64 * 1024
	}
	return img
}
