// Package report turns a case or a sealed archive into the incident
// report: what happened, what was contained and whether it still is, what
// was collected with its hashes, what could not be and why, which
// credentials were revoked, the custody chain with each record checked,
// and how to verify everything without eksir. It reads the case (its
// custody log, which is also the engine's journal) or the archive and
// never changes either. One model (Report) is rendered three ways: JSON
// for machines (docs/report.schema.json), Markdown for tickets and one
// self-contained HTML page for people.
package report

// APIVersion versions the JSON form. A field is only ever added within a
// version; renaming or removing one makes a new version.
const APIVersion = "eksir.dev/report/v1"

// Kind is the JSON form's kind.
const Kind = "IncidentReport"

// Report is the whole report. Times are UTC, RFC 3339 with nanoseconds as
// in the custody log; durations are milliseconds. Lists are never null in
// JSON (empty lists are []), so a consumer need not tell absent from empty.
type Report struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// GeneratedAt and GeneratedBy say when and by which tool version the
	// report was made (not when the evidence was).
	GeneratedAt string `json:"generatedAt"`
	GeneratedBy string `json:"generatedBy"`
	Source      Source `json:"source"`
	// Integrity is the verification of what the report was made from; a
	// report of a tampered archive says so here and at the top of every
	// rendering.
	Integrity    Integrity      `json:"integrity"`
	Summary      Summary        `json:"summary"`
	Containment  []Containment  `json:"containment"`
	Timeline     []Step         `json:"timeline"`
	Evidence     []Item         `json:"evidence"`
	NotCollected []Item         `json:"notCollected"`
	Credentials  []Credential   `json:"credentials"`
	Snapshots    []Snapshot     `json:"snapshots"`
	MemoryImages []MemoryImage  `json:"memoryImages"`
	Custody      []CustodyEntry `json:"custody"`
	// Verify lists the exact commands that check the archive with standard
	// tools and with eksir.
	Verify []Instruction `json:"verify"`
	// Release lists how to release what is still contained.
	Release []Instruction `json:"release"`
	// Drill is set for a game-day run.
	Drill *Drill `json:"drill,omitempty"`
}

// Source kinds.
const (
	SourceCase    = "case"
	SourceArchive = "archive"
)

// Source is what the report was made from.
type Source struct {
	// Kind is SourceCase or SourceArchive.
	Kind string `json:"kind"`
	// Path is the case folder or the archive file as given.
	Path     string `json:"path"`
	Incident string `json:"incident"`
	// ArchiveSHA256 is the archive file's hash (archives only).
	ArchiveSHA256 string `json:"archiveSha256,omitempty"`
}

// Integrity statuses.
const (
	// IntegrityVerified: every check passed (an archive: as eksir verify;
	// a case: every custody record's chain link and signature).
	IntegrityVerified = "verified"
	// IntegrityTampered: at least one check failed.
	IntegrityTampered = "tampered"
	// IntegrityUnpinned: the checks passed, but with the key found in the
	// bag or case rather than a key the reader trusts.
	IntegrityUnpinned = "verified-unpinned"
)

// Integrity is the verdict on the source.
type Integrity struct {
	Status      string  `json:"status"`
	SignerKeyID string  `json:"signerKeyId,omitempty"`
	Pinned      bool    `json:"pinned"`
	Checks      []Check `json:"checks"`
}

// Check is one verification check, as eksir verify reports it.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Path   string `json:"path,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Summary is the report's first section.
type Summary struct {
	Incident string `json:"incident"`
	// Runs are the playbook runs journaled in the case, first to last.
	Runs []Run `json:"runs"`
	// Targets are every target the runs named, each once.
	Targets  []Target `json:"targets"`
	Clusters []string `json:"clusters"`
	Accounts []string `json:"accounts"`
	// Identities are who acted: custody actors (OS user@host), the AWS
	// caller ARNs and Kubernetes users the items record.
	Identities []string `json:"identities"`
	Started    string   `json:"started,omitempty"`
	Ended      string   `json:"ended,omitempty"`
	SealedAt   string   `json:"sealedAt,omitempty"`
	// Counts of what the sections below list.
	Steps        int `json:"steps"`
	StepsFailed  int `json:"stepsFailed"`
	Items        int `json:"items"`
	NotCollected int `json:"notCollected"`
	// StillContained counts containment steps applied and not released.
	StillContained int `json:"stillContained"`
}

// Run is one playbook run (a resume continues the same run).
type Run struct {
	Playbook string `json:"playbook"`
	File     string `json:"file,omitempty"`
	// SHA256 is the playbook text's hash, as journaled at the start.
	SHA256  string            `json:"sha256"`
	Inputs  map[string]string `json:"inputs"`
	Drill   bool              `json:"drill"`
	Actor   string            `json:"actor"`
	Started string            `json:"started"`
	Ended   string            `json:"ended,omitempty"`
	// Outcome is succeeded, partial, interrupted (no end record) or
	// running.
	Outcome string `json:"outcome"`
}

// Target is one thing a run acted on.
type Target struct {
	// Kind is pod, node, instance, iam-role, access-key, service-account...
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Containment states.
const (
	ContainApplied  = "applied"
	ContainReleased = "released"
	ContainFailed   = "failed"
	ContainInDoubt  = "in-doubt"
	ContainNotRun   = "not-run"
)

// Containment is one containment step on one target.
type Containment struct {
	Target string `json:"target"`
	Step   string `json:"step"`
	Action string `json:"action"`
	State  string `json:"state"`
	// Verified says the action checked its own effect (for example the
	// quarantine is enforced); false with Warnings saying why not.
	Verified   bool     `json:"verified"`
	AppliedAt  string   `json:"appliedAt,omitempty"`
	ReleasedAt string   `json:"releasedAt,omitempty"`
	Warnings   []string `json:"warnings"`
	// StillInPlace: applied and not released, as far as the journal says.
	StillInPlace bool `json:"stillInPlace"`
}

// Step is one step of the timeline.
type Step struct {
	ID     string `json:"id"`
	Target string `json:"target,omitempty"`
	Action string `json:"action"`
	// Kind is collect or contain.
	Kind       string `json:"kind"`
	Status     string `json:"status"`
	Started    string `json:"started,omitempty"`
	Finished   string `json:"finished,omitempty"`
	DurationMS int64  `json:"durationMs"`
	// Approval is set for a step that asked for one.
	Approval *Approval `json:"approval,omitempty"`
	// Attempts counts the step's intents: more than one means it was
	// retried or resumed.
	Attempts int `json:"attempts"`
	// Resumed says a later run finished a step a crash or interrupt left
	// in doubt.
	Resumed  bool     `json:"resumed"`
	Error    string   `json:"error,omitempty"`
	Warnings []string `json:"warnings"`
	Items    []string `json:"items"`
}

// Approval is who let a step that requires approval run.
type Approval struct {
	// How is prompt, flag (--approve STEP) or yes (--yes).
	How string `json:"how"`
	By  string `json:"by"`
	At  string `json:"at,omitempty"`
}

// Item is one evidence item (collected or not).
type Item struct {
	Path string `json:"path"`
	// Group is what the item is about, for grouping in the renderings:
	// namespace/pod, node/NAME, instance/ID, aws, cluster or case.
	Group string `json:"group"`
	// Source is the item's source in one line (cluster, pod, container,
	// node, instance, ARN, path: those that apply).
	Source     string `json:"source"`
	Method     string `json:"method"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256,omitempty"`
	AcquiredAt string `json:"acquiredAt"`
	// By is the collector: OS user@host, and the AWS or Kubernetes
	// identity used.
	By   string `json:"by"`
	Tool string `json:"tool"`
	// Reason is why a not-collected item was not.
	Reason string `json:"reason,omitempty"`
}

// Credential is one credential revocation.
type Credential struct {
	Step   string `json:"step"`
	Action string `json:"action"`
	// Kind is iam-role, pod-identity, instance-profile, access-key or
	// service-account.
	Kind string `json:"kind"`
	// Credential names what was revoked (role ARN, key ID, namespace/sa).
	Credential string `json:"credential"`
	State      string `json:"state"`
	RevokedAt  string `json:"revokedAt,omitempty"`
	// BlastRadius is every other workload the revocation also cut off, as
	// shown at planning (pods sharing the role, ...).
	BlastRadius []string `json:"blastRadius"`
}

// Snapshot is one EBS snapshot taken as evidence.
type Snapshot struct {
	SnapshotID string `json:"snapshotId"`
	VolumeID   string `json:"volumeId"`
	Instance   string `json:"instance,omitempty"`
	Pod        string `json:"pod,omitempty"`
	State      string `json:"state"`
	SizeGiB    int64  `json:"sizeGiB"`
	Encrypted  bool   `json:"encrypted"`
	KMSKeyID   string `json:"kmsKeyId,omitempty"`
	Started    string `json:"started,omitempty"`
	Completed  string `json:"completed,omitempty"`
	// Descriptor is the evidence item describing it, and its hash.
	Descriptor       string `json:"descriptor"`
	DescriptorSHA256 string `json:"descriptorSha256"`
}

// MemoryImage is one memory capture.
type MemoryImage struct {
	Path   string `json:"path"`
	Target string `json:"target"`
	Method string `json:"method"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// SourceSHA256 is the hash the capturing host reported, when it did.
	SourceSHA256 string `json:"sourceSha256,omitempty"`
}

// CustodyEntry is one custody record with its verdict.
type CustodyEntry struct {
	Seq    int64  `json:"seq"`
	Time   string `json:"time"`
	Actor  string `json:"actor"`
	Action string `json:"action"`
	KeyID  string `json:"keyId"`
	// What says in one line what the record is about.
	What string `json:"what"`
	// File is the log the record came from (metadata/custody.jsonl or the
	// archive's .custody.jsonl).
	File    string `json:"file"`
	OK      bool   `json:"ok"`
	Problem string `json:"problem,omitempty"`
}

// Instruction is a titled list of commands to run as they are.
type Instruction struct {
	Title    string   `json:"title"`
	Commands []string `json:"commands"`
	Note     string   `json:"note,omitempty"`
}

// Drill is a game day's score.
type Drill struct {
	Playbook               string `json:"playbook"`
	TimeToContainMS        int64  `json:"timeToContainMs"`
	TimeToSealedEvidenceMS int64  `json:"timeToSealedEvidenceMs,omitempty"`
	StepsFailed            int    `json:"stepsFailed"`
	StepsSkipped           int    `json:"stepsSkipped"`
	// Completeness is the share (0 to 1) of the evidence the playbook's
	// collection steps intended that was collected; CompletenessDetail
	// says what was missing.
	Completeness       float64 `json:"completeness"`
	CompletenessDetail string  `json:"completenessDetail"`
	// Trend is this drill and the earlier drills of the same playbook
	// found in the case folder, oldest first.
	Trend []DrillPoint `json:"trend"`
	// TrendUnread names the case folders the trend could not read, with
	// why: a broken or unreadable case beside this one leaves the report
	// standing, and the reader knows the trend may miss a drill.
	TrendUnread []string `json:"trendUnread"`
}

// DrillPoint is one drill in the trend.
type DrillPoint struct {
	Incident               string  `json:"incident"`
	Started                string  `json:"started"`
	TimeToContainMS        int64   `json:"timeToContainMs"`
	TimeToSealedEvidenceMS int64   `json:"timeToSealedEvidenceMs,omitempty"`
	StepsFailed            int     `json:"stepsFailed"`
	Completeness           float64 `json:"completeness"`
	// Problem says why this drill's custody log did not verify with the
	// reader's keys (a tampered case, or one signed by another examiner);
	// empty when it verified or was read without keys.
	Problem string `json:"problem,omitempty"`
}
