package playbooks

import (
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
)

// Test hook. EKSIR_TEST_CRASH_AT=STEP:before|after|inside makes the process
// kill itself with SIGKILL at that point of that step, so the crash tests
// can prove resume is exactly-once:
//
//	before  after the step's intent is journaled, before the action runs
//	after   after the action returned, before its result is journaled
//	inside  right after the action's first mutating Kubernetes request
//	        (CrashTransport must wrap the REST client's transport)
//
// The hook does nothing unless the variable is set; package main passes it.
const CrashEnv = "EKSIR_TEST_CRASH_AT"

var crashStep atomic.Value // string: the step whose action is running

func setCrashStep(id string) { crashStep.Store(id) }

func crashPoint(spec, step, where string) {
	if spec != "" && spec == step+":"+where {
		die()
	}
}

func die() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not instant; never return into the engine
}

// CrashTransport wraps a transport for the "inside" hook: after the first
// non-GET request of the named step completes, the process dies.
func CrashTransport(spec string) func(http.RoundTripper) http.RoundTripper {
	step, ok := strings.CutSuffix(spec, ":inside")
	return func(rt http.RoundTripper) http.RoundTripper {
		if !ok {
			return rt
		}
		return crashRT{rt, step}
	}
}

type crashRT struct {
	next http.RoundTripper
	step string
}

func (c crashRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if cur, _ := crashStep.Load().(string); cur == c.step && req.Method != http.MethodGet && err == nil && resp.StatusCode < 300 {
		die()
	}
	return resp, err
}
