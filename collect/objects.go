package collect

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
)

// Objects is collect.k8s-objects.
type Objects struct{}

var readRule = func(group string, res ...string) action.KubeRule {
	return action.KubeRule{APIGroups: []string{group}, Resources: res, Verbs: []string{"get", "list"}}
}

// Spec implements action.Action.
func (Objects) Spec() action.Spec {
	return action.Spec{
		Name: "collect.k8s-objects",
		Doc: "Collect the pod, its owner chain to the top controller, its node, ServiceAccount, every RoleBinding and ClusterRoleBinding granting that account anything " +
			"with the rules granted, Services and EndpointSlices selecting the pod, the namespace's NetworkPolicies, events for the pod and the node, and the names of " +
			"the ConfigMaps and Secrets it uses (Secret values only with include-secret-values).",
		Kind:  action.Collect,
		Needs: []action.Cloud{action.Kubernetes},
		Params: append(targetParams(),
			action.Param{Name: "include-secret-values", Type: action.Bool, Default: false, Doc: "also collect the Secrets the pod uses, values included"},
			concurrencyParam()),
		Outputs: captureOutputs("pods"),
		Permissions: action.Permissions{Kube: []action.KubeRule{
			readRule("", "pods", "nodes", "serviceaccounts", "services", "events"),
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
			readRule("apps", "replicasets", "deployments", "statefulsets", "daemonsets"),
			readRule("batch", "jobs", "cronjobs"),
			readRule("discovery.k8s.io", "endpointslices"),
			readRule("networking.k8s.io", "networkpolicies"),
			readRule("rbac.authorization.k8s.io", "rolebindings", "clusterrolebindings", "roles", "clusterroles"),
			action.AccessReviewRule,
		}},
		Notes: objectsNotes,
	}
}

// Plan implements action.Action: it resolves the targets and lists what
// would be written; it writes nothing.
func (Objects) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	// references.json is a pod's last item (secret values aside): when it
	// is in the case, so is the rest.
	done := func(p corev1.Pod) []string {
		return []string{"k8s/" + p.Namespace + "/pods/" + p.Name + "/references.json"}
	}
	return planPods(ctx, env, call, "k8s objects of", done, authzv1.ResourceAttributes{Verb: "get", Resource: "pods"},
		authzv1.ResourceAttributes{Verb: "list", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"})
}

// planPods resolves the targets into one change per pod still to collect;
// items(pod) names the items whose presence in the case means the pod is
// done, so that a resumed plan reports Done.
func planPods(ctx context.Context, env *action.Env, call action.Call, what string, items func(corev1.Pod) []string, attrs ...authzv1.ResourceAttributes) (action.Plan, error) {
	var p action.Plan
	checks, err := action.CheckAccess(ctx, env.Kube, attrs...)
	if err != nil {
		return p, err
	}
	p.Checks = checks
	pods, err := Select(ctx, env.Kube, TargetFrom(call))
	if err != nil {
		return p, err
	}
	for _, pod := range pods {
		collected := items != nil && env.Evidence != nil
		if items != nil {
			for _, rel := range items(pod) {
				collected = collected && env.Evidence.Has(rel)
			}
		}
		if !collected {
			p.Changes = append(p.Changes, action.Change{Verb: "collect", Object: "pod " + pod.Namespace + "/" + pod.Name, Detail: what})
		}
	}
	p.Done = len(p.Changes) == 0
	return p, nil
}

// Run implements action.Action.
func (o Objects) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	pods, err := Select(ctx, env.Kube, TargetFrom(call))
	if err != nil {
		return action.Result{}, err
	}
	s := newStore(env)
	c := &objCache{kc: env.Kube, ns: map[string]*nsObjects{}}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit(call))
	for _, p := range pods {
		g.Go(func() error { return o.pod(gctx, env, s, c, p, call.Bool("include-secret-values")) })
	}
	if err := g.Wait(); err != nil {
		return s.result(nil, nil), err
	}
	return s.result(map[string]any{"pods": len(pods)}, nil), nil
}

// objCache holds what every pod of a namespace shares, fetched once per run:
// with a thousand pods, per-pod lists would be a thousand times the load.
type objCache struct {
	kc     kubernetes.Interface
	mu     sync.Mutex
	ns     map[string]*nsObjects
	crbs   *clusterObjects
	chains map[string]*chainEntry
}

type nsObjects struct {
	once     sync.Once
	err      error
	services []corev1.Service
	slices   []discoveryv1.EndpointSlice
	policies []networkingv1.NetworkPolicy
	rbs      []rbacv1.RoleBinding
	events   []corev1.Event
}

// owners resolves owner chains through a per-run cache: a ReplicaSet's
// ten pods share one chain.
func (c *objCache) owners(ctx context.Context, ns string, refs []metav1.OwnerReference) ([]owned, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	key := ns + "/" + string(refs[0].UID)
	c.mu.Lock()
	if c.chains == nil {
		c.chains = map[string]*chainEntry{}
	}
	e := c.chains[key]
	if e == nil {
		e = &chainEntry{}
		c.chains[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.chain, e.err = ownerChain(ctx, c.kc, ns, refs) })
	return e.chain, e.err
}

type chainEntry struct {
	once  sync.Once
	chain []owned
	err   error
}

type clusterObjects struct {
	once sync.Once
	err  error
	crbs []rbacv1.ClusterRoleBinding
}

func (c *objCache) namespace(ctx context.Context, ns string) (*nsObjects, error) {
	c.mu.Lock()
	o := c.ns[ns]
	if o == nil {
		o = &nsObjects{}
		c.ns[ns] = o
	}
	c.mu.Unlock()
	o.once.Do(func() {
		core := c.kc.CoreV1()
		// One list of the namespace's events serves every pod in it
		// (events expire after an hour, so the list stays small).
		for _, l := range []struct {
			what string
			list func(context.Context) error
		}{
			{"services", keep(&o.services, core.Services(ns).List, func(l *corev1.ServiceList) []corev1.Service { return l.Items })},
			{"endpointslices", keep(&o.slices, c.kc.DiscoveryV1().EndpointSlices(ns).List, func(l *discoveryv1.EndpointSliceList) []discoveryv1.EndpointSlice { return l.Items })},
			{"networkpolicies", keep(&o.policies, c.kc.NetworkingV1().NetworkPolicies(ns).List, func(l *networkingv1.NetworkPolicyList) []networkingv1.NetworkPolicy { return l.Items })},
			{"rolebindings", keep(&o.rbs, c.kc.RbacV1().RoleBindings(ns).List, func(l *rbacv1.RoleBindingList) []rbacv1.RoleBinding { return l.Items })},
			{"events", keep(&o.events, core.Events(ns).List, func(l *corev1.EventList) []corev1.Event { return l.Items })},
		} {
			if err := l.list(ctx); err != nil {
				o.err = fmt.Errorf("list %s in %s: %w", l.what, ns, err)
				return
			}
		}
	})
	return o, o.err
}

// keep returns a call of a namespace's List (every object) that stores the
// items in dst, for the table in namespace.
func keep[L, T any](dst *[]T, list func(context.Context, metav1.ListOptions) (L, error), items func(L) []T) func(context.Context) error {
	return func(ctx context.Context) error {
		l, err := list(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		*dst = items(l)
		return nil
	}
}

func (c *objCache) cluster(ctx context.Context) (*clusterObjects, error) {
	c.mu.Lock()
	if c.crbs == nil {
		c.crbs = &clusterObjects{}
	}
	o := c.crbs
	c.mu.Unlock()
	o.once.Do(func() {
		l, err := c.kc.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
		if err != nil {
			o.err = fmt.Errorf("list clusterrolebindings: %w", err)
			return
		}
		o.crbs = l.Items
	})
	return o, o.err
}

// grant is one binding with the rules of the role it references.
type grant struct {
	Binding any                 `json:"binding"`
	Role    any                 `json:"role,omitempty"`
	Rules   []rbacv1.PolicyRule `json:"rules,omitempty"`
	Error   string              `json:"error,omitempty"`
}

func subjectMatches(s rbacv1.Subject, bindingNS, ns, sa string) bool {
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		sns := s.Namespace
		if sns == "" {
			sns = bindingNS
		}
		return s.Name == sa && sns == ns
	case rbacv1.GroupKind:
		return s.Name == "system:serviceaccounts" || s.Name == "system:serviceaccounts:"+ns || s.Name == "system:authenticated"
	}
	return false
}

func (o Objects) pod(ctx context.Context, env *action.Env, s *store, c *objCache, p corev1.Pod, secretValues bool) error {
	kc := env.Kube
	base := "k8s/" + p.Namespace + "/pods/" + p.Name + "/"
	info := func(method string) evidence.ItemInfo {
		return evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Namespace: p.Namespace, Pod: p.Name, Node: p.Spec.NodeName}, Method: method}
	}
	p.APIVersion, p.Kind = "v1", "Pod"
	if err := s.json(ctx, base+"pod.json", info("get pod"), p); err != nil {
		return err
	}
	chain, err := c.owners(ctx, p.Namespace, p.OwnerReferences)
	if err != nil {
		return err
	}
	for _, ow := range chain {
		if err := s.json(ctx, base+"owners/"+ow.kind+"-"+ow.name+".json", info("get "+ow.kind), ow.obj); err != nil {
			return err
		}
	}
	if n := p.Spec.NodeName; n != "" {
		nb := "k8s/nodes/" + n + "/"
		ninfo := evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Node: n}}
		if !s.has(nb + "node.json") {
			node, err := kc.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("get node %s: %w", n, err)
			}
			if err == nil {
				node.APIVersion, node.Kind = "v1", "Node"
				ninfo.Method = "get node"
				if err := s.json(ctx, nb+"node.json", ninfo, node); err != nil {
					return err
				}
			}
		}
		if !s.has(nb + "events.json") {
			ev, err := kc.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + n})
			if err != nil {
				return fmt.Errorf("list events of node %s: %w", n, err)
			}
			ninfo.Method = "list events involvedObject=node"
			if err := s.json(ctx, nb+"events.json", ninfo, ev.Items); err != nil {
				return err
			}
		}
	}

	sa := serviceAccount(p)
	if !s.has("k8s/" + p.Namespace + "/serviceaccounts/" + sa + ".json") {
		acct, err := kc.CoreV1().ServiceAccounts(p.Namespace).Get(ctx, sa, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if err := s.notCollected("k8s/"+p.Namespace+"/serviceaccounts/"+sa+".json", info("get serviceaccount"), "not found"); err != nil {
				return err
			}
		case err != nil:
			return fmt.Errorf("get serviceaccount %s/%s: %w", p.Namespace, sa, err)
		default:
			acct.APIVersion, acct.Kind = "v1", "ServiceAccount"
			if err := s.json(ctx, "k8s/"+p.Namespace+"/serviceaccounts/"+sa+".json", info("get serviceaccount"), acct); err != nil {
				return err
			}
		}
	}

	nsObj, err := c.namespace(ctx, p.Namespace)
	if err != nil {
		return err
	}
	podEvents := []corev1.Event{}
	for _, e := range nsObj.events {
		if e.InvolvedObject.Kind == "Pod" && e.InvolvedObject.Name == p.Name && (e.InvolvedObject.UID == "" || e.InvolvedObject.UID == p.UID) {
			podEvents = append(podEvents, e)
		}
	}
	if err := s.json(ctx, base+"events.json", info("list events of the namespace, those involving the pod"), podEvents); err != nil {
		return err
	}
	if rel := "k8s/" + p.Namespace + "/serviceaccounts/" + sa + ".rbac.json"; !s.has(rel) {
		grants, err := o.grants(ctx, c, nsObj, p.Namespace, sa)
		if err != nil {
			return err
		}
		if err := s.json(ctx, rel, info("rolebindings and clusterrolebindings naming the service account, with their roles' rules"), grants); err != nil {
			return err
		}
	}
	var svcs []corev1.Service
	names := map[string]bool{}
	for _, svc := range nsObj.services {
		if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.Labels)) {
			svcs = append(svcs, svc)
			names[svc.Name] = true
		}
	}
	var eps []discoveryv1.EndpointSlice
	for _, es := range nsObj.slices {
		if names[es.Labels[discoveryv1.LabelServiceName]] || slicePointsAt(es, p) {
			eps = append(eps, es)
		}
	}
	if err := s.json(ctx, base+"services.json", info("services whose selector matches the pod"), svcs); err != nil {
		return err
	}
	if err := s.json(ctx, base+"endpointslices.json", info("endpointslices of those services or naming the pod"), eps); err != nil {
		return err
	}
	if err := s.json(ctx, "k8s/"+p.Namespace+"/networkpolicies.json", evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Namespace: p.Namespace}, Method: "list networkpolicies"}, nsObj.policies); err != nil {
		return err
	}
	cms, secrets := references(p)
	if err := s.json(ctx, base+"references.json", info("names of ConfigMaps and Secrets in the pod spec (no values)"), map[string][]string{"configMaps": cms, "secrets": secrets}); err != nil {
		return err
	}
	if secretValues {
		for _, name := range secrets {
			rel := "k8s/" + p.Namespace + "/secrets/" + name + ".json"
			if s.has(rel) {
				continue
			}
			sec, err := kc.CoreV1().Secrets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				if err := s.notCollected(rel, info("get secret"), err.Error()); err != nil {
					return err
				}
				continue
			}
			sec.APIVersion, sec.Kind = "v1", "Secret"
			if err := s.json(ctx, rel, info("get secret (values included: include-secret-values)"), sec); err != nil {
				return err
			}
		}
	}
	return nil
}

func slicePointsAt(es discoveryv1.EndpointSlice, p corev1.Pod) bool {
	for _, e := range es.Endpoints {
		if e.TargetRef != nil && e.TargetRef.Kind == "Pod" && e.TargetRef.Name == p.Name {
			return true
		}
	}
	return false
}

func (Objects) grants(ctx context.Context, c *objCache, nsObj *nsObjects, ns, sa string) ([]grant, error) {
	var out []grant
	for _, b := range nsObj.rbs {
		if slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return subjectMatches(s, b.Namespace, ns, sa) }) {
			b.APIVersion, b.Kind = "rbac.authorization.k8s.io/v1", "RoleBinding"
			out = append(out, c.grant(ctx, b, b.RoleRef, ns))
		}
	}
	cl, err := c.cluster(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range cl.crbs {
		if slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return subjectMatches(s, "", ns, sa) }) {
			b.APIVersion, b.Kind = "rbac.authorization.k8s.io/v1", "ClusterRoleBinding"
			out = append(out, c.grant(ctx, b, b.RoleRef, ns))
		}
	}
	return out, nil
}

// grant reads the rules of the Role (in ns) or ClusterRole a binding
// references; a role it cannot read is recorded with the error.
func (c *objCache) grant(ctx context.Context, binding any, ref rbacv1.RoleRef, ns string) grant {
	g := grant{Binding: binding}
	var err error
	if ref.Kind == "Role" {
		var r *rbacv1.Role
		if r, err = c.kc.RbacV1().Roles(ns).Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
			g.Role, g.Rules = r.Name, r.Rules
		}
	} else {
		var r *rbacv1.ClusterRole
		if r, err = c.kc.RbacV1().ClusterRoles().Get(ctx, ref.Name, metav1.GetOptions{}); err == nil {
			g.Role, g.Rules = r.Name, r.Rules
		}
	}
	if err != nil {
		g.Error = err.Error()
	}
	return g
}

// references lists the ConfigMaps and Secrets a pod uses: volumes, projected
// sources, env and envFrom, image pull secrets.
func references(p corev1.Pod) (cms, secrets []string) {
	seenC, seenS := map[string]bool{}, map[string]bool{}
	addC := func(n string) {
		if n != "" && !seenC[n] {
			seenC[n] = true
			cms = append(cms, n)
		}
	}
	addS := func(n string) {
		if n != "" && !seenS[n] {
			seenS[n] = true
			secrets = append(secrets, n)
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.ConfigMap != nil {
			addC(v.ConfigMap.Name)
		}
		if v.Secret != nil {
			addS(v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil {
					addC(src.ConfigMap.Name)
				}
				if src.Secret != nil {
					addS(src.Secret.Name)
				}
			}
		}
	}
	envs := func(env []corev1.EnvVar, from []corev1.EnvFromSource) {
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				addC(e.ValueFrom.ConfigMapKeyRef.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				addS(e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, f := range from {
			if f.ConfigMapRef != nil {
				addC(f.ConfigMapRef.Name)
			}
			if f.SecretRef != nil {
				addS(f.SecretRef.Name)
			}
		}
	}
	for _, c := range p.Spec.InitContainers {
		envs(c.Env, c.EnvFrom)
	}
	for _, c := range p.Spec.Containers {
		envs(c.Env, c.EnvFrom)
	}
	for _, c := range p.Spec.EphemeralContainers {
		envs(c.Env, c.EnvFrom)
	}
	for _, s := range p.Spec.ImagePullSecrets {
		addS(s.Name)
	}
	return cms, secrets
}

type owned struct {
	kind, name string
	obj        any
}

// ownerChain follows controller references up to the top controller.
func ownerChain(ctx context.Context, kc kubernetes.Interface, ns string, refs []metav1.OwnerReference) ([]owned, error) {
	apps, batch := kc.AppsV1(), kc.BatchV1()
	getters := map[string]func(context.Context, string) (metav1.Object, error){
		"ReplicaSet":  asObject(apps.ReplicaSets(ns).Get),
		"Deployment":  asObject(apps.Deployments(ns).Get),
		"StatefulSet": asObject(apps.StatefulSets(ns).Get),
		"DaemonSet":   asObject(apps.DaemonSets(ns).Get),
		"Job":         asObject(batch.Jobs(ns).Get),
		"CronJob":     asObject(batch.CronJobs(ns).Get),
	}
	var out []owned
	for depth := 0; depth < 8; depth++ {
		var ref *metav1.OwnerReference
		for i := range refs {
			if refs[i].Controller != nil && *refs[i].Controller {
				ref = &refs[i]
			}
		}
		if ref == nil && len(refs) > 0 {
			ref = &refs[0]
		}
		if ref == nil {
			return out, nil
		}
		get, ok := getters[ref.Kind]
		if !ok {
			out = append(out, owned{kind: ref.Kind, name: ref.Name, obj: map[string]any{"ownerReference": ref, "note": "kind not collected"}})
			return out, nil
		}
		obj, err := get(ctx, ref.Name)
		if apierrors.IsNotFound(err) {
			out = append(out, owned{kind: ref.Kind, name: ref.Name, obj: map[string]any{"ownerReference": ref, "note": "not found"}})
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get %s %s/%s: %w", ref.Kind, ns, ref.Name, err)
		}
		out = append(out, owned{kind: ref.Kind, name: ref.Name, obj: withKind(obj, ref.APIVersion, ref.Kind)})
		refs = obj.GetOwnerReferences()
	}
	return out, nil
}

// asObject adapts a typed client's Get to the owner-chain table.
func asObject[T metav1.Object](get func(context.Context, string, metav1.GetOptions) (T, error)) func(context.Context, string) (metav1.Object, error) {
	return func(ctx context.Context, name string) (metav1.Object, error) {
		o, err := get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return o, nil
	}
}

// withKind wraps an object from a typed client (which drops apiVersion and
// kind) so the stored JSON says what it is.
func withKind(obj any, apiVersion, kind string) any {
	return struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Object     any    `json:"object"`
	}{apiVersion, kind, obj}
}
