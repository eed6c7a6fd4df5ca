package awstarget

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/eksir/eksir/action"
)

// TrunkTag is the tag the VPC resource controller puts on every branch
// network interface of security groups for pods: its value is the ID of
// the trunk interface the branch hangs from. Branch interfaces are not
// attached to the instance themselves, so this tag is how they are found.
const TrunkTag = "vpcresources.k8s.aws/trunk-eni-id"

// EC2Describer is the part of the EC2 API that DescribeInstance reads.
type EC2Describer interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, opts ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, opts ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeIamInstanceProfileAssociations(ctx context.Context, in *ec2.DescribeIamInstanceProfileAssociationsInput, opts ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error)
}

// ASGDescriber is the part of the Auto Scaling API that DescribeInstance
// reads.
type ASGDescriber interface {
	DescribeAutoScalingInstances(ctx context.Context, in *autoscaling.DescribeAutoScalingInstancesInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error)
}

// Instance is an EC2 instance as containment sees it.
type Instance struct {
	ID, VPC, AZ string
	// State is the instance state name: pending, running, stopped, ...
	State string
	// Lifecycle is "spot" for a Spot Instance, "" for On-Demand.
	Lifecycle string
	// Profile is the instance profile ARN; ProfileAssociation the ID of
	// its association (state associated), both "" when it has none.
	Profile, ProfileAssociation string
	// Interfaces are the interfaces attached to the instance, then the
	// branch interfaces hanging from its trunk interfaces, each group
	// sorted by device index and ID.
	Interfaces []Interface
	Volumes    []Volume
	// ASG is the Auto Scaling group the instance belongs to ("" for none)
	// and ScaleInProtected its scale-in protection there.
	ASG              string
	ScaleInProtected bool
	Tags             map[string]string
}

// Interface is one network interface of an instance.
type Interface struct {
	ID string
	// Type is EC2's InterfaceType: interface, trunk, branch, efa, ...
	Type        string
	Primary     bool
	DeviceIndex int32
	// Groups are the security group IDs, in EC2's order.
	Groups []string
	// Trunk is the trunk interface a branch interface hangs from.
	Trunk string
	Tags  map[string]string
}

// Volume is an attached EBS volume.
type Volume struct {
	ID, Device          string
	DeleteOnTermination bool
}

// DescribeInstance reads an instance, its interfaces (attached and branch),
// volumes, instance profile association and Auto Scaling group. An instance
// that does not exist, or an ID that is not one, is bad input naming the
// "instance" field.
func DescribeInstance(ctx context.Context, ec2c EC2Describer, asg ASGDescriber, id string) (*Instance, error) {
	out, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if code := ErrorCode(err); code == "InvalidInstanceID.NotFound" || code == "InvalidInstanceID.Malformed" {
		return nil, fmt.Errorf("%w: instance: %s: %s (hint: check the ID and the region; a node's instance is the last part of its spec.providerID)", action.ErrBadInput, id, code)
	}
	if err != nil {
		return nil, fmt.Errorf("describe instance %s: %w", id, err)
	}
	var in *ec2types.Instance
	for _, r := range out.Reservations {
		for i := range r.Instances {
			if aws.ToString(r.Instances[i].InstanceId) == id {
				in = &r.Instances[i]
			}
		}
	}
	if in == nil || in.State != nil && in.State.Name == ec2types.InstanceStateNameTerminated {
		return nil, fmt.Errorf("%w: instance: %s does not exist or is terminated (hint: check the ID and the region)", action.ErrBadInput, id)
	}
	inst := &Instance{ID: id, VPC: aws.ToString(in.VpcId), Lifecycle: string(in.InstanceLifecycle), Tags: TagMap(in.Tags)}
	if in.Placement != nil {
		inst.AZ = aws.ToString(in.Placement.AvailabilityZone)
	}
	if in.State != nil {
		inst.State = string(in.State.Name)
	}
	if in.IamInstanceProfile != nil {
		inst.Profile = aws.ToString(in.IamInstanceProfile.Arn)
	}
	for _, b := range in.BlockDeviceMappings {
		if b.Ebs == nil {
			continue
		}
		inst.Volumes = append(inst.Volumes, Volume{ID: aws.ToString(b.Ebs.VolumeId), Device: aws.ToString(b.DeviceName), DeleteOnTermination: aws.ToBool(b.Ebs.DeleteOnTermination)})
	}
	sort.Slice(inst.Volumes, func(i, j int) bool { return inst.Volumes[i].Device < inst.Volumes[j].Device })

	if inst.Interfaces, err = interfaces(ctx, ec2c, id); err != nil {
		return nil, err
	}
	assoc, err := ec2c.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}, {Name: aws.String("state"), Values: []string{"associated"}}}})
	if err != nil {
		return nil, fmt.Errorf("describe instance profile association of %s: %w", id, err)
	}
	for _, a := range assoc.IamInstanceProfileAssociations {
		if a.State == ec2types.IamInstanceProfileAssociationStateAssociated {
			inst.ProfileAssociation = aws.ToString(a.AssociationId)
			if a.IamInstanceProfile != nil && inst.Profile == "" {
				inst.Profile = aws.ToString(a.IamInstanceProfile.Arn)
			}
		}
	}
	if asg != nil {
		g, err := asg.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			return nil, fmt.Errorf("describe Auto Scaling membership of %s: %w", id, err)
		}
		for _, a := range g.AutoScalingInstances {
			if aws.ToString(a.InstanceId) == id {
				inst.ASG, inst.ScaleInProtected = aws.ToString(a.AutoScalingGroupName), aws.ToBool(a.ProtectedFromScaleIn)
			}
		}
	}
	return inst, nil
}

// interfaces lists the interfaces attached to the instance and the branch
// interfaces of its trunks. Branches are looked up by the trunk tag for
// every attached interface, not only those typed trunk, so one call finds
// them whatever EC2 reports as the trunk's type.
func interfaces(ctx context.Context, ec2c EC2Describer, id string) ([]Interface, error) {
	attached, err := listInterfaces(ctx, ec2c, ec2types.Filter{Name: aws.String("attachment.instance-id"), Values: []string{id}})
	if err != nil {
		return nil, fmt.Errorf("list network interfaces of %s: %w", id, err)
	}
	if len(attached) == 0 {
		return nil, nil
	}
	ids := make([]string, 0, len(attached))
	for _, n := range attached {
		ids = append(ids, n.ID)
	}
	branches, err := listInterfaces(ctx, ec2c, ec2types.Filter{Name: aws.String("tag:" + TrunkTag), Values: ids})
	if err != nil {
		return nil, fmt.Errorf("list branch network interfaces of %s: %w", id, err)
	}
	for i := range branches {
		branches[i].Trunk = branches[i].Tags[TrunkTag]
		if branches[i].Type == "" || branches[i].Type == string(ec2types.NetworkInterfaceTypeInterface) {
			// An emulator may not know the branch type; the tag is authoritative.
			branches[i].Type = "branch"
		}
	}
	return append(attached, branches...), nil
}

func listInterfaces(ctx context.Context, ec2c EC2Describer, f ec2types.Filter) ([]Interface, error) {
	var out []Interface
	p := ec2.NewDescribeNetworkInterfacesPaginator(ec2c, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{f}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, n := range page.NetworkInterfaces {
			x := Interface{ID: aws.ToString(n.NetworkInterfaceId), Type: string(n.InterfaceType), Tags: TagMap(n.TagSet)}
			if n.Attachment != nil {
				x.DeviceIndex = aws.ToInt32(n.Attachment.DeviceIndex)
				x.Primary = x.DeviceIndex == 0
			}
			for _, g := range n.Groups {
				x.Groups = append(x.Groups, aws.ToString(g.GroupId))
			}
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DeviceIndex != out[j].DeviceIndex {
			return out[i].DeviceIndex < out[j].DeviceIndex
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Tags is the EC2 form of m, sorted by key so that calls are stable.
func Tags(m map[string]string) []ec2types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]ec2types.Tag, 0, len(keys))
	for _, k := range keys {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// TagMap turns EC2 tags into a map.
func TagMap(ts []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(ts))
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// ErrorCode returns the AWS error code of err, "" when it carries none.
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
