// Package labtest gives integration tests a real lab: one lab per test
// binary, started on first use and stopped when the binary ends, and a fresh
// namespace prefix and moto account for each test.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }
//
// and in a test:
//
//	env := labtest.Start(t)
//
// When a lab binary or moto is missing, Start skips the test with the command
// that provides it, or fails it when CI=true.
package labtest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/kube"
	"github.com/eksir/eksir/lab"
)

// Env is one test's slice of the shared lab.
type Env struct {
	// State is the shared lab (kubeconfig, endpoints, processes).
	State *lab.State
	// Prefix is unique to the test; pass it to lab.SeedOptions.Prefix so
	// the test's namespaces and nodes do not collide with other tests'.
	Prefix string
	// Namespace is a fresh, empty namespace for the test.
	Namespace string
	// Account is a fresh moto account ID; AWS carries it on every request.
	Account string
	// Kube are clients for the lab's API server.
	Kube *kube.Clients
	// AWS is configured for moto and the test's account.
	AWS aws.Config
}

var (
	once     sync.Once
	shared   *lab.State
	startErr error
	dir      string
	counter  atomic.Int64
	// underMain is set by Main: only Main stops the lab, so a lab started
	// in a test binary without it would outlive the tests.
	underMain atomic.Bool
)

// Main runs the tests and stops the lab if one was started. It also stops
// the lab on SIGINT/SIGTERM so an interrupted `go test` leaves no processes.
func Main(m *testing.M) int {
	lab.RunPodProcessIfAsked() // a PodProcess is a copy of this test binary
	underMain.Store(true)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sig; ok {
			teardown()
			removeBuiltBins()
			os.Exit(130)
		}
	}()
	cleanup, err := buildCollector()
	if err != nil {
		fmt.Fprintln(os.Stderr, "labtest:", err)
		return 1
	}
	defer cleanup()
	defer removeBuiltBins()
	code := m.Run()
	signal.Stop(sig)
	close(sig)
	if err := teardown(); err != nil {
		fmt.Fprintln(os.Stderr, "labtest: teardown:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// collectorDirEnv is collect.CollectorDirEnv: where eksir finds its static
// collector binaries.
const collectorDirEnv = "EKSIR_COLLECTOR_DIR"

// buildCollector builds the static collector for this machine's
// architecture into a temporary folder named by EKSIR_COLLECTOR_DIR, unless
// the variable already names one (make test points it at bin/): the
// collect actions deliver it into collector pods, and kwok runs it here.
func buildCollector() (func(), error) {
	if os.Getenv(collectorDirEnv) != "" {
		return func() {}, nil
	}
	d, err := os.MkdirTemp("", "eksir-collector-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(d, "eksir-collector-linux-"+runtime.GOARCH), "github.com/eksir/eksir/cmd/eksir-collector")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(d)
		return nil, fmt.Errorf("build the static collector: %v\n%s", err, out)
	}
	os.Setenv(collectorDirEnv, d)
	return func() { os.RemoveAll(d) }, nil
}

var teardownMu sync.Mutex

func teardown() error {
	teardownMu.Lock()
	defer teardownMu.Unlock()
	if shared == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := lab.Down(ctx, shared.Dir)
	shared = nil
	if err == nil && os.Getenv("EKSIR_LAB_KEEP") == "" {
		err = os.RemoveAll(dir)
	}
	return err
}

// Unavailable reports why a lab cannot run here (missing binary or moto),
// with the command that fixes it, or "" when it can.
func Unavailable() string {
	if _, err := lab.FindBinaries(); err != nil {
		var me *lab.MissingError
		if errors.As(err, &me) {
			return fmt.Sprintf("%v; %s", me, me.Hint())
		}
		return err.Error()
	}
	return ""
}

// SkipOrFail skips the test with msg, or fails it when CI=true: in CI a lab
// component or tool that is missing is a broken pipeline, not a reason to pass.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required test component missing in CI: %s", msg)
	}
	t.Skipf("skipped, component missing: %s", msg)
}

// Start returns the test's Env, starting the binary's lab on first use.
func Start(t testing.TB) *Env {
	t.Helper()
	if !underMain.Load() {
		t.Fatal("labtest.Start in a test binary whose TestMain is not labtest.Main: nothing would stop the lab when the tests end; add func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }")
	}
	if msg := Unavailable(); msg != "" {
		SkipOrFail(t, msg)
	}
	once.Do(func() {
		dir, startErr = os.MkdirTemp("", "eksir-lab-")
		if startErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared, startErr = lab.Up(ctx, lab.Options{Dir: dir})
	})
	if startErr != nil {
		t.Fatalf("start lab: %v", startErr)
	}
	n := counter.Add(1)
	env := &Env{State: shared, Prefix: prefixFor(t.Name(), n), Account: fmt.Sprintf("%012d", 100000000000+n)}
	env.Namespace = strings.TrimSuffix(env.Prefix, "-")
	c, err := kube.New(kube.Options{Kubeconfig: shared.Kubeconfig, QPS: 200, Burst: 400})
	if err != nil {
		t.Fatalf("kube clients: %v", err)
	}
	env.Kube = c
	ctx := t.Context()
	if _, err := c.Typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: env.Namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create test namespace: %v", err)
	}
	env.AWS, err = eaws.Load(ctx, eaws.Options{Region: shared.Region, Endpoint: shared.AWSEndpoint,
		StaticKey: labKey, StaticSecret: labSecret, Headers: map[string]string{"x-moto-account-id": env.Account}})
	if err != nil {
		t.Fatalf("AWS config: %v", err)
	}
	return env
}

// The lab's dummy credentials: moto accepts any.
const (
	labKey    = "AKIAEKSIRLABTEST0000"
	labSecret = "test"
)

// prefixFor derives a short DNS-label prefix from the test name, unique per
// Start call.
func prefixFor(name string, n int64) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("t%d-%06x-", n, h.Sum32()&0xffffff)
}
