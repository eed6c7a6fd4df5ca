package isolate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awsiam"
	"github.com/eksir/eksir/internal/awstarget"
)

// RevokePodIdentity is revoke.pod-identity.
type RevokePodIdentity struct{}

// Scopes of revoke.pod-identity.
const (
	ScopePod  = "pod"
	ScopeRole = "role"
)

// PodIdentityUndo is the Undo record of revoke.pod-identity.
type PodIdentityUndo struct {
	RoleUndo
	Scope string `json:"scope"`
}

// podIdentityAPI is what revoke.pod-identity needs of EKS.
type podIdentityAPI interface {
	ListPodIdentityAssociations(ctx context.Context, in *eks.ListPodIdentityAssociationsInput, opts ...func(*eks.Options)) (*eks.ListPodIdentityAssociationsOutput, error)
	DescribePodIdentityAssociation(ctx context.Context, in *eks.DescribePodIdentityAssociationInput, opts ...func(*eks.Options)) (*eks.DescribePodIdentityAssociationOutput, error)
}

// Spec implements action.Action.
func (RevokePodIdentity) Spec() action.Spec {
	return action.Spec{
		Name: "revoke.pod-identity",
		Doc: "Deny the EKS Pod Identity sessions of this pod only (an inline policy on the role matching the kubernetes-pod-uid session tag), so the other pods of the role keep working; " +
			"with role-wide, deny every session of the role issued before now. The role comes from the pod's Pod Identity association when the EKS API answers, else from the role parameter.",
		Kind:              action.Contain,
		Needs:             []action.Cloud{action.Kubernetes, action.AWS},
		RevokesCredential: true,
		Params: []action.Param{
			{Name: "pod", Type: action.Pod, Required: true, Doc: "the pod (namespace/name); it must use EKS Pod Identity"},
			{Name: "role", Type: action.IAMRole, Doc: "the association's role ARN, used when the EKS API does not answer (or has no association for the pod's service account)"},
			{Name: "role-wide", Type: action.Bool, Default: false, Doc: "deny every session of the role issued before now, not only this pod's"},
		},
		Outputs: []string{"role", "scope", "association"},
		Permissions: action.Permissions{
			Kube: []action.KubeRule{
				{APIGroups: []string{""}, Resources: []string{"pods", "serviceaccounts"}, Verbs: []string{"get"}},
			},
			IAM: []action.IAMPermission{
				{Actions: []string{"eks:ListPodIdentityAssociations"}, Resources: []string{"arn:aws:eks:*:*:cluster/*"}},
				{Actions: []string{"eks:DescribePodIdentityAssociation"}, Resources: []string{"arn:aws:eks:*:*:podidentityassociation/*"}},
				{Actions: []string{"iam:GetRole", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"}, Resources: []string{"arn:aws:iam::*:role/*"}},
			},
		},
		Reversible: true,
		Notes:      revokePodIdentityNotes,
	}
}

// association returns the Pod Identity association of the service account
// ns/sa in env.Cluster; nil with a reason when the EKS API does not answer
// or has none.
func association(ctx context.Context, c podIdentityAPI, cluster, ns, sa string) (*ekstypes.PodIdentityAssociation, string) {
	if cluster == "" {
		return nil, "no cluster name to ask the EKS API with"
	}
	out, err := c.ListPodIdentityAssociations(ctx, &eks.ListPodIdentityAssociationsInput{ClusterName: aws.String(cluster), Namespace: aws.String(ns), ServiceAccount: aws.String(sa)})
	if err != nil {
		return nil, fmt.Sprintf("EKS ListPodIdentityAssociations: %v", err)
	}
	for _, s := range out.Associations {
		if aws.ToString(s.Namespace) != ns || aws.ToString(s.ServiceAccount) != sa {
			continue
		}
		d, err := c.DescribePodIdentityAssociation(ctx, &eks.DescribePodIdentityAssociationInput{ClusterName: aws.String(cluster), AssociationId: s.AssociationId})
		if err != nil {
			return nil, fmt.Sprintf("EKS DescribePodIdentityAssociation %s: %v", aws.ToString(s.AssociationId), err)
		}
		return d.Association, ""
	}
	return nil, "EKS has no Pod Identity association for " + ns + "/" + sa + " in cluster " + cluster
}

type podIdentityResult struct {
	changes     []action.Change
	warnings    []string
	undo        PodIdentityUndo
	roleARN     string
	association string
}

// resolve finds the pod, its UID and the role ARN.
func (RevokePodIdentity) resolve(ctx context.Context, env *action.Env, call action.Call) (uid, roleARN, assocID string, warnings []string, err error) {
	ref := call.String("pod")
	p, c, err := podRole(ctx, env, ref)
	if err != nil {
		return "", "", "", nil, err
	}
	if !c.Has(awstarget.PodIdentity) {
		hint := "it has no AWS credentials of its own (it may still use the node's: revoke.instance-profile)"
		if c.Has(awstarget.IRSA) {
			hint = "it uses IRSA: use revoke.irsa-role"
		}
		return "", "", "", nil, fmt.Errorf("%w: pod: %s does not use EKS Pod Identity (no %s env); hint: %s", action.ErrBadInput, ref, awstarget.EnvContainerCredsURI, hint)
	}
	_, sa, _ := strings.Cut(c.ServiceAccount, "/")
	a, why := association(ctx, eks.NewFromConfig(env.AWS), env.Cluster, p.Namespace, sa)
	roleARN = call.String("role")
	if a != nil {
		assocID = aws.ToString(a.AssociationId)
		if roleARN != "" && roleARN != aws.ToString(a.RoleArn) {
			warnings = append(warnings, fmt.Sprintf("role parameter %s differs from the association's role %s: the association's is revoked", roleARN, aws.ToString(a.RoleArn)))
		}
		roleARN = aws.ToString(a.RoleArn)
		if t := aws.ToString(a.TargetRoleArn); t != "" {
			warnings = append(warnings, "the association chains into role "+t+" (in another account): sessions of that role are not revoked here; revoke them from its account")
		}
		if aws.ToBool(a.DisableSessionTags) && !call.Bool("role-wide") {
			return "", "", assocID, warnings, fmt.Errorf("%w: role-wide: association %s disables session tags, so the pod's sessions carry no %s tag to deny by; hint: set role-wide=true",
				action.ErrBadInput, assocID, awsiam.PodUIDTag)
		}
	} else if roleARN == "" {
		return "", "", "", warnings, fmt.Errorf("%w: role: the role of %s is unknown (%s); hint: give the association's role ARN (aws eks list-pod-identity-associations --cluster-name CLUSTER --namespace %s --service-account %s)",
			action.ErrBadInput, ref, why, p.Namespace, sa)
	} else {
		warnings = append(warnings, "role taken from the role parameter: "+why)
	}
	return string(p.UID), roleARN, assocID, warnings, nil
}

func (r RevokePodIdentity) apply(ctx context.Context, env *action.Env, call action.Call, dry bool) (podIdentityResult, error) {
	var res podIdentityResult
	uid, roleARN, assocID, warnings, err := r.resolve(ctx, env, call)
	res.warnings = warnings
	if err != nil {
		return res, err
	}
	ic := iam.NewFromConfig(env.AWS)
	a, err := checkRole(ctx, ic, sts.NewFromConfig(env.AWS), roleARN, "role")
	if err != nil {
		return res, err
	}
	res.roleARN, res.association = roleARN, assocID
	var name, sid string
	var want awsiam.Document
	if call.Bool("role-wide") {
		res.undo.Scope = ScopeRole
		name, sid = denyOlderPolicy(env.Incident)
		want = awsiam.DenyOlderSessions(sid, now(env))
		if dry {
			res.warnings = append(res.warnings, "role-wide: every pod and workload using role "+roleARN+" loses its current sessions until it fetches new credentials")
		}
	} else {
		res.undo.Scope = ScopePod
		name, sid = denyPodPolicy(env.Incident, call.String("pod"))
		want = awsiam.DenyPodSessions(sid, uid)
	}
	res.undo.RoleUndo = RoleUndo{Role: a.Name, Policy: name, Sid: sid}
	c, _, err := ensureDeny(ctx, awsiam.RolePolicies(ic, a.Name), name, sid, want, dry)
	if err != nil {
		return res, err
	}
	if c != nil {
		res.changes = append(res.changes, *c)
	}
	return res, nil
}

// Plan implements action.Action.
func (r RevokePodIdentity) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	res, err := r.apply(ctx, env, call, true)
	if err != nil {
		return action.Plan{}, err
	}
	return action.Plan{Changes: res.changes, Done: len(res.changes) == 0, Warnings: res.warnings}, nil
}

// Run implements action.Action.
func (r RevokePodIdentity) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	res, err := r.apply(ctx, env, call, false)
	if err != nil {
		return action.Result{}, err
	}
	b, err := json.Marshal(res.undo)
	if err != nil {
		return action.Result{}, err
	}
	return action.Result{Undo: b, Warnings: res.warnings,
		Outputs: map[string]any{"role": res.roleARN, "scope": res.undo.Scope, "association": res.association}}, nil
}

// Undo implements action.Reverser: the incident's deny policy is deleted.
// Without a record the role comes from EKS or the role parameter, as in
// Plan; the policy name from the pod's namespace/name, so a deleted pod is
// no obstacle when the role parameter is given.
func (r RevokePodIdentity) Undo(ctx context.Context, env *action.Env, call action.Call, undo json.RawMessage) ([]action.Restored, error) {
	var u PodIdentityUndo
	if undo != nil {
		if err := json.Unmarshal(undo, &u); err != nil {
			return nil, fmt.Errorf("revoke.pod-identity undo record: %w", err)
		}
	} else {
		roleARN := call.String("role")
		if _, r, _, _, err := r.resolve(ctx, env, call); err == nil {
			roleARN = r
		} else if roleARN == "" {
			return nil, err
		}
		a, err := awsiam.ParseRoleARN(roleARN)
		if err != nil {
			return nil, fmt.Errorf("%w: role: %w", action.ErrBadInput, err)
		}
		u.Role = a.Name
		if call.Bool("role-wide") {
			u.Policy, u.Sid = denyOlderPolicy(env.Incident)
		} else {
			u.Policy, u.Sid = denyPodPolicy(env.Incident, call.String("pod"))
		}
	}
	res, err := removeDeny(ctx, awsiam.RolePolicies(iam.NewFromConfig(env.AWS), u.Role), u.Policy, u.Sid)
	if err != nil {
		return nil, err
	}
	return []action.Restored{res}, nil
}
