package handoff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/eksir/eksir/evidence"
)

// ParseS3URL splits s3://BUCKET/KEY.
func ParseS3URL(u string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" || strings.HasSuffix(key, "/") {
		return "", "", &Error{Err: fmt.Errorf("%q is not s3://BUCKET/KEY", u), hint: "name the archive object, for example s3://eksir-evidence-123456789012-us-east-1/cases/inc-1.tar.zst"}
	}
	return bucket, key, nil
}

// FetchOptions say where the archive goes and who records its receipt.
type FetchOptions struct {
	// VersionID selects an object version; empty takes the latest.
	VersionID string
	OutDir    string
	// HandOver says who receives it and why; From defaults to the S3 URL.
	HandOver evidence.HandOver
	Signer   *evidence.Signer
	Actor    string
	Now      func() time.Time
	Verify   evidence.VerifyOptions
}

// FetchResult is what a fetch wrote and recorded.
type FetchResult struct {
	Archive string            `json:"archive"`
	Object  evidence.S3Object `json:"object"`
	Record  evidence.Record   `json:"record"`
	Report  *evidence.Report  `json:"-"`
}

// Fetch downloads s3://bucket/key with its .sha256 sidecar and custody log
// into o.OutDir, verifies the archive as `eksir verify` does and, only if
// it passes, appends a signed received record to the custody log.
func Fetch(ctx context.Context, client S3API, bucket, key string, o FetchOptions) (*FetchResult, error) {
	if o.Signer == nil {
		return nil, &Error{Err: errors.New("no signing key"), hint: "pass --key FILE: custody records are always signed"}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OutDir == "" {
		return nil, &Error{Err: errors.New("--out is empty"), hint: "name a folder for the archive, for example --out ./received"}
	}
	if err := os.MkdirAll(o.OutDir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", o.OutDir, err)
	}
	archive := filepath.Join(o.OutDir, path.Base(key))
	for _, p := range []string{archive, archive + ".sha256", archive + ".custody.jsonl"} {
		if _, err := os.Lstat(p); err == nil {
			return nil, &Error{Err: existsError(p), hint: "fetch into an empty folder: a received archive is never overwritten"}
		}
	}
	res := &FetchResult{Archive: archive, Object: evidence.S3Object{Bucket: bucket, Key: key}}
	out, err := download(ctx, client, bucket, key, o.VersionID, archive)
	if err != nil {
		return res, err
	}
	res.Object.VersionID = aws.ToString(out.VersionId)
	res.Object.LockMode = string(out.ObjectLockMode)
	if out.ObjectLockRetainUntilDate != nil {
		res.Object.RetainUntil = out.ObjectLockRetainUntilDate.UTC().Format(time.RFC3339)
	}
	res.Object.LegalHold = out.ObjectLockLegalHoldStatus == s3types.ObjectLockLegalHoldStatusOn
	if _, err := download(ctx, client, bucket, key+".sha256", "", archive+".sha256"); err != nil {
		return res, err
	}
	if _, err := download(ctx, client, bucket, key+".custody.jsonl", "", archive+".custody.jsonl"); err != nil {
		return res, err
	}
	h := o.HandOver
	if h.From == "" {
		h.From = "s3://" + bucket + "/" + key
	}
	if h.To == "" {
		h.To = evidence.Actor(o.Actor)
	}
	if h.Reason == "" {
		h.Reason = "fetched from the evidence bucket"
	}
	h.S3 = &res.Object
	rep, rec, err := evidence.RecordHandOver(ctx, archive, evidence.ActionReceived, h, o.Signer, o.Actor, o.Now(), o.Verify)
	res.Report, res.Record = rep, rec
	if err != nil {
		return res, err
	}
	return res, nil
}

func existsError(p string) error { return fmt.Errorf("%s already exists", p) }

// download streams an object into file through a temporary file renamed
// into place, so an interrupted fetch leaves no partial archive.
func download(ctx context.Context, client S3API, bucket, key, version, file string) (*s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	// The archive is checked by verification below, against its signed
	// manifest; the SDK's response check would skip multipart objects
	// (their checksum is of part checksums) and log that it did.
	out, err := client.GetObject(ctx, in, func(so *s3.Options) { so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired })
	if err != nil {
		return nil, fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".part-*")
	if err != nil {
		return nil, fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.CopyBuffer(tmp, out.Body, make([]byte, 1<<20)); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("sync %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return nil, fmt.Errorf("download s3://%s/%s: %w", bucket, key, err)
	}
	return out, nil
}
