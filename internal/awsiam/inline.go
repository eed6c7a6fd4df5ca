package awsiam

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// RolePolicyAPI is what inline policies on a role need of IAM.
type RolePolicyAPI interface {
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, opts ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, opts ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, opts ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
}

// UserPolicyAPI is what inline policies on a user need of IAM.
type UserPolicyAPI interface {
	GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, opts ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
	PutUserPolicy(ctx context.Context, in *iam.PutUserPolicyInput, opts ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error)
	DeleteUserPolicy(ctx context.Context, in *iam.DeleteUserPolicyInput, opts ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error)
}

// Inline is the inline policies of one principal (a role or a user).
type Inline interface {
	// Get returns the document of the policy called name, ok=false when
	// there is none.
	Get(ctx context.Context, name string) (doc string, ok bool, err error)
	Put(ctx context.Context, name, doc string) error
	// Delete removes the policy; one already gone is not an error.
	Delete(ctx context.Context, name string) error
	// String names the principal in messages: "role web", "user ci".
	String() string
}

// RolePolicies is the inline policies of the role called role.
func RolePolicies(c RolePolicyAPI, role string) Inline { return rolePolicies{c, role} }

// UserPolicies is the inline policies of the user called user.
func UserPolicies(c UserPolicyAPI, user string) Inline { return userPolicies{c, user} }

type rolePolicies struct {
	c    RolePolicyAPI
	role string
}

func (r rolePolicies) String() string { return "role " + r.role }

func (r rolePolicies) Get(ctx context.Context, name string) (string, bool, error) {
	out, err := r.c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(r.role), PolicyName: aws.String(name)})
	if IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get inline policy %s of %s: %w", name, r, err)
	}
	return aws.ToString(out.PolicyDocument), true, nil
}

func (r rolePolicies) Put(ctx context.Context, name, doc string) error {
	if _, err := r.c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(r.role), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)}); err != nil {
		return fmt.Errorf("put inline policy %s on %s: %w", name, r, err)
	}
	return nil
}

func (r rolePolicies) Delete(ctx context.Context, name string) error {
	_, err := r.c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(r.role), PolicyName: aws.String(name)})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete inline policy %s of %s: %w", name, r, err)
	}
	return nil
}

type userPolicies struct {
	c    UserPolicyAPI
	user string
}

func (u userPolicies) String() string { return "user " + u.user }

func (u userPolicies) Get(ctx context.Context, name string) (string, bool, error) {
	out, err := u.c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(u.user), PolicyName: aws.String(name)})
	if IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("get inline policy %s of %s: %w", name, u, err)
	}
	return aws.ToString(out.PolicyDocument), true, nil
}

func (u userPolicies) Put(ctx context.Context, name, doc string) error {
	if _, err := u.c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(u.user), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)}); err != nil {
		return fmt.Errorf("put inline policy %s on %s: %w", name, u, err)
	}
	return nil
}

func (u userPolicies) Delete(ctx context.Context, name string) error {
	_, err := u.c.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(u.user), PolicyName: aws.String(name)})
	if err != nil && !IsNotFound(err) {
		return fmt.Errorf("delete inline policy %s of %s: %w", name, u, err)
	}
	return nil
}

// IsNotFound reports whether err is IAM's NoSuchEntity.
func IsNotFound(err error) bool {
	var nf *types.NoSuchEntityException
	return errors.As(err, &nf)
}

// ErrForeignPolicy is wrapped by Ensure when an inline policy of the name
// it would write exists and is not the incident's: eksir never overwrites
// it, since that would silently drop someone's permissions or denials.
var ErrForeignPolicy = errors.New("inline policy exists and is not this incident's")

// Ensure puts want as the inline policy name, marked as the incident's by
// a statement with sid. A policy of that name that carries sid is the
// incident's from an earlier run: it is kept as it is (a deny-older-sessions
// time is the original revocation time) and returned with put=false. Any
// other policy of that name is an ErrForeignPolicy error. With dry, nothing
// is written and put says whether Run would write.
func Ensure(ctx context.Context, p Inline, name, sid string, want Document, dry bool) (got Document, put bool, err error) {
	if !want.HasSid(sid) {
		return Document{}, false, fmt.Errorf("inline policy %s: the document lacks the incident's statement %s", name, sid)
	}
	cur, ok, err := p.Get(ctx, name)
	if err != nil {
		return Document{}, false, err
	}
	if ok {
		d, err := Decode(cur)
		if err != nil || !d.HasSid(sid) {
			return Document{}, false, fmt.Errorf("%w: %s on %s has no statement %s; rename or remove it, then run again", ErrForeignPolicy, name, p, sid)
		}
		return d, false, nil
	}
	if dry {
		return want, true, nil
	}
	if err := p.Put(ctx, name, want.String()); err != nil {
		return Document{}, false, err
	}
	return want, true, nil
}

// Remove deletes the inline policy name if it is the incident's (it
// carries sid). removed is false when there is none or it is someone
// else's, which is left in place.
func Remove(ctx context.Context, p Inline, name, sid string) (removed, foreign bool, err error) {
	cur, ok, err := p.Get(ctx, name)
	if err != nil || !ok {
		return false, false, err
	}
	if d, err := Decode(cur); err != nil || !d.HasSid(sid) {
		return false, true, nil
	}
	if err := p.Delete(ctx, name); err != nil {
		return false, false, err
	}
	return true, false, nil
}
