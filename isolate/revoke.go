package isolate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/retry"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/naming"
)

// RevokeServiceAccount is revoke.service-account.
type RevokeServiceAccount struct{}

// revokeRecord is revoke.service-account's original annotation on a
// binding: the subjects this incident removed (or holds removed, when
// another incident removed them first). Subjects without V is the snapshot
// an earlier eksir kept.
type revokeRecord struct {
	V        int              `json:"v,omitempty"`
	Removed  []rbacv1.Subject `json:"removed,omitempty"`
	Subjects []rbacv1.Subject `json:"subjects,omitempty"`
}

// diff returns r as the subjects removed; a snapshot's are the account's
// subjects in it (the only ones the older revocation removed).
func (r revokeRecord) diff(bindingNS, ns, name string) revokeRecord {
	if r.V >= recordVersion {
		return r
	}
	out := revokeRecord{V: recordVersion}
	for _, s := range r.Subjects {
		if isSA(s, bindingNS, ns, name) {
			out.Removed = append(out.Removed, s)
		}
	}
	return out
}

// recreateRecord is the annotation a recreated ServiceAccount carries: the
// object it replaced (without status, UID or resourceVersion) and its UID.
type recreateRecord struct {
	V      int                   `json:"v"`
	OldUID string                `json:"oldUID"`
	Object corev1.ServiceAccount `json:"object"`
}

// RevokeUndo is the Undo record of revoke.service-account. Deleted token
// Secrets are not restored: their values were never recorded.
type RevokeUndo struct {
	ServiceAccount      string   `json:"serviceAccount"`
	RoleBindings        []string `json:"roleBindings,omitempty"`
	ClusterRoleBindings []string `json:"clusterRoleBindings,omitempty"`
	DeletedTokens       []string `json:"deletedTokens,omitempty"`
	// Recreated is the ServiceAccount as it was before recreate.
	Recreated *corev1.ServiceAccount `json:"recreated,omitempty"`
}

// IRSARoleAnnotation names the IAM role pods of a ServiceAccount assume
// with web identity tokens (IAM roles for service accounts).
const IRSARoleAnnotation = awstarget.RoleARNAnnotation

// Spec implements action.Action.
func (RevokeServiceAccount) Spec() action.Spec {
	return action.Spec{
		Name: "revoke.service-account",
		Doc: "Remove the service account from the subjects of every RoleBinding and ClusterRoleBinding naming it (what was removed kept for release); " +
			"optionally recreate it (new UID: every bound token it had stops working) and delete its legacy token Secrets after recording their metadata (never their values). " +
			"The plan lists the grants and tokens that stay valid.",
		Kind:              action.Contain,
		Needs:             []action.Cloud{action.Kubernetes},
		RevokesCredential: true,
		Params: []action.Param{
			{Name: "service-account", Type: action.String, Required: true, Doc: "namespace/name; it must exist"},
			{Name: "delete-tokens", Type: action.Bool, Default: false, Doc: "delete legacy service-account token Secrets (not undone: their values are never kept)"},
			{Name: "recreate", Type: action.Bool, Default: false, Doc: "delete and recreate the ServiceAccount with the same metadata: the new UID invalidates every token issued to the old one; the old object is kept in the case and release restores its metadata (not its UID)"},
		},
		Outputs: []string{"roleBindings", "clusterRoleBindings", "deletedTokens", "recreated"},
		Permissions: action.Permissions{Kube: []action.KubeRule{
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"rolebindings", "clusterrolebindings"}, Verbs: []string{"get", "list", "update"}},
			// RBAC escalation prevention: every update of a binding, even one
			// that only removes a subject, needs either every permission the
			// referenced role grants or the bind verb on that role. The roles
			// are known only at run time, so bind cannot be narrowed by
			// resourceNames. Never escalate: eksir does not edit roles.
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"roles", "clusterroles"}, Verbs: []string{"bind"}},
			// Read-only, for the plan's list of grants that stay: roles
			// aggregated into a ClusterRole bound to a group.
			{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"}, Verbs: []string{"list"}},
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get", "create", "update", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list", "delete"}},
			action.AccessReviewRule,
		}},
		Reversible: true,
		Notes:      revokeNotes,
	}
}

// isSA reports whether a subject of a binding in bindingNS is the
// ServiceAccount ns/name, named as a ServiceAccount or as its user name.
func isSA(s rbacv1.Subject, bindingNS, ns, name string) bool {
	if s.Kind == rbacv1.UserKind {
		return s.Name == "system:serviceaccount:"+ns+":"+name
	}
	sns := s.Namespace
	if sns == "" {
		sns = bindingNS
	}
	return s.Kind == rbacv1.ServiceAccountKind && s.Name == name && sns == ns
}

// sameSubject compares subjects as RBAC does (a ServiceAccount subject's
// namespace defaults to the binding's).
func sameSubject(a, b rbacv1.Subject, bindingNS string) bool {
	an, bn := a.Namespace, b.Namespace
	if a.Kind == rbacv1.ServiceAccountKind && an == "" {
		an = bindingNS
	}
	if b.Kind == rbacv1.ServiceAccountKind && bn == "" {
		bn = bindingNS
	}
	return a.Kind == b.Kind && a.Name == b.Name && an == bn
}

// binding abstracts RoleBinding and ClusterRoleBinding for the one thing
// revocation does to both: rewrite subjects.
type binding struct {
	ns, name string
	get      func(ctx context.Context) (metav1.Object, *[]rbacv1.Subject, error)
	update   func(ctx context.Context, o metav1.Object, opts metav1.UpdateOptions) error
}

// hasRevokeRecord reports whether any incident left a revocation record on
// the binding.
func hasRevokeRecord(m metav1.Object) bool {
	for k := range m.GetAnnotations() {
		if strings.HasPrefix(k, originalPrefix+"revoke-") || strings.HasPrefix(k, legacyOriginalPrefix+"revoke-") {
			return true
		}
	}
	return false
}

// bindings returns the bindings naming the account or carrying a
// revocation record of any incident.
func (r RevokeServiceAccount) bindings(ctx context.Context, env *action.Env, ns, name string) ([]binding, error) {
	rbac := env.Kube.RbacV1()
	var out []binding
	rbs, err := rbac.RoleBindings("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list rolebindings: %w", err)
	}
	for _, b := range rbs.Items {
		if !hasRevokeRecord(&b) && !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return isSA(s, b.Namespace, ns, name) }) {
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
		if !hasRevokeRecord(&b) && !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return isSA(s, "", ns, name) }) {
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

// othersRemoved returns the account's subjects that other incidents'
// records on the binding hold removed.
func othersRemoved(o metav1.Object, incident, bindingNS, ns, name string) []rbacv1.Subject {
	var out []rbacv1.Subject
	for _, raw := range otherRecords(o, "revoke", incident) {
		var r revokeRecord
		if json.Unmarshal([]byte(raw), &r) != nil {
			continue
		}
		out = append(out, r.diff(bindingNS, ns, name).Removed...)
	}
	return out
}

// serviceAccount gets the account; one that does not exist is bad input,
// unless this incident is recreating it (a step stopped between the delete
// and the create), in which case the saved object is returned.
func (r RevokeServiceAccount) serviceAccount(ctx context.Context, env *action.Env, ns, name string) (*corev1.ServiceAccount, error) {
	sa, err := env.Kube.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return sa, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get service account %s/%s: %w", ns, name, err)
	}
	if saved, ok := savedServiceAccount(env, ns, name); ok {
		return saved, nil
	}
	return nil, fmt.Errorf("%w: service account %s/%s does not exist (check the namespace and name: the pod's is spec.serviceAccountName)", action.ErrBadInput, ns, name)
}

// beforeRecreate is the case item holding the account as it was.
func beforeRecreate(ns, name string) string {
	return "k8s/" + ns + "/serviceaccounts/" + name + ".before-recreate.json"
}

// savedServiceAccount reads the account kept in the case before recreate.
func savedServiceAccount(env *action.Env, ns, name string) (*corev1.ServiceAccount, bool) {
	if env.Evidence == nil {
		return nil, false
	}
	it, ok := env.Evidence.Lookup(beforeRecreate(ns, name))
	d, isDir := env.Evidence.(interface{ Dir() string })
	if !ok || !isDir || it.Status != "" && it.Status != "collected" {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(d.Dir(), filepath.FromSlash(it.Path)))
	if err != nil {
		return nil, false
	}
	var sa corev1.ServiceAccount
	if json.Unmarshal(b, &sa) != nil || sa.Name != name {
		return nil, false
	}
	return &sa, true
}

// pristine is the account as a create would send it: metadata others can
// set, secrets references, automount; no UID, version or managed fields.
func pristine(sa *corev1.ServiceAccount) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: metav1.ObjectMeta{Name: sa.Name, Namespace: sa.Namespace, Labels: copyMap(sa.Labels), Annotations: copyMap(sa.Annotations),
			OwnerReferences: sa.OwnerReferences, Finalizers: sa.Finalizers},
		Secrets: sa.Secrets, ImagePullSecrets: sa.ImagePullSecrets, AutomountServiceAccountToken: sa.AutomountServiceAccountToken,
	}
}

func (r RevokeServiceAccount) apply(ctx context.Context, env *action.Env, call action.Call, dry bool) ([]action.Change, RevokeUndo, []string, error) {
	ref := call.String("service-account")
	u := RevokeUndo{ServiceAccount: ref}
	ns, name, err := naming.SplitRef(ref)
	if err != nil {
		return nil, u, nil, fmt.Errorf("%w: service-account: %w", action.ErrBadInput, err)
	}
	sa, err := r.serviceAccount(ctx, env, ns, name)
	if err != nil {
		return nil, u, nil, err
	}
	warnings, err := r.remaining(ctx, env, sa, call)
	if err != nil {
		return nil, u, nil, err
	}
	var changes []action.Change
	bs, err := r.bindings(ctx, env, ns, name)
	if err != nil {
		return nil, u, warnings, err
	}
	for _, b := range bs {
		var change *action.Change
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			change = nil
			o, subjects, err := b.get(ctx)
			if err != nil {
				return fmt.Errorf("get %s: %w", b, err)
			}
			var rec revokeRecord
			had, err := readOriginal(o, "revoke", env.Incident, &rec)
			if err != nil {
				return err
			}
			rec = rec.diff(b.ns, ns, name)
			if dry && len(otherRecords(o, "revoke", env.Incident)) > 0 {
				warnings = append(warnings, otherIncidentsWarning(b.String(), slices.Sorted(maps.Keys(otherRecords(o, "revoke", env.Incident)))))
			}
			var keep, removed []rbacv1.Subject
			for _, s := range *subjects {
				if isSA(s, b.ns, ns, name) {
					removed = append(removed, s)
				} else {
					keep = append(keep, s)
				}
			}
			detail := "subject " + ref + " removed (kept for release)"
			if len(removed) == 0 {
				// Another incident removed the account: this one holds it
				// removed too, so it comes back only when both are released.
				held := slices.DeleteFunc(othersRemoved(o, env.Incident, b.ns, ns, name), func(s rbacv1.Subject) bool { return !isSA(s, b.ns, ns, name) })
				if had || len(held) == 0 {
					return nil
				}
				removed, detail = held, "subject "+ref+" already removed by another incident: held removed by this one too"
			}
			for _, s := range removed {
				if !slices.ContainsFunc(rec.Removed, func(x rbacv1.Subject) bool { return sameSubject(x, s, b.ns) }) {
					rec.Removed = append(rec.Removed, s)
				}
			}
			rec.V = recordVersion
			if err := writeOriginal(o, "revoke", env.Incident, rec); err != nil {
				return err
			}
			*subjects = keep
			if err := b.update(ctx, o, updateOpts(dry)); err != nil {
				return fmt.Errorf("remove %s from %s: %w", ref, b, err)
			}
			change = &action.Change{Verb: "patch", Object: b.String(), Detail: detail}
			return nil
		})
		if err != nil {
			return changes, u, warnings, err
		}
		if change != nil {
			changes = append(changes, *change)
		}
		o, _, err := b.get(ctx)
		if err == nil && hasOwnRecord(o, env.Incident) || change != nil {
			if b.ns != "" {
				u.RoleBindings = append(u.RoleBindings, b.ns+"/"+b.name)
			} else {
				u.ClusterRoleBindings = append(u.ClusterRoleBindings, b.name)
			}
		}
	}
	if call.Bool("recreate") {
		c, saved, err := r.recreate(ctx, env, sa, dry)
		if err != nil {
			return changes, u, warnings, err
		}
		changes = append(changes, c...)
		u.Recreated = saved
	}
	if !call.Bool("delete-tokens") {
		return changes, u, warnings, nil
	}
	secrets, err := env.Kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken)})
	if err != nil {
		return changes, u, warnings, fmt.Errorf("list token secrets in %s: %w", ns, err)
	}
	for _, s := range secrets.Items {
		if s.Annotations[corev1.ServiceAccountNameKey] != name {
			continue
		}
		u.DeletedTokens = append(u.DeletedTokens, s.Name)
		changes = append(changes, action.Change{Verb: "delete", Object: "secret " + ns + "/" + s.Name, Detail: "legacy token of " + ref + " (metadata recorded)"})
		if dry {
			if err := env.Kube.CoreV1().Secrets(ns).Delete(ctx, s.Name, deleteOpts(true)); err != nil && !apierrors.IsNotFound(err) {
				return changes, u, warnings, fmt.Errorf("dry-run delete secret %s/%s: %w", ns, s.Name, err)
			}
			continue
		}
		// Metadata first: after a crash between the two, the record exists
		// and the delete is retried; the values never leave the cluster.
		rel := "k8s/revoked-tokens/" + ns + "/" + s.Name + ".json"
		if env.Evidence != nil && !env.Evidence.Has(rel) {
			if _, err := env.Evidence.Add(ctx, rel, evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Namespace: ns},
				Method: "secret metadata before deletion (values not recorded)"}, bytes.NewReader(tokenMetadata(s))); err != nil {
				return changes, u, warnings, fmt.Errorf("record token secret %s/%s: %w", ns, s.Name, err)
			}
		}
		err := env.Kube.CoreV1().Secrets(ns).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return changes, u, warnings, fmt.Errorf("delete secret %s/%s: %w", ns, s.Name, err)
		}
	}
	return changes, u, warnings, nil
}

func hasOwnRecord(o metav1.Object, incident string) bool {
	a := o.GetAnnotations()
	_, ok := a[originalKey("revoke", incident)]
	_, legacy := a[legacyOriginalKey("revoke", incident)]
	return ok || legacy
}

// recreate deletes the account and creates it again with the same
// metadata: the new UID invalidates every token issued to the old one. The
// old object goes to the case first, then into an annotation of the new
// one; a step stopped between the delete and the create finds it in the
// case and creates the account on the next run.
func (r RevokeServiceAccount) recreate(ctx context.Context, env *action.Env, sa *corev1.ServiceAccount, dry bool) ([]action.Change, *corev1.ServiceAccount, error) {
	what := "serviceaccount " + sa.Namespace + "/" + sa.Name
	var rec recreateRecord
	if had, err := readOriginal(sa, "recreate", env.Incident, &rec); err != nil || had {
		return nil, &rec.Object, err
	}
	old := pristine(sa)
	change := action.Change{Verb: "recreate", Object: what, Detail: "delete and create with the same metadata: new UID, every token of UID " + string(sa.UID) + " stops working"}
	sas := env.Kube.CoreV1().ServiceAccounts(sa.Namespace)
	if dry {
		if sa.UID != "" {
			if err := sas.Delete(ctx, sa.Name, deleteOpts(true)); err != nil && !apierrors.IsNotFound(err) {
				return nil, nil, fmt.Errorf("dry-run delete %s: %w", what, err)
			}
		}
		return []action.Change{change}, old, nil
	}
	b, err := json.MarshalIndent(old, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	rel := beforeRecreate(sa.Namespace, sa.Name)
	if env.Evidence != nil && !env.Evidence.Has(rel) {
		if _, err := env.Evidence.Add(ctx, rel, evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Namespace: sa.Namespace},
			Method: "service account before recreate (UID " + string(sa.UID) + ")"}, bytes.NewReader(append(b, '\n'))); err != nil {
			return nil, nil, fmt.Errorf("record %s: %w", what, err)
		}
	}
	if sa.UID != "" { // empty: already deleted by a stopped run
		err := sas.Delete(ctx, sa.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &sa.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("delete %s: %w", what, err)
		}
	}
	oldUID := string(sa.UID)
	if oldUID == "" {
		oldUID = "unknown"
	}
	neu := pristine(old)
	if err := writeOriginal(neu, "recreate", env.Incident, recreateRecord{V: recordVersion, OldUID: oldUID, Object: *old}); err != nil {
		return nil, nil, err
	}
	// Deletion is asynchronous when the account has finalizers: retry the
	// create until the name is free.
	err = retry.OnError(retry.DefaultBackoff, apierrors.IsAlreadyExists, func() error {
		_, err := sas.Create(ctx, neu, createOpts(false))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create %s again: %w", what, err)
	}
	return []action.Change{change}, old, nil
}

// remaining lists what the revocation leaves valid: group grants, the roles
// aggregated into ClusterRoles they bind, and tokens.
func (r RevokeServiceAccount) remaining(ctx context.Context, env *action.Env, sa *corev1.ServiceAccount, call action.Call) ([]string, error) {
	ns, name := sa.Namespace, sa.Name
	groups := map[string]bool{"system:serviceaccounts": true, "system:serviceaccounts:" + ns: true, "system:authenticated": true}
	rbac := env.Kube.RbacV1()
	roles, err := rbac.ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list clusterroles: %w", err)
	}
	aggregated := func(ref rbacv1.RoleRef) string {
		if ref.Kind != "ClusterRole" {
			return ""
		}
		var out []string
		for _, cr := range roles.Items {
			if cr.Name != ref.Name || cr.AggregationRule == nil {
				continue
			}
			for _, sel := range cr.AggregationRule.ClusterRoleSelectors {
				s, err := metav1.LabelSelectorAsSelector(&sel)
				if err != nil {
					continue
				}
				for _, agg := range roles.Items {
					if agg.Name != cr.Name && s.Matches(labels.Set(agg.Labels)) && !slices.Contains(out, agg.Name) {
						out = append(out, agg.Name)
					}
				}
			}
		}
		if len(out) == 0 {
			return ""
		}
		sort.Strings(out)
		return " (aggregating clusterroles " + strings.Join(out, ", ") + ")"
	}
	var w []string
	grant := func(what string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		for _, s := range subjects {
			if s.Kind == rbacv1.GroupKind && groups[s.Name] {
				w = append(w, fmt.Sprintf("still granted: %s gives %s %s%s to group %s, which includes %s/%s; eksir does not remove group grants (they cover other accounts too)",
					what, strings.ToLower(ref.Kind), ref.Name, aggregated(ref), s.Name, ns, name))
			}
		}
	}
	rbs, err := rbac.RoleBindings("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list rolebindings: %w", err)
	}
	for _, b := range rbs.Items {
		grant("rolebinding "+b.Namespace+"/"+b.Name, b.RoleRef, b.Subjects)
	}
	crbs, err := rbac.ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list clusterrolebindings: %w", err)
	}
	for _, b := range crbs.Items {
		grant("clusterrolebinding "+b.Name, b.RoleRef, b.Subjects)
	}
	if !call.Bool("recreate") {
		w = append(w, "still valid: bound service-account tokens already issued to "+ns+"/"+name+" (projected into its pods, or from TokenRequest) "+
			"until they expire — by default up to 1 h, rotated by the kubelet, longer where the API server extends token expiry — set recreate to invalidate them all")
	} else {
		w = append(w, "recreate: pods running as "+ns+"/"+name+" lose API access until the kubelet refreshes their tokens for the new UID (or they restart)")
	}
	if arn := sa.Annotations[IRSARoleAnnotation]; arn != "" {
		w = append(w, "still valid: IRSA web identity tokens and the AWS credentials already obtained for "+arn+
			" until they expire; revoke.irsa-role denies their sessions in AWS (pod-compromise runs it)")
	}
	w = append(w, "not visible from Kubernetes: EKS Pod Identity associations for "+ns+"/"+name+
		" keep issuing AWS credentials to its pods; revoke.pod-identity denies this pod's sessions in AWS (pod-compromise runs it)")
	if !call.Bool("delete-tokens") && !call.Bool("recreate") {
		secrets, err := env.Kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken)})
		if err != nil {
			return nil, fmt.Errorf("list token secrets in %s: %w", ns, err)
		}
		for _, s := range secrets.Items {
			if s.Annotations[corev1.ServiceAccountNameKey] == name {
				w = append(w, "still valid: legacy token Secret "+ns+"/"+s.Name+" (delete-tokens is false; recreate also invalidates it)")
			}
		}
	}
	return w, nil
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
	changes, _, warnings, err := r.apply(ctx, env, call, true)
	return action.Plan{Changes: changes, Checks: checks, Warnings: warnings, Done: err == nil && len(changes) == 0}, err
}

// Run implements action.Action.
func (r RevokeServiceAccount) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	_, u, warnings, err := r.apply(ctx, env, call, false)
	if err != nil {
		return action.Result{Warnings: warnings}, err
	}
	raw, err := json.Marshal(u)
	return action.Result{Undo: raw, Warnings: warnings, Outputs: map[string]any{"roleBindings": u.RoleBindings, "clusterRoleBindings": u.ClusterRoleBindings,
		"deletedTokens": u.DeletedTokens, "recreated": u.Recreated != nil}}, err
}

// Undo implements action.Reverser: every binding gets back the subjects
// this incident removed that are not there now, unless another incident
// still holds them removed; a recreated account keeps its new UID (it
// cannot come back) and is created again from the saved object if it is
// gone. With no undo record the account comes from the call's parameters.
func (r RevokeServiceAccount) Undo(ctx context.Context, env *action.Env, call action.Call, raw json.RawMessage) ([]action.Restored, error) {
	u := RevokeUndo{ServiceAccount: call.String("service-account")}
	if raw != nil {
		if err := json.Unmarshal(raw, &u); err != nil {
			return nil, fmt.Errorf("revoke.service-account undo record: %w", err)
		}
	}
	ns, name, err := naming.SplitRef(u.ServiceAccount)
	if err != nil {
		return nil, fmt.Errorf("%w: service-account: %w", action.ErrBadInput, err)
	}
	bs, err := r.bindings(ctx, env, ns, name)
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
		res, err := restoreOriginal(ctx, b.String(), "revoke", env.Incident, get, b.update, func(o metav1.Object, rec revokeRecord) {
			rec = rec.diff(b.ns, ns, name)
			held := othersRemoved(o, env.Incident, b.ns, ns, name)
			for _, s := range rec.Removed {
				present := slices.ContainsFunc(*subjects, func(x rbacv1.Subject) bool { return sameSubject(x, s, b.ns) })
				if !present && !slices.ContainsFunc(held, func(x rbacv1.Subject) bool { return sameSubject(x, s, b.ns) }) {
					*subjects = append(*subjects, s)
				}
			}
		})
		if err != nil {
			return report, err
		}
		listed := slices.Contains(u.RoleBindings, b.ns+"/"+b.name) || slices.Contains(u.ClusterRoleBindings, b.name)
		if res.Outcome == action.OutcomeRestored || listed {
			report = append(report, res)
		}
	}
	sas := env.Kube.CoreV1().ServiceAccounts(ns)
	what := "serviceaccount " + ns + "/" + name
	res, err := restoreOriginal(ctx, what, "recreate", env.Incident, getter(sas, name), updater(sas), func(*corev1.ServiceAccount, recreateRecord) {})
	if err != nil {
		return report, err
	}
	if res.Outcome == action.OutcomeRestored {
		res.Detail = "recreated during containment: metadata as before, the old UID cannot come back"
	}
	if res.Detail == "gone" {
		saved := u.Recreated
		if saved == nil {
			saved, _ = savedServiceAccount(env, ns, name)
		}
		if saved != nil {
			if _, err := sas.Create(ctx, pristine(saved), createOpts(false)); err != nil && !apierrors.IsAlreadyExists(err) {
				return report, fmt.Errorf("create %s from the saved object: %w", what, err)
			}
			res = action.Restored{Object: what, Outcome: action.OutcomeRestored, Detail: "created again from the object saved before recreate (new UID)"}
		}
	}
	if res.Outcome == action.OutcomeRestored || u.Recreated != nil || call.Bool("recreate") {
		report = append(report, res)
	}
	return report, nil
}
