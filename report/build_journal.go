package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/playbooks"
)

// builder turns custody records (the engine's journal) and items into the
// report's sections.
type builder struct {
	r       *Report
	items   []evidence.Item
	records []evidence.RecordCheck
	// readItem returns a small item's bytes and whether they still hash to
	// the recorded SHA-256.
	readItem func(evidence.Item) ([]byte, bool)
	// descriptorProblems are snapshot descriptors whose bytes differ from
	// their recorded hash.
	descriptorProblems []Check

	steps map[string]*stepState
	runs  []*runState
	// overridden are the steps run without complete capture
	// (RecContainWithoutCapture): the engine put its warning first.
	overridden map[string]bool
}

// stepState is what the journal says about one step.
type stepState struct {
	id       string
	firstSeq int64
	action   string
	target   Target
	intents  int
	// pending: an intent not yet followed by its result.
	pending     bool
	resumed     bool
	intent      *playbooks.Intent
	intentRec   evidence.Record
	result      *playbooks.StepResult
	resultRec   evidence.Record
	undone      *playbooks.StepResult
	undoneRec   evidence.Record
	undoPending bool
}

type runState struct {
	run   Run
	start playbooks.RunStart
	added []playbooks.TargetsAdded
}

func (b *builder) build() {
	b.steps, b.overridden = map[string]*stepState{}, map[string]bool{}
	b.journal()
	b.timeline()
	b.containment()
	b.evidence()
	b.custody()
	b.summary()
	b.r.Release = releaseInstructions(b.r)
}

// journal replays the engine's records in log order.
func (b *builder) journal() {
	step := func(id string, seq int64) *stepState {
		s, ok := b.steps[id]
		if !ok {
			s = &stepState{id: id, firstSeq: seq}
			b.steps[id] = s
		}
		return s
	}
	var cur *runState
	for _, rc := range b.records {
		rec := rc.Record
		switch rec.Action {
		case playbooks.RecRunStart:
			var s playbooks.RunStart
			if json.Unmarshal(rec.Details, &s) != nil {
				continue
			}
			cur = &runState{start: s, run: Run{Playbook: s.Playbook, File: s.File, SHA256: s.SHA256, Inputs: nonNilMap(s.Inputs), Drill: s.Drill,
				Actor: rec.Actor, Started: rec.Time, Outcome: "interrupted"}}
			b.runs = append(b.runs, cur)
		case playbooks.RecTargetsAdded:
			var a playbooks.TargetsAdded
			if json.Unmarshal(rec.Details, &a) == nil && cur != nil {
				cur.added = append(cur.added, a)
			}
		case playbooks.RecRunEnd:
			var end struct {
				Partial bool `json:"partial"`
			}
			if json.Unmarshal(rec.Details, &end) == nil && cur != nil {
				cur.run.Ended, cur.run.Outcome = rec.Time, "succeeded"
				if end.Partial {
					cur.run.Outcome = "partial"
				}
			}
		case playbooks.RecIntent:
			var in playbooks.Intent
			if json.Unmarshal(rec.Details, &in) != nil {
				continue
			}
			s := step(in.Step, rec.Seq)
			if s.pending {
				s.resumed = true // the earlier attempt never ended: a crash or an interrupt
			}
			s.action, s.intents, s.pending = in.Action, s.intents+1, true
			s.intent, s.intentRec = &in, rec
			s.target = paramsTarget(in.Params)
			if cur != nil && cur.run.Ended != "" {
				cur.run.Ended, cur.run.Outcome = "", "interrupted" // resumed after an end: the run goes on
			}
		case playbooks.RecResult:
			var res playbooks.StepResult
			if json.Unmarshal(rec.Details, &res) != nil {
				continue
			}
			s := step(res.Step, rec.Seq)
			if s.action == "" {
				s.action = res.Action
			}
			s.result, s.resultRec, s.pending = &res, rec, false
		case playbooks.RecContainWithoutCapture:
			var d playbooks.ContainWithoutCapture
			if json.Unmarshal(rec.Details, &d) == nil {
				b.overridden[d.Step] = true
			}
		case playbooks.RecUndoStart:
			var in playbooks.Intent
			if json.Unmarshal(rec.Details, &in) == nil {
				step(in.Step, rec.Seq).undoPending = true
			}
		case playbooks.RecUndone:
			var res playbooks.StepResult
			if json.Unmarshal(rec.Details, &res) == nil {
				s := step(res.Step, rec.Seq)
				s.undone, s.undoneRec, s.undoPending = &res, rec, false
			}
		}
	}
}

// paramsTarget names what a step acted on from its journaled parameters.
func paramsTarget(raw json.RawMessage) Target {
	var p map[string]any
	if json.Unmarshal(raw, &p) != nil {
		return Target{}
	}
	for _, k := range []struct{ param, kind string }{
		{"service-account", "service-account"}, {"node", "node"}, {"instance", "instance"},
		{"role", "iam-role"}, {"access-key", "access-key"}, {"pod", "pod"}, {"target", "object"},
	} {
		if v, ok := p[k.param].(string); ok && v != "" {
			return Target{Kind: k.kind, Name: v}
		}
	}
	return Target{}
}

func (t Target) String() string {
	if t.Kind == "" {
		return ""
	}
	return t.Kind + " " + t.Name
}

// ordered returns the steps in the order of their first record.
func (b *builder) ordered() []*stepState {
	out := slices.Collect(maps.Values(b.steps))
	slices.SortFunc(out, func(x, y *stepState) int { return cmp.Or(cmp.Compare(x.firstSeq, y.firstSeq), cmp.Compare(x.id, y.id)) })
	return out
}

func isCollect(action string) bool { return strings.HasPrefix(action, "collect.") }

func (b *builder) timeline() {
	for _, s := range b.ordered() {
		st := Step{ID: s.id, Target: s.target.String(), Action: s.action, Kind: "contain", Attempts: s.intents, Resumed: s.resumed,
			Warnings: []string{}, Items: []string{}}
		if isCollect(s.action) {
			st.Kind = "collect"
		}
		if s.intent != nil {
			st.Started = s.intentRec.Time
			if a := s.intent.Approval; a != nil {
				st.Approval = &Approval{How: a.How, By: cmp.Or(a.By, s.intentRec.Actor), At: s.intentRec.Time}
			}
		}
		switch {
		case s.result != nil:
			res := s.result
			st.Status, st.Error = res.Status, res.Error
			st.Started = cmp.Or(journalTime(res.Started), st.Started)
			st.Finished = cmp.Or(journalTime(res.Finished), s.resultRec.Time)
			st.Warnings = append(st.Warnings, res.Warnings...)
			st.Items = append(st.Items, res.Items...)
		case s.intent != nil:
			st.Status = playbooks.StatusInDoubt
		}
		if st.Started != "" && st.Finished != "" {
			a, err1 := time.Parse(time.RFC3339Nano, st.Started)
			z, err2 := time.Parse(time.RFC3339Nano, st.Finished)
			if err1 == nil && err2 == nil && !z.Before(a) {
				st.DurationMS = z.Sub(a).Milliseconds()
			}
		}
		b.r.Timeline = append(b.r.Timeline, st)
	}
}

// journalTime renders a step result's RFC 3339 time as the custody log
// writes times, or "".
func journalTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return ""
	}
	return evidence.FormatTime(t)
}

// containState is a contain step's state, its release time and the
// warnings the release adds.
func containState(s *stepState) (state, releasedAt string, warnings []string) {
	switch {
	case s.result == nil && s.intent != nil:
		return ContainInDoubt, "", []string{"the step started and has no result (a crash or an interrupt): it may have changed things; resume or release"}
	case s.result == nil:
		return ContainNotRun, "", nil
	}
	switch s.result.Status {
	case playbooks.StatusSucceeded:
	case playbooks.StatusFailed:
		return ContainFailed, "", nil
	default:
		return ContainNotRun, "", nil
	}
	if s.undoPending {
		return ContainInDoubt, "", []string{"a release started and has no result: the step may be partly undone; run release again"}
	}
	if u := s.undone; u != nil {
		switch u.Status {
		case playbooks.StatusReleased:
			return ContainReleased, cmp.Or(journalTime(u.Finished), s.undoneRec.Time), nil
		case playbooks.StatusKept:
			return ContainApplied, "", []string{"kept at release: " + u.Error}
		case playbooks.StatusFailed:
			return ContainApplied, "", []string{"release failed: " + u.Error}
		default:
			return ContainApplied, "", []string{"release " + u.Status + ": " + u.Error}
		}
	}
	return ContainApplied, "", nil
}

// verified says whether a contain step checked its own effect: the
// action gave no warning, and outputs that report enforcement say it is
// enforced. overridden says the engine's contain-without-capture warning
// comes first: it is about the evidence, not the effect.
func verified(res *playbooks.StepResult, overridden bool) bool {
	if res == nil {
		return false
	}
	warnings := res.Warnings
	if overridden && len(warnings) > 0 {
		warnings = warnings[1:]
	}
	if len(warnings) > 0 {
		return false
	}
	if e, ok := res.Outputs["enforcement"]; ok && e != "enforced" {
		return false
	}
	if v, ok := res.Outputs["isolated"]; ok && v != true {
		return false
	}
	return true
}

func (b *builder) containment() {
	for _, s := range b.ordered() {
		if isCollect(s.action) || s.action == "" {
			continue
		}
		if s.result != nil && s.result.Status == playbooks.StatusConditionFalse {
			continue // the playbook's condition said it does not apply
		}
		state, releasedAt, extra := containState(s)
		c := Containment{Target: s.target.String(), Step: s.id, Action: s.action, State: state, ReleasedAt: releasedAt,
			Warnings: []string{}, StillInPlace: state == ContainApplied}
		if s.result != nil {
			c.Warnings = append(c.Warnings, s.result.Warnings...)
			if state == ContainApplied || state == ContainReleased {
				c.AppliedAt = cmp.Or(journalTime(s.result.Finished), s.resultRec.Time)
				c.Verified = verified(s.result, b.overridden[s.id])
			}
			if s.result.Error != "" && state != ContainApplied && state != ContainReleased {
				c.Warnings = append(c.Warnings, s.result.Error)
			}
		}
		c.Warnings = append(c.Warnings, extra...)
		b.r.Containment = append(b.r.Containment, c)
		if strings.HasPrefix(s.action, "revoke.") {
			b.r.Credentials = append(b.r.Credentials, credential(s, c))
		}
	}
}

// credentialKinds maps revoke actions to what they revoke.
var credentialKinds = map[string]string{
	"revoke.irsa-role": "iam-role", "revoke.pod-identity": "pod-identity", "revoke.instance-profile": "instance-profile",
	"revoke.access-key": "access-key", "revoke.service-account": "service-account",
}

func credential(s *stepState, c Containment) Credential {
	cr := Credential{Step: s.id, Action: s.action, Kind: cmp.Or(credentialKinds[s.action], strings.TrimPrefix(s.action, "revoke.")),
		State: c.State, BlastRadius: []string{}}
	if c.State == ContainApplied || c.State == ContainReleased {
		cr.RevokedAt = c.AppliedAt
	}
	var out map[string]any
	if s.result != nil {
		out = s.result.Outputs
	}
	str := func(k string) string { v, _ := out[k].(string); return v }
	switch s.action {
	case "revoke.access-key":
		keys := strings.Join(strList(out["keys"]), ", ")
		cr.Credential = strings.TrimSpace(cmp.Or(str("user"), s.target.Name) + " " + keys)
	case "revoke.instance-profile":
		cr.Credential = cmp.Or(str("profile"), str("role"))
	case "revoke.service-account":
		cr.Credential = s.target.Name
	default:
		cr.Credential = str("role")
	}
	if cr.Credential == "" {
		cr.Credential = s.target.Name
	}
	for _, k := range []string{"pods", "other_instances"} {
		cr.BlastRadius = append(cr.BlastRadius, strList(out[k])...)
	}
	slices.Sort(cr.BlastRadius)
	cr.BlastRadius = slices.Compact(cr.BlastRadius)
	return cr
}

// strList reads a journaled list of strings (JSON decodes it as []any).
func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// itemGroup is what an item is about.
func itemGroup(it evidence.Item) string {
	s := it.Source
	switch {
	case s.Namespace != "" && s.Pod != "":
		return s.Namespace + "/" + s.Pod
	case s.Node != "":
		return "node/" + s.Node
	case s.Instance != "":
		return "instance/" + s.Instance
	case s.ARN != "" || s.Region != "":
		return "aws"
	case s.Cluster != "":
		return "cluster"
	}
	return "case"
}

func itemSource(s evidence.Source) string {
	var parts []string
	for _, kv := range [][2]string{{"cluster", s.Cluster}, {"namespace", s.Namespace}, {"pod", s.Pod}, {"node", s.Node},
		{"container", s.Container}, {"instance", s.Instance}, {"arn", s.ARN}, {"region", s.Region}, {"host", s.Host}, {"path", s.Path}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	// ", " joins them, widest first (the pod before its node, the node
	// before a container), as the HTML expects: it states once, above a
	// group's table, the leading elements all its rows share.
	return strings.Join(parts, ", ")
}

func collectorOf(c evidence.Collector) string {
	who := c.OSUser
	if c.Host != "" {
		who += "@" + c.Host
	}
	for _, id := range []string{c.AWSCallerARN, c.KubeUser} {
		if id != "" {
			who += ", " + id
		}
	}
	return strings.TrimPrefix(who, ", ")
}

func (b *builder) evidence() {
	for _, it := range b.items {
		ri := Item{Path: it.Path, Group: itemGroup(it), Source: itemSource(it.Source), Method: it.Method, Size: it.Size, SHA256: it.SHA256,
			AcquiredAt: it.AcquisitionStart, By: collectorOf(it.Collector), Tool: it.Tool, Reason: it.Reason}
		if it.Status == evidence.StatusNotCollected {
			b.r.NotCollected = append(b.r.NotCollected, ri)
			continue
		}
		b.r.Evidence = append(b.r.Evidence, ri)
		switch {
		case isSnapshotDescriptor(it.Path):
			b.r.Snapshots = append(b.r.Snapshots, b.snapshot(it))
		case strings.HasSuffix(it.Path, "/memory.lime"):
			m := MemoryImage{Path: it.Path, Target: ri.Group, Method: it.Method, Size: it.Size, SHA256: it.SHA256}
			if _, theirs, ok := strings.Cut(it.Method, "instance sha256 "); ok {
				m.SourceSHA256 = strings.Fields(theirs + " ")[0]
			}
			b.r.MemoryImages = append(b.r.MemoryImages, m)
		}
	}
	byGroup := func(x, y Item) int { return cmp.Or(cmp.Compare(x.Group, y.Group), cmp.Compare(x.Path, y.Path)) }
	slices.SortFunc(b.r.Evidence, byGroup)
	slices.SortFunc(b.r.NotCollected, byGroup)
	slices.SortFunc(b.r.Snapshots, func(x, y Snapshot) int { return cmp.Compare(x.SnapshotID, y.SnapshotID) })
	slices.SortFunc(b.r.MemoryImages, func(x, y MemoryImage) int { return cmp.Compare(x.Path, y.Path) })
}

// snapshotDescriptor is the part of collect's SnapshotDescriptor
// (aws/snapshots/<id>.json) the report shows; report reads the JSON
// rather than importing collect and its AWS clients.
type snapshotDescriptor struct {
	Snapshot   string `json:"snapshot"`
	Volume     string `json:"volume"`
	Account    string `json:"account"`
	State      string `json:"state"`
	Start      string `json:"start"`
	Completion string `json:"completion"`
	SizeGiB    int64  `json:"size_gib"`
	Encrypted  bool   `json:"encrypted"`
	KMSKey     string `json:"kms_key"`
}

func (b *builder) snapshot(it evidence.Item) Snapshot {
	id := strings.TrimSuffix(it.Path[strings.LastIndexByte(it.Path, '/')+1:], ".json")
	sn := Snapshot{SnapshotID: id, Instance: it.Source.Instance, State: "unknown", Descriptor: it.Path, DescriptorSHA256: it.SHA256}
	if it.Source.Namespace != "" && it.Source.Pod != "" {
		sn.Pod = it.Source.Namespace + "/" + it.Source.Pod
	}
	data, ok := b.readItem(it)
	if data != nil && !ok {
		b.descriptorProblems = append(b.descriptorProblems, Check{Name: "item-checksum", Status: evidence.StatusFail, Path: it.Path,
			Detail: fmt.Sprintf("sha256 %s, the custody log recorded %s", evidence.SumHex(data), it.SHA256)})
		return sn
	}
	var d snapshotDescriptor
	if !ok || json.Unmarshal(data, &d) != nil {
		return sn
	}
	sn.SnapshotID = cmp.Or(d.Snapshot, id)
	sn.VolumeID, sn.State, sn.SizeGiB, sn.Encrypted, sn.KMSKeyID = d.Volume, d.State, d.SizeGiB, d.Encrypted, d.KMSKey
	sn.Started, sn.Completed = journalTime(d.Start), journalTime(d.Completion)
	return sn
}

func (b *builder) custody() {
	for _, rc := range b.records {
		rec := rc.Record
		b.r.Custody = append(b.r.Custody, CustodyEntry{Seq: rec.Seq, Time: rec.Time, Actor: rec.Actor, Action: rec.Action, KeyID: rec.Key,
			What: recordWhat(rec), File: rc.Source, OK: rc.OK, Problem: rc.Problem})
	}
}

// recordWhat says in one line what a custody record is about.
func recordWhat(rec evidence.Record) string {
	// The few members read, decoded into a struct: decoding every record's
	// whole details into a map was a tenth of FromCase on a 15,000-record
	// case. A member of another type (a record eksir did not write) fails
	// that decoding; the map then reads the other members as before.
	var w recordWhatDetails
	str := w.member
	if json.Unmarshal(rec.Details, &w) != nil {
		var d map[string]any
		_ = json.Unmarshal(rec.Details, &d)
		str = func(k string) string { v, _ := d[k].(string); return v }
		w.Partial, _ = d["partial"].(bool)
	}
	switch rec.Action {
	case evidence.ActionAcquired, evidence.ActionNotCollected:
		return strings.TrimSpace(str("path") + " " + str("reason"))
	case playbooks.RecRunStart:
		return "playbook " + str("playbook") + " started"
	case playbooks.RecRunEnd:
		if w.Partial {
			return "playbook ended, partial"
		}
		return "playbook ended"
	case playbooks.RecIntent, playbooks.RecUndoStart:
		return "step " + str("step") + " (" + str("action") + ")"
	case playbooks.RecResult, playbooks.RecUndone:
		return "step " + str("step") + " (" + str("action") + "): " + str("status")
	case playbooks.RecTargetsAdded:
		return "targets added to the run"
	case playbooks.RecContainWithoutCapture:
		return "step " + str("step") + " contained without complete capture, decided by " + str("decided_by")
	case evidence.ActionSealed:
		return "sealed " + str("archive")
	case evidence.ActionTransferred, evidence.ActionReceived, evidence.ActionVerified, evidence.ActionReleased:
		return rec.Action + " archive " + str("archive_sha256")
	}
	keys := slices.Sorted(maps.Keys(rec.Items))
	return strings.Join(keys, " ")
}

// recordWhatDetails are the details members recordWhat reads.
type recordWhatDetails struct {
	Path          string `json:"path"`
	Reason        string `json:"reason"`
	Playbook      string `json:"playbook"`
	Partial       bool   `json:"partial"`
	Step          string `json:"step"`
	Action        string `json:"action"`
	Status        string `json:"status"`
	DecidedBy     string `json:"decided_by"`
	Archive       string `json:"archive"`
	ArchiveSHA256 string `json:"archive_sha256"`
}

// member returns the member named k.
func (w *recordWhatDetails) member(k string) string {
	switch k {
	case "path":
		return w.Path
	case "reason":
		return w.Reason
	case "playbook":
		return w.Playbook
	case "step":
		return w.Step
	case "action":
		return w.Action
	case "status":
		return w.Status
	case "decided_by":
		return w.DecidedBy
	case "archive":
		return w.Archive
	case "archive_sha256":
		return w.ArchiveSHA256
	}
	return ""
}

func (b *builder) summary() {
	s := &b.r.Summary
	targets := map[Target]bool{}
	addInputs := func(in map[string]string) {
		for name, kind := range map[string]string{"pod": "pod", "node": "node", "instance": "instance", "service_account": "service-account",
			"role": "iam-role", "access_key": "access-key"} {
			if v := in[name]; v != "" {
				targets[Target{Kind: kind, Name: v}] = true
			}
		}
	}
	for _, rs := range b.runs {
		s.Runs = append(s.Runs, rs.run)
		addInputs(rs.start.Inputs)
		for _, tg := range rs.start.Targets {
			addInputs(tg)
		}
		for _, a := range rs.added {
			for _, tg := range a.Targets {
				addInputs(tg)
			}
		}
		if s.Started == "" || rs.run.Started < s.Started {
			s.Started = rs.run.Started
		}
		if rs.run.Ended > s.Ended {
			s.Ended = rs.run.Ended
		}
	}
	for _, st := range b.steps {
		if st.target.Kind != "" && st.intent != nil {
			targets[st.target] = true
		}
	}
	s.Targets = slices.SortedFunc(maps.Keys(targets), func(x, y Target) int { return cmp.Or(cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Name, y.Name)) })
	if s.Targets == nil {
		s.Targets = []Target{}
	}
	clusters, accounts, ids := set{}, set{}, set{}
	for _, it := range b.items {
		clusters.add(it.Source.Cluster)
		accounts.add(arnAccount(it.Source.ARN))
		accounts.add(arnAccount(it.Collector.AWSCallerARN))
		ids.add(it.Collector.AWSCallerARN)
		ids.add(it.Collector.KubeUser)
		if it.Collector.OSUser != "" && it.Collector.Host != "" {
			ids.add(it.Collector.OSUser + "@" + it.Collector.Host)
		}
	}
	for _, c := range b.r.Credentials {
		accounts.add(arnAccount(c.Credential))
	}
	for _, rc := range b.records {
		ids.add(rc.Record.Actor)
		if rc.Record.Action == evidence.ActionSealed && rc.Source == "metadata/custody.jsonl" {
			s.SealedAt = rc.Record.Time
		}
	}
	for _, st := range b.r.Timeline {
		if st.Approval != nil {
			ids.add(st.Approval.By)
		}
		s.Steps++
		if st.Status == playbooks.StatusFailed {
			s.StepsFailed++
		}
	}
	s.Clusters, s.Accounts, s.Identities = clusters.sorted(), accounts.sorted(), ids.sorted()
	s.Items, s.NotCollected = len(b.r.Evidence), len(b.r.NotCollected)
	for _, c := range b.r.Containment {
		if c.StillInPlace {
			s.StillContained++
		}
	}
}

// arnAccount returns an ARN's account field, or "".
func arnAccount(arn string) string {
	f := strings.Split(arn, ":")
	if len(f) < 6 || f[0] != "arn" {
		return ""
	}
	return f[4]
}

type set map[string]bool

func (s set) add(v string) {
	if v != "" {
		s[v] = true
	}
}

func (s set) sorted() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
