package collect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/awstarget"
)

// Memory is collect.memory.
type Memory struct{}

// Methods of collect.memory.
const (
	MemorySSM     = "ssm"
	MemoryNodePod = "node-pod"
)

// DefaultAVMLURL is the AVML release the ssm method downloads on the
// instance when the playbook names none. Its SHA-256 (avml-sha256) has no
// default: eksir does not vouch for a binary it has not hashed itself, so
// the responder pins the hash of the release they vetted.
const DefaultAVMLURL = "https://github.com/microsoft/avml/releases/download/v0.14.0/avml"

// DefaultMemoryPrefix is where in the bucket the instance uploads images.
const DefaultMemoryPrefix = "eksir/memory"

// Spec implements action.Action.
func (Memory) Spec() action.Spec {
	return action.Spec{
		Name: "collect.memory",
		Doc: "A memory image of a node with AVML. ssm: an SSM Run Command on the instance downloads AVML (pinned URL and SHA-256, checked on the instance), " +
			"captures, and uploads the image with curl to a presigned S3 PUT URL eksir generates (the instance needs no S3 permission); eksir then streams the object into the case, hashing it, " +
			"and checks the hash the instance printed. node-pod: AVML in the node collector pod of collect.node-files, streamed over exec. A failed capture is recorded as not collected, with its reason.",
		Kind:     action.Collect,
		Outputs:  captureOutputs("command-id", "object"),
		Needs:    []action.Cloud{action.AWS, action.Kubernetes},
		Volatile: true,
		Params: append([]action.Param{
			{Name: "method", Type: action.String, Default: MemorySSM, Enum: []string{MemorySSM, MemoryNodePod}, Doc: "ssm: SSM Run Command on the instance; node-pod: the node collector pod (Kubernetes only)"},
			{Name: "instance", Type: action.Instance, Doc: "the EC2 instance (ssm); or give node"},
			{Name: "node", Type: action.Node, Doc: "the node: its instance from spec.providerID (ssm), or where the collector pod runs (node-pod)"},
			{Name: "bucket", Type: action.String, Doc: "the S3 bucket the instance uploads the image to (ssm); empty means eksir-evidence-<account>-<region>, the lab's evidence bucket name"},
			{Name: "prefix", Type: action.String, Default: DefaultMemoryPrefix, Doc: "key prefix; the key is <prefix>/<incident>/<instance>/memory.lime, so a resumed run finds it (the generated IAM policy covers the default prefix: widen it for another)"},
			{Name: "avml-url", Type: action.String, Default: DefaultAVMLURL, Doc: "where the instance downloads AVML (ssm); mirror it for instances without internet access"},
			{Name: "avml-sha256", Type: action.String, Doc: "SHA-256 of the AVML binary at avml-url, checked on the instance before it runs (ssm; required for ssm)"},
			{Name: "timeout", Type: action.Duration, Default: 30 * time.Minute, Doc: "how long the capture and upload may take on the instance (ssm); also the presigned URL's lifetime, plus a margin"},
			{Name: "poll-interval", Type: action.Duration, Default: 5 * time.Second, Doc: "first wait between GetCommandInvocation polls; it doubles up to a minute"},
		}, collectorParams()...),
		Permissions: action.Permissions{
			IAM: []action.IAMPermission{
				{Actions: []string{"ssm:SendCommand"}, Resources: []string{"arn:aws:ec2:*:*:instance/*", "arn:aws:ssm:*::document/AWS-RunShellScript"}},
				// sts:GetCallerIdentity (the default bucket's account) needs
				// no permission: IAM never authorises it.
				{Actions: []string{"ssm:GetCommandInvocation", "ssm:ListCommands", "ec2:DescribeInstances"}},
				// The presigned URL carries eksir's identity: the instance's
				// PUT is allowed by eksir's s3:PutObject, not its own role.
				{Actions: []string{"s3:PutObject", "s3:GetObject"}, Resources: []string{"arn:aws:s3:::*/" + DefaultMemoryPrefix + "/*"}},
			},
			Kube: append([]action.KubeRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}}, collectorRules...),
		},
		Notes: memoryNotes,
	}
}

// memoryRel is the image's path in the case for the ssm method; the
// node-pod method shares collect.node-files' node/<name>/memory.lime.
func memoryRel(instance string) string { return "aws/instances/" + instance + "/memory.lime" }

// MemoryKey is the S3 key the instance uploads the image of instance to
// for incident: deterministic, so a resumed run (and a test placing the
// object as the node would) finds it.
func MemoryKey(prefix, incident, instance string) string {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		prefix = DefaultMemoryPrefix
	}
	return prefix + "/" + incident + "/" + instance + "/memory.lime"
}

// MemoryComment is the SSM command's Comment for a step: how a resumed run
// finds the command it sent rather than sending a second. SSM allows 100
// characters; longer names are replaced by their hash.
func MemoryComment(incident, step string) string {
	c := "eksir memory " + incident + " " + step
	if len(c) > 100 {
		sum := sha256.Sum256([]byte(incident + " " + step))
		c = "eksir memory " + hex.EncodeToString(sum[:16])
	}
	return c
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ssmPlan is what the ssm method acts on, resolved from the call.
type ssmPlan struct {
	instance, bucket, key, avmlURL, avmlSHA string
	timeout, poll                           time.Duration
}

func memoryMethod(call action.Call) (string, error) {
	switch m := call.String("method"); m {
	case "", MemorySSM:
		return MemorySSM, nil
	case MemoryNodePod:
		return m, nil
	default:
		return "", fmt.Errorf("%w: method: %q (hint: ssm or node-pod)", action.ErrBadInput, m)
	}
}

// resolveSSM checks the call and finds the instance; it changes nothing.
func resolveSSM(ctx context.Context, env *action.Env, call action.Call) (ssmPlan, error) {
	p := ssmPlan{avmlURL: call.String("avml-url"), avmlSHA: strings.ToLower(call.String("avml-sha256")), timeout: call.Duration("timeout"), poll: call.Duration("poll-interval")}
	if p.avmlURL == "" {
		p.avmlURL = DefaultAVMLURL
	}
	if !strings.HasPrefix(p.avmlURL, "https://") && !strings.HasPrefix(p.avmlURL, "http://") {
		return p, fmt.Errorf("%w: avml-url: %q is not an http(s) URL (hint: the AVML release URL or a mirror of it)", action.ErrBadInput, p.avmlURL)
	}
	if !sha256Hex.MatchString(p.avmlSHA) {
		return p, fmt.Errorf("%w: avml-sha256: %q is not a SHA-256 (hint: 64 hex digits, `sha256sum avml` of the release you vetted)", action.ErrBadInput, call.String("avml-sha256"))
	}
	if p.timeout <= 0 {
		p.timeout = 30 * time.Minute
	}
	if p.poll <= 0 {
		p.poll = 5 * time.Second
	}
	id := call.String("instance")
	if id == "" {
		name := call.String("node")
		if name == "" {
			return p, fmt.Errorf("%w: instance: none given (hint: give instance, or node for the instance behind it)", action.ErrBadInput)
		}
		if env.Kube == nil {
			return p, fmt.Errorf("%w: node: %s: no Kubernetes connection to read its instance from (hint: give instance)", action.ErrBadInput, name)
		}
		n, err := env.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return p, fmt.Errorf("%w: node: %s: %w (hint: kubectl get nodes)", action.ErrBadInput, name, err)
		}
		if id, err = awstarget.NodeInstance(n); err != nil {
			return p, err
		}
	}
	out, err := ec2.NewFromConfig(env.AWS).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	switch {
	case awstarget.ErrorCode(err) == "InvalidInstanceID.NotFound" || awstarget.ErrorCode(err) == "InvalidInstanceID.Malformed":
		return p, fmt.Errorf("%w: instance: %s: %s (hint: check the ID and the region)", action.ErrBadInput, id, awstarget.ErrorCode(err))
	case err != nil:
		return p, fmt.Errorf("describe instance %s: %w", id, err)
	case len(out.Reservations) == 0 || len(out.Reservations[0].Instances) == 0:
		return p, fmt.Errorf("%w: instance: %s not found (hint: check the ID and the region)", action.ErrBadInput, id)
	}
	p.instance = id
	p.key = MemoryKey(call.String("prefix"), env.Incident, id)
	if p.bucket = call.String("bucket"); p.bucket == "" {
		who, err := sts.NewFromConfig(env.AWS).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return p, fmt.Errorf("find the account for the default bucket (or give bucket): %w", err)
		}
		p.bucket = "eksir-evidence-" + aws.ToString(who.Account) + "-" + env.AWS.Region
	}
	return p, nil
}

// Plan implements action.Action.
func (Memory) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	method, err := memoryMethod(call)
	if err != nil {
		return action.Plan{}, err
	}
	if method == MemoryNodePod {
		return planNodeMemory(ctx, env, call)
	}
	p, err := resolveSSM(ctx, env, call)
	if err != nil {
		return action.Plan{}, err
	}
	rel := memoryRel(p.instance)
	if env.Evidence != nil && env.Evidence.Has(rel) {
		return action.Plan{Done: true}, nil
	}
	return action.Plan{Changes: []action.Change{
		{Verb: "send-command", Object: "instance " + p.instance, Detail: fmt.Sprintf("AWS-RunShellScript (comment %q): download AVML from %s, check SHA-256 %s, capture memory, upload with curl to a presigned PUT of s3://%s/%s (valid %s)",
			MemoryComment(env.Incident, call.Step), p.avmlURL, p.avmlSHA, p.bucket, p.key, presignLifetime(p.timeout))},
		{Verb: "collect", Object: "s3://" + p.bucket + "/" + p.key, Detail: "streamed into data/" + rel + ", hashed, checked against the instance's sha256sum"},
	}}, nil
}

// presignLifetime is how long the upload URL is valid: the capture's
// timeout and a margin for a large upload at its end. SigV4 allows at most
// seven days.
func presignLifetime(timeout time.Duration) time.Duration {
	return min(timeout+15*time.Minute, 7*24*time.Hour)
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// MemoryScript is the shell script the ssm method runs on the instance,
// one AWS-RunShellScript command per line. The image goes to a private
// temporary folder on the instance's disk (it needs as much free space as
// the instance has memory) and is removed whatever happens; its sha256sum
// line on stdout is what eksir checks the downloaded object against.
func MemoryScript(avmlURL, avmlSHA, putURL string) []string {
	return []string{
		"set -eu",
		"umask 077",
		`d=$(mktemp -d /var/tmp/eksir-memory.XXXXXX)`,
		`trap 'rm -rf "$d"' EXIT`,
		"curl -fsSL --retry 3 -o \"$d/avml\" " + shellQuote(avmlURL),
		"echo " + shellQuote(avmlSHA+"  ") + "\"$d/avml\" | sha256sum -c -",
		`chmod 0700 "$d/avml"`,
		`"$d/avml" "$d/memory.lime"`,
		`sha256sum "$d/memory.lime"`,
		// S3 refuses an upload to a bucket with Object Lock without a
		// checksum header; Content-MD5 needs no signature, so the
		// presigned URL takes it, and S3 checks it on arrival.
		`md5=$(openssl dgst -md5 -binary "$d/memory.lime" | base64)`,
		"curl -fsS --retry 3 -H \"Content-MD5: $md5\" -T \"$d/memory.lime\" " + shellQuote(putURL),
	}
}

// instanceSHA reads the hash of the image from the command's output: the
// sha256sum line naming memory.lime.
func instanceSHA(stdout string) string {
	for _, l := range strings.Split(stdout, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && strings.HasSuffix(f[1], "/memory.lime") && sha256Hex.MatchString(f[0]) {
			return f[0]
		}
	}
	return ""
}

// Run implements action.Action.
func (Memory) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	method, err := memoryMethod(call)
	if err != nil {
		return action.Result{}, err
	}
	if method == MemoryNodePod {
		return runNodeMemory(ctx, env, call)
	}
	p, err := resolveSSM(ctx, env, call)
	if err != nil {
		return action.Result{}, err
	}
	s := newStore(env)
	rel := memoryRel(p.instance)
	if s.has(rel) {
		return s.result(map[string]any{"object": "s3://" + p.bucket + "/" + p.key}, nil), nil
	}
	src := evidence.Source{Cluster: env.Cluster, Node: call.String("node"), Path: "s3://" + p.bucket + "/" + p.key}
	c := ssm.NewFromConfig(env.AWS)
	id, err := sendMemoryCommand(ctx, env, call, c, p)
	if err != nil {
		return s.result(nil, nil), err
	}
	outputs := map[string]any{"command-id": id, "object": "s3://" + p.bucket + "/" + p.key}
	method1 := fmt.Sprintf("SSM command %s (AWS-RunShellScript) on %s: AVML %s, uploaded to s3://%s/%s", id, p.instance, p.avmlURL, p.bucket, p.key)
	inv, reason, err := waitCommand(ctx, c, id, p)
	if err != nil {
		return s.result(outputs, nil), err
	}
	if reason != "" {
		err := s.notCollected(rel, evidence.ItemInfo{Source: src, Method: method1}, reason)
		return s.result(outputs, nil), err
	}
	theirs := instanceSHA(aws.ToString(inv.StandardOutputContent))
	var warnings []string
	info := evidence.ItemInfo{Source: src, Method: method1 + "; instance sha256 " + theirs}
	if theirs == "" {
		info.Method = method1 + "; the instance reported no sha256"
		warnings = append(warnings, "the command on "+p.instance+" printed no sha256 of the image: the downloaded object is hashed by eksir alone")
	}
	err = s.stream(ctx, rel, info, func(w io.Writer) error { return fetchImage(ctx, env.AWS, p, theirs, w) })
	res := s.result(outputs, warnings)
	return res, err
}

// sendMemoryCommand finds the command an earlier run of the step sent, by
// its Comment, or sends it.
func sendMemoryCommand(ctx context.Context, env *action.Env, call action.Call, c *ssm.Client, p ssmPlan) (string, error) {
	comment := MemoryComment(env.Incident, call.Step)
	pages := ssm.NewListCommandsPaginator(c, &ssm.ListCommandsInput{InstanceId: aws.String(p.instance)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list the SSM commands of %s: %w", p.instance, err)
		}
		for _, cmd := range page.Commands {
			if aws.ToString(cmd.Comment) == comment && aws.ToString(cmd.DocumentName) == "AWS-RunShellScript" {
				return aws.ToString(cmd.CommandId), nil
			}
		}
	}
	put, err := s3.NewPresignClient(eaws.S3(env.AWS)).PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(p.key)},
		s3.WithPresignExpires(presignLifetime(p.timeout)))
	if err != nil {
		return "", fmt.Errorf("presign the upload to s3://%s/%s: %w", p.bucket, p.key, err)
	}
	out, err := c.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName:   aws.String("AWS-RunShellScript"),
		InstanceIds:    []string{p.instance},
		Comment:        aws.String(comment),
		TimeoutSeconds: aws.Int32(600), // to start: the agent must pick it up
		Parameters: map[string][]string{
			"commands":         MemoryScript(p.avmlURL, p.avmlSHA, put.URL),
			"executionTimeout": {fmt.Sprint(int64(p.timeout.Seconds()))},
		},
	})
	if code := awstarget.ErrorCode(err); code == "InvalidInstanceId" {
		return "", fmt.Errorf("%w: instance: %s is not managed by Systems Manager (hint: the SSM agent must run with a role allowing it; or method node-pod)", action.ErrBadInput, p.instance)
	}
	if err != nil {
		return "", fmt.Errorf("send the memory capture command to %s: %w", p.instance, err)
	}
	return aws.ToString(out.Command.CommandId), nil
}

// waitCommand polls the command's invocation until it ends, with a
// doubling interval, for at most the call's timeout (and the start margin).
// A reason is returned when it did not succeed.
func waitCommand(ctx context.Context, c *ssm.Client, id string, p ssmPlan) (*ssm.GetCommandInvocationOutput, string, error) {
	deadline := time.Now().Add(p.timeout + 10*time.Minute)
	if p.timeout < time.Minute {
		deadline = time.Now().Add(p.timeout)
	}
	wait := p.poll
	for {
		out, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(id), InstanceId: aws.String(p.instance)})
		// Right after SendCommand the invocation may not exist yet.
		if err != nil && awstarget.ErrorCode(err) != "InvocationDoesNotExist" {
			return nil, "", fmt.Errorf("poll SSM command %s on %s: %w", id, p.instance, err)
		}
		if err == nil {
			switch out.Status {
			case ssmtypes.CommandInvocationStatusSuccess:
				return out, "", nil
			case ssmtypes.CommandInvocationStatusFailed, ssmtypes.CommandInvocationStatusCancelled, ssmtypes.CommandInvocationStatusTimedOut:
				return out, commandFailure(id, p.instance, out), nil
			}
		}
		if !time.Now().Add(wait).Before(deadline) {
			return nil, fmt.Sprintf("SSM command %s on %s timed out: not finished after %s", id, p.instance, p.timeout), nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, "", ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, time.Minute)
	}
}

func commandFailure(id, instance string, out *ssm.GetCommandInvocationOutput) string {
	r := fmt.Sprintf("SSM command %s on %s failed: %s", id, instance, out.Status)
	if d := aws.ToString(out.StatusDetails); d != "" && d != string(out.Status) {
		r += " (" + d + ")"
	}
	if out.ResponseCode != 0 {
		r += fmt.Sprintf(", exit code %d", out.ResponseCode)
	}
	if e := strings.TrimSpace(aws.ToString(out.StandardErrorContent)); e != "" {
		if len(e) > 500 {
			e = e[len(e)-500:]
		}
		r += ": " + e
	}
	return r
}

// errHashMismatch is the reason an image is refused.
var errHashMismatch = errors.New("hash mismatch")

// fetchImage streams the uploaded object into w, hashing it, and refuses it
// when the instance printed a different hash. The item writer hashes too,
// but only at Commit, which must not happen for a refused image.
func fetchImage(ctx context.Context, cfg aws.Config, p ssmPlan, theirs string, w io.Writer) error {
	obj, err := eaws.S3(cfg).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(p.key)})
	if err != nil {
		return fmt.Errorf("the command succeeded but the image is not readable at s3://%s/%s: %w", p.bucket, p.key, err)
	}
	defer obj.Body.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(io.MultiWriter(w, h), obj.Body, buf); err != nil {
		return fmt.Errorf("read s3://%s/%s: %w", p.bucket, p.key, err)
	}
	if ours := hex.EncodeToString(h.Sum(nil)); theirs != "" && ours != theirs {
		return fmt.Errorf("%w: the instance's sha256sum of the image is %s, the object in s3://%s/%s hashes to %s", errHashMismatch, theirs, p.bucket, p.key, ours)
	}
	return nil
}
