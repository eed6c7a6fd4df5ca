package playbooks_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/playbooks"
)

// TestLabAWSTargets resolves instances, roles and access keys against
// moto: those that exist come back as given, the others are TargetErrors
// naming them, and resolution changes nothing in the account.
func TestLabAWSTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("lab integration test (-short)")
	}
	le := labtest.Start(t)
	ctx := t.Context()
	ec2c, iamc := ec2.NewFromConfig(le.AWS), iam.NewFromConfig(le.AWS)
	run, err := ec2c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), MinCount: aws.Int32(2), MaxCount: aws.Int32(2), InstanceType: ec2types.InstanceTypeT3Micro})
	if err != nil {
		t.Fatal(err)
	}
	live, dead := aws.ToString(run.Instances[0].InstanceId), aws.ToString(run.Instances[1].InstanceId)
	if _, err := ec2c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{dead}}); err != nil {
		t.Fatal(err)
	}
	role, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("web"), Path: aws.String("/apps/"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("leaked")}); err != nil {
		t.Fatal(err)
	}
	key, err := iamc.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("leaked")})
	if err != nil {
		t.Fatal(err)
	}
	keyID := aws.ToString(key.AccessKey.AccessKeyId)
	roleARN := aws.ToString(role.Role.Arn)

	if got, err := playbooks.AWSTargets(le.AWS).Resolve(ctx, action.IAMRole, strings.Replace(roleARN, "/apps/", "/", 1)); got != roleARN || err != nil {
		t.Errorf("role ARN without its path: %q %v, want %s", got, err, roleARN)
	}
	before := awsState(t, le)
	r := playbooks.AWSTargets(le.AWS)
	for _, tc := range []struct {
		typ       action.ParamType
		ref, want string
	}{
		{action.Instance, live, ""},
		{action.Instance, "i-0123456789abcdef0", "instance i-0123456789abcdef0 not found"},
		{action.Instance, dead, "is terminated"},
		{action.IAMRole, roleARN, ""},
		{action.IAMRole, strings.Replace(roleARN, "/apps/", "/other/", 1), "is " + roleARN},
		{action.IAMRole, "arn:aws:iam::" + le.Account + ":role/nobody", "role nobody not found in account " + le.Account},
		{action.IAMRole, "arn:aws:iam::999999999999:role/web", "is in account 999999999999; these credentials are for account " + le.Account},
		{action.AccessKey, keyID, ""},
		{action.AccessKey, "AKIA" + strings.Repeat("Z", 16), "belongs to no IAM user of account " + le.Account},
	} {
		got, err := r.Resolve(ctx, tc.typ, tc.ref)
		var te *playbooks.TargetError
		switch {
		case tc.want == "" && (err != nil || got != tc.ref):
			t.Errorf("%s %s: %q %v", tc.typ, tc.ref, got, err)
		case tc.want != "" && (!errors.As(err, &te) || !strings.Contains(te.Msg, tc.want) || te.Hint == ""):
			t.Errorf("%s %s: %v, want a TargetError with a hint saying %q", tc.typ, tc.ref, err, tc.want)
		}
	}
	if after := awsState(t, le); after != before {
		t.Errorf("resolving targets changed the account:\nbefore %s\nafter  %s", before, after)
	}
}

// awsState is what resolution might touch, as JSON: instances, roles,
// users and their keys.
func awsState(t *testing.T, le *labtest.Env) string {
	t.Helper()
	ctx := t.Context()
	ec2c, iamc := ec2.NewFromConfig(le.AWS), iam.NewFromConfig(le.AWS)
	inst, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	roles, err := iamc.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		t.Fatal(err)
	}
	users, err := iamc.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []any
	for _, u := range users.Users {
		k, err := iamc.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: u.UserName})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.AccessKeyMetadata)
	}
	b, err := json.Marshal([]any{inst.Reservations, roles.Roles, users.Users, keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
