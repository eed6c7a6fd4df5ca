package aws

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// TestEndpointHeadersPathStyle checks, against a local HTTP server, that an
// endpoint override sends S3 requests path-style and carries extra headers
// (the lab's per-test moto account).
func TestEndpointHeadersPathStyle(t *testing.T) {
	var (
		mu     sync.Mutex
		path   string
		header string
		host   string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		path, header, host = r.URL.Path, r.Header.Get("x-moto-account-id"), r.Host
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	cfg, err := Load(t.Context(), Options{Region: "us-east-1", Endpoint: srv.URL, StaticKey: "k", StaticSecret: "s",
		MaxAttempts: 1, Headers: map[string]string{"x-moto-account-id": "111122223333"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RetryMode != aws.RetryModeAdaptive {
		t.Errorf("retry mode %q, want adaptive", cfg.RetryMode)
	}
	if _, err := S3(cfg).HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String("evidence")}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if path != "/evidence" {
		t.Errorf("path %q, want path-style /evidence (host %s)", path, host)
	}
	if header != "111122223333" {
		t.Errorf("x-moto-account-id = %q", header)
	}
}

func TestEnvEndpoint(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "eu-west-1")
	cfg, err := Load(t.Context(), Options{StaticKey: "k", StaticSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:1" || cfg.Region != "eu-west-1" {
		t.Errorf("endpoint %v region %s: AWS_ENDPOINT_URL/AWS_REGION not honoured", cfg.BaseEndpoint, cfg.Region)
	}
}

func TestSessionName(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "eksir",
		"INC-2026-11-30-1a2b":   "eksir-INC-2026-11-30-1a2b",
		"case 7/α":              "eksir-case-7--",
		strings.Repeat("x", 80): "eksir-" + strings.Repeat("x", 58),
		"a+b=c,d.e@f_g":         "eksir-a+b=c,d.e@f_g",
	} {
		if got := SessionName(in); got != want {
			t.Errorf("SessionName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTimeoutNeverAnswers: a server that never answers cannot hang a call:
// the operation ends with a TimeoutError that is a deadline, while the
// caller's own context is still alive.
func TestTimeoutNeverAnswers(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg, err := Load(t.Context(), Options{Region: "us-east-1", Endpoint: srv.URL, StaticKey: "k", StaticSecret: "s", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	var te TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a TimeoutError matching context.DeadlineExceeded", err)
	}
	if t.Context().Err() != nil {
		t.Fatal("the test's context ended: the timeout did not come from Options.Timeout")
	}
}

// TestTimeoutStreamingBody: a streamed body stays readable after the
// operation returned (the timeout's context ends when the body is closed,
// not when the call returns), and the user agent names eksir.
func TestTimeoutStreamingBody(t *testing.T) {
	release := make(chan struct{})
	var ua atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.Header.Get("User-Agent"))
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	cfg, err := Load(t.Context(), Options{Region: "us-east-1", Endpoint: srv.URL, StaticKey: "k", StaticSecret: "s", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := S3(cfg).GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	b, err := io.ReadAll(out.Body)
	if err != nil || string(b) != "hello" {
		t.Fatalf("body %q, %v after the call returned", b, err)
	}
	if err := out.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if s, _ := ua.Load().(string); !strings.Contains(s, "app/eksir") {
		t.Errorf("user agent %q lacks app/eksir", s)
	}
}
