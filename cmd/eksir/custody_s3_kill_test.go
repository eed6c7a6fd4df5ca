package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/labtest"
)

// TestCustodyUploadKilled kills `eksir custody upload` with SIGKILL in the
// middle of a multipart upload (a proxy holds the second part until the
// kill), then runs it again: the killed run stored nothing and recorded
// nothing, leaving one unfinished multipart upload; the second run aborts
// it, saying so, stores exactly one version and writes exactly one
// transferred record.
func TestCustodyUploadKilled(t *testing.T) {
	le := labtest.Start(t)
	client := eaws.S3(le.AWS)
	bucket := "eksir-kill-" + strings.TrimSuffix(le.Prefix, "-")
	if _, err := client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	key, pub := newKey(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	// Over the 64 MiB single-PUT threshold: a multipart upload.
	writeFile(t, src, "memory.lime", pseudoRandom(72<<20, 3))
	out := filepath.Join(root, "out")
	mustRun(t, root, "seal", "--incident", "KILL", "--key", key, "--compress", "none", "--seal-time", caseSealTime(), src, "--out", out)
	archive := filepath.Join(out, "KILL.tar")

	target, err := url.Parse(le.State.AWSEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" {
			once.Do(func() { close(held) })
			select {
			case <-release:
			case <-r.Context().Done():
			}
			http.Error(w, "held", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(release); proxy.Close() })

	awsEnv := append(cleanEnv(), le.AWSEnv(t)...)
	upload := func(endpoint string) *exec.Cmd {
		env := append(append([]string{}, awsEnv...), "AWS_ENDPOINT_URL="+endpoint)
		cmd := exec.Command(eksirBin, "custody", "upload", archive, "--bucket", bucket, "--prefix", "cases/", "--retain-days", "1",
			"--key", key, "--pubkey", pub, "--concurrency", "1")
		cmd.Env = env
		return cmd
	}
	killed := upload(proxy.URL)
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(2 * time.Minute):
		killed.Process.Kill()
		t.Fatal("the upload never reached its second part")
	}
	if err := killed.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = killed.Wait()

	objKey := "cases/KILL.tar"
	versions, err := client.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("cases/")})
	if err != nil {
		t.Fatal(err)
	}
	if len(versions.Versions) != 0 {
		t.Fatalf("the killed upload stored %d objects", len(versions.Versions))
	}
	ups, err := client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].Key) != objKey {
		t.Fatalf("unfinished uploads after the kill: %+v", ups.Uploads)
	}
	if b, err := os.ReadFile(archive + ".custody.jsonl"); err == nil && strings.Contains(string(b), `"transferred"`) {
		t.Fatal("the killed upload recorded a transfer")
	}

	again := upload(le.State.AWSEndpoint)
	outb, err := again.CombinedOutput()
	if err != nil {
		t.Fatalf("upload after the kill: %v\n%s", err, outb)
	}
	if !strings.Contains(string(outb), "aborted an unfinished multipart upload of s3://"+bucket+"/"+objKey) {
		t.Errorf("the second run did not say it aborted the first one's upload:\n%s", outb)
	}
	if ups, err := client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}); err != nil || len(ups.Uploads) != 0 {
		t.Errorf("unfinished uploads left: %v %+v", err, ups)
	}
	versions, err = client.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(objKey)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range versions.Versions {
		if aws.ToString(v.Key) == objKey {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d versions of %s, want 1", n, objKey)
	}
	b, err := os.ReadFile(archive + ".custody.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(string(b), `"action":"transferred"`); c != 1 {
		t.Errorf("%d transferred records, want 1:\n%s", c, b)
	}
	res := runProcess(t, eksirBin, "", nil, cleanEnv(), nil, "verify", archive, "--pubkey", pub)
	expectExit(t, res, 0, "verify after the resumed upload")
}
