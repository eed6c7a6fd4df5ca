package aws

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// iamPrefix maps the SDK's service IDs to IAM's service prefixes, for the
// services eksir calls. A service missing here is reported by
// Recorder.Err, so that a new client cannot slip past the policy check.
var iamPrefix = map[string]string{
	"EC2":             "ec2",
	"IAM":             "iam",
	"Auto Scaling":    "autoscaling",
	"STS":             "sts",
	"EKS":             "eks",
	"S3":              "s3",
	"CloudTrail":      "cloudtrail",
	"CloudWatch Logs": "logs",
	"SSM":             "ssm",
	"GuardDuty":       "guardduty",
}

// s3Actions are the S3 operations whose IAM action is not named after
// them (the S3 authorization reference): HEAD and the multipart steps
// are authorised by the action of the whole, listings by the bucket's.
var s3Actions = map[string][]string{
	"HeadObject":                 {"s3:GetObject"},
	"HeadBucket":                 {"s3:ListBucket"},
	"ListObjects":                {"s3:ListBucket"},
	"ListObjectsV2":              {"s3:ListBucket"},
	"ListObjectVersions":         {"s3:ListBucketVersions"},
	"ListBuckets":                {"s3:ListAllMyBuckets"},
	"ListMultipartUploads":       {"s3:ListBucketMultipartUploads"},
	"ListParts":                  {"s3:ListMultipartUploadParts"},
	"CreateMultipartUpload":      {"s3:PutObject"},
	"UploadPart":                 {"s3:PutObject"},
	"CompleteMultipartUpload":    {"s3:PutObject"},
	"UploadPartCopy":             {"s3:GetObject", "s3:PutObject"},
	"CopyObject":                 {"s3:GetObject", "s3:PutObject"},
	"DeleteObjects":              {"s3:DeleteObject"},
	"GetObjectAttributes":        {"s3:GetObject", "s3:GetObjectAttributes"},
	"GetObjectLockConfiguration": {"s3:GetBucketObjectLockConfiguration"},
	"PutObjectLockConfiguration": {"s3:PutBucketObjectLockConfiguration"},
}

// noPermission are operations IAM never authorises: any principal may call
// them, and a deny cannot stop them (STS GetCallerIdentity).
var noPermission = map[string]bool{"sts:GetCallerIdentity": true}

// IAMActions returns the IAM actions an operation of a service needs,
// for example ("EC2", "DescribeInstances") -> ["ec2:DescribeInstances"];
// none for an operation that needs no permission; an error for a service
// eksir does not know.
func IAMActions(serviceID, operation string) ([]string, error) {
	p, ok := iamPrefix[serviceID]
	if !ok {
		return nil, fmt.Errorf("AWS service %q (operation %s) has no IAM prefix in internal/aws: add it", serviceID, operation)
	}
	if p == "s3" {
		if a, ok := s3Actions[operation]; ok {
			return a, nil
		}
	}
	a := p + ":" + operation
	if noPermission[a] {
		return nil, nil
	}
	return []string{a}, nil
}

// Recorder records the IAM actions of the AWS operations made through
// configurations loaded with it (Options.Recorder), attempted ones
// included: a call IAM denies needs the permission as much as one that
// succeeds. It is safe for concurrent use.
type Recorder struct {
	mu    sync.Mutex
	calls map[string]bool
	errs  map[string]error
}

// Calls returns the recorded IAM actions, sorted, each once.
func (r *Recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.calls))
	for c := range r.calls {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// Err reports operations of services without a known IAM prefix, which
// Calls cannot name: a test must fail on them rather than pass silently.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]string, 0, len(r.errs))
	for k := range r.errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	errs := make([]error, 0, len(keys))
	for _, k := range keys {
		errs = append(errs, r.errs[k])
	}
	return errors.Join(errs...)
}

func (r *Recorder) record(serviceID, operation string) {
	actions, err := IAMActions(serviceID, operation)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.errs == nil {
			r.errs = map[string]error{}
		}
		r.errs[serviceID+":"+operation] = err
		return
	}
	if r.calls == nil {
		r.calls = map[string]bool{}
	}
	for _, a := range actions {
		r.calls[a] = true
	}
}

func (r *Recorder) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("eksirRecorder", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		r.record(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx))
		return next.HandleInitialize(ctx, in)
	}), middleware.After)
}
