package report_test

import (
	"context"
	"crypto/ed25519"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/evidence"
	golden "github.com/eksir/eksir/internal/golden"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/isolate"
	"github.com/eksir/eksir/playbooks"
	"github.com/eksir/eksir/report"
)

// fixtureIncident is the committed lab run's incident ID.
const fixtureIncident = "INC-REPORT-1"

// fixtureCaseRoot holds the committed case folder.
var fixtureCaseRoot = filepath.Join("testdata", "cases")

// fixtureSigner is the examiner key of the fixture: Ed25519 from a fixed
// seed, so the committed case verifies with a key the test can derive.
func fixtureSigner() *evidence.Signer {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "eksir report fixture key seed 01")
	return evidence.NewSigner(ed25519.NewKeyFromSeed(seed))
}

func fixtureKeys() evidence.KeyRing {
	k := evidence.KeyRing{}
	k.Add(fixtureSigner().Public())
	return k
}

// fixedClock starts at a fixed time and moves one second per reading, so
// that records are dated deterministically and never run backwards.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(start string) *fixedClock {
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		panic(err)
	}
	return &fixedClock{t: t}
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// generatedAt dates every report the tests render.
func generatedAt() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) }

type approveAll struct{}

func (approveAll) Approve(context.Context, string, string, action.Plan) (bool, error) {
	return true, nil
}

// labRun runs the built-in pod-compromise playbook on the lab's suspect
// pod with a fixed clock and key into a case under root, then releases
// part of it: isolate is approved at the prompt, the other steps needing
// approval by --approve; no NetworkPolicy engine runs, so the quarantine
// succeeds unenforced with warnings; exec is refused, so the volatile
// capture is not collected; the release undoes label only, and
// the IRSA revocation stays (no --restore-credentials).
func labRun(t *testing.T, root string) {
	t.Helper()
	s := labtest.SeedScenario(t, 1, 2, func(r *action.Registry) {
		isolate.Register(r)
		collect.Register(r)
	})
	ctx := t.Context()
	clock := newClock("2026-11-30T09:00:00Z")
	c, err := evidence.OpenCase(ctx, evidence.CaseOptions{Dir: root, Incident: fixtureIncident, Signer: fixtureSigner(),
		Tool: "eksir test", Actor: "responder@lab", Collector: evidence.Collector{OSUser: "responder", Host: "lab"}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := *s.Env
	env.Evidence, env.Incident, env.Now, env.AWS = c, fixtureIncident, clock.Now, s.Lab.AWS
	// eksir's generated role minus pods/exec: the API server refuses the
	// volatile capture's exec, so its items are recorded as not collected
	// and the responder contains without complete capture.
	noExec := s.Lab.AsServiceAccountNamed(t, "noexec", withoutExec(action.ClusterRole("eksir", s.Registry.Specs())))
	env.Kube, env.RESTConfig = noExec.Typed, noExec.Config
	src, _ := playbooks.Builtin("pod-compromise")
	p, err := playbooks.Parse("pod-compromise", src)
	if err != nil {
		t.Fatal(err)
	}
	chk, err := playbooks.Validate(p, s.Registry)
	if err != nil {
		t.Fatal(err)
	}
	in, err := playbooks.Resolve(ctx, chk, map[string]string{"pod": s.NS + "/" + s.Pod, "allow_unenforced": "true"},
		map[action.Cloud]playbooks.TargetResolver{action.Kubernetes: playbooks.KubeTargets(env.Kube), action.AWS: playbooks.AWSTargets(env.AWS)})
	if err != nil {
		t.Fatal(err)
	}
	j := playbooks.CaseJournal(c)
	o := playbooks.Options{Env: &env, Journal: j, Approver: approveAll{}, Approved: []string{"cordon", "revoke"}, ApprovedBy: "alice@soc", Parallel: 1, Now: clock.Now,
		ContainWithoutCapture: true}
	if _, err := playbooks.Run(ctx, chk, in, o); err != nil {
		t.Fatalf("run: %v", err)
	}
	rel := playbooks.Options{Env: &env, Journal: j, Approved: []string{"label"}, ApprovedBy: "alice@soc", Now: clock.Now}
	if _, err := playbooks.Release(ctx, s.Registry, rel); err != nil && !strings.Contains(err.Error(), "not released") {
		t.Fatalf("release: %v", err)
	}
}

// withoutExec is role without pods/exec.
func withoutExec(role *rbacv1.ClusterRole) *rbacv1.ClusterRole {
	var rules []rbacv1.PolicyRule
	for _, rule := range role.Rules {
		rule.Resources = slices.DeleteFunc(slices.Clone(rule.Resources), func(s string) bool { return s == "pods/exec" })
		if len(rule.Resources) > 0 {
			rules = append(rules, rule)
		}
	}
	role.Rules = rules
	return role
}

// TestFixture makes a real lab run and checks that its report builds and
// names every item's SHA-256. With -update the run becomes the committed
// fixture under testdata/cases (the goldens are then refreshed from it by
// TestGolden).
func TestFixture(t *testing.T) {
	root := t.TempDir()
	labRun(t, root)
	dir := filepath.Join(root, fixtureIncident)
	r, err := report.FromCase(t.Context(), dir, report.Options{Keys: fixtureKeys(), Now: generatedAt, Tool: "eksir test"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Integrity.Status != report.IntegrityVerified {
		t.Fatalf("a fresh run's integrity: %+v", r.Integrity)
	}
	js, md := render(t, r)
	cl, err := evidence.ReadCase(t.Context(), dir, fixtureKeys())
	if err != nil {
		t.Fatal(err)
	}
	collected := 0
	for _, it := range cl.Items {
		if it.Status != evidence.StatusCollected {
			continue
		}
		collected++
		if !strings.Contains(js, it.SHA256) || !strings.Contains(md, it.SHA256) {
			t.Errorf("item %s: its sha256 %s is not in the report", it.Path, it.SHA256)
		}
	}
	if collected == 0 {
		t.Fatal("the lab run collected nothing: the test proves nothing")
	}
	if golden.Updating() {
		if err := os.RemoveAll(filepath.Join(fixtureCaseRoot, fixtureIncident)); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(filepath.Join(fixtureCaseRoot, fixtureIncident), os.DirFS(dir)); err != nil {
			t.Fatal(err)
		}
		var total int64
		_ = filepath.WalkDir(filepath.Join(fixtureCaseRoot, fixtureIncident), func(_ string, d fs.DirEntry, _ error) error {
			if info, err := d.Info(); err == nil && !d.IsDir() {
				total += info.Size()
			}
			return nil
		})
		t.Logf("fixture: %d bytes", total)
	}
}
