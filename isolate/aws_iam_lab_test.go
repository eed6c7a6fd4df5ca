package isolate_test

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/lab"
)

// Every AWS call an AWS action makes in Plan, Run and Undo against moto is
// allowed by the IAM permissions its Spec declares, which is what `eksir
// permissions --format iam` prints; and every IAM action a Spec declares
// is one the action was seen to call (no permission held "just in case"),
// except those listed below with the reason they are not seen on moto.
func TestAWSActionsIAMCoverTheirCalls(t *testing.T) {
	f := setupAWS(t)
	ctx := t.Context()
	targets := f.s.Seed.Targets
	// A Pod Identity pod and its association (served by fakeEKS: moto has
	// no Pod Identity associations).
	role := "lab-pod-identity-iam"
	cr, err := f.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	kc := f.s.Lab.Kube.Typed
	if _, err := kc.CoreV1().ServiceAccounts(f.s.NS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "iam-uploader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoreV1().Pods(f.s.NS).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "iam-uploader"}, Spec: corev1.PodSpec{
		NodeName: f.s.Node, ServiceAccountName: "iam-uploader",
		Containers: []corev1.Container{{Name: "app", Image: "public.ecr.aws/docker/library/busybox:1.36", Env: []corev1.EnvVar{
			{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://169.254.170.23/v1/credentials"}}}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eks := &fakeEKS{cluster: f.s.Env.Cluster, ns: f.s.NS, sa: "iam-uploader", roleARN: aws.ToString(cr.Role.Arn)}
	srv := httptest.NewServer(eks)
	t.Cleanup(srv.Close)

	calls := map[string]action.Call{
		"isolate.instance-protect": {Step: "protect", Params: map[string]any{"instance": targets[lab.TargetInstance], "asg": "protect"}},
		"isolate.instance-network": netCall(targets[lab.TargetInstance], map[string]any{"forensic-cidr": "10.99.0.0/24"}),
		"revoke.instance-profile":  {Step: "profile", Params: map[string]any{"instance": targets[lab.TargetInstance]}},
		"revoke.irsa-role":         {Step: "irsa", Params: map[string]any{"role": targets[lab.TargetIAMRole]}},
		"revoke.access-key":        {Step: "key", Params: map[string]any{"access-key": targets[lab.TargetAccessKey], "all-keys": true, "delete-login-profile": false}},
		"revoke.pod-identity":      {Step: "pod-identity", Params: map[string]any{"pod": f.s.NS + "/iam-uploader", "role-wide": false}},
	}
	// Declared but not seen on moto, with the reason.
	unseen := map[string]string{
		// Detach is the other asg mode; protect runs here.
		"autoscaling:DetachInstances": "asg=detach", "autoscaling:AttachInstances": "undo of asg=detach",
		// Login profiles are deleted only with delete-login-profile.
		"iam:DeleteLoginProfile": "delete-login-profile", "iam:GetLoginProfile": "delete-login-profile",
		// Only when moto (or AWS) cannot name a key's user.
		"iam:ListUsers": "GetAccessKeyLastUsed fallback",
		// Only when the quarantine group carries ingress rules someone
		// added (a new group has none).
		"ec2:RevokeSecurityGroupIngress": "a quarantine group with ingress rules",
		// Not an API call: IAM checks it when an instance profile is
		// associated (AssociateIamInstanceProfile, the Undo).
		"iam:PassRole": "checked by AssociateIamInstanceProfile",
	}
	for _, spec := range f.s.Registry.Specs() {
		if !slices.Contains(spec.Needs, action.AWS) {
			continue
		}
		t.Run(spec.Name, func(t *testing.T) {
			call, ok := calls[spec.Name]
			if !ok {
				t.Fatalf("no call for AWS action %s: add one to this test", spec.Name)
			}
			rec := &eaws.Recorder{}
			env := *f.s.Env
			env.Incident = "iam-" + strings.ReplaceAll(spec.Name, ".", "-")
			env.AWS = routeEKS(f.s.Lab.AWSWith(t, eaws.Options{Recorder: rec}), srv.URL)
			a := f.act(t, spec.Name)
			if _, err := a.Plan(ctx, &env, call); err != nil {
				t.Fatalf("plan: %v", err)
			}
			res, err := a.Run(ctx, &env, call)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if rev, ok := a.(action.Reverser); ok {
				if _, err := rev.Undo(ctx, &env, call, res.Undo); err != nil {
					t.Fatalf("undo: %v", err)
				}
				if _, err := rev.Undo(ctx, &env, call, nil); err != nil {
					t.Fatalf("undo without record: %v", err)
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
					if strings.Contains(declared, "*") || slices.Contains(seen, declared) || unseen[declared] != "" {
						continue
					}
					t.Errorf("declares %s but never calls it (calls: %s)", declared, strings.Join(seen, ", "))
				}
			}
		})
	}
}
