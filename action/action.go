// Package action is the contract between the playbook engine and the things
// it runs. Each action declares, next to its code, its parameters, whether it
// changes anything, the permissions it needs, how to plan it without change,
// and how to undo it. The same declarations answer plan, run, release,
// permissions and the generated docs.
//
// Actions never import the engine (playbooks); the engine knows actions only
// through this package.
package action

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/eksir/eksir/evidence"
)

// Kind says what an action does to the world.
type Kind string

const (
	// Collect actions acquire evidence into the case. They are not
	// read-only: node collectors create privileged pods on the suspect's
	// nodes (deleted after the step unless kept), and the ephemeral method
	// adds a debug container to the suspect pod, where it stays.
	Collect Kind = "collect"
	// Contain actions change the cluster or the cloud; they must be
	// idempotent and, where possible, reversible.
	Contain Kind = "contain"
)

// Cloud is a system an action talks to; the engine builds a client only
// for the clouds the playbook's actions declare.
type Cloud string

// Clouds.
const (
	Kubernetes Cloud = "kubernetes"
	AWS        Cloud = "aws"
)

// Param declares one parameter.
type Param struct {
	Name     string    `json:"name"`
	Type     ParamType `json:"type"`
	Required bool      `json:"required,omitempty"`
	// Default is used when the playbook omits the parameter; its Go type
	// matches Type (string, int64, bool, time.Duration, []string, map[string]string).
	Default any      `json:"default,omitempty"`
	Enum    []string `json:"enum,omitempty"`
	Doc     string   `json:"doc"`
}

// KubeRule is one Kubernetes permission, shaped like an RBAC PolicyRule.
type KubeRule struct {
	APIGroups []string `json:"apiGroups"`
	Resources []string `json:"resources"`
	Verbs     []string `json:"verbs"`
	// ResourceNames narrows the rule to objects of these names, where the
	// names are known when the role is generated (a DaemonSet such as
	// kube-system/aws-node). Kubernetes ignores names for create and for
	// list/watch without a name field selector: use it with get, update,
	// patch and delete.
	ResourceNames []string `json:"resourceNames,omitempty"`
}

// IAMPermission is one IAM statement an action needs: actions on
// resources (ARN patterns; none means "*"), under optional conditions
// (operator -> condition key -> values), so the generated policy can be
// as narrow as the action allows, for example revocation limited to roles
// tagged for it.
type IAMPermission struct {
	Actions    []string                       `json:"actions"`
	Resources  []string                       `json:"resources,omitempty"`
	Conditions map[string]map[string][]string `json:"conditions,omitempty"`
}

// Permissions lists what an action needs, for least-privilege policies.
type Permissions struct {
	IAM  []IAMPermission `json:"iam,omitempty"`
	Kube []KubeRule      `json:"kube,omitempty"`
}

// Spec is an action's declaration.
type Spec struct {
	Name string `json:"name"`
	Doc  string `json:"doc"`
	Kind Kind   `json:"kind"`
	// Needs are the clouds the action talks to: the engine connects to
	// exactly these, so a Kubernetes-only playbook needs no AWS
	// configuration. Registration checks it against Permissions.
	Needs []Cloud `json:"needs"`
	// RevokesCredential marks an action whose effect is a revoked
	// credential: release keeps it revoked unless asked to restore
	// credentials, since an attacker may still hold it.
	RevokesCredential bool        `json:"revokes_credential,omitempty"`
	Params            []Param     `json:"params"`
	Outputs           []string    `json:"outputs,omitempty"`
	Permissions       Permissions `json:"permissions"`
	// Reversible actions implement Reverser; release undoes them.
	Reversible bool `json:"reversible"`
	// Volatile marks collection of state that containment may destroy
	// (processes, memory, sockets): the validator orders it first.
	Volatile bool `json:"volatile,omitempty"`
	// Preserves marks containment that destroys no state but keeps it
	// (termination and stop protection, volumes kept on termination): it
	// may, and should, run before volatile capture, so the capture-first
	// rule does not apply to it.
	Preserves bool `json:"preserves,omitempty"`
	// Notes is Markdown for responders beyond Doc: what the action changes
	// or writes, in order, and what Undo restores. Markdown prints it
	// under the action in docs/actions.md.
	Notes string `json:"notes,omitempty"`
}

// Evidence is the part of the case store that actions write to
// (*evidence.Case). Every method takes rel, the item's path inside the
// payload without the leading "data/": "k8s/payments/pods/web-0/pod.json".
type Evidence interface {
	Create(rel string, info evidence.ItemInfo) (*evidence.ItemWriter, error)
	Add(ctx context.Context, rel string, info evidence.ItemInfo, r io.Reader) (evidence.Item, error)
	NotCollected(rel string, info evidence.ItemInfo, reason string) (evidence.Item, error)
	Has(rel string) bool
	// Lookup returns the index entry of an item, collected or not.
	Lookup(rel string) (evidence.Item, bool)
}

// Env carries what an action may touch. Fields an action does not need may
// be nil in tests.
type Env struct {
	Kube       kubernetes.Interface
	RESTConfig *rest.Config
	AWS        aws.Config
	Evidence   Evidence
	Incident   string
	// Responder is recorded in labels and annotations.
	Responder string
	// Cluster names the cluster in evidence sources.
	Cluster string
	Log     *slog.Logger
	Now     func() time.Time
	// Progress, when set, is told how far a long step is (done of total,
	// in the step's own unit) so a terminal can draw it; nil elsewhere.
	Progress func(step, what string, done, total int64)
}

// ReportProgress calls Progress if it is set.
func (e *Env) ReportProgress(step, what string, done, total int64) {
	if e != nil && e.Progress != nil {
		e.Progress(step, what, done, total)
	}
}

// Call is one step's invocation: parameters validated against the Spec with
// defaults applied, as Go values of the declared types (target types as
// strings: "namespace/name" for pods).
type Call struct {
	Step   string
	Params map[string]any
}

// String returns a string parameter or "".
func (c Call) String(name string) string { s, _ := c.Params[name].(string); return s }

// Bool returns a bool parameter or false.
func (c Call) Bool(name string) bool { b, _ := c.Params[name].(bool); return b }

// Int returns an int parameter or 0.
func (c Call) Int(name string) int64 { i, _ := c.Params[name].(int64); return i }

// Duration returns a duration parameter or 0.
func (c Call) Duration(name string) time.Duration { d, _ := c.Params[name].(time.Duration); return d }

// Strings returns a string-list parameter or nil.
func (c Call) Strings(name string) []string { s, _ := c.Params[name].([]string); return s }

// StringMap returns a string-map parameter or nil.
func (c Call) StringMap(name string) map[string]string {
	m, _ := c.Params[name].(map[string]string)
	return m
}

// Change is one concrete change a step would make.
type Change struct {
	// Verb is what happens: create, patch, delete, cordon, taint, evict, collect, ...
	Verb string `json:"verb"`
	// Object names the object: "networkpolicy payments/eksir-quarantine-inc-1".
	Object string `json:"object"`
	Detail string `json:"detail,omitempty"`
}

// PermissionCheck is the answer to "may I?" asked before any change
// (SelfSubjectAccessReview, server-side dry run, EC2 DryRun).
type PermissionCheck struct {
	Permission string `json:"permission"`
	Allowed    bool   `json:"allowed"`
	Reason     string `json:"reason,omitempty"`
}

// Plan is what a step would do, computed without changing anything.
type Plan struct {
	Changes []Change          `json:"changes"`
	Checks  []PermissionCheck `json:"checks,omitempty"`
	// Done says the change is already in place (idempotency): Run would
	// change nothing.
	Done     bool     `json:"done,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Result is what a step did.
type Result struct {
	Outputs map[string]any `json:"outputs,omitempty"`
	// Undo is what Reverser.Undo needs to restore the exact original
	// objects; the engine records it in the journal.
	Undo json.RawMessage `json:"undo,omitempty"`
	// Items are the evidence paths the step wrote.
	Items    []string `json:"items,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Action is one thing a playbook step can do.
type Action interface {
	Spec() Spec
	// Plan reports the concrete changes Run would make, and checks
	// permissions, without changing anything.
	Plan(ctx context.Context, env *Env, call Call) (Plan, error)
	// Run does the work. It is idempotent: after a success, running it again
	// changes nothing and returns the same Undo; after a crash part-way, it
	// completes the work without repeating any side effect.
	Run(ctx context.Context, env *Env, call Call) (Result, error)
}

// Reverser is implemented by actions that can be undone.
type Reverser interface {
	// Undo restores what Run changed, from the Undo it returned, and
	// reports each object it looked at. undo is nil when the step failed
	// or is in doubt (it returned no record): Undo then works from the
	// call's parameters and the incident's annotations on the cluster's
	// objects. It is idempotent too, and never deletes evidence.
	Undo(ctx context.Context, env *Env, call Call, undo json.RawMessage) ([]Restored, error)
}

// Outcomes of an Undo for one object.
const (
	// OutcomeRestored: the object was put back as the incident found it,
	// except for changes others made since.
	OutcomeRestored = "restored"
	// OutcomeClean: the object carries nothing of the incident (already
	// released, never changed, or gone).
	OutcomeClean = "already-clean"
)

// Restored is what an Undo did to one object.
type Restored struct {
	// Object names it: "pod payments/web-1", "node ip-10-0-1-4".
	Object  string `json:"object"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
}

// ErrBadInput is wrapped by a Plan, Run or Undo error about the call itself:
// a target that does not exist, parameters that contradict each other. The
// step changed nothing. It is evidence.ErrInvalidInput, which the CLI
// already maps to exit code 2 ("input the caller can fix").
var ErrBadInput = evidence.ErrInvalidInput
