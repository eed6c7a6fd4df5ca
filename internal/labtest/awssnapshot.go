package labtest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// AWSSnapshot describes everything in a moto account that eksir's AWS
// actions may change, as text keyed by resource: instances (attributes
// that containment changes, profile association), network interfaces and
// their groups, security groups with their rules, volumes, Auto Scaling
// membership and protection, IAM roles with their inline policies,
// instance profiles, users with their keys, inline policies and login
// profiles, and every tag. Two snapshots compare with maps.Equal, to prove
// that plan, or a refused input, changed nothing.
func AWSSnapshot(t testing.TB, cfg aws.Config) map[string]string {
	t.Helper()
	out, err := awsSnapshot(t.Context(), cfg)
	if err != nil {
		t.Fatalf("AWS snapshot: %v", err)
	}
	return out
}

func awsSnapshot(ctx context.Context, cfg aws.Config) (map[string]string, error) {
	out := map[string]string{}
	put := func(k string, v any) {
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	e := ec2.NewFromConfig(cfg)
	ip := ec2.NewDescribeInstancesPaginator(e, &ec2.DescribeInstancesInput{})
	for ip.HasMorePages() {
		p, err := ip.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range p.Reservations {
			for _, in := range r.Instances {
				id := aws.ToString(in.InstanceId)
				put("instance/"+id, map[string]any{"state": in.State, "profile": in.IamInstanceProfile, "tags": in.Tags, "bdm": in.BlockDeviceMappings})
				for _, attr := range []string{"disableApiTermination", "disableApiStop"} {
					a, err := e.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: in.InstanceId, Attribute: ec2types.InstanceAttributeName(attr)})
					if err == nil {
						put("instance/"+id+"/"+attr, map[string]any{"term": a.DisableApiTermination, "stop": a.DisableApiStop})
					}
				}
			}
		}
	}
	enis, err := e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if err != nil {
		return nil, fmt.Errorf("describe network interfaces: %w", err)
	}
	for _, n := range enis.NetworkInterfaces {
		put("eni/"+aws.ToString(n.NetworkInterfaceId), map[string]any{"groups": n.Groups, "tags": n.TagSet, "attachment": n.Attachment})
	}
	sgs, err := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		return nil, fmt.Errorf("describe security groups: %w", err)
	}
	for _, g := range sgs.SecurityGroups {
		put("sg/"+aws.ToString(g.GroupId), g)
	}
	vols, err := e.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil {
		return nil, fmt.Errorf("describe volumes: %w", err)
	}
	for _, v := range vols.Volumes {
		put("volume/"+aws.ToString(v.VolumeId), map[string]any{"attachments": v.Attachments, "tags": v.Tags})
	}
	assoc, err := e.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{})
	if err != nil {
		return nil, fmt.Errorf("describe profile associations: %w", err)
	}
	for _, a := range assoc.IamInstanceProfileAssociations {
		put("association/"+aws.ToString(a.AssociationId), a)
	}
	asc := autoscaling.NewFromConfig(cfg)
	ai, err := asc.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{})
	if err != nil {
		return nil, fmt.Errorf("describe auto scaling instances: %w", err)
	}
	for _, a := range ai.AutoScalingInstances {
		put("asg-instance/"+aws.ToString(a.InstanceId), a)
	}
	groups, err := asc.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
	if err != nil {
		return nil, fmt.Errorf("describe auto scaling groups: %w", err)
	}
	for _, g := range groups.AutoScalingGroups {
		put("asg/"+aws.ToString(g.AutoScalingGroupName), map[string]any{"desired": g.DesiredCapacity, "instances": len(g.Instances)})
	}
	if err := iamSnapshot(ctx, iam.NewFromConfig(cfg), put); err != nil {
		return nil, err
	}
	return out, nil
}

func iamSnapshot(ctx context.Context, c *iam.Client, put func(string, any)) error {
	roles, err := c.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		return fmt.Errorf("list roles: %w", err)
	}
	for _, r := range roles.Roles {
		name := aws.ToString(r.RoleName)
		pols, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: r.RoleName})
		if err != nil {
			return fmt.Errorf("list policies of role %s: %w", name, err)
		}
		docs := map[string]string{}
		for _, p := range pols.PolicyNames {
			d, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: r.RoleName, PolicyName: aws.String(p)})
			if err != nil {
				return fmt.Errorf("get policy %s of role %s: %w", p, name, err)
			}
			docs[p] = aws.ToString(d.PolicyDocument)
		}
		tags, _ := c.ListRoleTags(ctx, &iam.ListRoleTagsInput{RoleName: r.RoleName})
		var tl any
		if tags != nil {
			tl = tags.Tags
		}
		put("role/"+name, map[string]any{"policies": docs, "tags": tl})
	}
	profiles, err := c.ListInstanceProfiles(ctx, &iam.ListInstanceProfilesInput{})
	if err != nil {
		return fmt.Errorf("list instance profiles: %w", err)
	}
	for _, p := range profiles.InstanceProfiles {
		var rs []string
		for _, r := range p.Roles {
			rs = append(rs, aws.ToString(r.RoleName))
		}
		sort.Strings(rs)
		put("profile/"+aws.ToString(p.InstanceProfileName), rs)
	}
	users, err := c.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	for _, u := range users.Users {
		name := aws.ToString(u.UserName)
		keys, err := c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: u.UserName})
		if err != nil {
			return fmt.Errorf("list keys of %s: %w", name, err)
		}
		ks := map[string]string{}
		for _, k := range keys.AccessKeyMetadata {
			ks[aws.ToString(k.AccessKeyId)] = string(k.Status)
		}
		pols, err := c.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: u.UserName})
		if err != nil {
			return fmt.Errorf("list policies of %s: %w", name, err)
		}
		docs := map[string]string{}
		for _, p := range pols.PolicyNames {
			d, err := c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: u.UserName, PolicyName: aws.String(p)})
			if err != nil {
				return fmt.Errorf("get policy %s of %s: %w", p, name, err)
			}
			docs[p] = aws.ToString(d.PolicyDocument)
		}
		_, lpErr := c.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: u.UserName})
		tags, _ := c.ListUserTags(ctx, &iam.ListUserTagsInput{UserName: u.UserName})
		var tl any
		if tags != nil {
			tl = tags.Tags
		}
		put("user/"+name, map[string]any{"keys": ks, "policies": docs, "login_profile": lpErr == nil, "tags": tl})
	}
	return nil
}
