package awsfault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/awsfault"
	"github.com/eksir/eksir/internal/labtest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// start puts a proxy with o in front of the lab's moto and returns a
// configuration for the test's account that goes through it.
func start(t *testing.T, o awsfault.Options, attempts int) (*labtest.Env, *awsfault.Proxy, aws.Config) {
	t.Helper()
	env := labtest.Start(t)
	target, err := url.Parse(env.State.AWSEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := awsfault.New(target, o)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return env, p, env.AWSWith(t, eaws.Options{Endpoint: srv.URL, MaxAttempts: attempts})
}

const trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// TestThrottledCallsComplete: with 30% of the calls of EC2, IAM, Auto
// Scaling, STS and S3 failing with throttling or 503, every call completes
// through the SDK's retries, and what reaches moto is intact (the proxy
// restored the form bodies it read): the roles, groups and objects read
// back directly from moto are the ones sent.
func TestThrottledCallsComplete(t *testing.T) {
	// Ten attempts: at a 30% fault rate the SDK's default three would
	// leave 2.7% of calls failing, which is the retry budget's business,
	// not this proxy's.
	env, p, cfg := start(t, awsfault.Options{Rate: 0.3, Seed: 7, Faults: []awsfault.Fault{awsfault.Throttle, awsfault.Unavailable}}, 10)
	ctx := t.Context()
	bucket := "faults-" + env.Account
	if _, err := eaws.S3(cfg).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	vpcs, err := ec2.NewFromConfig(cfg).DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(vpcs.Vpcs) == 0 {
		t.Fatalf("DescribeVpcs: %v (%d VPCs)", err, len(vpcs.Vpcs))
	}
	vpc := aws.ToString(vpcs.Vpcs[0].VpcId)
	for i := range 12 {
		name := fmt.Sprintf("faults-%d", i)
		if _, err := iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), Description: aws.String("d" + name),
			AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
			t.Fatalf("CreateRole %s: %v", name, err)
		}
		if _, err := ec2.NewFromConfig(cfg).CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name),
			Description: aws.String("d" + name), VpcId: aws.String(vpc)}); err != nil {
			t.Fatalf("CreateSecurityGroup %s: %v", name, err)
		}
		if _, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}}); err != nil {
			t.Fatalf("DescribeAutoScalingGroups: %v", err)
		}
		if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatalf("GetCallerIdentity: %v", err)
		}
		if _, err := eaws.S3(cfg).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(name), Body: bytes.NewReader([]byte("body " + name))}); err != nil {
			t.Fatalf("PutObject: %v", err)
		}
	}
	t.Logf("proxy:\n%s", p)
	for _, svc := range []string{"ec2:CreateSecurityGroup", "iam:CreateRole", "autoscaling:DescribeAutoScalingGroups", "sts:GetCallerIdentity", "s3:PutObject"} {
		if c := p.Counts()[svc]; c.Injected == 0 || c.Forwarded != 12 {
			t.Errorf("%s: %+v, want some injected and 12 forwarded", svc, c)
		}
	}
	// Read back directly from moto.
	for i := range 12 {
		name := fmt.Sprintf("faults-%d", i)
		r, err := iam.NewFromConfig(env.AWS).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if err != nil || aws.ToString(r.Role.Description) != "d"+name {
			t.Errorf("role %s: %v, %v", name, err, r)
		}
		g, err := ec2.NewFromConfig(env.AWS).DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}})
		if err != nil || len(g.SecurityGroups) != 1 || aws.ToString(g.SecurityGroups[0].Description) != "d"+name {
			t.Errorf("security group %s: %v, %+v", name, err, g)
		}
		o, err := eaws.S3(env.AWS).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(name)})
		if err != nil {
			t.Errorf("object %s: %v", name, err)
			continue
		}
		b, err := io.ReadAll(o.Body)
		o.Body.Close()
		if err != nil || string(b) != "body "+name {
			t.Errorf("object %s: %q, %v", name, b, err)
		}
	}
}

// TestAlwaysFailCode: an operation that always fails ends, after the
// SDK's retries, with a smithy APIError carrying the injected code of its
// protocol, and the proxy saw every attempt; other operations pass.
func TestAlwaysFailCode(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		service, op string
		fault       awsfault.Fault
		code        string
		call        func(aws.Config) error
	}{
		{"ec2", "DescribeInstances", awsfault.Throttle, "RequestLimitExceeded", func(cfg aws.Config) error {
			_, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		}},
		{"ec2", "DescribeInstances", awsfault.Unavailable, "ServiceUnavailable", func(cfg aws.Config) error {
			_, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		}},
		{"iam", "ListRoles", awsfault.Throttle, "Throttling", func(cfg aws.Config) error {
			_, err := iam.NewFromConfig(cfg).ListRoles(ctx, &iam.ListRolesInput{})
			return err
		}},
		{"iam", "ListRoles", awsfault.Unavailable, "ServiceUnavailable", func(cfg aws.Config) error {
			_, err := iam.NewFromConfig(cfg).ListRoles(ctx, &iam.ListRolesInput{})
			return err
		}},
		{"autoscaling", "DescribeAutoScalingGroups", awsfault.Throttle, "Throttling", func(cfg aws.Config) error {
			_, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
			return err
		}},
		{"sts", "GetCallerIdentity", awsfault.Throttle, "Throttling", func(cfg aws.Config) error {
			_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			return err
		}},
		{"eks", "GET /clusters", awsfault.Throttle, "ThrottlingException", func(cfg aws.Config) error {
			_, err := eks.NewFromConfig(cfg).ListClusters(ctx, &eks.ListClustersInput{})
			return err
		}},
		{"eks", "GET /clusters", awsfault.Unavailable, "ServiceUnavailableException", func(cfg aws.Config) error {
			_, err := eks.NewFromConfig(cfg).ListClusters(ctx, &eks.ListClustersInput{})
			return err
		}},
		{"s3", "PutObject", awsfault.Throttle, "SlowDown", func(cfg aws.Config) error {
			_, err := eaws.S3(cfg).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: bytes.NewReader([]byte("x"))})
			return err
		}},
	} {
		t.Run(c.service+"-"+strings.ReplaceAll(c.op, " /", "")+"-"+c.fault.String(), func(t *testing.T) {
			_, p, cfg := start(t, awsfault.Options{Faults: []awsfault.Fault{c.fault},
				Always: func(service, op string) bool { return service == c.service && op == c.op }}, 2)
			err := c.call(cfg)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != c.code {
				t.Fatalf("err = %v, want an APIError with code %s", err, c.code)
			}
			if n := p.Counts()[c.service+":"+c.op]; n.Injected != 2 || n.Forwarded != 0 {
				t.Errorf("counts %+v, want 2 injected (both attempts), none forwarded", n)
			}
			// Another operation of the same service goes through.
			if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil && c.service != "sts" {
				t.Errorf("an operation not chosen failed: %v", err)
			}
		})
	}
}
