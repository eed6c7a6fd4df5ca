package aws_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/labtest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// TestLabEndpointFromEnv: with no Endpoint option, AWS_ENDPOINT_URL alone
// sends the calls to moto (the SDK honours it), and the identity is the
// test's moto account.
func TestLabEndpointFromEnv(t *testing.T) {
	env := labtest.Start(t)
	t.Setenv("AWS_ENDPOINT_URL", env.State.AWSEndpoint)
	cfg, err := eaws.Load(t.Context(), eaws.Options{Region: env.State.Region, StaticKey: "AKIAEKSIRLABTEST0001", StaticSecret: "test",
		Headers: map[string]string{"x-moto-account-id": env.Account}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity through AWS_ENDPOINT_URL: %v", err)
	}
	if aws.ToString(id.Account) != env.Account {
		t.Errorf("account %s, want the test's moto account %s", aws.ToString(id.Account), env.Account)
	}
}

// TestLabAssumeRole: with RoleARN and ExternalID every call is made as the
// role, in a session named after the incident, and AssumeRole is recorded.
func TestLabAssumeRole(t *testing.T) {
	env := labtest.Start(t)
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + env.Account +
		`:root"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"ext-42"}}}]}`
	role, err := iam.NewFromConfig(env.AWS).CreateRole(t.Context(), &iam.CreateRoleInput{RoleName: aws.String("eksir-responder"), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatal(err)
	}
	rec := &eaws.Recorder{}
	cfg := env.AWSWith(t, eaws.Options{RoleARN: aws.ToString(role.Role.Arn), ExternalID: "ext-42", Incident: "INC/2026 11:30", Recorder: rec})
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := "arn:aws:sts::" + env.Account + ":assumed-role/eksir-responder/eksir-INC-2026-11-30"
	if aws.ToString(id.Arn) != want {
		t.Errorf("caller %s, want %s", aws.ToString(id.Arn), want)
	}
	if got := rec.Calls(); !slices.Equal(got, []string{"sts:AssumeRole"}) {
		t.Errorf("recorded %v, want [sts:AssumeRole] (GetCallerIdentity needs no permission)", got)
	}
	// The base identity is a different principal: the option changed who calls.
	base, err := sts.NewFromConfig(env.AWS).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(base.Arn) == aws.ToString(id.Arn) {
		t.Errorf("base and assumed identity are both %s", aws.ToString(id.Arn))
	}
}

// TestLabRecorder records direct SDK calls of several services against
// moto as IAM actions, failed ones included, from concurrent goroutines.
func TestLabRecorder(t *testing.T) {
	env := labtest.Start(t)
	rec := &eaws.Recorder{}
	cfg := env.AWSWith(t, eaws.Options{Recorder: rec, MaxAttempts: 1})
	ctx := t.Context()
	calls := []func() error{
		func() error {
			_, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		},
		func() error {
			_, err := iam.NewFromConfig(cfg).ListRoles(ctx, &iam.ListRolesInput{})
			return err
		},
		func() error {
			_, err := autoscaling.NewFromConfig(cfg).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
			return err
		},
		func() error {
			_, err := eaws.S3(cfg).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("no-such-bucket-" + env.Account), Key: aws.String("k")})
			if err == nil {
				return errors.New("HeadObject on a missing bucket succeeded")
			}
			return nil // denied or missing, the call still needs s3:GetObject
		},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(calls))
	for i, call := range calls {
		wg.Go(func() { errs[i] = call() })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	want := []string{"autoscaling:DescribeAutoScalingGroups", "ec2:DescribeInstances", "iam:ListRoles", "s3:GetObject"}
	if got := rec.Calls(); !slices.Equal(got, want) {
		t.Errorf("recorded %v, want %v", got, want)
	}
	if err := rec.Err(); err != nil {
		t.Errorf("unexpected unknown service: %v", err)
	}
}

// TestLabTestHook: the hook sees each successful operation, once, and no
// failed one.
func TestLabTestHook(t *testing.T) {
	env := labtest.Start(t)
	var (
		mu   sync.Mutex
		seen []string
	)
	eaws.SetTestHook(func(_ context.Context, service, op string) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, service+":"+op)
	})
	t.Cleanup(func() { eaws.SetTestHook(nil) })
	cfg := env.AWSWith(t, eaws.Options{MaxAttempts: 1})
	c := ec2.NewFromConfig(cfg)
	if _, err := c.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StopInstances(t.Context(), &ec2.StopInstancesInput{InstanceIds: []string{"i-0000000000000dead"}}); err == nil {
		t.Fatal("StopInstances of a missing instance succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, []string{"EC2:DescribeVpcs"}) {
		t.Errorf("hook saw %v, want [EC2:DescribeVpcs]", seen)
	}
}

func TestIAMActionsUnknownService(t *testing.T) {
	if _, err := eaws.IAMActions("Kinesis", "PutRecord"); err == nil || !strings.Contains(err.Error(), "Kinesis") {
		t.Errorf("unknown service: err %v, want one naming Kinesis", err)
	}
	for _, c := range []struct{ svc, op, want string }{
		{"EC2", "DescribeInstances", "ec2:DescribeInstances"},
		{"IAM", "PutRolePolicy", "iam:PutRolePolicy"},
		{"Auto Scaling", "SetInstanceProtection", "autoscaling:SetInstanceProtection"},
		{"STS", "AssumeRole", "sts:AssumeRole"},
		{"EKS", "ListPodIdentityAssociations", "eks:ListPodIdentityAssociations"},
		{"S3", "PutObject", "s3:PutObject"},
		{"S3", "UploadPart", "s3:PutObject"},
		{"CloudWatch Logs", "GetLogEvents", "logs:GetLogEvents"},
		{"GuardDuty", "GetFindings", "guardduty:GetFindings"},
	} {
		got, err := eaws.IAMActions(c.svc, c.op)
		if err != nil || !slices.Equal(got, []string{c.want}) {
			t.Errorf("IAMActions(%s, %s) = %v, %v; want [%s]", c.svc, c.op, got, err, c.want)
		}
	}
}
