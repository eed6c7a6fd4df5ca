package isolate_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awsiam"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/internal/naming"
	"github.com/eksir/eksir/isolate"
	"github.com/eksir/eksir/lab"
)

// revokeTime is the clock of the AWS revocation tests: the deny policies
// carry it, and the tests compare documents, never wall-clock times.
var revokeTime = time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)

type awsFixture struct {
	s   *labtest.Scenario
	iam *iam.Client
	ec2 *ec2.Client
}

func setupAWS(t *testing.T) *awsFixture {
	t.Helper()
	s := labtest.SeedScenario(t, 2, 2, isolate.Register)
	s.Env.AWS = s.Lab.AWS
	s.Env.Now = func() time.Time { return revokeTime }
	return &awsFixture{s: s, iam: iam.NewFromConfig(s.Lab.AWS), ec2: ec2.NewFromConfig(s.Lab.AWS)}
}

func (f *awsFixture) action(t *testing.T, name string) action.Action {
	t.Helper()
	a, ok := f.s.Registry.Lookup(name)
	if !ok {
		t.Fatalf("action %s not registered", name)
	}
	return a
}

// envFor is the scenario's env for another incident.
func (f *awsFixture) envFor(incident string) *action.Env {
	e := *f.s.Env
	e.Incident = incident
	return &e
}

func policyName(incident string) (string, string) {
	h := naming.ShortHash(incident, 10)
	return "eksir-deny-older-sessions-" + h, "EksirDenyOlderSessions" + h
}

func roleName(t *testing.T, arn string) string {
	t.Helper()
	a, err := awsiam.ParseRoleARN(arn)
	if err != nil {
		t.Fatal(err)
	}
	return a.Name
}

// rolePolicies returns every inline policy of a role, decoded.
func (f *awsFixture) rolePolicies(t *testing.T, role string) map[string]awsiam.Document {
	t.Helper()
	out := map[string]awsiam.Document{}
	l, err := f.iam.ListRolePolicies(t.Context(), &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range l.PolicyNames {
		g, err := f.iam.GetRolePolicy(t.Context(), &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		d, err := awsiam.Decode(aws.ToString(g.PolicyDocument))
		if err != nil {
			t.Fatalf("policy %s of %s: %v", n, role, err)
		}
		out[n] = d
	}
	return out
}

func (f *awsFixture) userPolicies(t *testing.T, user string) map[string]awsiam.Document {
	t.Helper()
	out := map[string]awsiam.Document{}
	l, err := f.iam.ListUserPolicies(t.Context(), &iam.ListUserPoliciesInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range l.PolicyNames {
		g, err := f.iam.GetUserPolicy(t.Context(), &iam.GetUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		d, err := awsiam.Decode(aws.ToString(g.PolicyDocument))
		if err != nil {
			t.Fatalf("policy %s of %s: %v", n, user, err)
		}
		out[n] = d
	}
	return out
}

// associations maps instance → live profile ARN.
func (f *awsFixture) associations(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	a, err := f.ec2.DescribeIamInstanceProfileAssociations(t.Context(), &ec2.DescribeIamInstanceProfileAssociationsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range a.IamInstanceProfileAssociations {
		if x.State == ec2types.IamInstanceProfileAssociationStateAssociated {
			out[aws.ToString(x.InstanceId)] = aws.ToString(x.IamInstanceProfile.Arn)
		}
	}
	return out
}

func (f *awsFixture) instanceTags(t *testing.T, id string) map[string]string {
	t.Helper()
	out, err := f.ec2.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tg := range out.Reservations[0].Instances[0].Tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

func (f *awsFixture) keys(t *testing.T, user string) map[string]string {
	t.Helper()
	out, err := f.iam.ListAccessKeys(t.Context(), &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, k := range out.AccessKeyMetadata {
		m[aws.ToString(k.AccessKeyId)] = string(k.Status)
	}
	return m
}

func (f *awsFixture) userTags(t *testing.T, user string) map[string]string {
	t.Helper()
	out, err := f.iam.ListUserTags(t.Context(), &iam.ListUserTagsInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tg := range out.Tags {
		m[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return m
}

func (f *awsFixture) hasLoginProfile(t *testing.T, user string) bool {
	t.Helper()
	_, err := f.iam.GetLoginProfile(t.Context(), &iam.GetLoginProfileInput{UserName: aws.String(user)})
	if err != nil && !awsiam.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// awsWorld is everything the revocation actions read or change, as the
// account's admin sees it: Plan must leave it equal, Undo restore it.
type awsWorld struct {
	Associations map[string]string
	InstanceTags map[string]map[string]string
	RolePolicies map[string]map[string]string
	UserPolicies map[string]string
	Keys         map[string]string
	UserTags     map[string]string
	LoginProfile bool
}

func (f *awsFixture) world(t *testing.T) awsWorld {
	t.Helper()
	w := awsWorld{Associations: f.associations(t), InstanceTags: map[string]map[string]string{}, RolePolicies: map[string]map[string]string{}}
	for _, in := range []string{f.s.Seed.Targets[lab.TargetInstance]} {
		w.InstanceTags[in] = f.instanceTags(t, in)
	}
	roles, err := f.iam.ListRoles(t.Context(), &iam.ListRolesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles.Roles {
		w.RolePolicies[aws.ToString(r.RoleName)] = docs(f.rolePolicies(t, aws.ToString(r.RoleName)))
	}
	user := f.s.Seed.IAMUser
	w.UserPolicies = docs(f.userPolicies(t, user))
	w.Keys, w.UserTags, w.LoginProfile = f.keys(t, user), f.userTags(t, user), f.hasLoginProfile(t, user)
	return w
}

func docs(m map[string]awsiam.Document) map[string]string {
	out := map[string]string{}
	for k, d := range m {
		out[k] = d.String()
	}
	return out
}

func sameWorld(t *testing.T, what string, got, want awsWorld) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("%s: AWS state differs\n got %s\nwant %s", what, g, w)
	}
}

func wantBadInput(t *testing.T, err error, field string) {
	t.Helper()
	if !errors.Is(err, action.ErrBadInput) || !strings.Contains(err.Error(), field) {
		t.Fatalf("err = %v, want ErrBadInput naming %q", err, field)
	}
}

func outcomes(rs []action.Restored) map[string]string {
	out := map[string]string{}
	for _, r := range rs {
		out[r.Object] = r.Outcome
	}
	return out
}

func allClean(t *testing.T, rs []action.Restored) {
	t.Helper()
	for _, r := range rs {
		if r.Outcome != action.OutcomeClean {
			t.Errorf("second Undo: %s %s (%s), want already-clean", r.Object, r.Outcome, r.Detail)
		}
	}
}

func TestAWSRevokeInstanceProfile(t *testing.T) {
	f := setupAWS(t)
	ctx, env := t.Context(), f.s.Env
	a := f.action(t, "revoke.instance-profile")
	inst := f.s.Seed.Targets[lab.TargetInstance]
	call := action.Call{Step: "t", Params: map[string]any{"instance": inst}}
	before := f.world(t)
	profile := before.Associations[inst]
	if profile == "" || len(before.Associations) != 2 {
		t.Fatalf("seeded associations: %v", before.Associations)
	}
	var other string
	for in := range before.Associations {
		if in != inst {
			other = in
		}
	}
	name, sid := policyName(env.Incident)
	// The seed names the node role's instance profile after the role.
	role := profile[strings.LastIndex(profile, "/")+1:]

	plan, err := a.Plan(ctx, env, call)
	if err != nil {
		t.Fatal(err)
	}
	sameWorld(t, "after Plan", f.world(t), before)
	if len(plan.Changes) != 3 || plan.Done {
		t.Fatalf("plan: %+v", plan)
	}
	if !strings.Contains(strings.Join(plan.Warnings, "\n"), other) || !strings.Contains(plan.Changes[2].Object, "role "+role) {
		t.Errorf("plan does not show the role and the other instance %s: %+v", other, plan)
	}

	res, err := a.Run(ctx, env, call)
	if err != nil {
		t.Fatal(err)
	}
	after := f.world(t)
	if _, ok := after.Associations[inst]; ok || after.Associations[other] != profile {
		t.Fatalf("associations after Run: %v", after.Associations)
	}
	if got := after.InstanceTags[inst]["eksir.io/instance-profile-"+naming.ShortHash(env.Incident, 10)]; got != profile {
		t.Errorf("profile tag = %q, want %q", got, profile)
	}
	got := f.rolePolicies(t, role)
	if !awsiam.Equal(got[name], awsiam.DenyOlderSessions(sid, revokeTime)) {
		t.Errorf("deny policy on %s = %s", role, got[name])
	}
	if res.Outputs["role"] != role || res.Outputs["profile"] != profile || !slices.Equal(res.Outputs["other_instances"].([]string), []string{other}) {
		t.Errorf("outputs: %v", res.Outputs)
	}

	// Again: nothing changes, same Undo.
	env.Now = func() time.Time { return revokeTime.Add(time.Hour) }
	res2, err := a.Run(ctx, env, call)
	if err != nil {
		t.Fatal(err)
	}
	if string(res2.Undo) != string(res.Undo) {
		t.Errorf("second Run Undo %s, first %s", res2.Undo, res.Undo)
	}
	sameWorld(t, "after second Run", f.world(t), after)
	if p, _ := a.Plan(ctx, env, call); !p.Done {
		t.Errorf("plan after Run not done: %+v", p)
	}

	rs, err := a.(action.Reverser).Undo(ctx, env, call, res.Undo)
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes(rs); o["instance "+inst] != action.OutcomeRestored || o["role "+role+" inline policy "+name] != action.OutcomeRestored {
		t.Errorf("Undo report: %+v", rs)
	}
	sameWorld(t, "after Undo", f.world(t), before)
	rs, err = a.(action.Reverser).Undo(ctx, env, call, res.Undo)
	if err != nil {
		t.Fatal(err)
	}
	allClean(t, rs)

	// Without the record: from the instance tag.
	if _, err := a.Run(ctx, env, call); err != nil {
		t.Fatal(err)
	}
	if _, err := a.(action.Reverser).Undo(ctx, env, call, nil); err != nil {
		t.Fatal(err)
	}
	sameWorld(t, "after Undo without record", f.world(t), before)
	rs, err = a.(action.Reverser).Undo(ctx, env, call, nil)
	if err != nil {
		t.Fatal(err)
	}
	allClean(t, rs)

	_, err = a.Plan(ctx, env, action.Call{Params: map[string]any{"instance": "i-0123456789abcdef0"}})
	wantBadInput(t, err, "instance")
	sameWorld(t, "after bad input", f.world(t), before)
}

func TestAWSRevokeIRSARole(t *testing.T) {
	f := setupAWS(t)
	ctx, env := t.Context(), f.s.Env
	a := f.action(t, "revoke.irsa-role")
	roleARN := f.s.Seed.Targets[lab.TargetIAMRole]
	role := roleName(t, roleARN)
	pod := f.s.NS + "/" + f.s.Pod
	call := action.Call{Step: "t", Params: map[string]any{"pod": pod}}
	before := f.world(t)
	name, sid := policyName(env.Incident)

	plan, err := a.Plan(ctx, env, call)
	if err != nil {
		t.Fatal(err)
	}
	sameWorld(t, "after Plan", f.world(t), before)
	if len(plan.Changes) != 1 || !strings.Contains(strings.Join(plan.Warnings, "\n"), "blast radius: 1 other pod") {
		t.Fatalf("plan: %+v", plan)
	}
	res, err := a.Run(ctx, env, call)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["role"] != roleARN || res.Outputs["blast_radius"] != 1 || len(res.Outputs["pods"].([]string)) != 1 || res.Outputs["pods"].([]string)[0] == pod {
		t.Errorf("outputs: %v", res.Outputs)
	}
	got := f.rolePolicies(t, role)
	if !awsiam.Equal(got[name], awsiam.DenyOlderSessions(sid, revokeTime)) || len(got) != len(before.RolePolicies[role])+1 {
		t.Fatalf("policies of %s after Run: %v", role, docs(got))
	}
	// Resumed later: the policy keeps its original time, one per role.
	env.Now = func() time.Time { return revokeTime.Add(time.Hour) }
	byRole := action.Call{Step: "t", Params: map[string]any{"role": roleARN}}
	res2, err := a.Run(ctx, env, byRole)
	if err != nil {
		t.Fatal(err)
	}
	if string(res2.Undo) != string(res.Undo) {
		t.Errorf("Undo differs: %s vs %s", res2.Undo, res.Undo)
	}
	if got := f.rolePolicies(t, role); !awsiam.Equal(got[name], awsiam.DenyOlderSessions(sid, revokeTime)) || len(got) != len(before.RolePolicies[role])+1 {
		t.Fatalf("policies of %s after second Run: %v", role, docs(got))
	}

	// A second incident on the same role: its own policy; releasing the
	// first keeps the second's.
	env2 := f.envFor(env.Incident + "-b")
	name2, sid2 := policyName(env2.Incident)
	if _, err := a.Run(ctx, env2, byRole); err != nil {
		t.Fatal(err)
	}
	if _, err := a.(action.Reverser).Undo(ctx, env, call, res.Undo); err != nil {
		t.Fatal(err)
	}
	got = f.rolePolicies(t, role)
	if _, ok := got[name]; ok || !awsiam.Equal(got[name2], awsiam.DenyOlderSessions(sid2, revokeTime.Add(time.Hour))) {
		t.Fatalf("after releasing the first incident: %v", docs(got))
	}
	rs, err := a.(action.Reverser).Undo(ctx, env2, byRole, nil)
	if err != nil || outcomes(rs)["role "+role+" inline policy "+name2] != action.OutcomeRestored {
		t.Fatalf("Undo without record: %+v, %v", rs, err)
	}
	sameWorld(t, "after both releases", f.world(t), before)
	rs, err = a.(action.Reverser).Undo(ctx, env, call, res.Undo)
	if err != nil {
		t.Fatal(err)
	}
	allClean(t, rs)

	// A policy of the incident's name that is not the incident's is never
	// overwritten.
	foreign := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`
	if _, err := f.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(name), PolicyDocument: aws.String(foreign)}); err != nil {
		t.Fatal(err)
	}
	withForeign := f.world(t)
	if _, err := a.Run(ctx, env, call); !errors.Is(err, awsiam.ErrForeignPolicy) || !strings.Contains(err.Error(), name) {
		t.Fatalf("Run over a foreign policy: %v", err)
	}
	if _, err := a.Plan(ctx, env, call); !errors.Is(err, awsiam.ErrForeignPolicy) {
		t.Fatalf("Plan over a foreign policy: %v", err)
	}
	rs, err = a.(action.Reverser).Undo(ctx, env, call, nil)
	if err != nil || rs[0].Outcome != action.OutcomeClean {
		t.Fatalf("Undo with a foreign policy: %+v, %v", rs, err)
	}
	sameWorld(t, "foreign policy", f.world(t), withForeign)

	// Bad input, nothing changed.
	other := strings.Replace(roleARN, ":"+f.s.Lab.Account+":", ":999999999999:", 1)
	for _, c := range []struct {
		params map[string]any
		field  string
	}{
		{map[string]any{"role": strings.TrimSuffix(roleARN, role) + "no-such-role"}, "role"},
		{map[string]any{"role": other}, "role"},
		{map[string]any{"role": "arn:aws:iam::123:role/x"}, "role"},
		{map[string]any{}, "pod, role"},
		{map[string]any{"pod": pod, "role": roleARN}, "pod, role"},
		{map[string]any{"pod": f.s.NS + "/no-such-pod"}, "pod"},
		{map[string]any{"pod": frontendPod(t, f)}, "pod"},
	} {
		_, err := a.Plan(ctx, env, action.Call{Params: c.params})
		wantBadInput(t, err, c.field)
		_, err = a.Run(ctx, env, action.Call{Params: c.params})
		wantBadInput(t, err, c.field)
	}
	sameWorld(t, "after bad input", f.world(t), withForeign)
}

// frontendPod is a seeded pod without AWS credentials of its own.
func frontendPod(t *testing.T, f *awsFixture) string {
	t.Helper()
	pods, err := f.s.Lab.Kube.Typed.CoreV1().Pods(f.s.NS).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if strings.HasPrefix(p.Name, "frontend-") {
			return p.Namespace + "/" + p.Name
		}
	}
	t.Fatal("no frontend pod")
	return ""
}

func TestAWSRevokeAccessKey(t *testing.T) {
	f := setupAWS(t)
	ctx, env := t.Context(), f.s.Env
	a := f.action(t, "revoke.access-key")
	user, key := f.s.Seed.IAMUser, f.s.Seed.Targets[lab.TargetAccessKey]
	// A second key, Inactive before the incident: release must leave it so.
	k2, err := f.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	key2 := aws.ToString(k2.AccessKey.AccessKeyId)
	if _, err := f.iam.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(key2), Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.iam.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String(user), Password: aws.String("Lab-Password-1!")}); err != nil {
		t.Fatal(err)
	}
	before := f.world(t)
	if before.Keys[key] != "Active" || before.Keys[key2] != "Inactive" || !before.LoginProfile {
		t.Fatalf("seeded: %+v", before)
	}
	name, sid := policyName(env.Incident)
	tag := "eksir.io/access-keys-" + naming.ShortHash(env.Incident, 10)

	one := action.Call{Step: "t", Params: map[string]any{"access-key": key}}
	plan, err := a.Plan(ctx, env, one)
	if err != nil {
		t.Fatal(err)
	}
	sameWorld(t, "after Plan", f.world(t), before)
	if len(plan.Changes) != 3 {
		t.Fatalf("plan: %+v", plan)
	}
	res, err := a.Run(ctx, env, one)
	if err != nil {
		t.Fatal(err)
	}
	w := f.world(t)
	if w.Keys[key] != "Inactive" || w.Keys[key2] != "Inactive" || w.UserTags[tag] != key+"=Active" || !w.LoginProfile {
		t.Fatalf("after Run: %+v", w)
	}
	if got := f.userPolicies(t, user); !awsiam.Equal(got[name], awsiam.DenyOlderSessions(sid, revokeTime)) {
		t.Fatalf("user policy: %v", docs(got))
	}
	if res.Outputs["user"] != user || !slices.Equal(res.Outputs["keys"].([]string), []string{key}) {
		t.Errorf("outputs: %v", res.Outputs)
	}
	// All keys and the password, resumed on the same incident: the first
	// run's statuses stay recorded (key is Inactive now, was Active).
	all := action.Call{Step: "t", Params: map[string]any{"access-key": key, "all-keys": true, "delete-login-profile": true}}
	plan, err = a.Plan(ctx, env, all)
	if err != nil || !strings.Contains(strings.Join(plan.Warnings, "\n"), "cannot restore") {
		t.Fatalf("plan: %+v, %v", plan, err)
	}
	res, err = a.Run(ctx, env, all)
	if err != nil {
		t.Fatal(err)
	}
	w = f.world(t)
	if w.LoginProfile || !strings.Contains(w.UserTags[tag], key+"=Active") || !strings.Contains(w.UserTags[tag], key2+"=Inactive") || len(f.userPolicies(t, user)) != len(before.UserPolicies)+1 {
		t.Fatalf("after Run with all-keys: %+v", w)
	}
	res2, err := a.Run(ctx, env, all)
	if err != nil || string(res2.Undo) != string(res.Undo) {
		t.Fatalf("second Run: %s vs %s, %v", res2.Undo, res.Undo, err)
	}
	sameWorld(t, "after second Run", f.world(t), w)

	rs, err := a.(action.Reverser).Undo(ctx, env, all, res.Undo)
	if err != nil {
		t.Fatal(err)
	}
	o := outcomes(rs)
	if o["access key "+key] != action.OutcomeRestored || o["access key "+key2] != action.OutcomeClean || o["login profile of user "+user] != isolate.OutcomeNotRestorable {
		t.Errorf("Undo report: %+v", rs)
	}
	want := before
	want.LoginProfile = false
	sameWorld(t, "after Undo", f.world(t), want)

	// Without the record, from the user tag.
	if _, err := a.Run(ctx, env, all); err != nil {
		t.Fatal(err)
	}
	rs, err = a.(action.Reverser).Undo(ctx, env, all, nil)
	if err != nil || outcomes(rs)["access key "+key] != action.OutcomeRestored {
		t.Fatalf("Undo without record: %+v, %v", rs, err)
	}
	sameWorld(t, "after Undo without record", f.world(t), want)
	rs, err = a.(action.Reverser).Undo(ctx, env, all, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Outcome == action.OutcomeRestored {
			t.Errorf("second Undo restored %s", r.Object)
		}
	}

	_, err = a.Plan(ctx, env, action.Call{Params: map[string]any{"access-key": "AKIAEKSIRNOSUCHKEY00"}})
	wantBadInput(t, err, "access-key")
	_, err = a.Run(ctx, env, action.Call{Params: map[string]any{"access-key": "AKIAEKSIRNOSUCHKEY00"}})
	wantBadInput(t, err, "access-key")
	sameWorld(t, "after bad input", f.world(t), want)
}

// TestAWSRevokeResume builds, with the admin's clients, the state a kill -9
// leaves at each step boundary of revoke.instance-profile and
// revoke.access-key (record written, change not made; change made, policy
// not put), then runs the step again: it completes without repeating a
// change, and Undo restores the state before the incident exactly.
func TestAWSRevokeResume(t *testing.T) {
	f := setupAWS(t)
	ctx, env := t.Context(), f.s.Env
	h := naming.ShortHash(env.Incident, 10)
	before := f.world(t)
	inst := f.s.Seed.Targets[lab.TargetInstance]
	profile := before.Associations[inst]
	role := profile[strings.LastIndex(profile, "/")+1:] // the seed names the profile after its role
	ip := f.action(t, "revoke.instance-profile")
	ipCall := action.Call{Step: "t", Params: map[string]any{"instance": inst}}

	assocID := func() string {
		out, err := f.ec2.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
			Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{inst}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range out.IamInstanceProfileAssociations {
			if a.State == ec2types.IamInstanceProfileAssociationStateAssociated {
				return aws.ToString(a.AssociationId)
			}
		}
		return ""
	}
	tagInstance := func() {
		if _, err := f.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{inst},
			Tags: []ec2types.Tag{{Key: aws.String("eksir.io/instance-profile-" + h), Value: aws.String(profile)}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, stage := range []string{"tagged", "disassociated"} {
		tagInstance()
		if stage == "disassociated" {
			if _, err := f.ec2.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: aws.String(assocID())}); err != nil {
				t.Fatal(err)
			}
		}
		plan, err := ip.Plan(ctx, env, ipCall)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range plan.Changes {
			if c.Verb == "tag" || stage == "disassociated" && c.Verb == "disassociate" {
				t.Errorf("%s: plan repeats %s", stage, c.Verb)
			}
		}
		res, err := ip.Run(ctx, env, ipCall)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		name, sid := policyName(env.Incident)
		if w := f.world(t); w.Associations[inst] != "" || len(w.RolePolicies[role]) != len(before.RolePolicies[role])+1 ||
			!awsiam.Equal(f.rolePolicies(t, role)[name], awsiam.DenyOlderSessions(sid, revokeTime)) {
			t.Fatalf("%s: after Run: %+v %v", stage, w.Associations, w.RolePolicies[role])
		}
		if _, err := ip.(action.Reverser).Undo(ctx, env, ipCall, res.Undo); err != nil {
			t.Fatal(err)
		}
		sameWorld(t, stage+": after Undo", f.world(t), before)
	}

	// Killed with the statuses recorded and the key deactivated, before
	// the policy: the resumed run must not take Inactive as the original.
	ak := f.action(t, "revoke.access-key")
	user, key := f.s.Seed.IAMUser, f.s.Seed.Targets[lab.TargetAccessKey]
	akCall := action.Call{Step: "t", Params: map[string]any{"access-key": key}}
	if _, err := f.iam.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(user), Tags: []iamtypes.Tag{{Key: aws.String("eksir.io/access-keys-" + h), Value: aws.String(key + "=Active")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.iam.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(key), Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	plan, err := ak.Plan(ctx, env, akCall)
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].Verb != "put-policy" {
		t.Fatalf("resumed plan: %+v, %v", plan, err)
	}
	res, err := ak.Run(ctx, env, akCall)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ak.(action.Reverser).Undo(ctx, env, akCall, res.Undo); err != nil {
		t.Fatal(err)
	}
	sameWorld(t, "access key: after Undo", f.world(t), before)
}
