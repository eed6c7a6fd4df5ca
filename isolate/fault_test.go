package isolate_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/internal/naming"
)

// hookedKube wraps a real client: before (or after) the n-th pod Update it
// runs a hook. It injects faults into a real API server, not a fake.
type hookedKube struct {
	kubernetes.Interface
	updates       *atomic.Int32
	before, after func(n int32)
}

func (k hookedKube) CoreV1() corev1client.CoreV1Interface {
	return hookedCore{k.Interface.CoreV1(), k}
}

type hookedCore struct {
	corev1client.CoreV1Interface
	k hookedKube
}

func (c hookedCore) Pods(ns string) corev1client.PodInterface {
	return hookedPods{c.CoreV1Interface.Pods(ns), c.k}
}

type hookedPods struct {
	corev1client.PodInterface
	k hookedKube
}

func (p hookedPods) Update(ctx context.Context, pod *corev1.Pod, opts metav1.UpdateOptions) (*corev1.Pod, error) {
	n := p.k.updates.Add(1)
	if p.k.before != nil {
		p.k.before(n)
	}
	out, err := p.PodInterface.Update(ctx, pod, opts)
	if err == nil && p.k.after != nil {
		p.k.after(n)
	}
	return out, err
}

// A responder annotates the pod between eksir's Get and Update: the API
// server answers 409 and the step retries on the fresh object, keeping the
// other writer's change.
func TestPodNetworkRetriesConflict(t *testing.T) {
	f := setup(t)
	ctx, admin := t.Context(), f.lab.Kube.Typed
	f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{})
	var updates atomic.Int32
	env := *f.env
	env.Kube = hookedKube{Interface: f.env.Kube, updates: &updates, before: func(n int32) {
		if n != 1 {
			return
		}
		p, err := admin.CoreV1().Pods(f.ns).Get(ctx, f.suspect, metav1.GetOptions{})
		if err != nil {
			t.Errorf("bump get: %v", err)
			return
		}
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations["responder/note"] = "concurrent"
		if _, err := admin.CoreV1().Pods(f.ns).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Errorf("bump update: %v", err)
		}
	}}
	a := f.action(t, "isolate.pod-network")
	if _, err := a.Run(ctx, &env, f.call(map[string]any{"pod": f.ns + "/" + f.suspect})); err != nil {
		t.Fatalf("run with a conflict: %v", err)
	}
	if got := updates.Load(); got != 2 {
		t.Errorf("pod updates: %d, want 2 (one 409, one retry)", got)
	}
	p, _ := admin.CoreV1().Pods(f.ns).Get(ctx, f.suspect, metav1.GetOptions{})
	if p.Annotations["responder/note"] != "concurrent" || p.Labels["eksir.io/quarantine-"+naming.ShortHash(env.Incident, 10)] == "" {
		t.Errorf("after retry: labels %v annotations %v", p.Labels, p.Annotations)
	}
}

// The API server stops answering right after the pod is labelled: the step
// fails with a wrapped, actionable error; once it answers again a second run
// completes from the cluster's state (the original labels come from the
// pod's annotation, not from its now-quarantined labels) and the release
// restores the originals.
func TestPodNetworkAPIServerPauseMidStep(t *testing.T) {
	f := setup(t)
	f.engine(t, labtest.EngineAWSNode, f.node, labtest.EngineOptions{})
	le := f.lab
	ctx, admin := t.Context(), f.lab.Kube.Typed
	before := f.world(t)
	var resume func()
	var updates atomic.Int32
	env := *f.env
	env.Kube = hookedKube{Interface: f.env.Kube, updates: &updates, after: func(n int32) {
		if n == 1 {
			resume = le.PauseAPIServer(t)
		}
	}}
	a := f.action(t, "isolate.pod-network")
	call := f.call(map[string]any{"pod": f.ns + "/" + f.suspect})
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := a.Run(rctx, &env, call)
	cancel()
	if resume == nil {
		t.Fatal("the API server was never paused")
	}
	resume()
	if err == nil {
		t.Fatal("run succeeded while the API server was paused")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not wrap the deadline: %v", err)
	}
	t.Logf("run during pause: %v", err)
	// Wait until the API server answers again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := admin.CoreV1().Namespaces().Get(ctx, f.ns, metav1.GetOptions{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("API server did not come back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	res, err := a.Run(ctx, f.env, call)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	after := f.world(t)
	suspect, _, frontend := f.roles(t, after)
	if allowed(after.policies, frontend, suspect, after.nsLabels) {
		t.Error("suspect still reachable after the resumed run")
	}
	if _, err := a.(action.Reverser).Undo(ctx, f.env, call, res.Undo); err != nil {
		t.Fatalf("undo: %v", err)
	}
	diff(t, "pods and policies after undo", podsAndPolicies(before), podsAndPolicies(f.world(t)))
}
