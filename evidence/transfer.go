package evidence

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	rec, err := AppendHandOver(archive, action, h, signer, actor, at, rep)
	return rep, rec, err
}

// AppendHandOver appends the signed hand-over record to
// <archive>.custody.jsonl from rep, a verification of archive made by the
// caller with the signer's key among its custodians: a hand-off that
// verified the archive while sending it need not read it a third time. The
// record is refused unless rep passed, names the archive's hash, and the
// custody log is still the one rep checked (another hand-over appended in
// between would fork the chain).
func AppendHandOver(archive, action string, h HandOver, signer *Signer, actor string, at time.Time, rep *Report) (Record, error) {
	rec, sync, err := WriteHandOver(archive, action, h, signer, actor, at, rep)
	if err != nil {
		return rec, err
	}
	return rec, sync()
}

// WriteHandOver is AppendHandOver without the wait for the disk: the record
// is appended, and sync, which the caller must call, makes it durable and
// closes the log. A hand-off that also stores the log in a bucket runs the
// two side by side; the record holds only once sync has returned nil.
func WriteHandOver(archive, action string, h HandOver, signer *Signer, actor string, at time.Time, rep *Report) (rec Record, sync func() error, err error) {
	if signer == nil {
		return Record{}, nil, errNoKey()
	}
	if !rep.OK {
		return Record{}, nil, &Error{Kind: ErrVerification, Msg: fmt.Sprintf("%s failed verification; no %s record was written", archive, action),
			hint: "do not hand over evidence that fails verification; run 'eksir verify' for the details"}
	}
	for _, c := range rep.Checks {
		if c.Name == "archive-sha256" && c.Status == StatusOK {
			h.ArchiveSHA256, h.Verified = c.Detail, true
		}
	}
	if !h.Verified {
		return Record{}, nil, invalidf("keep the .sha256 file next to the archive", "%s has no sidecar hash to re-check", archive)
	}
	if n := len(rep.Custody.Records); n > 0 && FormatTime(at) < rep.Custody.Records[n-1].Record.Time {
		return Record{}, nil, invalidf("check the clock of this machine", "the hand-over time %s is before the last custody record's %s; custody times never run backwards",
			FormatTime(at), rep.Custody.Records[n-1].Record.Time)
	}
	rec, err = newRecord(Actor(actor), action, at, h, nil)
	if err != nil {
		return rec, nil, err
	}
	line, rec, err := signRecord(rep.Custody.Head, signer, rec)
	if err != nil {
		return rec, nil, err
	}
	logFile := archive + ".custody.jsonl"
	f, err := os.OpenFile(logFile, os.O_RDWR|os.O_CREATE|os.O_APPEND, fileMode)
	if err != nil {
		return rec, nil, fmt.Errorf("open hand-over log: %w", err)
	}
	fail := func(err error) (Record, func() error, error) {
		f.Close()
		return rec, nil, err
	}
	sum := NewHash()
	n, err := io.Copy(sum, io.LimitReader(f, maxHandOverLog+1))
	if err != nil {
		return fail(fmt.Errorf("read hand-over log: %w", err))
	}
	if got := hexSum(sum); (n > 0 || rep.handOverLog != "") && got != rep.handOverLog {
		return fail(invalidf("run the hand-over again: it verifies the log as it is now", "%s changed after it was verified; no %s record was written", filepath.Base(logFile), action))
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fail(fmt.Errorf("append hand-over record: %w", err))
	}
	return rec, func() error {
		err := f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync hand-over log: %w", err)
		}
		return nil
	}, nil
}
