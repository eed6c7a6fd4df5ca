package collect

import (
	"context"
	"fmt"
	"io"
	"sort"

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
)

// exeScript hashes each process's executable through /proc/<pid>/exe, which
// still reads a binary the attacker deleted; each distinct path is hashed
// once.
const exeScript = `seen=' '
for p in /proc/[0-9]*; do
  e=$(readlink "$p/exe" 2>/dev/null) || continue
  case "$seen" in *" $e "*) printf '%s - %s\n' "${p#/proc/}" "$e"; continue;; esac
  seen="$seen$e "
  h=$(sha256sum < "$p/exe" 2>/dev/null) || h='unreadable'
  printf '%s %s %s\n' "${p#/proc/}" "${h%% *}" "$e"
done`

// envScript lists environment variable names per process; values are
// redacted on the node, so they never cross the wire. Newlines inside a
// value become \001 first, so a multi-line value cannot leak as a line of
// its own.
const envScript = `for p in /proc/[0-9]*; do
  [ -r "$p/environ" ] || continue
  printf '# pid %s\n' "${p#/proc/}"
  tr '\n\0' '\001\n' < "$p/environ" | sed 's/=.*/=<redacted>/'
done`

var volatileCommands = []struct {
	file string
	cmd  []string
}{
	{"processes.txt", []string{"ps", "auxwww"}},
	{"sockets.txt", []string{"ss", "-tanupe"}},
	{"mounts.txt", []string{"cat", "/proc/1/mountinfo"}},
	{"exe-sha256.txt", []string{"sh", "-c", exeScript}},
	{"environ-redacted.txt", []string{"sh", "-c", envScript}},
}

// Spec implements action.Action.
func (Volatile) Spec() action.Spec {
	return action.Spec{
		Name: "collect.volatile",
		Doc: "Capture processes, open sockets, mounts, SHA-256 of /proc/<pid>/exe and environment variable names (values redacted on the node) with a trusted collector " +
			"that never runs anything inside the suspect container: a privileged node pod (hostPID, hostNetwork, pinned, tolerating the quarantine taint) " +
			"or an ephemeral debug container targeting the suspect's process namespace. Output streams over exec (WebSocket, SPDY fallback) into the case.",
		Kind:     action.Collect,
		Needs:    []action.Cloud{action.Kubernetes},
		Volatile: true,
		Params: append(append(targetParams(), collectorParams()...),
			action.Param{Name: "method", Type: action.String, Default: MethodNodePod, Enum: []string{MethodNodePod, MethodEphemeral}, Doc: "node-pod or ephemeral"},
			action.Param{Name: "target-container", Type: action.String, Doc: "with ephemeral: the container whose process namespace to join (default: the first)"}),
		Outputs: captureOutputs(),
		Permissions: action.Permissions{Kube: append(append([]action.KubeRule{}, collectorRules...),
			action.KubeRule{APIGroups: []string{""}, Resources: []string{"pods/ephemeralcontainers"}, Verbs: []string{"update", "patch"}})},
		Notes: volatileNotes,
	}
}

// Plan implements action.Action.
func (v Volatile) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	pods, err := Select(ctx, env.Kube, TargetFrom(call))
	if err != nil {
		return action.Plan{}, err
	}
	var p action.Plan
	if p.Checks, err = action.CheckAccess(ctx, env.Kube, append(collectorChecks, authzv1.ResourceAttributes{Verb: "update", Resource: "pods", Subresource: "ephemeralcontainers"})...); err != nil {
		return p, err
	}
	for _, node := range nodesOf(pods) {
		if call.String("method") == MethodEphemeral {
			break
		}
		want := collectorPod(env, call.String("collector-namespace"), node, call.String("collector-image"))
		if _, err := env.Kube.CoreV1().Pods(want.Namespace).Create(ctx, want, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil && !isExists(err) {
			return p, fmt.Errorf("dry-run collector pod on %s: %w", node, err)
		}
		p.Changes = append(p.Changes, action.Change{Verb: "create", Object: "pod " + want.Namespace + "/" + want.Name, Detail: "privileged collector on node " + node + " (deleted after)"})
	}
	for _, pod := range pods {
		p.Changes = append(p.Changes, action.Change{Verb: "collect", Object: "pod " + pod.Namespace + "/" + pod.Name, Detail: "volatile state via " + call.String("method")})
	}
	return p, nil
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
	pods, ex, s, err := execRun(ctx, env, call)
	if err != nil {
		return action.Result{}, err
	}
	if call.String("method") == MethodEphemeral {
		for _, p := range pods {
			if err := v.ephemeral(ctx, env, call, s, ex, p); err != nil {
				return s.result(nil, nil), err
			}
		}
		return s.result(nil, nil), nil
	}
	for _, node := range nodesOf(pods) {
		want := collectorPod(env, call.String("collector-namespace"), node, call.String("collector-image"))
		if err := ensureCollector(ctx, env.Kube, want, call.Duration("start-timeout")); err != nil {
			return s.result(nil, nil), err
		}
		err := runCommands(ctx, env, s, ex, want.Namespace, want.Name, "collector", "volatile/nodes/"+node+"/",
			evidence.Source{Cluster: env.Cluster, Node: node}, "exec in node collector pod "+want.Namespace+"/"+want.Name+" (hostPID): ")
		if err != nil {
			return s.result(nil, nil), err
		}
		if !call.Bool("keep-collector") {
			if err := deleteCollector(ctx, env.Kube, want); err != nil {
				return s.result(nil, nil), err
			}
		}
	}
	return s.result(nil, nil), nil
}

func runCommands(ctx context.Context, env *action.Env, s *store, ex Executor, ns, pod, container, base string, src evidence.Source, method string) error {
	for _, c := range volatileCommands {
		info := evidence.ItemInfo{Source: src, Method: method + c.cmd[0] + " " + c.file}
		if c.cmd[0] != "sh" {
			info.Method = method + fmt.Sprint(c.cmd)
		}
		err := s.stream(ctx, base+c.file, info, func(w io.Writer) error {
			return ex.Exec(ctx, ns, pod, container, c.cmd, w)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ephemeral adds (once) a debug container targeting the suspect's process
// namespace and runs the collector commands in it.
func (v Volatile) ephemeral(ctx context.Context, env *action.Env, call action.Call, s *store, ex Executor, p corev1.Pod) error {
	name := "eksir-debug-" + naming.ShortHash(env.Incident, 10)
	target := call.String("target-container")
	if target == "" && len(p.Spec.Containers) > 0 {
		target = p.Spec.Containers[0].Name
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := env.Kube.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		for _, e := range cur.Spec.EphemeralContainers {
			if e.Name == name {
				return nil
			}
		}
		cur.Spec.EphemeralContainers = append(cur.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: call.String("collector-image"), Command: []string{"sleep", "7200"},
				SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}}},
			TargetContainerName: target})
		if _, err := env.Kube.CoreV1().Pods(p.Namespace).UpdateEphemeralContainers(ctx, p.Name, cur, metav1.UpdateOptions{FieldManager: "eksir"}); err != nil {
			return fmt.Errorf("add ephemeral container to %s/%s: %w", p.Namespace, p.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := waitRunning(ctx, env.Kube, p.Namespace, p.Name, name, call.Duration("start-timeout")); err != nil {
		return err
	}
	return runCommands(ctx, env, s, ex, p.Namespace, p.Name, name, "volatile/"+p.Namespace+"/"+p.Name+"/",
		evidence.Source{Cluster: env.Cluster, Namespace: p.Namespace, Pod: p.Name, Container: target, Node: p.Spec.NodeName},
		"exec in ephemeral container "+name+" targeting "+target+": ")
}
