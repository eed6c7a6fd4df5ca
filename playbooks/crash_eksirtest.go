//go:build eksirtest

package playbooks

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/kube"
)

// Test builds only. EKSIR_TEST_CRASH_AT=STEP:before|after|inside makes the
// process kill itself with SIGKILL at that point of that step:
//
//	before  after the step's intent is journaled, before the action runs
//	after   after the action returned, before its result is journaled
//	inside  right after the action's first mutating Kubernetes request
//	        (through every client internal/kube builds) or first
//	        successful mutating AWS operation (through every
//	        configuration internal/aws loads; see awsReadOnly)
//
// EKSIR_TEST_SLOW_AT=STEP:DURATION makes that step wait DURATION after its
// intent is journaled, before its action runs, or until the step's context
// ends (its timeout, or the second interrupt): a slow step for the Ctrl-C
// tests. The action then runs on that context.
const (
	crashEnv = "EKSIR_TEST_CRASH_AT"
	slowEnv  = "EKSIR_TEST_SLOW_AT"
)

// crashStep is the step whose action is running, for the inside hook.
var crashStep atomic.Value

func init() {
	spec := os.Getenv(crashEnv)
	slowStep, slowFor := "", time.Duration(0)
	if s := os.Getenv(slowEnv); s != "" {
		step, d, _ := strings.Cut(s, ":")
		var err error
		if slowFor, err = time.ParseDuration(d); err != nil {
			panic(slowEnv + ": " + err.Error())
		}
		slowStep = step
	}
	if spec == "" && slowStep == "" {
		return
	}
	crashHook = func(ctx context.Context, step, where string) {
		if spec != "" && spec == step+":"+where {
			die()
		}
		if where == "before" {
			crashStep.Store(step)
		} else {
			crashStep.Store("")
		}
		if step == slowStep && where == "before" {
			t := time.NewTimer(slowFor)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
	}
	if step, ok := strings.CutSuffix(spec, ":inside"); ok {
		kube.SetTestTransport(func(rt http.RoundTripper) http.RoundTripper { return crashRT{rt, step} })
		eaws.SetTestHook(func(_ context.Context, service, op string) {
			if cur, _ := crashStep.Load().(string); cur == step && !awsReadOnly(service, op) {
				die()
			}
		})
	}
}

func die() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not instant; never return into the engine
}

// crashRT dies after the first successful non-GET request of its step.
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

// awsReadOnlyPrefixes start the names of the AWS operations that change
// nothing in the account. Generate* (IAM credential and access reports) and
// the STS service (AssumeRole and friends hand out credentials; the
// account's resources are untouched) count as reading too: a crash after
// them proves nothing about resuming a change. Every other operation
// (Create, Put, Modify, Associate, Disassociate, Attach, Detach, Delete,
// Update, Set, Revoke, Authorize, Stop, Start, Tag...) mutates.
var awsReadOnlyPrefixes = []string{"Describe", "Get", "List", "Head", "Lookup", "Search", "Simulate", "Check", "Generate", "Filter"}

func awsReadOnly(service, op string) bool {
	if service == "STS" {
		return true
	}
	return slices.ContainsFunc(awsReadOnlyPrefixes, func(p string) bool { return strings.HasPrefix(op, p) })
}
