package isolate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/naming"
)

// RevokeServiceAccount is revoke.service-account.
type RevokeServiceAccount struct{}

type subjectsOriginal struct {
	Subjects []rbacv1.Subject `json:"subjects"`
}

// RevokeUndo is the Undo record of revoke.service-account. Deleted token
// Secrets are not restored: their values were never recorded.
type RevokeUndo struct {
	ServiceAccount      string   `json:"serviceAccount"`
	RoleBindings        []string `json:"roleBindings,omitempty"`
	ClusterRoleBindings []string `json:"clusterRoleBindings,omitempty"`
	DeletedTokens       []string `json:"deletedTokens,omitempty"`
}

// Spec implements action.Action.
func (RevokeServiceAccount) Spec() action.Spec {
	return action.Spec{
		Name: "revoke.service-account",
		Doc: "Remove the service account from the subjects of every RoleBinding and ClusterRoleBinding naming it (originals kept for release), " +
			"and delete its legacy token Secrets after recording their metadata (never their values) as evidence.",
		Kind:              action.Contain,
		Needs:             []action.Cloud{action.Kubernetes},
		RevokesCredential: true,
		Params: []action.Param{
			{Name: "service-account", Type: action.String, Required: true, Doc: "namespace/name"},
			{Name: "delete-tokens", Type: action.Bool, Default: true, Doc: "delete legacy service-account token Secrets (not undone)"},
		},
		Outputs: []string{"roleBindings", "clusterRoleBindings", "deletedTokens"},
		Permissions: action.Permissions{Kube: []action.KubeRule{
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"rolebindings", "clusterrolebindings"}, Verbs: []string{"get", "list", "update"}},
			// RBAC escalation prevention: updating a binding requires holding
			// what it grants, or the bind verb on the role it references.
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "clusterroles"}, Verbs: []string{"bind"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list", "delete"}},
			action.AccessReviewRule,
		}},
		Reversible: true,
		Notes:      revokeNotes,
	}
}

func isSA(s rbacv1.Subject, bindingNS, ns, name string) bool {
	sns := s.Namespace
	if sns == "" {
		sns = bindingNS
	}
	return s.Kind == rbacv1.ServiceAccountKind && s.Name == name && sns == ns
}

// binding abstracts RoleBinding and ClusterRoleBinding for the one thing
// revocation does to both: rewrite subjects.
type binding struct {
	ns, name string
	get      func(ctx context.Context) (metav1.Object, *[]rbacv1.Subject, error)
	update   func(ctx context.Context, o metav1.Object, opts metav1.UpdateOptions) error
}

func (r RevokeServiceAccount) bindings(ctx context.Context, env *action.Env, ns, name string, all bool) ([]binding, error) {
	rbac := env.Kube.RbacV1()
	var out []binding
	rbs, err := rbac.RoleBindings("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list rolebindings: %w", err)
	}
	for _, b := range rbs.Items {
		var orig subjectsOriginal
		had, _ := readOriginal(&b, "revoke", env.Incident, &orig)
		if !(had && all) && !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return isSA(s, b.Namespace, ns, name) }) {
			continue
		}
		bns, bname := b.Namespace, b.Name
		out = append(out, binding{ns: bns, name: bname,
			get: func(ctx context.Context) (metav1.Object, *[]rbacv1.Subject, error) {
				o, err := rbac.RoleBindings(bns).Get(ctx, bname, metav1.GetOptions{})
				if err != nil {
					return nil, nil, err
				}
				return o, &o.Subjects, nil
			},
			update: func(ctx context.Context, o metav1.Object, opts metav1.UpdateOptions) error {
				_, err := rbac.RoleBindings(bns).Update(ctx, o.(*rbacv1.RoleBinding), opts)
				return err
			}})
	}
	crbs, err := rbac.ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list clusterrolebindings: %w", err)
	}
	for _, b := range crbs.Items {
		var orig subjectsOriginal
		had, _ := readOriginal(&b, "revoke", env.Incident, &orig)
		if !(had && all) && !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return isSA(s, "", ns, name) }) {
			continue
		}
		bname := b.Name
		out = append(out, binding{name: bname,
			get: func(ctx context.Context) (metav1.Object, *[]rbacv1.Subject, error) {
				o, err := rbac.ClusterRoleBindings().Get(ctx, bname, metav1.GetOptions{})
				if err != nil {
					return nil, nil, err
				}
				return o, &o.Subjects, nil
			},
			update: func(ctx context.Context, o metav1.Object, opts metav1.UpdateOptions) error {
				_, err := rbac.ClusterRoleBindings().Update(ctx, o.(*rbacv1.ClusterRoleBinding), opts)
				return err
			}})
	}
	return out, nil
}

func (b binding) String() string {
	if b.ns != "" {
		return "rolebinding " + b.ns + "/" + b.name
	}
	return "clusterrolebinding " + b.name
}

func (r RevokeServiceAccount) apply(ctx context.Context, env *action.Env, call action.Call, dry bool) ([]action.Change, RevokeUndo, error) {
	ref := call.String("service-account")
	u := RevokeUndo{ServiceAccount: ref}
	ns, name, err := naming.SplitRef(ref)
	if err != nil {
		return nil, u, err
	}
	var changes []action.Change
	bs, err := r.bindings(ctx, env, ns, name, true)
	if err != nil {
		return nil, u, err
	}
	for _, b := range bs {
		if b.ns != "" {
			u.RoleBindings = append(u.RoleBindings, b.ns+"/"+b.name)
		} else {
			u.ClusterRoleBindings = append(u.ClusterRoleBindings, b.name)
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			o, subjects, err := b.get(ctx)
			if err != nil {
				return fmt.Errorf("get %s: %w", b, err)
			}
			var orig subjectsOriginal
			had, err := readOriginal(o, "revoke", env.Incident, &orig)
			if err != nil {
				return err
			}
			keep := slices.DeleteFunc(slices.Clone(*subjects), func(s rbacv1.Subject) bool { return isSA(s, b.ns, ns, name) })
			if len(keep) == len(*subjects) {
				return nil
			}
			if !had {
				if err := writeOriginal(o, "revoke", env.Incident, subjectsOriginal{Subjects: *subjects}); err != nil {
					return err
				}
			}
			*subjects = keep
			if err := b.update(ctx, o, updateOpts(dry)); err != nil {
				return fmt.Errorf("remove %s from %s: %w", ref, b, err)
			}
			changes = append(changes, action.Change{Verb: "patch", Object: b.String(), Detail: "subject serviceaccount " + ref + " removed (original kept)"})
			return nil
		})
		if err != nil {
			return changes, u, err
		}
	}
	if !call.Bool("delete-tokens") {
		return changes, u, nil
	}
	secrets, err := env.Kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken)})
	if err != nil {
		return changes, u, fmt.Errorf("list token secrets in %s: %w", ns, err)
	}
	for _, s := range secrets.Items {
		if s.Annotations[corev1.ServiceAccountNameKey] != name {
			continue
		}
		u.DeletedTokens = append(u.DeletedTokens, s.Name)
		changes = append(changes, action.Change{Verb: "delete", Object: "secret " + ns + "/" + s.Name, Detail: "legacy token of " + ref + " (metadata recorded)"})
		if dry {
			if err := env.Kube.CoreV1().Secrets(ns).Delete(ctx, s.Name, deleteOpts(true)); err != nil && !apierrors.IsNotFound(err) {
				return changes, u, fmt.Errorf("dry-run delete secret %s/%s: %w", ns, s.Name, err)
			}
			continue
		}
		// Metadata first: after a crash between the two, the record exists
		// and the delete is retried; the values never leave the cluster.
		rel := "k8s/revoked-tokens/" + ns + "/" + s.Name + ".json"
		if env.Evidence != nil && !env.Evidence.Has(rel) {
			if _, err := env.Evidence.Add(ctx, rel, evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Namespace: ns},
				Method: "secret metadata before deletion (values not recorded)"}, bytes.NewReader(tokenMetadata(s))); err != nil {
				return changes, u, fmt.Errorf("record token secret %s/%s: %w", ns, s.Name, err)
			}
		}
		err := env.Kube.CoreV1().Secrets(ns).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return changes, u, fmt.Errorf("delete secret %s/%s: %w", ns, s.Name, err)
		}
	}
	return changes, u, nil
}

// tokenMetadata is the Secret without its values: key names and sizes only.
func tokenMetadata(s corev1.Secret) []byte {
	sizes := map[string]int{}
	for k, v := range s.Data {
		sizes[k] = len(v)
	}
	m := s.ObjectMeta.DeepCopy()
	m.ManagedFields = nil
	// The last-applied annotation may hold the token itself.
	delete(m.Annotations, corev1.LastAppliedConfigAnnotation)
	keys := make([]string, 0, len(sizes))
	for k := range sizes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b, _ := json.MarshalIndent(map[string]any{"metadata": m, "type": s.Type, "keys": keys, "sizes": sizes}, "", "  ")
	return append(b, '\n')
}

// Plan implements action.Action.
func (r RevokeServiceAccount) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	checks, err := action.CheckAccess(ctx, env.Kube,
		authzv1.ResourceAttributes{Verb: "update", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
		authzv1.ResourceAttributes{Verb: "update", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"})
	if err != nil {
		return action.Plan{}, err
	}
	changes, _, err := r.apply(ctx, env, call, true)
	return action.Plan{Changes: changes, Checks: checks, Done: err == nil && len(changes) == 0}, err
}

// Run implements action.Action.
func (r RevokeServiceAccount) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	_, u, err := r.apply(ctx, env, call, false)
	if err != nil {
		return action.Result{}, err
	}
	raw, err := json.Marshal(u)
	return action.Result{Undo: raw, Outputs: map[string]any{"roleBindings": u.RoleBindings, "clusterRoleBindings": u.ClusterRoleBindings, "deletedTokens": u.DeletedTokens}}, err
}

// Undo implements action.Reverser: every binding gets its original subjects
// back from its annotation.
func (r RevokeServiceAccount) Undo(ctx context.Context, env *action.Env, call action.Call, raw json.RawMessage) ([]action.Restored, error) {
	var u RevokeUndo
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("revoke.service-account undo record: %w", err)
	}
	ns, name, err := naming.SplitRef(u.ServiceAccount)
	if err != nil {
		return nil, err
	}
	bs, err := r.bindings(ctx, env, ns, name, true)
	if err != nil {
		return nil, err
	}
	var report []action.Restored
	for _, b := range bs {
		var subjects *[]rbacv1.Subject
		get := func(ctx context.Context) (o metav1.Object, err error) {
			o, subjects, err = b.get(ctx)
			return o, err
		}
		res, err := restoreOriginal(ctx, b.String(), "revoke", env.Incident, get, b.update,
			func(_ metav1.Object, orig subjectsOriginal) { *subjects = orig.Subjects })
		if err != nil {
			return report, err
		}
		report = append(report, res)
	}
	return report, nil
}
