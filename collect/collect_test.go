package collect_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	registry *action.Registry
}

// setup seeds crypto-miner and returns an Env whose client is a
// ServiceAccount bound to the ClusterRole generated from the collect specs.
func setup(t testing.TB, nodes, perNode int) *fixture {
	t.Helper()
	s := labtest.SeedScenario(t, nodes, perNode, collect.Register)
	return &fixture{lab: s.Lab, env: s.Env, c: s.Case, ns: s.NS, pod: s.Pod, node: s.Node, registry: s.Registry}
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

func TestVolatileNodePod(t *testing.T) {
	f := setup(t, 2, 2)
	f.run(t, "collect.volatile", map[string]any{"pod": f.ns + "/" + f.pod})
	base := "volatile/nodes/" + f.node + "/"
	if ps := f.read(t, base+"processes.txt"); !strings.Contains(ps, "xmrig") {
		t.Errorf("node processes lack the miner: %.400s", ps)
	}
	if ss := f.read(t, base+"sockets.txt"); !strings.Contains(ss, "203.0.113.50") {
		t.Errorf("sockets lack the pool: %.400s", ss)
	}
	for _, rel := range []string{base + "mounts.txt", base + "exe-sha256.txt", base + "environ-redacted.txt"} {
		if it := f.item(t, rel); it.Status != evidence.StatusCollected {
			t.Errorf("%s: %+v", rel, it)
		}
	}
	for _, line := range strings.Split(f.read(t, base+"environ-redacted.txt"), "\n") {
		if strings.HasPrefix(line, "# pid ") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); line != "" && (!ok || v != "<redacted>") {
			t.Fatalf("environment value not redacted: %s=…", k)
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

func TestNodeFilesMemory(t *testing.T) {
	f := setup(t, 1, 2)
	f.run(t, "collect.node-files", map[string]any{"pod": f.ns + "/" + f.pod, "memory": true})
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
	if j := f.read(t, base+"kubelet.journal.txt"); !strings.Contains(j, "kubelet") {
		t.Errorf("kubelet journal: %.200s", j)
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
	f.run(t, "collect.volatile", map[string]any{"pod": f.ns + "/" + f.pod, "method": collect.MethodEphemeral, "start-timeout": 20 * time.Second})
	base := "volatile/" + f.ns + "/" + f.pod + "/"
	if ps := f.read(t, base+"processes.txt"); !strings.Contains(ps, "xmrig") {
		t.Errorf("pod processes lack the miner: %.400s", ps)
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
