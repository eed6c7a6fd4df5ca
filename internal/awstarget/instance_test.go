package awstarget

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/eksir/eksir/action"
)

// fakeEC2 answers the three Describe calls from fixed data, with the
// interface types real EC2 reports for security groups for pods (trunk,
// branch), which moto cannot represent; the lab tests cover the rest
// against moto.
type fakeEC2 struct {
	err      error
	instance ec2types.Instance
	enis     []ec2types.NetworkInterface
	pages    int
}

func (f *fakeEC2) DescribeInstances(_ context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{f.instance}}}}, nil
}

// DescribeNetworkInterfaces filters by attachment.instance-id or by the
// trunk tag, one interface per page so pagination is exercised.
func (f *fakeEC2) DescribeNetworkInterfaces(_ context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	var match []ec2types.NetworkInterface
	fl := in.Filters[0]
	for _, n := range f.enis {
		switch aws.ToString(fl.Name) {
		case "attachment.instance-id":
			if n.Attachment != nil && aws.ToString(n.Attachment.InstanceId) == fl.Values[0] {
				match = append(match, n)
			}
		case "tag:" + TrunkTag:
			for _, tg := range n.TagSet {
				for _, v := range fl.Values {
					if aws.ToString(tg.Key) == TrunkTag && aws.ToString(tg.Value) == v {
						match = append(match, n)
					}
				}
			}
		}
	}
	start := 0
	if in.NextToken != nil {
		start = int(aws.ToString(in.NextToken)[0] - '0')
	}
	out := &ec2.DescribeNetworkInterfacesOutput{}
	if start < len(match) {
		f.pages++
		out.NetworkInterfaces = match[start : start+1]
		if start+1 < len(match) {
			out.NextToken = aws.String(string(rune('0' + start + 1)))
		}
	}
	return out, nil
}

func (f *fakeEC2) DescribeIamInstanceProfileAssociations(context.Context, *ec2.DescribeIamInstanceProfileAssociationsInput, ...func(*ec2.Options)) (*ec2.DescribeIamInstanceProfileAssociationsOutput, error) {
	return &ec2.DescribeIamInstanceProfileAssociationsOutput{IamInstanceProfileAssociations: []ec2types.IamInstanceProfileAssociation{{
		AssociationId: aws.String("iip-assoc-1"), State: ec2types.IamInstanceProfileAssociationStateAssociated,
		IamInstanceProfile: &ec2types.IamInstanceProfile{Arn: aws.String("arn:aws:iam::1:instance-profile/node")}}}}, nil
}

type fakeASG struct{}

func (fakeASG) DescribeAutoScalingInstances(context.Context, *autoscaling.DescribeAutoScalingInstancesInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingInstancesOutput, error) {
	return &autoscaling.DescribeAutoScalingInstancesOutput{AutoScalingInstances: []asgtypes.AutoScalingInstanceDetails{{
		InstanceId: aws.String("i-1"), AutoScalingGroupName: aws.String("ng"), ProtectedFromScaleIn: aws.Bool(true)}}}, nil
}

func eni(id string, typ ec2types.NetworkInterfaceType, device int32, attached bool, trunk string, groups ...string) ec2types.NetworkInterface {
	n := ec2types.NetworkInterface{NetworkInterfaceId: aws.String(id), InterfaceType: typ}
	if attached {
		n.Attachment = &ec2types.NetworkInterfaceAttachment{InstanceId: aws.String("i-1"), DeviceIndex: aws.Int32(device)}
	}
	if trunk != "" {
		n.TagSet = []ec2types.Tag{{Key: aws.String(TrunkTag), Value: aws.String(trunk)}}
	}
	for _, g := range groups {
		n.Groups = append(n.Groups, ec2types.GroupIdentifier{GroupId: aws.String(g)})
	}
	return n
}

func TestDescribeInstanceFindsTrunkAndBranches(t *testing.T) {
	f := &fakeEC2{
		instance: ec2types.Instance{InstanceId: aws.String("i-1"), VpcId: aws.String("vpc-1"), InstanceLifecycle: ec2types.InstanceLifecycleTypeSpot,
			State: &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning}, Placement: &ec2types.Placement{AvailabilityZone: aws.String("us-east-1a")},
			BlockDeviceMappings: []ec2types.InstanceBlockDeviceMapping{
				{DeviceName: aws.String("/dev/xvdb"), Ebs: &ec2types.EbsInstanceBlockDevice{VolumeId: aws.String("vol-2")}},
				{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsInstanceBlockDevice{VolumeId: aws.String("vol-1"), DeleteOnTermination: aws.Bool(true)}}}},
		enis: []ec2types.NetworkInterface{
			eni("eni-trunk", ec2types.NetworkInterfaceTypeTrunk, 1, true, "", "sg-node"),
			eni("eni-primary", ec2types.NetworkInterfaceTypeInterface, 0, true, "", "sg-node", "sg-extra"),
			eni("eni-branch-b", "branch", 0, false, "eni-trunk", "sg-pods"),
			eni("eni-branch-a", "branch", 0, false, "eni-trunk", "sg-pods"),
			eni("eni-elsewhere", "branch", 0, false, "eni-other-trunk", "sg-pods"),
		},
	}
	in, err := DescribeInstance(t.Context(), f, fakeASG{}, "i-1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range in.Interfaces {
		got = append(got, i.ID+"/"+i.Type+"/"+i.Trunk+"/"+strings.Join(i.Groups, "+"))
	}
	want := []string{"eni-primary/interface//sg-node+sg-extra", "eni-trunk/trunk//sg-node", "eni-branch-a/branch/eni-trunk/sg-pods", "eni-branch-b/branch/eni-trunk/sg-pods"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("interfaces %v, want %v", got, want)
	}
	if !in.Interfaces[0].Primary || in.Interfaces[1].Primary {
		t.Errorf("primary flags: %+v", in.Interfaces)
	}
	if f.pages < 4 {
		t.Errorf("%d pages read, want every page", f.pages)
	}
	if in.Lifecycle != "spot" || in.ASG != "ng" || !in.ScaleInProtected || in.ProfileAssociation != "iip-assoc-1" || in.VPC != "vpc-1" || in.AZ != "us-east-1a" {
		t.Errorf("instance: %+v", in)
	}
	wantVols := []Volume{{ID: "vol-1", Device: "/dev/xvda", DeleteOnTermination: true}, {ID: "vol-2", Device: "/dev/xvdb"}}
	if !reflect.DeepEqual(in.Volumes, wantVols) {
		t.Errorf("volumes %+v, want %+v", in.Volumes, wantVols)
	}
}

func TestDescribeInstanceMissingIsBadInput(t *testing.T) {
	for _, code := range []string{"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"} {
		f := &fakeEC2{err: &smithy.GenericAPIError{Code: code, Message: "nope"}}
		_, err := DescribeInstance(t.Context(), f, nil, "i-x")
		if !errors.Is(err, action.ErrBadInput) || !strings.Contains(err.Error(), "instance") || !strings.Contains(err.Error(), "hint") {
			t.Errorf("%s: %v, want bad input naming instance with a hint", code, err)
		}
	}
	f := &fakeEC2{err: &smithy.GenericAPIError{Code: "RequestLimitExceeded"}}
	if _, err := DescribeInstance(t.Context(), f, nil, "i-x"); err == nil || errors.Is(err, action.ErrBadInput) {
		t.Errorf("throttling: %v, want a plain error", err)
	}
}
