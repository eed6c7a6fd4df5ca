package report

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/eksir/eksir/evidence"
)

// Options configure FromCase and FromArchive.
type Options struct {
	// Keys are the trusted sealers' (and, for a case, the examiner's)
	// public keys; CustodyKeys are trusted for custody records only. With
	// no key at all, a case's records are checked for their chain links
	// only and an archive against the key inside the bag: the report says
	// the signer is not pinned.
	Keys, CustodyKeys evidence.KeyRing
	// Now dates the report (GeneratedAt); time.Now when nil. Nothing else
	// in the report comes from the clock.
	Now func() time.Time
	// Tool is GeneratedBy, e.g. "eksir 0.4.0".
	Tool string
	// CaseRoot is the folder holding every case folder, where the drill
	// trend looks for earlier drills; the case folder's parent when empty.
	CaseRoot string
	// AtSeal builds the report a seal puts into the bag: the case as it is
	// before its "sealed" record, so that sealing again with the same time
	// (which reuses that record) gives the same report and the same bytes.
	AtSeal bool
}

func (o Options) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// FromCase builds the report of the incident whose case folder is dir,
// reading it without changing it (evidence.ReadCase): the custody log
// with each record checked, and the items. A record that does not verify
// makes Integrity tampered; the report is still built from what the log
// holds.
func FromCase(ctx context.Context, dir string, o Options) (*Report, error) {
	keys := evidence.KeyRing{}
	for _, k := range []evidence.KeyRing{o.Keys, o.CustodyKeys} {
		for id, pub := range k {
			keys[id] = pub
		}
	}
	if len(keys) == 0 {
		keys = nil
	}
	cl, err := evidence.ReadCase(ctx, dir, keys)
	if err != nil {
		return nil, err
	}
	// The whole log, sealed records included, as DrillTrend reads it: the
	// drill trend's point for this case comes from it.
	whole := &readCase{dir: dir, records: cl.Records}
	if o.AtSeal {
		for n := len(cl.Records); n > 0 && cl.Records[n-1].Record.Action == evidence.ActionSealed; n-- {
			cl.Records = cl.Records[:n-1]
		}
	}
	r := newReport(o, Source{Kind: SourceCase, Path: dir, Incident: cl.Incident})
	r.Integrity = caseIntegrity(cl)
	b := &builder{r: r, items: cl.Items, records: cl.Records, readItem: func(it evidence.Item) ([]byte, bool) {
		return readCaseItem(dir, it)
	}}
	b.build()
	if bad := b.descriptorProblems; len(bad) > 0 {
		r.Integrity.Status = IntegrityTampered
		r.Integrity.Checks = append(r.Integrity.Checks, bad...)
	}
	r.Verify = caseVerify(cl.Incident, o.CaseRoot, dir)
	// The report a seal puts into the bag is about this case alone: the
	// trend would read every other case folder, and their changes would
	// change a sealed report that must come out the same when resealed.
	root := ""
	if !o.AtSeal {
		if root = o.CaseRoot; root == "" {
			root = filepath.Dir(filepath.Clean(dir))
		}
	}
	recs, _ := checkedRecords(cl.Records)
	if r.Drill, err = drillSection(ctx, cl.Incident, recs, root, keys, whole); err != nil {
		return nil, err
	}
	return r, nil
}

// drillSection scores a drill journaled in recs (nil when the run is not
// one) with its trend: the drills of the same playbook in caseRoot, or,
// without a case folder to look in (an archive), this drill alone. known,
// when not nil, is this case as already read, so that the trend does not
// read and verify its log again.
func drillSection(ctx context.Context, incident string, recs []evidence.Record, caseRoot string, keys evidence.KeyRing, known *readCase) (*Drill, error) {
	d, err := ScoreDrill(recs)
	if err != nil || d == nil {
		return nil, err
	}
	d.Trend = []DrillPoint{}
	if caseRoot != "" {
		if d.Trend, d.TrendUnread, err = drillTrend(ctx, caseRoot, d.Playbook, keys, known); err != nil {
			return nil, err
		}
	}
	if len(d.Trend) == 0 {
		d.Trend = append(d.Trend, DrillPoint{Incident: incident, Started: runStarted(recs), TimeToContainMS: d.TimeToContainMS,
			TimeToSealedEvidenceMS: d.TimeToSealedEvidenceMS, StepsFailed: d.StepsFailed, Completeness: d.Completeness})
	}
	return d, nil
}

// caseIntegrity is the verdict on a case's custody log.
func caseIntegrity(cl *evidence.CaseLog) Integrity {
	in := Integrity{Pinned: cl.Pinned, Checks: []Check{}}
	if len(cl.Records) > 0 {
		in.SignerKeyID = cl.Records[0].Record.Key
	}
	failed := 0
	for _, rc := range cl.Records {
		if !rc.OK {
			failed++
			in.Checks = append(in.Checks, Check{Name: "custody-chain", Status: evidence.StatusFail, Path: rc.Source,
				Detail: fmt.Sprintf("record %d: %s", rc.Record.Seq, rc.Problem)})
		}
	}
	switch {
	case failed > 0 || !cl.OK:
		in.Status = IntegrityTampered
	case !cl.Pinned:
		in.Status = IntegrityUnpinned
		in.Checks = append(in.Checks, Check{Name: "custody-chain", Status: evidence.StatusOK, Path: "metadata/custody.jsonl",
			Detail: fmt.Sprintf("%d records, chain links verify", len(cl.Records))},
			Check{Name: "signer-pinned", Status: evidence.StatusWarn, Path: "metadata/custody.jsonl",
				Detail: "no --pubkey or --key given: the records' signatures were not checked"})
	default:
		in.Status = IntegrityVerified
		in.Checks = append(in.Checks, Check{Name: "custody-chain", Status: evidence.StatusOK, Path: "metadata/custody.jsonl",
			Detail: fmt.Sprintf("%d records, signatures and links verify", len(cl.Records))})
	}
	return in
}

// readCaseItem reads a small item of the case (a snapshot descriptor) and
// says whether its bytes still have the hash the custody log recorded.
func readCaseItem(dir string, it evidence.Item) ([]byte, bool) {
	rel, ok := strings.CutPrefix(it.Path, "data/")
	if !ok || it.Size > evidence.MaxKeptPayload {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join(dir, "data", filepath.FromSlash(rel)))
	if err != nil {
		return nil, false
	}
	return b, evidence.SumHex(b) == it.SHA256
}

// FromArchive builds the report of a sealed archive in the one streaming
// pass of evidence.Verify, which hands back the custody log, bag-info.txt
// and the snapshot descriptors it read. A failing check makes Integrity
// tampered, with the failed checks listed; the report is still built from
// what the archive holds, so that a tampered archive's report says so at
// the top instead of not existing. The error is for I/O problems and an
// archive too broken to hold a custody log.
func FromArchive(ctx context.Context, archive string, o Options) (*Report, error) {
	rep, err := evidence.Verify(ctx, archive, evidence.VerifyOptions{Keys: o.Keys, CustodyKeys: o.CustodyKeys,
		KeepMetadata: true, KeepPayload: isSnapshotDescriptor})
	if err != nil {
		return nil, err
	}
	r := newReport(o, Source{Kind: SourceArchive, Path: archive, Incident: rep.Bag, ArchiveSHA256: rep.ArchiveSHA256})
	r.Integrity = archiveIntegrity(rep)
	var bagRecs []evidence.Record
	for _, rc := range rep.Custody.Records {
		if rc.Source == "metadata/custody.jsonl" {
			bagRecs = append(bagRecs, rc.Record)
		}
	}
	items, err := evidence.ItemsFromRecords(bagRecs)
	if err != nil {
		// A record the chain check already failed; the items it names are
		// left out rather than guessed.
		items = []evidence.Item{}
		r.Integrity.Status = IntegrityTampered
		r.Integrity.Checks = append(r.Integrity.Checks, Check{Name: "items", Status: evidence.StatusFail, Path: "metadata/custody.jsonl", Detail: err.Error()})
	}
	b := &builder{r: r, items: items, records: rep.Custody.Records, readItem: func(it evidence.Item) ([]byte, bool) {
		data, ok := rep.Metadata[it.Path]
		return data, ok && evidence.SumHex(data) == it.SHA256
	}}
	b.build()
	if bad := b.descriptorProblems; len(bad) > 0 {
		r.Integrity.Status = IntegrityTampered
		r.Integrity.Checks = append(r.Integrity.Checks, bad...)
	}
	if st := rep.Statement; st != nil && r.Summary.SealedAt == "" {
		r.Summary.SealedAt = st.Predicate.SealedAt
	}
	r.Verify = archiveVerify(archive, rep.Bag)
	if r.Drill, err = drillSection(ctx, rep.Bag, bagRecs, "", nil, nil); err != nil {
		return nil, err
	}
	return r, nil
}

// archiveIntegrity maps eksir verify's checks.
func archiveIntegrity(rep *evidence.Report) Integrity {
	in := Integrity{SignerKeyID: rep.SignerKeyID, Pinned: rep.Pinned, Checks: make([]Check, 0, len(rep.Checks))}
	for _, c := range rep.Checks {
		in.Checks = append(in.Checks, Check{Name: c.Name, Status: c.Status, Path: c.Path, Detail: c.Detail})
	}
	switch {
	case !rep.OK:
		in.Status = IntegrityTampered
	case !rep.Pinned:
		in.Status = IntegrityUnpinned
	default:
		in.Status = IntegrityVerified
	}
	return in
}

// isSnapshotDescriptor chooses the payload files FromArchive keeps: the
// EBS snapshot descriptors collect.ebs-snapshot writes.
func isSnapshotDescriptor(rel string) bool {
	return strings.HasPrefix(rel, "data/aws/snapshots/") && strings.HasSuffix(rel, ".json")
}

func newReport(o Options, src Source) *Report {
	return &Report{APIVersion: APIVersion, Kind: Kind, GeneratedAt: evidence.FormatTime(o.now()), GeneratedBy: o.Tool, Source: src,
		Containment: []Containment{}, Timeline: []Step{}, Evidence: []Item{}, NotCollected: []Item{}, Credentials: []Credential{},
		Snapshots: []Snapshot{}, MemoryImages: []MemoryImage{}, Custody: []CustodyEntry{}, Verify: []Instruction{}, Release: []Instruction{},
		Summary: Summary{Incident: src.Incident, Runs: []Run{}, Targets: []Target{}, Clusters: []string{}, Accounts: []string{}, Identities: []string{}}}
}
