// Package finding reads the targets of an incident from an Amazon
// GuardDuty finding, so a responder starts from the alert: the pod or
// workload of an EKS Protection or Runtime Monitoring finding, the EC2
// instance, and the access key or role of an IAM finding.
//
// It accepts the three shapes a finding reaches a responder in: the
// finding object itself, the output of 'aws guardduty get-findings'
// ({"Findings": [one finding]}), and an EventBridge event whose detail is
// the finding (whose keys are camelCase; JSON field names match without
// regard to case, as encoding/json does). Anything else is refused with
// the JSON field named, as the documented PascalCase path.
package finding

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/eksir/eksir/action"
)

// MaxSize bounds a finding file: GuardDuty findings are kilobytes, and the
// file is read whole before parsing.
const MaxSize = 1 << 20

// ErrInvalid is wrapped by every error about the finding's content.
var ErrInvalid = errors.New("invalid GuardDuty finding")

// Error is a finding refused: Field is the JSON path of the field at
// fault ("" for the document as a whole).
type Error struct {
	Field, Msg string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

func refuse(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Finding is what eksir reads of a GuardDuty finding.
type Finding struct {
	ID       string  `json:"id"`
	ARN      string  `json:"arn,omitempty"`
	Type     string  `json:"type"`
	Title    string  `json:"title,omitempty"`
	Severity float64 `json:"severity"`
	Account  string  `json:"account"`
	Region   string  `json:"region"`
	// Cluster is the EKS cluster's name, when the finding names it.
	Cluster string `json:"cluster,omitempty"`
	// ResourceType is the finding's Resource.ResourceType.
	ResourceType string `json:"resource_type"`
	// Targets maps target types (action.Pod, Instance, AccessKey,
	// IAMRole) to the values their flags take; a pod may be a workload
	// reference (deployment:NS/NAME). At least one is set.
	Targets map[action.ParamType]string `json:"targets"`
	// Notes say what the finding names that is not a target (an
	// AssumedRole session's ASIA key), for the responder.
	Notes []string `json:"notes,omitempty"`
}

// The documented fields eksir reads; encoding/json matches them to
// camelCase keys as well.
type (
	rawFinding struct {
		ID        *string  `json:"Id"`
		Arn       string   `json:"Arn"`
		Type      *string  `json:"Type"`
		Title     string   `json:"Title"`
		Severity  *float64 `json:"Severity"`
		AccountID *string  `json:"AccountId"`
		Region    *string  `json:"Region"`
		Partition string   `json:"Partition"`
		Resource  *struct {
			ResourceType      *string            `json:"ResourceType"`
			AccessKeyDetails  *accessKeyDetails  `json:"AccessKeyDetails"`
			InstanceDetails   *instanceDetails   `json:"InstanceDetails"`
			EksClusterDetails *eksClusterDetails `json:"EksClusterDetails"`
			KubernetesDetails *struct {
				KubernetesWorkloadDetails *workloadDetails `json:"KubernetesWorkloadDetails"`
			} `json:"KubernetesDetails"`
		} `json:"Resource"`
	}
	accessKeyDetails struct {
		AccessKeyID *string `json:"AccessKeyId"`
		PrincipalID string  `json:"PrincipalId"`
		UserName    *string `json:"UserName"`
		UserType    *string `json:"UserType"`
	}
	instanceDetails struct {
		InstanceID *string `json:"InstanceId"`
		Tags       []struct {
			Key, Value string
		} `json:"Tags"`
	}
	eksClusterDetails struct {
		Name *string `json:"Name"`
	}
	workloadDetails struct {
		Name      *string `json:"Name"`
		Namespace *string `json:"Namespace"`
		Type      *string `json:"Type"`
	}
)

// Read reads and parses a finding of at most MaxSize bytes; it returns the
// bytes read too, which a run keeps as evidence.
func Read(r io.Reader) (*Finding, []byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read the finding: %w", err)
	}
	if len(data) > MaxSize {
		return nil, nil, refuse("", "over %d bytes, more than a GuardDuty finding holds", MaxSize)
	}
	f, err := Parse(data)
	return f, data, err
}

// Parse reads a finding in any of the accepted shapes.
func Parse(data []byte) (*Finding, error) {
	var top map[string]json.RawMessage
	if err := decodeOne(data, &top, ""); err != nil {
		return nil, err
	}
	prefix := ""
	body := json.RawMessage(data)
	if v, ok := field(top, "Findings"); ok {
		var list []json.RawMessage
		if err := decodeOne(v, &list, "Findings"); err != nil {
			return nil, err
		}
		if len(list) != 1 {
			return nil, refuse("Findings", "holds %d findings; give one (aws guardduty get-findings --finding-ids ID)", len(list))
		}
		body, prefix = list[0], "Findings[0]."
	} else if v, ok := field(top, "detail"); ok {
		if src, ok := field(top, "source"); ok && string(bytes.TrimSpace(src)) != `"aws.guardduty"` {
			return nil, refuse("source", "%s: an EventBridge event from another service than aws.guardduty", src)
		}
		body, prefix = v, "detail."
	}
	var raw rawFinding
	if err := decodeOne(body, &raw, strings.TrimSuffix(prefix, ".")); err != nil {
		return nil, err
	}
	f, err := raw.finding()
	if e, ok := err.(*Error); ok && prefix != "" {
		e.Field = prefix + e.Field
	}
	return f, err
}

// decodeOne decodes exactly one JSON value, naming the field or the
// line:col of a syntax error.
func decodeOne(data []byte, v any, at string) error {
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			line, col := lineCol(data, se.Offset)
			return refuse(at, "not JSON: line %d, column %d: %v", line, col, se)
		case errors.As(err, &te):
			name := te.Field
			if at != "" && name != "" {
				name = at + "." + name
			} else if name == "" {
				name = at
			}
			return refuse(name, "want %s, found a JSON %s", kindOf(te.Type.Kind().String()), te.Value)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return refuse(at, "not JSON: empty or cut short")
		}
		return refuse(at, "not JSON: %v", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return refuse(at, "more than one JSON value: give one finding")
	}
	return nil
}

func kindOf(k string) string {
	switch k {
	case "map", "struct":
		return "an object"
	case "slice":
		return "a list"
	case "float64":
		return "a number"
	}
	return "a " + k
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	return line, int(off) - (bytes.LastIndexByte(before, '\n') + 1)
}

// field finds a key as encoding/json would: exactly, else without regard
// to case.
func field(m map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

var (
	findingIDRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
	accountRE    = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	instanceIDRE = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
	userKeyRE    = regexp.MustCompile(`^AKIA[A-Z0-9]{12,124}$`)
	roleNameRE   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	partitionRE  = regexp.MustCompile(`^aws(-[a-z]+)*$`)
)

// workloadKinds maps KubernetesWorkloadDetails.Type (GuardDuty writes
// "pods", "deployments", ...; the API reference says "Pod, Deployment")
// to the prefix of eksir's --pod reference.
var workloadKinds = map[string]string{
	"pods": "", "pod": "",
	"deployments": "deployment:", "deployment": "deployment:",
	"statefulsets": "statefulset:", "statefulset": "statefulset:",
	"daemonsets": "daemonset:", "daemonset": "daemonset:",
	"jobs": "job:", "job": "job:",
}

// need returns *p, or refuses the missing or empty field.
func need(p *string, name string) (string, error) {
	if p == nil || strings.TrimSpace(*p) == "" {
		return "", refuse(name, "missing")
	}
	return *p, nil
}

func (r *rawFinding) finding() (*Finding, error) {
	f := &Finding{ARN: r.Arn, Title: r.Title, Targets: map[action.ParamType]string{}}
	var err error
	if f.ID, err = need(r.ID, "Id"); err != nil {
		return nil, err
	}
	if !findingIDRE.MatchString(f.ID) {
		return nil, refuse("Id", "%q is not a GuardDuty finding ID", f.ID)
	}
	if f.Type, err = need(r.Type, "Type"); err != nil {
		return nil, err
	}
	if r.Severity == nil {
		return nil, refuse("Severity", "missing")
	}
	if f.Severity = *r.Severity; f.Severity < 0 || f.Severity > 10 {
		return nil, refuse("Severity", "%v is outside GuardDuty's 0 to 10", f.Severity)
	}
	if f.Account, err = need(r.AccountID, "AccountId"); err != nil {
		return nil, err
	}
	if !accountRE.MatchString(f.Account) {
		return nil, refuse("AccountId", "%q is not an AWS account ID (12 digits)", f.Account)
	}
	if f.Region, err = need(r.Region, "Region"); err != nil {
		return nil, err
	}
	if !regionRE.MatchString(f.Region) {
		return nil, refuse("Region", "%q is not an AWS region", f.Region)
	}
	partition := r.Partition
	if partition == "" {
		partition = "aws"
	}
	if !partitionRE.MatchString(partition) {
		return nil, refuse("Partition", "%q is not an AWS partition", partition)
	}
	if r.Resource == nil {
		return nil, refuse("Resource", "missing")
	}
	res := r.Resource
	if f.ResourceType, err = need(res.ResourceType, "Resource.ResourceType"); err != nil {
		return nil, err
	}
	switch f.ResourceType {
	case "EKSCluster":
		if res.EksClusterDetails == nil {
			return nil, refuse("Resource.EksClusterDetails", "missing")
		}
		if f.Cluster, err = need(res.EksClusterDetails.Name, "Resource.EksClusterDetails.Name"); err != nil {
			return nil, err
		}
		if res.KubernetesDetails != nil && res.KubernetesDetails.KubernetesWorkloadDetails != nil {
			if err := f.workload(res.KubernetesDetails.KubernetesWorkloadDetails); err != nil {
				return nil, err
			}
		}
		// Runtime Monitoring names the node's instance too.
		if res.InstanceDetails != nil {
			if err := f.instance(res.InstanceDetails); err != nil {
				return nil, err
			}
		}
		if len(f.Targets) == 0 {
			return nil, refuse("Resource.KubernetesDetails.KubernetesWorkloadDetails", "missing: the finding names no workload nor instance to act on (a finding about a Kubernetes user alone: revoke its access with the cluster's RBAC)")
		}
	case "Instance":
		if res.InstanceDetails == nil {
			return nil, refuse("Resource.InstanceDetails", "missing")
		}
		if err := f.instance(res.InstanceDetails); err != nil {
			return nil, err
		}
	case "AccessKey":
		if res.AccessKeyDetails == nil {
			return nil, refuse("Resource.AccessKeyDetails", "missing")
		}
		if err := f.accessKey(res.AccessKeyDetails, partition); err != nil {
			return nil, err
		}
	default:
		return nil, refuse("Resource.ResourceType", "%q is not a Kubernetes, instance or access key finding", f.ResourceType)
	}
	return f, nil
}

func (f *Finding) workload(w *workloadDetails) error {
	const at = "Resource.KubernetesDetails.KubernetesWorkloadDetails."
	typ, err := need(w.Type, at+"Type")
	if err != nil {
		return err
	}
	prefix, ok := workloadKinds[strings.ToLower(typ)]
	if !ok {
		return refuse(at+"Type", "%q: eksir contains pods, deployments, statefulsets, daemonsets and jobs; give the pods with --pod", typ)
	}
	ns, err := need(w.Namespace, at+"Namespace")
	if err != nil {
		return err
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return refuse(at+"Namespace", "%q is not a namespace name: %s", ns, msgs[0])
	}
	name, err := need(w.Name, at+"Name")
	if err != nil {
		return err
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return refuse(at+"Name", "%q is not a Kubernetes object name: %s", name, msgs[0])
	}
	f.Targets[action.Pod] = prefix + ns + "/" + name
	return nil
}

func (f *Finding) instance(d *instanceDetails) error {
	id, err := need(d.InstanceID, "Resource.InstanceDetails.InstanceId")
	if err != nil {
		return err
	}
	if !instanceIDRE.MatchString(id) {
		return refuse("Resource.InstanceDetails.InstanceId", "%q is not an EC2 instance ID", id)
	}
	f.Targets[action.Instance] = id
	for _, t := range d.Tags {
		if t.Key == "eks:cluster-name" && f.Cluster == "" && t.Value != "" {
			f.Cluster = t.Value // an EKS node's instance says its cluster
		}
	}
	return nil
}

func (f *Finding) accessKey(d *accessKeyDetails, partition string) error {
	const at = "Resource.AccessKeyDetails."
	typ, err := need(d.UserType, at+"UserType")
	if err != nil {
		return err
	}
	key, err := need(d.AccessKeyID, at+"AccessKeyId")
	if err != nil {
		return err
	}
	switch typ {
	case "IAMUser":
		if !userKeyRE.MatchString(key) {
			return refuse(at+"AccessKeyId", "%q is not an IAM user's access key ID (AKIA...)", key)
		}
		f.Targets[action.AccessKey] = key
	case "AssumedRole":
		// A session's key (ASIA) cannot be deactivated; its role's
		// older sessions can be denied.
		name, err := need(d.UserName, at+"UserName")
		if err != nil {
			return err
		}
		if !roleNameRE.MatchString(name) {
			return refuse(at+"UserName", "%q is not an IAM role name", name)
		}
		f.Targets[action.IAMRole] = "arn:" + partition + ":iam::" + f.Account + ":role/" + name
		f.Notes = append(f.Notes, fmt.Sprintf("access key %s is a session of role %s: IAM cannot deactivate it; deny the role's older sessions", key, name))
	default:
		return refuse(at+"UserType", "%q: eksir acts on IAMUser keys and AssumedRole sessions", typ)
	}
	return nil
}
