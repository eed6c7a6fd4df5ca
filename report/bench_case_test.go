package report

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/playbooks"
)

// caseClock is the case's clock: it starts at syntheticEpoch and moves a
// fixed step per reading, so custody times never run backwards and every
// build of the case is dated the same.
type caseClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *caseClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// benchSigner is the examiner key of the built case, from a fixed seed so
// the records (and so the report's bytes) are the same on every build.
func benchSigner() *evidence.Signer {
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "eksir report bench key seed 0001")
	return evidence.NewSigner(ed25519.NewKeyFromSeed(seed))
}

// fatalHelper is the part of testing.TB buildCase uses.
type fatalHelper interface {
	Helper()
	Fatal(args ...any)
}

// panicTB stops a build outside a test (sync.OnceValues) by panicking,
// which fails the test that asked for the case.
type panicTB struct{}

func (panicTB) Helper()           {}
func (panicTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

// builtCase is a case folder written by buildCase and what went into it.
type builtCase struct {
	dir  string
	keys evidence.KeyRing
	// collected and notCollected count the items added (Case.Add) and
	// recorded as not collected (Case.NotCollected); records is the length
	// of the custody log; steps the distinct steps journaled.
	collected, notCollected, records, steps int
}

// buildCase writes, under root, the case of a pod-compromise run over pods
// suspect pods spread over nodes nodes, through the APIs a run uses: a
// case opened with an ed25519 signer, items acquired with Case.Add and
// Case.NotCollected, and the engine's journal records written with
// playbooks.CaseJournal. Per pod: the volatile capture (processes,
// sockets), the pod object and its events, two containers' logs, then
// isolate (approved with --approve) and label; per node: the node object,
// the kubelet and containerd journals, the instance metadata and an EBS
// snapshot descriptor, with the node-files, snapshot and cordon steps.
// Some items are not collected, some isolations failed or could not be
// enforced (warnings), a few were released. With (1000, 100) it is the
// size of syntheticReport(1000, 100): 6 items per pod, 5 per node, 4 steps
// per pod and 3 per node. Item contents are kilobytes, not the megabytes
// of real logs: the report reads the custody log, never the items (except
// the snapshot descriptors), so their size does not change its work.
func buildCase(ctx context.Context, tb fatalHelper, root string, pods, nodes int) builtCase {
	tb.Helper()
	const (
		incident = "INC-2041"
		cluster  = "prod-eu"
		region   = "eu-west-1"
		account  = "111122223333"
		approver = "alice@soc"
	)
	signer := benchSigner()
	clk := &caseClock{t: syntheticEpoch, step: 150 * time.Millisecond}
	c, err := evidence.OpenCase(ctx, evidence.CaseOptions{Dir: root, Incident: incident, Signer: signer, Tool: "eksir v0.15.0",
		Actor: "responder@ir-laptop", Now: clk.Now,
		Collector: evidence.Collector{OSUser: "responder", Host: "ir-laptop",
			AWSCallerARN: "arn:aws:sts::" + account + ":assumed-role/IncidentResponder/responder", KubeUser: "kubernetes-admin"}})
	if err != nil {
		tb.Fatal(err)
	}
	bc := builtCase{dir: filepath.Join(root, incident), keys: evidence.KeyRing{}}
	bc.keys.Add(signer.Public())
	j := playbooks.CaseJournal(c)
	record := func(a string, d any) {
		tb.Helper()
		if _, err := j.Record(a, d, nil); err != nil {
			tb.Fatal(err)
		}
	}
	add := func(rel string, src evidence.Source, method, body string) string {
		tb.Helper()
		it, err := c.Add(ctx, rel, evidence.ItemInfo{Source: src, Method: method}, strings.NewReader(body))
		if err != nil {
			tb.Fatal(err)
		}
		bc.collected++
		return it.Path
	}
	notCollected := func(rel string, src evidence.Source, method, reason string) string {
		tb.Helper()
		if _, err := c.NotCollected(rel, evidence.ItemInfo{Source: src, Method: method}, reason); err != nil {
			tb.Fatal(err)
		}
		bc.notCollected++
		return "data/" + rel
	}
	// step journals one step as the engine does: its intent, whatever it
	// acquires, then its result with its own start and end.
	step := func(id, act string, params map[string]any, approval *playbooks.StepApproval, run func(res *playbooks.StepResult)) {
		tb.Helper()
		raw, err := json.Marshal(params)
		if err != nil {
			tb.Fatal(err)
		}
		record(playbooks.RecIntent, playbooks.Intent{Step: id, Action: act, Params: raw, Approval: approval})
		res := playbooks.StepResult{Step: id, Action: act, Status: playbooks.StatusSucceeded, Started: clk.Now().Format(time.RFC3339Nano)}
		run(&res)
		res.Finished = clk.Now().Format(time.RFC3339Nano)
		record(playbooks.RecResult, res)
		bc.steps++
	}
	release := func(id, act string, params map[string]any, undo json.RawMessage, object string) {
		tb.Helper()
		raw, err := json.Marshal(params)
		if err != nil {
			tb.Fatal(err)
		}
		record(playbooks.RecUndoStart, playbooks.Intent{Step: id, Action: act, Params: raw})
		started := clk.Now().Format(time.RFC3339Nano)
		record(playbooks.RecUndone, playbooks.StepResult{Step: id, Action: act, Status: playbooks.StatusReleased, Undo: undo,
			Restored: []action.Restored{{Object: object, Outcome: "restored"}}, Started: started, Finished: clk.Now().Format(time.RFC3339Nano)})
	}

	podName := func(p int) (ns, name string) {
		ns = []string{"checkout", "payments", "web"}[p%3]
		return ns, fmt.Sprintf("%s-%05d-7f9c", ns, p)
	}
	nodeName := func(n int) string { return fmt.Sprintf("ip-10-0-%d-%d.%s.compute.internal", n/250, n%250, region) }
	instanceID := func(n int) string { return fmt.Sprintf("i-0%015x", 0xabc000+n) }

	start := playbooks.RunStart{Playbook: "pod-compromise", File: "builtin:pod-compromise", Source: "apiVersion: eksir.io/v1\nkind: Playbook\n",
		SHA256: evidence.SumHex([]byte("pod-compromise")), Inputs: map[string]string{"allow_unenforced": "false"}, Drill: true, TargetInput: "pod"}
	for p := range pods {
		ns, name := podName(p)
		start.Targets = append(start.Targets, map[string]string{"pod": ns + "/" + name, "node": nodeName(p % max(nodes, 1)),
			"service_account": ns + "/" + ns + "-api", "aws_credentials": ""})
	}
	record(playbooks.RecRunStart, start)

	flag := &playbooks.StepApproval{How: playbooks.ApprovedFlag, By: approver}
	for p := range pods {
		ns, name := podName(p)
		pod := ns + "/" + name
		node := nodeName(p % max(nodes, 1))
		src := evidence.Source{Cluster: cluster, Namespace: ns, Pod: name, Node: node}
		uid := fmt.Sprintf("4f1c%04x-9a2b-4c3d-8e5f-%012x", p, p)
		podParams := map[string]any{"pod": pod}
		step("volatile@"+pod, "collect.volatile", map[string]any{"pod": pod, "method": "auto", "collector-namespace": "kube-system"}, nil, func(res *playbooks.StepResult) {
			var got []string
			for _, what := range []string{"processes", "sockets"} {
				body := fmt.Sprintf(`{"pod_uid":%q,"%s":[{"pid":1,"comm":"app","cmdline":"/app --port 8080"},{"pid":%d,"comm":"sh","cmdline":"sh -c curl http://169.254.169.254/"}]}`, uid, what, 40+p%50)
				got = append(got, add("volatile/"+pod+"/"+what+".json", src, "eksir-collector "+what+" --pod-uid "+uid, body))
			}
			res.Items, res.Outputs = got, map[string]any{"collected": got, "complete": true, "method": "node-pod"}
		})
		step("objects@"+pod, "collect.k8s-objects", map[string]any{"pod": pod, "concurrency": 16, "include-secret-values": false}, nil, func(res *playbooks.StepResult) {
			res.Items = []string{
				add("k8s/"+ns+"/pods/"+name+"/pod.json", src, "get pod", fmt.Sprintf(`{"kind":"Pod","metadata":{"name":%q,"namespace":%q,"uid":%q},"spec":{"nodeName":%q,"serviceAccountName":"%s-api"}}`, name, ns, uid, node, ns)),
				add("k8s/"+ns+"/pods/"+name+"/events.json", src, "list events involvedObject=pod", fmt.Sprintf(`[{"reason":"Pulled","message":"image pulled","count":%d}]`, 1+p%5)),
			}
		})
		step("logs@"+pod, "collect.pod-logs", podParams, nil, func(res *playbooks.StepResult) {
			for _, ctr := range []string{"app", "istio-proxy"} {
				csrc := src
				csrc.Container = ctr
				body := strings.Repeat(fmt.Sprintf("2026-11-30T09:%02d:%02dZ %s GET /api/cart 200 %dms\n", p%60, p%59, ctr, p%300), 20)
				res.Items = append(res.Items, add("logs/"+pod+"/"+ctr+".log", csrc, "get pods/log container="+ctr, body))
			}
			if p%50 == 0 {
				csrc := src
				csrc.Container = "app"
				reason := "previous terminated container \"app\" in pod \"" + name + "\" not found"
				missing := notCollected("logs/"+pod+"/app.previous.log", csrc, "get pods/log container=app previous=true", reason)
				res.Warnings = []string{"app.previous.log not collected: no previous container"}
				res.Outputs = map[string]any{"collected": res.Items, "missing": []string{missing + ": " + reason}, "complete": false}
			}
		})
		step("isolate@"+pod, "isolate.pod-network", map[string]any{"pod": pod, "allow-unenforced": false}, flag, func(res *playbooks.StepResult) {
			policy := ns + "/eksir-quarantine-inc-2041-" + fmt.Sprintf("%08x", p)
			switch {
			case p%250 == 7:
				res.Status, res.Error = playbooks.StatusFailed, "patch networkpolicy "+policy+": context deadline exceeded"
			case p%100 == 5:
				res.Outputs = map[string]any{"enforcement": "not-enforceable", "policy": policy}
				res.Warnings = []string{"no NetworkPolicy engine runs on node " + node + ": the quarantine policy is stored, not enforced"}
			default:
				res.Outputs = map[string]any{"enforcement": "enforced", "engine": "aws-network-policy-agent", "policy": policy}
			}
			res.Undo = json.RawMessage(fmt.Sprintf(`{"namespace":%q,"pod":%q,"policy":%q}`, ns, name, policy))
		})
		if p%100 == 3 {
			release("isolate@"+pod, "isolate.pod-network", podParams, json.RawMessage(fmt.Sprintf(`{"namespace":%q,"pod":%q}`, ns, name)), "pod "+pod)
		}
	}
	for n := range nodes {
		node := nodeName(n)
		inst := instanceID(n)
		src := evidence.Source{Cluster: cluster, Node: node, Instance: inst}
		nodeParams := map[string]any{"node": node}
		add("k8s/nodes/"+node+"/node.json", src, "get node", fmt.Sprintf(`{"kind":"Node","metadata":{"name":%q},"spec":{"providerID":"aws:///%sa/%s"}}`, node, region, inst))
		step("node_files@"+node, "collect.node-files", nodeParams, nil, func(res *playbooks.StepResult) {
			for _, unit := range []string{"kubelet", "containerd"} {
				body := strings.Repeat(fmt.Sprintf(`{"_SYSTEMD_UNIT":"%s.service","MESSAGE":"node %s event %d"}`+"\n", unit, node, n), 40)
				res.Items = append(res.Items, add("node/"+node+"/journal/"+unit+".jsonl", src, "exec in kube-system/eksir-collector: journal --unit "+unit, body))
			}
			res.Outputs = map[string]any{"collected": res.Items, "complete": true}
			if n%20 == 0 {
				reason := "the collector pod is not privileged on " + node
				missing := notCollected("node/"+node+"/memory.lime", src, "exec in kube-system/eksir-collector: avml /dev/stdout", reason)
				res.Outputs["missing"], res.Outputs["complete"] = []string{missing + ": " + reason}, false
			}
		})
		asrc := evidence.Source{Cluster: cluster, Node: node, Instance: inst, Region: region, ARN: "arn:aws:ec2:" + region + ":" + account + ":instance/" + inst}
		add("aws/instances/"+inst+"/describe-instances.json", asrc, "ec2:DescribeInstances", fmt.Sprintf(`{"InstanceId":%q,"State":{"Name":"running"}}`, inst))
		step("snapshot@"+node, "collect.ebs-snapshot", nodeParams, nil, func(res *playbooks.StepResult) {
			snap, vol := fmt.Sprintf("snap-0%015x", 0x5ad000+n), fmt.Sprintf("vol-0%015x", 0x7e1000+n)
			began := clk.Now().UTC()
			desc := fmt.Sprintf(`{"snapshot":%q,"volume":%q,"account":%q,"region":%q,"state":"completed","start":%q,"completion":%q,"size_gib":80,"encrypted":true,"kms_key":"alias/aws/ebs","tags":{"eksir:incident":"INC-2041"}}`,
				snap, vol, account, region, began.Format(time.RFC3339Nano), began.Add(8*time.Second).Format(time.RFC3339Nano))
			ssrc := evidence.Source{Cluster: cluster, Instance: inst, Region: region, ARN: "arn:aws:ec2:" + region + "::snapshot/" + snap}
			res.Items = []string{add("aws/snapshots/"+snap+".json", ssrc, "ec2:DescribeSnapshots", desc)}
			res.Outputs = map[string]any{"snapshots": []string{snap}}
		})
		step("cordon@"+node, "isolate.cordon-node", nodeParams, flag, func(res *playbooks.StepResult) {
			res.Outputs = map[string]any{"evicted": nil}
			res.Undo = json.RawMessage(fmt.Sprintf(`{"node":%q}`, node))
		})
	}
	record(playbooks.RecRunEnd, map[string]any{"partial": true, "outputs": map[string]any{"contained": false}})
	bc.records = len(c.Log().Records())
	if err := c.Close(); err != nil {
		tb.Fatal(err)
	}
	return bc
}

// BenchmarkReportFromCase1000Pods measures what a responder's `eksir
// report` does on the 1,000-pod, 100-node case: FromCase on the case
// folder (reading and checking every custody record's signature and link,
// indexing the items, replaying the journal) and then RenderHTML, per op;
// then JSON and Markdown rendering of the same model as sub-benchmarks.
// The case is built once, outside the timer, with the real APIs
// (buildCase). The target is under 2 s; the HTML size and the
// item count are asserted by TestReportFromCaseThousandPods.
func BenchmarkReportFromCase1000Pods(b *testing.B) {
	ctx := context.Background()
	bc := buildCase(ctx, b, b.TempDir(), 1000, 100)
	o := Options{Keys: bc.keys, Now: func() time.Time { return syntheticEpoch.Add(4 * time.Hour) }, Tool: "eksir v0.15.0"}
	metrics := func(b *testing.B, n int64) {
		b.ReportMetric(float64(n), "html-bytes")
		b.ReportMetric(float64(bc.collected+bc.notCollected), "items")
		b.ReportMetric(float64(bc.records), "records")
	}
	b.Run("fromcase+html", func(b *testing.B) {
		var w countingWriter
		b.ReportAllocs()
		for b.Loop() {
			w.n = 0
			r, err := FromCase(ctx, bc.dir, o)
			if err != nil {
				b.Fatal(err)
			}
			if err := RenderHTML(&w, r); err != nil {
				b.Fatal(err)
			}
		}
		metrics(b, w.n)
	})
	r, err := FromCase(ctx, bc.dir, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fromcase", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := FromCase(ctx, bc.dir, o); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, f := range []struct {
		name   string
		render func(io.Writer, *Report) error
	}{{"json", RenderJSON}, {"md", RenderMarkdown}} {
		b.Run(f.name, func(b *testing.B) {
			var w countingWriter
			b.ReportAllocs()
			for b.Loop() {
				w.n = 0
				if err := f.render(&w, r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(w.n), f.name+"-bytes")
		})
	}
}

// thousandPodCase is the benchmark's case at full size and its report,
// built once for the tests that check them.
var thousandPodCase = sync.OnceValues(func() (builtCase, *Report) {
	root, err := os.MkdirTemp("", "eksir-report-case-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	bc := buildCase(context.Background(), panicTB{}, root, 1000, 100)
	r, err := FromCase(context.Background(), bc.dir, Options{Keys: bc.keys, Now: func() time.Time { return syntheticEpoch.Add(4 * time.Hour) }, Tool: "eksir test"})
	if err != nil {
		panic(err)
	}
	return bc, r
})

// TestReportFromCaseThousandPods builds the benchmark's case at full size
// and checks the report of it: every item added is in the evidence list,
// every item not collected in its own list, every step in the timeline.
func TestReportFromCaseThousandPods(t *testing.T) {
	bc, r := thousandPodCase()
	if bc.collected != 6*1000+5*100 {
		t.Fatalf("the case holds %d items, want 6,500: buildCase changed", bc.collected)
	}
	if len(r.Evidence) != bc.collected || r.Summary.Items != bc.collected {
		t.Errorf("evidence: %d rows, summary %d, %d items added", len(r.Evidence), r.Summary.Items, bc.collected)
	}
	if len(r.NotCollected) != bc.notCollected || bc.notCollected == 0 {
		t.Errorf("not collected: %d rows, %d recorded", len(r.NotCollected), bc.notCollected)
	}
	if len(r.Timeline) != bc.steps || len(r.Custody) != bc.records || len(r.Snapshots) != 100 {
		t.Errorf("timeline %d (want %d), custody %d (want %d), snapshots %d (want 100)", len(r.Timeline), bc.steps, len(r.Custody), bc.records, len(r.Snapshots))
	}
	if r.Integrity.Status != IntegrityVerified {
		t.Errorf("integrity %s: %+v", r.Integrity.Status, r.Integrity.Checks)
	}
	t.Logf("%d items, %d not collected, %d steps, %d custody records", bc.collected, bc.notCollected, bc.steps, bc.records)
}

// TestReportFromCaseThousandPodsHTMLSize renders the report of the
// benchmark's case: the page must stay under the 5 MB.
func TestReportFromCaseThousandPodsHTMLSize(t *testing.T) {
	_, r := thousandPodCase()
	var w countingWriter
	if err := RenderHTML(&w, r); err != nil {
		t.Fatal(err)
	}
	const limit = 5_000_000
	if w.n >= limit {
		t.Errorf("the HTML report of the 1,000-pod case is %d bytes, the issue's limit is %d", w.n, limit)
	}
}

// TestFromCaseDrillTrendReusesTheCase checks that the drill trend FromCase
// builds from the case it already read (instead of reading its log again)
// is the trend DrillTrend reads from the case folder, with the case sealed
// and for a report made at the seal (AtSeal, which leaves the sealed
// record out of the report but not out of the trend).
func TestFromCaseDrillTrendReusesTheCase(t *testing.T) {
	root := t.TempDir()
	bc := buildCase(t.Context(), t, root, 30, 4)
	c, err := evidence.OpenCase(t.Context(), evidence.CaseOptions{Dir: root, Incident: filepath.Base(bc.dir), Signer: benchSigner(), Tool: "eksir test",
		Actor: "responder@ir-laptop", Now: func() time.Time { return syntheticEpoch.Add(24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Record(evidence.ActionSealed, map[string]string{"archive": "INC-2041.tar"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	want, _, err := DrillTrend(t.Context(), root, "pod-compromise", bc.keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 1 || want[0].TimeToSealedEvidenceMS == 0 {
		t.Fatalf("DrillTrend %+v: want the sealed drill", want)
	}
	r, err := FromCase(t.Context(), bc.dir, Options{Keys: bc.keys, Now: func() time.Time { return syntheticEpoch.Add(25 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Drill == nil || !slices.Equal(r.Drill.Trend, want) {
		t.Errorf("trend %+v, DrillTrend says %+v", r.Drill, want)
	}
	// The report a seal embeds is this drill alone, as it stood before the
	// seal: no other case folder is read into a sealed report.
	r, err = FromCase(t.Context(), bc.dir, Options{Keys: bc.keys, Now: func() time.Time { return syntheticEpoch.Add(25 * time.Hour) }, AtSeal: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Drill == nil || len(r.Drill.Trend) != 1 || r.Drill.Trend[0].Incident != want[0].Incident || r.Drill.Trend[0].TimeToSealedEvidenceMS != 0 {
		t.Errorf("AtSeal: trend %+v, want this drill alone, before its seal", r.Drill)
	}
}
