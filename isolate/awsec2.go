package isolate

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/naming"
)

// The EC2 actions keep their state in tags on the resources they change,
// as the Kubernetes actions keep it in annotations: a resumed Run or an
// Undo without a record reads it back from AWS.

// ec2API is the part of EC2 the instance actions call.
type ec2API interface {
	awstarget.EC2Describer
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, opts ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	DescribeInstanceAttribute(ctx context.Context, in *ec2.DescribeInstanceAttributeInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	CreateSecurityGroup(ctx context.Context, in *ec2.CreateSecurityGroupInput, opts ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	DeleteSecurityGroup(ctx context.Context, in *ec2.DeleteSecurityGroupInput, opts ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	AuthorizeSecurityGroupIngress(ctx context.Context, in *ec2.AuthorizeSecurityGroupIngressInput, opts ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	AuthorizeSecurityGroupEgress(ctx context.Context, in *ec2.AuthorizeSecurityGroupEgressInput, opts ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupEgressOutput, error)
	RevokeSecurityGroupIngress(ctx context.Context, in *ec2.RevokeSecurityGroupIngressInput, opts ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupEgress(ctx context.Context, in *ec2.RevokeSecurityGroupEgressInput, opts ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupEgressOutput, error)
	ModifyNetworkInterfaceAttribute(ctx context.Context, in *ec2.ModifyNetworkInterfaceAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	ModifyInstanceAttribute(ctx context.Context, in *ec2.ModifyInstanceAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, opts ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DeleteTags(ctx context.Context, in *ec2.DeleteTagsInput, opts ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
}

// asgAPI is the part of Auto Scaling the instance actions call.
type asgAPI interface {
	awstarget.ASGDescriber
	SetInstanceProtection(ctx context.Context, in *autoscaling.SetInstanceProtectionInput, opts ...func(*autoscaling.Options)) (*autoscaling.SetInstanceProtectionOutput, error)
	DetachInstances(ctx context.Context, in *autoscaling.DetachInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DetachInstancesOutput, error)
	AttachInstances(ctx context.Context, in *autoscaling.AttachInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.AttachInstancesOutput, error)
}

func awsClients(env *action.Env) (ec2API, asgAPI) {
	return ec2.NewFromConfig(env.AWS), autoscaling.NewFromConfig(env.AWS)
}

// Tags eksir puts on what it creates or changes in AWS.
const (
	// managedByTag marks the security groups eksir created; the IAM policy
	// limits changes to groups carrying it.
	managedByTag = managedBy
	managedByVal = "eksir"
	// roleTag says what an eksir security group is for: quarantine,
	// untracked or forensic.
	roleTag = naming.Domain + "/role"
	// maxTagValue is EC2's limit on a tag value.
	maxTagValue = 256
)

// incidentTag is the tag naming the incident on what it touched.
func incidentTag(incident string) string { return IncidentKey(incident) }

// instanceResolved resolves the call's instance parameter.
func resolveInstance(ctx context.Context, e ec2API, a asgAPI, call action.Call) (*awstarget.Instance, error) {
	id := call.String("instance")
	if id == "" {
		return nil, fmt.Errorf("%w: instance: required (hint: the EC2 instance ID, i-..., or --node to derive it)", action.ErrBadInput)
	}
	return awstarget.DescribeInstance(ctx, e, a, id)
}

// splitTag spreads a long value over base, base.2, base.3, ... so that each
// part fits EC2's tag value limit. Values are comma lists, split at commas.
func splitTag(base, value string) map[string]string {
	out := map[string]string{}
	part, n := "", 1
	key := func() string {
		if n == 1 {
			return base
		}
		return base + "." + strconv.Itoa(n)
	}
	for _, item := range strings.Split(value, ",") {
		switch {
		case part == "":
			part = item
		case len(part)+1+len(item) <= maxTagValue:
			part += "," + item
		default:
			out[key()] = part
			n++
			part = item
		}
	}
	out[key()] = part
	return out
}

// joinTag reads back a value splitTag spread; ok is false without base.
func joinTag(tags map[string]string, base string) (string, bool) {
	v, ok := tags[base]
	if !ok {
		return "", false
	}
	for n := 2; ; n++ {
		more, ok := tags[base+"."+strconv.Itoa(n)]
		if !ok {
			return v, true
		}
		v += "," + more
	}
}

// tagKeysOf returns base and its continuation keys present in tags.
func tagKeysOf(tags map[string]string, base string) []string {
	var out []string
	for k := range tags {
		if k == base || strings.HasPrefix(k, base+".") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// otherBases returns the base keys with prefix other than mine, sorted.
func otherBases(tags map[string]string, prefix, mine string) []string {
	var out []string
	for k := range tags {
		if strings.HasPrefix(k, prefix) && k != mine && !strings.Contains(strings.TrimPrefix(k, prefix), ".") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// dryRunCheck turns the answer to a DryRun=true call into a permission
// check: DryRunOperation means the call would have succeeded.
func dryRunCheck(perm string, err error) action.PermissionCheck {
	switch code := awstarget.ErrorCode(err); {
	case code == "DryRunOperation":
		return action.PermissionCheck{Permission: perm, Allowed: true}
	case code == "UnauthorizedOperation" || code == "AccessDenied" || code == "AccessDeniedException":
		return action.PermissionCheck{Permission: perm, Allowed: false, Reason: code}
	case err == nil:
		// An endpoint that ignores DryRun would have made the change: say
		// so rather than report a permission nobody checked.
		return action.PermissionCheck{Permission: perm, Allowed: true, Reason: "the endpoint ignored DryRun"}
	default:
		return action.PermissionCheck{Permission: perm, Allowed: false, Reason: fmt.Sprintf("dry run failed: %v", err)}
	}
}

func isCode(err error, codes ...string) bool {
	c := awstarget.ErrorCode(err)
	for _, x := range codes {
		if c == x {
			return true
		}
	}
	return false
}

// findGroup returns the ID of the security group called name in vpc, ""
// when there is none.
func findGroup(ctx context.Context, e ec2API, vpc, name string) (*ec2types.SecurityGroup, error) {
	out, err := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil {
		return nil, fmt.Errorf("look up security group %s in %s: %w", name, vpc, err)
	}
	for i := range out.SecurityGroups {
		if aws.ToString(out.SecurityGroups[i].GroupName) == name {
			return &out.SecurityGroups[i], nil
		}
	}
	return nil, nil
}

// ensureGroup finds or creates the security group called name in vpc, with
// its tags in the create call itself. GroupName is unique per VPC, so a
// concurrent or resumed create gets InvalidGroup.Duplicate and looks the
// group up instead of making a second one.
func ensureGroup(ctx context.Context, e ec2API, vpc, name, desc string, tags map[string]string) (*ec2types.SecurityGroup, bool, error) {
	g, err := findGroup(ctx, e, vpc, name)
	if err != nil || g != nil {
		return g, false, err
	}
	_, err = e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(desc), VpcId: aws.String(vpc),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: awstarget.Tags(tags)}}})
	if err != nil && !isCode(err, "InvalidGroup.Duplicate") {
		return nil, false, fmt.Errorf("create security group %s in %s: %w", name, vpc, err)
	}
	g, err = findGroup(ctx, e, vpc, name)
	if err == nil && g == nil {
		err = fmt.Errorf("security group %s in %s: created but not found", name, vpc)
	}
	return g, err == nil, err
}

// groupsExist returns which of ids exist.
func groupsExist(ctx context.Context, e ec2API, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	p := ec2.NewDescribeSecurityGroupsPaginator(e, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: ids}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe security groups %v: %w", ids, err)
		}
		for _, g := range page.SecurityGroups {
			out[aws.ToString(g.GroupId)] = true
		}
	}
	return out, nil
}

// sameSet reports whether a and b hold the same IDs, in any order.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		if m[x] == 0 {
			return false
		}
		m[x]--
	}
	return true
}

// wait pauses for d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
