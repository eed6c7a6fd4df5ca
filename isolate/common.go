// Package isolate holds the containment and revocation actions for
// Kubernetes: pod network quarantine, node cordon, incident labels and
// service-account revocation. Every action keeps what it changes in an
// annotation on the object it changes, so that a resumed run derives its
// state from the cluster and a release restores the exact original.
package isolate

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/naming"
)

// Every key an incident writes is its own: two incidents on one pod, node
// or policy never share a label, taint or annotation, so releasing one
// leaves the other's containment in place. The key carries a hash of the
// incident ID (label names are limited to 63 characters); the value, where
// there is one, is the incident's label value.

// QuarantineKey is the incident's quarantine label (pods, nodes) and
// taint key.
func QuarantineKey(incident string) string {
	return naming.Domain + "/quarantine-" + naming.ShortHash(incident, 10)
}

// IncidentKey labels (and annotates) every object eksir touched for the
// incident.
func IncidentKey(incident string) string {
	return naming.Domain + "/incident-" + naming.ShortHash(incident, 10)
}

// Keys written before each incident had its own (eksir.dev/...): a release
// removes them from objects an older eksir contained.
const (
	LegacyQuarantineKey = naming.LegacyDomain + "/quarantine"
	LegacyIncidentKey   = naming.LegacyDomain + "/incident"
)

const (
	// originalPrefix + action + hash(incident) is the annotation holding
	// what an action changed, as JSON, so release restores it exactly.
	originalPrefix       = naming.Domain + "/original-"
	legacyOriginalPrefix = naming.LegacyDomain + "/original-"
	managedBy            = "app.kubernetes.io/managed-by"
)

// Register adds the containment actions to r.
func Register(r *action.Registry) {
	r.Register(PodNetwork{}, CordonNode{}, Label{}, RevokeServiceAccount{},
		RevokeInstanceProfile{}, RevokeIRSARole{}, RevokePodIdentity{}, RevokeAccessKey{})
}

// LabelValue turns an incident ID into a label value: the ID itself when it
// fits (63 characters, alphanumeric at both ends), else a stable hash.
func LabelValue(incident string) string {
	if n := len(incident); n > 0 && n <= 63 && isAlnum(incident[0]) && isAlnum(incident[n-1]) {
		return incident
	}
	return "h-" + naming.ShortHash(incident, 16)
}

// ObjectName derives a DNS-1123 name from a prefix and the incident ID; the
// same incident always yields the same name, which is what makes a resumed
// create find its object.
func ObjectName(prefix, incident string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(incident) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	name := prefix + s
	// Lowercasing can merge two incident IDs: the hash keeps names apart.
	if len(name) > 52 || s != incident {
		if len(name) > 52 {
			name = name[:52]
		}
		name = strings.TrimRight(name, "-") + "-" + naming.ShortHash(incident, 8)
	}
	return name
}

// originalKey is per action and incident: two actions touching one object
// each keep their own original, and each release restores only the keys its
// action changed.
func originalKey(act, incident string) string {
	return originalPrefix + act + "-" + naming.ShortHash(incident, 10)
}

// legacyOriginalKey is originalKey as eksir wrote it under eksir.dev.
func legacyOriginalKey(act, incident string) string {
	return legacyOriginalPrefix + act + "-" + naming.ShortHash(incident, 10)
}

// restoreKeys sets each key of m back to its value in orig, or removes it.
func restoreKeys(m, orig map[string]string, keys ...string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	for _, k := range keys {
		if v, ok := orig[k]; ok {
			m[k] = v
		} else {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// readOriginal decodes the original-state annotation into v; ok is false
// when the object carries none for this incident.
// An annotation an older eksir wrote (eksir.dev) is read too.
func readOriginal(m metav1.Object, act, incident string, v any) (bool, error) {
	key := originalKey(act, incident)
	s, ok := m.GetAnnotations()[key]
	if !ok {
		key = legacyOriginalKey(act, incident)
		if s, ok = m.GetAnnotations()[key]; !ok {
			return false, nil
		}
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return true, fmt.Errorf("%s %s: bad %s annotation: %w", m.GetNamespace(), m.GetName(), key, err)
	}
	return true, nil
}

func writeOriginal(m metav1.Object, act, incident string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	a := m.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[originalKey(act, incident)] = string(b)
	m.SetAnnotations(a)
	return nil
}

func dropOriginal(m metav1.Object, act, incident string) {
	a := m.GetAnnotations()
	delete(a, originalKey(act, incident))
	delete(a, legacyOriginalKey(act, incident))
	if len(a) == 0 {
		a = nil
	}
	m.SetAnnotations(a)
}

// restoreOriginal is every Undo's write: under RetryOnConflict, each attempt
// gets the object, decodes the original-state annotation act wrote for
// incident, lets restore put back what the action changed, drops the
// annotation and updates the object. A missing object or annotation leaves
// nothing to restore (already clean), which keeps Undo idempotent. what
// names the object in errors and in the report ("node n1", "pod ns/name").
func restoreOriginal[T metav1.Object, O any](ctx context.Context, what, act, incident string,
	get func(context.Context) (T, error), update func(context.Context, T, metav1.UpdateOptions) error, restore func(T, O)) (action.Restored, error) {
	out := action.Restored{Object: what, Outcome: action.OutcomeClean}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		out.Outcome = action.OutcomeClean
		o, err := get(ctx)
		if apierrors.IsNotFound(err) {
			out.Detail = "gone"
			return nil
		}
		if err != nil {
			return fmt.Errorf("get %s: %w", what, err)
		}
		var orig O
		if had, err := readOriginal(o, act, incident, &orig); !had || err != nil {
			return err
		}
		restore(o, orig)
		dropOriginal(o, act, incident)
		if err := update(ctx, o, updateOpts(false)); err != nil {
			return fmt.Errorf("restore %s: %w", what, err)
		}
		out.Outcome = action.OutcomeRestored
		return nil
	})
	return out, err
}

// typedClient is the Get and Update of a client-go typed client
// (Nodes(), Pods(ns), NetworkPolicies(ns), ...).
type typedClient[T any] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Update(ctx context.Context, obj T, opts metav1.UpdateOptions) (T, error)
}

// getter and updater adapt a typed client to restoreOriginal's get (of the
// object called name) and update.
func getter[T any](c typedClient[T], name string) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) { return c.Get(ctx, name, metav1.GetOptions{}) }
}

func updater[T any](c typedClient[T]) func(context.Context, T, metav1.UpdateOptions) error {
	return func(ctx context.Context, o T, opts metav1.UpdateOptions) error {
		_, err := c.Update(ctx, o, opts)
		return err
	}
}

// updateOpts returns UpdateOptions, with server-side dry run when planning:
// Plan runs the same code as Run, and the API server validates and admits
// every change without persisting it.
func updateOpts(dry bool) metav1.UpdateOptions {
	if dry {
		return metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "eksir"}
	}
	return metav1.UpdateOptions{FieldManager: "eksir"}
}

func createOpts(dry bool) metav1.CreateOptions {
	if dry {
		return metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "eksir"}
	}
	return metav1.CreateOptions{FieldManager: "eksir"}
}

func deleteOpts(dry bool) metav1.DeleteOptions {
	if dry {
		return metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}
	}
	return metav1.DeleteOptions{}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Per-incident changes. An original annotation written by this eksir
// (format version 2) records what the incident changed — the keys it set
// with the value it wrote and the value it found, the taints and subjects it
// added or removed — never a snapshot of whole fields: Undo applies the
// reverse of that diff to the object's current state, so changes others made
// since survive. Older annotations were snapshots; each action converts
// them to a diff when it reads them.
const recordVersion = 2

// keyChange is one label or annotation key an incident set.
type keyChange struct {
	Wrote string `json:"wrote"`
	// Had is the value the key held before (nil: it was absent).
	Had *string `json:"had,omitempty"`
}

// setKeys sets every key of want in m and records in rec what each
// overwrote. A key already in rec keeps its first Had: a re-run is not a
// new change. inherit, when not nil, may supply the Had of a key that
// another incident set to cur (it returns ok=false otherwise): a shared key
// such as karpenter.sh/do-not-disrupt then goes back to its true original
// when the last incident holding it is released.
func setKeys(m, want map[string]string, rec map[string]keyChange, inherit func(k, cur string) (*string, bool)) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	for k, v := range want {
		c, recorded := rec[k]
		if !recorded {
			if cur, ok := m[k]; ok {
				c.Had = &cur
				if inherit != nil {
					if had, ok := inherit(k, cur); ok {
						c.Had = had
					}
				}
			}
		}
		c.Wrote = v
		rec[k] = c
		m[k] = v
	}
	return m
}

// unsetKeys reverses rec on m: a key that still holds the value the
// incident wrote goes back to the value it had (or goes), unless keep says
// another incident still needs it; a key someone changed since is theirs
// now and stays. An emptied map is nil, as the API server returns it.
func unsetKeys(m map[string]string, rec map[string]keyChange, keep func(k string) bool) map[string]string {
	for k, c := range rec {
		cur, ok := m[k]
		if !ok || cur != c.Wrote || keep != nil && keep(k) {
			continue
		}
		if c.Had != nil {
			m[k] = *c.Had
		} else {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func strPtr(s string) *string { return &s }

// snapshotChanges converts an older snapshot-style record to a diff: each
// key present now is taken as written by the incident (the older release
// restored it unconditionally) and had the snapshot's value.
func snapshotChanges(cur, snapshot map[string]string, keys ...string) map[string]keyChange {
	out := map[string]keyChange{}
	for _, k := range keys {
		v, ok := cur[k]
		if !ok {
			continue
		}
		c := keyChange{Wrote: v}
		if was, ok := snapshot[k]; ok {
			c.Had = strPtr(was)
		}
		out[k] = c
	}
	return out
}

// otherRecords returns the original annotations of act that incidents other
// than incident left on m, by key (current and legacy domain).
func otherRecords(m metav1.Object, act, incident string) map[string]string {
	out := map[string]string{}
	mine := map[string]bool{originalKey(act, incident): true, legacyOriginalKey(act, incident): true}
	for k, v := range m.GetAnnotations() {
		if (strings.HasPrefix(k, originalPrefix+act+"-") || strings.HasPrefix(k, legacyOriginalPrefix+act+"-")) && !mine[k] {
			out[k] = v
		}
	}
	return out
}

// OtherIncidents lists the marks other incidents left on an object: their
// quarantine and incident labels, annotations and taints (current and
// legacy keys) and their original annotations. With quarantineOnly, only
// containment (quarantine labels and taints, and original annotations of
// the cordon and pod-network actions) counts. Plans show the list as a
// warning; releases keep shared state (a cordon) while it is not empty.
func OtherIncidents(m metav1.Object, taints []corev1.Taint, incident string, quarantineOnly bool) []string {
	val := LabelValue(incident)
	q, i := QuarantineKey(incident), IncidentKey(incident)
	hash := naming.ShortHash(incident, 10)
	seen := map[string]bool{}
	add := func(s string) { seen[s] = true }
	isOther := func(k, v string) bool {
		switch {
		case k == q || k == i:
			return false
		case k == LegacyQuarantineKey:
			return v != val
		case k == LegacyIncidentKey:
			return !quarantineOnly && v != val && v != incident
		case strings.HasPrefix(k, naming.Domain+"/quarantine-"):
			return true
		case strings.HasPrefix(k, naming.Domain+"/incident-"):
			return !quarantineOnly
		}
		return false
	}
	for k, v := range m.GetLabels() {
		if isOther(k, v) {
			add("label " + k + "=" + v)
		}
	}
	for k, v := range m.GetAnnotations() {
		if isOther(k, v) {
			add("annotation " + k)
		}
		for _, p := range []string{originalPrefix, legacyOriginalPrefix} {
			rest, ok := strings.CutPrefix(k, p)
			if !ok || strings.HasSuffix(rest, "-"+hash) {
				continue
			}
			if quarantineOnly && !strings.HasPrefix(rest, "cordon-") && !strings.HasPrefix(rest, "net-") {
				continue
			}
			add("annotation " + k)
		}
	}
	for _, t := range taints {
		if isOther(t.Key, t.Value) {
			add("taint " + t.Key + "=" + t.Value + ":" + string(t.Effect))
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// otherIncidentsWarning is the Plan warning for OtherIncidents.
func otherIncidentsWarning(what string, marks []string) string {
	return fmt.Sprintf("%s is also held by another open incident (%s): this incident's release removes only its own changes and leaves the other's in place",
		what, strings.Join(marks, ", "))
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
