package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
)

// BenchmarkCustodyUpload seals an archive of random bytes
// (EKSIR_BENCH_UPLOAD_MIB, 4096 unless set) and uploads it with `eksir
// custody upload` (verification beside the multipart upload, read-back,
// custody record), with --verify-readback=false, with `aws s3 cp`, and with
// `aws s3 cp` followed by a hashed `aws s3api get-object` (the CLI doing
// what eksir's read-back does), in the same run. Every command gets a fresh
// moto of its own: moto's time for the same upload varies by a fifth
// between runs, and more on a moto that already stored gigabytes, so each
// round (EKSIR_BENCH_UPLOAD_ROUNDS, 3 unless set) runs the four in a
// rotated order and the medians are reported. Each runs as a subprocess
// under /usr/bin/time, whose %M is the peak RSS; the private (anonymous)
// peak is sampled from /proc; each tool's idle is the same command on a
// 1 MiB archive. Random bytes are fairer than a sparse file: nothing
// compresses and every byte crosses the wire.
func BenchmarkCustodyUpload(b *testing.B) {
	mib := envInt(b, "EKSIR_BENCH_UPLOAD_MIB", 4096)
	rounds := envInt(b, "EKSIR_BENCH_UPLOAD_ROUNDS", 3)
	aws1, err := exec.LookPath("aws")
	if err != nil {
		labtest.SkipOrFail(b, "the AWS CLI (the baseline) is not installed")
	}
	bins, err := lab.FindBinaries()
	if err != nil {
		labtest.SkipOrFail(b, err.Error())
	}
	keyDir := b.TempDir()
	key := filepath.Join(keyDir, "k.key")
	if out, err := exec.Command(eksirBin, "keygen", "--out", key).CombinedOutput(); err != nil {
		b.Fatalf("keygen: %v %s", err, out)
	}
	small := sealRandom(b, key, "SMALL", 1)
	archive := sealRandom(b, key, "BENCH", mib)
	const bucket = "eksir-bench"
	upload := func(archive string, extra ...string) func(env []string, endpoint string) (float64, float64, float64) {
		return func(env []string, _ string) (float64, float64, float64) {
			// Each upload starts from the archive's own custody log.
			defer os.Remove(archive + ".custody.jsonl")
			args := append([]string{"custody", "upload", archive, "--bucket", bucket, "--retain-days", "1", "--key", key, "--pubkey", key + ".pub"}, extra...)
			return timed(b, env, eksirBin, args...)
		}
	}
	cp := func(file string) func(env []string, endpoint string) (float64, float64, float64) {
		return func(env []string, endpoint string) (float64, float64, float64) {
			return timed(b, env, aws1, "s3", "cp", file, "s3://"+bucket+"/"+filepath.Base(file), "--endpoint-url", endpoint, "--only-show-errors")
		}
	}
	// The CLI's read-back: the stored object through sha256sum, compared.
	cpHashed := func(env []string, endpoint string) (float64, float64, float64) {
		script := fmt.Sprintf(`set -e
%[1]s s3 cp %[2]s s3://%[3]s/x --endpoint-url %[4]s --only-show-errors
got=$(%[1]s s3api get-object --bucket %[3]s --key x /dev/stdout --endpoint-url %[4]s | head -c %[5]d | sha256sum | cut -d' ' -f1)
test "$got" = "$(cut -d' ' -f1 %[2]s.sha256)"`, aws1, archive, bucket, endpoint, fileSize(b, archive))
		return timed(b, env, "/bin/bash", "-c", script)
	}
	type tool struct {
		name    string
		run     func(env []string, endpoint string) (float64, float64, float64)
		secs    []float64
		rss     []float64
		private []float64
	}
	tools := []*tool{
		{name: "eksir", run: upload(archive)},
		{name: "eksir-noreadback", run: upload(archive, "--verify-readback=false")},
		{name: "awscli", run: cp(archive)},
		{name: "awscli-hashed", run: cpHashed},
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, eksirIdle, eksirIdleAnon := onFreshMoto(b, bins.Moto, bucket, upload(small))
		_, awsIdle, awsIdleAnon := onFreshMoto(b, bins.Moto, bucket, cp(small))
		for r := 0; r < rounds; r++ {
			// One log line per round: the testing package keeps only the
			// first lines of a benchmark's log.
			var line strings.Builder
			for j := range tools {
				t := tools[(j+r)%len(tools)]
				s, rss, anon := onFreshMoto(b, bins.Moto, bucket, t.run)
				fmt.Fprintf(&line, "  %s %.1f s (%.0f/%.0f MiB)", t.name, s, rss, anon)
				t.secs, t.rss, t.private = append(t.secs, s), append(t.rss, rss), append(t.private, anon)
			}
			b.Logf("round %d, in order, time (peak RSS/private):%s", r+1, line.String())
		}
		for _, t := range tools {
			b.ReportMetric(median(t.secs), t.name+"-s")
			b.ReportMetric(median(t.rss), t.name+"-peak-MiB")
			if t.name != "awscli-hashed" { // a shell's children: no one private peak
				b.ReportMetric(median(t.private), t.name+"-private-MiB")
			}
		}
		b.ReportMetric(eksirIdle, "eksir-idle-MiB")
		b.ReportMetric(eksirIdleAnon, "eksir-idle-private-MiB")
		b.ReportMetric(awsIdle, "awscli-idle-MiB")
		b.ReportMetric(awsIdleAnon, "awscli-idle-private-MiB")
		b.ReportMetric(float64(mib), "archive-MiB")
		b.ReportMetric(float64(rounds), "rounds")
	}
}

// onFreshMoto starts a moto of its own on a free port, creates bucket with
// Object Lock, runs run with the environment and endpoint that reach it,
// and stops moto.
func onFreshMoto(b *testing.B, motoBin, bucket string, run func(env []string, endpoint string) (float64, float64, float64)) (float64, float64, float64) {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	moto := exec.Command(motoBin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	moto.Stdout, moto.Stderr = io.Discard, io.Discard
	if err := moto.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		moto.Process.Kill()
		moto.Wait()
	}()
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := append(cleanEnv(), "AWS_ENDPOINT_URL="+endpoint, "AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_SESSION_TOKEN=")
	cfg, err := config.LoadDefaultConfig(b.Context(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")))
	if err != nil {
		b.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true })
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := client.CreateBucket(b.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("moto on %s: %v", endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return run(env, endpoint)
}

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func fileSize(b *testing.B, name string) int64 {
	b.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else if n > 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return 0
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
