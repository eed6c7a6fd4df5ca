package isolate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awsiam"
	"github.com/eksir/eksir/internal/naming"
)

// The AWS revocation actions (revoke.instance-profile, revoke.irsa-role,
// revoke.pod-identity, revoke.access-key) share one way of revoking a
// session credential: an inline policy that denies sessions issued before
// the revocation, named per incident (eksir-deny-older-sessions-<hash>)
// and marked as the incident's by its statement's Sid, so a resumed run
// finds it, keeps its original time, and never overwrites a policy that is
// not the incident's. What an action changes on EC2 or IAM (a profile
// association, key statuses) is recorded in a per-incident tag on the
// instance or user BEFORE the change, so an Undo without its record still
// restores it.

// OutcomeNotRestorable is reported by an Undo for what it cannot put back
// (a deleted console password): the detail says what to do instead.
const OutcomeNotRestorable = "not-restorable"

// denyOlderPolicy names the incident's deny-older-sessions inline policy
// and the Sid that marks it as the incident's (IAM Sids are alphanumeric).
func denyOlderPolicy(incident string) (name, sid string) {
	h := naming.ShortHash(incident, 10)
	return "eksir-deny-older-sessions-" + h, "EksirDenyOlderSessions" + h
}

// denyPodPolicy names the inline policy denying one pod's sessions. The
// pod is named by namespace/name (not UID) so an Undo without its record
// finds the policy even after the pod is gone.
func denyPodPolicy(incident, pod string) (name, sid string) {
	h, p := naming.ShortHash(incident, 10), naming.ShortHash(pod, 8)
	return "eksir-deny-pod-" + h + "-" + p, "EksirDenyPod" + h + p
}

// incidentTag is the key of the per-incident tag an action keeps its
// record in on an EC2 instance or IAM user.
func incidentTag(what, incident string) string {
	return naming.Domain + "/" + what + "-" + naming.ShortHash(incident, 10)
}

func now(env *action.Env) time.Time {
	if env.Now != nil {
		return env.Now()
	}
	return time.Now()
}

// apiCode returns an AWS error's code ("NoSuchEntity",
// "InvalidInstanceID.NotFound"), "" for other errors.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// callerAPI is what the account check needs of STS.
type callerAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// roleAPI is what revoking a role's sessions needs of IAM.
type roleAPI interface {
	awsiam.RolePolicyAPI
	GetRole(ctx context.Context, in *iam.GetRoleInput, opts ...func(*iam.Options)) (*iam.GetRoleOutput, error)
}

// checkRole validates a role ARN given as the parameter field: well
// formed, in the account eksir's credentials are in (IAM calls reach only
// that account), and existing. Each failure is bad input naming field.
func checkRole(ctx context.Context, ic roleAPI, sc callerAPI, roleARN, field string) (awsiam.ARN, error) {
	a, err := awsiam.ParseRoleARN(roleARN)
	if err != nil {
		return a, fmt.Errorf("%w: %s: %w", action.ErrBadInput, field, err)
	}
	id, err := sc.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return a, fmt.Errorf("get caller identity: %w", err)
	}
	if acct := aws.ToString(id.Account); acct != a.Account {
		return a, fmt.Errorf("%w: %s: role %s is in account %s but eksir's credentials are in account %s; hint: respond from that account (--role-arn arn:aws:iam::%s:role/<responder role>)",
			action.ErrBadInput, field, roleARN, a.Account, acct, a.Account)
	}
	if _, err := ic.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(a.Name)}); err != nil {
		if awsiam.IsNotFound(err) {
			return a, fmt.Errorf("%w: %s: role %s does not exist in account %s; hint: check the ARN (aws iam get-role --role-name %s)", action.ErrBadInput, field, roleARN, a.Account, a.Name)
		}
		return a, fmt.Errorf("get role %s: %w", a.Name, err)
	}
	return a, nil
}

// RoleUndo is the Undo record of an action that put a deny policy on a
// role: revoke.irsa-role, revoke.pod-identity, and the role half of
// revoke.instance-profile.
type RoleUndo struct {
	Role   string `json:"role"` // role name
	Policy string `json:"policy"`
	Sid    string `json:"sid"`
}

// denyChange is the plan entry for a deny policy.
func denyChange(p awsiam.Inline, name string, d awsiam.Document) action.Change {
	return action.Change{Verb: "put-policy", Object: p.String() + " inline policy " + name, Detail: d.String()}
}

// ensureDeny puts the incident's deny policy on p, or finds it from an
// earlier run; with dry, only reports what Run would put.
func ensureDeny(ctx context.Context, p awsiam.Inline, name, sid string, want awsiam.Document, dry bool) (*action.Change, awsiam.Document, error) {
	got, put, err := awsiam.Ensure(ctx, p, name, sid, want, dry)
	if err != nil {
		return nil, got, err
	}
	if !put {
		return nil, got, nil
	}
	c := denyChange(p, name, got)
	return &c, got, nil
}

// removeDeny is every Undo's policy step: delete the incident's policy,
// leave anyone else's.
func removeDeny(ctx context.Context, p awsiam.Inline, name, sid string) (action.Restored, error) {
	what := p.String() + " inline policy " + name
	removed, foreign, err := awsiam.Remove(ctx, p, name, sid)
	switch {
	case err != nil:
		return action.Restored{}, err
	case removed:
		return action.Restored{Object: what, Outcome: action.OutcomeRestored, Detail: "deleted"}, nil
	case foreign:
		return action.Restored{Object: what, Outcome: action.OutcomeClean, Detail: "a policy of that name is not this incident's: left in place"}, nil
	}
	return action.Restored{Object: what, Outcome: action.OutcomeClean}, nil
}
