package playbooks_test

import (
	"fmt"
	"maps"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/internal/awsfault"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
)

// nodeAWSState is what node-compromise changes in AWS, counted the way the
// issue asks: quarantine groups per VPC, eksir deny policies on the node
// role, profile associations of the instance, and the groups of each of
// its interfaces.
type nodeAWSState struct {
	quarantine   map[string]int // VPC -> eksir-quarantine groups
	denyPolicies []string       // eksir inline policies on the node role
	associations []string       // associated profiles of the instance
	eniGroups    map[string]string
}

func (f *labFixture) nodeRole() string {
	return "eksctl-" + f.seed.Cluster + "-nodegroup-NodeInstanceRole"
}

func (f *labFixture) nodeAWSState(t *testing.T) nodeAWSState {
	t.Helper()
	ctx := t.Context()
	e := ec2.NewFromConfig(f.le.AWS)
	inst := f.seed.Targets[lab.TargetInstance]
	st := nodeAWSState{quarantine: map[string]int{}, eniGroups: map[string]string{}}
	sgs, err := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{"eksir-quarantine-*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range sgs.SecurityGroups {
		st.quarantine[aws.ToString(g.VpcId)]++
	}
	pols, err := iam.NewFromConfig(f.le.AWS).ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(f.nodeRole())})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pols.PolicyNames {
		if strings.HasPrefix(p, "eksir-") {
			st.denyPolicies = append(st.denyPolicies, p)
		}
	}
	as, err := e.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-id"), Values: []string{inst}}, {Name: aws.String("state"), Values: []string{"associated"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as.IamInstanceProfileAssociations {
		st.associations = append(st.associations, aws.ToString(a.IamInstanceProfile.Arn))
	}
	enis, err := e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{inst}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range enis.NetworkInterfaces {
		var gs []string
		for _, g := range n.Groups {
			gs = append(gs, aws.ToString(g.GroupName))
		}
		st.eniGroups[aws.ToString(n.NetworkInterfaceId)] = strings.Join(gs, ",")
	}
	return st
}

// contained checks the instance is contained exactly once: one quarantine
// group in its VPC on every interface, one deny policy on the node role,
// no profile associated.
func (f *labFixture) checkContained(t *testing.T) {
	t.Helper()
	st := f.nodeAWSState(t)
	if n := st.quarantine[f.seed.VPC]; n != 1 || len(st.quarantine) != 1 {
		t.Errorf("quarantine groups per VPC: %v, want exactly one in %s", st.quarantine, f.seed.VPC)
	}
	if len(st.denyPolicies) != 1 {
		t.Errorf("deny policies on the node role: %v, want one", st.denyPolicies)
	}
	if len(st.associations) != 0 {
		t.Errorf("instance profile still associated: %v", st.associations)
	}
	if len(st.eniGroups) < 2 {
		t.Errorf("the suspect instance should have a primary and a secondary interface: %v", st.eniGroups)
	}
	for eni, g := range st.eniGroups {
		if !strings.HasPrefix(g, "eksir-quarantine-") || strings.Contains(g, ",") {
			t.Errorf("interface %s has groups %q, want only the quarantine group", eni, g)
		}
	}
}

// restoredExactly compares the AWS state after release with the state
// before the run: everything the run changed is back. The shared
// quarantine groups stay by design (other incidents may use them), and a
// re-associated profile has a new association ID, so those are compared
// by what they are, not by ID.
var assocID = regexp.MustCompile(`iip-assoc-[0-9a-f]+`)

func restoredExactly(t *testing.T, before, after map[string]string) {
	t.Helper()
	strip := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if strings.HasPrefix(k, "association/") {
				continue
			}
			if strings.HasPrefix(k, "sg/") && strings.Contains(v, `"GroupName":"eksir-`) {
				continue
			}
			// moto reports the association ID as the profile's ID.
			out[k] = assocID.ReplaceAllString(v, "iip-assoc-*")
		}
		return out
	}
	b, a := strip(before), strip(after)
	if maps.Equal(b, a) {
		return
	}
	for k, v := range b {
		if a[k] != v {
			t.Errorf("%s changed:\nbefore %s\nafter  %s", k, v, a[k])
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			t.Errorf("%s is new after release: %s", k, a[k])
		}
	}
}

// node-compromise on the seeded suspect node: plan changes nothing in moto
// or the cluster; run contains the instance (read back from moto); release
// restores groups per interface, profile, protection, ASG membership and
// policies exactly.
func TestLabNodeCompromise(t *testing.T) {
	f := setupLab(t)
	node := f.seed.Targets[lab.TargetNode]
	before := labtest.AWSSnapshot(t, f.le.AWS)
	kube := f.settled(t)
	// Memory through SSM by default: without the AVML hash the plan is
	// refused, naming it, before anything exists.
	r := f.eksir(t, nil, "plan", "node-compromise", "--node", node, "--incident", "node-1")
	if r.code != 2 || !strings.Contains(r.stdout+r.stderr, "avml-sha256") {
		t.Fatalf("plan with memory=ssm and no AVML hash: want exit 2 naming avml-sha256: %v", r)
	}
	r = f.eksir(t, nil, "plan", "node-compromise", "--node", node, "--incident", "node-1", "--set", "memory=node-pod")
	if r.code != 0 || !strings.Contains(r.stdout, f.seed.Targets[lab.TargetInstance]) || !strings.Contains(r.stdout, "eksir-quarantine-"+f.seed.VPC) {
		t.Fatalf("plan: %v", r)
	}
	if after := labtest.AWSSnapshot(t, f.le.AWS); !maps.Equal(before, after) {
		t.Error("plan changed moto")
	}
	if after := f.snapshot(t); !maps.Equal(kube, after) {
		t.Error("plan changed the cluster")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "cases", "node-1")); !os.IsNotExist(err) {
		t.Errorf("plan left a case folder: %v", err)
	}

	r = f.eksir(t, nil, "run", "node-compromise", "--node", node, "--incident", "node-1", "--yes", "--set", "settle=0s", "--set", "memory=node-pod")
	if r.code != 0 || !strings.Contains(r.stdout, "contained = true") {
		t.Fatalf("run: %v", r)
	}
	f.checkContained(t)
	ec2c := ec2.NewFromConfig(f.le.AWS)
	inst := f.seed.Targets[lab.TargetInstance]
	term, err := ec2c.DescribeInstanceAttribute(t.Context(), &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(inst), Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
	if err != nil || !aws.ToBool(term.DisableApiTermination.Value) {
		t.Errorf("termination protection: %+v %v", term, err)
	}
	n, err := f.le.Kube.Typed.CoreV1().Nodes().Get(t.Context(), node, metav1.GetOptions{})
	if err != nil || !n.Spec.Unschedulable {
		t.Errorf("node not cordoned: %v", err)
	}

	// Release without --restore-credentials keeps the profile revoked.
	r = f.eksir(t, nil, "release", "--incident", "node-1", "--yes")
	if r.code == 0 && !strings.Contains(r.stdout, "kept") {
		t.Fatalf("release without --restore-credentials: %v", r)
	}
	if st := f.nodeAWSState(t); len(st.associations) != 0 || len(st.denyPolicies) != 1 {
		t.Errorf("release without --restore-credentials restored the instance profile: %+v", st)
	}
	r = f.eksir(t, nil, "release", "--incident", "node-1", "--yes", "--restore-credentials")
	if r.code != 0 {
		t.Fatalf("release: %v", r)
	}
	restoredExactly(t, before, labtest.AWSSnapshot(t, f.le.AWS))
	if st := f.nodeAWSState(t); len(st.associations) != 1 || len(st.denyPolicies) != 0 {
		t.Errorf("after release: %+v", st)
	}
}

// kill -9 at every step boundary and inside every mutating AWS step of
// node-compromise, then resume: exactly one quarantine group per VPC, one
// policy on the role, no duplicate association; release restores all.
func TestLabNodeCompromiseCrashResume(t *testing.T) {
	f := setupLab(t)
	node := f.seed.Targets[lab.TargetNode]
	before := labtest.AWSSnapshot(t, f.le.AWS)
	var points []string
	for _, s := range []string{"protect", "snapshot", "isolate", "revoke_profile"} {
		points = append(points, s+":before", s+":inside", s+":after")
	}
	for i, p := range points {
		inc := fmt.Sprintf("node-crash-%d", i)
		t.Run(strings.ReplaceAll(p, ":", "-"), func(t *testing.T) {
			r := f.run(t, crashingBin(t), []string{crashEnv + "=" + p}, "run", "node-compromise", "--node", node, "--incident", inc, "--yes", "--set", "settle=0s", "--set", "memory=node-pod", "--parallel", "1")
			if !r.killed {
				t.Fatalf("crash hook did not fire: %v", r)
			}
			r = f.eksir(t, nil, "resume", "--incident", inc, "--yes")
			if r.code != 0 {
				t.Fatalf("resume: %v", r)
			}
			f.checkContained(t)
			f.checkOneSnapshotPerVolume(t, inc)
			r = f.eksir(t, nil, "release", "--incident", inc, "--yes", "--restore-credentials")
			if r.code != 0 {
				t.Fatalf("release: %v", r)
			}
			restoredExactly(t, before, labtest.AWSSnapshot(t, f.le.AWS))
		})
	}
}

// A proxy in front of moto answers a share of the calls with throttling and
// 503: node-compromise still completes (the SDK's adaptive retries). Then
// one call always fails: the step fails naming the AWS error code, the
// journal stays resumable, and resume completes once AWS answers again.
func TestLabAWSFaults(t *testing.T) {
	f := setupLab(t)
	node := f.seed.Targets[lab.TargetNode]
	target, err := url.Parse(f.le.State.AWSEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	var failModify atomic.Bool
	proxy := awsfault.New(target, awsfault.Options{Rate: 0.1, Seed: 7,
		Always: func(service, op string) bool { return failModify.Load() && op == "ModifyNetworkInterfaceAttribute" }})
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	// AWS_MAX_ATTEMPTS, which the SDK reads as the AWS CLI does: at 10%
	// faults, 6 attempts make a call fail once in a million.
	via := []string{"AWS_ENDPOINT_URL=" + srv.URL, "AWS_MAX_ATTEMPTS=6"}

	r := f.eksir(t, via, "run", "node-compromise", "--node", node, "--incident", "faults-1", "--yes", "--set", "settle=0s", "--set", "memory=node-pod")
	if r.code != 0 {
		t.Fatalf("run under faults: %v\n%s", r, proxy)
	}
	if proxy.Injected() == 0 {
		t.Fatalf("the proxy injected nothing: %s", proxy)
	}
	f.checkContained(t)
	if r = f.eksir(t, via, "release", "--incident", "faults-1", "--yes", "--restore-credentials"); r.code != 0 {
		t.Fatalf("release under faults: %v\n%s", r, proxy)
	}

	failModify.Store(true)
	const modify = "ec2:ModifyNetworkInterfaceAttribute"
	injected := proxy.Counts()[modify].Injected
	r = f.eksir(t, []string{"AWS_ENDPOINT_URL=" + srv.URL, "AWS_MAX_ATTEMPTS=2"}, "run", "node-compromise", "--node", node, "--incident", "faults-2", "--yes", "--set", "settle=0s", "--set", "memory=node-pod")
	// Each call (the plan's DryRun, then the change) tried exactly twice.
	if n := proxy.Counts()[modify].Injected - injected; n == 0 || n%2 != 0 || n > 4 {
		t.Errorf("the failing calls were tried %d times in all, want 2 per call (AWS_MAX_ATTEMPTS=2)", n)
	}
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "RequestLimitExceeded") && !strings.Contains(r.stdout+r.stderr, "ServiceUnavailable") && !strings.Contains(r.stdout+r.stderr, "Unavailable") {
		t.Fatalf("a step that cannot complete: want a failure naming the AWS error code: %v", r)
	}
	st := f.status(t, "faults-2")
	if st["isolate"].Status != "failed" || st["protect"].Status != "succeeded" {
		t.Fatalf("statuses after the failure: %+v", st)
	}
	failModify.Store(false)
	if r = f.eksir(t, via, "resume", "--incident", "faults-2", "--yes"); r.code != 0 {
		t.Fatalf("resume once AWS answers: %v", r)
	}
	f.checkContained(t)
	if r = f.eksir(t, via, "release", "--incident", "faults-2", "--yes", "--restore-credentials"); r.code != 0 {
		t.Fatalf("release: %v", r)
	}
}

// credential-compromise on the seeded leaked key and IRSA role: the key is
// deactivated and the role's older sessions denied; release keeps both
// unless asked to restore credentials.
func TestLabCredentialCompromise(t *testing.T) {
	f := setupLab(t)
	key, role := f.seed.Targets[lab.TargetAccessKey], f.seed.Targets[lab.TargetIAMRole]
	before := labtest.AWSSnapshot(t, f.le.AWS)
	r := f.eksir(t, nil, "plan", "credential-compromise", "--access-key", key, "--iam-role", role, "--incident", "cred-1")
	if r.code != 0 || !strings.Contains(r.stdout, "blast radius") {
		t.Fatalf("plan: %v", r)
	}
	if !maps.Equal(before, labtest.AWSSnapshot(t, f.le.AWS)) {
		t.Error("plan changed moto")
	}
	r = f.eksir(t, nil, "run", "credential-compromise", "--access-key", key, "--iam-role", role, "--incident", "cred-1", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "revoked = true") {
		t.Fatalf("run: %v", r)
	}
	ic := iam.NewFromConfig(f.le.AWS)
	keys, err := ic.ListAccessKeys(t.Context(), &iam.ListAccessKeysInput{UserName: aws.String(f.seed.IAMUser)})
	if err != nil || len(keys.AccessKeyMetadata) != 1 || keys.AccessKeyMetadata[0].Status != iamtypes.StatusTypeInactive {
		t.Fatalf("key after run: %+v %v", keys, err)
	}
	r = f.eksir(t, nil, "release", "--incident", "cred-1", "--yes")
	if keys, _ = ic.ListAccessKeys(t.Context(), &iam.ListAccessKeysInput{UserName: aws.String(f.seed.IAMUser)}); keys.AccessKeyMetadata[0].Status != iamtypes.StatusTypeInactive {
		t.Fatalf("release without --restore-credentials re-enabled the key: %v", r)
	}
	if r = f.eksir(t, nil, "release", "--incident", "cred-1", "--yes", "--restore-credentials"); r.code != 0 {
		t.Fatalf("release: %v", r)
	}
	restoredExactly(t, before, labtest.AWSSnapshot(t, f.le.AWS))
}

// kill -9 at every boundary and inside every mutating step of
// credential-compromise, then resume: the key is inactive, the user and
// the role each hold exactly one eksir policy; release restores all.
func TestLabCredentialCompromiseCrashResume(t *testing.T) {
	f := setupLab(t)
	key, role := f.seed.Targets[lab.TargetAccessKey], f.seed.Targets[lab.TargetIAMRole]
	roleName := path.Base(role)
	ic := iam.NewFromConfig(f.le.AWS)
	eksirPolicies := func(names []string) (n int) {
		for _, p := range names {
			if strings.HasPrefix(p, "eksir-") {
				n++
			}
		}
		return n
	}
	before := labtest.AWSSnapshot(t, f.le.AWS)
	var points []string
	for _, s := range []string{"access_key", "role"} {
		points = append(points, s+":before", s+":inside", s+":after")
	}
	for i, p := range points {
		inc := fmt.Sprintf("cred-crash-%d", i)
		t.Run(strings.ReplaceAll(p, ":", "-"), func(t *testing.T) {
			r := f.run(t, crashingBin(t), []string{crashEnv + "=" + p}, "run", "credential-compromise", "--access-key", key, "--iam-role", role, "--incident", inc, "--yes", "--parallel", "1")
			if !r.killed {
				t.Fatalf("crash hook did not fire: %v", r)
			}
			if r = f.eksir(t, nil, "resume", "--incident", inc, "--yes"); r.code != 0 {
				t.Fatalf("resume: %v", r)
			}
			keys, err := ic.ListAccessKeys(t.Context(), &iam.ListAccessKeysInput{UserName: aws.String(f.seed.IAMUser)})
			if err != nil || keys.AccessKeyMetadata[0].Status != iamtypes.StatusTypeInactive {
				t.Errorf("key after resume: %+v %v", keys, err)
			}
			up, err := ic.ListUserPolicies(t.Context(), &iam.ListUserPoliciesInput{UserName: aws.String(f.seed.IAMUser)})
			if err != nil || eksirPolicies(up.PolicyNames) != 1 {
				t.Errorf("user policies after resume: %+v %v", up, err)
			}
			rp, err := ic.ListRolePolicies(t.Context(), &iam.ListRolePoliciesInput{RoleName: aws.String(roleName)})
			if err != nil || eksirPolicies(rp.PolicyNames) != 1 {
				t.Errorf("role policies after resume: %+v %v", rp, err)
			}
			if r = f.eksir(t, nil, "release", "--incident", inc, "--yes", "--restore-credentials"); r.code != 0 {
				t.Fatalf("release: %v", r)
			}
			restoredExactly(t, before, labtest.AWSSnapshot(t, f.le.AWS))
		})
	}
}

// checkOneSnapshotPerVolume: the incident holds exactly one snapshot of
// each volume of the suspect instance, however often the run was killed.
func (f *labFixture) checkOneSnapshotPerVolume(t *testing.T, inc string) {
	t.Helper()
	e := ec2.NewFromConfig(f.le.AWS)
	inst := f.seed.Targets[lab.TargetInstance]
	vols, err := e.DescribeVolumes(t.Context(), &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{inst}}}})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := e.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + collect.SnapshotIncidentTag), Values: []string{inc}}}})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, sn := range snaps.Snapshots {
		per[aws.ToString(sn.VolumeId)]++
	}
	for _, v := range vols.Volumes {
		if n := per[aws.ToString(v.VolumeId)]; n != 1 {
			t.Errorf("volume %s has %d snapshots of incident %s, want exactly one", aws.ToString(v.VolumeId), n, inc)
		}
	}
}
