package playbooks

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eksir/eksir/action"
)

// DrillLabel marks a drill target: a pod carrying it with the value
// "true", or any pod of a namespace carrying it, may be contained by a
// drill. Nodes carry it themselves. Nothing else is a drill target.
const DrillLabel = "eksir.io/drill"

// CheckDrill refuses a drill that could hurt a real workload: the playbook
// must say drill: true, and every target input must be a drill target
// (DrillLabel on the pod or its namespace, or on the node). The error is
// ErrInvalid, with a hint; nothing is changed.
func CheckDrill(ctx context.Context, c *Checked, in Inputs, k kubernetes.Interface) error {
	if !c.Drill {
		return &Error{File: c.file, Msg: fmt.Sprintf("playbook %s is not a drill playbook: --drill runs only playbooks marked drill: true", c.Metadata.Name),
			HintText: "for a game day run game-day (or a playbook of yours with drill: true) with --drill; for a real incident run " + c.Metadata.Name + " without --drill"}
	}
	all := []Inputs{in}
	if len(c.targets) > 0 {
		all = c.targets // a run over many targets: each of them
	}
	var refused []string
	for _, in := range all {
		r, err := drillRefusals(ctx, c, in, k)
		if err != nil {
			return err
		}
		refused = append(refused, r...)
	}
	if len(refused) > 0 {
		return &Error{File: c.file, Msg: "not a drill target (label " + DrillLabel + "=true on the pod or its namespace, or on the node): " + strings.Join(refused, "; "),
			HintText: "label the drill target first, for example: kubectl label namespace NS " + DrillLabel + "=true; never label a production workload"}
	}
	return nil
}

// drillRefusals are the target inputs of in that are not drill targets.
func drillRefusals(ctx context.Context, c *Checked, in Inputs, k kubernetes.Interface) ([]string, error) {
	var refused []string
	for _, decl := range c.Inputs {
		ref, _ := in[decl.Name].(string)
		tg, isTarget := decl.Type.Target()
		if !isTarget || ref == "" {
			continue
		}
		if tg.Cloud != action.Kubernetes || k == nil {
			refused = append(refused, fmt.Sprintf("input %s: %s %s cannot be marked as a drill target", decl.Name, decl.Type, ref))
			continue
		}
		ok, err := drillTarget(ctx, k, decl.Type, ref)
		if err != nil {
			return nil, err
		}
		if !ok {
			refused = append(refused, fmt.Sprintf("input %s: %s %s", decl.Name, decl.Type, ref))
		}
	}
	return refused, nil
}

// drillTarget reads the label from the API server.
func drillTarget(ctx context.Context, k kubernetes.Interface, t action.ParamType, ref string) (bool, error) {
	marked := func(l map[string]string) bool { return l[DrillLabel] == "true" }
	switch t {
	case action.Pod:
		ns, name, _ := strings.Cut(ref, "/")
		p, err := k.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("drill: read pod %s: %w", ref, err)
		}
		if marked(p.Labels) {
			return true, nil
		}
		n, err := k.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("drill: read namespace %s: %w", ns, err)
		}
		return marked(n.Labels), nil
	case action.Node:
		n, err := k.CoreV1().Nodes().Get(ctx, ref, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("drill: read node %s: %w", ref, err)
		}
		return marked(n.Labels), nil
	}
	return false, nil
}

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
// Drill refuses (CheckDrill) a playbook not marked drill: true and targets
// not labelled as drill targets. The summary is the run's, with the drill
// score. The error is the run's,
// the seal's, the release's, or wraps ErrNotReleased naming the first step
// that was not released; seal and release are skipped when the run
// returned an error.
func Drill(ctx context.Context, c *Checked, in Inputs, reg *action.Registry, o Options, seal func(context.Context) error) (*Summary, error) {
	o.defaults()
	o.Drill = true
	if err := o.connect(ctx, c); err != nil {
		return nil, err
	}
	if err := CheckDrill(ctx, c, in, o.Env.Kube); err != nil {
		return nil, err
	}
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
