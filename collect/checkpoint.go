package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
)

// Checkpoint is collect.checkpoint.
type Checkpoint struct{}

// Spec implements action.Action.
func (Checkpoint) Spec() action.Spec {
	return action.Spec{
		Name: "collect.checkpoint",
		Doc: "Checkpoint each container through the kubelet checkpoint API (POST nodes/<node>:<port>/proxy/checkpoint/<ns>/<pod>/<container>) and fetch the archive " +
			"through the node collector pod; when the kubelet answers 404 or 500 (feature gate off, runtime without CRIU) record not-collected with the reason and go on.",
		Kind:     action.Collect,
		Outputs:  captureOutputs(),
		Needs:    []action.Cloud{action.Kubernetes},
		Volatile: true,
		Params:   append(targetParams(), collectorParams()...),
		Permissions: action.Permissions{Kube: append(append([]action.KubeRule{}, collectorRules...),
			action.KubeRule{APIGroups: []string{""}, Resources: []string{"nodes/proxy"}, Verbs: []string{"create"}})},
		Notes: checkpointNotes,
	}
}

// Plan implements action.Action.
func (Checkpoint) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	items := func(p corev1.Pod) []string {
		var out []string
		for _, c := range p.Spec.Containers {
			out = append(out, "checkpoints/"+p.Namespace+"/"+p.Name+"/"+c.Name+".tar")
		}
		return out
	}
	return planPods(ctx, env, call, "kubelet checkpoint of every container", items, authzv1.ResourceAttributes{Verb: "create", Resource: "nodes", Subresource: "proxy"})
}

// Run implements action.Action.
func (c Checkpoint) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	pods, ex, s, err := execRun(ctx, env, call)
	if err != nil {
		return action.Result{}, err
	}
	var warnings []string
	for _, p := range pods {
		node, err := env.Kube.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return s.result(nil, nil), fmt.Errorf("get node %s: %w", p.Spec.NodeName, err)
		}
		port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
		if port == 0 {
			port = 10250
		}
		for _, ctr := range p.Spec.Containers {
			rel := "checkpoints/" + p.Namespace + "/" + p.Name + "/" + ctr.Name + ".tar"
			if s.has(rel) {
				continue
			}
			info := evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Namespace: p.Namespace, Pod: p.Name, Container: ctr.Name, Node: node.Name},
				Method: "kubelet checkpoint API via nodes/proxy, archive fetched by the node collector pod"}
			raw, err := env.Kube.CoreV1().RESTClient().Post().AbsPath("/api/v1/nodes", node.Name+":"+strconv.Itoa(int(port)), "proxy", "checkpoint", p.Namespace, p.Name, ctr.Name).Do(ctx).Raw()
			if err != nil {
				if ctx.Err() != nil {
					return s.result(nil, nil), err
				}
				reason := checkpointReason(err)
				warnings = append(warnings, fmt.Sprintf("checkpoint of %s/%s/%s not collected: %s", p.Namespace, p.Name, ctr.Name, reason))
				if err := s.notCollected(rel, info, reason); err != nil {
					return s.result(nil, nil), err
				}
				continue
			}
			var out struct {
				Items []string `json:"items"`
			}
			if err := json.Unmarshal(raw, &out); err != nil || len(out.Items) == 0 {
				if err := s.notCollected(rel, info, fmt.Sprintf("kubelet answered without an archive path: %.200s", raw)); err != nil {
					return s.result(nil, nil), err
				}
				continue
			}
			// The archive stays on the node: the collector pod reads it
			// through the host mount and it streams into the case.
			want := collectorPod(env, call.String("collector-namespace"), node.Name, call.String("collector-image"))
			if err := ensureCollector(ctx, env.Kube, want, call.Duration("start-timeout")); err != nil {
				return s.result(nil, nil), err
			}
			info.Source.Path = out.Items[0]
			if err := s.stream(ctx, rel, info, func(w io.Writer) error {
				return ex.Exec(ctx, want.Namespace, want.Name, "collector", []string{"cat", "/host" + out.Items[0]}, w)
			}); err != nil {
				return s.result(nil, nil), err
			}
			if !call.Bool("keep-collector") {
				if err := deleteCollector(ctx, env.Kube, want); err != nil {
					return s.result(nil, nil), err
				}
			}
		}
	}
	return s.result(nil, warnings), nil
}

func checkpointReason(err error) string {
	var code int32
	if se, ok := err.(apierrors.APIStatus); ok {
		code = se.Status().Code
	}
	switch code {
	case 404:
		return "kubelet has no checkpoint endpoint (404: ContainerCheckpoint feature gate off or kubelet too old): " + err.Error()
	case 500:
		return "kubelet could not checkpoint (500: runtime without CRIU support?): " + err.Error()
	}
	if code != 0 {
		return fmt.Sprintf("checkpoint request failed (HTTP %d): %v", code, err)
	}
	return "checkpoint request failed: " + err.Error()
}
