package isolate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/naming"
)

// InstanceProtect is isolate.instance-protect.
type InstanceProtect struct{}

// ASG modes of isolate.instance-protect.
const (
	ASGProtect = "protect"
	ASGDetach  = "detach"
	ASGNone    = "none"
)

// protectPrefix + hash(incident) is the tag holding what the instance (or
// volume) was before the incident protected it; the instance's ".asg"
// companion names the Auto Scaling group it belonged to.
const protectPrefix = naming.Domain + "/protect-"

func protectKey(incident string) string { return protectPrefix + naming.ShortHash(incident, 10) }

// protectRecord is the instance's original state.
type protectRecord struct {
	Termination bool   `json:"termination"`
	Stop        bool   `json:"stop"`
	ASG         string `json:"asg,omitempty"`
	ScaleIn     bool   `json:"scaleIn,omitempty"`
	Mode        string `json:"mode"`
}

// tag encodes the record as tag values; the ASG name gets a tag of its
// own, since it may use most of a tag value by itself.
func (r protectRecord) tags(key string) map[string]string {
	t := map[string]string{key: fmt.Sprintf("termination=%t,stop=%t,scale-in=%t,mode=%s", r.Termination, r.Stop, r.ScaleIn, r.Mode)}
	if r.ASG != "" {
		t[key+".asg"] = r.ASG
	}
	return t
}

func parseProtect(tags map[string]string, key string) (protectRecord, bool) {
	v, ok := tags[key]
	if !ok {
		return protectRecord{}, false
	}
	f := tagFields(v)
	r := protectRecord{Mode: f["mode"], ASG: tags[key+".asg"]}
	r.Termination, _ = strconv.ParseBool(f["termination"])
	r.Stop, _ = strconv.ParseBool(f["stop"])
	r.ScaleIn, _ = strconv.ParseBool(f["scale-in"])
	return r, true
}

func tagFields(v string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		out[k] = val
	}
	return out
}

// volumeOriginal reads a volume's recorded DeleteOnTermination.
func volumeOriginal(tags map[string]string, key string) (bool, bool) {
	v, ok := tags[key]
	if !ok {
		return false, false
	}
	b, _ := strconv.ParseBool(tagFields(v)["delete-on-termination"])
	return b, true
}

// ProtectUndo is the Undo record of isolate.instance-protect; the same
// facts are in the instance's and volumes' tags.
type ProtectUndo struct {
	Instance string          `json:"instance"`
	Original protectRecord   `json:"original"`
	Volumes  map[string]bool `json:"volumes,omitempty"`
}

// Spec implements action.Action.
func (InstanceProtect) Spec() action.Spec {
	inst := "arn:aws:ec2:*:*:instance/*"
	return action.Spec{
		Name: "isolate.instance-protect",
		Doc: "Keep an EC2 instance and its disks: termination and stop protection, DeleteOnTermination=false on every attached EBS volume, incident tags, " +
			"and for an Auto Scaling group member scale-in protection or a detach that keeps the desired capacity. Originals are kept in tags for release.",
		Kind: action.Contain,
		// It keeps state (the instance, its disks, its memory) and changes
		// nothing on the node: it belongs before the volatile capture.
		Preserves: true,
		Needs:     []action.Cloud{action.AWS},
		Params: []action.Param{
			{Name: "instance", Type: action.Instance, Required: true, Doc: "the EC2 instance to protect"},
			{Name: "asg", Type: action.String, Default: ASGProtect, Enum: []string{ASGProtect, ASGDetach, ASGNone},
				Doc: "Auto Scaling group member: protect from scale-in, detach (the group launches a replacement, desired capacity unchanged) or leave it"},
		},
		Outputs: []string{"spot", "asg", "volumes"},
		Permissions: action.Permissions{IAM: []action.IAMPermission{
			{Actions: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeVolumes", "ec2:DescribeNetworkInterfaces", "ec2:DescribeIamInstanceProfileAssociations", "autoscaling:DescribeAutoScalingInstances"}},
			{Actions: []string{"ec2:ModifyInstanceAttribute"}, Resources: []string{inst}},
			{Actions: []string{"ec2:CreateTags", "ec2:DeleteTags"}, Resources: []string{inst, "arn:aws:ec2:*:*:volume/*"},
				Conditions: map[string]map[string][]string{"ForAllValues:StringLike": {"aws:TagKeys": {naming.Domain + "/*"}}}},
			{Actions: []string{"autoscaling:SetInstanceProtection", "autoscaling:DetachInstances", "autoscaling:AttachInstances"}, Resources: []string{"arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*"}},
		}},
		Reversible: true,
		Notes:      instanceProtectNotes,
	}
}

// flags reads termination and stop protection.
func flags(ctx context.Context, e ec2API, id string) (term, stop bool, err error) {
	t, err := e.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameDisableApiTermination})
	if err != nil {
		return false, false, fmt.Errorf("read termination protection of %s: %w", id, err)
	}
	s, err := e.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameDisableApiStop})
	if err != nil {
		return false, false, fmt.Errorf("read stop protection of %s: %w", id, err)
	}
	if t.DisableApiTermination != nil {
		term = aws.ToBool(t.DisableApiTermination.Value)
	}
	if s.DisableApiStop != nil {
		stop = aws.ToBool(s.DisableApiStop.Value)
	}
	return term, stop, nil
}

func asgMode(call action.Call) (string, error) {
	switch m := call.String("asg"); m {
	case "":
		return ASGProtect, nil
	case ASGProtect, ASGDetach, ASGNone:
		return m, nil
	default:
		return "", fmt.Errorf("%w: asg: %q (hint: protect, detach or none)", action.ErrBadInput, m)
	}
}

// original is the record this incident keeps: its own if written, else a
// copy of another incident's (the true originals), else the state now.
func originalProtect(inst *awstarget.Instance, key string, term, stop bool, mode string) (protectRecord, bool) {
	if r, ok := parseProtect(inst.Tags, key); ok {
		return r, true
	}
	if others := otherBases(inst.Tags, protectPrefix, key); len(others) > 0 {
		r, _ := parseProtect(inst.Tags, others[0])
		r.Mode = mode
		return r, false
	}
	return protectRecord{Termination: term, Stop: stop, ASG: inst.ASG, ScaleIn: inst.ScaleInProtected, Mode: mode}, false
}

// Plan implements action.Action.
func (a InstanceProtect) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	var p action.Plan
	e, g := awsClients(env)
	mode, err := asgMode(call)
	if err != nil {
		return p, err
	}
	inst, err := resolveInstance(ctx, e, g, call)
	if err != nil {
		return p, err
	}
	term, stop, err := flags(ctx, e, inst.ID)
	if err != nil {
		return p, err
	}
	key := protectKey(env.Incident)
	obj := "instance " + inst.ID
	if _, ok := inst.Tags[key]; !ok {
		p.Changes = append(p.Changes, action.Change{Verb: "tag", Object: obj, Detail: "incident tag and original protection (" + key + ")"})
	}
	if others := otherBases(inst.Tags, protectPrefix, key); len(others) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s is already protected by another incident (%s): this incident's release leaves the protection in place while that one holds it", obj, strings.Join(others, ", ")))
	}
	if inst.Lifecycle == "spot" {
		p.Warnings = append(p.Warnings, "instance "+inst.ID+" is a Spot Instance: EC2 does not allow termination protection on Spot Instances and AWS may reclaim it at any time (two-minute notice); collect volatile evidence and snapshot its volumes first")
	} else if !term {
		p.Changes = append(p.Changes, action.Change{Verb: "modify", Object: obj, Detail: "DisableApiTermination=true"})
	}
	if !stop {
		p.Changes = append(p.Changes, action.Change{Verb: "modify", Object: obj, Detail: "DisableApiStop=true"})
	}
	for _, v := range inst.Volumes {
		if v.DeleteOnTermination {
			p.Changes = append(p.Changes, action.Change{Verb: "modify", Object: obj, Detail: "volume " + v.ID + " (" + v.Device + ") DeleteOnTermination=false"})
		}
		if _, ok := volumeTagged(ctx, e, v.ID, key); !ok {
			p.Changes = append(p.Changes, action.Change{Verb: "tag", Object: "volume " + v.ID, Detail: "incident tag and original DeleteOnTermination"})
		}
	}
	switch {
	case inst.ASG == "" || mode == ASGNone:
	case mode == ASGProtect && !inst.ScaleInProtected:
		p.Changes = append(p.Changes, action.Change{Verb: "protect", Object: "autoscaling-group " + inst.ASG, Detail: "ProtectedFromScaleIn for " + inst.ID})
		p.Warnings = append(p.Warnings, "scale-in protection does not stop "+inst.ASG+" from replacing "+inst.ID+" if its health checks fail (an isolated node may fail them): asg=detach avoids that")
	case mode == ASGDetach:
		p.Changes = append(p.Changes, action.Change{Verb: "detach", Object: "autoscaling-group " + inst.ASG, Detail: inst.ID + ", desired capacity unchanged"})
		p.Warnings = append(p.Warnings, "detach: "+inst.ASG+" launches a replacement instance (desired capacity is kept); release attaches "+inst.ID+" again, which raises the desired capacity by one")
	}
	p.Done = len(p.Changes) == 0

	_, err = e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{DryRun: aws.Bool(true), InstanceId: aws.String(inst.ID), DisableApiStop: &ec2types.AttributeBooleanValue{Value: aws.Bool(true)}})
	p.Checks = append(p.Checks, dryRunCheck("ec2:ModifyInstanceAttribute", err))
	_, err = e.CreateTags(ctx, &ec2.CreateTagsInput{DryRun: aws.Bool(true), Resources: []string{inst.ID}, Tags: awstarget.Tags(map[string]string{incidentTag(env.Incident): env.Incident})})
	p.Checks = append(p.Checks, dryRunCheck("ec2:CreateTags", err))
	return p, nil
}

// volumeTagged returns a volume's tags and whether it has key.
func volumeTagged(ctx context.Context, e ec2API, id, key string) (map[string]string, bool) {
	out, err := e.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
	if err != nil || len(out.Volumes) == 0 {
		return nil, false
	}
	t := awstarget.TagMap(out.Volumes[0].Tags)
	_, ok := t[key]
	return t, ok
}

// Run implements action.Action.
func (a InstanceProtect) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	var res action.Result
	e, g := awsClients(env)
	mode, err := asgMode(call)
	if err != nil {
		return res, err
	}
	inst, err := resolveInstance(ctx, e, g, call)
	if err != nil {
		return res, err
	}
	term, stop, err := flags(ctx, e, inst.ID)
	if err != nil {
		return res, err
	}
	key := protectKey(env.Incident)
	rec, had := originalProtect(inst, key, term, stop, mode)
	if !had {
		t := rec.tags(key)
		t[incidentTag(env.Incident)] = env.Incident
		if _, err := e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{inst.ID}, Tags: awstarget.Tags(t)}); err != nil {
			return res, fmt.Errorf("record the original protection of %s: %w", inst.ID, err)
		}
	}
	u := ProtectUndo{Instance: inst.ID, Original: rec, Volumes: map[string]bool{}}
	var dot []ec2types.InstanceBlockDeviceMappingSpecification
	for _, v := range inst.Volumes {
		orig, err := recordVolume(ctx, e, v, key, env.Incident)
		if err != nil {
			return res, err
		}
		u.Volumes[v.ID] = orig
		if v.DeleteOnTermination {
			dot = append(dot, ec2types.InstanceBlockDeviceMappingSpecification{DeviceName: aws.String(v.Device), Ebs: &ec2types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(false)}})
		}
	}

	spot := inst.Lifecycle == "spot"
	if spot {
		res.Warnings = append(res.Warnings, "instance "+inst.ID+" is a Spot Instance: termination protection is not possible (AWS may reclaim it at any time); the rest of the protection is in place")
	} else if !term {
		if err := setFlag(ctx, e, inst.ID, ec2types.InstanceAttributeNameDisableApiTermination, true); err != nil {
			return res, err
		}
	}
	if !stop {
		err := setFlag(ctx, e, inst.ID, ec2types.InstanceAttributeNameDisableApiStop, true)
		switch {
		case err != nil && spot && awstarget.ErrorCode(err) != "":
			// EC2 may refuse stop protection on Spot too; the rest still
			// matters more than this flag.
			res.Warnings = append(res.Warnings, "stop protection refused for the Spot Instance: "+awstarget.ErrorCode(err))
		case err != nil:
			return res, err
		}
	}
	if len(dot) > 0 {
		if _, err := e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(inst.ID), BlockDeviceMappings: dot}); err != nil {
			return res, fmt.Errorf("keep the volumes of %s on termination: %w", inst.ID, err)
		}
	}
	if inst.ASG != "" {
		switch rec.Mode {
		case ASGProtect:
			if !inst.ScaleInProtected {
				if _, err := g.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(inst.ASG), InstanceIds: []string{inst.ID}, ProtectedFromScaleIn: aws.Bool(true)}); err != nil {
					return res, fmt.Errorf("protect %s from scale-in in %s: %w", inst.ID, inst.ASG, err)
				}
			}
		case ASGDetach:
			if _, err := g.DetachInstances(ctx, &autoscaling.DetachInstancesInput{AutoScalingGroupName: aws.String(inst.ASG), InstanceIds: []string{inst.ID}, ShouldDecrementDesiredCapacity: aws.Bool(false)}); err != nil {
				return res, fmt.Errorf("detach %s from %s: %w", inst.ID, inst.ASG, err)
			}
		}
	}
	vols := make([]string, 0, len(inst.Volumes))
	for _, v := range inst.Volumes {
		vols = append(vols, v.ID)
	}
	res.Outputs = map[string]any{"spot": spot, "asg": rec.ASG, "volumes": vols}
	res.Undo, err = json.Marshal(u)
	return res, err
}

func setFlag(ctx context.Context, e ec2API, id string, attr ec2types.InstanceAttributeName, v bool) error {
	in := &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id)}
	b := &ec2types.AttributeBooleanValue{Value: aws.Bool(v)}
	if attr == ec2types.InstanceAttributeNameDisableApiTermination {
		in.DisableApiTermination = b
	} else {
		in.DisableApiStop = b
	}
	if _, err := e.ModifyInstanceAttribute(ctx, in); err != nil {
		return fmt.Errorf("set %s=%t on %s: %w", attr, v, id, err)
	}
	return nil
}

// recordVolume tags a volume with the incident and its original
// DeleteOnTermination, once.
func recordVolume(ctx context.Context, e ec2API, v awstarget.Volume, key, incident string) (bool, error) {
	tags, _ := volumeTagged(ctx, e, v.ID, key)
	if orig, ok := volumeOriginal(tags, key); ok {
		return orig, nil
	}
	orig := v.DeleteOnTermination
	if others := otherBases(tags, protectPrefix, key); len(others) > 0 {
		orig, _ = volumeOriginal(tags, others[0])
	}
	t := map[string]string{key: "delete-on-termination=" + strconv.FormatBool(orig), incidentTag(incident): incident}
	if _, err := e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{v.ID}, Tags: awstarget.Tags(t)}); err != nil {
		return false, fmt.Errorf("record the original DeleteOnTermination of %s: %w", v.ID, err)
	}
	return orig, nil
}

// Undo implements action.Reverser.
func (a InstanceProtect) Undo(ctx context.Context, env *action.Env, call action.Call, undo json.RawMessage) ([]action.Restored, error) {
	e, g := awsClients(env)
	inst, err := resolveInstance(ctx, e, g, call)
	if errors.Is(err, action.ErrBadInput) {
		return []action.Restored{{Object: "instance " + call.String("instance"), Outcome: action.OutcomeClean, Detail: "gone"}}, nil
	}
	if err != nil {
		return nil, err
	}
	key := protectKey(env.Incident)
	var report []action.Restored
	obj := action.Restored{Object: "instance " + inst.ID, Outcome: action.OutcomeClean}
	rec, mine := parseProtect(inst.Tags, key)
	others := otherBases(inst.Tags, protectPrefix, key)
	if mine {
		obj.Outcome = action.OutcomeRestored
		if len(others) > 0 {
			obj.Detail = "protection left in place: another incident still holds it (" + strings.Join(others, ", ") + ")"
		} else {
			d, err := restoreProtection(ctx, e, g, inst, rec)
			if err != nil {
				return nil, err
			}
			obj.Detail = d
		}
		if err := dropTags(ctx, e, inst.ID, inst.Tags, key, incidentTag(env.Incident)); err != nil {
			return nil, err
		}
	}
	report = append(report, obj)

	var dot []ec2types.InstanceBlockDeviceMappingSpecification
	var vols []action.Restored
	for _, v := range inst.Volumes {
		tags, _ := volumeTagged(ctx, e, v.ID, key)
		r := action.Restored{Object: "volume " + v.ID, Outcome: action.OutcomeClean}
		orig, ok := volumeOriginal(tags, key)
		if !ok {
			vols = append(vols, r)
			continue
		}
		r.Outcome = action.OutcomeRestored
		switch vo := otherBases(tags, protectPrefix, key); {
		case len(vo) > 0:
			r.Detail = "DeleteOnTermination left false: another incident still holds it (" + strings.Join(vo, ", ") + ")"
		case orig && !v.DeleteOnTermination:
			dot = append(dot, ec2types.InstanceBlockDeviceMappingSpecification{DeviceName: aws.String(v.Device), Ebs: &ec2types.EbsInstanceBlockDeviceSpecification{DeleteOnTermination: aws.Bool(true)}})
			r.Detail = "DeleteOnTermination=true restored"
		default:
			r.Detail = "DeleteOnTermination=" + strconv.FormatBool(v.DeleteOnTermination) + " as found"
		}
		vols = append(vols, r)
		if err := dropTags(ctx, e, v.ID, tags, key, incidentTag(env.Incident)); err != nil {
			return nil, err
		}
	}
	if len(dot) > 0 {
		if _, err := e.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(inst.ID), BlockDeviceMappings: dot}); err != nil {
			return nil, fmt.Errorf("restore DeleteOnTermination on the volumes of %s: %w", inst.ID, err)
		}
	}
	return append(report, vols...), nil
}

// restoreProtection puts the instance's flags and Auto Scaling membership
// back as recorded.
func restoreProtection(ctx context.Context, e ec2API, g asgAPI, inst *awstarget.Instance, rec protectRecord) (string, error) {
	term, stop, err := flags(ctx, e, inst.ID)
	if err != nil {
		return "", err
	}
	if term != rec.Termination {
		if err := setFlag(ctx, e, inst.ID, ec2types.InstanceAttributeNameDisableApiTermination, rec.Termination); err != nil {
			return "", err
		}
	}
	if stop != rec.Stop {
		if err := setFlag(ctx, e, inst.ID, ec2types.InstanceAttributeNameDisableApiStop, rec.Stop); err != nil {
			return "", err
		}
	}
	detail := fmt.Sprintf("DisableApiTermination=%t, DisableApiStop=%t", rec.Termination, rec.Stop)
	if rec.ASG == "" || rec.Mode == ASGNone {
		return detail, nil
	}
	scaleIn := inst.ScaleInProtected
	if inst.ASG == "" && rec.Mode == ASGDetach {
		// AttachInstances raises the desired capacity by one; lowering it
		// again would make the group terminate an instance, maybe this one.
		if _, err := g.AttachInstances(ctx, &autoscaling.AttachInstancesInput{AutoScalingGroupName: aws.String(rec.ASG), InstanceIds: []string{inst.ID}}); err != nil {
			return "", fmt.Errorf("attach %s to %s again: %w", inst.ID, rec.ASG, err)
		}
		detail += "; attached to " + rec.ASG + " again (its desired capacity rose by one)"
		m, err := awstarget.DescribeInstance(ctx, e, g, inst.ID)
		if err != nil {
			return "", err
		}
		scaleIn = m.ScaleInProtected
	} else if inst.ASG != rec.ASG {
		return detail + "; no longer in " + rec.ASG + ": Auto Scaling left as found", nil
	}
	if scaleIn != rec.ScaleIn {
		if _, err := g.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(rec.ASG), InstanceIds: []string{inst.ID}, ProtectedFromScaleIn: aws.Bool(rec.ScaleIn)}); err != nil {
			return "", fmt.Errorf("restore the scale-in protection of %s in %s: %w", inst.ID, rec.ASG, err)
		}
	}
	return detail + fmt.Sprintf("; ProtectedFromScaleIn=%t in %s", rec.ScaleIn, rec.ASG), nil
}

// dropTags removes key, its companions and the incident tag.
func dropTags(ctx context.Context, e ec2API, id string, tags map[string]string, key, incident string) error {
	var del []ec2types.Tag
	for _, k := range tagKeysOf(tags, key) {
		del = append(del, ec2types.Tag{Key: aws.String(k)})
	}
	if _, ok := tags[incident]; ok {
		del = append(del, ec2types.Tag{Key: aws.String(incident)})
	}
	if len(del) == 0 {
		return nil
	}
	if _, err := e.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: del}); err != nil {
		return fmt.Errorf("remove the incident's tags from %s: %w", id, err)
	}
	return nil
}
