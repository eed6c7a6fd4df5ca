package collect

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/awstarget"
)

// memoryNode is the node of collect.memory's node-pod method, as a pod
// placed on it: the node collector helpers work from selected pods.
func memoryNode(call action.Call) ([]corev1.Pod, string, error) {
	name := call.String("node")
	if name == "" {
		return nil, "", fmt.Errorf("%w: node: none given (hint: method node-pod runs on a node; give node)", action.ErrBadInput)
	}
	return []corev1.Pod{{Spec: corev1.PodSpec{NodeName: name}}}, name, nil
}

// nodeMemoryRel is the node-pod method's image, shared with
// collect.node-files.
func nodeMemoryRel(node string) string { return "node/" + node + "/memory.lime" }

// memoryUncollectable is the image no collector pod can take on a Fargate
// node, with the reason; nil for any other node.
func memoryUncollectable(n *corev1.Node) []uncollectable {
	if !awstarget.IsFargate(n) {
		return nil
	}
	return []uncollectable{{fargateNode(n.Name), []string{nodeMemoryRel(n.Name)}}}
}

func planNodeMemory(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	on, name, err := memoryNode(call)
	if err != nil {
		return action.Plan{}, err
	}
	node, err := env.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return action.Plan{}, fmt.Errorf("%w: node: %s: %w (hint: kubectl get nodes)", action.ErrBadInput, name, err)
	}
	var p action.Plan
	if gone := memoryUncollectable(node); gone != nil {
		// Not even a dry run of the collector pod onto a Fargate node.
		p.Done = planUncollectable(env, gone, &p)
		return p, nil
	}
	if p.Checks, err = action.CheckAccess(ctx, env.Kube, collectorChecks...); err != nil {
		return p, err
	}
	admission, err := checkNodeCollectors(ctx, env, call, on)
	if err != nil {
		return p, err
	}
	p.Changes = append(collectorPodChanges(env, call, on, admission),
		action.Change{Verb: "collect", Object: "node " + name, Detail: "memory image with AVML (the collector image must hold avml) into data/" + nodeMemoryRel(name)})
	return p, nil
}

// runNodeMemory is collect.node-files' memory capture, alone: the same
// collector pod and the same item, so the two actions never acquire twice.
func runNodeMemory(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	_, name, err := memoryNode(call)
	if err != nil {
		return action.Result{}, err
	}
	node, err := env.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return action.Result{}, fmt.Errorf("%w: node: %s: %w (hint: kubectl get nodes)", action.ErrBadInput, name, err)
	}
	if gone := memoryUncollectable(node); gone != nil {
		s := newStore(env)
		warnings, err := s.recordUncollectable(gone)
		return s.result(nil, warnings), err
	}
	kc, cfg, err := streaming(env)
	if err != nil {
		return action.Result{}, err
	}
	ex, s := remoteExec{kc: kc, cfg: cfg}, newStore(env)
	rel := nodeMemoryRel(name)
	if s.has(rel) {
		return s.result(nil, nil), nil
	}
	src := evidence.Source{Cluster: env.Cluster, Node: name}
	a, done, err := nodeAgent(ctx, env, call, ex, node)
	if err != nil {
		if ctx.Err() != nil {
			return s.result(nil, nil), err
		}
		if derr := done(); derr != nil {
			return s.result(nil, nil), derr
		}
		return s.result(nil, nil), s.notCollected(rel, evidence.ItemInfo{Source: src, Method: "node collector pod: avml /dev/stdout"}, err.Error())
	}
	if err := nodeMemory(ctx, s, ex, a, rel, src); err != nil {
		return s.result(nil, nil), err
	}
	return s.result(nil, nil), done()
}
