package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// syntheticEpoch is the fixed clock of the synthetic reports, so their
// renderings are byte-for-byte repeatable.
var syntheticEpoch = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// ts is a time d after the epoch with a nanosecond part, as the custody
// log writes them, so the sizes measured are those of real timestamps.
func ts(d time.Duration) string {
	return syntheticEpoch.Add(d + time.Duration(d.Milliseconds()%997)*time.Microsecond + 123).Format(time.RFC3339Nano)
}

// fakeHash is a deterministic SHA-256 standing in for an item's hash.
func fakeHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// syntheticReport builds the model of a case with pods suspect pods spread
// over nodes nodes, shaped as a pod-compromise run over each pod and a
// node-compromise run over each node would journal them: per pod six items
// and four steps, per node five items and three steps, a custody record per
// item and per step, and a drill trend. It is the 1,000-pod, 100-node case
// of the size and speed targets when called with (1000, 100).
func syntheticReport(pods, nodes int) *Report {
	const (
		cluster = "arn:aws:eks:eu-west-1:111122223333:cluster/prod-eu"
		account = "111122223333"
		actor   = "responder@ir-laptop"
		keyID   = "SHA256:q9Z1b0d3x3o2c6hT8y1mJ0ZbS7l2u4Yp8e5Vv0s1r2k"
	)
	r := &Report{
		APIVersion:  APIVersion,
		Kind:        Kind,
		GeneratedAt: ts(3 * time.Hour),
		GeneratedBy: "eksir v0.15.0",
		Source:      Source{Kind: SourceArchive, Path: "/cases/INC-2041.tar", Incident: "INC-2041", ArchiveSHA256: fakeHash("archive")},
		Integrity: Integrity{Status: IntegrityVerified, SignerKeyID: keyID, Pinned: true, Checks: []Check{
			{Name: "bag-declaration", Status: "ok", Path: "bagit.txt"},
			{Name: "payload-manifest", Status: "ok", Path: "manifest-sha256.txt"},
			{Name: "tag-manifest", Status: "ok", Path: "tagmanifest-sha256.txt"},
			{Name: "signature", Status: "ok", Path: "metadata/signature.dsse.json", Detail: "signed by " + keyID},
			{Name: "custody-chain", Status: "ok", Path: "metadata/custody.jsonl"},
		}},
	}
	s := &r.Summary
	s.Incident = "INC-2041"
	s.Clusters = []string{cluster}
	s.Accounts = []string{account}
	s.Identities = []string{actor, "arn:aws:sts::111122223333:assumed-role/IncidentResponder/responder", "kubernetes-admin"}
	s.Started = ts(0)
	s.SealedAt = ts(2*time.Hour + 50*time.Minute)
	s.Runs = []Run{
		{Playbook: "pod-compromise", File: "builtin:pod-compromise", SHA256: fakeHash("pod-compromise"), Inputs: map[string]string{"pod": "selector app=checkout"}, Actor: actor, Started: ts(0), Ended: ts(2 * time.Hour), Outcome: "partial", Drill: true},
		{Playbook: "node-compromise", File: "builtin:node-compromise", SHA256: fakeHash("node-compromise"), Inputs: map[string]string{"node": "selector pool=checkout"}, Actor: actor, Started: ts(2 * time.Hour), Ended: ts(2*time.Hour + 40*time.Minute), Outcome: "succeeded"},
	}
	s.Ended = ts(2*time.Hour + 40*time.Minute)

	var seq int64
	custody := func(at time.Duration, action, what string) {
		seq++
		r.Custody = append(r.Custody, CustodyEntry{Seq: seq, Time: ts(at), Actor: actor, Action: action, KeyID: keyID, What: what, File: "metadata/custody.jsonl", OK: true})
	}
	custody(0, "case-opened", "incident INC-2041")
	item := func(group, path, source, method string, size int64, at time.Duration) {
		it := Item{Path: path, Group: group, Source: source, Method: method, Size: size, SHA256: fakeHash(path), AcquiredAt: ts(at), By: actor + " as kubernetes-admin", Tool: "eksir v0.15.0"}
		r.Evidence = append(r.Evidence, it)
		custody(at, "acquire", path)
	}
	// Steps run with a fan-out of 8, so bars overlap as in a real run.
	step := func(id, target, action, kind, status string, start, dur time.Duration, items ...string) *Step {
		st := Step{ID: id, Target: target, Action: action, Kind: kind, Status: status, Started: ts(start), Finished: ts(start + dur), DurationMS: dur.Milliseconds(), Attempts: 1, Warnings: []string{}, Items: items}
		if items == nil {
			st.Items = []string{}
		}
		r.Timeline = append(r.Timeline, st)
		custody(start, "step-intent", id+" "+action)
		custody(start+dur, "step-result", id+" "+status)
		return &r.Timeline[len(r.Timeline)-1]
	}
	for p := 0; p < pods; p++ {
		ns := []string{"checkout", "payments", "web"}[p%3]
		pod := fmt.Sprintf("%s/%s-%05d-7f9c", ns, ns, p)
		node := fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", p%max(nodes, 1)/250, p%max(nodes, 1)%250)
		target := "pod/" + pod
		s.Targets = append(s.Targets, Target{Kind: "pod", Name: pod})
		base := time.Duration(p/8) * 6 * time.Second
		dir := "pods/" + pod + "/"
		src := "cluster prod-eu, pod " + pod + ", node " + node
		item(pod, dir+"pod.yaml", src, "k8s-get", 4200+int64(p%97), base+time.Second)
		item(pod, dir+"events.yaml", src, "k8s-list", 1800+int64(p%31), base+time.Second)
		item(pod, dir+"logs/app.log", src+", container app", "pod-logs", 512000+int64(p*13), base+2*time.Second)
		item(pod, dir+"logs/istio-proxy.log", src+", container istio-proxy", "pod-logs", 96000+int64(p*7), base+2*time.Second)
		item(pod, dir+"volatile/processes.json", src, "node-collector", 22000+int64(p%400), base+3*time.Second)
		item(pod, dir+"volatile/sockets.json", src, "node-collector", 9000+int64(p%300), base+3*time.Second)
		step("volatile@"+pod, target, "collect.volatile", "collect", "succeeded", base, 3*time.Second, dir+"volatile/processes.json", dir+"volatile/sockets.json")
		step("logs@"+pod, target, "collect.pod-logs", "collect", "succeeded", base+time.Second, 1500*time.Millisecond, dir+"logs/app.log", dir+"logs/istio-proxy.log")
		status := "succeeded"
		var errText string
		if p%250 == 7 {
			status, errText = "failed", "patch networkpolicy: context deadline exceeded"
		}
		iso := step("isolate@"+pod, target, "isolate.pod-network", "contain", status, base+3500*time.Millisecond, 1200*time.Millisecond)
		iso.Error = errText
		iso.Approval = &Approval{How: "flag", By: actor, At: ts(base)}
		step("label@"+pod, target, "isolate.label", "contain", "succeeded", base+4800*time.Millisecond, 300*time.Millisecond)
		r.Containment = append(r.Containment, Containment{Target: target, Step: "isolate@" + pod, Action: "isolate.pod-network", State: map[bool]string{true: ContainApplied, false: ContainFailed}[status == "succeeded"], Verified: status == "succeeded", AppliedAt: ts(base + 4700*time.Millisecond), Warnings: []string{}, StillInPlace: status == "succeeded"})
		if p%50 == 0 {
			r.NotCollected = append(r.NotCollected, Item{Path: dir + "checkpoint.tar", Group: pod, Source: src, Method: "kubelet-checkpoint", AcquiredAt: ts(base + 4*time.Second), By: actor, Tool: "eksir v0.15.0", Reason: "the kubelet's ContainerCheckpoint feature gate is off on " + node})
		}
	}
	for n := 0; n < nodes; n++ {
		node := fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", n/250, n%250)
		inst := fmt.Sprintf("i-0%015x", 0xabc000+n)
		group := "node/" + node
		target := "node/" + node
		s.Targets = append(s.Targets, Target{Kind: "node", Name: node}, Target{Kind: "instance", Name: inst})
		base := 2*time.Hour + time.Duration(n/4)*20*time.Second
		dir := "nodes/" + node + "/"
		src := "cluster prod-eu, node " + node + ", instance " + inst
		item(group, dir+"node.yaml", src, "k8s-get", 9000+int64(n), base+time.Second)
		item(group, dir+"journal/kubelet.journal", src, "node-collector", 8<<20+int64(n*101), base+5*time.Second)
		item(group, dir+"journal/containerd.journal", src, "node-collector", 4<<20+int64(n*37), base+5*time.Second)
		item(group, dir+"instance-metadata.json", src, "ec2-describe", 14000+int64(n), base+2*time.Second)
		item(group, dir+"snapshots/vol-root.json", src, "ebs-snapshot", 1200, base+9*time.Second)
		step("cordon@"+node, target, "isolate.cordon-node", "contain", "succeeded", base, 800*time.Millisecond)
		step("node-files@"+node, target, "collect.node-files", "collect", "succeeded", base+time.Second, 4*time.Second, dir+"journal/kubelet.journal", dir+"journal/containerd.journal")
		step("snapshot@"+node, target, "collect.ebs-snapshot", "collect", "succeeded", base+time.Second, 8*time.Second, dir+"snapshots/vol-root.json")
		r.Containment = append(r.Containment, Containment{Target: target, Step: "cordon@" + node, Action: "isolate.cordon-node", State: ContainApplied, Verified: true, AppliedAt: ts(base + 800*time.Millisecond), Warnings: []string{}, StillInPlace: true})
		r.Snapshots = append(r.Snapshots, Snapshot{SnapshotID: fmt.Sprintf("snap-0%015x", 0x5ad000+n), VolumeID: fmt.Sprintf("vol-0%015x", 0x7e1000+n), Instance: inst, State: "completed", SizeGiB: 80, Encrypted: true, KMSKeyID: "alias/aws/ebs", Started: ts(base + time.Second), Completed: ts(base + 9*time.Second), Descriptor: dir + "snapshots/vol-root.json", DescriptorSHA256: fakeHash(dir + "snapshots/vol-root.json")})
	}
	r.Credentials = []Credential{{Step: "revoke-sa", Action: "revoke.service-account", Kind: "service-account", Credential: "checkout/checkout-api", State: ContainApplied, RevokedAt: ts(time.Hour), BlastRadius: []string{"checkout/checkout-worker-0001", "checkout/checkout-worker-0002"}}}
	r.MemoryImages = []MemoryImage{}
	custody(2*time.Hour+50*time.Minute, "seal", "INC-2041.tar")
	for _, st := range r.Timeline {
		if st.Status == "failed" {
			s.StepsFailed++
		}
	}
	for _, c := range r.Containment {
		if c.StillInPlace {
			s.StillContained++
		}
	}
	s.Steps, s.Items, s.NotCollected = len(r.Timeline), len(r.Evidence), len(r.NotCollected)
	r.Verify = []Instruction{
		{Title: "Check the payload with standard tools", Commands: []string{"tar xf INC-2041.tar", "cd INC-2041 && sha256sum -c manifest-sha256.txt"}},
		{Title: "Check with eksir", Commands: []string{"eksir-verify INC-2041.tar --pubkey responder.pub"}},
	}
	r.Release = []Instruction{{Title: "Release every containment still in place", Commands: []string{"eksir release --incident INC-2041"}, Note: "Release only after the investigation no longer needs the suspects isolated."}}
	r.Drill = &Drill{Playbook: "pod-compromise", TimeToContainMS: 92000, TimeToSealedEvidenceMS: 610000, StepsFailed: s.StepsFailed, Completeness: 0.98, CompletenessDetail: "20 checkpoints not collected", Trend: []DrillPoint{
		{Incident: "DRILL-1", Started: "2026-09-01T09:00:00Z", TimeToContainMS: 240000, Completeness: 0.8},
		{Incident: "DRILL-2", Started: "2026-10-01T09:00:00Z", TimeToContainMS: 150000, StepsFailed: 2, Completeness: 0.9},
		{Incident: "INC-2041", Started: ts(0), TimeToContainMS: 92000, StepsFailed: s.StepsFailed, Completeness: 0.98},
	}}
	return r
}
