// Package aws builds AWS SDK configuration the way every eksir action uses
// it, with the options of the AWS CLI: the standard credential and region
// chain or a named profile, an optional role to assume (a security account
// responding into a workload account), adaptive retries, a timeout on every
// call, an optional endpoint override (AWS_ENDPOINT_URL, honoured by the
// SDK itself) and path-style S3, which emulators such as moto need.
package aws

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// DefaultTimeout bounds every AWS operation, its retries included, when
// Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// AppID is sent in the user agent of every request, so CloudTrail shows
// which calls a response made.
const AppID = "eksir"

// Options tune the configuration. The zero value uses the environment alone.
type Options struct {
	// Profile selects a shared config/credentials profile (AWS_PROFILE).
	Profile string
	// Region overrides AWS_REGION / the profile's region.
	Region string
	// Endpoint overrides AWS_ENDPOINT_URL for every service.
	Endpoint string
	// StaticKey and StaticSecret, when set, replace the credential chain
	// (the lab's dummy credentials).
	StaticKey, StaticSecret string
	// RoleARN, when set, is assumed with the credentials above, and every
	// call is made as that role. ExternalID is passed along when the
	// role's trust policy asks for one. Incident names the session
	// ("eksir-<incident>"), so the workload account's CloudTrail ties each
	// call to the incident.
	RoleARN, ExternalID, Incident string
	// Timeout bounds each operation, retries included, so that no call
	// hangs a step forever. Zero means DefaultTimeout; negative, none.
	Timeout time.Duration
	// MaxAttempts bounds retries; zero keeps the SDK default for adaptive mode.
	MaxAttempts int
	// Headers are added to every request. The lab uses x-moto-account-id to
	// give each test its own emulated account.
	Headers map[string]string
	// Recorder, when set, records the IAM action of every operation.
	Recorder *Recorder
}

// Load resolves the AWS configuration.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		// Adaptive mode adds client-side rate limiting on throttling, which
		// matters when an incident fans out over hundreds of instances.
		config.WithRetryMode(aws.RetryModeAdaptive),
		config.WithAppID(AppID),
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(o.Endpoint))
	}
	if o.StaticKey != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.StaticKey, o.StaticSecret, "")))
	}
	if o.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(o.MaxAttempts))
	}
	var api []func(*middleware.Stack) error
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout > 0 {
		api = append(api, addTimeout(timeout))
	}
	if o.Recorder != nil {
		api = append(api, o.Recorder.add)
	}
	if testHook != nil {
		api = append(api, addTestHook(testHook))
	}
	if len(o.Headers) > 0 {
		api = append(api, addHeaders(o.Headers))
	}
	if len(api) > 0 {
		opts = append(opts, config.WithAPIOptions(api))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("load AWS configuration: no region: set AWS_REGION or --region")
	}
	if o.RoleARN != "" {
		// The STS client carries the base credentials and the same
		// middleware (timeout, recorder, headers), so AssumeRole is bounded
		// and recorded like any other call. The cache refreshes the role's
		// credentials before they expire, for long runs.
		base := sts.NewFromConfig(cfg)
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(base, o.RoleARN, func(ao *stscreds.AssumeRoleOptions) {
			ao.RoleSessionName = SessionName(o.Incident)
			if o.ExternalID != "" {
				ao.ExternalID = aws.String(o.ExternalID)
			}
		}))
	}
	return cfg, nil
}

var sessionNameInvalid = regexp.MustCompile(`[^\w+=,.@-]`)

// SessionName is the role session name for an incident: "eksir-<incident>"
// with the characters IAM refuses replaced by '-' and cut to IAM's 64.
func SessionName(incident string) string {
	s := "eksir"
	if incident != "" {
		s += "-" + incident
	}
	s = sessionNameInvalid.ReplaceAllString(s, "-")
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// S3 returns an S3 client. Path-style addressing is used whenever an
// endpoint override is set, since emulators do not serve virtual-host buckets.
func S3(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
			o.UsePathStyle = true
		}
	})
}

func addHeaders(h map[string]string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Build.Add(middleware.BuildMiddlewareFunc("eksirHeaders", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				for k, v := range h {
					req.Header.Set(k, v)
				}
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
	}
}
