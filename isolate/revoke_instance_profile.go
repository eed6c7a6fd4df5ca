package isolate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awsiam"
)

// RevokeInstanceProfile is revoke.instance-profile.
type RevokeInstanceProfile struct{}

// InstanceProfileUndo is the Undo record of revoke.instance-profile.
type InstanceProfileUndo struct {
	Instance string `json:"instance"`
	// Profile is the ARN of the profile the instance had ("" when it had
	// none when the incident found it).
	Profile string    `json:"profile,omitempty"`
	Role    *RoleUndo `json:"role,omitempty"`
}

// profileEC2API is what revoke.instance-profile needs of EC2.
type profileEC2API interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeIamInstanceProfileAssociations(ctx context.Context, in *ec2.DescribeIamInstanceProfileAssociationsInput, opts ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
	DisassociateIamInstanceProfile(ctx context.Context, in *ec2.DisassociateIamInstanceProfileInput, opts ...func(*ec2.Options)) (*ec2.DisassociateIamInstanceProfileOutput, error)
	AssociateIamInstanceProfile(ctx context.Context, in *ec2.AssociateIamInstanceProfileInput, opts ...func(*ec2.Options)) (*ec2.AssociateIamInstanceProfileOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, opts ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags(ctx context.Context, in *ec2.DeleteTagsInput, opts ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
}

// profileIAMAPI is what it needs of IAM.
type profileIAMAPI interface {
	awsiam.RolePolicyAPI
	GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, opts ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
}

// Spec implements action.Action.
func (RevokeInstanceProfile) Spec() action.Spec {
	return action.Spec{
		Name: "revoke.instance-profile",
		Doc: "Disassociate the instance's IAM instance profile (its ARN kept in an incident tag on the instance first) and deny the profile role's sessions issued before now " +
			"(the console's \"revoke active sessions\"); the plan lists every other instance using the profile, whose current credentials stop working too until they refresh.",
		Kind:              action.Contain,
		Needs:             []action.Cloud{action.AWS},
		RevokesCredential: true,
		Params: []action.Param{
			{Name: "instance", Type: action.Instance, Required: true, Doc: "EC2 instance ID; it must exist and have an instance profile"},
		},
		Outputs: []string{"role", "profile", "other_instances"},
		Permissions: action.Permissions{IAM: []action.IAMPermission{
			// Neither Describe call supports resource-level permissions.
			{Actions: []string{"ec2:DescribeInstances", "ec2:DescribeIamInstanceProfileAssociations"}},
			{Actions: []string{"ec2:DisassociateIamInstanceProfile", "ec2:AssociateIamInstanceProfile"}, Resources: []string{"arn:aws:ec2:*:*:instance/*"}},
			// Only the incident's own tag keys.
			{Actions: []string{"ec2:CreateTags", "ec2:DeleteTags"}, Resources: []string{"arn:aws:ec2:*:*:instance/*"},
				Conditions: map[string]map[string][]string{"ForAllValues:StringLike": {"aws:TagKeys": {"eksir.io/*"}}}},
			// Re-associating the profile at release passes its role to EC2.
			{Actions: []string{"iam:PassRole"}, Resources: []string{"arn:aws:iam::*:role/*"},
				Conditions: map[string]map[string][]string{"StringEquals": {"iam:PassedToService": {"ec2.amazonaws.com"}}}},
			{Actions: []string{"iam:GetInstanceProfile"}, Resources: []string{"arn:aws:iam::*:instance-profile/*"}},
			{Actions: []string{"iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"}, Resources: []string{"arn:aws:iam::*:role/*"}},
		}},
		Reversible: true,
		Notes:      revokeInstanceProfileNotes,
	}
}

// errNoInstance is wrapped when the instance does not exist.
var errNoInstance = errors.New("does not exist")

type profileState struct {
	instance string
	// assoc is the instance's current association, nil when it has none.
	assoc *ec2types.IamInstanceProfileAssociation
	// recorded is the profile ARN in the incident's tag, "" when untagged.
	recorded string
	tags     []ec2types.Tag
}

// profileTag is the instance tag holding the disassociated profile's ARN.
func profileTag(incident string) string { return incidentTag("instance-profile", incident) }

func (RevokeInstanceProfile) read(ctx context.Context, ec profileEC2API, incident, id string) (profileState, error) {
	st := profileState{instance: id}
	if !strings.HasPrefix(id, "i-") {
		return st, fmt.Errorf("%w: instance: %q is not an EC2 instance ID (i-...)", action.ErrBadInput, id)
	}
	out, err := ec.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if code := apiCode(err); strings.HasPrefix(code, "InvalidInstanceID") {
		return st, fmt.Errorf("%w: instance: %s %w in this account and region (%s); hint: check --region and the ID", action.ErrBadInput, id, errNoInstance, code)
	}
	if err != nil {
		return st, fmt.Errorf("describe instance %s: %w", id, err)
	}
	found := false
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) == id {
				found, st.tags = true, in.Tags
			}
		}
	}
	if !found {
		return st, fmt.Errorf("%w: instance: %s %w; hint: check --region and the ID", action.ErrBadInput, id, errNoInstance)
	}
	for _, t := range st.tags {
		if aws.ToString(t.Key) == profileTag(incident) {
			st.recorded = aws.ToString(t.Value)
		}
	}
	as, err := associations(ctx, ec, []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}})
	if err != nil {
		return st, err
	}
	for _, a := range as {
		if aws.ToString(a.InstanceId) == id {
			st.assoc = &a
		}
	}
	return st, nil
}

// associations lists the live (associating or associated) profile
// associations matching filters. AWS leaves a disassociated association
// listed for a while in state disassociating/disassociated; those are gone
// for eksir's purpose.
func associations(ctx context.Context, ec profileEC2API, filters []ec2types.Filter) ([]ec2types.IamInstanceProfileAssociation, error) {
	var out []ec2types.IamInstanceProfileAssociation
	in := &ec2.DescribeIamInstanceProfileAssociationsInput{Filters: filters}
	for {
		page, err := ec.DescribeIamInstanceProfileAssociations(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("describe instance profile associations: %w", err)
		}
		for _, a := range page.IamInstanceProfileAssociations {
			if a.State == ec2types.IamInstanceProfileAssociationStateAssociated || a.State == ec2types.IamInstanceProfileAssociationStateAssociating {
				out = append(out, a)
			}
		}
		if aws.ToString(page.NextToken) == "" {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

// profileRole returns the name of the role in an instance profile, "" for
// a profile without one.
func profileRole(ctx context.Context, ic profileIAMAPI, profileARN string) (string, error) {
	a, err := awsiam.ParseARN(profileARN)
	if err != nil {
		return "", fmt.Errorf("instance profile: %w", err)
	}
	out, err := ic.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(a.Name)})
	if err != nil {
		return "", fmt.Errorf("get instance profile %s: %w", a.Name, err)
	}
	if out.InstanceProfile == nil || len(out.InstanceProfile.Roles) == 0 {
		return "", nil
	}
	// An instance profile holds at most one role.
	return aws.ToString(out.InstanceProfile.Roles[0].RoleName), nil
}

type profileResult struct {
	changes  []action.Change
	warnings []string
	undo     InstanceProfileUndo
	others   []string
}

func (r RevokeInstanceProfile) apply(ctx context.Context, env *action.Env, call action.Call, dry bool) (profileResult, error) {
	ec, ic := ec2.NewFromConfig(env.AWS), iam.NewFromConfig(env.AWS)
	id := call.String("instance")
	res := profileResult{undo: InstanceProfileUndo{Instance: id}}
	st, err := r.read(ctx, ec, env.Incident, id)
	if err != nil {
		return res, err
	}
	profile := st.recorded
	if profile == "" && st.assoc != nil {
		profile = aws.ToString(st.assoc.IamInstanceProfile.Arn)
	}
	if profile == "" {
		return res, fmt.Errorf("%w: instance: %s has no instance profile: there are no instance credentials to revoke", action.ErrBadInput, id)
	}
	res.undo.Profile = profile
	role, err := profileRole(ctx, ic, profile)
	if err != nil {
		return res, err
	}
	// The blast radius: every other instance with the same profile loses
	// the sessions it holds now (the role's deny policy), until its
	// credentials refresh from IMDS.
	all, err := associations(ctx, ec, nil)
	if err != nil {
		return res, err
	}
	for _, a := range all {
		if aws.ToString(a.IamInstanceProfile.Arn) == profile && aws.ToString(a.InstanceId) != id {
			res.others = append(res.others, aws.ToString(a.InstanceId))
		}
	}
	slices.Sort(res.others)
	if dry && len(res.others) > 0 {
		res.warnings = append(res.warnings, fmt.Sprintf("role %s is also the role of %d other instance(s) through profile %s (%s): their current sessions are denied too, until each fetches new credentials from its instance metadata (within the hour)",
			role, len(res.others), profile, strings.Join(res.others, ", ")))
	}

	if st.assoc != nil {
		if st.recorded == "" {
			// The record first: an Undo without its record re-associates
			// the profile from this tag.
			res.changes = append(res.changes, action.Change{Verb: "tag", Object: "instance " + id, Detail: profileTag(env.Incident) + "=" + profile})
			if !dry {
				if _, err := ec.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: []ec2types.Tag{{Key: aws.String(profileTag(env.Incident)), Value: aws.String(profile)}}}); err != nil {
					return res, fmt.Errorf("tag instance %s with its profile: %w", id, err)
				}
			}
		} else if cur := aws.ToString(st.assoc.IamInstanceProfile.Arn); cur != st.recorded {
			res.warnings = append(res.warnings, fmt.Sprintf("instance %s has profile %s associated since the incident removed %s: it is removed too; release re-associates %s", id, cur, st.recorded, st.recorded))
		}
		res.changes = append(res.changes, action.Change{Verb: "disassociate", Object: "instance " + id, Detail: "instance profile " + aws.ToString(st.assoc.IamInstanceProfile.Arn) + " (association " + aws.ToString(st.assoc.AssociationId) + ")"})
		if !dry {
			if _, err := ec.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: st.assoc.AssociationId}); err != nil && apiCode(err) != "InvalidAssociationID.NotFound" {
				return res, fmt.Errorf("disassociate instance profile from %s: %w", id, err)
			}
		}
	}
	if role == "" {
		res.warnings = append(res.warnings, "instance profile "+profile+" holds no role: no sessions to deny")
		return res, nil
	}
	name, sid := denyOlderPolicy(env.Incident)
	c, _, err := ensureDeny(ctx, awsiam.RolePolicies(ic, role), name, sid, awsiam.DenyOlderSessions(sid, now(env)), dry)
	if err != nil {
		return res, err
	}
	if c != nil {
		res.changes = append(res.changes, *c)
	}
	res.undo.Role = &RoleUndo{Role: role, Policy: name, Sid: sid}
	return res, nil
}

// Plan implements action.Action.
func (r RevokeInstanceProfile) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	res, err := r.apply(ctx, env, call, true)
	if err != nil {
		return action.Plan{}, err
	}
	return action.Plan{Changes: res.changes, Done: len(res.changes) == 0, Warnings: res.warnings}, nil
}

// Run implements action.Action.
func (r RevokeInstanceProfile) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	res, err := r.apply(ctx, env, call, false)
	if err != nil {
		return action.Result{Warnings: res.warnings}, err
	}
	b, err := json.Marshal(res.undo)
	if err != nil {
		return action.Result{}, err
	}
	role := ""
	if res.undo.Role != nil {
		role = res.undo.Role.Role
	}
	return action.Result{Undo: b, Warnings: res.warnings,
		Outputs: map[string]any{"role": role, "profile": res.undo.Profile, "other_instances": nonNil(res.others)}}, nil
}

// Undo implements action.Reverser: the recorded profile is associated
// again if the instance has none, the deny policy deleted, the tag removed
// (last, so an interrupted Undo still finds it).
func (r RevokeInstanceProfile) Undo(ctx context.Context, env *action.Env, call action.Call, undo json.RawMessage) ([]action.Restored, error) {
	ec, ic := ec2.NewFromConfig(env.AWS), iam.NewFromConfig(env.AWS)
	var u InstanceProfileUndo
	if undo != nil {
		if err := json.Unmarshal(undo, &u); err != nil {
			return nil, fmt.Errorf("revoke.instance-profile undo record: %w", err)
		}
	} else {
		u.Instance = call.String("instance")
	}
	what := "instance " + u.Instance
	var report []action.Restored
	st, err := r.read(ctx, ec, env.Incident, u.Instance)
	gone := errors.Is(err, errNoInstance)
	if err != nil && !gone {
		return nil, err
	}
	if undo == nil {
		// From AWS state alone: the tag names the profile, the profile the role.
		u.Profile = st.recorded
		if u.Profile != "" {
			role, err := profileRole(ctx, ic, u.Profile)
			if err != nil {
				return nil, err
			}
			if role != "" {
				name, sid := denyOlderPolicy(env.Incident)
				u.Role = &RoleUndo{Role: role, Policy: name, Sid: sid}
			}
		}
	}
	inst := action.Restored{Object: what, Outcome: action.OutcomeClean}
	switch {
	case gone:
		inst.Detail = "gone"
	case u.Profile == "":
	case st.assoc != nil:
		if cur := aws.ToString(st.assoc.IamInstanceProfile.Arn); cur != u.Profile {
			inst.Detail = "has instance profile " + cur + " now: left as it is"
		}
	case st.recorded == "":
		// The record says a profile was removed, but the tag is gone: an
		// earlier Undo completed, and someone removed the profile since.
		inst.Detail = "already released"
	default:
		if _, err := ec.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(u.Instance),
			IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Arn: aws.String(u.Profile)}}); err != nil {
			return report, fmt.Errorf("associate instance profile %s with %s again: %w", u.Profile, u.Instance, err)
		}
		inst = action.Restored{Object: what, Outcome: action.OutcomeRestored, Detail: "instance profile " + u.Profile + " associated again"}
	}
	if u.Role != nil {
		res, err := removeDeny(ctx, awsiam.RolePolicies(ic, u.Role.Role), u.Role.Policy, u.Role.Sid)
		if err != nil {
			return report, err
		}
		report = append(report, res)
	}
	if st.recorded != "" {
		if _, err := ec.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{u.Instance}, Tags: []ec2types.Tag{{Key: aws.String(profileTag(env.Incident))}}}); err != nil {
			return report, fmt.Errorf("remove the incident tag from %s: %w", u.Instance, err)
		}
		if inst.Outcome == action.OutcomeClean && inst.Detail == "" {
			inst = action.Restored{Object: what, Outcome: action.OutcomeRestored, Detail: "incident tag removed"}
		}
	}
	return append([]action.Restored{inst}, report...), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
