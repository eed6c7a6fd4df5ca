package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

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
		Doc: "Checkpoint each container through the kubelet checkpoint API (POST nodes/<node>:<port>/proxy/checkpoint/<ns>/<pod>/<container>), copy the archive into the case " +
			"through the node collector pod, then remove it from the node (it holds the container's memory); when the kubelet answers 404 or 500 (feature gate off, runtime without CRIU) record not-collected with the reason and go on.",
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
	pods, err := Select(ctx, env.Kube, TargetFrom(call))
	if err != nil {
		return action.Plan{}, err
	}
	admission, err := checkNodeCollectors(ctx, env, call, pods)
	if err != nil {
		return action.Plan{}, err
	}
	p, err := planPods(ctx, env, call, "kubelet checkpoint of every container: the archive is copied into the case, then removed from the node (it holds the container's memory)", items, authzv1.ResourceAttributes{Verb: "create", Resource: "nodes", Subresource: "proxy"})
	if err == nil && !p.Done {
		p.Changes = append(collectorPodChanges(env, call, pods, admission), p.Changes...)
	}
	return p, err
}

// Run implements action.Action.
func (c Checkpoint) Run(ctx context.Context, env *action.Env, call action.Call) (res action.Result, err error) {
	pods, ex, s, err := execRun(ctx, env, call)
	if err != nil {
		return action.Result{}, err
	}
	var warnings []string
	agents := map[string]*agent{}
	var cleanups []func() error
	defer func() {
		for _, done := range cleanups {
			if derr := done(); derr != nil && err == nil {
				err = derr
			}
		}
		res = s.result(nil, warnings)
	}()
	agentOn := func(node *corev1.Node) (*agent, error) {
		if a := agents[node.Name]; a != nil {
			return a, nil
		}
		a, done, err := nodeAgent(ctx, env, call, ex, node)
		cleanups = append(cleanups, done)
		if err != nil {
			return nil, err
		}
		agents[node.Name] = a
		return a, nil
	}
	for _, p := range pods {
		node, err := env.Kube.CoreV1().Nodes().Get(ctx, p.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return res, fmt.Errorf("get node %s: %w", p.Spec.NodeName, err)
		}
		port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
		if port == 0 {
			port = 10250
		}
		for _, ctr := range p.Spec.Containers {
			rel := "checkpoints/" + p.Namespace + "/" + p.Name + "/" + ctr.Name + ".tar"
			info := evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Namespace: p.Namespace, Pod: p.Name, Container: ctr.Name, Node: node.Name},
				Method: "kubelet checkpoint API via nodes/proxy, archive read from the node by eksir-collector"}
			if s.has(rel) {
				// Collected before a crash: the archive may still be on the node.
				if w, err := removeCheckpoint(ctx, env, s, rel, agentOn, node); err != nil {
					return res, err
				} else if w != "" {
					warnings = append(warnings, w)
				}
				continue
			}
			raw, err := env.Kube.CoreV1().RESTClient().Post().AbsPath("/api/v1/nodes", node.Name+":"+strconv.Itoa(int(port)), "proxy", "checkpoint", p.Namespace, p.Name, ctr.Name).Do(ctx).Raw()
			if err != nil {
				if ctx.Err() != nil {
					return res, err
				}
				reason := checkpointReason(err)
				warnings = append(warnings, fmt.Sprintf("checkpoint of %s/%s/%s not collected: %s", p.Namespace, p.Name, ctr.Name, reason))
				if err := s.notCollected(rel, info, reason); err != nil {
					return res, err
				}
				continue
			}
			var out struct {
				Items []string `json:"items"`
			}
			if err := json.Unmarshal(raw, &out); err != nil || len(out.Items) == 0 || !path.IsAbs(out.Items[0]) {
				if err := s.notCollected(rel, info, fmt.Sprintf("kubelet answered without an archive path: %.200s", raw)); err != nil {
					return res, err
				}
				continue
			}
			a, err := agentOn(node)
			if err != nil {
				if ctx.Err() != nil {
					return res, err
				}
				if err := s.notCollected(rel, info, err.Error()); err != nil {
					return res, err
				}
				continue
			}
			info.Source.Path = out.Items[0]
			root, name := checkpointLocation(out.Items[0])
			if _, err := a.artefact(ctx, s, rel, info.Source, "read", "--root", root, name); err != nil {
				return res, err
			}
			if w, err := removeCheckpoint(ctx, env, s, rel, agentOn, node); err != nil {
				return res, err
			} else if w != "" {
				warnings = append(warnings, w)
			}
		}
	}
	return res, nil
}

// checkpointLocation names an archive the kubelet wrote, for the
// collector: inside the kubelet's checkpoint folder (read-write in the
// collector pod, so the archive can be removed), else on the read-only host
// mount.
func checkpointLocation(p string) (root, name string) {
	if rest, ok := strings.CutPrefix(path.Clean(p), kubeletCheckpoints+"/"); ok {
		return checkpointRoot, rest
	}
	return hostRoot, strings.TrimPrefix(path.Clean(p), "/")
}

// removeCheckpoint removes a collected checkpoint archive from the node: it
// holds the container's memory (secrets included) and must not stay there.
// The collector removes the file only if it still hashes to the item's
// SHA-256, and its answer is kept as an item beside the archive
// (<archive>.removed.json), so the case records both the copy and the
// removal. It returns a warning when the archive cannot be removed.
func removeCheckpoint(ctx context.Context, env *action.Env, s *store, rel string, agentOn func(*corev1.Node) (*agent, error), node *corev1.Node) (string, error) {
	removed := rel + ".removed.json"
	if s.has(removed) {
		return "", nil
	}
	it, ok := env.Evidence.Lookup(rel)
	if !ok || it.SHA256 == "" || it.Source.Path == "" {
		return "", nil
	}
	root, name := checkpointLocation(it.Source.Path)
	if root != checkpointRoot {
		return fmt.Sprintf("checkpoint archive %s on node %s is outside %s and was left there (it holds the container's memory): remove it by hand", it.Source.Path, node.Name, kubeletCheckpoints), nil
	}
	a, err := agentOn(node)
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return fmt.Sprintf("checkpoint archive %s left on node %s: %v", it.Source.Path, node.Name, err), nil
	}
	src := it.Source
	if _, err := a.artefact(ctx, s, removed, src, "remove", "--root", checkpointRoot, "--sha256", it.SHA256, name); err != nil {
		return "", err
	}
	if !s.has(removed) {
		return fmt.Sprintf("checkpoint archive %s could not be removed from node %s (see data/%s): it holds the container's memory", it.Source.Path, node.Name, removed), nil
	}
	return "", nil
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
		return "kubelet could not checkpoint (500: the container runtime cannot checkpoint; containerd needs CRIU, which most EKS AMIs lack): " + err.Error()
	}
	if code != 0 {
		return fmt.Sprintf("checkpoint request failed (HTTP %d): %v", code, err)
	}
	return "checkpoint request failed: " + err.Error()
}
