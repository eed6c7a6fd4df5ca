package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
)

// NodeFiles is collect.node-files.
type NodeFiles struct{}

// Spec implements action.Action.
func (NodeFiles) Spec() action.Spec {
	return action.Spec{
		Name: "collect.node-files",
		Doc: "Through the node collector pod and eksir's static collector: the selected pods' container logs from /var/log/pods on the node (current and rotated, compressed ones as they are), " +
			"the kubelet and containerd journals read from the journal files themselves (no journalctl needed), and optionally a memory image (AVML in the collector image), " +
			"each streamed over exec into the case and hashed as it streams: an image never sits in memory.",
		Kind:     action.Collect,
		Outputs:  captureOutputs(),
		Needs:    []action.Cloud{action.Kubernetes},
		Volatile: true,
		Params: append(append(targetParams(), collectorParams()...),
			action.Param{Name: "units", Type: action.StringList, Default: []string{"kubelet", "containerd"}, Doc: "systemd units whose journal entries to collect"},
			action.Param{Name: "memory", Type: action.Bool, Default: false, Doc: "acquire a memory image of the node with AVML (the collector image must hold avml)"}),
		Permissions: action.Permissions{Kube: append([]action.KubeRule{}, collectorRules...)},
		Notes:       nodeFilesNotes,
	}
}

// Plan implements action.Action.
func (NodeFiles) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	selected, err := Select(ctx, env.Kube, TargetFrom(call))
	if err != nil {
		return action.Plan{}, err
	}
	pods, gone, err := splitReachable(ctx, env.Kube, selected, false)
	if err != nil {
		return action.Plan{}, err
	}
	var p action.Plan
	// No collector pod is planned onto a Fargate node, not even as a dry run.
	allRecorded := planUncollectable(env, nodeFilesUncollectable(call, gone), &p)
	if len(pods) == 0 && len(gone) > 0 {
		p.Done = allRecorded
		return p, nil
	}
	if p.Checks, err = action.CheckAccess(ctx, env.Kube, collectorChecks...); err != nil {
		return p, err
	}
	admission, err := checkNodeCollectors(ctx, env, call, pods)
	if err != nil {
		return p, err
	}
	p.Changes = append(p.Changes, collectorPodChanges(env, call, pods, admission)...)
	for _, name := range nodesOf(pods) {
		p.Changes = append(p.Changes, action.Change{Verb: "collect", Object: "node " + name,
			Detail: fmt.Sprintf("journals of %s, /var/log/pods of the selected pods, memory=%v", strings.Join(call.Strings("units"), ", "), call.Bool("memory"))})
	}
	return p, nil
}

// podLogDir is the kubelet's log folder of a pod, relative to the node's
// root: /var/log/pods/<namespace>_<name>_<uid>. /var/log/containers only
// holds absolute symlinks into it, which resolve nowhere but on the host.
func podLogDir(p corev1.Pod) string {
	return "var/log/pods/" + p.Namespace + "_" + p.Name + "_" + string(p.UID)
}

// Run implements action.Action.
func (NodeFiles) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	selected, ex, s, err := execRun(ctx, env, call)
	if err != nil {
		return action.Result{}, err
	}
	pods, gone, err := splitReachable(ctx, env.Kube, selected, false)
	if err != nil {
		return action.Result{}, err
	}
	warnings, err := s.recordUncollectable(nodeFilesUncollectable(call, gone))
	if err != nil {
		return s.result(nil, warnings), err
	}
	for _, name := range nodesOf(pods) {
		node, err := env.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return s.result(nil, warnings), fmt.Errorf("get node %s: %w", name, err)
		}
		if err := nodeFiles(ctx, env, call, s, ex, node, pods, &warnings); err != nil {
			return s.result(nil, warnings), err
		}
	}
	return s.result(nil, warnings), nil
}

// nodeFilesUncollectable lists what collect.node-files would have written
// for the pods on Fargate nodes: each pod's log listing, and each node's
// journals and memory image. A pod not scheduled has no node to read, as
// before: it is not selected for node files at all.
func nodeFilesUncollectable(call action.Call, gone []unreachable) []uncollectable {
	var out []uncollectable
	nodes := map[string]bool{}
	for _, u := range gone {
		base := "node/" + u.node + "/"
		out = append(out, uncollectable{u, []string{base + "pods/" + path.Base(podLogDir(*u.pod)) + ".logs"}})
		if nodes[u.node] {
			continue
		}
		nodes[u.node] = true
		var rels []string
		for _, unit := range call.Strings("units") {
			rels = append(rels, base+"journal/"+unit+".jsonl")
		}
		if call.Bool("memory") {
			rels = append(rels, nodeMemoryRel(u.node))
		}
		if len(rels) > 0 {
			out = append(out, uncollectable{fargateNode(u.node), rels})
		}
	}
	return out
}

// journalDir is where the journal files of an EKS node live (persistent
// storage on Amazon Linux 2023), relative to the host root.
const journalDir = "var/log/journal"

func nodeFiles(ctx context.Context, env *action.Env, call action.Call, s *store, ex Executor, node *corev1.Node, pods []corev1.Pod, warnings *[]string) error {
	base := "node/" + node.Name + "/"
	src := evidence.Source{Cluster: env.Cluster, Node: node.Name}
	// What is known before the collector runs; a pod's log files are
	// known once its folder is listed.
	var items []planned
	for _, u := range call.Strings("units") {
		items = append(items, planned{rel: base + "journal/" + u + ".jsonl", src: src,
			args: []string{"journal", "--root", hostRoot, "--unit", u, journalDir},
			notes: func(n string) {
				// What was read is noise; a damaged file is worth a warning.
				for _, l := range strings.Split(n, "\n") {
					if !strings.Contains(l, " matched") {
						*warnings = append(*warnings, "journal of "+u+" on "+node.Name+": "+strings.TrimPrefix(l, "eksir-collector: journal: "))
					}
				}
			}})
	}
	var mine []corev1.Pod
	for _, p := range pods {
		if p.Spec.NodeName == node.Name {
			mine = append(mine, p)
		}
	}
	a, done, err := nodeAgent(ctx, env, call, ex, node)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		for _, p := range mine {
			items = append(items, planned{rel: base + "pods/" + path.Base(podLogDir(p)) + ".logs", src: src, args: []string{"list", "--root", hostRoot, podLogDir(p)}})
		}
		if call.Bool("memory") {
			items = append(items, planned{rel: base + "memory.lime", src: src, args: []string{"avml", "/dev/stdout"}})
		}
		if derr := done(); derr != nil {
			return derr
		}
		return runPlanned(ctx, s, items, func() (*agent, error) { return nil, err })
	}
	if err := runPlanned(ctx, s, items, func() (*agent, error) { return a, nil }); err != nil {
		return err
	}
	for _, p := range mine {
		if err := podLogFiles(ctx, s, a, base, src, p); err != nil {
			return err
		}
	}
	if call.Bool("memory") {
		if err := nodeMemory(ctx, s, ex, a, base+"memory.lime", src); err != nil {
			return err
		}
	}
	return done()
}

// nodeMemory acquires a memory image of the collector pod's node; it is
// collect.memory's node-pod method too. AVML writes the LiME image to
// stdout; it streams into the hashing writer as it arrives.
func nodeMemory(ctx context.Context, s *store, ex Executor, a *agent, rel string, src evidence.Source) error {
	return s.stream(ctx, rel, evidence.ItemInfo{Source: src, Method: "exec in " + a.where + ": avml /dev/stdout"}, func(w io.Writer) error {
		return ex.Exec(ctx, a.ns, a.pod, a.container, []string{"avml", "/dev/stdout"}, nil, w, nil)
	})
}

// listedFile is one entry of the collector's list document.
type listedFile struct {
	Path string `json:"path"`
	Type string `json:"type"`
}

// podLogFiles lists a pod's log folder on the node and streams each regular
// file into the case under the same relative path: rotated logs
// (0.log.20261130-101500) and compressed ones (.gz) as they are, so their
// hashes are those of the node's bytes.
func podLogFiles(ctx context.Context, s *store, a *agent, base string, src evidence.Source, p corev1.Pod) error {
	dir := podLogDir(p)
	listing := base + "pods/" + path.Base(dir) + ".logs"
	psrc := src
	psrc.Namespace, psrc.Pod, psrc.Path = p.Namespace, p.Name, "/"+dir
	var out limitedBuffer
	out.max = 4 << 20
	if err := a.ex.Exec(ctx, a.ns, a.pod, a.container, []string{a.path, "list", "--root", hostRoot, dir}, nil, &out, nil); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return s.notCollected(listing, evidence.ItemInfo{Source: psrc, Method: a.method([]string{"list", "--root", hostRoot, dir})}, err.Error())
	}
	files, err := parseListing(out.Bytes())
	if err != nil && out.Len() == out.max {
		err = fmt.Errorf("the listing of %s is over %d bytes, which no pod's log folder needs: %w", dir, out.max, err)
	}
	if err != nil {
		return s.notCollected(listing, evidence.ItemInfo{Source: psrc, Method: a.method([]string{"list", "--root", hostRoot, dir})}, err.Error())
	}
	for _, f := range files {
		rel := strings.TrimPrefix(f.Path, "var/log/")
		if f.Type != "file" || !strings.HasPrefix(f.Path, dir+"/") || evidence.ValidItemPath(rel) != nil {
			continue
		}
		fsrc := psrc
		fsrc.Path = "/" + f.Path
		if parts := strings.Split(strings.TrimPrefix(f.Path, dir+"/"), "/"); len(parts) == 2 {
			fsrc.Container = parts[0]
		}
		if _, err := a.artefact(ctx, s, base+rel, fsrc, "read", "--root", hostRoot, f.Path); err != nil {
			return err
		}
	}
	return nil
}

// parseListing reads the collector's list document.
func parseListing(b []byte) ([]listedFile, error) {
	var doc struct {
		Entries []listedFile `json:"entries"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("collector listing: %w", err)
	}
	return doc.Entries, nil
}
