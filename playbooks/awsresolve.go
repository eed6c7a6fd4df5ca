package playbooks

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/eksir/eksir/action"
)

// The AWS calls target resolution makes, each read-only.
type (
	instanceDescriber interface {
		DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	}
	iamReader interface {
		GetRole(ctx context.Context, in *iam.GetRoleInput, o ...func(*iam.Options)) (*iam.GetRoleOutput, error)
		GetAccessKeyLastUsed(ctx context.Context, in *iam.GetAccessKeyLastUsedInput, o ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error)
	}
	callerIdentity interface {
		GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, o ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
	}
)

// AWSTargets resolves the AWS target types (instance, iam-role,
// access-key) with read-only calls under cfg's credentials: a target
// that does not exist, is malformed, or lives in another account than the
// credentials' is a *TargetError, found before any change.
func AWSTargets(cfg aws.Config) TargetResolver {
	return &awsTargets{ec2: ec2.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg)}
}

type awsTargets struct {
	ec2 instanceDescriber
	iam iamReader
	sts callerIdentity

	mu      sync.Mutex
	account string // the credentials' account, asked once
}

var (
	instanceIDRE = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
	// AKIA: an IAM user's long-term key; ASIA: a temporary session's.
	accessKeyRE = regexp.MustCompile(`^(AKIA|ASIA)[A-Z0-9]{12,124}$`)
)

func (t *awsTargets) Resolve(ctx context.Context, typ action.ParamType, ref string) (string, error) {
	switch typ {
	case action.Instance:
		return t.instance(ctx, ref)
	case action.IAMRole:
		return t.role(ctx, ref)
	case action.AccessKey:
		return t.accessKey(ctx, ref)
	}
	return ref, nil
}

func (t *awsTargets) instance(ctx context.Context, id string) (string, error) {
	if !instanceIDRE.MatchString(id) {
		return "", &TargetError{Msg: fmt.Sprintf("instance ID %q is malformed", id), Hint: "an EC2 instance ID is i- and 8 or 17 hexadecimal digits (i-0123456789abcdef0)"}
	}
	notFound := &TargetError{Msg: "instance " + id + " not found in this account and region",
		Hint: "check it with 'aws ec2 describe-instances --instance-ids " + id + "', and --region and the credentials' account"}
	out, err := t.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if code := apiCode(err); strings.HasPrefix(code, "InvalidInstanceID.") {
		return "", notFound
	}
	if err != nil {
		return "", fmt.Errorf("look up instance %s: %w", id, err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) != id {
				continue
			}
			if in.State != nil && in.State.Name == ec2types.InstanceStateNameTerminated {
				return "", &TargetError{Msg: "instance " + id + " is terminated", Hint: "a terminated instance cannot be contained; its volumes may survive it (aws ec2 describe-volumes)"}
			}
			return id, nil
		}
	}
	return "", notFound
}

func (t *awsTargets) role(ctx context.Context, ref string) (string, error) {
	a, err := arn.Parse(ref)
	bad := &TargetError{Msg: fmt.Sprintf("IAM role %q is not a role ARN", ref), Hint: "give arn:aws:iam::ACCOUNT:role/NAME (with the role's path, if any, before NAME)"}
	if err != nil || a.Service != "iam" || a.Region != "" || !strings.HasPrefix(a.Resource, "role/") || len(a.AccountID) != 12 {
		return "", bad
	}
	name := a.Resource[strings.LastIndex(a.Resource, "/")+1:]
	if name == "" {
		return "", bad
	}
	acct, err := t.callerAccount(ctx)
	if err != nil {
		return "", err
	}
	if a.AccountID != acct {
		return "", &TargetError{Msg: fmt.Sprintf("role %s is in account %s; these credentials are for account %s", ref, a.AccountID, acct),
			Hint: "respond from that account: --role-arn arn:aws:iam::" + a.AccountID + ":role/RESPONDER --external-id ID, or its credentials"}
	}
	out, err := t.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	var nse *iamtypes.NoSuchEntityException
	if errors.As(err, &nse) {
		return "", &TargetError{Msg: "IAM role " + name + " not found in account " + acct, Hint: "check it with 'aws iam get-role --role-name " + name + "'"}
	}
	if err != nil {
		return "", fmt.Errorf("look up IAM role %s: %w", name, err)
	}
	got := aws.ToString(out.Role.Arn)
	switch {
	case got == ref:
	case a.Resource == "role/"+name:
		// Without its path, as a session's ARN names a role (GuardDuty
		// findings, CloudTrail): the role's own ARN is the canonical one.
		return got, nil
	default:
		// Another path: the ARN given is not the role's.
		return "", &TargetError{Msg: fmt.Sprintf("IAM role %s is %s, not %s", name, got, ref), Hint: "give the role's ARN as 'aws iam get-role --role-name " + name + "' prints it"}
	}
	return ref, nil
}

func (t *awsTargets) accessKey(ctx context.Context, id string) (string, error) {
	if !accessKeyRE.MatchString(id) {
		return "", &TargetError{Msg: fmt.Sprintf("access key ID %q is malformed", id), Hint: "an access key ID is AKIA (an IAM user's key) or ASIA (a session's) and upper-case letters and digits, 16 to 128 in all"}
	}
	if strings.HasPrefix(id, "ASIA") {
		// IAM has no record of a session's key to look up or deactivate:
		// the session ends by denying its role's older sessions.
		return "", &TargetError{Msg: "access key " + id + " is a temporary session key (ASIA): IAM cannot deactivate it",
			Hint: "revoke the sessions of the role it was issued for (--iam-role ARN; a GuardDuty finding names it, see --finding)"}
	}
	out, err := t.iam.GetAccessKeyLastUsed(ctx, &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(id)})
	var nse *iamtypes.NoSuchEntityException
	if errors.As(err, &nse) || err == nil && aws.ToString(out.UserName) == "" || apiCode(err) == "AccessDenied" {
		acct, aerr := t.callerAccount(ctx)
		if aerr != nil {
			return "", aerr
		}
		return "", &TargetError{Msg: "access key " + id + " belongs to no IAM user of account " + acct + " (iam:GetAccessKeyLastUsed)",
			Hint: "check the key's account with 'aws sts get-access-key-info --access-key-id " + id + "' and respond from it (--role-arn, --external-id)"}
	}
	if err != nil {
		return "", fmt.Errorf("look up access key %s: %w", id, err)
	}
	return id, nil
}

// callerAccount is the account of the credentials, asked once.
func (t *awsTargets) callerAccount(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.account != "" {
		return t.account, nil
	}
	out, err := t.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("ask which account the AWS credentials are for (sts:GetCallerIdentity): %w", err)
	}
	t.account = aws.ToString(out.Account)
	return t.account, nil
}

// apiCode is an AWS error's code, "" for none.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
