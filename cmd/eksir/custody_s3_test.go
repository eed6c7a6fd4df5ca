package main

// eksir custody upload and fetch, run as a responder and a lab run them,
// against the lab's moto: the upload records transferred, the fetch
// records received, and eksir-verify accepts the fetched archive with
// both custodians named.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/labtest"
)

func TestCustodyUploadFetch(t *testing.T) {
	le := labtest.Start(t)
	client := eaws.S3(le.AWS)
	bucket := "eksir-cli-" + strings.TrimSuffix(le.Prefix, "-")
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	env := append(cleanEnv(), le.AWSEnv(t)...)
	eksir := func(args ...string) result {
		t.Helper()
		return runProcess(t, eksirBin, "", nil, env, nil, args...)
	}
	key, pub := newKey(t)
	upKey, upPub := newKey(t) // the responder who hands over, not the sealer
	labKey, labPub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	writeFile(t, src, "memory.lime", pseudoRandom(3<<20, 7))
	out := filepath.Join(root, "out")
	mustRun(t, root, "seal", "--incident", "UP", "--key", key, "--seal-time", caseSealTime(), src, "--out", out)
	archive := filepath.Join(out, "UP.tar.zst")

	// The bucket has Object Lock but no default retention: say how long.
	res := eksir("custody", "upload", archive, "--bucket", bucket, "--key", key, "--pubkey", pub)
	expectExit(t, res, 1, "upload without a retention")
	if !strings.Contains(res.stderr, "--retain-days") {
		t.Errorf("no hint about retention: %v", res)
	}
	expectExit(t, eksir("custody", "upload", archive, "--bucket", bucket, "--key", key, "--retain-days", "1", "--retain-until", "2030-01-01T00:00:00Z"), 2, "both retention flags")

	res = eksir("custody", "upload", archive, "--bucket", bucket, "--prefix", "cases/UP/", "--retain-days", "1", "--mode", "compliance",
		"--legal-hold", "--key", upKey, "--pubkey", pub)
	expectExit(t, res, 0, "upload")
	if !strings.Contains(res.stdout, "COMPLIANCE until") || !strings.Contains(res.stdout, "legal hold") || !strings.Contains(res.stdout, "recorded transferred") {
		t.Errorf("upload output: %v", res)
	}
	recv := filepath.Join(root, "received")
	expectExit(t, eksir("custody", "fetch", "s3://"+bucket+"/cases/UP/UP.tar.zst", "--out", recv, "--key", labKey, "--pubkey", pub), 3,
		"fetch without the uploader named as custodian")
	if b, err := os.ReadFile(filepath.Join(recv, "UP.tar.zst.custody.jsonl")); err != nil || strings.Contains(string(b), `"received"`) {
		t.Errorf("a fetch that failed verification recorded receipt: %v %s", err, b)
	}
	recv = filepath.Join(root, "received2")
	res = eksir("custody", "fetch", "s3://"+bucket+"/cases/UP/UP.tar.zst", "--out", recv, "--key", labKey, "--pubkey", pub, "--custodian-key", upPub)
	expectExit(t, res, 0, "fetch")
	fetched := filepath.Join(recv, "UP.tar.zst")
	for _, bin := range []string{eksirBin, verifyBin} {
		res := runProcess(t, bin, "", nil, cleanEnv(), nil, "custody", "show", fetched, "--pubkey", pub, "--custodian-key", upPub, "--custodian-key", labPub)
		expectExit(t, res, 0, filepath.Base(bin)+" custody show of the fetched archive")
		if !strings.Contains(res.stdout, "transferred") || !strings.Contains(res.stdout, "received") {
			t.Errorf("%s custody show: %v", bin, res)
		}
		expectExit(t, runProcess(t, bin, "", nil, cleanEnv(), nil, "verify", fetched, "--pubkey", pub, "--custodian-key", upPub, "--custodian-key", labPub), 0,
			filepath.Base(bin)+" verify of the fetched archive")
	}
	head, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("cases/UP/UP.tar.zst.custody.jsonl")})
	if err != nil || head.ObjectLockMode != s3types.ObjectLockModeCompliance || head.ObjectLockLegalHoldStatus != s3types.ObjectLockLegalHoldStatusOn {
		t.Errorf("custody log object: %v %+v", err, head)
	}
	expectExit(t, eksir("custody", "fetch", "https://example.com/x", "--out", recv, "--key", labKey), 2, "fetch of a non-S3 URL")
}
