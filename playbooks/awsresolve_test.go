package playbooks

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/eksir/eksir/action"
)

// stubIdentity answers GetCallerIdentity and counts the calls.
type stubIdentity struct {
	account string
	calls   int
}

func (s *stubIdentity) GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error) {
	s.calls++
	return &sts.GetCallerIdentityOutput{Account: aws.String(s.account)}, nil
}

// stubIAM knows roles by name and access keys by ID.
type stubIAM struct {
	roles map[string]string // name -> ARN
	keys  map[string]string // key ID -> user
}

func (s stubIAM) GetRole(_ context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	a, ok := s.roles[aws.ToString(in.RoleName)]
	if !ok {
		return nil, &iamtypes.NoSuchEntityException{Message: aws.String("role not found")}
	}
	return &iam.GetRoleOutput{Role: &iamtypes.Role{Arn: aws.String(a), RoleName: in.RoleName}}, nil
}

func (s stubIAM) GetAccessKeyLastUsed(_ context.Context, in *iam.GetAccessKeyLastUsedInput, _ ...func(*iam.Options)) (*iam.GetAccessKeyLastUsedOutput, error) {
	u, ok := s.keys[aws.ToString(in.AccessKeyId)]
	if !ok {
		return nil, &iamtypes.NoSuchEntityException{Message: aws.String("key not found")}
	}
	return &iam.GetAccessKeyLastUsedOutput{UserName: aws.String(u)}, nil
}

// TestAWSTargetsShapes: the checks made before and around the calls (ARN
// and key shapes, the account, a role path) with stubbed IAM and STS; the
// calls themselves are tested against moto in the lab test.
func TestAWSTargetsShapes(t *testing.T) {
	id := &stubIdentity{account: "111122223333"}
	r := &awsTargets{sts: id, iam: stubIAM{
		roles: map[string]string{"web": "arn:aws:iam::111122223333:role/apps/web"},
		keys:  map[string]string{"AKIAIOSFODNN7EXAMPLE": "leaked"},
	}}
	// A role's ARN without its path resolves to the role's own.
	canonical := map[string]string{"arn:aws:iam::111122223333:role/web": "arn:aws:iam::111122223333:role/apps/web"}
	for _, tc := range []struct {
		typ       action.ParamType
		ref, want string // want: "" resolves, else part of the TargetError
	}{
		{action.IAMRole, "arn:aws:iam::111122223333:role/apps/web", ""},
		{action.IAMRole, "arn:aws:iam::111122223333:role/web", ""},
		{action.IAMRole, "arn:aws:iam::111122223333:role/other/web", "is arn:aws:iam::111122223333:role/apps/web"},
		{action.IAMRole, "arn:aws:iam::444455556666:role/web", "is in account 444455556666; these credentials are for account 111122223333"},
		{action.IAMRole, "arn:aws:iam::111122223333:role/gone", "not found in account 111122223333"},
		{action.IAMRole, "arn:aws:iam::111122223333:user/web", "not a role ARN"},
		{action.IAMRole, "arn:aws:s3:::bucket", "not a role ARN"},
		{action.IAMRole, "web", "not a role ARN"},
		{action.IAMRole, "arn:aws:iam::111122223333:role/", "not a role ARN"},
		{action.AccessKey, "AKIAIOSFODNN7EXAMPLE", ""},
		{action.AccessKey, "AKIAIOSFODNN7EXAMPLX", "belongs to no IAM user of account 111122223333"},
		{action.AccessKey, "ASIAIOSFODNN7EXAMPLE", "temporary session key"},
		{action.AccessKey, "akiaiosfodnn7example", "malformed"},
		{action.AccessKey, "AKIA123", "malformed"},
		{action.AccessKey, "AKIA" + strings.Repeat("A", 125), "malformed"},
		{action.Instance, "i-12", "malformed"},
		{action.Instance, "i-0123456789ABCDEF0", "malformed"},
	} {
		got, err := r.Resolve(t.Context(), tc.typ, tc.ref)
		var te *TargetError
		switch {
		case tc.want == "" && (err != nil || got != tc.ref && got != canonical[tc.ref]):
			t.Errorf("%s %s: %q %v", tc.typ, tc.ref, got, err)
		case tc.want != "" && (!errors.As(err, &te) || !strings.Contains(te.Msg, tc.want) || te.Hint == ""):
			t.Errorf("%s %s: %v, want a TargetError with a hint saying %q", tc.typ, tc.ref, err, tc.want)
		}
	}
	if id.calls != 1 {
		t.Errorf("GetCallerIdentity called %d times, want once", id.calls)
	}
}
