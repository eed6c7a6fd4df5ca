package labtest

import (
	"context"
	"errors"
	"testing"

	"github.com/eksir/eksir/lab"
)

// StartPodProcess starts a lab.PodProcess called name for the pod with the
// given UID, connected from local to remote ("203.0.113.50:3333"), and stops
// it when the test ends. Without root (namespaces, cgroups) the test is
// skipped, or fails in CI.
func StartPodProcess(t testing.TB, name, podUID, local, remote string) *lab.PodProcess {
	t.Helper()
	if err := lab.PodProcessSupported(); err != nil {
		SkipOrFail(t, err.Error()+" (run the tests as root, as CI does)")
	}
	p, err := lab.StartPodProcess(t.TempDir(), name, podUID, local, remote)
	if errors.Is(err, lab.ErrNoPodProcess) {
		SkipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Errorf("stop the pod process: %v", err)
		}
	})
	return p
}
