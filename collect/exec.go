package collect

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/naming"
)

// streaming returns a client and config without the per-request timeout:
// a log or a memory image streams for as long as it takes, bounded by ctx.
func streaming(env *action.Env) (kubernetes.Interface, *rest.Config, error) {
	if env.RESTConfig == nil {
		return env.Kube, nil, nil
	}
	cfg := rest.CopyConfig(env.RESTConfig)
	cfg.Timeout = 0
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("streaming client: %w", err)
	}
	return kc, cfg, nil
}

// Executor runs a command in a container, feeding it stdin (nil: none) and
// streaming its output; the collector pods' commands go through it. stderr
// (nil: discarded) receives the command's diagnostics, never evidence.
type Executor interface {
	Exec(ctx context.Context, ns, pod, container string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// execRun is what the exec-based collectors (volatile, checkpoint,
// node-files) start from: the selected pods, an exec client over the
// streaming connection, and the store their items go to.
func execRun(ctx context.Context, env *action.Env, call action.Call) ([]corev1.Pod, remoteExec, *store, error) {
	pods, err := Select(ctx, env.Kube, TargetFrom(call))
	if err != nil {
		return nil, remoteExec{}, nil, err
	}
	kc, cfg, err := streaming(env)
	if err != nil {
		return nil, remoteExec{}, nil, err
	}
	return pods, remoteExec{kc: kc, cfg: cfg}, newStore(env), nil
}

// remoteExec is the client-go executor: WebSocket (v5) first, SPDY when the
// upgrade fails (older API servers, proxies).
type remoteExec struct {
	kc  kubernetes.Interface
	cfg *rest.Config
}

func (r remoteExec) Exec(ctx context.Context, ns, pod, container string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
	req := r.kc.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdin: stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(r.cfg, "GET", req.URL().String())
	if err != nil {
		return fmt.Errorf("websocket executor: %w", err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(r.cfg, "POST", req.URL())
	if err != nil {
		return fmt.Errorf("spdy executor: %w", err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	// stderr is kept (bounded) for the reason of a failure, never stored.
	diag := &limitedBuffer{max: 4096}
	var errOut io.Writer = diag
	if stderr != nil {
		errOut = io.MultiWriter(diag, stderr)
	}
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: errOut}); err != nil {
		if msg := strings.TrimSpace(diag.String()); msg != "" {
			return fmt.Errorf("exec %s in %s/%s: %w (stderr: %s)", cmd[0], ns, pod, err, msg)
		}
		return fmt.Errorf("exec %s in %s/%s: %w", cmd[0], ns, pod, err)
	}
	return nil
}

type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// collectorPod is the trusted node pod: hostPID and hostNetwork to see the
// node's processes and sockets, the host filesystem read-only at /host,
// the kubelet's checkpoint folder read-write at /checkpoints (a checkpoint
// archive holds the container's memory and is removed once in the case),
// pinned to the node and tolerating every taint (the quarantine taint
// included). Its working directory is /, so the collector's relative roots
// ("host", "checkpoints") name those mounts. Its name derives from the
// incident, step and node, so a resumed run finds it, and two steps of one
// incident on one node (volatile state and node files, run in parallel)
// never share a pod that the first to finish deletes.
func collectorPod(env *action.Env, call action.Call, node string) *corev1.Pod {
	ns := call.String("collector-namespace")
	t := true
	name := "eksir-collector-" + naming.ShortHash(env.Incident+"/"+call.Step+"/"+node, 12)
	deadline := int64(2 * 3600)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			"app.kubernetes.io/managed-by": "eksir", "app.kubernetes.io/name": "eksir-collector"},
			Annotations: map[string]string{naming.Domain + "/incident": env.Incident, naming.Domain + "/node": node}},
		Spec: corev1.PodSpec{
			NodeName: node, HostPID: true, HostNetwork: true, RestartPolicy: corev1.RestartPolicyNever,
			ActiveDeadlineSeconds: &deadline, AutomountServiceAccountToken: new(bool),
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{Name: "collector", Image: call.String("collector-image"), Command: idleCommand(call), WorkingDir: "/",
				SecurityContext: &corev1.SecurityContext{Privileged: &t},
				VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/" + hostRoot, ReadOnly: true},
					{Name: "checkpoints", MountPath: "/" + checkpointRoot}}}},
			Volumes: []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}},
				{Name: "checkpoints", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: kubeletCheckpoints, Type: ptr(corev1.HostPathDirectoryOrCreate)}}}},
		},
	}
}

// The collector's roots, relative to the collector pod's working
// directory (/): on a node they are the pod's mounts; on the lab, whose
// exec runs in a per-node folder, they are that folder's copies of a
// node's layout.
const (
	hostRoot       = "host"
	checkpointRoot = "checkpoints"
	// kubeletCheckpoints is where the kubelet writes checkpoint archives.
	kubeletCheckpoints = "/var/lib/kubelet/checkpoints"
)

func ptr[T any](v T) *T { return &v }

// Collector delivery: over exec stdin into an image that has sh (the
// default), or baked into an image built with `make collector-image`.
const (
	DeliveryStdin = "stdin"
	DeliveryImage = "image"
	// bakedCollector is where the collector image holds the binary.
	bakedCollector = "/eksir-collector"
)

// idleCommand keeps the collector container running until the step ends.
func idleCommand(call action.Call) []string {
	if call.String("collector-delivery") == DeliveryImage {
		return []string{bakedCollector, "idle"}
	}
	return []string{"sleep", "7200"}
}

// ensureCollector creates (or finds) the node's collector pod and waits
// until it runs.
func ensureCollector(ctx context.Context, kc kubernetes.Interface, want *corev1.Pod, timeout time.Duration) error {
	pods := kc.CoreV1().Pods(want.Namespace)
	// A collector of an earlier run (a resume) may still be terminating:
	// wait until it is gone, create a new one and wait until it runs.
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		cur, err := pods.Get(ctx, want.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if _, err := pods.Create(ctx, want, metav1.CreateOptions{FieldManager: "eksir"}); err != nil && !apierrors.IsAlreadyExists(err) {
				return false, fmt.Errorf("create collector pod: %w", err)
			}
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if cur.DeletionTimestamp != nil {
			return false, nil
		}
		if cur.Status.Phase == corev1.PodFailed || cur.Status.Phase == corev1.PodSucceeded {
			return false, fmt.Errorf("pod ended (%s)", cur.Status.Phase)
		}
		return cur.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		return fmt.Errorf("start collector pod %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// waitRunning polls until the pod (or its ephemeral container, when named)
// runs.
func waitRunning(ctx context.Context, kc kubernetes.Interface, ns, name, ephemeral string, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		p, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if ephemeral == "" {
			if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
				return false, fmt.Errorf("pod ended (%s)", p.Status.Phase)
			}
			return p.Status.Phase == corev1.PodRunning, nil
		}
		for _, st := range p.Status.EphemeralContainerStatuses {
			if st.Name == ephemeral && st.State.Running != nil {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s/%s %s to run: %w", ns, name, ephemeral, err)
	}
	return nil
}

func deleteCollector(ctx context.Context, kc kubernetes.Interface, p *corev1.Pod) error {
	err := kc.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete collector pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

func collectorParams() []action.Param {
	return []action.Param{
		{Name: "collector-image", Type: action.String, Default: DefaultCollectorImage,
			Doc: "the collector pod's image, pinned by digest; with delivery stdin it needs only sh, head, chmod, mv and sleep (mirror it into ECR for private clusters)"},
		{Name: "collector-delivery", Type: action.String, Default: DeliveryStdin, Enum: []string{DeliveryStdin, DeliveryImage},
			Doc: "stdin: eksir writes its static collector into the pod over exec; image: the image (make collector-image) holds it at /eksir-collector"},
		{Name: "collector-namespace", Type: action.Namespace, Default: "kube-system", Doc: "where node collector pods run"},
		{Name: "keep-collector", Type: action.Bool, Default: false, Doc: "leave the collector pod running after the step"},
		{Name: "start-timeout", Type: action.Duration, Default: 2 * time.Minute, Doc: "how long to wait for the collector to run"},
	}
}

// DefaultCollectorImage is the collector pod's image when the playbook names
// none: busybox, which has the shell the stdin delivery needs and nothing
// else, pinned by the digest of its multi-architecture index.
const DefaultCollectorImage = "public.ecr.aws/docker/library/busybox:1.36@sha256:73aaf090f3d85aa34ee199857f03fa3a95c8ede2ffd4cc2cdb5b94e566b11662"

var collectorRules = []action.KubeRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "create", "delete"}},
	// WebSocket exec is authorised as get, SPDY exec as create.
	{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"get", "create"}},
	{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
	action.AccessReviewRule,
}

// collectorChecks are the permission checks of a plan using collector pods.
var collectorChecks = []authzv1.ResourceAttributes{
	{Verb: "create", Resource: "pods"}, {Verb: "create", Resource: "pods", Subresource: "exec"}, {Verb: "get", Resource: "pods", Subresource: "exec"}}
