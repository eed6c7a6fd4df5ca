package collect_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/eksir/eksir/collect"
	eaws "github.com/eksir/eksir/internal/aws"
)

// BenchmarkAWSMemoryStream streams a memory image (4 GiB of random bytes
// unless EKSIR_MEMORY_BENCH_BYTES says otherwise) from moto's S3 into a
// case through collect.memory's ssm method, measuring in the same run the
// process's resident memory when idle (lab up, object in the bucket) and
// its peak while streaming (VmHWM, reset through /proc/self/clear_refs
// first), beside `aws s3api get-object` of the same object to a file.
//
//	go test -run '^$' -bench BenchmarkAWSMemoryStream -benchtime 1x ./collect/
func BenchmarkAWSMemoryStream(b *testing.B) {
	size := int64(4 << 30)
	if v := os.Getenv("EKSIR_MEMORY_BENCH_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("EKSIR_MEMORY_BENCH_BYTES: %v", err)
		}
		size = n
	}
	path, sum := randomFile(b, size)
	f := setupMemory(b)
	ctx := b.Context()
	// A bucket of its own: the lab's evidence bucket has Object Lock.
	bucket := "eksir-memory-bench-" + f.s.Lab.Account
	if _, err := f.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		b.Fatal(err)
	}
	incident := "mem-bench"
	key := collect.MemoryKey("", incident, f.instance)
	fh, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	// The lab's default 30 s per call does not fit putting 4 GiB into moto.
	slow := eaws.S3(f.s.Lab.AWSWith(b, eaws.Options{Timeout: -1}))
	if _, err := slow.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: fh, ContentLength: aws.Int64(size)}); err != nil {
		b.Fatal(err)
	}
	fh.Close()
	agent := &fakeAgent{stdout: sum + "  /var/tmp/eksir-memory.b/memory.lime\n"}
	call := memoryCall(map[string]any{"instance": f.instance, "bucket": bucket, "avml-sha256": testAVMLSHA, "poll-interval": time.Millisecond})
	cliEnv := append(os.Environ(), f.s.Lab.AWSEnv(b)...)

	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		env := f.env(b, incident, agent, nil)
		runtime.GC()
		debug.FreeOSMemory()
		idle := procStatus(b, "VmRSS")
		// Writing 5 resets VmHWM to the current RSS (Linux 4.0+).
		reset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
		b.StartTimer()
		start := time.Now()
		res, err := collect.Memory{}.Run(ctx, env, call)
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if it := itemOf(b, env, "aws/instances/"+f.instance+"/memory.lime"); it.SHA256 != sum || res.Outputs["complete"] != true {
			b.Fatalf("item %+v", it)
		}
		peak := procStatus(b, "VmHWM")
		os.RemoveAll(filepath.Join(env.Evidence.(interface{ Dir() string }).Dir(), "data"))
		mib := func(n int64) float64 { return float64(n) / (1 << 20) }
		mbps := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
		b.ReportMetric(mib(idle), "idle-RSS-MiB")
		b.ReportMetric(mib(peak-idle), "peak-over-idle-MiB")
		b.ReportMetric(mbps(took), "eksir-MB/s")
		b.Logf("%d bytes: eksir %s (%.0f MB/s), RSS idle %.1f MiB, peak %.1f MiB (+%.1f; VmHWM reset: %v)",
			size, took.Round(time.Millisecond), mbps(took), mib(idle), mib(peak), mib(peak-idle), reset)
		// The baseline is one GET streamed to a file (`aws s3api
		// get-object`), as eksir streams it; it hashes nothing, so it does
		// less. `aws s3 cp` is not used: to a file it splits the object
		// into ranged GETs, each of which makes moto copy the whole
		// object (a 4 GiB image did not finish in 12 minutes), and to
		// stdout it streamed at about 15 MB/s.
		// EKSIR_MEMORY_BENCH_NO_CLI=1 leaves it out.
		if os.Getenv("EKSIR_MEMORY_BENCH_NO_CLI") != "" {
			continue
		}
		dst := filepath.Join(b.TempDir(), "memory.lime")
		cli := exec.CommandContext(ctx, "aws", "s3api", "get-object", "--bucket", bucket, "--key", key, dst)
		cli.Env = cliEnv
		var stderr bytes.Buffer
		cli.Stderr = &stderr
		cliStart := time.Now()
		if err := cli.Run(); err != nil {
			b.Fatalf("aws s3api get-object: %v: %s", err, stderr.String())
		}
		os.Remove(dst)
		cliTook := time.Since(cliStart)
		cliRSS := cli.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10

		b.ReportMetric(mbps(cliTook), "awscli-MB/s")
		b.ReportMetric(mib(cliRSS), "awscli-maxRSS-MiB")
		b.Logf("aws s3api get-object %s (%.0f MB/s), max RSS %.1f MiB", cliTook.Round(time.Millisecond), mbps(cliTook), mib(cliRSS))
	}
}

// randomFile writes size random bytes to a file and returns its path and
// SHA-256.
func randomFile(b *testing.B, size int64) (string, string) {
	b.Helper()
	p := filepath.Join(b.TempDir(), "memory.lime")
	fh, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(fh, h), 1<<20)
	if _, err := io.CopyN(w, rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		b.Fatal(err)
	}
	return p, hex.EncodeToString(h.Sum(nil))
}

// procStatus reads a kB field of /proc/self/status, in bytes.
func procStatus(b *testing.B, field string) int64 {
	b.Helper()
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n << 10
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}
