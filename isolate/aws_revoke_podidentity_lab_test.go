package isolate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awsiam"
	"github.com/eksir/eksir/internal/naming"
	"github.com/eksir/eksir/isolate"
)

// fakeEKS answers the two EKS Pod Identity calls revoke.pod-identity makes,
// and nothing else. moto has no Pod Identity associations (LAB.md), so
// these two calls alone are served here, with the shapes of the EKS API
// model (restJson1: GET /clusters/{name}/pod-identity-associations with
// namespace and serviceAccount query parameters, GET
// /clusters/{name}/pod-identity-associations/{associationId}); IAM, STS and
// everything else stay on moto.
type fakeEKS struct {
	cluster, ns, sa, roleARN string
	disableSessionTags       bool
	mu                       sync.Mutex
	calls                    []string
}

const fakeAssociationID = "a-0123456789abcdef0"

func (e *fakeEKS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.calls = append(e.calls, r.Method+" "+r.URL.Path)
	disable := e.disableSessionTags
	e.mu.Unlock()
	prefix := "/clusters/" + e.cluster + "/pod-identity-associations"
	summary := map[string]any{"clusterName": e.cluster, "namespace": e.ns, "serviceAccount": e.sa,
		"associationId": fakeAssociationID, "associationArn": "arn:aws:eks:us-east-1:123456789012:podidentityassociation/" + e.cluster + "/" + fakeAssociationID}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == prefix:
		var list []any
		if r.URL.Query().Get("namespace") == e.ns && r.URL.Query().Get("serviceAccount") == e.sa {
			list = append(list, summary)
		}
		json.NewEncoder(w).Encode(map[string]any{"associations": list})
	case r.Method == http.MethodGet && r.URL.Path == prefix+"/"+fakeAssociationID:
		a := map[string]any{"roleArn": e.roleARN, "createdAt": 1.7e9, "modifiedAt": 1.7e9, "tags": map[string]string{}, "disableSessionTags": disable}
		for k, v := range summary {
			a[k] = v
		}
		json.NewEncoder(w).Encode(map[string]any{"association": a})
	default:
		w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"message": "not found"})
	}
}

// routeEKS returns cfg with the EKS service's requests sent to base.
func routeEKS(cfg aws.Config, base string) aws.Config {
	u, _ := url.Parse(base)
	cfg = cfg.Copy()
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("routeEKS", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok && awsmiddleware.GetServiceID(ctx) == "EKS" {
				req.URL.Scheme, req.URL.Host = u.Scheme, u.Host
			}
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
	})
	return cfg
}

func TestAWSRevokePodIdentity(t *testing.T) {
	f := setupAWS(t)
	ctx := t.Context()
	a := f.action(t, "revoke.pod-identity")
	kc := f.s.Lab.Kube.Typed
	ns := f.s.NS

	// A role for Pod Identity and two pods using it through one account.
	role := "lab-pod-identity"
	cr, err := f.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(role),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	roleARN := aws.ToString(cr.Role.Arn)
	if _, err := kc.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "uploader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	for _, name := range []string{"uploader-1", "uploader-2"} {
		p, err := kc.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{
			NodeName: f.s.Node, ServiceAccountName: "uploader",
			Containers: []corev1.Container{{Name: "app", Image: "public.ecr.aws/docker/library/busybox:1.36", Env: []corev1.EnvVar{
				{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://169.254.170.23/v1/credentials"},
				{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"}}}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[name] = string(p.UID)
	}
	pod := ns + "/uploader-1"
	eks := &fakeEKS{cluster: f.s.Env.Cluster, ns: ns, sa: "uploader", roleARN: roleARN}
	srv := httptest.NewServer(eks)
	t.Cleanup(srv.Close)
	env := *f.s.Env
	env.AWS = routeEKS(f.s.Lab.AWS, srv.URL)
	h := naming.ShortHash(env.Incident, 10)
	podPolicy, podSid := "eksir-deny-pod-"+h+"-"+naming.ShortHash(pod, 8), "EksirDenyPod"+h+naming.ShortHash(pod, 8)
	older, olderSid := policyName(env.Incident)
	before := f.world(t)

	call := action.Call{Step: "t", Params: map[string]any{"pod": pod}}
	plan, err := a.Plan(ctx, &env, call)
	if err != nil {
		t.Fatal(err)
	}
	sameWorld(t, "after Plan", f.world(t), before)
	if len(plan.Changes) != 1 || !strings.Contains(plan.Changes[0].Detail, uids["uploader-1"]) {
		t.Fatalf("plan: %+v", plan)
	}
	eks.mu.Lock()
	calls := strings.Join(eks.calls, "\n")
	eks.mu.Unlock()
	if !strings.Contains(calls, "/pod-identity-associations/"+fakeAssociationID) {
		t.Fatalf("the role did not come from EKS: calls %v", calls)
	}
	res, err := a.Run(ctx, &env, call)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["role"] != roleARN || res.Outputs["scope"] != isolate.ScopePod || res.Outputs["association"] != fakeAssociationID {
		t.Errorf("outputs: %v", res.Outputs)
	}
	got := f.rolePolicies(t, role)
	// Only uploader-1's sessions: uploader-2's UID is not in the document.
	if len(got) != 1 || !awsiam.Equal(got[podPolicy], awsiam.DenyPodSessions(podSid, uids["uploader-1"])) || strings.Contains(got[podPolicy].String(), uids["uploader-2"]) {
		t.Fatalf("policies of %s: %v", role, docs(got))
	}
	res2, err := a.Run(ctx, &env, call)
	if err != nil || string(res2.Undo) != string(res.Undo) || len(f.rolePolicies(t, role)) != 1 {
		t.Fatalf("second Run: %s vs %s, %v", res2.Undo, res.Undo, err)
	}

	// Role-wide, with the EKS API unavailable (moto has none): the role
	// parameter is used.
	noEKS := *f.s.Env
	wide := action.Call{Step: "t", Params: map[string]any{"pod": pod, "role-wide": true, "role": roleARN}}
	resWide, err := a.Run(ctx, &noEKS, wide)
	if err != nil {
		t.Fatal(err)
	}
	if resWide.Outputs["scope"] != isolate.ScopeRole || !strings.Contains(strings.Join(resWide.Warnings, "\n"), "role parameter") {
		t.Errorf("role-wide result: %+v", resWide)
	}
	got = f.rolePolicies(t, role)
	if len(got) != 2 || !awsiam.Equal(got[older], awsiam.DenyOlderSessions(olderSid, revokeTime)) {
		t.Fatalf("policies of %s: %v", role, docs(got))
	}

	if _, err := a.(action.Reverser).Undo(ctx, &env, call, res.Undo); err != nil {
		t.Fatal(err)
	}
	// Without a record, from the parameters.
	rs, err := a.(action.Reverser).Undo(ctx, &noEKS, wide, nil)
	if err != nil || rs[0].Outcome != action.OutcomeRestored {
		t.Fatalf("Undo without record: %+v, %v", rs, err)
	}
	sameWorld(t, "after Undo", f.world(t), before)
	rs, err = a.(action.Reverser).Undo(ctx, &env, call, nil)
	if err != nil {
		t.Fatal(err)
	}
	allClean(t, rs)

	// Bad input, nothing changed.
	_, err = a.Plan(ctx, &noEKS, call)
	wantBadInput(t, err, "role")
	_, err = a.Run(ctx, &env, action.Call{Params: map[string]any{"pod": ns + "/" + f.s.Pod}})
	wantBadInput(t, err, "pod")
	eks.mu.Lock()
	eks.disableSessionTags = true
	eks.mu.Unlock()
	_, err = a.Run(ctx, &env, call)
	wantBadInput(t, err, "role-wide")
	_, err = a.Run(ctx, &noEKS, action.Call{Params: map[string]any{"pod": pod, "role": strings.Replace(roleARN, ":"+f.s.Lab.Account+":", ":999999999999:", 1)}})
	wantBadInput(t, err, "role")
	sameWorld(t, "after bad input", f.world(t), before)
}
