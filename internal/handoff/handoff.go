// Package handoff hands a sealed archive over through an S3 bucket under
// Object Lock, and fetches it back on the lab's side. An upload writes a
// signed "transferred" custody record only after the stored object was read
// back and hashed on our side: S3 verifies ChecksumSHA256 itself, but
// emulators and proxies may not, and the record is a claim about the bytes
// the bucket holds. A fetch downloads, verifies as `eksir verify` does and
// records "received".
package handoff

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/eksir/eksir/evidence"
)

// S3API is the part of the S3 client a hand-off uses: the transfer
// manager's calls plus Object Lock and multipart housekeeping.
type S3API interface {
	transfermanager.S3APIClient
	GetObjectLockConfiguration(context.Context, *s3.GetObjectLockConfigurationInput, ...func(*s3.Options)) (*s3.GetObjectLockConfigurationOutput, error)
	PutObjectRetention(context.Context, *s3.PutObjectRetentionInput, ...func(*s3.Options)) (*s3.PutObjectRetentionOutput, error)
	PutObjectLegalHold(context.Context, *s3.PutObjectLegalHoldInput, ...func(*s3.Options)) (*s3.PutObjectLegalHoldOutput, error)
	ListMultipartUploads(context.Context, *s3.ListMultipartUploadsInput, ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
}

// MetaSHA256 is the user metadata key (x-amz-meta-sha256) holding the
// whole object's SHA-256 in hex: a multipart object's own checksum is a
// checksum of part checksums, which sha256sum cannot reproduce.
const MetaSHA256 = "sha256"

// Default sizes. The transfer manager copies every part into memory and
// holds Concurrency+1 of them plus the first, so memory is about
// (Concurrency+2) x PartSize: 48 MiB here, which keeps the whole process
// below the AWS CLI's private memory for the same upload. Against moto,
// parts of 8 MiB were faster than 5 MiB ones (fewer requests), and four in
// flight kept it as busy as the CLI's ten (docs/BENCHMARKS.md);
// --concurrency raises it for a fast link to real S3. A 4 GiB archive is
// 512 parts.
const (
	DefaultPartSize           = 8 << 20
	DefaultMultipartThreshold = 64 << 20
	DefaultConcurrency        = 4
	// maxParts leaves room under S3's 10,000 parts per upload.
	maxParts = 9000
)

// Lock modes.
const (
	ModeGovernance = "governance"
	ModeCompliance = "compliance"
)

// ErrUnlocked is returned for a bucket without Object Lock when the caller
// did not allow it.
var ErrUnlocked = errors.New("bucket has no Object Lock")

// ErrReadBack is returned when the stored object's bytes are not the
// archive's: nothing was recorded as transferred.
var ErrReadBack = errors.New("read-back of the stored object does not match the archive")

// Error is a hand-off error with a hint for the responder.
type Error struct {
	Err  error
	Msg  string
	hint string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Err.Error()
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Hint says what to do next.
func (e *Error) Hint() string { return e.hint }

// UploadOptions choose where and how the archive is stored.
type UploadOptions struct {
	Bucket string
	// Prefix is prepended to the archive's file name ("cases/inc-1/").
	Prefix string
	// RetainUntil or RetainDays set the retention; when both are zero the
	// bucket's default retention applies (an error if it has none).
	RetainUntil time.Time
	RetainDays  int
	// Mode is governance or compliance; empty takes the bucket default,
	// else governance.
	Mode      string
	LegalHold bool
	// AllowUnlocked accepts a bucket without Object Lock (with a warning).
	AllowUnlocked bool
	// SkipReadBack skips the GetObject hash of the stored object (warned):
	// for very large objects on real S3, which verifies ChecksumSHA256 itself.
	SkipReadBack bool
	// PartSize, MultipartThreshold and Concurrency tune the transfer
	// manager; zero takes the defaults above.
	PartSize, MultipartThreshold int64
	Concurrency                  int
	// HandOver says who releases the archive, to whom and why; the S3
	// location and hash are filled in.
	HandOver evidence.HandOver
	Signer   *evidence.Signer
	Actor    string
	Now      func() time.Time
	Verify   evidence.VerifyOptions
	// Warn receives warnings and progress messages; nil discards them.
	Warn io.Writer
	// Progress, when set, is told how many of the archive's bytes a
	// multipart upload has sent (a bar on terminals).
	Progress func(sent, total int64)
}

// progressListener hands the transfer manager's byte counts to
// UploadOptions.Progress.
type progressListener struct{ report func(sent, total int64) }

func (l progressListener) OnObjectBytesTransferred(_ context.Context, e *transfermanager.ObjectBytesTransferredEvent) {
	l.report(e.BytesTransferred, e.TotalBytes)
}

// Stored is one object written by an upload.
type Stored struct {
	Key       string `json:"key"`
	VersionID string `json:"version_id,omitempty"`
}

// UploadResult is what an upload stored and recorded.
type UploadResult struct {
	Bucket    string            `json:"bucket"`
	Archive   evidence.S3Object `json:"archive"`
	SHA256    string            `json:"sha256"`
	Size      int64             `json:"size"`
	Multipart bool              `json:"multipart"`
	Sidecar   Stored            `json:"sidecar"`
	Custody   Stored            `json:"custody_log"`
	Aborted   []string          `json:"aborted_uploads,omitempty"`
	Record    evidence.Record   `json:"record"`
	Report    *evidence.Report  `json:"-"`
}

type retention struct {
	mode  s3types.ObjectLockMode
	until time.Time
}

func (o *UploadOptions) warnf(format string, args ...any) {
	if o.Warn != nil {
		fmt.Fprintf(o.Warn, format+"\n", args...)
	}
}

// Upload re-verifies archive, stores it with its .sha256 sidecar under
// Object Lock, reads the stored object back, appends a signed transferred
// record to <archive>.custody.jsonl and stores that log too. It never
// records a transfer it could not confirm.
func Upload(ctx context.Context, client S3API, archive string, o UploadOptions) (*UploadResult, error) {
	if o.Signer == nil {
		return nil, &Error{Err: errors.New("no signing key"), hint: "pass --key FILE: custody records are always signed"}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// The uploader's own earlier hand-over records are trusted, as
	// RecordHandOver trusts them.
	custodians := evidence.KeyRing{}
	for id, k := range o.Verify.CustodyKeys {
		custodians[id] = k
	}
	custodians.Add(o.Signer.Public())
	o.Verify.CustodyKeys = custodians
	ret, locked, err := chooseRetention(ctx, client, o)
	if err != nil {
		return nil, err
	}
	// The sidecar's claim goes into the object's metadata before the
	// archive has been read; verification proves it before anything is
	// recorded, and before a multipart upload is completed.
	sum, err := evidence.SidecarSum(archive)
	if err != nil {
		return nil, err
	}
	base := filepath.Base(archive)
	key := path.Join(strings.TrimPrefix(o.Prefix, "/"), base)
	res := &UploadResult{Bucket: o.Bucket, SHA256: sum}
	if res.Aborted, err = abortStale(ctx, client, o, key); err != nil {
		return res, err
	}
	version, size, multipart, rep, err := putArchive(ctx, client, archive, key, sum, ret, locked, o)
	res.Report = rep
	if err != nil {
		return res, err
	}
	res.Size, res.Multipart = size, multipart
	obj, err := confirm(ctx, client, o, key, version, sum, size, ret, locked)
	if err != nil {
		return res, err
	}
	res.Archive = obj
	if res.Sidecar, err = putSmall(ctx, client, o, key+".sha256", archive+".sha256", ret, locked); err != nil {
		return res, err
	}
	h := o.HandOver
	h.S3 = &res.Archive
	// The archive was verified as it was sent and the stored bytes hash to
	// the verified hash: the record needs no third reading.
	rec, syncLog, err := evidence.WriteHandOver(archive, evidence.ActionTransferred, h, o.Signer, o.Actor, o.Now(), rep)
	if err != nil {
		return res, fmt.Errorf("record the transfer of s3://%s/%s: %w", o.Bucket, key, err)
	}
	res.Record = rec
	// The log goes last so that the bucket's copy holds the transferred
	// record; the local log stays the authority if this put fails. Its
	// fsync runs beside the put: after a large upload the disk may hold
	// gigabytes of other writes, and the wait can take seconds.
	synced := make(chan error, 1)
	go func() { synced <- syncLog() }()
	res.Custody, err = putSmall(ctx, client, o, key+".custody.jsonl", archive+".custody.jsonl", ret, locked)
	if serr := <-synced; serr != nil {
		return res, fmt.Errorf("the transfer record of s3://%s/%s may not be on disk: %w", o.Bucket, key, serr)
	}
	if err != nil {
		return res, fmt.Errorf("the transfer is recorded locally but the custody log was not stored: %w", err)
	}
	return res, nil
}

func archiveSum(rep *evidence.Report) string {
	for _, c := range rep.Checks {
		if c.Name == "archive-sha256" && c.Status == evidence.StatusOK {
			return c.Detail
		}
	}
	return ""
}

// chooseRetention reads the bucket's Object Lock configuration and settles
// the mode and retain-until date every object gets.
func chooseRetention(ctx context.Context, client S3API, o UploadOptions) (retention, bool, error) {
	var ret retention
	if o.Bucket == "" {
		return ret, false, &Error{Err: errors.New("--bucket is empty"), hint: "name the evidence bucket, for example --bucket eksir-evidence-123456789012-us-east-1"}
	}
	if !o.RetainUntil.IsZero() && o.RetainDays != 0 {
		return ret, false, &Error{Err: errors.New("--retain-until and --retain-days both given"), hint: "give one of them"}
	}
	if o.RetainDays < 0 {
		return ret, false, &Error{Err: fmt.Errorf("--retain-days %d is negative", o.RetainDays), hint: "give a number of days such as 365"}
	}
	switch strings.ToLower(o.Mode) {
	case "", ModeGovernance, ModeCompliance:
	default:
		return ret, false, &Error{Err: fmt.Errorf("--mode %q", o.Mode), hint: "use governance or compliance"}
	}
	out, err := client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(o.Bucket)})
	var ae smithy.APIError
	switch {
	case err != nil && errors.As(err, &ae) && ae.ErrorCode() == "ObjectLockConfigurationNotFoundError":
		if !o.AllowUnlocked {
			return ret, false, &Error{Err: ErrUnlocked, Msg: "s3://" + o.Bucket,
				hint: "evidence belongs in WORM storage: use a bucket created with Object Lock, or pass --allow-unlocked to store it where anyone with write access can delete it"}
		}
		o.warnf("WARNING: s3://%s has NO Object Lock: the archive can be deleted or overwritten by anyone with write access to the bucket", o.Bucket)
		return ret, false, nil
	case err != nil:
		return ret, false, fmt.Errorf("read the Object Lock configuration of s3://%s: %w", o.Bucket, err)
	}
	cfg := out.ObjectLockConfiguration
	if cfg == nil || cfg.ObjectLockEnabled != s3types.ObjectLockEnabledEnabled {
		if !o.AllowUnlocked {
			return ret, false, &Error{Err: ErrUnlocked, Msg: "s3://" + o.Bucket, hint: "use a bucket with Object Lock enabled, or pass --allow-unlocked"}
		}
		o.warnf("WARNING: s3://%s has NO Object Lock: the archive can be deleted or overwritten", o.Bucket)
		return ret, false, nil
	}
	var def *s3types.DefaultRetention
	if cfg.Rule != nil {
		def = cfg.Rule.DefaultRetention
	}
	ret.mode = s3types.ObjectLockMode(strings.ToUpper(o.Mode))
	if ret.mode == "" && def != nil {
		ret.mode = s3types.ObjectLockMode(def.Mode)
	}
	if ret.mode == "" {
		ret.mode = s3types.ObjectLockModeGovernance
	}
	now := o.Now()
	switch {
	case !o.RetainUntil.IsZero():
		ret.until = o.RetainUntil
	case o.RetainDays > 0:
		ret.until = now.AddDate(0, 0, o.RetainDays)
	case def != nil && aws.ToInt32(def.Days) > 0:
		ret.until = now.AddDate(0, 0, int(aws.ToInt32(def.Days)))
	case def != nil && aws.ToInt32(def.Years) > 0:
		ret.until = now.AddDate(int(aws.ToInt32(def.Years)), 0, 0)
	default:
		return ret, true, &Error{Err: errors.New("no retention"), Msg: "s3://" + o.Bucket + " has no default retention",
			hint: "pass --retain-days N or --retain-until TIME"}
	}
	if !ret.until.After(now) {
		return ret, true, &Error{Err: fmt.Errorf("retain-until %s is not in the future", ret.until.UTC().Format(time.RFC3339)), hint: "give a later date"}
	}
	// S3 keeps retention dates to the second; truncating keeps the
	// read-back comparison exact.
	ret.until = ret.until.UTC().Truncate(time.Second)
	return ret, true, nil
}

// abortStale aborts multipart uploads of key left by an interrupted run:
// their parts are billed and invisible, and a new upload starts clean.
func abortStale(ctx context.Context, client S3API, o UploadOptions, key string) ([]string, error) {
	var aborted []string
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(o.Bucket), Prefix: aws.String(key)}
	for {
		out, err := client.ListMultipartUploads(ctx, in)
		if err != nil {
			return aborted, fmt.Errorf("list unfinished uploads of s3://%s/%s: %w", o.Bucket, key, err)
		}
		for _, u := range out.Uploads {
			if aws.ToString(u.Key) != key {
				continue
			}
			id := aws.ToString(u.UploadId)
			if _, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(o.Bucket), Key: aws.String(key), UploadId: aws.String(id)}); err != nil {
				return aborted, fmt.Errorf("abort the unfinished upload %s of s3://%s/%s: %w", id, o.Bucket, key, err)
			}
			started := ""
			if u.Initiated != nil {
				started = " started " + u.Initiated.UTC().Format(time.RFC3339)
			}
			o.warnf("aborted an unfinished multipart upload of s3://%s/%s (upload %s%s); uploading again from the start", o.Bucket, key, id, started)
			aborted = append(aborted, id)
		}
		if !aws.ToBool(out.IsTruncated) {
			return aborted, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// checkedReport turns a verification into the error that stops a
// hand-off: a failed check, or an archive whose hash is not the one the
// upload announced in its metadata.
func checkedReport(archive, sum string, rep *evidence.Report, err error) error {
	if err != nil {
		return err
	}
	if !rep.OK {
		return &Error{Err: errors.New("verification failed"), Msg: archive,
			hint: "do not hand over evidence that fails verification; run 'eksir verify' for the details"}
	}
	if got := archiveSum(rep); got != sum {
		return &Error{Err: errors.New("the archive changed while it was read"), Msg: fmt.Sprintf("%s hashed to %s, its sidecar said %s", archive, got, sum),
			hint: "do not change an archive that is being handed over; run the upload again"}
	}
	return nil
}

// putArchive verifies and stores the archive. A small one is verified
// first and sent in one PUT carrying ChecksumSHA256 of the whole file,
// which S3 checks. A large one goes through the transfer manager while a
// verification reads it beside the upload: the upload cannot complete
// before the verification has passed (gatedReader), and a failed one
// aborts it, so nothing unverified is ever stored. S3 has no full-object
// SHA-256 for multipart uploads (those are CRC only), so parts carry their
// own SHA-256, which S3 checks per part, and the whole file's SHA-256 is in
// the metadata and read back.
func putArchive(ctx context.Context, client S3API, archive, key, sum string, ret retention, locked bool, o UploadOptions) (version string, size int64, multipart bool, rep *evidence.Report, err error) {
	f, err := os.Open(archive)
	if err != nil {
		return "", 0, false, nil, fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, false, nil, fmt.Errorf("stat archive: %w", err)
	}
	size = fi.Size()
	threshold := o.MultipartThreshold
	if threshold <= 0 {
		threshold = DefaultMultipartThreshold
	}
	partSize := o.PartSize
	if partSize <= 0 {
		partSize = DefaultPartSize
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	if size < threshold {
		rep, err = evidence.Verify(ctx, archive, o.Verify)
		if err := checkedReport(archive, sum, rep, err); err != nil {
			return "", size, false, rep, err
		}
		raw, _ := hex.DecodeString(sum)
		// One PUT streams the file: the SDK seeks it to sign and send, and
		// S3 checks ChecksumSHA256 against the bytes it receives.
		put := &s3.PutObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(key), Body: f, ContentLength: aws.Int64(size),
			ContentType: aws.String(contentType(archive)), Metadata: map[string]string{MetaSHA256: sum},
			ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(raw))}
		if locked {
			put.ObjectLockMode, put.ObjectLockRetainUntilDate = ret.mode, aws.Time(ret.until)
			if o.LegalHold {
				put.ObjectLockLegalHoldStatus = s3types.ObjectLockLegalHoldStatusOn
			}
		}
		out, err := client.PutObject(ctx, put)
		if err != nil {
			return "", size, false, rep, fmt.Errorf("upload s3://%s/%s: %w", o.Bucket, key, err)
		}
		return aws.ToString(out.VersionId), size, false, rep, nil
	}
	multipart = true
	if least := size/maxParts + 1; partSize < least {
		partSize = least
	}
	// The verification reads the file itself, sequentially and with a
	// small buffer: it is faster than any upload, and the part buffers are
	// the memory this command needs.
	vo := o.Verify
	vo.Sequential = true
	vctx, cancel := context.WithCancel(ctx)
	gate := &gatedReader{r: f, done: make(chan struct{})}
	go func() {
		defer close(gate.done)
		r, err := evidence.Verify(vctx, archive, vo)
		gate.rep, gate.err = r, checkedReport(archive, sum, r, err)
	}()
	defer func() {
		cancel()
		<-gate.done
		rep = gate.rep
	}()
	in := &transfermanager.UploadObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(key), Body: gate,
		ContentLength: aws.Int64(size), ContentType: aws.String(contentType(archive)),
		Metadata:          map[string]string{MetaSHA256: sum},
		ChecksumAlgorithm: tmtypes.ChecksumAlgorithmSha256}
	if locked {
		in.ObjectLockMode = tmtypes.ObjectLockMode(ret.mode)
		in.ObjectLockRetainUntilDate = aws.Time(ret.until)
		if o.LegalHold {
			in.ObjectLockLegalHoldStatus = tmtypes.ObjectLockLegalHoldStatusOn
		}
	}
	tm := transfermanager.New(client, func(to *transfermanager.Options) {
		to.PartSizeBytes = partSize
		// The manager reads its whole threshold into memory before it
		// decides; the decision is made above, so one part is enough.
		to.MultipartUploadThreshold = partSize
		to.Concurrency = conc
		to.ChecksumAlgorithm = tmtypes.ChecksumAlgorithmSha256
		if o.Progress != nil {
			to.ObjectProgressListeners.Register(progressListener{o.Progress})
		}
	})
	out, err := tm.UploadObject(ctx, in)
	if err != nil {
		<-gate.done
		if gate.err != nil {
			// The verification's failure is the cause; the manager has
			// aborted the upload.
			return "", size, multipart, gate.rep, gate.err
		}
		var mu transfermanager.MultipartUploadError
		if errors.As(err, &mu) {
			return "", size, multipart, nil, &Error{Err: err, Msg: fmt.Sprintf("upload s3://%s/%s (multipart upload %s)", o.Bucket, key, mu.UploadID()),
				hint: "run the upload again: unfinished uploads of this key are aborted first"}
		}
		return "", size, multipart, nil, fmt.Errorf("upload s3://%s/%s: %w", o.Bucket, key, err)
	}
	return aws.ToString(out.VersionID), size, multipart, nil, nil
}

// gatedReader is the upload's view of the archive: it gives the bytes as
// they are, but its end (io.EOF), without which the transfer manager does
// not complete the upload, only once the verification running beside it
// has passed. A failed verification becomes a read error, which makes the
// manager abort the upload; it is returned as soon as it is known.
type gatedReader struct {
	r    io.Reader
	done chan struct{}
	rep  *evidence.Report
	err  error
}

func (g *gatedReader) Read(p []byte) (int, error) {
	select {
	case <-g.done:
		if g.err != nil {
			return 0, g.err
		}
	default:
	}
	n, err := g.r.Read(p)
	if err == io.EOF {
		<-g.done
		if g.err != nil {
			return n, g.err
		}
	}
	return n, err
}

func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".zst"):
		return "application/zstd"
	case strings.HasSuffix(name, ".tar"):
		return "application/x-tar"
	}
	return "application/octet-stream"
}

// putSmall stores a sidecar file whole, with its SHA-256 checksum and the
// archive's retention.
func putSmall(ctx context.Context, client S3API, o UploadOptions, key, file string, ret retention, locked bool) (Stored, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Stored{}, fmt.Errorf("read %s: %w", filepath.Base(file), err)
	}
	sum := sha256.Sum256(b)
	in := &s3.PutObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(key), Body: strings.NewReader(string(b)),
		ContentLength: aws.Int64(int64(len(b))), ContentType: aws.String("text/plain"),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		Metadata: map[string]string{MetaSHA256: hex.EncodeToString(sum[:])}}
	if locked {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = ret.mode, aws.Time(ret.until)
		if o.LegalHold {
			in.ObjectLockLegalHoldStatus = s3types.ObjectLockLegalHoldStatusOn
		}
	}
	out, err := client.PutObject(ctx, in)
	if err != nil {
		return Stored{}, fmt.Errorf("upload s3://%s/%s: %w", o.Bucket, key, err)
	}
	version := aws.ToString(out.VersionId)
	if _, err := readBack(ctx, client, o.Bucket, key, version, hex.EncodeToString(sum[:])); err != nil {
		return Stored{}, err
	}
	return Stored{Key: key, VersionID: version}, nil
}

// confirm reads the archive's version back: its metadata hash, size and
// lock (set afterwards where the store ignored the lock headers, as moto
// does on multipart uploads), then, unless skipped, its bytes.
func confirm(ctx context.Context, client S3API, o UploadOptions, key, version, sum string, size int64, ret retention, locked bool) (evidence.S3Object, error) {
	obj := evidence.S3Object{Bucket: o.Bucket, Key: key, VersionID: version}
	head, err := headObject(ctx, client, o.Bucket, key, version)
	if err != nil {
		return obj, err
	}
	if got := head.Metadata[MetaSHA256]; got != sum {
		return obj, &Error{Err: ErrReadBack, Msg: fmt.Sprintf("s3://%s/%s metadata sha256 %q, want %s", o.Bucket, key, got, sum), hint: "upload again"}
	}
	if got := aws.ToInt64(head.ContentLength); got != size {
		return obj, &Error{Err: ErrReadBack, Msg: fmt.Sprintf("s3://%s/%s holds %d bytes, the archive has %d", o.Bucket, key, got, size), hint: "upload again"}
	}
	if locked {
		if head.ObjectLockMode != ret.mode || head.ObjectLockRetainUntilDate == nil || head.ObjectLockRetainUntilDate.Before(ret.until) {
			// S3 requires a checksum on lock changes; the SDK sends one when
			// asked for an algorithm.
			if _, err := client.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String(o.Bucket), Key: aws.String(key), VersionId: aws.String(version),
				ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256,
				Retention:         &s3types.ObjectLockRetention{Mode: s3types.ObjectLockRetentionMode(ret.mode), RetainUntilDate: aws.Time(ret.until)}}); err != nil {
				return obj, fmt.Errorf("set retention on s3://%s/%s: %w", o.Bucket, key, err)
			}
		}
		if o.LegalHold && head.ObjectLockLegalHoldStatus != s3types.ObjectLockLegalHoldStatusOn {
			if _, err := client.PutObjectLegalHold(ctx, &s3.PutObjectLegalHoldInput{Bucket: aws.String(o.Bucket), Key: aws.String(key), VersionId: aws.String(version),
				ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256,
				LegalHold:         &s3types.ObjectLockLegalHold{Status: s3types.ObjectLockLegalHoldStatusOn}}); err != nil {
				return obj, fmt.Errorf("set legal hold on s3://%s/%s: %w", o.Bucket, key, err)
			}
		}
		if head, err = headObject(ctx, client, o.Bucket, key, version); err != nil {
			return obj, err
		}
		if head.ObjectLockMode != ret.mode || head.ObjectLockRetainUntilDate == nil || head.ObjectLockRetainUntilDate.Before(ret.until) {
			return obj, &Error{Err: errors.New("the stored object is not locked as asked"), Msg: fmt.Sprintf("s3://%s/%s: mode %q until %v", o.Bucket, key, head.ObjectLockMode, head.ObjectLockRetainUntilDate),
				hint: "check the bucket's Object Lock configuration and the caller's s3:PutObjectRetention permission"}
		}
		if o.LegalHold && head.ObjectLockLegalHoldStatus != s3types.ObjectLockLegalHoldStatusOn {
			return obj, &Error{Err: errors.New("the legal hold did not take"), Msg: "s3://" + o.Bucket + "/" + key, hint: "check the caller's s3:PutObjectLegalHold permission"}
		}
		obj.LockMode = string(head.ObjectLockMode)
		obj.RetainUntil = head.ObjectLockRetainUntilDate.UTC().Format(time.RFC3339)
		obj.LegalHold = head.ObjectLockLegalHoldStatus == s3types.ObjectLockLegalHoldStatusOn
	}
	if o.SkipReadBack {
		o.warnf("WARNING: the stored bytes of s3://%s/%s were not read back; the record relies on S3's own checksum check", o.Bucket, key)
		return obj, nil
	}
	got, err := readBack(ctx, client, o.Bucket, key, version, sum)
	if err != nil {
		return obj, err
	}
	obj.ReadBackSHA256 = got
	return obj, nil
}

// headObject reads an object version's metadata; version may be empty
// for a bucket without versioning.
func headObject(ctx context.Context, client S3API, bucket, key, version string) (*s3.HeadObjectOutput, error) {
	in := &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	out, err := client.HeadObject(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("read back s3://%s/%s: %w", bucket, key, err)
	}
	return out, nil
}

// readBack streams the object version through SHA-256 and compares it
// with want.
func readBack(ctx context.Context, client S3API, bucket, key, version, want string) (string, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	// The SDK's own response check is off: the hash below is the one the
	// record states, and it must see every byte the store returns.
	out, err := client.GetObject(ctx, in, func(so *s3.Options) { so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired })
	if err != nil {
		return "", fmt.Errorf("read back s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, out.Body, make([]byte, 1<<20)); err != nil {
		return "", fmt.Errorf("read back s3://%s/%s: %w", bucket, key, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		return got, &Error{Err: ErrReadBack, Msg: fmt.Sprintf("s3://%s/%s version %s hashes to %s, the archive to %s", bucket, key, version, got, want),
			hint: "the bytes were changed in transit or in storage; no transfer was recorded: upload again and check the network path"}
	}
	return got, nil
}
