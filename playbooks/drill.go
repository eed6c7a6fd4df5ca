package playbooks

import (
	"context"
	"errors"
	"fmt"

	"github.com/eksir/eksir/action"
)

// ErrNotReleased is returned by Drill when a step the drill contained could
// not be released: the drill target is not as it was found.
var ErrNotReleased = errors.New("drill: not everything was released")

// Drill runs a game day: the run, journaled as a drill and scored; then
// seal, which must seal the case's evidence (the time to sealed evidence is
// measured up to its return); then a release of everything the run
// contained, credentials included, since a game day must leave nothing
// behind on its drill target. The release asks for approval as any release
// does, unless o approves it (Yes, Approved).
//
// The summary is the run's, with the drill score. The error is the run's,
// the seal's, the release's, or wraps ErrNotReleased naming the first step
// that was not released; seal and release are skipped when the run
// returned an error.
func Drill(ctx context.Context, c *Checked, in Inputs, reg *action.Registry, o Options, seal func(context.Context) error) (*Summary, error) {
	o.defaults()
	o.Drill = true
	sum, err := Run(ctx, c, in, o)
	if err != nil {
		return sum, err
	}
	if err := seal(ctx); err != nil {
		return sum, fmt.Errorf("drill: seal: %w", err)
	}
	if sum.Drill != nil && !sum.Started.IsZero() {
		sum.Drill.TimeToSealedEvidence = o.Now().Sub(sum.Started)
	}
	o.RestoreCredentials = true
	rel, err := Release(ctx, reg, o)
	if err != nil {
		return sum, fmt.Errorf("drill: release: %w", err)
	}
	for _, s := range rel.Steps {
		if s.Status != StatusReleased {
			return sum, fmt.Errorf("%w: step %s is %s %s", ErrNotReleased, s.ID, s.Status, s.Error)
		}
	}
	return sum, nil
}
