package handoff_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/handoff"
	"github.com/eksir/eksir/internal/labtest"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// sealed seals a folder holding size random bytes with signer, uncompressed
// so that the archive is as large as the payload, and returns its path.
func sealed(t *testing.T, incident string, size int, signer *evidence.Signer) string {
	t.Helper()
	src := t.TempDir()
	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "memory.lime"), payload, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := evidence.SealDir(t.Context(), src, evidence.SealOptions{Incident: incident, OutDir: t.TempDir(),
		Compress: evidence.CompressNone, Signer: signer, Tool: "eksir test", Actor: "tester"})
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return res.Archive
}

func newSigner(t *testing.T) *evidence.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return evidence.NewSigner(priv)
}

func keys(s *evidence.Signer) evidence.VerifyOptions {
	r := evidence.KeyRing{}
	r.Add(s.Public())
	return evidence.VerifyOptions{Keys: r, CustodyKeys: r}
}

func handOver() evidence.HandOver {
	return evidence.HandOver{From: "alice@ir", To: "forensics-lab", Reason: "analysis"}
}

// actions reads the custody log beside archive and returns its actions.
func actions(t *testing.T, archive string) []string {
	t.Helper()
	b, err := os.ReadFile(archive + ".custody.jsonl")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		_, rest, _ := strings.Cut(line, `"action":"`)
		a, _, _ := strings.Cut(rest, `"`)
		out = append(out, a)
	}
	return out
}

func sumFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestUploadLockedFetchVerify uploads through the transfer manager in
// several parts to the lab's Object Lock bucket, then checks the lock
// holds in moto and that the chain verifies after upload and fetch.
func TestUploadLockedFetchVerify(t *testing.T) {
	s := labtest.SeedScenario(t, 1, 1, func(*action.Registry) {})
	client := eaws.S3(s.Lab.AWS)
	bucket := s.Seed.EvidenceBucket
	signer := newSigner(t)
	archive := sealed(t, "inc-upload", 11<<20, signer)

	// An interrupted earlier run left a multipart upload of the same key.
	key := "cases/inc-upload/" + filepath.Base(archive)
	stale, err := client.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	res, err := handoff.Upload(t.Context(), client, archive, handoff.UploadOptions{Bucket: bucket, Prefix: "cases/inc-upload/",
		RetainDays: 1, Mode: handoff.ModeCompliance, PartSize: 5 << 20, MultipartThreshold: 5 << 20,
		HandOver: handOver(), Signer: signer, Actor: "alice@ir", Verify: keys(signer), Warn: &warn})
	if err != nil {
		t.Fatalf("upload: %v\n%s", err, warn.String())
	}
	if !res.Multipart || res.Archive.Key != key || res.Archive.VersionID == "" {
		t.Fatalf("result %+v", res)
	}
	if len(res.Aborted) != 1 || res.Aborted[0] != aws.ToString(stale.UploadId) || !strings.Contains(warn.String(), "aborted an unfinished multipart upload") {
		t.Errorf("stale upload: aborted %v, warnings %q", res.Aborted, warn.String())
	}
	left, err := client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil || len(left.Uploads) != 0 {
		t.Errorf("unfinished uploads left: %v %+v", err, left)
	}
	head, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String(res.Archive.VersionID)})
	if err != nil {
		t.Fatal(err)
	}
	if head.ObjectLockMode != s3types.ObjectLockModeCompliance || head.ObjectLockRetainUntilDate == nil ||
		head.ObjectLockRetainUntilDate.Before(time.Now().Add(23*time.Hour)) || head.Metadata[handoff.MetaSHA256] != sumFile(t, archive) {
		t.Errorf("stored archive: mode %q until %v metadata %v", head.ObjectLockMode, head.ObjectLockRetainUntilDate, head.Metadata)
	}
	if got := actions(t, archive); len(got) != 1 || got[0] != evidence.ActionTransferred {
		t.Errorf("custody after upload: %v", got)
	}
	if !strings.Contains(string(res.Record.Details), res.Archive.VersionID) || !strings.Contains(string(res.Record.Details), bucket) {
		t.Errorf("transferred record does not name the version: %s", res.Record.Details)
	}
	rep, err := evidence.Verify(t.Context(), archive, keys(signer))
	if err != nil || !rep.OK {
		t.Fatalf("verify after upload: %v %+v", err, rep.Failed())
	}

	// Compliance mode: moto refuses to delete the version, and an
	// overwrite makes a new version while the locked one stays intact.
	if _, err := client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String(res.Archive.VersionID)}); err == nil {
		t.Error("DeleteObject of the locked version succeeded")
	}
	if _, err := client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: aws.String(res.Archive.VersionID),
		BypassGovernanceRetention: aws.Bool(true)}); err == nil {
		t.Error("DeleteObject with bypass of the compliance-locked version succeeded")
	}
	// Governance, for contrast: refused too, but lifted by anyone allowed
	// s3:BypassGovernanceRetention, which is why evidence should use
	// compliance. moto behaves as S3 documents on both counts.
	gov, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("governance-probe"), Body: strings.NewReader("x"),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256, ObjectLockMode: s3types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(time.Now().Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("governance-probe"), VersionId: gov.VersionId}); err == nil {
		t.Error("DeleteObject of a governance-locked version without bypass succeeded")
	}
	if _, err := client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("governance-probe"), VersionId: gov.VersionId,
		BypassGovernanceRetention: aws.Bool(true)}); err != nil {
		t.Errorf("DeleteObject of a governance-locked version with bypass: %v (S3 allows it)", err)
	}
	over, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("overwritten"),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(over.VersionId) == res.Archive.VersionID {
		t.Fatal("overwrite replaced the locked version")
	}

	// The lab fetches the locked version (the latest is the overwrite).
	out := filepath.Join(t.TempDir(), "received")
	labSigner := newSigner(t)
	vo := keys(signer)
	fres, err := handoff.Fetch(t.Context(), client, bucket, key, handoff.FetchOptions{VersionID: res.Archive.VersionID, OutDir: out,
		Signer: labSigner, Actor: "bob@lab", Verify: vo})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if sumFile(t, fres.Archive) != sumFile(t, archive) {
		t.Error("fetched archive differs")
	}
	if got := actions(t, fres.Archive); len(got) != 2 || got[1] != evidence.ActionReceived {
		t.Errorf("custody after fetch: %v", got)
	}
	vo.CustodyKeys.Add(labSigner.Public())
	rep, err = evidence.Verify(t.Context(), fres.Archive, vo)
	if err != nil || !rep.OK {
		t.Fatalf("verify after fetch: %v %+v", err, rep.Failed())
	}
	for _, p := range []string{out, fres.Archive} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]os.FileMode{true: 0o700, false: 0o600}[fi.IsDir()]; fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	// The latest object is not the archive: fetching it must fail
	// verification and record nothing.
	out2 := t.TempDir()
	if _, err := handoff.Fetch(t.Context(), client, bucket, key, handoff.FetchOptions{OutDir: out2, Signer: labSigner, Verify: vo}); err == nil {
		t.Error("fetch of the overwritten object verified")
	}
	if got := actions(t, filepath.Join(out2, filepath.Base(key))); len(got) != 1 {
		t.Errorf("custody of a bad fetch: %v", got)
	}
}

// flipper is a proxy in front of moto that flips one byte in the middle of
// the body of every PUT of the archive (not of its sidecars): corruption in
// transit that moto, which stores checksums without verifying them, keeps.
func flipper(t *testing.T, endpoint, name string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var flipped atomic.Int64
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		r := pr.Out
		if r.Method != http.MethodPut || !strings.HasSuffix(r.URL.Path, "/"+name) || r.Body == nil {
			return
		}
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			t.Error(err)
		}
		if len(b) > 1024 {
			b[len(b)/2] ^= 0x01
			flipped.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
	}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv, &flipped
}

// uploadModes are the two ways an archive is sent: one PUT under the
// multipart threshold, parts of 5 MiB over it.
var uploadModes = []struct {
	name      string
	threshold int64
}{{"single", 64 << 20}, {"multipart", 5 << 20}}

// TestUploadCorruptedInTransitNotRecorded: the read-back catches a flipped
// byte, single PUT and multipart alike, before any transferred record.
func TestUploadCorruptedInTransitNotRecorded(t *testing.T) {
	s := labtest.SeedScenario(t, 1, 1, func(*action.Registry) {})
	bucket := s.Seed.EvidenceBucket
	signer := newSigner(t)
	for _, tc := range uploadModes {
		t.Run(tc.name, func(t *testing.T) {
			archive := sealed(t, "inc-flip-"+tc.name, 6<<20, signer)
			proxy, flipped := flipper(t, s.Lab.State.AWSEndpoint, filepath.Base(archive))
			client := eaws.S3(s.Lab.AWSVia(t, proxy.URL))
			_, err := handoff.Upload(t.Context(), client, archive, handoff.UploadOptions{Bucket: bucket, RetainDays: 1, MultipartThreshold: tc.threshold, PartSize: 5 << 20,
				HandOver: handOver(), Signer: signer, Verify: keys(signer)})
			if flipped.Load() == 0 {
				t.Fatal("the proxy flipped nothing: the test proves nothing")
			}
			if !errors.Is(err, handoff.ErrReadBack) {
				t.Fatalf("upload through a corrupting proxy: %v, want ErrReadBack", err)
			}
			if got := actions(t, archive); len(got) != 0 {
				t.Errorf("custody records after a corrupted upload: %v", got)
			}
		})
	}
}

// TestUploadUnlockedBucket: refused unless allowed, and then said loudly.
func TestUploadUnlockedBucket(t *testing.T) {
	le := labtest.Start(t)
	client := eaws.S3(le.AWS)
	bucket := "eksir-unlocked-" + strings.TrimSuffix(le.Prefix, "-")
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	signer := newSigner(t)
	archive := sealed(t, "inc-unlocked", 4096, signer)
	o := handoff.UploadOptions{Bucket: bucket, HandOver: handOver(), Signer: signer, Verify: keys(signer)}
	if _, err := handoff.Upload(t.Context(), client, archive, o); !errors.Is(err, handoff.ErrUnlocked) {
		t.Fatalf("upload to an unlocked bucket: %v, want ErrUnlocked", err)
	}
	if list, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}); err != nil || len(list.Contents) != 0 {
		t.Errorf("refused upload stored objects: %v %+v", err, list)
	}
	if got := actions(t, archive); len(got) != 0 {
		t.Errorf("custody after refusal: %v", got)
	}
	var warn bytes.Buffer
	o.AllowUnlocked, o.Warn = true, &warn
	res, err := handoff.Upload(t.Context(), client, archive, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warn.String(), "NO Object Lock") || res.Archive.LockMode != "" {
		t.Errorf("warning %q, lock %q", warn.String(), res.Archive.LockMode)
	}
	if list, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}); err != nil || len(list.Contents) != 3 {
		t.Errorf("objects: %v %+v", err, list)
	}
}

// TestUploadUnverifiedArchiveNeverStored: an archive whose payload was
// changed after sealing (its sidecar rewritten to match, as an attacker
// would) fails the verification that runs beside the upload. A single PUT
// never starts; a multipart upload is aborted before completion, so the
// bucket holds no version of it, no unfinished upload is left behind and
// nothing is recorded.
func TestUploadUnverifiedArchiveNeverStored(t *testing.T) {
	s := labtest.SeedScenario(t, 1, 1, func(*action.Registry) {})
	bucket := s.Seed.EvidenceBucket
	client := eaws.S3(s.Lab.AWS)
	signer := newSigner(t)
	for _, tc := range uploadModes {
		t.Run(tc.name, func(t *testing.T) {
			archive := sealed(t, "inc-tampered-"+tc.name, 12<<20, signer)
			b, err := os.ReadFile(archive)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x01 // inside memory.lime's bytes
			if err := os.WriteFile(archive, b, 0o600); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			if err := os.WriteFile(archive+".sha256", []byte(hex.EncodeToString(sum[:])+"  "+filepath.Base(archive)+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			prefix := "tampered-" + tc.name + "/"
			res, err := handoff.Upload(t.Context(), client, archive, handoff.UploadOptions{Bucket: bucket, Prefix: prefix, RetainDays: 1,
				MultipartThreshold: tc.threshold, PartSize: 5 << 20, HandOver: handOver(), Signer: signer, Verify: keys(signer)})
			if err == nil || !strings.Contains(err.Error(), "verification failed") {
				t.Fatalf("upload of a tampered archive: %v, want a verification failure", err)
			}
			if res == nil || res.Report == nil || res.Report.OK {
				t.Fatalf("no failing report returned: %+v", res)
			}
			versions, err := client.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
			if err != nil {
				t.Fatal(err)
			}
			if len(versions.Versions) != 0 {
				t.Errorf("the tampered archive was stored: %d versions under %s", len(versions.Versions), prefix)
			}
			ups, err := client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
			if err != nil {
				t.Fatal(err)
			}
			if len(ups.Uploads) != 0 {
				t.Errorf("an unfinished multipart upload was left: %d", len(ups.Uploads))
			}
			if got := actions(t, archive); len(got) != 0 {
				t.Errorf("custody records after a refused upload: %v", got)
			}
		})
	}
}
