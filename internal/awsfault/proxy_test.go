package awsfault

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestForwardKeepsBody: a form body the proxy read to find the operation
// reaches the backend whole, unsigned calls included, and the calls are
// counted per operation. (A local backend: what is checked is the proxy's
// forwarding, not an AWS API.)
func TestForwardKeepsBody(t *testing.T) {
	got := make(chan string, 2)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	p := New(target, Options{})
	srv := httptest.NewServer(p)
	defer srv.Close()

	body := "Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fx&Version=2011-06-15"
	for _, auth := range []string{"", "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if b := <-got; b != body {
			t.Errorf("backend got %q, want %q", b, body)
		}
	}
	c := p.Counts()
	if c["unsigned:AssumeRoleWithWebIdentity"].Forwarded != 1 || c["sts:AssumeRoleWithWebIdentity"].Forwarded != 1 || p.Injected() != 0 {
		t.Errorf("counts %v", c)
	}
}
