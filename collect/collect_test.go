package collect_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/labtest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

type fixture struct {
	lab      *labtest.Env
	env      *action.Env
	c        *evidence.Case
	ns, pod  string
	node     string
	nodeView string
	registry *action.Registry
}

// setup seeds crypto-miner and returns an Env whose client is a
// ServiceAccount bound to the ClusterRole generated from the collect specs.
func setup(t testing.TB, nodes, perNode int) *fixture {
	t.Helper()
	s := labtest.SeedScenario(t, nodes, perNode, collect.Register)
	return &fixture{lab: s.Lab, env: s.Env, c: s.Case, ns: s.NS, pod: s.Pod, node: s.Node, nodeView: s.NodeView, registry: s.Registry}
}

// setupCase returns a copy of f's Env with a fresh, empty case.
func setupCase(t testing.TB, f *fixture) *action.Env {
	t.Helper()
	env := *f.env
	env.Evidence = labtest.NewCase(t, f.env.Incident)
	return &env
}

func (f *fixture) run(t testing.TB, name string, params map[string]any) action.Result {
	t.Helper()
	a, ok := f.registry.Lookup(name)
	if !ok {
		t.Fatalf("no action %s", name)
	}
	// Defaults as the engine applies them.
	for _, p := range a.Spec().Params {
		if _, ok := params[p.Name]; !ok && p.Default != nil {
			params[p.Name] = p.Default
		}
	}
	call := action.Call{Step: "test", Params: params}
	plan, err := a.Plan(t.Context(), f.env, call)
	if err != nil {
		t.Fatalf("%s plan: %v", name, err)
	}
	for _, c := range plan.Checks {
		if !c.Allowed {
			t.Errorf("%s plan: %s not allowed: %s", name, c.Permission, c.Reason)
		}
	}
	res, err := a.Run(t.Context(), f.env, call)
	if err != nil {
		t.Fatalf("%s run: %v", name, err)
	}
	return res
}

func (f *fixture) item(t testing.TB, rel string) evidence.Item {
	t.Helper()
	for _, it := range f.c.Items() {
		if it.Path == "data/"+rel {
			return it
		}
	}
	var have []string
	for _, it := range f.c.Items() {
		have = append(have, it.Path)
	}
	t.Fatalf("no item %s; have %v", rel, have)
	return evidence.Item{}
}

func (f *fixture) read(t testing.TB, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.c.Dir(), "data", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestObjects(t *testing.T) {
	f := setup(t, 2, 2)
	res := f.run(t, "collect.k8s-objects", map[string]any{"pod": f.ns + "/" + f.pod})
	base := "k8s/" + f.ns + "/pods/" + f.pod + "/"
	for _, rel := range []string{base + "pod.json", base + "events.json", base + "services.json", base + "endpointslices.json", base + "references.json",
		"k8s/nodes/" + f.node + "/node.json", "k8s/nodes/" + f.node + "/events.json", "k8s/" + f.ns + "/networkpolicies.json",
		"k8s/" + f.ns + "/serviceaccounts/checkout-api.json", "k8s/" + f.ns + "/serviceaccounts/checkout-api.rbac.json"} {
		if it := f.item(t, rel); it.Status != evidence.StatusCollected || it.SHA256 == "" {
			t.Errorf("%s: %+v", rel, it)
		}
	}
	owners := 0
	for _, it := range f.c.Items() {
		if strings.HasPrefix(it.Path, "data/"+base+"owners/") {
			owners++
		}
	}
	if owners != 2 {
		t.Errorf("owner chain: %d objects, want ReplicaSet and Deployment", owners)
	}
	rbac := f.read(t, "k8s/"+f.ns+"/serviceaccounts/checkout-api.rbac.json")
	if !strings.Contains(rbac, `"view"`) || !strings.Contains(rbac, `"secrets"`) {
		t.Errorf("rbac grants miss the view binding or the role's rules: %.500s", rbac)
	}
	if svc := f.read(t, base+"services.json"); !strings.Contains(svc, `"checkout-api"`) || strings.Contains(svc, `"frontend"`) {
		t.Errorf("services: %.300s", svc)
	}
	if np := f.read(t, "k8s/"+f.ns+"/networkpolicies.json"); !strings.Contains(np, "allow-frontend-to-checkout-api") {
		t.Errorf("networkpolicies: %.300s", np)
	}
	n := len(f.c.Items())
	if plan, err := (collect.Objects{}).Plan(t.Context(), f.env, action.Call{Params: map[string]any{"pod": f.ns + "/" + f.pod}}); err != nil || !plan.Done {
		t.Errorf("plan after run: done=%v err=%v %v", plan.Done, err, plan.Changes)
	}
	res2 := f.run(t, "collect.k8s-objects", map[string]any{"pod": f.ns + "/" + f.pod})
	if len(res2.Items) != 0 || len(f.c.Items()) != n {
		t.Errorf("second run wrote %v", res2.Items)
	}
	t.Logf("%d items", len(res.Items))
}

func TestPodLogs(t *testing.T) {
	f := setup(t, 2, 2)
	f.run(t, "collect.pod-logs", map[string]any{"workload": f.ns + "/Deployment/checkout-api"})
	log := f.read(t, "logs/"+f.ns+"/"+f.pod+"/checkout-api.log")
	if !strings.Contains(log, "xmrig") {
		t.Errorf("suspect log lacks the miner: %.400s", log)
	}
	first := strings.SplitN(log, " ", 2)[0]
	if _, err := time.Parse(time.RFC3339Nano, first); err != nil {
		t.Errorf("log lines lack timestamps: %q", first)
	}
	siblings := 0
	for _, it := range f.c.Items() {
		if strings.HasPrefix(it.Path, "data/logs/"+f.ns+"/checkout-api-") {
			siblings++
		}
	}
	if siblings != 2 {
		t.Errorf("workload selection collected %d logs, want both replicas", siblings)
	}
	if plan, err := (collect.PodLogs{}).Plan(t.Context(), f.env, action.Call{Params: map[string]any{"workload": f.ns + "/Deployment/checkout-api"}}); err != nil || !plan.Done {
		t.Errorf("plan after run: done=%v err=%v %v", plan.Done, err, plan.Changes)
	}
	if res := f.run(t, "collect.pod-logs", map[string]any{"workload": f.ns + "/Deployment/checkout-api"}); len(res.Items) != 0 {
		t.Errorf("second run wrote %v", res.Items)
	}
}

// volatileDocs are the parts of the collector's documents these tests read.
type volatileDocs struct {
	Collector struct {
		SHA256 string `json:"sha256"`
	} `json:"collector"`
	Processes []struct {
		PID         int      `json:"pid"`
		Comm        string   `json:"comm"`
		PodUID      string   `json:"pod_uid"`
		ContainerID string   `json:"container_id"`
		Selected    bool     `json:"selected"`
		ExeDeleted  bool     `json:"exe_deleted"`
		ExeSHA256   string   `json:"exe_sha256"`
		Cmdline     []string `json:"cmdline"`
		Names       []string `json:"names"`
	} `json:"processes"`
	NetNamespaces []struct {
		PIDs    []int `json:"pids"`
		Sockets []struct {
			Proto, Local, Remote, State string
			Owners                      []struct {
				PID int `json:"pid"`
			} `json:"owners"`
		} `json:"sockets"`
	} `json:"network_namespaces"`
}

func (f *fixture) doc(t *testing.T, rel string) volatileDocs {
	t.Helper()
	var d volatileDocs
	if err := json.Unmarshal([]byte(f.read(t, rel)), &d); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return d
}

// The real static collector, delivered over exec stdin and run through
// kwok's exec, captures a real process standing in for the suspect's
// container (its own PID and network namespaces, a pod-style cgroup, its
// executable deleted, a TCP connection to the pool): the case names the
// process, its pod and container, and the connection under it; the node's
// own sockets stay out of the pod's document; every item was written by
// eksir-collector (no ps, ss or cat in any image).
func TestVolatileNodePod(t *testing.T) {
	f := setup(t, 2, 2)
	pod, err := f.lab.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), f.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	miner := labtest.StartPodProcess(t, "xmrig", string(pod.UID), "10.0.1.23:0", "203.0.113.50:3333")
	// A socket of the node's own network namespace.
	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	res := f.run(t, "collect.volatile", map[string]any{"pod": f.ns + "/" + f.pod})
	if res.Outputs["complete"] != true || res.Outputs["method"] != collect.MethodNodePod {
		t.Fatalf("outputs: %v", res.Outputs)
	}
	base := "volatile/" + f.ns + "/" + f.pod + "/"
	procs := f.doc(t, base+"processes.json")
	var selected []int
	for _, p := range procs.Processes {
		if p.Selected {
			selected = append(selected, p.PID)
			if p.PID != miner.PodPID || p.Comm != "xmrig" || p.PodUID != string(pod.UID) || p.ContainerID != miner.ContainerID || !p.ExeDeleted || p.ExeSHA256 == "" {
				t.Errorf("suspect process: %+v, want pid %d, pod %s, container %s, deleted exe", p, miner.PodPID, pod.UID, miner.ContainerID)
			}
		}
	}
	if len(selected) != 1 || len(procs.Processes) < 10 {
		t.Errorf("selected %v of %d processes, want only the miner (pid %d)", selected, len(procs.Processes), miner.PodPID)
	}
	socks := f.doc(t, base+"sockets.json")
	if len(socks.NetNamespaces) != 1 {
		t.Fatalf("%d network namespaces for the pod, want its own", len(socks.NetNamespaces))
	}
	var toPool, fromPool bool
	for _, s := range socks.NetNamespaces[0].Sockets {
		if strings.HasSuffix(s.Local, fmt.Sprint(host.Addr().(*net.TCPAddr).Port)) {
			t.Errorf("the node's socket %s is in the pod's document", s.Local)
		}
		owned := len(s.Owners) == 1 && s.Owners[0].PID == miner.PodPID
		if s.Proto == "tcp" && s.State == "ESTABLISHED" && s.Local == miner.Local && s.Remote == miner.Remote {
			toPool = owned
		}
		if s.Proto == "tcp" && s.State == "ESTABLISHED" && s.Local == miner.Remote && s.Remote == miner.Local {
			fromPool = owned
		}
	}
	if !toPool || !fromPool {
		t.Errorf("connection %s -> %s under pid %d: out %v, in %v; sockets %+v", miner.Local, miner.Remote, miner.PodPID, toPool, fromPool, socks.NetNamespaces[0].Sockets)
	}
	node := f.doc(t, "volatile/nodes/"+f.node+"/sockets.json")
	found := false
	for _, ns := range node.NetNamespaces {
		for _, s := range ns.Sockets {
			if strings.Contains(s.Local, miner.Remote) || strings.Contains(s.Remote, miner.Remote) {
				t.Errorf("the pod's connection is in the node's document: %+v", s)
			}
			found = found || s.Local == host.Addr().String()
		}
	}
	if !found {
		t.Errorf("the node's listener %s is not in the node's document", host.Addr())
	}
	env := f.doc(t, base+"environ.json")
	for _, p := range env.Processes {
		for _, n := range p.Names {
			if strings.Contains(n, "=") {
				t.Errorf("environment value leaked: %q", n)
			}
		}
	}
	for _, it := range f.c.Items() {
		if it.Status != evidence.StatusCollected || !strings.HasPrefix(it.Method, "eksir-collector ") || !strings.Contains(it.Method, procs.Collector.SHA256) {
			t.Errorf("%s: %s, method %q", it.Path, it.Status, it.Method)
		}
	}
	// The collector pod is gone afterwards.
	pods, err := f.lab.Kube.Typed.CoreV1().Pods("kube-system").List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=eksir-collector"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == f.node && p.DeletionTimestamp == nil {
			t.Errorf("collector pod %s left running", p.Name)
		}
	}
}

func TestCheckpointNotSupported(t *testing.T) {
	f := setup(t, 1, 2)
	res := f.run(t, "collect.checkpoint", map[string]any{"pod": f.ns + "/" + f.pod})
	it := f.item(t, "checkpoints/"+f.ns+"/"+f.pod+"/checkout-api.tar")
	if it.Status != evidence.StatusNotCollected || it.Reason == "" {
		t.Errorf("checkpoint item: %+v", it)
	}
	if len(res.Warnings) == 0 {
		t.Error("no warning for the missing checkpoint")
	}
	t.Logf("reason: %s", it.Reason)
}

// Container logs come from /var/log/pods as the lab lays it out like an EKS
// node (absolute symlinks in /var/log/containers, a rotated file and a
// gzipped one): every file arrives with the node's bytes. The journals come
// from the journal files themselves; memory from avml in the image.
func TestNodeFiles(t *testing.T) {
	f := setup(t, 1, 2)
	res := f.run(t, "collect.node-files", map[string]any{"pod": f.ns + "/" + f.pod, "memory": true})
	if res.Outputs["complete"] != true {
		t.Fatalf("outputs: %v", res.Outputs)
	}
	pod, err := f.lab.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), f.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := "var/log/pods/" + f.ns + "_" + f.pod + "_" + string(pod.UID) + "/checkout-api"
	onNode, err := os.ReadDir(filepath.Join(f.nodeView, "host", dir))
	if err != nil || len(onNode) != 3 {
		t.Fatalf("the lab's node layout: %v %v", onNode, err)
	}
	gz := 0
	for _, e := range onNode {
		b, err := os.ReadFile(filepath.Join(f.nodeView, "host", dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		it := f.item(t, "node/"+f.node+"/"+strings.TrimPrefix(dir, "var/log/")+"/"+e.Name())
		if it.SHA256 != hex.EncodeToString(sum[:]) || it.Source.Path != "/"+dir+"/"+e.Name() || it.Source.Container != "checkout-api" {
			t.Errorf("%s: %+v", e.Name(), it)
		}
		if strings.HasSuffix(e.Name(), ".gz") {
			gz++
		}
	}
	if gz != 1 {
		t.Errorf("%d gzipped rotations collected, want 1", gz)
	}
	if log := f.read(t, "node/"+f.node+"/"+strings.TrimPrefix(dir, "var/log/")+"/0.log"); !strings.Contains(log, "xmrig") {
		t.Errorf("current log lacks the miner: %.300s", log)
	}
	for _, it := range f.c.Items() {
		if strings.Contains(it.Path, "/containers/") {
			t.Errorf("read through /var/log/containers: %s", it.Path)
		}
	}
	base := "node/" + f.node + "/"
	mem := f.item(t, base+"memory.lime")
	b, err := os.ReadFile(filepath.Join(f.c.Dir(), "data", base+"memory.lime"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if mem.Size != 1<<20 || mem.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("memory image: size %d sha %s, file sha %x", mem.Size, mem.SHA256, sum)
	}
	checkJournal(t, f.read(t, base+"journal/kubelet.jsonl"), "kubelet.service")
	checkJournal(t, f.read(t, base+"journal/containerd.jsonl"), "containerd.service")
}

// checkJournal checks a journal export holds entries, each of unit.
func checkJournal(t *testing.T, jsonl, unit string) {
	t.Helper()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(jsonl), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		if e["_SYSTEMD_UNIT"] != unit && e["UNIT"] != unit {
			t.Errorf("entry of another unit in %s: %v", unit, e["_SYSTEMD_UNIT"])
		}
		n++
	}
	if n == 0 {
		t.Errorf("no %s entries", unit)
	}
}

func TestSelect(t *testing.T) {
	f := setup(t, 2, 3)
	ctx, kc := t.Context(), f.env.Kube
	count := func(tg collect.Target) int {
		pods, err := collect.Select(ctx, kc, tg)
		if err != nil {
			t.Fatalf("select %+v: %v", tg, err)
		}
		return len(pods)
	}
	if n := count(collect.Target{Workload: f.ns + "/Deployment/checkout-api"}); n != 2 {
		t.Errorf("by workload: %d", n)
	}
	if n := count(collect.Target{ServiceAccount: f.ns + "/checkout-api"}); n != 2 {
		t.Errorf("by service account: %d", n)
	}
	if n := count(collect.Target{Image: "payments/checkout-api:1.14.2"}); n < 2 {
		t.Errorf("by image: %d", n)
	}
	if n := count(collect.Target{Node: f.node}); n != 3 {
		t.Errorf("by node: %d", n)
	}
	if n := count(collect.Target{Pods: []string{f.ns + "/" + f.pod}}); n != 1 {
		t.Errorf("by pod: %d", n)
	}
}

// The ephemeral method adds a debug container targeting the suspect's
// process namespace and runs the collector there, never in the suspect
// container itself.
func TestVolatileEphemeral(t *testing.T) {
	f := setup(t, 1, 2)
	// kwok v0.8.0 reports no ephemeral container status: the test plays the
	// kubelet for that one field, as soon as the container appears.
	go func() {
		ctx, kc := t.Context(), f.lab.Kube.Typed
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			p, err := kc.CoreV1().Pods(f.ns).Get(ctx, f.pod, metav1.GetOptions{})
			if err != nil || len(p.Spec.EphemeralContainers) == 0 || len(p.Status.EphemeralContainerStatuses) > 0 {
				continue
			}
			e := p.Spec.EphemeralContainers[0]
			p.Status.EphemeralContainerStatuses = []corev1.ContainerStatus{{Name: e.Name, Image: e.Image, Ready: false,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}
			kc.CoreV1().Pods(f.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		}
	}()
	res := f.run(t, "collect.volatile", map[string]any{"pod": f.ns + "/" + f.pod, "method": collect.MethodEphemeral, "start-timeout": 20 * time.Second})
	if res.Outputs["complete"] != true || res.Outputs["method"] != collect.MethodEphemeral {
		t.Fatalf("outputs: %v", res.Outputs)
	}
	base := "volatile/" + f.ns + "/" + f.pod + "/"
	if d := f.doc(t, base+"processes.json"); len(d.Processes) == 0 {
		t.Error("no processes seen from the ephemeral container")
	}
	for _, it := range f.c.Items() {
		if !strings.HasPrefix(it.Path, "data/"+base) || !strings.Contains(it.Method, "--all-except-self` in ephemeral container eksir-debug-") {
			t.Errorf("%s: method %q", it.Path, it.Method)
		}
	}
	p, err := f.lab.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), f.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.EphemeralContainers) != 1 || p.Spec.EphemeralContainers[0].TargetContainerName != "checkout-api" {
		t.Errorf("ephemeral containers: %+v", p.Spec.EphemeralContainers)
	}
	// Idempotent: a second run adds no second debug container.
	f.run(t, "collect.volatile", map[string]any{"pod": f.ns + "/" + f.pod, "method": collect.MethodEphemeral, "start-timeout": 20 * time.Second})
	p, _ = f.lab.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), f.pod, metav1.GetOptions{})
	if len(p.Spec.EphemeralContainers) != 1 {
		t.Errorf("second run added a container: %d", len(p.Spec.EphemeralContainers))
	}
}

// kubeletCheckpoints answers the kubelet checkpoint API, which kwok lacks,
// as a kubelet with the ContainerCheckpoint gate and CRIU would: it writes
// the archive into the node's checkpoint folder (the lab's node view) and
// returns its path. Every other request goes to the real API server. This
// is the one hand-written answer in these tests.
type kubeletCheckpoints struct {
	dir     string // the node view's checkpoints/
	archive []byte
	calls   atomic.Int32
}

// wrap is a rest.Config WrapTransport: client-go wraps each transport it
// builds (the exec WebSocket's too), so each gets its own next.
func (k *kubeletCheckpoints) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		if _, _, ok := strings.Cut(r.URL.Path, "/proxy/checkpoint/"); !ok || r.Method != http.MethodPost {
			return next.RoundTrip(r)
		}
		return k.answer(r)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (k *kubeletCheckpoints) answer(r *http.Request) (*http.Response, error) {
	_, rest, _ := strings.Cut(r.URL.Path, "/proxy/checkpoint/")
	parts := strings.Split(rest, "/") // ns/pod/container
	if len(parts) != 3 {
		return nil, fmt.Errorf("checkpoint path %q", r.URL.Path)
	}
	k.calls.Add(1)
	name := fmt.Sprintf("checkpoint-%s_%s-%s-%s.tar", parts[1], parts[0], parts[2], time.Now().UTC().Format("2006-01-02T15:04:05Z"))
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(k.dir, name), k.archive, 0o600); err != nil {
		return nil, err
	}
	body := fmt.Sprintf(`{"items":["/var/lib/kubelet/checkpoints/%s"]}`, name)
	return &http.Response{StatusCode: 200, Status: "200 OK", Header: http.Header{"Content-Type": []string{"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// failingCreate refuses to create items whose path ends with suffix.
type failingCreate struct {
	action.Evidence
	suffix string
}

func (e *failingCreate) Create(rel string, info evidence.ItemInfo) (*evidence.ItemWriter, error) {
	if strings.HasSuffix(rel, e.suffix) {
		return nil, fmt.Errorf("disk full (test) writing %s", rel)
	}
	return e.Evidence.Create(rel, info)
}

// A checkpoint the kubelet wrote is copied into the case, then removed
// from the node, and the case holds both facts; a run interrupted between
// the two removes it on resume, and never checkpoints again.
func TestCheckpointCopiedThenRemoved(t *testing.T) {
	f := setup(t, 1, 2)
	archive := make([]byte, 256<<10)
	rand.Read(archive)
	kc := &kubeletCheckpoints{dir: filepath.Join(f.nodeView, "checkpoints"), archive: archive}
	cfg := rest.CopyConfig(f.env.RESTConfig)
	cfg.WrapTransport = kc.wrap
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := *f.env
	env.Kube, env.RESTConfig = typed, cfg
	call := action.Call{Step: "checkpoint", Params: map[string]any{"pod": f.ns + "/" + f.pod}}
	for _, p := range (collect.Checkpoint{}).Spec().Params {
		if _, ok := call.Params[p.Name]; !ok && p.Default != nil {
			call.Params[p.Name] = p.Default
		}
	}
	// The first run stops between the copy and the removal, as a crash
	// would: the archive is in the case and still on the node.
	crashed := env
	crashed.Evidence = &failingCreate{Evidence: f.env.Evidence, suffix: ".removed.json"}
	if _, err := (collect.Checkpoint{}).Run(t.Context(), &crashed, call); err == nil {
		t.Fatal("a run that could not record the removal succeeded")
	}
	if left, _ := os.ReadDir(kc.dir); len(left) != 1 {
		t.Fatalf("after the interrupted run: %d archives on the node, want 1", len(left))
	}
	// The resumed run removes it, without a second checkpoint.
	res, err := (collect.Checkpoint{}).Run(t.Context(), &env, call)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["complete"] != true || len(res.Warnings) != 0 {
		t.Fatalf("outputs %v warnings %v", res.Outputs, res.Warnings)
	}
	rel := "checkpoints/" + f.ns + "/" + f.pod + "/checkout-api.tar"
	it := f.item(t, rel)
	sum := sha256.Sum256(archive)
	if it.SHA256 != hex.EncodeToString(sum[:]) || !strings.HasPrefix(it.Source.Path, "/var/lib/kubelet/checkpoints/checkpoint-"+f.pod+"_"+f.ns+"-checkout-api-") {
		t.Errorf("archive item: %+v", it)
	}
	left, _ := os.ReadDir(kc.dir)
	if len(left) != 0 {
		t.Errorf("archives left on the node: %v", left)
	}
	var removed struct {
		Path    string `json:"path"`
		Removed bool   `json:"removed"`
	}
	if err := json.Unmarshal([]byte(f.read(t, rel+".removed.json")), &removed); err != nil || !removed.Removed || !strings.HasSuffix(it.Source.Path, removed.Path) {
		t.Errorf("removal record: %+v %v", removed, err)
	}
	if _, err := (collect.Checkpoint{}).Run(t.Context(), &env, call); err != nil || kc.calls.Load() != 1 {
		t.Errorf("second run: %v, %d checkpoint requests", err, kc.calls.Load())
	}
}

// The default method is the one with the fewest side effects the cluster
// admits, checked by a server dry run that Pod Security admission answers:
// the node pod; the ephemeral container (shown as permanent) when the
// collector namespace enforces baseline; neither when the suspect's
// namespace enforces baseline too, and then the plan fails, naming both.
func TestVolatileMethodAdmission(t *testing.T) {
	f := setup(t, 1, 2)
	ctx, kc := t.Context(), f.lab.Kube.Typed
	collectors := f.lab.Namespace
	plan := func() (action.Plan, error) {
		call := action.Call{Step: "volatile", Params: map[string]any{"pod": f.ns + "/" + f.pod, "collector-namespace": collectors}}
		for _, p := range (collect.Volatile{}).Spec().Params {
			if _, ok := call.Params[p.Name]; !ok && p.Default != nil {
				call.Params[p.Name] = p.Default
			}
		}
		return (collect.Volatile{}).Plan(ctx, f.env, call)
	}
	changes := func(p action.Plan) string {
		var b strings.Builder
		for _, c := range p.Changes {
			fmt.Fprintf(&b, "%s %s: %s\n", c.Verb, c.Object, c.Detail)
		}
		return b.String()
	}
	label := func(ns, level string) {
		n, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels["pod-security.kubernetes.io/enforce"] = level
		if _, err := kc.CoreV1().Namespaces().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	p, err := plan()
	if err != nil {
		t.Fatal(err)
	}
	if c := changes(p); !strings.Contains(c, "create pod "+collectors+"/eksir-collector-") || strings.Contains(c, "ephemeral") || !strings.Contains(c, "admitted by a server dry run") {
		t.Errorf("unlabelled namespace: want the node pod:\n%s", c)
	}

	label(collectors, "baseline")
	p, err = plan()
	if err != nil {
		t.Fatal(err)
	}
	c := changes(p)
	if strings.Contains(c, "create pod") || !strings.Contains(c, "add ephemeral container") || !strings.Contains(c, "PERMANENT") || !strings.Contains(c, "SYS_PTRACE") {
		t.Errorf("collector namespace at baseline: want the ephemeral container, shown as permanent:\n%s", c)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "PodSecurity") {
		t.Errorf("warnings: %v, want the node pod's refusal", p.Warnings)
	}

	label(f.ns, "baseline")
	if _, err := plan(); err == nil || !strings.Contains(err.Error(), "no capture method is admitted") || !strings.Contains(err.Error(), "SYS_PTRACE") {
		t.Errorf("both namespaces at baseline: %v", err)
	}
}
