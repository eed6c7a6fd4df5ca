package collect

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
)

// PodLogs is collect.pod-logs.
type PodLogs struct{}

// Spec implements action.Action.
func (PodLogs) Spec() action.Spec {
	return action.Spec{
		Name: "collect.pod-logs",
		Doc: "Stream the logs of every container of the selected pods (init, regular, ephemeral), current and, when it exists, previous, " +
			"with timestamps and no size limit, into the case.",
		Kind:    action.Collect,
		Needs:   []action.Cloud{action.Kubernetes},
		Params:  append(targetParams(), concurrencyParam()),
		Outputs: captureOutputs("pods"),
		Permissions: action.Permissions{Kube: []action.KubeRule{
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
			action.AccessReviewRule,
		}},
		Notes: podLogsNotes,
	}
}

// Plan implements action.Action.
func (PodLogs) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	return planPods(ctx, env, call, "logs of every container", logItems, authzv1.ResourceAttributes{Verb: "get", Resource: "pods", Subresource: "log"})
}

func logItems(p corev1.Pod) []string {
	var out []string
	for _, c := range allContainers(p) {
		out = append(out, "logs/"+p.Namespace+"/"+p.Name+"/"+c.Name+".log")
		if hasPrevious(p, c.Name) {
			out = append(out, "logs/"+p.Namespace+"/"+p.Name+"/"+c.Name+".previous.log")
		}
	}
	return out
}

// Run implements action.Action.
func (l PodLogs) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	pods, err := Select(ctx, env.Kube, TargetFrom(call))
	if err != nil {
		return action.Result{}, err
	}
	// Logs stream for as long as they take: no per-request timeout.
	kc, _, err := streaming(env)
	if err != nil {
		return action.Result{}, err
	}
	s := newStore(env)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit(call))
	for _, p := range pods {
		g.Go(func() error { return l.pod(gctx, env, kc, s, p) })
	}
	err = g.Wait()
	return s.result(map[string]any{"pods": len(pods)}, nil), err
}

// hasPrevious: a previous instance's log exists only after a restart.
func hasPrevious(p corev1.Pod, name string) bool {
	for _, st := range append(append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...), p.Status.EphemeralContainerStatuses...) {
		if st.Name == name {
			return st.RestartCount > 0 || st.LastTerminationState.Terminated != nil
		}
	}
	return false
}

func (PodLogs) pod(ctx context.Context, env *action.Env, kc kubernetes.Interface, s *store, p corev1.Pod) error {
	for _, c := range allContainers(p) {
		for _, previous := range []bool{false, true} {
			if previous && !hasPrevious(p, c.Name) {
				continue
			}
			rel := "logs/" + p.Namespace + "/" + p.Name + "/" + c.Name + ".log"
			method := fmt.Sprintf("GET pods/log container=%s timestamps=true (%s container)", c.Name, c.Type)
			if previous {
				rel = "logs/" + p.Namespace + "/" + p.Name + "/" + c.Name + ".previous.log"
				method += " previous=true"
			}
			info := evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Namespace: p.Namespace, Pod: p.Name, Container: c.Name, Node: p.Spec.NodeName}, Method: method}
			err := s.stream(ctx, rel, info, func(w io.Writer) error {
				rc, err := kc.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: c.Name, Timestamps: true, Previous: previous}).Stream(ctx)
				if err != nil {
					return fmt.Errorf("logs of %s/%s container %s: %w", p.Namespace, p.Name, c.Name, err)
				}
				defer rc.Close()
				if _, err := io.Copy(w, rc); err != nil {
					return fmt.Errorf("read logs of %s/%s container %s: %w", p.Namespace, p.Name, c.Name, err)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}
