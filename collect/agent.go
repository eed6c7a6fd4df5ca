package collect

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/minio/sha256-simd"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
)

// CollectorDirEnv names the folder holding the static collector binaries
// (eksir-collector-linux-<arch>); without it eksir looks beside its own
// executable, where `make build` and a release archive put them.
const CollectorDirEnv = "EKSIR_COLLECTOR_DIR"

// collectorBinary is one static collector build, read once per process.
type collectorBinary struct {
	path, sha256 string
	data         []byte
}

var binaries sync.Map // arch -> *collectorBinary

// findCollector returns the collector built for a node's architecture. The
// whole binary (a few MB) is kept in memory: it is sent once per collector
// pod, and its hash must be the hash of what is sent.
func findCollector(arch string) (*collectorBinary, error) {
	if b, ok := binaries.Load(arch); ok {
		return b.(*collectorBinary), nil
	}
	dir := os.Getenv(CollectorDirEnv)
	if dir == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("locate the collector: %w", err)
		}
		dir = filepath.Dir(exe)
	}
	p := filepath.Join(dir, "eksir-collector-linux-"+arch)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, &CollectorMissingError{Path: p, Err: err}
	}
	sum := sha256.Sum256(data)
	b := &collectorBinary{path: p, sha256: hex.EncodeToString(sum[:]), data: data}
	actual, _ := binaries.LoadOrStore(arch, b)
	return actual.(*collectorBinary), nil
}

// CollectorMissingError says the static collector for a node's
// architecture is not where eksir looks for it.
type CollectorMissingError struct {
	Path string
	Err  error
}

func (e *CollectorMissingError) Error() string {
	return fmt.Sprintf("static collector %s: %v (hint: `make build` writes bin/eksir-collector-linux-amd64 and -arm64 beside bin/eksir; keep them beside eksir or set %s)",
		e.Path, e.Err, CollectorDirEnv)
}

func (e *CollectorMissingError) Unwrap() error { return e.Err }

// nodeArch is the architecture the node reports (kubelet's node info, else
// the well-known label); amd64 when neither says.
func nodeArch(n *corev1.Node) string {
	if a := n.Status.NodeInfo.Architecture; a != "" {
		return a
	}
	if a := n.Labels[corev1.LabelArchStable]; a != "" {
		return a
	}
	return "amd64"
}

// installScript writes the collector's size bytes from stdin to a
// content-addressed path under the container's TMPDIR and prints that path:
// the image needs only sh, head, chmod and mv. It reads exactly size bytes
// rather than up to end of input, because not every runtime closes an
// exec's stdin when the client does (kwok does not). The part file keeps a
// half-written binary from ever being run; it carries the shell's PID
// because two steps may deliver into one filesystem at once (a node whose
// collector pods share a TMPDIR, as the lab's node view does), and the
// rename is atomic either way.
func installScript(sum string, size int) string {
	return fmt.Sprintf(`set -e
umask 077
f="${TMPDIR:-/tmp}/eksir-collector-%s"
head -c %d > "$f.$$.part"
chmod 700 "$f.$$.part"
mv -f "$f.$$.part" "$f"
printf '%%s\n' "$f"`, sum[:16], size)
}

// agent is the static collector delivered into one container, ready to
// run artefacts.
type agent struct {
	ex                  Executor
	ns, pod, container  string
	path, sha256, where string
	version             string
}

// deliverAgent writes the collector into the container over exec stdin and
// checks, by asking the binary for its own SHA-256, that what runs there is
// what was sent.
func deliverAgent(ctx context.Context, ex Executor, ns, pod, container, where string, bin *collectorBinary) (*agent, error) {
	// What the node answers is untrusted: a path, kept short.
	out := &limitedBuffer{max: 4096}
	if err := ex.Exec(ctx, ns, pod, container, []string{"sh", "-c", installScript(bin.sha256, len(bin.data))}, bytes.NewReader(bin.data), out, nil); err != nil {
		return nil, fmt.Errorf("deliver the collector into %s/%s (%s) over exec stdin: %w", ns, pod, container, err)
	}
	path := strings.TrimSpace(out.String())
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "\n\x00") {
		return nil, fmt.Errorf("deliver the collector into %s/%s: the install script printed %q, not a path", ns, pod, path)
	}
	v, err := agentVersion(ctx, ex, ns, pod, container, path)
	if err != nil {
		return nil, err
	}
	if v.SHA256 != bin.sha256 {
		return nil, fmt.Errorf("the collector in %s/%s hashes to %q, eksir sent %s: the binary was altered in transit or on the node", ns, pod, v.SHA256, bin.sha256)
	}
	return &agent{ex: ex, ns: ns, pod: pod, container: container, path: path, sha256: bin.sha256, where: where, version: v.Version}, nil
}

// artefact runs one collector command and streams its output (one JSON
// document, JSON lines for a journal, raw bytes for read) into the case at
// rel. It returns what the collector said on stderr, trimmed: its notes
// (what a journal export read, where a damaged file stopped).
func (a *agent) artefact(ctx context.Context, s *store, rel string, src evidence.Source, args ...string) (string, error) {
	info := evidence.ItemInfo{Source: src, Method: a.method(args)}
	notes := &limitedBuffer{max: 4096}
	err := s.stream(ctx, rel, info, func(w io.Writer) error {
		notes.Reset()
		return a.ex.Exec(ctx, a.ns, a.pod, a.container, append([]string{a.path}, args...), nil, w, notes)
	})
	return strings.TrimSpace(notes.String()), err
}

// method is the custody description of one collector run.
func (a *agent) method(args []string) string {
	return fmt.Sprintf("eksir-collector %s (sha256 %s) `%s` in %s", a.version, a.sha256, strings.Join(args, " "), a.where)
}

// planned is an item a capture means to write, with what writes it.
type planned struct {
	rel  string
	src  evidence.Source
	args []string
	// notes, when set, receives what the collector said on stderr.
	notes func(string)
}

// runPlanned delivers the collector (through deliver) and writes every
// planned item; when the collector cannot be delivered every item not yet in
// the case is recorded not collected with that reason, so the capture gate
// names each of them.
func runPlanned(ctx context.Context, s *store, items []planned, deliver func() (*agent, error)) error {
	var todo []planned
	for _, it := range items {
		if !s.has(it.rel) {
			todo = append(todo, it)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	a, err := deliver()
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		for _, it := range todo {
			if err := s.notCollected(it.rel, evidence.ItemInfo{Source: it.src, Method: "eksir-collector " + strings.Join(it.args, " ")}, err.Error()); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range todo {
		notes, err := a.artefact(ctx, s, it.rel, it.src, it.args...)
		if err != nil {
			return err
		}
		if it.notes != nil && notes != "" {
			it.notes(notes)
		}
	}
	return nil
}

// nodeAgent starts (or finds) the node's collector pod and readies the
// collector in it: delivered over exec stdin, or the one baked into the
// image. done deletes the pod unless the call keeps it.
func nodeAgent(ctx context.Context, env *action.Env, call action.Call, ex Executor, node *corev1.Node) (a *agent, done func() error, err error) {
	want := collectorPod(env, call, node.Name)
	done = func() error {
		if call.Bool("keep-collector") {
			return nil
		}
		return deleteCollector(ctx, env.Kube, want)
	}
	if err := ensureCollector(ctx, env.Kube, want, call.Duration("start-timeout")); err != nil {
		return nil, done, err
	}
	where := "node collector pod " + want.Namespace + "/" + want.Name + " (hostPID, hostNetwork) on " + node.Name
	a, err = readyAgent(ctx, call, ex, want.Namespace, want.Name, "collector", where, nodeArch(node))
	return a, done, err
}

// readyAgent makes the collector runnable in a container: delivered, or
// found in the image.
func readyAgent(ctx context.Context, call action.Call, ex Executor, ns, pod, container, where, arch string) (*agent, error) {
	if call.String("collector-delivery") == DeliveryImage {
		return bakedAgent(ctx, ex, ns, pod, container, where)
	}
	bin, err := findCollector(arch)
	if err != nil {
		return nil, err
	}
	return deliverAgent(ctx, ex, ns, pod, container, where, bin)
}

// bakedAgent uses the collector of an image built with `make
// collector-image`; its hash is recorded as the binary reports it (the
// image digest vouches for it).
func bakedAgent(ctx context.Context, ex Executor, ns, pod, container, where string) (*agent, error) {
	v, err := agentVersion(ctx, ex, ns, pod, container, bakedCollector)
	if err != nil {
		return nil, err
	}
	return &agent{ex: ex, ns: ns, pod: pod, container: container, path: bakedCollector, sha256: v.SHA256, where: where, version: v.Version}, nil
}

// agentVersionDoc is what eksir reads of the collector's version
// document: the envelope every document carries names the binary.
type agentVersionDoc struct {
	Version string
	SHA256  string
}

func agentVersion(ctx context.Context, ex Executor, ns, pod, container, path string) (agentVersionDoc, error) {
	// A version document is small; a node that streams more is not
	// answering with the eksir collector.
	out := &limitedBuffer{max: 64 << 10}
	var v agentVersionDoc
	if err := ex.Exec(ctx, ns, pod, container, []string{path, "version"}, nil, out, nil); err != nil {
		return v, fmt.Errorf("run the collector in %s/%s: %w", ns, pod, err)
	}
	var doc struct {
		Collector struct {
			Version string `json:"version"`
			SHA256  string `json:"sha256"`
		} `json:"collector"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Collector.SHA256 == "" {
		return v, fmt.Errorf("collector version in %s/%s: not the eksir collector (%v; output %.200q)", ns, pod, err, out.String())
	}
	return agentVersionDoc{Version: doc.Collector.Version, SHA256: doc.Collector.SHA256}, nil
}

// checkNodeCollectors fails a plan, before anything changes, when the
// collector for a selected pod's node is missing or the cluster would not
// admit the node collector pod (a server dry run, which Pod Security
// admission answers); it returns what admitted the pod.
func checkNodeCollectors(ctx context.Context, env *action.Env, call action.Call, pods []corev1.Pod) (string, error) {
	m := methodChoice{admission: map[string]string{}}
	for _, name := range nodesOf(pods) {
		n, err := env.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("get node %s: %w", name, err)
		}
		m.nodes = append(m.nodes, n)
		if call.String("collector-delivery") == DeliveryImage {
			continue
		}
		if _, err := findCollector(nodeArch(n)); err != nil {
			return "", err
		}
	}
	if err := admitNodePods(ctx, env, call, m); err != nil {
		return "", err
	}
	return m.admission[call.String("collector-namespace")], nil
}

// collectorPodChanges are the plan lines of the node collector pods a step
// creates, with what each can do on its node.
func collectorPodChanges(env *action.Env, call action.Call, pods []corev1.Pod, admission string) []action.Change {
	var out []action.Change
	for _, n := range nodesOf(pods) {
		want := collectorPod(env, call, n)
		detail := "on node " + n + ": privileged, hostPID, hostNetwork, host / read-only, " + kubeletCheckpoints + " read-write, tolerates every taint; deleted after the step"
		if admission != "" {
			detail += "; " + admission
		}
		out = append(out, action.Change{Verb: "create", Object: "pod " + want.Namespace + "/" + want.Name, Detail: detail})
	}
	return out
}
