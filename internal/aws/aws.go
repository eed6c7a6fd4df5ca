// Package aws builds AWS SDK configuration the way every eksir action uses
// it: the standard credential and region chain, adaptive retries, an
// optional endpoint override (AWS_ENDPOINT_URL, honoured by the SDK itself)
// and path-style S3, which emulators such as moto need.
package aws

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Options tune the configuration. The zero value uses the environment alone.
type Options struct {
	// Region overrides AWS_REGION / the profile's region.
	Region string
	// Endpoint overrides AWS_ENDPOINT_URL for every service.
	Endpoint string
	// StaticKey and StaticSecret, when set, replace the credential chain
	// (the lab's dummy credentials).
	StaticKey, StaticSecret string
	// MaxAttempts bounds retries; zero keeps the SDK default for adaptive mode.
	MaxAttempts int
	// Headers are added to every request. The lab uses x-moto-account-id to
	// give each test its own emulated account.
	Headers map[string]string
}

// Load resolves the AWS configuration.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		// Adaptive mode adds client-side rate limiting on throttling, which
		// matters when an incident fans out over hundreds of instances.
		config.WithRetryMode(aws.RetryModeAdaptive),
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
	if len(o.Headers) > 0 {
		opts = append(opts, config.WithAPIOptions([]func(*middleware.Stack) error{addHeaders(o.Headers)}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("load AWS configuration: no region: set AWS_REGION or --region")
	}
	return cfg, nil
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
