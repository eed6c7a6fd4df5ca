package playbooks_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/isolate"
	"github.com/eksir/eksir/playbooks"
)

// noExecKubeconfig writes a kubeconfig for a ServiceAccount bound to the
// ClusterRole eksir's actions declare, minus pods/exec: the API server
// refuses every exec, so the volatile capture records every item as not
// collected, and everything else works.
func (f *labFixture) noExecKubeconfig(t *testing.T) string {
	t.Helper()
	r := action.NewRegistry()
	isolate.Register(r)
	collect.Register(r)
	role := action.ClusterRole("eksir", r.Specs())
	var rules []rbacv1.PolicyRule
	for _, rule := range role.Rules {
		rule.Resources = slices.DeleteFunc(slices.Clone(rule.Resources), func(s string) bool { return s == "pods/exec" })
		if len(rule.Resources) > 0 {
			rules = append(rules, rule)
		}
	}
	role.Rules = rules
	return f.roleKubeconfig(t, "noexec", role)
}

// roleKubeconfig writes a kubeconfig for a ServiceAccount called name,
// bound to role and nothing else.
func (f *labFixture) roleKubeconfig(t *testing.T, name string, role *rbacv1.ClusterRole) string {
	t.Helper()
	sa := f.le.AsServiceAccountNamed(t, name, role)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lab"] = &clientcmdapi.Cluster{Server: sa.Config.Host, CertificateAuthorityData: sa.Config.CAData, CertificateAuthority: sa.Config.CAFile}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: sa.Config.BearerToken}
	cfg.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: name}
	cfg.CurrentContext = "lab"
	path := filepath.Join(f.dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// custody reads the case's custody log and items index.
func (f *labFixture) custody(t *testing.T, inc string) ([]evidence.Record, []evidence.Item) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "cases", inc, "metadata", "custody.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []evidence.Record
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var rec evidence.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	var ix evidence.Index
	b, err := os.ReadFile(filepath.Join(f.dir, "cases", inc, "metadata", "items.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ix); err != nil {
		t.Fatal(err)
	}
	return recs, ix.Items
}

// itemRecords counts the custody records of items under prefix, by action.
func itemRecords(t *testing.T, recs []evidence.Record, prefix string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, r := range recs {
		if r.Action != evidence.ActionAcquired && r.Action != evidence.ActionNotCollected {
			continue
		}
		var it evidence.Item
		if err := json.Unmarshal(r.Details, &it); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(it.Path, prefix) {
			n[r.Action]++
		}
	}
	return n
}

// suspectMarked reads the suspect pod back: does it carry eksir's label?
func (f *labFixture) suspectMarked(t *testing.T) bool {
	t.Helper()
	p, err := f.le.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), f.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range p.Labels {
		if strings.HasPrefix(k, "eksir.io/incident-") {
			return true
		}
	}
	return false
}

func (f *labFixture) status(t *testing.T, inc string) map[string]playbooks.StepSummary {
	t.Helper()
	st := f.eksir(t, nil, "--output", "json", "status", "--incident", inc)
	var sum playbooks.Summary
	if err := json.Unmarshal([]byte(st.stdout), &sum); err != nil {
		t.Fatalf("status: %v %v", err, st)
	}
	out := map[string]playbooks.StepSummary{}
	for _, s := range sum.Steps {
		out[s.ID] = s
	}
	return out
}

// TestLabCaptureGate: with every exec refused the volatile capture
// succeeds with nothing collected; containment does not run (read back from
// the API server); resume with exec allowed collects exactly the missing
// items and contains. After release, --contain-without-capture contains
// despite the refused capture, and the decision is in the custody log.
func TestLabCaptureGate(t *testing.T) {
	f := setupLab(t)
	noExec := []string{"KUBECONFIG=" + f.noExecKubeconfig(t)}
	target := f.ns + "/" + f.pod

	r := f.eksir(t, noExec, "run", "pod-compromise", "--pod", target, "--incident", "gate-1", "--yes")
	if r.code != 4 {
		t.Fatalf("run with exec refused: want exit 4 (partial): %v", r)
	}
	if p := f.quarantinePolicies(t); len(p) != 0 {
		t.Fatalf("containment ran without the capture: policies %v", p)
	}
	if f.suspectMarked(t) {
		t.Fatal("containment ran without the capture: the suspect is labelled")
	}
	st := f.status(t, "gate-1")
	if st["volatile"].Status != playbooks.StatusSucceeded || st["objects"].Status != playbooks.StatusSucceeded ||
		st["isolate"].Status != playbooks.StatusSkipped || st["label"].Status != playbooks.StatusSkipped {
		t.Fatalf("statuses: %+v", st)
	}
	if e := st["isolate"].Error; !strings.Contains(e, "data/volatile/") || !strings.Contains(e, "--contain-without-capture") {
		t.Errorf("isolate's reason names neither the missing items nor the override: %q", e)
	}
	recs, items := f.custody(t, "gate-1")
	vol := itemRecords(t, recs, "data/volatile/")
	other := itemRecords(t, recs, "data/k8s/")
	missing := vol[evidence.ActionNotCollected]
	if missing == 0 || vol[evidence.ActionAcquired] != 0 {
		t.Fatalf("volatile custody records after the refused run: %v", vol)
	}
	nItems := len(items)

	r = f.eksir(t, nil, "resume", "--incident", "gate-1", "--yes")
	if r.code != 0 {
		t.Fatalf("resume with exec allowed: %v", r)
	}
	if p := f.quarantinePolicies(t); len(p) != 1 || !f.suspectMarked(t) {
		t.Fatalf("after resume: policies %v, labelled %v", p, f.suspectMarked(t))
	}
	recs, items = f.custody(t, "gate-1")
	if got := itemRecords(t, recs, "data/volatile/"); got[evidence.ActionAcquired] != missing || got[evidence.ActionNotCollected] != missing {
		t.Errorf("volatile custody records after resume: %v, want %d acquired beside the %d not-collected", got, missing, missing)
	}
	if got := itemRecords(t, recs, "data/k8s/"); got[evidence.ActionAcquired] != other[evidence.ActionAcquired] {
		t.Errorf("resume collected the objects again: %v, before %v", got, other)
	}
	if len(items) != nItems {
		t.Errorf("%d items after resume, %d before: the retried items must replace their not-collected entries", len(items), nItems)
	}
	for _, it := range items {
		if strings.HasPrefix(it.Path, "data/volatile/") && it.Status != evidence.StatusCollected {
			t.Errorf("%s: %s after resume", it.Path, it.Status)
		}
	}
	f.checkJournal(t, "gate-1") // seals and verifies the superseded items

	if r = f.eksir(t, nil, "release", "--incident", "gate-1", "--yes", "--restore-credentials"); r.code != 0 {
		t.Fatalf("release: %v", r)
	}
	if p := f.quarantinePolicies(t); len(p) != 0 || f.suspectMarked(t) {
		pod, _ := f.le.Kube.Typed.CoreV1().Pods(f.ns).Get(t.Context(), f.pod, metav1.GetOptions{})
		t.Fatalf("after release: policies %v, labelled %v: labels %v\n%v", p, f.suspectMarked(t), pod.Labels, r)
	}

	// The override: contain although the capture missed everything.
	r = f.eksir(t, noExec, "run", "pod-compromise", "--pod", target, "--incident", "gate-2", "--yes", "--contain-without-capture")
	if r.code != 0 {
		t.Fatalf("run --contain-without-capture: %v", r)
	}
	if !strings.Contains(r.stdout, "WARNING (isolate): contained without complete capture") {
		t.Errorf("the summary does not warn of the decision:\n%s", r.stdout)
	}
	if p := f.quarantinePolicies(t); len(p) != 1 || !f.suspectMarked(t) {
		t.Fatalf("override: policies %v, labelled %v", p, f.suspectMarked(t))
	}
	recs, items = f.custody(t, "gate-2")
	decided := map[string]playbooks.ContainWithoutCapture{}
	for _, rec := range recs {
		if rec.Action == playbooks.RecContainWithoutCapture {
			var d playbooks.ContainWithoutCapture
			if err := json.Unmarshal(rec.Details, &d); err != nil {
				t.Fatal(err)
			}
			decided[d.Step] = d
		}
	}
	for _, s := range []string{"isolate", "label"} {
		d, ok := decided[s]
		if !ok || d.DecidedBy == "" || len(d.Captures) != 1 || d.Captures[0].Step != "volatile" || len(d.Captures[0].Missing) != missing {
			t.Errorf("decision for %s in the custody log: %+v (want volatile's %d missing items and who decided)", s, d, missing)
		}
	}
	// label ran after objects: the captured pod object holds nothing of ours.
	found := false
	for _, it := range items {
		if it.Path == "data/k8s/"+f.ns+"/pods/"+f.pod+"/pod.json" {
			b, err := os.ReadFile(filepath.Join(f.dir, "cases", "gate-2", filepath.FromSlash(it.Path)))
			if err != nil {
				t.Fatal(err)
			}
			found = true
			if bytes.Contains(b, []byte("eksir.io/")) {
				t.Errorf("the captured pod object holds eksir's label or annotations")
			}
		}
	}
	if !found {
		t.Errorf("no pod object in case gate-2")
	}
	if r = f.eksir(t, nil, "release", "--incident", "gate-2", "--yes", "--restore-credentials"); r.code != 0 {
		t.Fatalf("release: %v", r)
	}
}
