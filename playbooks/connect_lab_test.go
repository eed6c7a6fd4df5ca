package playbooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/isolate"
	"github.com/eksir/eksir/playbooks"
)

// TestKubeTargets resolves pods and nodes against the lab's API server: a
// pod by name alone comes back as namespace/name, a name in two namespaces
// is ambiguous, and a missing pod or node is a TargetError.
func TestKubeTargets(t *testing.T) {
	s := labtest.SeedScenario(t, 1, 1, func(*action.Registry) {})
	ctx := t.Context()
	k := s.Lab.Kube.Typed
	other := s.Lab.Namespace
	twin := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: s.Pod, Namespace: other},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	r := playbooks.KubeTargets(k)
	got, err := r.Resolve(ctx, action.Pod, s.Pod)
	if err != nil || got != s.NS+"/"+s.Pod {
		t.Fatalf("pod by name: %q %v", got, err)
	}
	if _, err := k.CoreV1().Pods(other).Create(ctx, twin, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var te *playbooks.TargetError
	if _, err := r.Resolve(ctx, action.Pod, s.Pod); !errors.As(err, &te) || !strings.Contains(te.Msg, "ambiguous") {
		t.Fatalf("pod name in two namespaces: %v", err)
	}
	if got, err := r.Resolve(ctx, action.Pod, other+"/"+s.Pod); err != nil || got != other+"/"+s.Pod {
		t.Fatalf("pod by namespace/name: %q %v", got, err)
	}
	for _, tc := range []struct {
		typ action.ParamType
		ref string
	}{{action.Pod, s.NS + "/nope"}, {action.Pod, "nope-" + s.Pod}, {action.Node, "nope-" + s.Node}} {
		if _, err := r.Resolve(ctx, tc.typ, tc.ref); !errors.As(err, &te) {
			t.Errorf("%s %s: %v, want a TargetError", tc.typ, tc.ref, err)
		}
	}
	if got, err := r.Resolve(ctx, action.Node, s.Node); err != nil || got != s.Node {
		t.Fatalf("node: %q %v", got, err)
	}
}

// labConnector hands out the scenario's Kubernetes clients and has no AWS
// configuration at all, as on a responder's laptop during a cluster-only
// incident.
type labConnector struct {
	env *action.Env
	aws int
}

func (c *labConnector) Kubernetes(context.Context) (kubernetes.Interface, *rest.Config, error) {
	return c.env.Kube, c.env.RESTConfig, nil
}

func (c *labConnector) AWS(context.Context) (aws.Config, error) {
	c.aws++
	return aws.Config{}, errors.New("no AWS region configured")
}

// awsStub stands for the AWS actions to come: registered, needing AWS,
// never used by pod-compromise.
type awsStub struct{}

func (awsStub) Spec() action.Spec {
	return action.Spec{Name: "test.aws-stub", Doc: "stub", Kind: action.Contain, Needs: []action.Cloud{action.AWS},
		Permissions: action.Permissions{IAM: []action.IAMPermission{{Actions: []string{"ec2:ModifyInstanceAttribute"}}}}}
}
func (awsStub) Plan(context.Context, *action.Env, action.Call) (action.Plan, error) {
	return action.Plan{}, nil
}
func (awsStub) Run(context.Context, *action.Env, action.Call) (action.Result, error) {
	return action.Result{}, errors.New("the stub never runs")
}

// TestLabReleaseWithoutAWS runs pod-compromise on the lab with an AWS
// action registered, then resumes and releases the incident with no AWS
// configuration: the engine connects only to what the journaled
// playbook's actions declare, so neither asks for AWS.
func TestLabReleaseWithoutAWS(t *testing.T) {
	s := labtest.SeedScenario(t, 1, 2, func(r *action.Registry) {
		isolate.Register(r)
		collect.Register(r)
		r.Register(awsStub{})
	})
	s.Lab.RunEngineEverywhere(t, labtest.EngineAWSNode)
	ctx := t.Context()
	// pod-compromise without its AWS credential steps: a playbook whose
	// actions are all Kubernetes ones.
	src, _ := playbooks.Builtin("pod-compromise")
	text := string(src)
	cut := func(text, from, to string) string {
		i, j := strings.Index(text, from), strings.Index(text, to)
		if i < 0 || j < i {
			t.Fatalf("pod-compromise changed shape: find its AWS steps again (%q .. %q)", from, to)
		}
		return text[:i] + text[j:]
	}
	text = cut(text, "  # The pod's EBS volumes", "  - id: isolate")
	text = cut(text, "  # The pod's AWS credentials.", "outputs:")
	p, err := playbooks.Parse("pod-compromise-k8s.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := playbooks.Validate(p, s.Registry)
	if err != nil {
		t.Fatal(err)
	}
	in, err := playbooks.Resolve(ctx, c, map[string]string{"pod": s.NS + "/" + s.Pod},
		map[action.Cloud]playbooks.TargetResolver{action.Kubernetes: playbooks.KubeTargets(s.Env.Kube)})
	if err != nil {
		t.Fatal(err)
	}
	conn := &labConnector{env: s.Env}
	// Clients are left to the connector, as the CLI leaves them.
	bare := func() *action.Env {
		e := *s.Env
		e.Kube, e.RESTConfig = nil, nil
		return &e
	}
	j := playbooks.CaseJournal(s.Case)
	sum, err := playbooks.Run(ctx, c, in, playbooks.Options{Env: bare(), Connector: conn, Journal: j, Yes: true})
	if err != nil || sum.Partial() {
		t.Fatalf("run: %v %+v", err, sum)
	}
	if _, err := playbooks.Resume(ctx, s.Registry, playbooks.Options{Env: bare(), Connector: conn, Journal: j, Yes: true}); err != nil {
		t.Fatalf("resume without AWS configuration: %v", err)
	}
	rel, err := playbooks.Release(ctx, s.Registry, playbooks.Options{Env: bare(), Connector: conn, Journal: j, Yes: true, RestoreCredentials: true})
	if err != nil {
		t.Fatalf("release without AWS configuration: %v", err)
	}
	released := 0
	for _, st := range rel.Steps {
		if st.Status != playbooks.StatusReleased {
			t.Errorf("step %s: %s %s", st.ID, st.Status, st.Error)
		}
		released++
	}
	if released == 0 || conn.aws != 0 {
		t.Fatalf("released %d steps, asked for AWS %d times", released, conn.aws)
	}
	// Read back from the API server: the quarantine label is gone.
	pod, err := s.Lab.Kube.Typed.CoreV1().Pods(s.NS).Get(ctx, s.Pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range pod.Labels {
		if strings.Contains(k, "eksir") {
			b, _ := json.Marshal(pod.Labels)
			t.Fatalf("label %s still on the pod after release: %s", k, b)
		}
	}
}
