// Package iamcheck_test holds one test: the IAM cross-check over every AWS
// action eksir registers, containment and collection alike. It lives in a
// package of its own, with no code besides the test, because it registers
// both isolate and collect: in either package's tests it would see only
// that package's actions.
package iamcheck_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/isolate"
	"github.com/eksir/eksir/lab"
)

func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }

// register registers every action this check covers: those of eksir's
// registry (cmd/eksir's newRegistry; TestRegistryIsCheckedForIAM there
// fails when it registers a package this does not).
func register(r *action.Registry) {
	isolate.Register(r)
	collect.Register(r)
}

// missingFromMoto are the operations moto does not have (LAB.md). Only
// these are routed to missingServer; every other call goes to moto.
var missingFromMoto = map[string]bool{
	"EKS/ListPodIdentityAssociations":    true,
	"EKS/DescribePodIdentityAssociation": true,
	"CloudTrail/LookupEvents":            true,
	"EC2/GetConsoleScreenshot":           true,
}

// missingServer answers the calls of missingFromMoto, and nothing else,
// in the shapes of the AWS API models: EKS Pod Identity (restJson1, GET
// /clusters/{name}/pod-identity-associations?namespace&serviceAccount and
// .../{associationId}), CloudTrail LookupEvents (JSON 1.1, X-Amz-Target
// CloudTrail_20131101.LookupEvents) and EC2 GetConsoleScreenshot (query
// protocol, XML answer). A request it does not know fails the test, so a
// routing mistake cannot pass as an answer.
type missingServer struct {
	t                        *testing.T
	cluster, ns, sa, roleARN string
	mu                       sync.Mutex
	served                   map[string]int
}

const associationID = "a-0123456789abcdef0"

func (m *missingServer) count(op string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.served[op]++
}

func (m *missingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	prefix := "/clusters/" + m.cluster + "/pod-identity-associations"
	summary := map[string]any{"clusterName": m.cluster, "namespace": m.ns, "serviceAccount": m.sa, "associationId": associationID,
		"associationArn": "arn:aws:eks:us-east-1:123456789012:podidentityassociation/" + m.cluster + "/" + associationID}
	form, _ := url.ParseQuery(string(body))
	switch target := r.Header.Get("X-Amz-Target"); {
	case r.Method == http.MethodGet && r.URL.Path == prefix:
		m.count("ListPodIdentityAssociations")
		list := []any{}
		if r.URL.Query().Get("namespace") == m.ns && r.URL.Query().Get("serviceAccount") == m.sa {
			list = append(list, summary)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"associations": list})
	case r.Method == http.MethodGet && r.URL.Path == prefix+"/"+associationID:
		m.count("DescribePodIdentityAssociation")
		a := map[string]any{"roleArn": m.roleARN, "createdAt": 1.7e9, "modifiedAt": 1.7e9, "tags": map[string]string{}, "disableSessionTags": false}
		for k, v := range summary {
			a[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"association": a})
	case target == "CloudTrail_20131101.LookupEvents":
		m.count("LookupEvents")
		var in struct {
			LookupAttributes []struct{ AttributeKey, AttributeValue string }
		}
		if err := json.Unmarshal(body, &in); err != nil || len(in.LookupAttributes) != 1 {
			m.t.Errorf("LookupEvents: request %s (%v)", body, err)
		}
		// One event for whatever was looked up: enough for the action to
		// write a line, which is all this check needs.
		raw, _ := json.Marshal(map[string]any{"eventVersion": "1.09", "eventID": "e-iam", "eventName": "ListBuckets"})
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(map[string]any{"Events": []map[string]any{{"EventId": "e-iam", "EventName": "ListBuckets",
			"EventTime": float64(time.Now().Add(-time.Hour).Unix()), "EventSource": "s3.amazonaws.com", "ReadOnly": "true", "CloudTrailEvent": string(raw)}}})
	case r.Method == http.MethodPost && form.Get("Action") == "GetConsoleScreenshot":
		m.count("GetConsoleScreenshot")
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<GetConsoleScreenshotResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
  <instanceId>%s</instanceId>
  <imageData>%s</imageData>
</GetConsoleScreenshotResponse>`, form.Get("InstanceId"), base64.StdEncoding.EncodeToString([]byte{0xff, 0xd8, 0xff, 0xe0, 'e', 'k', 's', 'i', 'r'}))
	default:
		m.t.Errorf("missing-from-moto server: unexpected request %s %s (target %q, action %q)", r.Method, r.URL.Path, target, form.Get("Action"))
		w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"not served here"}`))
	}
}

// routeMissing returns cfg with the operations of missingFromMoto sent to
// base; the rest stays on moto.
func routeMissing(cfg aws.Config, base string) aws.Config {
	u, _ := url.Parse(base)
	cfg = cfg.Copy()
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("routeMissingFromMoto", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetServiceID(ctx) + "/" + awsmiddleware.GetOperationName(ctx)
			if req, ok := in.Request.(*smithyhttp.Request); ok && missingFromMoto[op] {
				req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
	})
	return cfg
}

// instanceAgent stands in for the SSM agent, which moto lacks: moto
// accepts SendCommand and answers GetCommandInvocation with Success and
// no output. This rewrites only that answer's output to the sha256sum line
// the capture script prints for image, as the instance would.
func instanceAgent(image []byte) func(*middleware.Stack) error {
	sum := sha256.Sum256(image)
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("instanceAgent", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil && awsmiddleware.GetOperationName(ctx) == "GetCommandInvocation" {
				r := out.Result.(*ssm.GetCommandInvocationOutput)
				r.StandardOutputContent = aws.String(hex.EncodeToString(sum[:]) + "  /var/tmp/eksir-memory.iam/memory.lime\n")
			}
			return out, md, err
		}), middleware.Before)
	}
}

// withDefaults applies the spec's parameter defaults, as the engine does.
func withDefaults(spec action.Spec, call action.Call) action.Call {
	p := map[string]any{}
	for _, d := range spec.Params {
		if d.Default != nil {
			p[d.Name] = d.Default
		}
	}
	for k, v := range call.Params {
		p[k] = v
	}
	return action.Call{Step: call.Step, Params: p}
}

// excused reports whether declared is matched by a pattern of unseen.
func excused(unseen map[string]string, declared string) bool {
	for u := range unseen {
		if action.IAMAllows(declares(u), declared) {
			return true
		}
	}
	return false
}

// declares is a spec declaring the one IAM action (or pattern) declared,
// so that IAMAllows answers whether a call matches it.
func declares(declared string) []action.Spec {
	return []action.Spec{{Permissions: action.Permissions{IAM: []action.IAMPermission{{Actions: []string{declared}}}}}}
}

// Every AWS call an AWS action makes, in Plan, Run and (for a reversible
// one) Undo, against moto, is allowed by the IAM permissions its Spec
// declares, which is what `eksir permissions --format iam` prints; and
// every IAM action a Spec declares is one the action was seen to call (no
// permission held "just in case"), except those in unseen, each with the
// reason it is not seen here. An AWS action without a call in the table
// fails the test.
func TestAWSActionsIAMCoverTheirCalls(t *testing.T) {
	s := labtest.SeedScenario(t, 2, 2, register)
	ctx := t.Context()
	base := s.Lab.AWS
	targets := s.Seed.Targets
	instance := targets[lab.TargetInstance]

	// A Pod Identity pod and its association (served by missingServer).
	iamc := iam.NewFromConfig(base)
	cr, err := iamc.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("lab-pod-identity-iam"),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	kc := s.Lab.Kube.Typed
	if _, err := kc.CoreV1().ServiceAccounts(s.NS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "iam-uploader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Pods(s.NS).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "iam-uploader"}, Spec: corev1.PodSpec{
		NodeName: s.Node, ServiceAccountName: "iam-uploader",
		Containers: []corev1.Container{{Name: "app", Image: "public.ecr.aws/docker/library/busybox:1.36", Env: []corev1.EnvVar{
			{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://169.254.170.23/v1/credentials"}}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	missing := &missingServer{t: t, cluster: s.Env.Cluster, ns: s.NS, sa: "iam-uploader", roleARN: aws.ToString(cr.Role.Arn), served: map[string]int{}}
	srv := httptest.NewServer(missing)
	t.Cleanup(srv.Close)

	// The cluster's control-plane log group with an audit line on the
	// suspect pod, so that collect.cloud-logs searches a stream.
	logs := cloudwatchlogs.NewFromConfig(base)
	group := "/aws/eks/" + s.Env.Cluster + "/cluster"
	if _, err := logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String("kube-apiserver-audit-0a1b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String("kube-apiserver-audit-0a1b"),
		LogEvents: []logstypes.InputLogEvent{{Timestamp: aws.Int64(time.Now().Add(-time.Hour).UnixMilli()),
			Message: aws.String(`{"kind":"Event","verb":"get","objectRef":{"resource":"pods","namespace":"` + s.NS + `","name":"` + s.Pod + `"}}`)}}}); err != nil {
		t.Fatal(err)
	}

	// An inline policy on the node role, as an attacker might add one, so
	// that collect.instance-metadata reads one (iam:GetRolePolicy).
	if err := putNodeInlinePolicy(t, s, iamc, instance); err != nil {
		t.Fatal(err)
	}

	const forensicAccount = "210987654321"
	const avmlSHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" // moto runs nothing: no binary is checked against it
	memoryImage := make([]byte, 64<<10)
	rand.Read(memoryImage)
	calls := map[string][]action.Call{
		"isolate.instance-protect": {{Step: "protect", Params: map[string]any{"instance": instance, "asg": "protect"}}},
		"isolate.instance-network": {{Step: "isolate", Params: map[string]any{"instance": instance, "two-step": true, "settle": time.Duration(0), "forensic-cidr": "10.99.0.0/24"}}},
		"revoke.instance-profile":  {{Step: "profile", Params: map[string]any{"instance": instance}}},
		"revoke.irsa-role":         {{Step: "irsa", Params: map[string]any{"role": targets[lab.TargetIAMRole]}}},
		"revoke.access-key":        {{Step: "key", Params: map[string]any{"access-key": targets[lab.TargetAccessKey], "all-keys": true, "delete-login-profile": false}}},
		"revoke.pod-identity":      {{Step: "pod-identity", Params: map[string]any{"pod": s.NS + "/iam-uploader", "role-wide": false}}},
		// The instance (CreateSnapshots) and a pod's PersistentVolume
		// (CreateSnapshot), each shared and copied with a forensic key.
		"collect.ebs-snapshot": {
			{Step: "snap-instance", Params: map[string]any{"instance": instance, "share-with-account": forensicAccount, "copy-kms-key": "alias/eksir-forensics"}},
			{Step: "snap-pod", Params: map[string]any{"pod": s.NS + "/" + s.Pod, "share-with-account": forensicAccount, "copy-kms-key": "alias/eksir-forensics"}},
		},
		"collect.memory":            {{Step: "memory", Params: map[string]any{"instance": instance, "avml-sha256": avmlSHA, "poll-interval": time.Millisecond}}},
		"collect.instance-metadata": {{Step: "meta", Params: map[string]any{"node": s.Node}}},
		"collect.cloud-logs": {{Step: "cloud-logs", Params: map[string]any{"pod": s.NS + "/" + s.Pod, "node": s.Node, "role": targets[lab.TargetIAMRole],
			"access-key": targets[lab.TargetAccessKey], "instance": instance}}},
	}
	// Declared but not seen here, per action, with the reason.
	unseen := map[string]map[string]string{
		"isolate.instance-protect": {
			"autoscaling:DetachInstances": "asg=detach; protect runs here",
			"autoscaling:AttachInstances": "the undo of asg=detach",
		},
		"isolate.instance-network": {
			"ec2:RevokeSecurityGroupIngress": "only for a quarantine group with ingress rules someone added (a new group has none)",
		},
		"revoke.instance-profile": {
			"iam:PassRole": "not an API call: IAM checks it when the Undo associates the profile (AssociateIamInstanceProfile)",
		},
		"revoke.access-key": {
			"iam:DeleteLoginProfile": "delete-login-profile",
			"iam:GetLoginProfile":    "delete-login-profile",
			"iam:ListUsers":          "only when AWS cannot name a key's user (GetAccessKeyLastUsed fallback)",
		},
		"collect.ebs-snapshot": {
			"kms:*": "EC2 calls KMS on the caller's behalf for the copy (kms:ViaService); eksir never does",
		},
	}
	for _, spec := range s.Registry.Specs() {
		if !slices.Contains(spec.Needs, action.AWS) {
			continue
		}
		t.Run(spec.Name, func(t *testing.T) {
			list, ok := calls[spec.Name]
			if !ok || len(list) == 0 {
				t.Fatalf("no call for AWS action %s: add one to this test", spec.Name)
			}
			a, ok := s.Registry.Lookup(spec.Name)
			if !ok {
				t.Fatalf("%s not registered", spec.Name)
			}
			rec := &eaws.Recorder{}
			env := *s.Env
			env.Incident = "iam-" + strings.ReplaceAll(spec.Name, ".", "-")
			env.Evidence = labtest.NewCase(t, env.Incident)
			env.AWS = routeMissing(s.Lab.AWSWith(t, eaws.Options{Recorder: rec}), srv.URL)
			if spec.Name == "collect.memory" {
				env.AWS.APIOptions = append(env.AWS.APIOptions, instanceAgent(memoryImage))
				placeMemory(t, s, env.Incident, instance, memoryImage)
			}
			for _, call := range list {
				call = withDefaults(spec, call)
				if _, err := a.Plan(ctx, &env, call); err != nil {
					t.Fatalf("plan %s: %v", call.Step, err)
				}
				res, err := a.Run(ctx, &env, call)
				if err != nil {
					t.Fatalf("run %s: %v", call.Step, err)
				}
				// A collect step that recorded items as not collected took
				// a path short of the calls it exists for.
				if m, _ := res.Outputs["missing"].([]string); len(m) > 0 {
					t.Errorf("run %s: not collected: %v", call.Step, m)
				}
				if rev, ok := a.(action.Reverser); ok {
					if _, err := rev.Undo(ctx, &env, call, res.Undo); err != nil {
						t.Fatalf("undo %s: %v", call.Step, err)
					}
					if _, err := rev.Undo(ctx, &env, call, nil); err != nil {
						t.Fatalf("undo %s without record: %v", call.Step, err)
					}
				}
			}
			if err := rec.Err(); err != nil {
				t.Fatal(err)
			}
			seen := rec.Calls()
			if len(seen) == 0 {
				t.Fatal("recorded no call")
			}
			for _, c := range seen {
				if !action.IAMAllows([]action.Spec{spec}, c) {
					t.Errorf("calls %s, which its IAM permissions do not allow", c)
				}
			}
			for _, p := range spec.Permissions.IAM {
				for _, declared := range p.Actions {
					if slices.ContainsFunc(seen, func(c string) bool { return action.IAMAllows(declares(declared), c) }) {
						continue
					}
					if excused(unseen[spec.Name], declared) {
						continue
					}
					t.Errorf("declares %s but never calls it (calls: %s): call it here, or list it in unseen with the reason", declared, strings.Join(seen, ", "))
				}
			}
			// An excuse for a call that is made after all is stale.
			for u := range unseen[spec.Name] {
				if slices.ContainsFunc(seen, func(c string) bool { return action.IAMAllows(declares(u), c) }) {
					t.Errorf("%s is listed in unseen but is called: remove it there", u)
				}
			}
		})
	}
	// The stand-ins answered what they stand in for: every call moto lacks
	// was made through them, not around them.
	missing.mu.Lock()
	defer missing.mu.Unlock()
	for op := range missingFromMoto {
		name := op[strings.Index(op, "/")+1:]
		if missing.served[name] == 0 {
			t.Errorf("%s was never served by the stand-in", op)
		}
	}
}

// placeMemory uploads image where the capture script would, at the
// deterministic key in the evidence bucket, with the Content-MD5 that
// Object Lock buckets demand.
func placeMemory(t *testing.T, s *labtest.Scenario, incident, instance string, image []byte) {
	t.Helper()
	sum := md5.Sum(image)
	if _, err := eaws.S3(s.Lab.AWS).PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(s.Seed.EvidenceBucket), Key: aws.String(collect.MemoryKey("", incident, instance)),
		Body: bytes.NewReader(image), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))}); err != nil {
		t.Fatalf("place the memory image as the instance would: %v", err)
	}
}

// putNodeInlinePolicy adds an inline policy to the role of instance's
// instance profile.
func putNodeInlinePolicy(t *testing.T, s *labtest.Scenario, iamc *iam.Client, instance string) error {
	t.Helper()
	d, err := ec2.NewFromConfig(s.Lab.AWS).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	if err != nil {
		return err
	}
	if len(d.Reservations) == 0 || d.Reservations[0].Instances[0].IamInstanceProfile == nil {
		return fmt.Errorf("instance %s has no instance profile", instance)
	}
	arn := aws.ToString(d.Reservations[0].Instances[0].IamInstanceProfile.Arn)
	prof, err := iamc.GetInstanceProfile(t.Context(), &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(arn[strings.LastIndex(arn, "/")+1:])})
	if err != nil {
		return err
	}
	if len(prof.InstanceProfile.Roles) != 1 {
		return fmt.Errorf("instance profile %s has %d roles, want 1", arn, len(prof.InstanceProfile.Roles))
	}
	_, err = iamc.PutRolePolicy(t.Context(), &iam.PutRolePolicyInput{RoleName: prof.InstanceProfile.Roles[0].RoleName, PolicyName: aws.String("added-by-attacker"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`)})
	return err
}
