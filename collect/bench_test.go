package collect_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/kube"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/isolate"
	"github.com/eksir/eksir/lab"
)

// BenchmarkContainCollectOnePod compares, on the same lab in one run,
// eksir's actions (label, NetworkPolicy, cordon, objects, logs) with a
// kubectl script doing the same. Each iteration contains a freshly seeded
// scenario (seeding is outside the timer).
func BenchmarkContainCollectOnePod(b *testing.B) {
	r := action.NewRegistry()
	isolate.Register(r)
	collect.Register(r)
	seed := func(b *testing.B) (*labtest.Env, string, string, string) {
		b.StopTimer()
		defer b.StartTimer()
		le := labtest.Start(b)
		res, err := lab.Seed(b.Context(), le.State, lab.SeedOptions{Scenario: "crypto-miner", Nodes: 2, PodsPerNode: 2, Prefix: le.Prefix, Account: le.Account})
		if err != nil {
			b.Fatalf("seed: %v", err)
		}
		ns, pod, _ := strings.Cut(res.Targets[lab.TargetPod], "/")
		return le, ns, pod, res.Targets[lab.TargetNode]
	}
	b.Run("eksir", func(b *testing.B) {
		for b.Loop() {
			le, ns, pod, node := seed(b)
			incident := "bench-" + strings.TrimSuffix(le.Prefix, "-")
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			c, err := evidence.OpenCase(b.Context(), evidence.CaseOptions{Dir: b.TempDir(), Incident: incident, Signer: evidence.NewSigner(priv), Tool: "eksir bench"})
			if err != nil {
				b.Fatal(err)
			}
			env := &action.Env{Kube: le.Kube.Typed, RESTConfig: le.Kube.Config, Evidence: c, Incident: incident, Cluster: "lab", Now: time.Now}
			for _, step := range []struct {
				name   string
				params map[string]any
			}{
				{"isolate.label", map[string]any{"pod": ns + "/" + pod, "node": node, "reason": "bench"}},
				{"isolate.pod-network", map[string]any{"pod": ns + "/" + pod}},
				{"isolate.cordon-node", map[string]any{"node": node, "pod": ns + "/" + pod}},
				{"collect.k8s-objects", map[string]any{"pod": ns + "/" + pod, "concurrency": int64(16)}},
				{"collect.pod-logs", map[string]any{"pod": ns + "/" + pod, "concurrency": int64(16)}},
			} {
				a, _ := r.Lookup(step.name)
				if _, err := a.Run(b.Context(), env, action.Call{Step: step.name, Params: step.params}); err != nil {
					b.Fatalf("%s: %v", step.name, err)
				}
			}
			c.Close()
		}
	})
	script, _ := filepath.Abs("bench/kubectl-contain-collect.sh")
	b.Run("kubectl", func(b *testing.B) {
		if _, err := exec.LookPath("kubectl"); err != nil {
			b.Skip("kubectl not on PATH")
		}
		for b.Loop() {
			le, ns, pod, node := seed(b)
			cmd := exec.CommandContext(b.Context(), "bash", script, ns, pod, node, b.TempDir(), "bench-"+strings.TrimSuffix(le.Prefix, "-"))
			cmd.Env = append(os.Environ(), "KUBECONFIG="+le.State.Kubeconfig)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("script: %v\n%s", err, out)
			}
		}
	})
}

// BenchmarkCollect1000Pods collects the objects and logs of 1,000 pods on
// 100 nodes. The collection runs in a child process (this test binary,
// TestBenchChild) so that its peak RSS (getrusage) is the collector's
// alone, not the seeding's.
func BenchmarkCollect1000Pods(b *testing.B) {
	le := labtest.Start(b)
	if _, err := lab.Seed(b.Context(), le.State, lab.SeedOptions{Scenario: "crypto-miner", Nodes: 100, PodsPerNode: 10, Prefix: le.Prefix, Account: le.Account}); err != nil {
		b.Fatalf("seed: %v", err)
	}
	var wall, rss float64
	var pods int
	n := 0
	for b.Loop() {
		cmd := exec.CommandContext(b.Context(), os.Args[0], "-test.run=^TestBenchChild$", "-test.v")
		cmd.Env = append(os.Environ(), "EKSIR_BENCH_CHILD=1", "EKSIR_BENCH_KUBECONFIG="+le.State.Kubeconfig,
			"EKSIR_BENCH_CASE="+b.TempDir(), fmt.Sprintf("EKSIR_BENCH_INCIDENT=bench-%d", n))
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		var w float64
		var r int64
		found := false
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if _, err := fmt.Sscanf(strings.TrimSpace(sc.Text()), "BENCH pods=%d wall_s=%f maxrss_kib=%d", &pods, &w, &r); err == nil {
				found = true
			}
		}
		if !found {
			b.Fatalf("child printed no figures:\n%s", out)
		}
		wall += w
		rss = max(rss, float64(r)/1024)
		n++
	}
	b.ReportMetric(float64(pods), "pods")
	b.ReportMetric(wall/float64(n), "collect-s")
	b.ReportMetric(rss, "peak-RSS-MiB")
}

// TestBenchChild is BenchmarkCollect1000Pods's child; it does nothing in a
// normal test run.
func TestBenchChild(t *testing.T) {
	if os.Getenv("EKSIR_BENCH_CHILD") == "" {
		t.Skip("child of BenchmarkCollect1000Pods")
	}
	ctx := context.Background()
	c, err := kube.New(kube.Options{Kubeconfig: os.Getenv("EKSIR_BENCH_KUBECONFIG"), QPS: 200, Burst: 400})
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	cs, err := evidence.OpenCase(ctx, evidence.CaseOptions{Dir: os.Getenv("EKSIR_BENCH_CASE"), Incident: os.Getenv("EKSIR_BENCH_INCIDENT"), Signer: evidence.NewSigner(priv), Tool: "eksir bench"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	env := &action.Env{Kube: c.Typed, RESTConfig: c.Config, Evidence: cs, Incident: os.Getenv("EKSIR_BENCH_INCIDENT"), Cluster: "lab", Now: time.Now}
	pods, err := collect.Select(ctx, c.Typed, collect.Target{Selector: "app"})
	if err != nil {
		t.Fatal(err)
	}
	// Every seeded pod carries an app label; run the benchmark alone
	// (-run '^$') so the lab holds only its seed.
	selected := len(pods)
	pods = nil
	start := time.Now()
	params := func() map[string]any {
		return map[string]any{"selector": "app", "concurrency": int64(16)}
	}
	for _, name := range []string{"collect.k8s-objects", "collect.pod-logs"} {
		var a action.Action = collect.Objects{}
		if name == "collect.pod-logs" {
			a = collect.PodLogs{}
		}
		if _, err := a.Run(ctx, env, action.Call{Step: name, Params: params()}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	wall := time.Since(start)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BENCH pods=%d wall_s=%.3f maxrss_kib=%d\n", selected, wall.Seconds(), ru.Maxrss)
}
