package playbooks

import "context"

// crashHook is called at each step's boundaries: "before" after the
// step's intent is journaled, before the action runs; "after" when the
// action returned, before its result is journaled. It is nil unless the
// binary was built with -tags eksirtest (crash_eksirtest.go), so that the
// crash tests can kill a run at those points and prove resume exactly-once,
// while the eksir a responder runs has no way to kill itself. ctx is the
// step's: a hook that slows a step down ends when it does.
var crashHook func(ctx context.Context, step, where string)

func crashPoint(ctx context.Context, step, where string) {
	if crashHook != nil {
		crashHook(ctx, step, where)
	}
}
