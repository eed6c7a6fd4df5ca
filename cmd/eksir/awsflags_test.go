package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	eaws "github.com/eksir/eksir/internal/aws"
)

// connectAWS parses args with the target flags and returns what the
// connector builds from them.
func connectAWS(t *testing.T, args ...string) (aws.Config, error) {
	t.Helper()
	var (
		cfg aws.Config
		err error
	)
	app := &cli.App{Name: "eksir", Flags: targetCLIFlags(), Action: func(c *cli.Context) error {
		cfg, err = connector{c, "INC-7"}.AWS(c.Context)
		return nil
	}}
	if runErr := app.RunContext(context.Background(), append([]string{"eksir"}, args...)); runErr != nil {
		t.Fatal(runErr)
	}
	return cfg, err
}

// TestAWSFlags: --profile reads the shared config's profile, --role-arn
// swaps the credentials for an assumed role's, --aws-timeout bounds a call
// to an endpoint that never answers, and --external-id alone is a usage
// error.
func TestAWSFlags(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte("[profile ir]\nregion = eu-central-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", conf)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEKSIRFLAGTEST000")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")

	cfg, err := connectAWS(t, "--profile", "ir")
	if err != nil || cfg.Region != "eu-central-1" {
		t.Errorf("--profile ir: region %q, %v; want the profile's eu-central-1", cfg.Region, err)
	}
	cfg, err = connectAWS(t, "--region", "us-east-1", "--role-arn", "arn:aws:iam::111122223333:role/responder", "--external-id", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Credentials.(*aws.CredentialsCache); !ok {
		t.Errorf("--role-arn: credentials %T, want the assumed role's cache", cfg.Credentials)
	}
	if _, err := connectAWS(t, "--region", "us-east-1", "--external-id", "x"); evidencecli.Report(io.Discard, "eksir", err, sentinels) != evidencecli.ExitBadInput {
		t.Errorf("--external-id without --role-arn: %v, want a usage error", err)
	}

	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	t.Setenv("EKSIR_AWS_TIMEOUT", "200ms")
	// urfave/cli writes a value read from the environment into the flag
	// itself, which every in-process run of this test binary shares: put
	// the default back, or later tests inherit 200ms.
	defer func(v time.Duration) { awsTimeoutFlag.Value, awsTimeoutFlag.HasBeenSet = v, false }(awsTimeoutFlag.Value)
	cfg, err = connectAWS(t, "--region", "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	var te eaws.TimeoutError
	if !errors.As(err, &te) {
		t.Errorf("EKSIR_AWS_TIMEOUT=200ms against a silent endpoint: %v, want a TimeoutError", err)
	}
}
