package labtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/lab"
)

// Scenario is a seeded crypto-miner scenario and an action.Env whose
// Kubernetes client is a ServiceAccount bound to the ClusterRole generated
// from the registry's specs, never cluster-admin, so action tests also
// prove the generated role is enough.
type Scenario struct {
	Lab      *Env
	Seed     *lab.SeedResult
	Registry *action.Registry
	Env      *action.Env
	Case     *evidence.Case // Env's evidence
	// The suspect pod and its node.
	NS, Pod, Node string
	// NodeView is the folder kwok runs collector pods' exec requests in:
	// the node as a collector pod sees it (lab.ExecView).
	NodeView string
}

// SeedScenario starts the lab, seeds crypto-miner with nodes × perNode pods
// and registers the actions under test with register.
func SeedScenario(t testing.TB, nodes, perNode int, register func(*action.Registry)) *Scenario {
	t.Helper()
	if testing.Short() {
		t.Skip("lab integration test (-short)")
	}
	le := Start(t)
	res, err := lab.Seed(t.Context(), le.State, lab.SeedOptions{Scenario: "crypto-miner", Nodes: nodes, PodsPerNode: perNode, Prefix: le.Prefix, Account: le.Account})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	r := action.NewRegistry()
	register(r)
	sa := le.AsServiceAccount(t, action.ClusterRole("eksir", r.Specs()))
	incident := "inc-" + strings.TrimSuffix(le.Prefix, "-")
	c := NewCase(t, incident)
	ns, pod, _ := strings.Cut(res.Targets[lab.TargetPod], "/")
	return &Scenario{Lab: le, Seed: res, Registry: r, Case: c, NS: ns, Pod: pod, Node: res.Targets[lab.TargetNode],
		NodeView: lab.ExecView(le.State.Dir, le.Prefix, "node"),
		Env:      &action.Env{Kube: sa.Typed, RESTConfig: sa.Config, Evidence: c, Incident: incident, Responder: "tester", Cluster: "lab", Now: time.Now}}
}

// NewCase opens an empty case for incident in a temporary folder, signed
// with a fresh key and closed when the test ends.
func NewCase(t testing.TB, incident string) *evidence.Case {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := evidence.OpenCase(t.Context(), evidence.CaseOptions{Dir: t.TempDir(), Incident: incident,
		Signer: evidence.NewSigner(priv), Tool: "eksir test", Actor: "tester", Collector: evidence.Collector{OSUser: "tester"}})
	if err != nil {
		t.Fatalf("open case: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
