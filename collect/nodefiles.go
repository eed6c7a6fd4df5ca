package collect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
)

// NodeFiles is collect.node-files.
type NodeFiles struct{}

// Spec implements action.Action.
func (NodeFiles) Spec() action.Spec {
	return action.Spec{
		Name: "collect.node-files",
		Doc: "Through the node collector pod: kubelet and container runtime journals, the /var/log/containers files of the selected pods, and optionally a memory image " +
			"(AVML in the privileged pod), each streamed over exec into the case and hashed as it streams: an image never sits in memory.",
		Kind:     action.Collect,
		Outputs:  captureOutputs(),
		Needs:    []action.Cloud{action.Kubernetes},
		Volatile: true,
		Params: append(append(targetParams(), collectorParams()...),
			action.Param{Name: "memory", Type: action.Bool, Default: false, Doc: "acquire a memory image of the node with AVML"}),
		Permissions: action.Permissions{Kube: append([]action.KubeRule{}, collectorRules...)},
		Notes:       nodeFilesNotes,
	}
}

// Plan implements action.Action.
func (NodeFiles) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	pods, err := Select(ctx, env.Kube, TargetFrom(call))
	if err != nil {
		return action.Plan{}, err
	}
	var p action.Plan
	if p.Checks, err = action.CheckAccess(ctx, env.Kube, collectorChecks...); err != nil {
		return p, err
	}
	for _, n := range nodesOf(pods) {
		p.Changes = append(p.Changes, action.Change{Verb: "collect", Object: "node " + n, Detail: fmt.Sprintf("journals, container logs, memory=%v", call.Bool("memory"))})
	}
	return p, nil
}

// Run implements action.Action.
func (NodeFiles) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	pods, ex, s, err := execRun(ctx, env, call)
	if err != nil {
		return action.Result{}, err
	}
	for _, node := range nodesOf(pods) {
		want := collectorPod(env, call.String("collector-namespace"), node, call.String("collector-image"))
		if err := ensureCollector(ctx, env.Kube, want, call.Duration("start-timeout")); err != nil {
			return s.result(nil, nil), err
		}
		src := evidence.Source{Cluster: env.Cluster, Node: node}
		run := func(rel, method string, cmd ...string) error {
			return s.stream(ctx, rel, evidence.ItemInfo{Source: src, Method: "exec in node collector pod: " + method}, func(w io.Writer) error {
				return ex.Exec(ctx, want.Namespace, want.Name, "collector", cmd, w)
			})
		}
		base := "node/" + node + "/"
		for _, unit := range []string{"kubelet", "containerd"} {
			if err := run(base+unit+".journal.txt", "journalctl -u "+unit, "journalctl", "--directory=/host/var/log/journal", "-u", unit, "--no-pager", "-o", "short-iso-precise"); err != nil {
				return s.result(nil, nil), err
			}
		}
		for _, p := range pods {
			if p.Spec.NodeName != node {
				continue
			}
			// kubelet names the files <pod>_<namespace>_<container>-<id>.log.
			prefix := p.Name + "_" + p.Namespace + "_"
			var list bytes.Buffer
			err := ex.Exec(ctx, want.Namespace, want.Name, "collector", []string{"ls", "/host/var/log/containers/"}, &list)
			if err != nil {
				if ctx.Err() != nil {
					return s.result(nil, nil), err
				}
				if err := s.notCollected(base+"containers/"+prefix+"logs", evidence.ItemInfo{Source: src, Method: "ls /var/log/containers"}, err.Error()); err != nil {
					return s.result(nil, nil), err
				}
				continue
			}
			sc := bufio.NewScanner(&list)
			for sc.Scan() {
				f := strings.TrimSpace(sc.Text())
				if !strings.HasPrefix(f, prefix) || strings.Contains(f, "/") {
					continue
				}
				if err := run(base+"containers/"+f, "cat /var/log/containers/"+f, "cat", "/host/var/log/containers/"+f); err != nil {
					return s.result(nil, nil), err
				}
			}
		}
		if call.Bool("memory") {
			// AVML writes the LiME image to stdout; it streams into the
			// hashing writer as it arrives.
			if err := run(base+"memory.lime", "avml /dev/stdout", "avml", "/dev/stdout"); err != nil {
				return s.result(nil, nil), err
			}
		}
		if !call.Bool("keep-collector") {
			if err := deleteCollector(ctx, env.Kube, want); err != nil {
				return s.result(nil, nil), err
			}
		}
	}
	return s.result(nil, nil), nil
}
