package collect

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/naming"
)

// Volatile is collect.volatile.
type Volatile struct{}

// Collection methods of collect.volatile.
const (
	MethodNodePod   = "node-pod"
	MethodEphemeral = "ephemeral"
	// MethodAuto picks the method with the fewest side effects that the
	// cluster admits: the node pod (nothing in the suspect pod changes),
	// else the ephemeral container.
	MethodAuto = "auto"
	// MethodNone is the method output when no selected pod could be
	// reached (all on Fargate or not scheduled): nothing was started.
	MethodNone = "none"
)

// Spec implements action.Action.
func (Volatile) Spec() action.Spec {
	return action.Spec{
		Name: "collect.volatile",
		Doc: "Capture the suspect's processes (tied to the pod by cgroup, executables hashed, deleted ones flagged), the sockets of its own network namespace with their owning processes, " +
			"open files, memory maps, mounts and environment variable names (values never leave the node) with eksir's static collector, which needs no tool in any image " +
			"and never runs inside the suspect container: from a privileged node pod (hostPID, hostNetwork, pinned, tolerating the quarantine taint) " +
			"or an ephemeral debug container targeting the suspect's process namespace. One JSON document per artefact streams over exec into the case.",
		Kind:     action.Collect,
		Needs:    []action.Cloud{action.Kubernetes},
		Volatile: true,
		Params: append(append(targetParams(), collectorParams()...),
			action.Param{Name: "method", Type: action.String, Default: MethodAuto, Enum: []string{MethodAuto, MethodNodePod, MethodEphemeral},
				Doc: "auto (the node pod when the cluster admits it, else the ephemeral container), node-pod or ephemeral"},
			action.Param{Name: "redact-arguments", Type: action.Bool, Default: true, Doc: "replace secret-looking command-line argument values with <redacted> on the node"},
			action.Param{Name: "target-container", Type: action.String, Doc: "with ephemeral: the container whose process namespace to join (default: the first)"}),
		Outputs: captureOutputs(),
		Permissions: action.Permissions{Kube: append(append([]action.KubeRule{}, collectorRules...),
			action.KubeRule{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"update", "patch"}},
			action.KubeRule{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"}})},
		Notes: volatileNotes,
	}
}

// podArtefacts are the collector's per-pod documents; nodeArtefacts the
// node's own (written once per node with the node-pod method).
var (
	podArtefacts  = []string{"processes", "sockets", "files", "maps", "mounts", "environ"}
	nodeArtefacts = [][]string{{"sockets", "--node"}, {"modules"}, {"routes"}, {"neighbours"}}
)

// Plan implements action.Action.
func (v Volatile) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	selected, err := Select(ctx, env.Kube, TargetFrom(call))
	if err != nil {
		return action.Plan{}, err
	}
	pods, gone, err := splitReachable(ctx, env.Kube, selected, true)
	if err != nil {
		return action.Plan{}, err
	}
	var p action.Plan
	// Nothing is created for a pod no collector reaches: planning its
	// method would dry-run a collector pod onto a Fargate node.
	allRecorded := planUncollectable(env, volatileUncollectable(call, gone), &p)
	if len(pods) == 0 && len(gone) > 0 {
		p.Done = allRecorded
		return p, nil
	}
	if p.Checks, err = action.CheckAccess(ctx, env.Kube, append(collectorChecks, authzv1.ResourceAttributes{Verb: "update", Resource: "pods", Subresource: "ephemeralcontainers"})...); err != nil {
		return p, err
	}
	m, err := chooseMethod(ctx, env, call, pods)
	if err != nil {
		return p, err
	}
	p.Warnings = append(p.Warnings, m.warnings...)
	bins := map[string]*collectorBinary{}
	for _, n := range m.nodes {
		if call.String("collector-delivery") == DeliveryImage {
			break
		}
		arch := nodeArch(n)
		if bins[arch] == nil {
			if bins[arch], err = findCollector(arch); err != nil {
				return p, err
			}
		}
	}
	for _, arch := range slices.Sorted(maps.Keys(bins)) {
		b := bins[arch]
		p.Changes = append(p.Changes, action.Change{Verb: "deliver", Object: "eksir-collector linux/" + arch,
			Detail: fmt.Sprintf("%d bytes, sha256 %s, written over exec stdin to ${TMPDIR:-/tmp} of the collector container, hash checked before use", len(b.data), b.sha256)})
	}
	if m.method == MethodNodePod {
		p.Changes = append(p.Changes, collectorPodChanges(env, call, pods, m.admission[call.String("collector-namespace")])...)
	}
	for _, pod := range pods {
		detail := "processes, sockets of its network namespace, open files, memory maps, mounts, environment names, by the static collector (" + m.method + ")"
		if m.method == MethodEphemeral {
			p.Changes = append(p.Changes, action.Change{Verb: "add", Object: "ephemeral container " + debugName(env) + " to pod " + pod.Namespace + "/" + pod.Name,
				Detail: "PERMANENT: an ephemeral container cannot be removed from the pod; it shares the process namespace of container " + debugTarget(call, pod) +
					" and the pod's network, adds capability SYS_PTRACE; " + m.admission[pod.Namespace]})
		}
		p.Changes = append(p.Changes, action.Change{Verb: "collect", Object: "pod " + pod.Namespace + "/" + pod.Name, Detail: detail})
	}
	return p, nil
}

// volatileUncollectable lists what collect.volatile would have written for
// the pods no collector reaches: each pod's documents and, unless the call
// asks for the ephemeral method (which writes none), each Fargate node's own.
func volatileUncollectable(call action.Call, gone []unreachable) []uncollectable {
	var out []uncollectable
	nodes := map[string]bool{}
	for _, u := range gone {
		var rels []string
		for _, a := range podArtefacts {
			rels = append(rels, "volatile/"+u.pod.Namespace+"/"+u.pod.Name+"/"+a+".json")
		}
		out = append(out, uncollectable{u, rels})
		if u.node != "" && !nodes[u.node] && call.String("method") != MethodEphemeral {
			nodes[u.node] = true
			var rels []string
			for _, a := range nodeArtefacts {
				rels = append(rels, "volatile/nodes/"+u.node+"/"+a[0]+".json")
			}
			out = append(out, uncollectable{fargateNode(u.node), rels})
		}
	}
	return out
}

// methodChoice is the capture method a call uses and why.
type methodChoice struct {
	method string
	nodes  []*corev1.Node
	// admission says per namespace how Pod Security answered the server
	// dry-run of what the method creates.
	admission map[string]string
	warnings  []string
}

// chooseMethod resolves auto and checks, by server-side dry run (Pod
// Security admission answers it as it would the real request), that the
// cluster admits what the method creates: checked, not guessed.
func chooseMethod(ctx context.Context, env *action.Env, call action.Call, pods []corev1.Pod) (methodChoice, error) {
	m := methodChoice{method: call.String("method"), admission: map[string]string{}}
	if m.method == "" {
		m.method = MethodAuto
	}
	for _, name := range nodesOf(pods) {
		n, err := env.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return m, fmt.Errorf("get node %s: %w", name, err)
		}
		m.nodes = append(m.nodes, n)
	}
	var nodeErr, ephErr error
	if m.method != MethodEphemeral {
		if nodeErr = admitNodePods(ctx, env, call, m); nodeErr == nil {
			m.method = MethodNodePod
			return m, nil
		}
		if m.method == MethodNodePod {
			return m, nodeErr
		}
	}
	if ephErr = admitEphemeral(ctx, env, call, pods, m); ephErr == nil {
		if nodeErr != nil {
			m.warnings = append(m.warnings, "node collector pod not admitted, so the capture adds an ephemeral container to the suspect pod (permanent): "+nodeErr.Error())
		}
		m.method = MethodEphemeral
		return m, nil
	}
	if nodeErr == nil {
		return m, ephErr
	}
	return m, fmt.Errorf("no capture method is admitted: node-pod: %v; ephemeral: %w (hint: run collector pods in a namespace whose Pod Security level is privileged with collector-namespace, or label it pod-security.kubernetes.io/enforce=privileged)", nodeErr, ephErr)
}

// psaLevel describes the Pod Security enforce level of a namespace.
func psaLevel(ctx context.Context, env *action.Env, ns string) string {
	n, err := env.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return "namespace " + ns + " Pod Security level unknown (" + err.Error() + ")"
	}
	if l, ok := n.Labels["pod-security.kubernetes.io/enforce"]; ok {
		return "namespace " + ns + " enforces Pod Security " + l
	}
	return "namespace " + ns + " has no Pod Security label (the cluster default applies)"
}

func admitNodePods(ctx context.Context, env *action.Env, call action.Call, m methodChoice) error {
	for _, n := range m.nodes {
		want := collectorPod(env, call, n.Name)
		_, err := env.Kube.CoreV1().Pods(want.Namespace).Create(ctx, want, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && !isExists(err) {
			return fmt.Errorf("dry-run collector pod on %s: %w", n.Name, err)
		}
		if _, ok := m.admission[want.Namespace]; !ok {
			m.admission[want.Namespace] = "admitted by a server dry run (" + psaLevel(ctx, env, want.Namespace) + ")"
		}
	}
	return nil
}

func admitEphemeral(ctx context.Context, env *action.Env, call action.Call, pods []corev1.Pod, m methodChoice) error {
	for _, p := range pods {
		cur, err := env.Kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		if !hasEphemeral(cur, debugName(env)) {
			cur.Spec.EphemeralContainers = append(cur.Spec.EphemeralContainers, debugContainer(env, call, *cur))
			_, err = env.Kube.CoreV1().Pods(p.Namespace).UpdateEphemeralContainers(ctx, p.Name, cur, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "eksir"})
			if err != nil {
				return fmt.Errorf("dry-run ephemeral container in %s/%s: %w", p.Namespace, p.Name, err)
			}
		}
		if _, ok := m.admission[p.Namespace]; !ok {
			m.admission[p.Namespace] = "admitted by a server dry run (" + psaLevel(ctx, env, p.Namespace) + ")"
		}
	}
	return nil
}

func nodesOf(pods []corev1.Pod) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pods {
		if n := p.Spec.NodeName; n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Run implements action.Action.
func (v Volatile) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	selected, ex, s, err := execRun(ctx, env, call)
	if err != nil {
		return action.Result{}, err
	}
	// Fargate and unscheduled pods first: recorded, and no collector
	// started for them, before anything else is tried.
	pods, gone, err := splitReachable(ctx, env.Kube, selected, true)
	if err != nil {
		return action.Result{}, err
	}
	goneWarnings, err := s.recordUncollectable(volatileUncollectable(call, gone))
	if err != nil {
		return s.result(nil, goneWarnings), err
	}
	if len(pods) == 0 && len(gone) > 0 {
		return s.result(map[string]any{"method": MethodNone}, goneWarnings), nil
	}
	m, err := chooseMethod(ctx, env, call, pods)
	if err != nil {
		return s.result(nil, goneWarnings), err
	}
	m.warnings = append(goneWarnings, m.warnings...)
	outputs := map[string]any{"method": m.method}
	warn := func(w string) { m.warnings = append(m.warnings, w) }
	if m.method == MethodEphemeral {
		for _, p := range pods {
			if err := v.ephemeral(ctx, env, call, s, ex, p, warn); err != nil {
				return s.result(outputs, m.warnings), err
			}
		}
		return s.result(outputs, m.warnings), nil
	}
	for _, node := range m.nodes {
		var items []planned
		for _, p := range pods {
			if p.Spec.NodeName != node.Name {
				continue
			}
			src := evidence.Source{Cluster: env.Cluster, Namespace: p.Namespace, Pod: p.Name, Node: node.Name}
			items = append(items, podItems(call, "volatile/"+p.Namespace+"/"+p.Name+"/", src, warn, "--pod-uid", string(p.UID))...)
		}
		for _, a := range nodeArtefacts {
			items = append(items, planned{rel: "volatile/nodes/" + node.Name + "/" + a[0] + ".json", src: evidence.Source{Cluster: env.Cluster, Node: node.Name}, args: a})
		}
		var done func() error
		err := runPlanned(ctx, s, items, func() (a *agent, err error) {
			a, done, err = nodeAgent(ctx, env, call, ex, node)
			return a, err
		})
		if err != nil {
			return s.result(outputs, m.warnings), err
		}
		if done != nil {
			if err := done(); err != nil {
				return s.result(outputs, m.warnings), err
			}
		}
	}
	return s.result(outputs, m.warnings), nil
}

// podItems are the per-pod documents, each written by the collector with
// the given process selector. When the collector finds no process of the
// pod, warn adds a warning: the documents then hold nothing of the suspect
// (a container that is not running, or a cgroup layout the collector does
// not know), and the responder must know before containing.
func podItems(call action.Call, base string, src evidence.Source, warn func(string), selector ...string) []planned {
	var out []planned
	for _, a := range podArtefacts {
		args := append([]string{a}, selector...)
		it := planned{rel: base + a + ".json", src: src, args: args}
		if a == "processes" {
			if !call.Bool("redact-arguments") {
				it.args = append(it.args, "--no-redact")
			}
			it.notes = func(n string) {
				if strings.Contains(n, "processes: 0 selected") {
					warn(fmt.Sprintf("no process of pod %s/%s found on node %s: its volatile documents hold nothing of it (container not running, or an unknown cgroup layout)", src.Namespace, src.Pod, src.Node))
				}
			}
		}
		out = append(out, it)
	}
	return out
}

func debugName(env *action.Env) string { return "eksir-debug-" + naming.ShortHash(env.Incident, 10) }

func debugTarget(call action.Call, p corev1.Pod) string {
	if t := call.String("target-container"); t != "" {
		return t
	}
	if len(p.Spec.Containers) > 0 {
		return p.Spec.Containers[0].Name
	}
	return ""
}

// debugContainer is the ephemeral collector container: it joins the
// target container's process namespace; SYS_PTRACE lets it read the
// target's /proc/<pid>/fd, maps and environ whatever user it runs as.
func debugContainer(env *action.Env, call action.Call, p corev1.Pod) corev1.EphemeralContainer {
	return corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: debugName(env), Image: call.String("collector-image"), Command: idleCommand(call),
			SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}}},
		TargetContainerName: debugTarget(call, p)}
}

func hasEphemeral(p *corev1.Pod, name string) bool {
	for _, e := range p.Spec.EphemeralContainers {
		if e.Name == name {
			return true
		}
	}
	return false
}

// ephemeral adds (once) a debug container targeting the suspect's process
// namespace and runs the collector in it.
func (v Volatile) ephemeral(ctx context.Context, env *action.Env, call action.Call, s *store, ex Executor, p corev1.Pod, warn func(string)) error {
	target := debugTarget(call, p)
	src := evidence.Source{Cluster: env.Cluster, Namespace: p.Namespace, Pod: p.Name, Container: target, Node: p.Spec.NodeName}
	items := podItems(call, "volatile/"+p.Namespace+"/"+p.Name+"/", src, warn, "--all-except-self")
	return runPlanned(ctx, s, items, func() (*agent, error) {
		name := debugName(env)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := env.Kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("get pod %s/%s: %w", p.Namespace, p.Name, err)
			}
			if hasEphemeral(cur, name) {
				return nil
			}
			cur.Spec.EphemeralContainers = append(cur.Spec.EphemeralContainers, debugContainer(env, call, *cur))
			if _, err := env.Kube.CoreV1().Pods(p.Namespace).UpdateEphemeralContainers(ctx, p.Name, cur, metav1.UpdateOptions{FieldManager: "eksir"}); err != nil {
				return fmt.Errorf("add ephemeral container to %s/%s: %w", p.Namespace, p.Name, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := waitRunning(ctx, env.Kube, p.Namespace, p.Name, name, call.Duration("start-timeout")); err != nil {
			return nil, err
		}
		arch := "amd64"
		if n, err := env.Kube.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{}); err == nil {
			arch = nodeArch(n)
		}
		return readyAgent(ctx, call, ex, p.Namespace, p.Name, name, "ephemeral container "+name+" of "+p.Namespace+"/"+p.Name+" sharing the process namespace of "+target, arch)
	})
}
