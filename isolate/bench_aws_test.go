package isolate_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"golang.org/x/sync/errgroup"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awsfault"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/isolate"
)

// containmentInstances is the size of the node-compromise containment
// benchmark (issue 13): 20 instances.
const containmentInstances = 20

// BenchmarkNodeContainment contains 20 instances as node-compromise does
// (instance-protect, instance-network, revoke.instance-profile; plan, then
// run, each instance its own incident) against moto:
//
//   - eksir-parallel-N: the 20 runs at once, at most N in flight;
//   - eksir-one-by-one: the same runs one after the other;
//   - cli-script: the same containment as one API call after the other,
//     as a responder's AWS CLI script makes them (without the CLI's own
//     start-up per call, which would only add to it).
//
// moto answers in a millisecond or two from one Python process, where AWS
// answers in tens of milliseconds from a fleet; so each runs twice: on
// moto as it is, and through a proxy adding latencyAWS to every call.
// Every iteration gets a freshly seeded moto account (not timed).
func BenchmarkNodeContainment(b *testing.B) {
	for _, lat := range []time.Duration{0, latencyAWS} {
		name := "moto"
		if lat > 0 {
			name = "moto+" + lat.String()
		}
		b.Run(name+"/eksir-parallel-10", func(b *testing.B) { benchContain(b, lat, 10) })
		if lat == 0 {
			b.Run(name+"/eksir-one-by-one", func(b *testing.B) { benchContain(b, lat, 1) })
		}
		b.Run(name+"/cli-script", func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				s, ids := seedInstances(b)
				cfg := awsWithLatency(b, s, lat)
				b.StartTimer()
				for _, id := range ids {
					if err := cliContain(b.Context(), cfg, id); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(containmentInstances, "instances/op")
		})
	}
}

// latencyAWS is a typical round trip to a regional EC2 or IAM endpoint.
const latencyAWS = 50 * time.Millisecond

// awsWithLatency is the scenario's AWS configuration, through a proxy
// that delays every call by lat when lat is not zero.
func awsWithLatency(b *testing.B, s *labtest.Scenario, lat time.Duration) aws.Config {
	if lat == 0 {
		return s.Lab.AWS
	}
	u, err := url.Parse(s.Lab.State.AWSEndpoint)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(awsfault.New(u, awsfault.Options{Latency: lat}))
	b.Cleanup(srv.Close)
	return s.Lab.AWSVia(b, srv.URL)
}

func benchContain(b *testing.B, lat time.Duration, limit int) {
	for range b.N {
		b.StopTimer()
		s, ids := seedInstances(b)
		s.Env.AWS = awsWithLatency(b, s, lat)
		ctx := b.Context()
		var acts []action.Action
		for _, n := range []string{"isolate.instance-protect", "isolate.instance-network", "revoke.instance-profile"} {
			a, _ := s.Registry.Lookup(n)
			acts = append(acts, a)
		}
		b.StartTimer()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(limit)
		for _, id := range ids {
			g.Go(func() error {
				env := *s.Env
				env.Incident = "bench-" + id
				for _, a := range acts {
					call := action.Call{Step: a.Spec().Name, Params: map[string]any{"instance": id, "asg": "protect", "two-step": true, "settle": time.Duration(0)}}
					if _, err := a.Plan(gctx, &env, call); err != nil {
						return fmt.Errorf("%s plan %s: %w", a.Spec().Name, id, err)
					}
					if _, err := a.Run(gctx, &env, call); err != nil {
						return fmt.Errorf("%s run %s: %w", a.Spec().Name, id, err)
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(containmentInstances, "instances/op")
}

// seedInstances seeds a fresh moto account with 20 node instances.
func seedInstances(b *testing.B) (*labtest.Scenario, []string) {
	b.Helper()
	s := labtest.SeedScenario(b, containmentInstances, 1, isolate.Register)
	s.Env.AWS = s.Lab.AWS
	out, err := ec2.NewFromConfig(s.Lab.AWS).DescribeInstances(b.Context(), &ec2.DescribeInstancesInput{})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	if len(ids) != containmentInstances {
		b.Fatalf("seeded %d instances", len(ids))
	}
	return s, ids
}

// cliContain is what a responder's script does for one instance, one AWS
// CLI call after the other: protect, swap the groups of every interface
// (untracked, then quarantine, creating both groups the first time),
// disassociate the instance profile and deny the role's older sessions.
func cliContain(ctx context.Context, cfg aws.Config, id string) error {
	e, as, ic := ec2.NewFromConfig(cfg), autoscaling.NewFromConfig(cfg), iam.NewFromConfig(cfg)
	d, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return err
	}
	in := d.Reservations[0].Instances[0]
	if _, err := e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: &id, DisableApiTermination: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
		return err
	}
	if _, err := e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: &id, DisableApiStop: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
		return err
	}
	for _, m := range in.BlockDeviceMappings {
		if _, err := e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: &id, BlockDeviceMappings: []ec2types.InstanceBlockDeviceMappingSpecification{
			{DeviceName: m.DeviceName, Ebs: &ec2types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(false)}}}}); err != nil {
			return err
		}
	}
	tag := []ec2types.Tag{{Key: aws.String("incident"), Value: aws.String("script")}}
	if _, err := e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: tag}); err != nil {
		return err
	}
	asi, err := as.DescribeAutoScalingInstances(ctx, &autoscaling.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return err
	}
	for _, a := range asi.AutoScalingInstances {
		if _, err := as.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: a.AutoScalingGroupName, InstanceIds: []string{id}, ProtectedFromScaleIn: aws.Bool(true)}); err != nil {
			return err
		}
	}
	vpc := aws.ToString(in.VpcId)
	group := func(name string, allowAll bool) (string, error) {
		g, err := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{name}}, {Name: aws.String("vpc-id"), Values: []string{vpc}}}})
		if err != nil {
			return "", err
		}
		if len(g.SecurityGroups) > 0 {
			return aws.ToString(g.SecurityGroups[0].GroupId), nil
		}
		c, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name), VpcId: &vpc})
		if err != nil {
			return "", err
		}
		all := []ec2types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}
		if allowAll {
			if _, err := e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: c.GroupId, IpPermissions: all}); err != nil {
				return "", err
			}
		} else if _, err := e.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: c.GroupId, IpPermissions: all}); err != nil {
			return "", err
		}
		return aws.ToString(c.GroupId), nil
	}
	untracked, err := group("script-untracked", true)
	if err != nil {
		return err
	}
	quarantine, err := group("script-quarantine", false)
	if err != nil {
		return err
	}
	enis, err := e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
	if err != nil {
		return err
	}
	for _, n := range enis.NetworkInterfaces {
		for _, g := range []string{untracked, quarantine} {
			if _, err := e.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: n.NetworkInterfaceId, Groups: []string{g}}); err != nil {
				return err
			}
		}
	}
	assoc, err := e.DescribeIamInstanceProfileAssociations(ctx, &ec2.DescribeIamInstanceProfileAssociationsInput{Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: []string{id}}}})
	if err != nil {
		return err
	}
	for _, a := range assoc.IamInstanceProfileAssociations {
		if _, err := e.DisassociateIamInstanceProfile(ctx, &ec2.DisassociateIamInstanceProfileInput{AssociationId: a.AssociationId}); err != nil {
			return err
		}
		arn := aws.ToString(a.IamInstanceProfile.Arn)
		p, err := ic.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(arn[strings.LastIndex(arn, "/")+1:])})
		if err != nil {
			return err
		}
		doc := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":%q}}}]}`, time.Now().UTC().Format(time.RFC3339))
		if _, err := ic.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: p.InstanceProfile.Roles[0].RoleName, PolicyName: aws.String("script-deny-" + id), PolicyDocument: &doc}); err != nil {
			return err
		}
	}
	return nil
}
