package evidence

import (
	"context"
	"fmt"
	"os"
	"time"
)

// HandOver is a custody event after sealing: who released the evidence, who
// received it, where, why, and that its hash was re-checked.
type HandOver struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Reason   string `json:"reason"`
	Location string `json:"location,omitempty"`
	// ArchiveSHA256 is the hash re-computed before the hand-over.
	ArchiveSHA256 string `json:"archive_sha256"`
	Verified      bool   `json:"verified"`
	// S3 names the stored object when the hand-over went through a bucket.
	S3 *S3Object `json:"s3,omitempty"`
}

// S3Object is an object version in a bucket and how it is locked.
type S3Object struct {
	Bucket      string `json:"bucket"`
	Key         string `json:"key"`
	VersionID   string `json:"version_id,omitempty"`
	LockMode    string `json:"lock_mode,omitempty"`
	RetainUntil string `json:"retain_until,omitempty"`
	LegalHold   bool   `json:"legal_hold,omitempty"`
	// ReadBackSHA256 is the hash of the stored bytes as read back, when
	// they were.
	ReadBackSHA256 string `json:"readback_sha256,omitempty"`
}

// RecordHandOver re-verifies the archive and, only if every check passes,
// appends a signed record (transferred, verified or released) to
// <archive>.custody.jsonl, continuing the sealed chain. Verification covers
// the earlier hand-over records, each of which must name the archive's
// current hash; opts.Keys are the trusted sealers and opts.CustodyKeys the
// trusted custodians, to which the signer's own key is added.
func RecordHandOver(ctx context.Context, archive, action string, h HandOver, signer *Signer, actor string, at time.Time, opts VerifyOptions) (*Report, Record, error) {
	if signer == nil {
		return nil, Record{}, errNoKey()
	}
	// The signer's own key is trusted for its own earlier hand-over records.
	custodians := KeyRing{}
	for id, k := range opts.CustodyKeys {
		custodians[id] = k
	}
	custodians.Add(signer.Public())
	opts.CustodyKeys = custodians
	rep, err := Verify(ctx, archive, opts)
	if err != nil {
		return nil, Record{}, err
	}
	if !rep.OK {
		return rep, Record{}, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("%s failed verification; no %s record was written", archive, action),
			hint: "do not hand over evidence that fails verification; run 'eksir verify' for the details"}
	}
	for _, c := range rep.Checks {
		if c.Name == "archive-sha256" && c.Status == StatusOK {
			h.ArchiveSHA256, h.Verified = c.Detail, true
		}
	}
	if !h.Verified {
		return rep, Record{}, invalidf("keep the .sha256 file next to the archive", "%s has no sidecar hash to re-check", archive)
	}
	if n := len(rep.Custody.Records); n > 0 && FormatTime(at) < rep.Custody.Records[n-1].Record.Time {
		return rep, Record{}, invalidf("check the clock of this machine", "the hand-over time %s is before the last custody record's %s; custody times never run backwards",
			FormatTime(at), rep.Custody.Records[n-1].Record.Time)
	}
	rec, err := newRecord(Actor(actor), action, at, h, nil)
	if err != nil {
		return rep, rec, err
	}
	line, rec, err := signRecord(rep.Custody.Head, signer, rec)
	if err != nil {
		return rep, rec, err
	}
	f, err := os.OpenFile(archive+".custody.jsonl", os.O_WRONLY|os.O_CREATE|os.O_APPEND, fileMode)
	if err != nil {
		return rep, rec, fmt.Errorf("open hand-over log: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return rep, rec, fmt.Errorf("append hand-over record: %w", err)
	}
	if err := f.Sync(); err != nil {
		return rep, rec, fmt.Errorf("sync hand-over log: %w", err)
	}
	return rep, rec, nil
}
