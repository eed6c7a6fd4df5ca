package collect_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/middleware"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/evidence"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
)

// snapFixture is a seeded scenario whose env talks to the test's moto
// account.
type snapFixture struct {
	*fixture
	s        *labtest.Scenario
	ec2      *ec2.Client
	instance string
}

func setupSnap(t *testing.T) *snapFixture {
	t.Helper()
	s := labtest.SeedScenario(t, 2, 2, collect.Register)
	s.Env.AWS = s.Lab.AWS
	f := &fixture{lab: s.Lab, env: s.Env, c: s.Case, ns: s.NS, pod: s.Pod, node: s.Node, nodeView: s.NodeView, registry: s.Registry}
	return &snapFixture{fixture: f, s: s, ec2: ec2.NewFromConfig(s.Lab.AWS), instance: s.Seed.Targets[lab.TargetInstance]}
}

func snapCall(params map[string]any) action.Call {
	p := map[string]any{"wait": true}
	maps.Copy(p, params)
	return action.Call{Step: "snap", Params: p}
}

func snapshotAction(t *testing.T, f *snapFixture) action.Action {
	t.Helper()
	a, ok := f.registry.Lookup("collect.ebs-snapshot")
	if !ok {
		t.Fatal("collect.ebs-snapshot not registered")
	}
	return a
}

// accountSnapshots lists every snapshot of the account, by ID.
func accountSnapshots(t *testing.T, c *ec2.Client) map[string]ec2types.Snapshot {
	t.Helper()
	out, err := c.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
	if err != nil {
		t.Fatalf("describe snapshots: %v", err)
	}
	m := map[string]ec2types.Snapshot{}
	for _, s := range out.Snapshots {
		m[aws.ToString(s.SnapshotId)] = s
	}
	return m
}

func tagsOf(s ec2types.Snapshot) map[string]string {
	m := map[string]string{}
	for _, t := range s.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func instanceVolumes(t *testing.T, c *ec2.Client, id string) []string {
	t.Helper()
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	var vols []string
	for _, b := range out.Reservations[0].Instances[0].BlockDeviceMappings {
		if b.Ebs != nil {
			vols = append(vols, aws.ToString(b.Ebs.VolumeId))
		}
	}
	return vols
}

// perVolume counts the account's source snapshots (not copies) by volume.
func perVolume(snaps map[string]ec2types.Snapshot) map[string]int {
	n := map[string]int{}
	for _, s := range snaps {
		if _, copy := tagsOf(s)[collect.SnapshotCopyOfTag]; !copy {
			n[aws.ToString(s.VolumeId)]++
		}
	}
	return n
}

func (f *snapFixture) descriptor(t *testing.T, id string) collect.SnapshotDescriptor {
	t.Helper()
	f.item(t, "aws/snapshots/"+id+".json")
	var d collect.SnapshotDescriptor
	if err := json.Unmarshal([]byte(f.read(t, "aws/snapshots/"+id+".json")), &d); err != nil {
		t.Fatalf("descriptor %s: %v", id, err)
	}
	return d
}

func TestAWSSnapshotInstance(t *testing.T) {
	f := setupSnap(t)
	a := snapshotAction(t, f)
	vols := instanceVolumes(t, f.ec2, f.instance)
	if len(vols) < 2 {
		t.Fatalf("seed instance %s has %d volumes, want root and data", f.instance, len(vols))
	}
	var seen []string
	f.env.Progress = func(step, what string, done, total int64) {
		seen = append(seen, step)
		if done < 0 || done > total {
			t.Errorf("progress %d of %d", done, total)
		}
	}
	call := snapCall(map[string]any{"instance": f.instance, "share-with-account": "210987654321"})
	res, err := a.Run(t.Context(), f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if len(seen) == 0 || seen[0] != "snap" {
		t.Errorf("progress reports = %v, want some for step snap", seen)
	}
	snaps := accountSnapshots(t, f.ec2)
	count := perVolume(snaps)
	for _, v := range vols {
		if count[v] != 1 {
			t.Errorf("volume %s has %d snapshots, want 1", v, count[v])
		}
	}
	ids, _ := res.Outputs["snapshots"].([]string)
	if len(ids) != len(vols) {
		t.Fatalf("outputs snapshots = %v, want one per volume %v", ids, vols)
	}
	for _, id := range ids {
		s := snaps[id]
		tags := tagsOf(s)
		want := map[string]string{collect.SnapshotIncidentTag: f.env.Incident, collect.SnapshotStepTag: "snap",
			collect.SnapshotInstanceTag: f.instance, collect.SnapshotVolumeTag: aws.ToString(s.VolumeId)}
		for k, v := range want {
			if tags[k] != v {
				t.Errorf("snapshot %s tag %s = %q, want %q", id, k, tags[k], v)
			}
		}
		d := f.descriptor(t, id)
		if d.Snapshot != id || d.Volume != aws.ToString(s.VolumeId) || d.State != "completed" || d.Account != f.lab.Account ||
			d.Region != f.env.AWS.Region || d.Start == nil || d.SizeGiB == 0 || d.Tags[collect.SnapshotStepTag] != "snap" {
			t.Errorf("descriptor %s = %+v", id, d)
		}
		attr, err := f.ec2.DescribeSnapshotAttribute(t.Context(), &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(id), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
		if err != nil {
			t.Fatal(err)
		}
		if len(attr.CreateVolumePermissions) != 1 || aws.ToString(attr.CreateVolumePermissions[0].UserId) != "210987654321" {
			t.Errorf("snapshot %s create-volume permissions = %+v, want account 210987654321", id, attr.CreateVolumePermissions)
		}
	}

	// Again: nothing new, the same snapshots.
	res2, err := a.Run(t.Context(), f.env, call)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := len(accountSnapshots(t, f.ec2)); got != len(snaps) {
		t.Errorf("second run: %d snapshots, want %d", got, len(snaps))
	}
	if ids2, _ := res2.Outputs["snapshots"].([]string); strings.Join(ids2, ",") != strings.Join(ids, ",") {
		t.Errorf("second run snapshots = %v, want %v", ids2, ids)
	}
}

var errKilled = errors.New("killed (test)")

// crashAfter makes cfg fail every call after the first op call completes
// at EC2: the change landed but eksir never learnt of it, as with kill -9
// right after the request.
func crashAfter(cfg aws.Config, op string) aws.Config {
	dead := false
	cfg.APIOptions = append(append([]func(*middleware.Stack) error{}, cfg.APIOptions...), func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("killAfter", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if dead {
				return middleware.InitializeOutput{}, middleware.Metadata{}, errKilled
			}
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil && awsmiddleware.GetOperationName(ctx) == op {
				dead = true
				return out, md, errKilled
			}
			return out, md, err
		}), middleware.Before)
	})
	return cfg
}

func TestAWSSnapshotResumeAfterKill(t *testing.T) {
	f := setupSnap(t)
	a := snapshotAction(t, f)
	for _, tc := range []struct {
		name, op string
		params   map[string]any
		vols     []string
	}{
		{"instance", "CreateSnapshots", map[string]any{"instance": f.instance}, instanceVolumes(t, f.ec2, f.instance)},
		{"pod", "CreateSnapshot", map[string]any{"pod": f.ns + "/" + f.pod}, []string{f.s.Seed.DataVolume}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := snapCall(tc.params)
			call.Step = "snap-" + tc.name
			killed := *f.env
			killed.AWS = crashAfter(f.env.AWS, tc.op)
			if _, err := a.Run(t.Context(), &killed, call); !errors.Is(err, errKilled) {
				t.Fatalf("killed run: err = %v, want the kill", err)
			}
			before := accountSnapshots(t, f.ec2)
			if _, err := a.Run(t.Context(), f.env, call); err != nil {
				t.Fatalf("resumed run: %v", err)
			}
			after := accountSnapshots(t, f.ec2)
			if len(after) != len(before) {
				t.Errorf("resume created %d snapshots, want none", len(after)-len(before))
			}
			n := map[string]int{}
			for _, s := range after {
				if tagsOf(s)[collect.SnapshotStepTag] == call.Step {
					n[aws.ToString(s.VolumeId)]++
					if tagsOf(s)[collect.SnapshotVolumeTag] != aws.ToString(s.VolumeId) {
						t.Errorf("snapshot %s: source volume tag %q, want %s", aws.ToString(s.SnapshotId), tagsOf(s)[collect.SnapshotVolumeTag], aws.ToString(s.VolumeId))
					}
				}
			}
			for _, v := range tc.vols {
				if n[v] != 1 {
					t.Errorf("volume %s: %d snapshots of step %s, want exactly 1", v, n[v], call.Step)
				}
			}
			if len(n) != len(tc.vols) {
				t.Errorf("snapshots of step %s cover %v, want %v", call.Step, n, tc.vols)
			}
		})
	}
}

func TestAWSSnapshotPod(t *testing.T) {
	f := setupSnap(t)
	a := snapshotAction(t, f)
	ref := f.ns + "/" + f.pod
	// moto's CopySnapshot stores any KmsKeyId without checking the key
	// exists or re-encrypting anything: the test checks the copy is made
	// once, asks for that key, is tagged and described, not KMS's semantics.
	const key = "arn:aws:kms:us-east-1:210987654321:key/11111111-2222-3333-4444-555555555555"
	call := snapCall(map[string]any{"pod": ref, "copy-kms-key": key, "share-with-account": "210987654321"})
	res, err := a.Run(t.Context(), f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	ids, _ := res.Outputs["snapshots"].([]string)
	copies, _ := res.Outputs["copies"].([]string)
	if len(ids) != 1 || len(copies) != 1 {
		t.Fatalf("outputs = %v, want one snapshot and one copy", res.Outputs)
	}
	snaps := accountSnapshots(t, f.ec2)
	s := snaps[ids[0]]
	if aws.ToString(s.VolumeId) != f.s.Seed.DataVolume {
		t.Errorf("snapshot of %s, want the PV's volume %s", aws.ToString(s.VolumeId), f.s.Seed.DataVolume)
	}
	tags := tagsOf(s)
	if tags[collect.SnapshotPodTag] != ref || tags[collect.SnapshotVolumeTag] != f.s.Seed.DataVolume || tags[collect.SnapshotInstanceTag] != f.instance || tags[collect.SnapshotIncidentTag] != f.env.Incident {
		t.Errorf("tags = %v", tags)
	}
	d := f.descriptor(t, ids[0])
	if d.Volume != f.s.Seed.DataVolume || d.Tags[collect.SnapshotPodTag] != ref {
		t.Errorf("descriptor = %+v", d)
	}
	c := snaps[copies[0]]
	if tagsOf(c)[collect.SnapshotCopyOfTag] != ids[0] || !aws.ToBool(c.Encrypted) {
		t.Errorf("copy %s: tags %v encrypted %v", copies[0], tagsOf(c), aws.ToBool(c.Encrypted))
	}
	// The copy, under the forensic key, is shared as well as the source.
	for _, id := range []string{ids[0], copies[0]} {
		attr, err := f.ec2.DescribeSnapshotAttribute(t.Context(), &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(id), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
		if err != nil {
			t.Fatal(err)
		}
		if len(attr.CreateVolumePermissions) != 1 || aws.ToString(attr.CreateVolumePermissions[0].UserId) != "210987654321" {
			t.Errorf("snapshot %s create-volume permissions = %+v, want account 210987654321", id, attr.CreateVolumePermissions)
		}
	}
	cd := f.descriptor(t, copies[0])
	if cd.CopyOf != ids[0] || !cd.Encrypted || cd.KMSKey != key {
		t.Errorf("copy descriptor = %+v", cd)
	}

	// Again, with the copy: nothing new.
	if _, err := a.Run(t.Context(), f.env, call); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := len(accountSnapshots(t, f.ec2)); got != len(snaps) {
		t.Errorf("second run: %d snapshots, want %d", got, len(snaps))
	}
}

func TestAWSSnapshotPlanChangesNothing(t *testing.T) {
	f := setupSnap(t)
	a := snapshotAction(t, f)
	before, snapsBefore := labtest.AWSSnapshot(t, f.env.AWS), accountSnapshots(t, f.ec2)
	for _, params := range []map[string]any{{"instance": f.instance}, {"pod": f.ns + "/" + f.pod, "share-with-account": "210987654321"}} {
		p, err := a.Plan(t.Context(), f.env, snapCall(params))
		if err != nil {
			t.Fatalf("plan %v: %v", params, err)
		}
		creates := 0
		for _, c := range p.Changes {
			if c.Verb == "create" {
				creates++
			}
		}
		if creates == 0 || p.Done {
			t.Errorf("plan %v: %+v, want snapshots to create", params, p)
		}
		if len(p.Checks) != 1 || !p.Checks[0].Allowed {
			t.Errorf("plan %v checks = %+v, want the DryRun allowed", params, p.Checks)
		}
	}
	if after := labtest.AWSSnapshot(t, f.env.AWS); !maps.Equal(before, after) {
		t.Error("plan changed the account")
	}
	if after := accountSnapshots(t, f.ec2); len(after) != len(snapsBefore) {
		t.Errorf("plan: %d snapshots, want %d", len(after), len(snapsBefore))
	}
}

func TestAWSSnapshotBadInput(t *testing.T) {
	f := setupSnap(t)
	a := snapshotAction(t, f)
	before := accountSnapshots(t, f.ec2)

	_, err := a.Run(t.Context(), f.env, snapCall(map[string]any{"instance": "i-0123456789abcdef0"}))
	if !errors.Is(err, action.ErrBadInput) || !strings.Contains(err.Error(), "i-0123456789abcdef0") {
		t.Errorf("unknown instance: err = %v, want bad input naming it", err)
	}
	_, err = a.Plan(t.Context(), f.env, snapCall(map[string]any{"instance": "i-0123456789abcdef0"}))
	if !errors.Is(err, action.ErrBadInput) {
		t.Errorf("plan of an unknown instance: err = %v, want bad input", err)
	}
	_, err = a.Run(t.Context(), f.env, snapCall(map[string]any{"instance": f.instance, "share-with-account": "forensics"}))
	if !errors.Is(err, action.ErrBadInput) || !strings.Contains(err.Error(), "share-with-account") {
		t.Errorf("bad account: err = %v", err)
	}

	// A pod of the seed without a PersistentVolume.
	pods, err := f.lab.Kube.Typed.CoreV1().Pods(f.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := ""
	for _, p := range pods.Items {
		pvc := false
		for _, v := range p.Spec.Volumes {
			pvc = pvc || v.PersistentVolumeClaim != nil
		}
		if !pvc {
			other = p.Namespace + "/" + p.Name
			break
		}
	}
	if other == "" {
		t.Fatal("no pod without a PersistentVolume in the seed")
	}
	_, err = a.Run(t.Context(), f.env, snapCall(map[string]any{"pod": other}))
	if !errors.Is(err, action.ErrBadInput) || !errors.Is(err, collect.ErrNoEBSVolumes) || !strings.Contains(err.Error(), other) {
		t.Errorf("pod without EBS volumes: err = %v, want bad input naming it", err)
	}
	// A playbook that runs on any pod asks for a warning instead.
	res, err := a.Run(t.Context(), f.env, snapCall(map[string]any{"pod": other, "allow-no-volumes": true}))
	if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], other) || res.Outputs["complete"] != true {
		t.Errorf("pod without EBS volumes, allowed: %+v %v", res, err)
	}
	if after := accountSnapshots(t, f.ec2); len(after) != len(before) {
		t.Errorf("bad input created %d snapshots", len(after)-len(before))
	}
	if n := len(f.c.Items()); n != 0 {
		t.Errorf("bad input wrote %d items", n)
	}
}

// ebsStillWorking stands in for EBS while a snapshot is being taken, which
// moto never is (its snapshots complete at once): it rewrites every
// DescribeSnapshots answer to state pending at 37%. It also counts the
// DescribeSnapshots calls by snapshot ID (the waiter's polls and the
// read-back; the search for the step's snapshots filters by tag instead),
// which is how a test sees whether the action waited without timing it.
type ebsStillWorking struct {
	pending bool
	mu      sync.Mutex
	byID    int
}

func (e *ebsStillWorking) add(st *middleware.Stack) error {
	return st.Initialize.Add(middleware.InitializeMiddlewareFunc("ebsStillWorking", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		if awsmiddleware.GetOperationName(ctx) != "DescribeSnapshots" || err != nil {
			return out, md, err
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if len(in.Parameters.(*ec2.DescribeSnapshotsInput).SnapshotIds) > 0 {
			e.byID++
		}
		if e.pending {
			r := out.Result.(*ec2.DescribeSnapshotsOutput)
			for i := range r.Snapshots {
				r.Snapshots[i].State, r.Snapshots[i].Progress, r.Snapshots[i].CompletionTime = ec2types.SnapshotStatePending, aws.String("37%"), nil
			}
		}
		return out, md, err
	}), middleware.Before)
}

func (e *ebsStillWorking) describedByID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.byID
}

// wait: false returns while EBS still works on the snapshots: one
// read-back and no waiter poll, descriptors that say pending, a warning;
// a resume finds the pending snapshots and takes none again.
func TestAWSSnapshotNoWait(t *testing.T) {
	f := setupSnap(t)
	a := snapshotAction(t, f)
	vols := instanceVolumes(t, f.ec2, f.instance)
	ebs := &ebsStillWorking{pending: true}
	rec := &eaws.Recorder{}
	env := *f.env
	env.AWS = f.lab.AWSWith(t, eaws.Options{Recorder: rec})
	env.AWS.APIOptions = append(env.AWS.APIOptions, ebs.add)
	// The short timeout bounds a wrong wait on snapshots that stay
	// pending: it would fail the run at once instead of hanging the test.
	call := snapCall(map[string]any{"instance": f.instance, "wait": false, "timeout": 2 * time.Second})

	res, err := a.Run(t.Context(), &env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := ebs.describedByID(); n != 1 {
		t.Errorf("DescribeSnapshots by ID %d times, want 1 (the read-back; the waiter would poll too)", n)
	}
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	calls := rec.Calls()
	for _, want := range []string{"ec2:CreateSnapshots", "ec2:CreateTags", "ec2:DescribeSnapshots"} {
		if !slices.Contains(calls, want) {
			t.Errorf("calls %v, want %s", calls, want)
		}
	}
	for _, c := range calls {
		if c == "ec2:CopySnapshot" || c == "ec2:ModifySnapshotAttribute" || c == "ec2:CreateSnapshot" {
			t.Errorf("calls %s, which a snapshot without copy or share does not need", c)
		}
	}
	ids, _ := res.Outputs["snapshots"].([]string)
	if len(ids) != len(vols) {
		t.Fatalf("outputs snapshots = %v, want one per volume %v", ids, vols)
	}
	if len(res.Warnings) != len(ids) {
		t.Errorf("warnings %v, want one per pending snapshot", res.Warnings)
	}
	for _, id := range ids {
		d := f.descriptor(t, id)
		if d.State != string(ec2types.SnapshotStatePending) || d.Progress != "37%" || d.Completion != nil {
			t.Errorf("descriptor %s: state %q progress %q completion %v, want pending at 37%% with no completion", id, d.State, d.Progress, d.Completion)
		}
		if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, id) && strings.Contains(w, "pending") }) {
			t.Errorf("no warning names pending snapshot %s: %v", id, res.Warnings)
		}
	}
	before := accountSnapshots(t, f.ec2)

	// Resumed on the same case, still pending: the same snapshots.
	res2, err := a.Run(t.Context(), &env, call)
	if err != nil {
		t.Fatalf("resumed run: %v", err)
	}
	if ids2, _ := res2.Outputs["snapshots"].([]string); !slices.Equal(ids2, ids) {
		t.Errorf("resumed run snapshots %v, want %v", ids2, ids)
	}
	// Resumed with wait, on a case that lost the descriptors, once EBS
	// has completed them (moto's own answers): still the same snapshots,
	// now waited on (the waiter's poll and the read-back) and completed.
	ebs.pending = false
	byID := ebs.describedByID()
	env.Evidence = labtest.NewCase(t, env.Incident)
	res3, err := a.Run(t.Context(), &env, snapCall(map[string]any{"instance": f.instance}))
	if err != nil {
		t.Fatalf("resumed run with wait: %v", err)
	}
	if ids3, _ := res3.Outputs["snapshots"].([]string); !slices.Equal(ids3, ids) {
		t.Errorf("resumed run with wait: snapshots %v, want %v", ids3, ids)
	}
	if n := ebs.describedByID() - byID; n < 2 {
		t.Errorf("with wait: DescribeSnapshots by ID %d times, want the waiter's poll and the read-back", n)
	}
	for _, id := range ids {
		var d collect.SnapshotDescriptor
		readItem(t, env.Evidence.(*evidence.Case), "aws/snapshots/"+id+".json", &d)
		if d.State != string(ec2types.SnapshotStateCompleted) {
			t.Errorf("descriptor %s after the wait: state %q, want completed", id, d.State)
		}
	}
	after := accountSnapshots(t, f.ec2)
	if len(after) != len(before) {
		t.Errorf("resumes created %d snapshots, want none", len(after)-len(before))
	}
	for v, n := range perVolume(after) {
		if n != 1 {
			t.Errorf("volume %s has %d snapshots, want 1", v, n)
		}
	}
}

// createKMSKey creates a symmetric KMS key in the test's moto account and
// returns its ARN. The module has no KMS client (EC2 uses the key, eksir
// never calls KMS), so this is one signed JSON 1.1 request
// (TrentService.CreateKey), as the KMS API model shapes it.
func createKMSKey(t *testing.T, f *snapFixture) string {
	t.Helper()
	ctx := t.Context()
	body := []byte(`{"Description":"eksir forensic snapshot key (test)","KeyUsage":"ENCRYPT_DECRYPT","KeySpec":"SYMMETRIC_DEFAULT"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.lab.State.AWSEndpoint+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.CreateKey")
	req.Header.Set("x-moto-account-id", f.lab.Account)
	creds, err := f.lab.AWS.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kms", f.lab.AWS.Region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ KeyMetadata struct{ Arn, KeyId string } }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(out.KeyMetadata.Arn, "arn:aws:kms:") {
		t.Fatalf("KMS CreateKey: %s %+v (%v)", resp.Status, out, err)
	}
	return out.KeyMetadata.Arn
}

// The copy with a forensic KMS key, a real key of the account: each
// snapshot's copy is tagged as eksir's copy of it, encrypted, names the key
// in DescribeSnapshots and in its descriptor, and is shared with the
// forensic account like its source. moto keeps the KmsKeyId it is given
// and re-encrypts nothing (docs/lab.md): what KMS does with the key is not
// proven here (docs/aws.md).
func TestAWSSnapshotKMSCopy(t *testing.T) {
	f := setupSnap(t)
	a := snapshotAction(t, f)
	key := createKMSKey(t, f)
	const forensic = "210987654321"
	call := snapCall(map[string]any{"instance": f.instance, "copy-kms-key": key, "share-with-account": forensic})
	res, err := a.Run(t.Context(), f.env, call)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	ids, _ := res.Outputs["snapshots"].([]string)
	copies, _ := res.Outputs["copies"].([]string)
	vols := instanceVolumes(t, f.ec2, f.instance)
	if len(ids) != len(vols) || len(copies) != len(ids) {
		t.Fatalf("outputs = %v, want a snapshot and a copy per volume %v", res.Outputs, vols)
	}
	snaps := accountSnapshots(t, f.ec2)
	copyOf := map[string]string{}
	for _, id := range copies {
		c, ok := snaps[id]
		if !ok {
			t.Fatalf("copy %s is not in DescribeSnapshots", id)
		}
		tags := tagsOf(c)
		src := tags[collect.SnapshotCopyOfTag]
		copyOf[src] = id
		if !slices.Contains(ids, src) || tags[collect.SnapshotIncidentTag] != f.env.Incident || tags[collect.SnapshotStepTag] != call.Step ||
			tags[collect.SnapshotInstanceTag] != f.instance || tags[collect.SnapshotVolumeTag] != tagsOf(snaps[src])[collect.SnapshotVolumeTag] {
			t.Errorf("copy %s tags %v, want eksir's tags of a source among %v", id, tags, ids)
		}
		if !aws.ToBool(c.Encrypted) || aws.ToString(c.KmsKeyId) != key {
			t.Errorf("copy %s: encrypted %v, KMS key %q, want encrypted with %s", id, aws.ToBool(c.Encrypted), aws.ToString(c.KmsKeyId), key)
		}
		d := f.descriptor(t, id)
		if d.CopyOf != src || !d.Encrypted || d.KMSKey != key || d.Snapshot != id {
			t.Errorf("copy descriptor %+v, want a copy of %s encrypted with %s", d, src, key)
		}
	}
	if len(copyOf) != len(ids) {
		t.Errorf("copies %v cover sources %v, want each of %v once", copies, copyOf, ids)
	}
	for _, id := range append(slices.Clone(ids), copies...) {
		attr, err := f.ec2.DescribeSnapshotAttribute(t.Context(), &ec2.DescribeSnapshotAttributeInput{SnapshotId: aws.String(id), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission})
		if err != nil {
			t.Fatal(err)
		}
		if len(attr.CreateVolumePermissions) != 1 || aws.ToString(attr.CreateVolumePermissions[0].UserId) != forensic {
			t.Errorf("snapshot %s create-volume permissions = %+v, want account %s alone", id, attr.CreateVolumePermissions, forensic)
		}
	}
	// Again: no second copy.
	if _, err := a.Run(t.Context(), f.env, call); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if got := len(accountSnapshots(t, f.ec2)); got != len(snaps) {
		t.Errorf("second run: %d snapshots, want %d", got, len(snaps))
	}
}
