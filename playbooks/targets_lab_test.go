package playbooks_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
	"github.com/eksir/eksir/playbooks"
)

// TestLabDeployment contains a five-replica Deployment as one incident:
// the pods are resolved from the Deployment at plan time, each gets its
// own steps in one journal and one case, and release leaves none of them
// marked and no quarantine policy; read back from the API server.
func TestLabDeployment(t *testing.T) {
	f := setupLab(t)
	// 3 nodes x 3 pods: the suspect's 2, frontend's 2, then a 5-replica
	// Deployment frontend-0 in the shop namespace.
	le := labtest.Start(t)
	if _, err := lab.Seed(t.Context(), le.State, lab.SeedOptions{Scenario: "crypto-miner", Nodes: 3, PodsPerNode: 3, Prefix: le.Prefix, Account: le.Account}); err != nil {
		t.Fatal(err)
	}
	le.RunEngineEverywhere(t, labtest.EngineAWSNode)
	ns := le.Prefix + "shop"
	pods, err := le.Kube.Typed.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=frontend"})
	if err != nil || len(pods.Items) != 5 {
		t.Fatalf("want five replicas of %s/frontend-0: %v %d", ns, err, len(pods.Items))
	}
	pb := filepath.Join(f.dir, "many.yaml")
	if err := os.WriteFile(pb, []byte(crashPlaybook), 0o644); err != nil {
		t.Fatal(err)
	}
	inc := "many-1"
	r := f.eksir(t, nil, "--output", "json", "run", pb, "--pod", "deployment:"+ns+"/frontend-0", "--incident", inc, "--yes")
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	var out struct {
		Summary playbooks.Summary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	targets := map[string]int{}
	for _, s := range out.Summary.Steps {
		targets[s.Target]++
		if s.Status != playbooks.StatusSucceeded || !strings.HasSuffix(s.ID, playbooks.TargetSep+s.Target) {
			t.Errorf("step %s (target %s): %s %s", s.ID, s.Target, s.Status, s.Error)
		}
	}
	if len(targets) != 5 {
		t.Fatalf("targets: %v", targets)
	}
	marked := func() int {
		n := 0
		l, err := le.Kube.Typed.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=frontend"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l.Items {
			for k := range p.Labels {
				if strings.HasPrefix(k, "eksir.io/") {
					n++
					break
				}
			}
		}
		return n
	}
	policies := func() int {
		l, err := le.Kube.Typed.NetworkingV1().NetworkPolicies(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range l.Items {
			if strings.HasPrefix(p.Name, "eksir-") {
				n++
			}
		}
		return n
	}
	if marked() != 5 || policies() != 1 {
		t.Fatalf("contained: %d pods marked, %d quarantine policies", marked(), policies())
	}
	if r := f.eksir(t, nil, "release", "--incident", inc, "--yes"); r.code != 0 {
		t.Fatalf("release: %v", r)
	}
	if marked() != 0 || policies() != 0 {
		t.Fatalf("after release: %d pods marked, %d quarantine policies", marked(), policies())
	}
}
