package collect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/naming"
)

// EBSSnapshot is collect.ebs-snapshot: crash-consistent EBS snapshots of an
// instance's volumes, or of the volumes behind a pod's PersistentVolumes.
type EBSSnapshot struct{}

// Tags on every snapshot the action creates. The incident, step and source
// volume identify a snapshot again after a crash, so a resumed run finds it
// instead of taking a second one.
const (
	SnapshotIncidentTag = naming.Domain + "/incident"
	SnapshotStepTag     = naming.Domain + "/step"
	SnapshotVolumeTag   = naming.Domain + "/source-volume"
	SnapshotInstanceTag = naming.Domain + "/instance"
	SnapshotPodTag      = naming.Domain + "/pod"
	// SnapshotCopyOfTag marks a copy made with the forensic KMS key.
	SnapshotCopyOfTag = naming.Domain + "/copy-of"
)

// defaultSnapshotTimeout bounds the wait for completion: a first snapshot
// of a large volume can take hours.
const defaultSnapshotTimeout = 4 * time.Hour

// snapshotConcurrency bounds the volumes of one pod snapshotted at once.
const snapshotConcurrency = 8

// snapshotEC2 is the part of EC2 the action calls.
type snapshotEC2 interface {
	awstarget.EC2Describer
	DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, opts ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	DescribeSnapshots(ctx context.Context, in *ec2.DescribeSnapshotsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSnapshotsOutput, error)
	CreateSnapshots(ctx context.Context, in *ec2.CreateSnapshotsInput, opts ...func(*ec2.Options)) (*ec2.CreateSnapshotsOutput, error)
	CreateSnapshot(ctx context.Context, in *ec2.CreateSnapshotInput, opts ...func(*ec2.Options)) (*ec2.CreateSnapshotOutput, error)
	CreateTags(ctx context.Context, in *ec2.CreateTagsInput, opts ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	ModifySnapshotAttribute(ctx context.Context, in *ec2.ModifySnapshotAttributeInput, opts ...func(*ec2.Options)) (*ec2.ModifySnapshotAttributeOutput, error)
	CopySnapshot(ctx context.Context, in *ec2.CopySnapshotInput, opts ...func(*ec2.Options)) (*ec2.CopySnapshotOutput, error)
}

func snapshotClient(env *action.Env) snapshotEC2 { return ec2.NewFromConfig(env.AWS) }

// Spec implements action.Action.
func (EBSSnapshot) Spec() action.Spec {
	snap := "arn:aws:ec2:*::snapshot/*"
	vol := "arn:aws:ec2:*:*:volume/*"
	return action.Spec{
		Name: "collect.ebs-snapshot",
		Doc: "Crash-consistent EBS snapshots of an instance's volumes (CreateSnapshots, one point in time across them) or of the EBS volumes behind a pod's " +
			"PersistentVolumes, tagged with the incident and step, waited on, optionally shared with a forensic account and copied with a forensic KMS key; " +
			"a descriptor per snapshot goes into the case.",
		Kind:  action.Collect,
		Needs: []action.Cloud{action.AWS, action.Kubernetes},
		Params: []action.Param{
			{Name: "instance", Type: action.Instance, Doc: "the EC2 instance whose attached EBS volumes to snapshot (give instance or pod)"},
			{Name: "pod", Type: action.Pod, Doc: "the pod whose PersistentVolumes' EBS volumes to snapshot (give instance or pod)"},
			{Name: "wait", Type: action.Bool, Default: true, Doc: "wait until the snapshots complete; false goes on while EBS completes them"},
			{Name: "allow-no-volumes", Type: action.Bool, Default: false, Doc: "with pod: a pod without EBS-backed PersistentVolumes is bad input; true makes it a warning and a step that snapshots nothing (playbooks that run on any pod)"},
			{Name: "share-with-account", Type: action.String, Doc: "an AWS account ID given create-volume permission on each snapshot (a forensic account)"},
			{Name: "copy-kms-key", Type: action.String, Doc: "a KMS key (ID, alias or ARN): each snapshot is also copied, encrypted with it (needs wait)"},
			{Name: "timeout", Type: action.Duration, Default: defaultSnapshotTimeout, Doc: "how long to wait for the snapshots to complete"},
		},
		Outputs: captureOutputs("snapshots", "copies"),
		Permissions: action.Permissions{
			IAM: []action.IAMPermission{
				{Actions: []string{"ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeVolumes", "ec2:DescribeSnapshots"}},
				{Actions: []string{"ec2:CreateSnapshots"}, Resources: []string{"arn:aws:ec2:*:*:instance/*", vol, snap}},
				{Actions: []string{"ec2:CreateSnapshot"}, Resources: []string{vol, snap}},
				{Actions: []string{"ec2:CreateTags"}, Resources: []string{snap},
					Conditions: map[string]map[string][]string{"ForAllValues:StringLike": {"aws:TagKeys": {naming.Domain + "/*"}}}},
				{Actions: []string{"ec2:ModifySnapshotAttribute", "ec2:CopySnapshot"}, Resources: []string{snap}},
				{Actions: []string{"kms:DescribeKey", "kms:CreateGrant", "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKeyWithoutPlaintext"},
					Resources:  []string{"arn:aws:kms:*:*:key/*"},
					Conditions: map[string]map[string][]string{"StringLike": {"kms:ViaService": {"ec2.*.amazonaws.com"}}}},
			},
			Kube: []action.KubeRule{
				{APIGroups: []string{""}, Resources: []string{"pods", "persistentvolumeclaims", "persistentvolumes"}, Verbs: []string{"get"}},
			},
		},
		Notes: ebsSnapshotNotes,
	}
}

// snapTarget is what the call names: the volumes and where they come from.
type snapTarget struct {
	instance string // the instance of an instance call
	pod      string // namespace/name of a pod call
	volumes  []snapVolume
}

type snapVolume struct {
	ID        string
	Instance  string // the instance it is attached to, "" if none
	Encrypted bool
}

func snapshotParams(call action.Call) (wait bool, timeout time.Duration, err error) {
	wait = true
	if v, ok := call.Params["wait"].(bool); ok {
		wait = v
	}
	timeout = call.Duration("timeout")
	if timeout <= 0 {
		timeout = defaultSnapshotTimeout
	}
	if acct := call.String("share-with-account"); acct != "" && !isAccountID(acct) {
		return false, 0, fmt.Errorf("%w: share-with-account: %q is not a 12-digit AWS account ID (hint: the forensic account's ID)", action.ErrBadInput, acct)
	}
	if call.String("copy-kms-key") != "" && !wait {
		return false, 0, fmt.Errorf("%w: copy-kms-key: a snapshot is copied only once complete (hint: keep wait: true, or copy in a later step)", action.ErrBadInput)
	}
	return wait, timeout, nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// resolveSnapTarget finds the volumes: those attached to the instance, or
// those behind the pod's PersistentVolumes.
func resolveSnapTarget(ctx context.Context, env *action.Env, e snapshotEC2, call action.Call) (*snapTarget, error) {
	inst, pod := call.String("instance"), call.String("pod")
	switch {
	case inst != "" && pod != "":
		return nil, fmt.Errorf("%w: instance, pod: give one of them (hint: a pod's volumes are snapshotted one by one, an instance's in one crash-consistent set)", action.ErrBadInput)
	case inst != "":
		in, err := awstarget.DescribeInstance(ctx, e, nil, inst)
		if err != nil {
			return nil, err
		}
		t := &snapTarget{instance: inst}
		for _, v := range in.Volumes {
			t.volumes = append(t.volumes, snapVolume{ID: v.ID, Instance: inst})
		}
		if len(t.volumes) == 0 {
			return nil, fmt.Errorf("%w: instance: %s has no EBS volumes attached (hint: instance store volumes cannot be snapshotted)", action.ErrBadInput, inst)
		}
		return t, nil
	case pod != "":
		ids, err := podEBSVolumes(ctx, env.Kube, pod)
		if err != nil {
			return nil, err
		}
		t := &snapTarget{pod: pod}
		for _, id := range ids {
			out, err := e.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
			if code := awstarget.ErrorCode(err); code == "InvalidVolume.NotFound" || code == "InvalidVolume.Malformed" {
				return nil, fmt.Errorf("%w: pod: %s: its volume %s: %s (hint: is the AWS region or account the cluster's?)", action.ErrBadInput, pod, id, code)
			}
			if err != nil {
				return nil, fmt.Errorf("describe volume %s: %w", id, err)
			}
			v := snapVolume{ID: id}
			for _, ov := range out.Volumes {
				v.Encrypted = aws.ToBool(ov.Encrypted)
				for _, a := range ov.Attachments {
					v.Instance = aws.ToString(a.InstanceId)
				}
			}
			t.volumes = append(t.volumes, v)
		}
		return t, nil
	default:
		return nil, fmt.Errorf("%w: instance, pod: one is required (hint: --instance i-... or --pod namespace/name)", action.ErrBadInput)
	}
}

// ErrNoEBSVolumes is wrapped (with action.ErrBadInput) when a pod has no
// PersistentVolume backed by EBS: there is nothing to snapshot, and saying
// so beats an empty success that reads as "snapshotted".
var ErrNoEBSVolumes = errors.New("no EBS volumes")

// podEBSVolumes lists the EBS volume IDs behind a pod's PersistentVolumes:
// the EBS CSI driver's volumeHandle, or the in-tree awsElasticBlockStore's
// volumeID (aws://zone/vol-... or vol-...).
func podEBSVolumes(ctx context.Context, kc kubernetes.Interface, ref string) ([]string, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("%w: pod: %q (hint: namespace/name)", action.ErrBadInput, ref)
	}
	if kc == nil {
		return nil, fmt.Errorf("collect.ebs-snapshot: pod: no Kubernetes client")
	}
	p, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("%w: pod: %s not found (hint: check the namespace and name)", action.ErrBadInput, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("get pod %s: %w", ref, err)
	}
	seen := map[string]bool{}
	var ids []string
	for _, v := range p.Spec.Volumes {
		var pvName string
		switch {
		case v.PersistentVolumeClaim != nil:
			pvc, err := kc.CoreV1().PersistentVolumeClaims(ns).Get(ctx, v.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("get claim %s/%s of pod %s: %w", ns, v.PersistentVolumeClaim.ClaimName, ref, err)
			}
			pvName = pvc.Spec.VolumeName
		case v.AWSElasticBlockStore != nil: // in-tree volumes still exist in old pods
			ids = appendVolume(ids, seen, v.AWSElasticBlockStore.VolumeID)
			continue
		}
		if pvName == "" {
			continue
		}
		pv, err := kc.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get persistent volume %s of pod %s: %w", pvName, ref, err)
		}
		switch src := pv.Spec.PersistentVolumeSource; {
		case src.CSI != nil && src.CSI.Driver == "ebs.csi.aws.com":
			ids = appendVolume(ids, seen, src.CSI.VolumeHandle)
		case src.AWSElasticBlockStore != nil: // in-tree PVs (migrated to CSI or not) keep this source
			ids = appendVolume(ids, seen, src.AWSElasticBlockStore.VolumeID)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: pod: %s: %w: none of its volumes is a PersistentVolume on EBS (hint: snapshot the node's instance to keep its root and data volumes)", action.ErrBadInput, ref, ErrNoEBSVolumes)
	}
	return ids, nil
}

// noVolumesAllowed reports a pod without EBS volumes that the call accepts
// (allow-no-volumes): nothing to snapshot, said as a warning.
func noVolumesAllowed(call action.Call, err error) bool {
	return errors.Is(err, ErrNoEBSVolumes) && call.Bool("allow-no-volumes")
}

func noVolumesWarning(call action.Call) string {
	return "pod " + call.String("pod") + " has no PersistentVolume on EBS: no snapshot taken (its node's instance holds its other data: collect.ebs-snapshot with instance)"
}

// appendVolume adds an EBS volume ID, taken from the last part of the
// in-tree form aws://zone/vol-....
func appendVolume(ids []string, seen map[string]bool, raw string) []string {
	id := raw[strings.LastIndex(raw, "/")+1:]
	if id == "" || seen[id] {
		return ids
	}
	seen[id] = true
	return append(ids, id)
}

// tags are those of every snapshot the call makes, without the volume's.
func (t *snapTarget) tags(env *action.Env, step string) map[string]string {
	m := map[string]string{SnapshotIncidentTag: env.Incident, SnapshotStepTag: step}
	if t.instance != "" {
		m[SnapshotInstanceTag] = t.instance
	}
	if t.pod != "" {
		m[SnapshotPodTag] = t.pod
	}
	return m
}

// existing finds the snapshots this incident's step already took, by
// source volume: a resumed run takes only the missing ones. Copies carry
// copy-of and are not sources.
func existing(ctx context.Context, e snapshotEC2, env *action.Env, step string, vols []snapVolume) (map[string]ec2types.Snapshot, map[string]ec2types.Snapshot, error) {
	ids := make([]string, 0, len(vols))
	for _, v := range vols {
		ids = append(ids, v.ID)
	}
	in := &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + SnapshotIncidentTag), Values: []string{env.Incident}},
		{Name: aws.String("tag:" + SnapshotStepTag), Values: []string{step}},
	}}
	src, copies := map[string]ec2types.Snapshot{}, map[string]ec2types.Snapshot{}
	p := ec2.NewDescribeSnapshotsPaginator(e, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("find the snapshots of step %s: %w", step, err)
		}
		for _, s := range out.Snapshots {
			tags := awstarget.TagMap(s.Tags)
			if orig, ok := tags[SnapshotCopyOfTag]; ok {
				copies[orig] = s
				continue
			}
			vol := aws.ToString(s.VolumeId)
			if v, ok := tags[SnapshotVolumeTag]; ok {
				vol = v
			}
			if s.State == ec2types.SnapshotStateError {
				continue // a failed snapshot is no snapshot: take it again
			}
			if prev, ok := src[vol]; !ok || aws.ToTime(s.StartTime).Before(aws.ToTime(prev.StartTime)) {
				src[vol] = s
			}
		}
	}
	for vol := range src {
		if !slices.Contains(ids, vol) {
			delete(src, vol)
		}
	}
	return src, copies, nil
}

// Plan implements action.Action.
func (EBSSnapshot) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	var p action.Plan
	if _, _, err := snapshotParams(call); err != nil {
		return p, err
	}
	e := snapshotClient(env)
	t, err := resolveSnapTarget(ctx, env, e, call)
	if noVolumesAllowed(call, err) {
		return action.Plan{Done: true, Warnings: []string{noVolumesWarning(call)}}, nil
	}
	if err != nil {
		return p, err
	}
	have, copies, err := existing(ctx, e, env, call.Step, t.volumes)
	if err != nil {
		return p, err
	}
	var missing []string
	for _, v := range t.volumes {
		if s, ok := have[v.ID]; ok {
			p.Warnings = append(p.Warnings, fmt.Sprintf("volume %s: snapshot %s of this step exists (%s): it is reused", v.ID, aws.ToString(s.SnapshotId), s.State))
			continue
		}
		missing = append(missing, v.ID)
	}
	for _, id := range missing {
		verb := "ec2:CreateSnapshot"
		if t.instance != "" {
			verb = "ec2:CreateSnapshots (instance " + t.instance + ")"
		}
		p.Changes = append(p.Changes, action.Change{Verb: "create", Object: "snapshot of volume " + id, Detail: verb + ", tagged with the incident and step"})
	}
	for _, v := range t.volumes {
		if acct := call.String("share-with-account"); acct != "" {
			p.Changes = append(p.Changes, action.Change{Verb: "share", Object: "snapshot of volume " + v.ID, Detail: "create-volume permission for account " + acct})
		}
		if key := call.String("copy-kms-key"); key != "" {
			if s, ok := have[v.ID]; ok && copies[aws.ToString(s.SnapshotId)].SnapshotId != nil {
				continue
			}
			p.Changes = append(p.Changes, action.Change{Verb: "copy", Object: "snapshot of volume " + v.ID, Detail: "encrypted with KMS key " + key})
		}
		if v.Encrypted && call.String("share-with-account") != "" {
			p.Warnings = append(p.Warnings, "volume "+v.ID+" is encrypted: the forensic account also needs use of its KMS key (an AWS-managed key cannot be shared: use copy-kms-key)")
		}
	}
	p.Changes = append(p.Changes, action.Change{Verb: "collect", Object: "aws/snapshots/<snapshot-id>.json", Detail: fmt.Sprintf("a descriptor for each of %d snapshot(s)", len(t.volumes))})
	p.Done = len(missing) == 0 && call.String("share-with-account") == "" && call.String("copy-kms-key") == ""
	p.Warnings = append(p.Warnings, "EBS snapshots are crash-consistent, not application-consistent: writes in the guest's page cache are not in them")

	// DryRun answers "may I?" for the creating call without creating.
	if t.instance != "" {
		_, err = e.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{DryRun: aws.Bool(true), InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: aws.String(t.instance)},
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: awstarget.Tags(t.tags(env, call.Step))}}})
		p.Checks = append(p.Checks, snapDryRunCheck("ec2:CreateSnapshots", err))
	} else {
		_, err = e.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{DryRun: aws.Bool(true), VolumeId: aws.String(t.volumes[0].ID),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: awstarget.Tags(t.tags(env, call.Step))}}})
		p.Checks = append(p.Checks, snapDryRunCheck("ec2:CreateSnapshot", err))
	}
	return p, nil
}

func snapDryRunCheck(perm string, err error) action.PermissionCheck {
	switch code := awstarget.ErrorCode(err); {
	case code == "DryRunOperation":
		return action.PermissionCheck{Permission: perm, Allowed: true}
	case code == "UnauthorizedOperation" || code == "AccessDenied":
		return action.PermissionCheck{Permission: perm, Allowed: false, Reason: code}
	case err == nil:
		return action.PermissionCheck{Permission: perm, Allowed: true, Reason: "the endpoint ignored DryRun"}
	default:
		return action.PermissionCheck{Permission: perm, Allowed: false, Reason: fmt.Sprintf("dry run failed: %v", err)}
	}
}

// Run implements action.Action.
func (EBSSnapshot) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	wait, timeout, err := snapshotParams(call)
	if err != nil {
		return action.Result{}, err
	}
	e := snapshotClient(env)
	t, err := resolveSnapTarget(ctx, env, e, call)
	if noVolumesAllowed(call, err) {
		return action.Result{Warnings: []string{noVolumesWarning(call)}, Outputs: map[string]any{
			"snapshots": []string{}, "copies": []string{}, "collected": []string{}, "missing": []string{}, "complete": true}}, nil
	}
	if err != nil {
		return action.Result{}, err
	}
	have, copies, err := existing(ctx, e, env, call.Step, t.volumes)
	if err != nil {
		return action.Result{}, err
	}
	var warnings []string
	if err := createMissing(ctx, e, env, call.Step, t, have); err != nil {
		return action.Result{}, err
	}
	// moto, and EC2 in some answers, omits State: read everything back.
	ids := make([]string, 0, len(t.volumes))
	for _, v := range t.volumes {
		ids = append(ids, aws.ToString(have[v.ID].SnapshotId))
	}
	if wait {
		if err := waitSnapshots(ctx, e, env, call.Step, ids, timeout); err != nil {
			return action.Result{}, err
		}
	}
	snaps, err := describeSnapshots(ctx, e, ids)
	if err != nil {
		return action.Result{}, err
	}
	copyIDs := map[string]string{}
	if key := call.String("copy-kms-key"); key != "" {
		var created []string
		for _, id := range ids {
			if c, ok := copies[id]; ok {
				copyIDs[id] = aws.ToString(c.SnapshotId)
				continue
			}
			// The copy keeps eksir's tags only: the IAM policy lets the
			// action tag with eksir.io/ keys alone.
			tags := map[string]string{SnapshotCopyOfTag: id}
			for k, v := range awstarget.TagMap(snaps[id].Tags) {
				if strings.HasPrefix(k, naming.Domain+"/") && k != SnapshotCopyOfTag {
					tags[k] = v
				}
			}
			out, err := e.CopySnapshot(ctx, &ec2.CopySnapshotInput{SourceSnapshotId: aws.String(id), SourceRegion: aws.String(env.AWS.Region), Encrypted: aws.Bool(true), KmsKeyId: aws.String(key),
				Description:       aws.String("eksir " + env.Incident + " " + call.Step + ": copy of " + id),
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: awstarget.Tags(tags)}}})
			if err != nil {
				return action.Result{}, fmt.Errorf("copy snapshot %s with KMS key %s: %w", id, key, err)
			}
			copyIDs[id] = aws.ToString(out.SnapshotId)
			created = append(created, aws.ToString(out.SnapshotId))
		}
		if len(created) > 0 {
			if err := waitSnapshots(ctx, e, env, call.Step, created, timeout); err != nil {
				return action.Result{}, err
			}
		}
		cs, err := describeSnapshots(ctx, e, sortedValues(copyIDs))
		if err != nil {
			return action.Result{}, err
		}
		for k, v := range cs {
			snaps[k] = v
		}
	}
	// Copies are shared too: a copy under the forensic key is the one
	// the forensic account can use when the source's key is AWS-managed.
	if acct := call.String("share-with-account"); acct != "" {
		for _, id := range append(append([]string{}, ids...), sortedValues(copyIDs)...) {
			// The OperationType+UserIds form: EC2 takes it as well as the
			// CreateVolumePermission one, and moto takes only it. Adding a
			// permission that is there already changes nothing.
			if _, err := e.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{SnapshotId: aws.String(id), Attribute: ec2types.SnapshotAttributeNameCreateVolumePermission,
				OperationType: ec2types.OperationTypeAdd, UserIds: []string{acct}}); err != nil {
				return action.Result{}, fmt.Errorf("share snapshot %s with account %s: %w", id, acct, err)
			}
		}
	}
	s := newStore(env)
	for _, id := range append(append([]string{}, ids...), sortedValues(copyIDs)...) {
		sn := snaps[id]
		if !wait && sn.State != ec2types.SnapshotStateCompleted {
			warnings = append(warnings, "snapshot "+id+" is "+string(sn.State)+": its descriptor records it so; EBS completes it in the background")
		}
		if err := s.json(ctx, "aws/snapshots/"+id+".json", evidence.ItemInfo{Source: evidence.Source{Cluster: env.Cluster, Instance: awstarget.TagMap(sn.Tags)[SnapshotInstanceTag],
			Region: env.AWS.Region, ARN: "arn:aws:ec2:" + env.AWS.Region + "::snapshot/" + id, Namespace: podNS(t.pod), Pod: podName(t.pod)}, Method: "ec2:DescribeSnapshots"},
			describe(env, sn)); err != nil {
			return action.Result{}, err
		}
	}
	return s.result(map[string]any{"snapshots": ids, "copies": sortedValues(copyIDs)}, warnings), nil
}

func podNS(ref string) string   { ns, _, _ := strings.Cut(ref, "/"); return ns }
func podName(ref string) string { _, n, _ := strings.Cut(ref, "/"); return n }

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// createMissing takes the snapshots not found, filling have. An instance's
// volumes are taken in one CreateSnapshots call, so they share one point
// in time; if only some are missing after a crash, they are taken one by
// one (with CreateSnapshots they would duplicate the others).
func createMissing(ctx context.Context, e snapshotEC2, env *action.Env, step string, t *snapTarget, have map[string]ec2types.Snapshot) error {
	var missing []snapVolume
	for _, v := range t.volumes {
		s, ok := have[v.ID]
		if !ok {
			missing = append(missing, v)
			continue
		}
		// A crash between CreateSnapshots and its tagging left this one
		// without its source volume tag: finish that.
		if _, tagged := awstarget.TagMap(s.Tags)[SnapshotVolumeTag]; !tagged {
			if _, err := e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{aws.ToString(s.SnapshotId)}, Tags: awstarget.Tags(map[string]string{SnapshotVolumeTag: v.ID})}); err != nil {
				return fmt.Errorf("tag snapshot %s with its volume %s: %w", aws.ToString(s.SnapshotId), v.ID, err)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	base := t.tags(env, step)
	if t.instance != "" && len(missing) == len(t.volumes) {
		out, err := e.CreateSnapshots(ctx, &ec2.CreateSnapshotsInput{InstanceSpecification: &ec2types.InstanceSpecification{InstanceId: aws.String(t.instance)},
			Description:       aws.String("eksir " + env.Incident + " " + step + ": instance " + t.instance),
			TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: awstarget.Tags(base)}}})
		if err != nil {
			return fmt.Errorf("snapshot the volumes of %s: %w", t.instance, err)
		}
		// One call tags every snapshot alike: the source volume is added
		// to each afterwards. A crash before that is harmless, since a
		// snapshot's VolumeId names its source too.
		for _, si := range out.Snapshots {
			vol, id := aws.ToString(si.VolumeId), aws.ToString(si.SnapshotId)
			if _, err := e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: awstarget.Tags(map[string]string{SnapshotVolumeTag: vol})}); err != nil {
				return fmt.Errorf("tag snapshot %s with its volume %s: %w", id, vol, err)
			}
			have[vol] = ec2types.Snapshot{SnapshotId: si.SnapshotId, VolumeId: si.VolumeId}
		}
		for _, v := range t.volumes {
			if _, ok := have[v.ID]; !ok {
				return fmt.Errorf("snapshot the volumes of %s: EC2 returned no snapshot of %s", t.instance, v.ID)
			}
		}
		return nil
	}
	var g errgroup.Group
	g.SetLimit(snapshotConcurrency)
	results := make([]ec2types.Snapshot, len(missing))
	for i, v := range missing {
		g.Go(func() error {
			tags := maps.Clone(base)
			tags[SnapshotVolumeTag] = v.ID
			if v.Instance != "" {
				tags[SnapshotInstanceTag] = v.Instance
			}
			out, err := e.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: aws.String(v.ID),
				Description:       aws.String("eksir " + env.Incident + " " + step + ": volume " + v.ID),
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSnapshot, Tags: awstarget.Tags(tags)}}})
			if err != nil {
				return fmt.Errorf("snapshot volume %s: %w", v.ID, err)
			}
			results[i] = ec2types.Snapshot{SnapshotId: out.SnapshotId, VolumeId: aws.String(v.ID)}
			return nil
		})
	}
	err := g.Wait()
	for i, v := range missing {
		if results[i].SnapshotId != nil {
			have[v.ID] = results[i]
		}
	}
	return err
}

// waitSnapshots waits with the SDK's waiter, reporting the mean percent
// done from each DescribeSnapshots answer through env.Progress.
func waitSnapshots(ctx context.Context, e snapshotEC2, env *action.Env, step string, ids []string, timeout time.Duration) error {
	w := ec2.NewSnapshotCompletedWaiter(e, func(o *ec2.SnapshotCompletedWaiterOptions) {
		next := o.Retryable
		o.Retryable = func(ctx context.Context, in *ec2.DescribeSnapshotsInput, out *ec2.DescribeSnapshotsOutput, err error) (bool, error) {
			if out != nil {
				var sum int64
				for _, s := range out.Snapshots {
					sum += percent(s)
				}
				if n := int64(len(out.Snapshots)); n > 0 {
					env.ReportProgress(step, fmt.Sprintf("%d snapshot(s)", n), sum/n, 100)
				}
			}
			return next(ctx, in, out, err)
		}
	})
	if err := w.Wait(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids}, timeout); err != nil {
		return fmt.Errorf("wait for snapshots %s: %w", strings.Join(ids, ", "), err)
	}
	return nil
}

// percent reads EBS's "NN%" progress; a completed snapshot is 100.
func percent(s ec2types.Snapshot) int64 {
	if s.State == ec2types.SnapshotStateCompleted {
		return 100
	}
	var n int64
	_, _ = fmt.Sscanf(strings.TrimSuffix(aws.ToString(s.Progress), "%"), "%d", &n)
	return n
}

func describeSnapshots(ctx context.Context, e snapshotEC2, ids []string) (map[string]ec2types.Snapshot, error) {
	out := map[string]ec2types.Snapshot{}
	if len(ids) == 0 {
		return out, nil
	}
	res, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: ids})
	if err != nil {
		return nil, fmt.Errorf("read back snapshots %s: %w", strings.Join(ids, ", "), err)
	}
	for _, s := range res.Snapshots {
		out[aws.ToString(s.SnapshotId)] = s
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("read back snapshot %s: not found", id)
		}
	}
	return out, nil
}

// SnapshotDescriptor is the evidence item aws/snapshots/<id>.json: what a
// lab needs to find, trust and restore the snapshot.
type SnapshotDescriptor struct {
	Snapshot    string            `json:"snapshot"`
	Volume      string            `json:"volume"`
	CopyOf      string            `json:"copy_of,omitempty"`
	Account     string            `json:"account"`
	Region      string            `json:"region"`
	State       string            `json:"state"`
	Progress    string            `json:"progress,omitempty"`
	Start       *time.Time        `json:"start,omitempty"`
	Completion  *time.Time        `json:"completion,omitempty"`
	SizeGiB     int32             `json:"size_gib"`
	Encrypted   bool              `json:"encrypted"`
	KMSKey      string            `json:"kms_key,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags"`
}

func describe(env *action.Env, s ec2types.Snapshot) SnapshotDescriptor {
	tags := awstarget.TagMap(s.Tags)
	d := SnapshotDescriptor{Snapshot: aws.ToString(s.SnapshotId), Volume: aws.ToString(s.VolumeId), CopyOf: tags[SnapshotCopyOfTag], Account: aws.ToString(s.OwnerId),
		Region: env.AWS.Region, State: string(s.State), Progress: aws.ToString(s.Progress), Start: s.StartTime, Completion: s.CompletionTime,
		SizeGiB: aws.ToInt32(s.VolumeSize), Encrypted: aws.ToBool(s.Encrypted), KMSKey: aws.ToString(s.KmsKeyId), Description: aws.ToString(s.Description), Tags: tags}
	if v := tags[SnapshotVolumeTag]; v != "" && d.CopyOf == "" {
		d.Volume = v
	}
	return d
}
