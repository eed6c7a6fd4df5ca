package isolate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awsiam"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/naming"
)

// RevokeIRSARole is revoke.irsa-role.
type RevokeIRSARole struct{}

// Spec implements action.Action.
func (RevokeIRSARole) Spec() action.Spec {
	return action.Spec{
		Name: "revoke.irsa-role",
		Doc: "Deny every session of an IRSA role issued before now (an inline policy on the role: the console's \"revoke active sessions\"). " +
			"The role is given, or read from the pod's service account; the plan lists every other pod in the cluster using the same role (the blast radius), whose sessions stop working too until they refresh.",
		Kind:              action.Contain,
		Needs:             []action.Cloud{action.Kubernetes, action.AWS},
		RevokesCredential: true,
		Params: []action.Param{
			{Name: "pod", Type: action.Pod, Doc: "the pod whose IRSA role to revoke (namespace/name); exactly one of pod and role"},
			{Name: "role", Type: action.IAMRole, Doc: "the IAM role ARN to revoke; exactly one of pod and role; it must be in eksir's account"},
		},
		Outputs: []string{"role", "blast_radius", "pods"},
		Permissions: action.Permissions{
			Kube: []action.KubeRule{
				{APIGroups: []string{""}, Resources: []string{"pods", "serviceaccounts"}, Verbs: []string{"get", "list"}},
			},
			IAM: []action.IAMPermission{
				{Actions: []string{"iam:GetRole", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"}, Resources: []string{"arn:aws:iam::*:role/*"}},
			},
		},
		Reversible: true,
		Notes:      revokeIRSANotes,
	}
}

// podRole reads the IRSA role of the pod ns/name.
func podRole(ctx context.Context, env *action.Env, ref string) (*corev1.Pod, awstarget.PodCredentials, error) {
	ns, name, err := naming.SplitRef(ref)
	if err != nil {
		return nil, awstarget.PodCredentials{}, fmt.Errorf("%w: pod: %w", action.ErrBadInput, err)
	}
	p, err := env.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, awstarget.PodCredentials{}, fmt.Errorf("%w: pod: %s does not exist", action.ErrBadInput, ref)
	}
	if err != nil {
		return nil, awstarget.PodCredentials{}, fmt.Errorf("get pod %s: %w", ref, err)
	}
	sa, err := podServiceAccount(ctx, env, p)
	if err != nil {
		return nil, awstarget.PodCredentials{}, err
	}
	return p, awstarget.ReadPodCredentials(p, sa), nil
}

// podServiceAccount returns the pod's ServiceAccount, nil when it is gone.
func podServiceAccount(ctx context.Context, env *action.Env, p *corev1.Pod) (*corev1.ServiceAccount, error) {
	name := p.Spec.ServiceAccountName
	if name == "" {
		name = "default"
	}
	sa, err := env.Kube.CoreV1().ServiceAccounts(p.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get service account %s/%s: %w", p.Namespace, name, err)
	}
	return sa, nil
}

// irsaBlastRadius lists, as namespace/name, every pod other than except
// whose IRSA credentials name roleARN: pods and service accounts are
// listed once for the whole cluster.
func irsaBlastRadius(ctx context.Context, env *action.Env, roleARN, except string) ([]string, error) {
	pods, err := env.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	sas, err := env.Kube.CoreV1().ServiceAccounts("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list service accounts: %w", err)
	}
	byName := map[string]*corev1.ServiceAccount{}
	for i := range sas.Items {
		byName[sas.Items[i].Namespace+"/"+sas.Items[i].Name] = &sas.Items[i]
	}
	var out []string
	for i := range pods.Items {
		p := &pods.Items[i]
		ref := p.Namespace + "/" + p.Name
		if ref == except {
			continue
		}
		sa := p.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		c := awstarget.ReadPodCredentials(p, byName[p.Namespace+"/"+sa])
		if c.Has(awstarget.IRSA) && c.RoleARN == roleARN {
			out = append(out, ref)
		}
	}
	slices.Sort(out)
	return out, nil
}

// irsaTarget resolves the call to a role ARN: the role parameter, or the
// pod's IRSA role.
func (RevokeIRSARole) target(ctx context.Context, env *action.Env, call action.Call) (string, error) {
	pod, role := call.String("pod"), call.String("role")
	switch {
	case pod == "" && role == "":
		return "", fmt.Errorf("%w: pod, role: give exactly one of them (the pod whose IRSA role to revoke, or the role ARN)", action.ErrBadInput)
	case pod != "" && role != "":
		return "", fmt.Errorf("%w: pod, role: give exactly one of them, not both", action.ErrBadInput)
	case role != "":
		return role, nil
	}
	_, c, err := podRole(ctx, env, pod)
	if err != nil {
		return "", err
	}
	if !c.Has(awstarget.IRSA) {
		hint := "it has no AWS credentials of its own (it may still use the node's: revoke.instance-profile)"
		if c.Has(awstarget.PodIdentity) {
			hint = "it uses EKS Pod Identity: use revoke.pod-identity"
		}
		return "", fmt.Errorf("%w: pod: %s has no IRSA role (no %s annotation on service account %s, no %s env); hint: %s",
			action.ErrBadInput, pod, awstarget.RoleARNAnnotation, c.ServiceAccount, awstarget.EnvRoleARN, hint)
	}
	return c.RoleARN, nil
}

type irsaResult struct {
	changes  []action.Change
	warnings []string
	undo     RoleUndo
	roleARN  string
	pods     []string
}

func (r RevokeIRSARole) apply(ctx context.Context, env *action.Env, call action.Call, dry bool) (irsaResult, error) {
	var res irsaResult
	roleARN, err := r.target(ctx, env, call)
	if err != nil {
		return res, err
	}
	field := "role"
	if call.String("pod") != "" {
		field = "pod"
	}
	ic := iam.NewFromConfig(env.AWS)
	a, err := checkRole(ctx, ic, sts.NewFromConfig(env.AWS), roleARN, field)
	if err != nil {
		return res, err
	}
	res.roleARN = roleARN
	if res.pods, err = irsaBlastRadius(ctx, env, roleARN, call.String("pod")); err != nil {
		return res, err
	}
	if dry && len(res.pods) > 0 {
		res.warnings = append(res.warnings, fmt.Sprintf("blast radius: %d other pod(s) use role %s and lose their current sessions too, until their SDKs fetch new credentials: %s",
			len(res.pods), roleARN, strings.Join(res.pods, ", ")))
	}
	name, sid := denyOlderPolicy(env.Incident)
	res.undo = RoleUndo{Role: a.Name, Policy: name, Sid: sid}
	c, _, err := ensureDeny(ctx, awsiam.RolePolicies(ic, a.Name), name, sid, awsiam.DenyOlderSessions(sid, now(env)), dry)
	if err != nil {
		return res, err
	}
	if c != nil {
		if len(res.pods) > 0 {
			c.Detail = fmt.Sprintf("blast radius %d other pod(s): %s; %s", len(res.pods), strings.Join(res.pods, ", "), c.Detail)
		}
		res.changes = append(res.changes, *c)
	}
	return res, nil
}

// Plan implements action.Action.
func (r RevokeIRSARole) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	res, err := r.apply(ctx, env, call, true)
	if err != nil {
		return action.Plan{}, err
	}
	return action.Plan{Changes: res.changes, Done: len(res.changes) == 0, Warnings: res.warnings}, nil
}

// Run implements action.Action.
func (r RevokeIRSARole) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	res, err := r.apply(ctx, env, call, false)
	if err != nil {
		return action.Result{}, err
	}
	b, err := json.Marshal(res.undo)
	if err != nil {
		return action.Result{}, err
	}
	return action.Result{Undo: b, Outputs: map[string]any{"role": res.roleARN, "blast_radius": len(res.pods), "pods": nonNil(res.pods)}}, nil
}

// Undo implements action.Reverser: the incident's deny policy is deleted;
// another incident's stays.
func (r RevokeIRSARole) Undo(ctx context.Context, env *action.Env, call action.Call, undo json.RawMessage) ([]action.Restored, error) {
	u, err := roleUndo(env, undo, func() (string, error) { return r.target(ctx, env, call) }, denyOlderPolicy)
	if err != nil {
		return nil, err
	}
	res, err := removeDeny(ctx, awsiam.RolePolicies(iam.NewFromConfig(env.AWS), u.Role), u.Policy, u.Sid)
	if err != nil {
		return nil, err
	}
	return []action.Restored{res}, nil
}

// roleUndo decodes a RoleUndo, or without one derives it from the role
// target resolves to and the incident's policy name.
func roleUndo(env *action.Env, undo json.RawMessage, target func() (string, error), policy func(string) (string, string)) (RoleUndo, error) {
	var u RoleUndo
	if undo != nil {
		if err := json.Unmarshal(undo, &u); err != nil {
			return u, fmt.Errorf("undo record: %w", err)
		}
		return u, nil
	}
	roleARN, err := target()
	if err != nil {
		return u, err
	}
	a, err := awsiam.ParseRoleARN(roleARN)
	if err != nil {
		return u, fmt.Errorf("%w: role: %w", action.ErrBadInput, err)
	}
	u.Role = a.Name
	u.Policy, u.Sid = policy(env.Incident)
	return u, nil
}
