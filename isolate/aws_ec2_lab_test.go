package isolate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go/middleware"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/internal/naming"
	"github.com/eksir/eksir/isolate"
	"github.com/eksir/eksir/lab"
)

// awsFixture is a seeded scenario (2 nodes x 2 pods) whose action env
// talks to moto, with the clock of revokeTime.
type awsFixture struct {
	s        *labtest.Scenario
	ec2      *ec2.Client
	asg      *autoscaling.Client
	iam      *iam.Client
	instance string
	vpc      string
}

func setupAWS(t *testing.T) *awsFixture {
	t.Helper()
	s := labtest.SeedScenario(t, 2, 2, isolate.Register)
	s.Env.AWS = s.Lab.AWS
	s.Env.Now = func() time.Time { return revokeTime }
	return &awsFixture{s: s, ec2: ec2.NewFromConfig(s.Lab.AWS), asg: autoscaling.NewFromConfig(s.Lab.AWS), iam: iam.NewFromConfig(s.Lab.AWS),
		instance: s.Seed.Targets[lab.TargetInstance], vpc: s.Seed.VPC}
}

func (f *awsFixture) act(t *testing.T, name string) action.Action {
	t.Helper()
	a, ok := f.s.Registry.Lookup(name)
	if !ok {
		t.Fatalf("action %s not registered", name)
	}
	return a
}

// envFor is the fixture's env for another incident, or with another AWS
// configuration.
func (f *awsFixture) envFor(incident string, cfg *aws.Config) *action.Env {
	e := *f.s.Env
	if incident != "" {
		e.Incident = incident
	}
	if cfg != nil {
		e.AWS = *cfg
	}
	return &e
}

func netCall(instance string, extra map[string]any) action.Call {
	p := map[string]any{"instance": instance, "two-step": true, "settle": time.Duration(0)}
	for k, v := range extra {
		p[k] = v
	}
	return action.Call{Step: "isolate", Params: p}
}

func protectCall(instance, mode string) action.Call {
	return action.Call{Step: "protect", Params: map[string]any{"instance": instance, "asg": mode}}
}

// snapshot is everything the actions could change, read from moto.
func (f *awsFixture) snapshot(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	var parts []any
	in, err := f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range in.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	sort.Strings(ids)
	parts = append(parts, in.Reservations)
	for _, id := range ids {
		for _, a := range []ec2types.InstanceAttributeName{ec2types.InstanceAttributeNameDisableApiTermination, ec2types.InstanceAttributeNameDisableApiStop} {
			o, err := f.ec2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: a})
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, id, a, o.DisableApiTermination, o.DisableApiStop)
		}
	}
	enis, err := f.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil {
		t.Fatal(err)
	}
	sgs, err := f.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	vols, err := f.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	ai, err := f.asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := f.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	parts = append(parts, enis.NetworkInterfaces, sgs.SecurityGroups, vols.Volumes, ai.AutoScalingInstances, ag.AutoScalingGroups)
	b, err := json.Marshal(parts)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// interfaces returns the groups and tags of the suspect's interfaces:
// attached ones and the branch interfaces of its trunk.
type eniState struct {
	groups []string
	tags   map[string]string
}

func (f *awsFixture) interfaces(t *testing.T, instance string) map[string]eniState {
	t.Helper()
	out := map[string]eniState{}
	att, err := f.ec2.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{instance}}}})
	if err != nil {
		t.Fatal(err)
	}
	all := att.NetworkInterfaces
	var ids []string
	for _, n := range att.NetworkInterfaces {
		ids = append(ids, aws.ToString(n.NetworkInterfaceId))
	}
	br, err := f.ec2.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("tag:vpcresources.k8s.aws/trunk-eni-id"), Values: ids}}})
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, br.NetworkInterfaces...)
	for _, n := range all {
		s := eniState{tags: map[string]string{}}
		for _, g := range n.Groups {
			s.groups = append(s.groups, aws.ToString(g.GroupId))
		}
		for _, tg := range n.TagSet {
			s.tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		out[aws.ToString(n.NetworkInterfaceId)] = s
	}
	return out
}

func (f *awsFixture) groupsByName(t *testing.T, name string) []ec2types.SecurityGroup {
	t.Helper()
	out, err := f.ec2.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{f.vpc}}, {Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.SecurityGroups
}

func groupsOf(m map[string]eniState) map[string][]string {
	out := map[string][]string{}
	for id, s := range m {
		out[id] = s.groups
	}
	return out
}

func TestAWSInstanceNetworkIsolatesEveryInterfaceAndRestores(t *testing.T) {
	f := setupAWS(t)
	ctx, a := t.Context(), f.act(t, "isolate.instance-network")
	before := f.interfaces(t, f.instance)
	if len(before) != 3 {
		t.Fatalf("seed: want the suspect's primary, secondary and branch interfaces, got %v", before)
	}
	world := f.snapshot(t)

	call := netCall(f.instance, map[string]any{"node": f.s.Node})
	p, err := a.Plan(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	if f.snapshot(t) != world {
		t.Fatal("plan changed moto")
	}
	if p.Done || len(p.Changes) != 1+1+3 {
		t.Errorf("plan: want quarantine+untracked creates and 3 interface changes, got done=%v %+v", p.Done, p.Changes)
	}
	var branch bool
	for _, c := range p.Changes {
		branch = branch || strings.Contains(c.Object, "branch of trunk")
	}
	if !branch {
		t.Errorf("plan does not show the branch interface: %+v", p.Changes)
	}
	if len(p.Checks) != 3 || slices.ContainsFunc(p.Checks, func(c action.PermissionCheck) bool { return !c.Allowed || c.Reason != "" }) {
		t.Errorf("permission checks: %+v", p.Checks)
	}
	if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "node "+f.s.Node) && strings.Contains(w, "NotReady") }) {
		t.Errorf("warnings do not name the node going NotReady: %v", p.Warnings)
	}

	res, err := a.Run(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	q := f.groupsByName(t, "eksir-quarantine-"+f.vpc)
	if len(q) != 1 || len(q[0].IpPermissions)+len(q[0].IpPermissionsEgress) != 0 {
		t.Fatalf("want one quarantine group without rules, got %+v", q)
	}
	qid := aws.ToString(q[0].GroupId)
	open := f.groupsByName(t, "eksir-untracked-"+f.vpc)
	if len(open) != 1 || len(open[0].IpPermissions) == 0 || len(open[0].IpPermissionsEgress) == 0 {
		t.Errorf("want one all-open group, got %+v", open)
	}
	if res.Outputs["quarantine_group"] != qid || res.Outputs["interfaces"] != 3 {
		t.Errorf("outputs: %v", res.Outputs)
	}
	key := "eksir.io/isolated-" + shortHash(f.s.Env.Incident)
	after := f.interfaces(t, f.instance)
	for id, s := range after {
		if !reflect.DeepEqual(s.groups, []string{qid}) {
			t.Errorf("%s: groups %v, want only the quarantine group", id, s.groups)
		}
		if s.tags[key] != strings.Join(before[id].groups, ",") {
			t.Errorf("%s: original tag %q, want %v", id, s.tags[key], before[id].groups)
		}
	}

	p2, err := a.Plan(ctx, f.s.Env, call)
	if err != nil || !p2.Done {
		t.Errorf("plan after run: done=%v err=%v %+v", p2.Done, err, p2.Changes)
	}
	state := f.snapshot(t)
	res2, err := a.Run(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	if string(res2.Undo) != string(res.Undo) {
		t.Errorf("second run's undo differs:\n%s\n%s", res.Undo, res2.Undo)
	}
	if f.snapshot(t) != state {
		t.Error("second run changed moto")
	}

	rs, err := a.(action.Reverser).Undo(ctx, f.s.Env, call, res.Undo)
	if err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(f.interfaces(t, f.instance)); !reflect.DeepEqual(got, groupsOf(before)) {
		t.Errorf("after undo groups %v, want %v", got, groupsOf(before))
	}
	for id, s := range f.interfaces(t, f.instance) {
		if _, ok := s.tags[key]; ok {
			t.Errorf("%s keeps the isolation tag after undo", id)
		}
	}
	for _, r := range rs {
		if strings.HasPrefix(r.Object, "network-interface") && r.Outcome != action.OutcomeRestored {
			t.Errorf("undo: %+v", r)
		}
	}
	if len(f.groupsByName(t, "eksir-quarantine-"+f.vpc)) != 1 {
		t.Error("undo deleted the shared quarantine group")
	}
	rs, err = a.(action.Reverser).Undo(ctx, f.s.Env, call, res.Undo)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Outcome != action.OutcomeClean {
			t.Errorf("second undo: %+v, want already-clean", r)
		}
	}

	// Undo without a record works from the interfaces' tags.
	if _, err := a.Run(ctx, f.s.Env, call); err != nil {
		t.Fatal(err)
	}
	if _, err := a.(action.Reverser).Undo(ctx, f.s.Env, call, nil); err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(f.interfaces(t, f.instance)); !reflect.DeepEqual(got, groupsOf(before)) {
		t.Errorf("after undo without record groups %v, want %v", got, groupsOf(before))
	}
	if n := len(f.groupsByName(t, "eksir-quarantine-"+f.vpc)); n != 1 {
		t.Errorf("%d quarantine groups in the VPC, want 1", n)
	}
}

func TestAWSInstanceNetworkForensicGroup(t *testing.T) {
	f := setupAWS(t)
	ctx, a := t.Context(), f.act(t, "isolate.instance-network")
	before := f.interfaces(t, f.instance)
	call := netCall(f.instance, map[string]any{"forensic-cidr": "10.99.0.0/24", "two-step": false})
	p, err := a.Plan(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "single step") }) {
		t.Errorf("single-step plan does not warn about tracked connections: %v", p.Warnings)
	}
	res, err := a.Run(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	fg := f.groupsByName(t, "eksir-forensic-"+shortHash(f.s.Env.Incident))
	if len(fg) != 1 || len(fg[0].IpPermissions) != 1 || aws.ToString(fg[0].IpPermissions[0].IpRanges[0].CidrIp) != "10.99.0.0/24" || len(fg[0].IpPermissionsEgress) != 0 {
		t.Fatalf("forensic group: %+v", fg)
	}
	for id, s := range f.interfaces(t, f.instance) {
		if len(s.groups) != 2 || !slices.Contains(s.groups, aws.ToString(fg[0].GroupId)) {
			t.Errorf("%s: groups %v, want quarantine + forensic", id, s.groups)
		}
	}
	if len(f.groupsByName(t, "eksir-untracked-"+f.vpc)) != 0 {
		t.Error("single step created the untracked group")
	}
	if _, err := a.(action.Reverser).Undo(ctx, f.s.Env, call, res.Undo); err != nil {
		t.Fatal(err)
	}
	if got := groupsOf(f.interfaces(t, f.instance)); !reflect.DeepEqual(got, groupsOf(before)) {
		t.Errorf("after undo groups %v, want %v", got, groupsOf(before))
	}
	if n := len(f.groupsByName(t, "eksir-forensic-"+shortHash(f.s.Env.Incident))); n != 0 {
		t.Errorf("forensic group not deleted (%d left)", n)
	}
}

func TestAWSInstanceProtectAndRestore(t *testing.T) {
	f := setupAWS(t)
	ctx, a := t.Context(), f.act(t, "isolate.instance-protect")
	world := f.snapshot(t)
	origVols := f.volumes(t, f.instance)
	origASG := f.asgState(t, f.instance)
	if n, dot := len(origVols), origVols[f.s.Seed.DataVolume].dot; n != 3 || dot {
		t.Fatalf("seed: want root, data and PV volumes, the PV kept on termination: %+v", origVols)
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(origVols)), func(v volState) bool { return v.dot }) {
		t.Fatalf("seed: no volume is deleted on termination, nothing to protect: %+v", origVols)
	}
	if origASG.group == "" {
		t.Fatal("seed: the suspect is not in an Auto Scaling group")
	}
	call := protectCall(f.instance, isolate.ASGProtect)
	p, err := a.Plan(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	if f.snapshot(t) != world {
		t.Fatal("plan changed moto")
	}
	if p.Done || len(p.Checks) != 2 || !p.Checks[0].Allowed {
		t.Errorf("plan: %+v", p)
	}
	res, err := a.Run(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	if term, stop := f.flags(t, f.instance); !term || !stop {
		t.Errorf("flags after run: termination=%v stop=%v", term, stop)
	}
	key := "eksir.io/protect-" + shortHash(f.s.Env.Incident)
	for id, v := range f.volumes(t, f.instance) {
		if v.dot {
			t.Errorf("volume %s still deleted on termination", id)
		}
		if v.tags[key] != fmt.Sprintf("delete-on-termination=%t", origVols[id].dot) || v.tags[isolate.IncidentKey(f.s.Env.Incident)] != f.s.Env.Incident {
			t.Errorf("volume %s tags %v", id, v.tags)
		}
	}
	if st := f.asgState(t, f.instance); !st.protected || st.group != origASG.group {
		t.Errorf("ASG after run: %+v", st)
	}
	tags := f.instanceTags(t, f.instance)
	if tags[key] != "termination=false,stop=false,scale-in=false,mode=protect" || tags[key+".asg"] != origASG.group {
		t.Errorf("instance tags: %v", tags)
	}
	if p, err := a.Plan(ctx, f.s.Env, call); err != nil || !p.Done {
		t.Errorf("plan after run: done=%v err=%v %+v", p.Done, err, p.Changes)
	}
	state := f.snapshot(t)
	res2, err := a.Run(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	if string(res2.Undo) != string(res.Undo) || f.snapshot(t) != state {
		t.Errorf("second run changed something or another undo:\n%s\n%s", res.Undo, res2.Undo)
	}
	if _, err := a.(action.Reverser).Undo(ctx, f.s.Env, call, res.Undo); err != nil {
		t.Fatal(err)
	}
	if f.snapshot(t) != world {
		t.Errorf("undo did not restore moto exactly")
	}
	rs, err := a.(action.Reverser).Undo(ctx, f.s.Env, call, res.Undo)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Outcome != action.OutcomeClean {
			t.Errorf("second undo: %+v", r)
		}
	}

	// detach: the group keeps its desired capacity; release attaches again
	// and, without a record, restores the rest.
	desired := f.desired(t, origASG.group)
	dcall := protectCall(f.instance, isolate.ASGDetach)
	p, err = a.Plan(ctx, f.s.Env, dcall)
	if err != nil || !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "replacement") }) {
		t.Errorf("detach plan warnings %v (err %v)", p.Warnings, err)
	}
	if _, err := a.Run(ctx, f.s.Env, dcall); err != nil {
		t.Fatal(err)
	}
	if st := f.asgState(t, f.instance); st.group != "" {
		t.Errorf("still in %s after detach", st.group)
	}
	if d := f.desired(t, origASG.group); d != desired {
		t.Errorf("desired capacity %d after detach, want %d", d, desired)
	}
	if _, err := a.Run(ctx, f.s.Env, dcall); err != nil {
		t.Fatalf("second detach run: %v", err)
	}
	if _, err := a.(action.Reverser).Undo(ctx, f.s.Env, dcall, nil); err != nil {
		t.Fatal(err)
	}
	if st := f.asgState(t, f.instance); st != origASG {
		t.Errorf("ASG membership after undo %+v, want %+v", st, origASG)
	}
	if term, stop := f.flags(t, f.instance); term || stop {
		t.Errorf("flags after undo: termination=%v stop=%v", term, stop)
	}
	if got := f.volumes(t, f.instance); !reflect.DeepEqual(got, origVols) {
		t.Errorf("volumes after undo %+v, want %+v", got, origVols)
	}
}

func TestAWSTwoIncidentsOnOneInstance(t *testing.T) {
	f := setupAWS(t)
	ctx := t.Context()
	net, prot := f.act(t, "isolate.instance-network"), f.act(t, "isolate.instance-protect")
	before := f.interfaces(t, f.instance)
	world := f.snapshot(t)
	envA, envB := f.s.Env, f.envFor("inc-other", nil)
	nc, pc := netCall(f.instance, nil), protectCall(f.instance, isolate.ASGProtect)
	var undo [2][2]json.RawMessage
	for i, env := range []*action.Env{envA, envB} {
		r, err := net.Run(ctx, env, nc)
		if err != nil {
			t.Fatal(err)
		}
		undo[i][0] = r.Undo
		if r, err = prot.Run(ctx, env, pc); err != nil {
			t.Fatal(err)
		}
		undo[i][1] = r.Undo
	}
	// B found the instance isolated and protected by A: its originals are
	// A's originals, not A's quarantine.
	keyB := "eksir.io/isolated-" + shortHash("inc-other")
	for id, s := range f.interfaces(t, f.instance) {
		if s.tags[keyB] != strings.Join(before[id].groups, ",") {
			t.Errorf("%s: B's original %q, want %v", id, s.tags[keyB], before[id].groups)
		}
	}
	if _, err := net.(action.Reverser).Undo(ctx, envA, nc, undo[0][0]); err != nil {
		t.Fatal(err)
	}
	if _, err := prot.(action.Reverser).Undo(ctx, envA, pc, undo[0][1]); err != nil {
		t.Fatal(err)
	}
	q := aws.ToString(f.groupsByName(t, "eksir-quarantine-"+f.vpc)[0].GroupId)
	for id, s := range f.interfaces(t, f.instance) {
		if !reflect.DeepEqual(s.groups, []string{q}) {
			t.Errorf("%s: groups %v after releasing A, want B's quarantine", id, s.groups)
		}
	}
	if term, stop := f.flags(t, f.instance); !term || !stop {
		t.Errorf("releasing A removed B's protection: termination=%v stop=%v", term, stop)
	}
	if st := f.asgState(t, f.instance); !st.protected {
		t.Error("releasing A removed B's scale-in protection")
	}
	if _, err := net.(action.Reverser).Undo(ctx, envB, nc, undo[1][0]); err != nil {
		t.Fatal(err)
	}
	if _, err := prot.(action.Reverser).Undo(ctx, envB, pc, undo[1][1]); err != nil {
		t.Fatal(err)
	}
	// Everything back, but the quarantine and untracked groups, which stay
	// for the VPC's next incident.
	for _, g := range f.groupsByName(t, "eksir-quarantine-"+f.vpc) {
		if _, err := f.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId}); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range f.groupsByName(t, "eksir-untracked-"+f.vpc) {
		if _, err := f.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId}); err != nil {
			t.Fatal(err)
		}
	}
	if f.snapshot(t) != world {
		t.Error("releasing both incidents did not restore moto exactly")
	}
}

// crashAfter makes every call fail once n mutating calls went through, as
// if eksir were killed there (the call after the n-th never reaches AWS).
func crashAfter(cfg aws.Config, n int64) aws.Config {
	c := cfg.Copy()
	var done atomic.Int64
	c.APIOptions = append(slices.Clone(c.APIOptions), func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("crash", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := middleware.GetOperationName(ctx)
			if strings.HasPrefix(op, "Describe") {
				return next.HandleInitialize(ctx, in)
			}
			if done.Add(1) > n {
				return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("crashed")
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	})
	return c
}

func TestAWSCrashInsideRunThenResume(t *testing.T) {
	f := setupAWS(t)
	ctx := t.Context()
	net, prot := f.act(t, "isolate.instance-network"), f.act(t, "isolate.instance-protect")
	before := f.interfaces(t, f.instance)
	origVols := f.volumes(t, f.instance)
	world := f.snapshot(t)
	key := "eksir.io/isolated-" + shortHash(f.s.Env.Incident)
	// The first isolation of the VPC makes 15 mutating calls: create and
	// empty the quarantine group, create the untracked group and add its 3
	// missing rules, then 3 tags and 3+3 group swaps; the first crash is
	// inside the untracked group's rules. Later ones find the groups and
	// make the 9 interface calls, and crash after each of them.
	for _, n := range []int64{4, 1, 2, 3, 4, 5, 6, 7, 8} {
		t.Run(fmt.Sprintf("network-after-%d", n), func(t *testing.T) {
			cfg := crashAfter(f.s.Lab.AWS, n)
			if _, err := net.Run(ctx, f.envFor("", &cfg), netCall(f.instance, nil)); err == nil {
				t.Fatalf("no crash after %d calls", n)
			}
			res, err := net.Run(ctx, f.s.Env, netCall(f.instance, nil))
			if err != nil {
				t.Fatal(err)
			}
			if q, o := f.groupsByName(t, "eksir-quarantine-"+f.vpc), f.groupsByName(t, "eksir-untracked-"+f.vpc); len(q) != 1 || len(o) != 1 || len(q[0].IpPermissionsEgress) != 0 {
				t.Fatalf("groups after resume: quarantine %+v untracked %d", q, len(o))
			}
			var u isolate.NetworkUndo
			if err := json.Unmarshal(res.Undo, &u); err != nil {
				t.Fatal(err)
			}
			for id, s := range f.interfaces(t, f.instance) {
				if s.tags[key] != strings.Join(before[id].groups, ",") || !reflect.DeepEqual(u.Interfaces[id], before[id].groups) {
					t.Errorf("%s: original tag %q, record %v, want %v", id, s.tags[key], u.Interfaces[id], before[id].groups)
				}
			}
			if _, err := net.(action.Reverser).Undo(ctx, f.s.Env, netCall(f.instance, nil), nil); err != nil {
				t.Fatal(err)
			}
			if got := groupsOf(f.interfaces(t, f.instance)); !reflect.DeepEqual(got, groupsOf(before)) {
				t.Errorf("after undo groups %v, want %v", got, groupsOf(before))
			}
		})
	}
	for _, n := range []int64{1, 2, 3, 4, 5} {
		t.Run(fmt.Sprintf("protect-after-%d", n), func(t *testing.T) {
			cfg := crashAfter(f.s.Lab.AWS, n)
			if _, err := prot.Run(ctx, f.envFor("", &cfg), protectCall(f.instance, isolate.ASGProtect)); err == nil {
				t.Fatalf("no crash after %d calls", n)
			}
			if _, err := prot.Run(ctx, f.s.Env, protectCall(f.instance, isolate.ASGProtect)); err != nil {
				t.Fatal(err)
			}
			tags := f.instanceTags(t, f.instance)
			if k := "eksir.io/protect-" + shortHash(f.s.Env.Incident); tags[k] != "termination=false,stop=false,scale-in=false,mode=protect" {
				t.Errorf("original after resume: %q", tags[k])
			}
			if _, err := prot.(action.Reverser).Undo(ctx, f.s.Env, protectCall(f.instance, isolate.ASGProtect), nil); err != nil {
				t.Fatal(err)
			}
			if got := f.volumes(t, f.instance); !reflect.DeepEqual(got, origVols) {
				t.Errorf("volumes after undo %+v, want %+v", got, origVols)
			}
		})
	}
	for _, g := range append(f.groupsByName(t, "eksir-quarantine-"+f.vpc), f.groupsByName(t, "eksir-untracked-"+f.vpc)...) {
		if _, err := f.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId}); err != nil {
			t.Fatal(err)
		}
	}
	if f.snapshot(t) != world {
		t.Error("crashes, resumes and releases did not leave moto as seeded")
	}
}

func TestAWSSpotInstanceProtection(t *testing.T) {
	f := setupAWS(t)
	ctx := t.Context()
	sn, err := f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{f.vpc}}}})
	if err != nil || len(sn.Subnets) == 0 {
		t.Fatalf("subnets: %v", err)
	}
	run, err := f.ec2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0eks1340al2023x86"), InstanceType: ec2types.InstanceTypeM5Xlarge,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: sn.Subnets[0].SubnetId,
		InstanceMarketOptions: &ec2types.InstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeSpot},
		BlockDeviceMappings:   []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{VolumeSize: aws.Int32(20), DeleteOnTermination: aws.Bool(true)}}}})
	if err != nil {
		t.Fatal(err)
	}
	spot := aws.ToString(run.Instances[0].InstanceId)
	a := f.act(t, "isolate.instance-protect")
	call := protectCall(spot, isolate.ASGProtect)
	p, err := a.Plan(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "Spot") }) {
		t.Errorf("plan does not warn about Spot: %v", p.Warnings)
	}
	res, err := a.Run(ctx, f.s.Env, call)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["spot"] != true || !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "Spot") }) {
		t.Errorf("run: outputs %v warnings %v", res.Outputs, res.Warnings)
	}
	if term, stop := f.flags(t, spot); term || !stop {
		t.Errorf("spot flags: termination=%v (want false: not attempted) stop=%v", term, stop)
	}
	for id, v := range f.volumes(t, spot) {
		if v.dot {
			t.Errorf("spot volume %s still deleted on termination", id)
		}
	}
}

func TestAWSUnknownInstanceIsBadInput(t *testing.T) {
	f := setupAWS(t)
	ctx := t.Context()
	world := f.snapshot(t)
	for _, name := range []string{"isolate.instance-network", "isolate.instance-protect"} {
		a := f.act(t, name)
		for _, id := range []string{"i-0123456789abcdef0", "not-an-instance"} {
			call := action.Call{Step: "s", Params: map[string]any{"instance": id, "asg": "protect", "two-step": true}}
			_, err := a.Plan(ctx, f.s.Env, call)
			if !errors.Is(err, action.ErrBadInput) || !strings.Contains(err.Error(), "instance") {
				t.Errorf("%s plan %s: %v, want bad input naming instance", name, id, err)
			}
			_, err = a.Run(ctx, f.s.Env, call)
			if !errors.Is(err, action.ErrBadInput) || !strings.Contains(err.Error(), "instance") {
				t.Errorf("%s run %s: %v, want bad input naming instance", name, id, err)
			}
		}
	}
	if f.snapshot(t) != world {
		t.Error("bad input changed moto")
	}
}

type volState struct {
	dot  bool
	tags map[string]string
}

func (f *awsFixture) volumes(t *testing.T, instance string) map[string]volState {
	t.Helper()
	in, err := f.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]volState{}
	for _, b := range in.Reservations[0].Instances[0].BlockDeviceMappings {
		id := aws.ToString(b.Ebs.VolumeId)
		v, err := f.ec2.DescribeVolumes(t.Context(), &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		s := volState{dot: aws.ToBool(b.Ebs.DeleteOnTermination), tags: map[string]string{}}
		for _, tg := range v.Volumes[0].Tags {
			s.tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		out[id] = s
	}
	return out
}

func (f *awsFixture) instanceTags(t *testing.T, instance string) map[string]string {
	t.Helper()
	in, err := f.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tg := range in.Reservations[0].Instances[0].Tags {
		out[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return out
}

func (f *awsFixture) flags(t *testing.T, instance string) (term, stop bool) {
	t.Helper()
	a, err := f.ec2.DescribeInstanceAttribute(t.Context(), &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(instance), Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.ec2.DescribeInstanceAttribute(t.Context(), &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(instance), Attribute: ec2types.InstanceAttributeNameDisableApiStop})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToBool(a.DisableApiTermination.Value), aws.ToBool(b.DisableApiStop.Value)
}

type asgMembership struct {
	group     string
	protected bool
}

func (f *awsFixture) asgState(t *testing.T, instance string) asgMembership {
	t.Helper()
	out, err := f.asg.DescribeAutoScalingInstances(t.Context(), &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{instance}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range out.AutoScalingInstances {
		return asgMembership{group: aws.ToString(a.AutoScalingGroupName), protected: aws.ToBool(a.ProtectedFromScaleIn)}
	}
	return asgMembership{}
}

func (f *awsFixture) desired(t *testing.T, group string) int32 {
	t.Helper()
	out, err := f.asg.DescribeAutoScalingGroups(t.Context(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("describe %s: %v", group, err)
	}
	return aws.ToInt32(out.AutoScalingGroups[0].DesiredCapacity)
}

func shortHash(s string) string { return naming.ShortHash(s, 10) }
