package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/labtest"
)

// BenchmarkCustodyUpload seals an archive of random bytes
// (EKSIR_BENCH_UPLOAD_MIB, 1024 unless set) and uploads it to the lab's
// moto with `eksir custody upload` (verify, multipart upload, read-back,
// custody record) and with `aws s3 cp` of the same file, in the same run.
// Both run as subprocesses under /usr/bin/time, whose %M is the peak RSS.
// Random bytes are fairer than a sparse file: nothing compresses and
// every byte crosses the wire.
func BenchmarkCustodyUpload(b *testing.B) {
	mib := 1024
	if v := os.Getenv("EKSIR_BENCH_UPLOAD_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("EKSIR_BENCH_UPLOAD_MIB=%q: want a positive number", v)
		}
		mib = n
	}
	aws1, err := exec.LookPath("aws")
	if err != nil {
		labtest.SkipOrFail(b, "the AWS CLI (the baseline) is not installed")
	}
	le := labtest.Start(b)
	client := eaws.S3(le.AWS)
	bucket := "eksir-bench-" + strings.TrimSuffix(le.Prefix, "-")
	if _, err := client.CreateBucket(b.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		b.Fatal(err)
	}
	root := b.TempDir()
	src := filepath.Join(root, "src")
	if err := os.MkdirAll(src, 0o700); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(src, "memory.lime"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, int64(mib)<<20); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	keyDir := b.TempDir()
	key := filepath.Join(keyDir, "k.key")
	if out, err := exec.Command(eksirBin, "keygen", "--out", key).CombinedOutput(); err != nil {
		b.Fatalf("keygen: %v %s", err, out)
	}
	out := filepath.Join(root, "out")
	if o, err := exec.Command(eksirBin, "seal", "--incident", "BENCH", "--key", key, "--compress", "none", src, "--out", out).CombinedOutput(); err != nil {
		b.Fatalf("seal: %v %s", err, o)
	}
	if err := os.RemoveAll(src); err != nil {
		b.Fatal(err)
	}
	archive := filepath.Join(out, "BENCH.tar")
	env := append(cleanEnv(), le.AWSEnv(b)...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eksirS, eksirRSS := timed(b, env, eksirBin, "custody", "upload", archive, "--bucket", bucket, "--prefix", "run"+strconv.Itoa(i)+"/",
			"--retain-days", "1", "--key", key, "--pubkey", key+".pub")
		noReadS, noReadRSS := timed(b, env, eksirBin, "custody", "upload", archive, "--bucket", bucket, "--prefix", "noread"+strconv.Itoa(i)+"/",
			"--retain-days", "1", "--verify-readback=false", "--key", key, "--pubkey", key+".pub")
		// The upload verifies the archive twice (before sending, and
		// before the record); verify alone shows what of the peak is the
		// verifier's.
		verifyS, verifyRSS := timed(b, env, eksirBin, "verify", archive, "--pubkey", key+".pub")
		awsS, awsRSS := timed(b, env, aws1, "s3", "cp", archive, "s3://"+bucket+"/awscli"+strconv.Itoa(i)+"/BENCH.tar", "--endpoint-url", le.State.AWSEndpoint, "--only-show-errors")
		b.ReportMetric(eksirS, "eksir-s")
		b.ReportMetric(eksirRSS, "eksir-peak-MiB")
		b.ReportMetric(noReadS, "eksir-noreadback-s")
		b.ReportMetric(noReadRSS, "eksir-noreadback-peak-MiB")
		b.ReportMetric(verifyS, "verify-s")
		b.ReportMetric(verifyRSS, "verify-peak-MiB")
		b.ReportMetric(awsS, "awscli-s")
		b.ReportMetric(awsRSS, "awscli-peak-MiB")
		b.ReportMetric(float64(mib), "archive-MiB")
	}
}

// timed runs bin under /usr/bin/time and returns wall seconds and peak RSS
// in MiB.
func timed(b *testing.B, env []string, bin string, args ...string) (float64, float64) {
	b.Helper()
	out, err := os.CreateTemp(b.TempDir(), "time-")
	if err != nil {
		b.Fatal(err)
	}
	out.Close()
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", out.Name(), bin}, args...)...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %q: %v\n%s", filepath.Base(bin), args, err, stderr.String())
	}
	wall := time.Since(start).Seconds()
	m, err := os.ReadFile(out.Name())
	if err != nil {
		b.Fatal(err)
	}
	kib, err := strconv.ParseFloat(strings.TrimSpace(string(m)), 64)
	if err != nil {
		b.Fatalf("/usr/bin/time output %q: %v", m, err)
	}
	return wall, kib / 1024
}
