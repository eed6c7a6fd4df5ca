package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
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
// (EKSIR_BENCH_UPLOAD_MIB, 4096 unless set) and uploads it to the lab's
// moto with `eksir custody upload` (verification beside the multipart
// upload, read-back, custody record), with --verify-readback=false, and
// with `aws s3 cp` of the same file, in the same run. Each runs as a
// subprocess under /usr/bin/time, whose %M is the peak RSS; each tool's
// idle is the same command on a 1 MiB archive, so growth is what the size
// of the transfer costs. Random bytes are fairer than a sparse file:
// nothing compresses and every byte crosses the wire. Stored versions are
// deleted after each upload (governance mode allows it with the bypass
// header) so that moto, which keeps objects in memory, starts each one
// alike.
func BenchmarkCustodyUpload(b *testing.B) {
	mib := 4096
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
	keyDir := b.TempDir()
	key := filepath.Join(keyDir, "k.key")
	if out, err := exec.Command(eksirBin, "keygen", "--out", key).CombinedOutput(); err != nil {
		b.Fatalf("keygen: %v %s", err, out)
	}
	small := sealRandom(b, key, "SMALL", 1)
	archive := sealRandom(b, key, "BENCH", mib)
	env := append(cleanEnv(), le.AWSEnv(b)...)
	upload := func(archive, prefix string, extra ...string) (float64, float64, float64) {
		args := append([]string{"custody", "upload", archive, "--bucket", bucket, "--prefix", prefix, "--retain-days", "1", "--key", key, "--pubkey", key + ".pub"}, extra...)
		s, rss, anon := timed(b, env, eksirBin, args...)
		purge(b, client, bucket, prefix)
		return s, rss, anon
	}
	cp := func(file, prefix string) (float64, float64, float64) {
		s, rss, anon := timed(b, env, aws1, "s3", "cp", file, "s3://"+bucket+"/"+prefix+filepath.Base(file), "--endpoint-url", le.State.AWSEndpoint, "--only-show-errors")
		purge(b, client, bucket, prefix)
		return s, rss, anon
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run := strconv.Itoa(i)
		_, eksirIdle, eksirIdleAnon := upload(small, "idle"+run+"/")
		_, awsIdle, awsIdleAnon := cp(small, "awsidle"+run+"/")
		eksirS, eksirRSS, eksirAnon := upload(archive, "run"+run+"/")
		noReadS, noReadRSS, noReadAnon := upload(archive, "noread"+run+"/", "--verify-readback=false")
		awsS, awsRSS, awsAnon := cp(archive, "awscli"+run+"/")
		b.ReportMetric(eksirS, "eksir-s")
		b.ReportMetric(noReadS, "eksir-noreadback-s")
		b.ReportMetric(awsS, "awscli-s")
		b.ReportMetric(eksirRSS, "eksir-peak-MiB")
		b.ReportMetric(noReadRSS, "eksir-noreadback-peak-MiB")
		b.ReportMetric(awsRSS, "awscli-peak-MiB")
		b.ReportMetric(eksirAnon, "eksir-anon-MiB")
		b.ReportMetric(noReadAnon, "eksir-noreadback-anon-MiB")
		b.ReportMetric(awsAnon, "awscli-anon-MiB")
		b.ReportMetric(eksirIdle, "eksir-idle-MiB")
		b.ReportMetric(eksirIdleAnon, "eksir-idle-anon-MiB")
		b.ReportMetric(awsIdle, "awscli-idle-MiB")
		b.ReportMetric(awsIdleAnon, "awscli-idle-anon-MiB")
		b.ReportMetric(float64(mib), "archive-MiB")
	}
}

// sealRandom seals a folder holding mib MiB of random bytes, uncompressed,
// and returns the archive's path.
func sealRandom(b *testing.B, key, incident string, mib int) string {
	b.Helper()
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
	out := filepath.Join(root, "out")
	if o, err := exec.Command(eksirBin, "seal", "--incident", incident, "--key", key, "--compress", "none", src, "--out", out).CombinedOutput(); err != nil {
		b.Fatalf("seal: %v %s", err, o)
	}
	if err := os.RemoveAll(src); err != nil {
		b.Fatal(err)
	}
	return filepath.Join(out, incident+".tar")
}

// purge deletes every version under prefix, bypassing governance-mode
// retention, so that moto frees the memory it holds them in.
func purge(b *testing.B, client *s3.Client, bucket, prefix string) {
	b.Helper()
	out, err := client.ListObjectVersions(b.Context(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range out.Versions {
		if _, err := client.DeleteObject(b.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId,
			BypassGovernanceRetention: aws.Bool(true)}); err != nil {
			b.Fatal(err)
		}
	}
}

// timed runs bin under /usr/bin/time and returns wall seconds, peak RSS in
// MiB (/usr/bin/time's %M) and the peak of its anonymous (private) memory,
// sampled from /proc every 10 ms. The two differ by the file pages of the
// binary and libraries mapped in: a 200 MB Go binary maps about 100 MiB of
// itself, page cache that is shared and evictable, which %M counts.
func timed(b *testing.B, env []string, bin string, args ...string) (wall, peak, anon float64) {
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
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	var anonKiB int64
	go func() {
		defer close(done)
		for {
			// /usr/bin/time's one child is the measured command.
			if kib := childAnonKiB(cmd.Process.Pid); kib > anonKiB {
				anonKiB = kib
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-stop:
				return
			}
		}
	}()
	err = cmd.Wait()
	wall = time.Since(start).Seconds()
	close(stop)
	<-done
	if err != nil {
		b.Fatalf("%s %q: %v\n%s", filepath.Base(bin), args, err, stderr.String())
	}
	m, err := os.ReadFile(out.Name())
	if err != nil {
		b.Fatal(err)
	}
	kib, err := strconv.ParseFloat(strings.TrimSpace(string(m)), 64)
	if err != nil {
		b.Fatalf("/usr/bin/time output %q: %v", m, err)
	}
	return wall, kib / 1024, float64(anonKiB) / 1024
}

// childAnonKiB is RssAnon of the first child of pid, 0 when there is none
// (yet, or any more).
func childAnonKiB(pid int) int64 {
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(kids))
	if len(f) == 0 {
		return 0
	}
	status, err := os.ReadFile("/proc/" + f[0] + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
