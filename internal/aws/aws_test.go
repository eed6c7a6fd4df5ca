package aws

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
