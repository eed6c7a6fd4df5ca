package collect

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/awsiam"
	"github.com/eksir/eksir/internal/awstarget"
)

// InstanceMetadata is collect.instance-metadata: what EC2 and IAM know of
// an instance, read once and kept as the API returned it, so later
// containment (which changes groups, tags and the profile) cannot erase
// the state the incident found.
type InstanceMetadata struct{}

// Items of collect.instance-metadata, under aws/instances/<id>/, in the
// order they are collected.
var instanceItems = []string{"instance.json", "volumes.json", "interfaces.json", "security-groups.json",
	"instance-profile.json", "tags.json", "console-output.json", "screenshot.jpg"}

// metaEC2 is the part of EC2 collect.instance-metadata reads.
type metaEC2 interface {
	awstarget.EC2Describer
	DescribeVolumes(ctx context.Context, in *ec2.DescribeVolumesInput, opts ...func(*ec2.Options)) (*ec2.DescribeVolumesOutput, error)
	DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	GetConsoleOutput(ctx context.Context, in *ec2.GetConsoleOutputInput, opts ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
	GetConsoleScreenshot(ctx context.Context, in *ec2.GetConsoleScreenshotInput, opts ...func(*ec2.Options)) (*ec2.GetConsoleScreenshotOutput, error)
}

// metaIAM is the part of IAM collect.instance-metadata reads.
type metaIAM interface {
	GetInstanceProfile(ctx context.Context, in *iam.GetInstanceProfileInput, opts ...func(*iam.Options)) (*iam.GetInstanceProfileOutput, error)
	ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, opts ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	GetPolicy(ctx context.Context, in *iam.GetPolicyInput, opts ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(ctx context.Context, in *iam.GetPolicyVersionInput, opts ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
}

// Spec implements action.Action.
func (InstanceMetadata) Spec() action.Spec {
	return action.Spec{
		Name: "collect.instance-metadata",
		Doc: "Record what EC2 and IAM know of an instance: the instance, its volumes, network interfaces, security groups with their rules, " +
			"instance profile with its role and policies, tags, console output and console screenshot.",
		Kind: action.Collect,
		// Kubernetes only to turn a node or a pod into its instance.
		Needs: []action.Cloud{action.AWS, action.Kubernetes},
		Params: []action.Param{
			{Name: "instance", Type: action.Instance, Doc: "the EC2 instance (give one of instance, node and pod)"},
			{Name: "node", Type: action.Node, Doc: "the node whose EC2 instance to record (its spec.providerID)"},
			{Name: "pod", Type: action.Pod, Doc: "the pod whose node's EC2 instance to record"},
			{Name: "allow-no-instance", Type: action.Bool, Default: false, Doc: "with node or pod: a Fargate node, a node without an EC2 spec.providerID or a pod not scheduled is bad input; " +
				"true records the instance metadata as not collected, with the reason, and makes it a warning (playbooks that run on any pod)"},
		},
		Outputs: captureOutputs("instance"),
		Permissions: action.Permissions{
			IAM: []action.IAMPermission{
				// Describe* cannot be narrowed to a resource.
				{Actions: []string{"ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups", "ec2:DescribeIamInstanceProfileAssociations"}},
				{Actions: []string{"ec2:GetConsoleOutput", "ec2:GetConsoleScreenshot"}, Resources: []string{"arn:aws:ec2:*:*:instance/*"}},
				{Actions: []string{"iam:GetInstanceProfile"}, Resources: []string{"arn:aws:iam::*:instance-profile/*"}},
				{Actions: []string{"iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy"}, Resources: []string{"arn:aws:iam::*:role/*"}},
				{Actions: []string{"iam:GetPolicy", "iam:GetPolicyVersion"}, Resources: []string{"arn:aws:iam::*:policy/*"}},
			},
			Kube: []action.KubeRule{
				{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
				{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
			},
		},
		Notes: instanceMetadataNotes,
	}
}

func instanceBase(id string) string { return "aws/instances/" + id + "/" }

// metaTarget is the instance a call names, or, with allow-no-instance,
// why there is none.
type metaTarget struct {
	instance  string
	node, pod string // the node (and pod) the instance was found from
	// noInstance is why no EC2 instance stands behind the node or pod,
	// recorded as not collected at noInstanceRel; "" when there is one.
	noInstance, noInstanceRel string
}

// noInstanceFile is the item recorded as not collected when a node or pod
// has no EC2 instance: there is no instance ID to file it under.
const noInstanceFile = "instance.json"

// target resolves the call's instance, node or pod into an instance ID.
func (InstanceMetadata) target(ctx context.Context, env *action.Env, call action.Call) (metaTarget, error) {
	id, node, pod := call.String("instance"), call.String("node"), call.String("pod")
	given := 0
	for _, v := range []string{id, node, pod} {
		if v != "" {
			given++
		}
	}
	switch {
	case given > 1:
		return metaTarget{}, fmt.Errorf("%w: instance, node, pod: give one (hint: a pod resolves to its node, a node to its instance; the two may disagree)", action.ErrBadInput)
	case id != "":
		// Given explicitly, the instance must be one: allow-no-instance
		// covers only what a node or pod leads to.
		if !strings.HasPrefix(id, "i-") {
			return metaTarget{}, fmt.Errorf("%w: instance: %q is not an EC2 instance ID (hint: i-0123456789abcdef0)", action.ErrBadInput, id)
		}
		return metaTarget{instance: id}, nil
	case node != "":
		return nodeTarget(ctx, env, call, node, "")
	case pod != "":
		return podTarget(ctx, env, call, pod)
	default:
		return metaTarget{}, fmt.Errorf("%w: instance, node or pod: required (hint: --instance i-..., --node NAME or --pod NAMESPACE/NAME)", action.ErrBadInput)
	}
}

func podTarget(ctx context.Context, env *action.Env, call action.Call, ref string) (metaTarget, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return metaTarget{}, fmt.Errorf("%w: pod: %q (hint: namespace/name)", action.ErrBadInput, ref)
	}
	if env.Kube == nil {
		return metaTarget{}, fmt.Errorf("pod %s: no Kubernetes client to read it", ref)
	}
	p, err := env.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return metaTarget{}, fmt.Errorf("%w: pod: %s not found (hint: check the namespace and name; give the node or instance if the pod is gone)", action.ErrBadInput, ref)
	}
	if err != nil {
		return metaTarget{}, fmt.Errorf("read pod %s: %w", ref, err)
	}
	if p.Spec.NodeName == "" {
		reason := "pod " + ref + " is not scheduled on a node: there is no EC2 instance to describe"
		if !call.Bool("allow-no-instance") {
			return metaTarget{}, noInstanceRefused("pod", reason)
		}
		return metaTarget{pod: ref, noInstance: reason, noInstanceRel: "aws/pods/" + ns + "/" + name + "/" + noInstanceFile}, nil
	}
	return nodeTarget(ctx, env, call, p.Spec.NodeName, ref)
}

// nodeTarget finds the node's instance; pod is the pod it came from, ""
// when the call named the node.
func nodeTarget(ctx context.Context, env *action.Env, call action.Call, node, pod string) (metaTarget, error) {
	field := "node"
	if pod != "" {
		field = "pod"
	}
	if env.Kube == nil {
		return metaTarget{}, fmt.Errorf("node %s: no Kubernetes client to read it", node)
	}
	n, err := env.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		what := node
		if pod != "" {
			what = node + ", the node of pod " + pod + ","
		}
		return metaTarget{}, fmt.Errorf("%w: %s: %s not found (hint: kubectl get nodes; give the instance ID if the node is gone)", action.ErrBadInput, field, what)
	}
	if err != nil {
		return metaTarget{}, fmt.Errorf("read node %s: %w", node, err)
	}
	t := metaTarget{node: node, pod: pod}
	t.instance, err = awstarget.NodeInstance(n)
	switch {
	case err == nil:
		return t, nil
	case !errors.Is(err, awstarget.ErrNoEC2Instance):
		return metaTarget{}, err
	}
	reason := noInstanceReason(n, pod)
	if !call.Bool("allow-no-instance") {
		return metaTarget{}, noInstanceRefused(field, reason)
	}
	t.instance, t.noInstance, t.noInstanceRel = "", reason, "aws/nodes/"+node+"/"+noInstanceFile
	return t, nil
}

// noInstanceRefused is the bad input of a node or pod without an instance
// when the call does not allow it.
func noInstanceRefused(field, reason string) error {
	return fmt.Errorf("%w: %s: %s (hint: allow-no-instance: true records that as not collected, as triage does)", action.ErrBadInput, field, reason)
}

// noInstanceReason says why no EC2 instance stands behind node n (reached
// from pod, "" when the node was named).
func noInstanceReason(n *corev1.Node, pod string) string {
	subject := "node " + n.Name
	if pod != "" {
		subject = "pod " + pod + " runs on " + subject
	}
	pid := n.Spec.ProviderID
	switch {
	case awstarget.IsFargate(n):
		if pod != "" {
			return "pod " + pod + " runs on Fargate node " + n.Name + ": there is no EC2 instance to describe"
		}
		return "node " + n.Name + " runs on Fargate: there is no EC2 instance to describe"
	case pid == "":
		return subject + ", which has no spec.providerID: no EC2 instance is known to describe (give instance if the node is one)"
	default:
		return fmt.Sprintf("%s, whose spec.providerID %q names no EC2 instance (want aws:///<zone>/i-...): there is no EC2 instance to describe", subject, pid)
	}
}

// noInstanceWarning is the step's warning for a target without an
// instance.
func (t metaTarget) noInstanceWarning() string {
	return "instance metadata not collected: " + t.noInstance
}

// Plan implements action.Action: it checks the instance exists and lists
// the items not in the case yet; for a node or pod without an instance
// (allow-no-instance), the not-collected record it would write.
func (a InstanceMetadata) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	var p action.Plan
	t, err := a.target(ctx, env, call)
	if err != nil {
		return p, err
	}
	if t.noInstance != "" {
		p.Warnings = []string{t.noInstanceWarning()}
		if recordedNoInstance(env, t) {
			p.Done = true
			return p, nil
		}
		p.Changes = []action.Change{{Verb: "record", Object: t.noInstanceRel, Detail: "not collected: " + t.noInstance}}
		return p, nil
	}
	if _, err := awstarget.DescribeInstance(ctx, ec2.NewFromConfig(env.AWS), nil, t.instance); err != nil {
		return p, err
	}
	base := instanceBase(t.instance)
	for _, name := range instanceItems {
		if env.Evidence == nil || !env.Evidence.Has(base+name) {
			p.Changes = append(p.Changes, action.Change{Verb: "collect", Object: base + name})
		}
	}
	p.Done = len(p.Changes) == 0
	return p, nil
}

// recordedNoInstance reports whether an earlier run already recorded the
// target's missing instance, so a resumed run does not record it twice.
func recordedNoInstance(env *action.Env, t metaTarget) bool {
	if env.Evidence == nil {
		return false
	}
	it, ok := env.Evidence.Lookup(t.noInstanceRel)
	return ok && it.Status == evidence.StatusNotCollected && it.Reason == t.noInstance
}

// Run implements action.Action. Each item that cannot be read is recorded
// as not collected with the reason; the others are still collected. A node
// or pod without an instance (allow-no-instance) is one not-collected
// record and a warning.
func (a InstanceMetadata) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	t, err := a.target(ctx, env, call)
	if err != nil {
		return action.Result{}, err
	}
	if t.noInstance != "" {
		return recordNoInstance(env, t)
	}
	return collectInstance(ctx, env, ec2.NewFromConfig(env.AWS), iam.NewFromConfig(env.AWS), t.instance, t.node)
}

func recordNoInstance(env *action.Env, t metaTarget) (action.Result, error) {
	s := newStore(env)
	warnings := []string{t.noInstanceWarning()}
	if recordedNoInstance(env, t) {
		// Recorded by an earlier run: the outputs say it again, as that
		// run's did.
		return action.Result{Warnings: warnings, Outputs: map[string]any{"instance": "", "collected": []string{},
			"missing": []string{"data/" + t.noInstanceRel + ": " + t.noInstance}, "complete": false}}, nil
	}
	src := evidence.Source{Cluster: env.Cluster, Node: t.node}
	if ns, name, ok := strings.Cut(t.pod, "/"); ok {
		src.Namespace, src.Pod = ns, name
	}
	info := evidence.ItemInfo{Source: src, Method: "kubernetes: get pod and node (spec.nodeName, spec.providerID, " + awstarget.FargateLabel + ")"}
	if err := s.notCollected(t.noInstanceRel, info, t.noInstance); err != nil {
		return action.Result{}, err
	}
	return s.result(map[string]any{"instance": ""}, warnings), nil
}

func collectInstance(ctx context.Context, env *action.Env, e metaEC2, i metaIAM, id, node string) (action.Result, error) {
	// DescribeInstance gives the errors every instance action gives (bad
	// input for a missing or terminated instance) and the branch
	// interfaces of the trunk, which hang from no instance.
	summary, err := awstarget.DescribeInstance(ctx, e, nil, id)
	if err != nil {
		return action.Result{}, err
	}
	out, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return action.Result{}, fmt.Errorf("describe instance %s: %w", id, err)
	}
	var inst *ec2types.Instance
	for _, r := range out.Reservations {
		for k := range r.Instances {
			if aws.ToString(r.Instances[k].InstanceId) == id {
				inst = &r.Instances[k]
			}
		}
	}
	if inst == nil {
		return action.Result{}, fmt.Errorf("%w: instance: %s disappeared while being read (hint: check whether it was terminated)", action.ErrBadInput, id)
	}

	s := newStore(env)
	base := instanceBase(id)
	src := evidence.Source{Cluster: env.Cluster, Node: node, Instance: id, Region: env.AWS.Region}
	info := func(method string) evidence.ItemInfo { return evidence.ItemInfo{Source: src, Method: method} }
	// put writes one JSON item, or records why it could not be read.
	put := func(name, method string, read func() (any, error)) error {
		rel := base + name
		if s.has(rel) {
			return nil
		}
		v, err := read()
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			return s.notCollected(rel, info(method), err.Error())
		}
		return s.json(ctx, rel, info(method), v)
	}

	steps := []struct {
		name, method string
		read         func() (any, error)
	}{
		{"instance.json", "ec2:DescribeInstances", func() (any, error) { return inst, nil }},
		{"volumes.json", "ec2:DescribeVolumes", func() (any, error) { return volumes(ctx, e, summary) }},
		{"interfaces.json", "ec2:DescribeNetworkInterfaces (attached, and branch interfaces by " + awstarget.TrunkTag + ")", func() (any, error) { return interfaceDetails(ctx, e, summary) }},
		{"security-groups.json", "ec2:DescribeSecurityGroups", func() (any, error) { return securityGroups(ctx, e, inst, summary) }},
		{"instance-profile.json", "iam:GetInstanceProfile, ListAttachedRolePolicies, GetPolicy, GetPolicyVersion, ListRolePolicies, GetRolePolicy", func() (any, error) {
			return instanceProfile(ctx, i, summary.Profile)
		}},
		{"tags.json", "ec2:DescribeInstances", func() (any, error) { return awstarget.TagMap(inst.Tags), nil }},
		{"console-output.json", "ec2:GetConsoleOutput", func() (any, error) { return consoleOutput(ctx, e, id) }},
	}
	for _, st := range steps {
		if err := put(st.name, st.method, st.read); err != nil {
			return action.Result{}, err
		}
	}
	if err := screenshot(ctx, s, e, base+"screenshot.jpg", info("ec2:GetConsoleScreenshot"), id); err != nil {
		return action.Result{}, err
	}
	return s.result(map[string]any{"instance": id}, nil), nil
}

func volumes(ctx context.Context, e metaEC2, inst *awstarget.Instance) ([]ec2types.Volume, error) {
	if len(inst.Volumes) == 0 {
		return []ec2types.Volume{}, nil
	}
	ids := make([]string, 0, len(inst.Volumes))
	for _, v := range inst.Volumes {
		ids = append(ids, v.ID)
	}
	var out []ec2types.Volume
	p := ec2.NewDescribeVolumesPaginator(e, &ec2.DescribeVolumesInput{VolumeIds: ids})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe volumes %s: %w", strings.Join(ids, ", "), err)
		}
		out = append(out, page.Volumes...)
	}
	sort.Slice(out, func(i, j int) bool { return aws.ToString(out[i].VolumeId) < aws.ToString(out[j].VolumeId) })
	return out, nil
}

// interfaceDetails reads the full description of each interface
// DescribeInstance found, branch interfaces included.
func interfaceDetails(ctx context.Context, e metaEC2, inst *awstarget.Instance) ([]ec2types.NetworkInterface, error) {
	if len(inst.Interfaces) == 0 {
		return []ec2types.NetworkInterface{}, nil
	}
	ids := make([]string, 0, len(inst.Interfaces))
	for _, n := range inst.Interfaces {
		ids = append(ids, n.ID)
	}
	var out []ec2types.NetworkInterface
	p := ec2.NewDescribeNetworkInterfacesPaginator(e, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: ids})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe network interfaces %s: %w", strings.Join(ids, ", "), err)
		}
		out = append(out, page.NetworkInterfaces...)
	}
	sort.Slice(out, func(i, j int) bool {
		return aws.ToString(out[i].NetworkInterfaceId) < aws.ToString(out[j].NetworkInterfaceId)
	})
	return out, nil
}

// securityGroups reads every group of the instance and of its interfaces
// (branch interfaces carry the pods' groups), rules included.
func securityGroups(ctx context.Context, e metaEC2, raw *ec2types.Instance, inst *awstarget.Instance) ([]ec2types.SecurityGroup, error) {
	seen := map[string]bool{}
	for _, g := range raw.SecurityGroups {
		seen[aws.ToString(g.GroupId)] = true
	}
	for _, n := range inst.Interfaces {
		for _, g := range n.Groups {
			seen[g] = true
		}
	}
	ids := make([]string, 0, len(seen))
	for g := range seen {
		if g != "" {
			ids = append(ids, g)
		}
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return []ec2types.SecurityGroup{}, nil
	}
	var out []ec2types.SecurityGroup
	p := ec2.NewDescribeSecurityGroupsPaginator(e, &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe security groups %s: %w", strings.Join(ids, ", "), err)
		}
		out = append(out, page.SecurityGroups...)
	}
	sort.Slice(out, func(i, j int) bool { return aws.ToString(out[i].GroupId) < aws.ToString(out[j].GroupId) })
	return out, nil
}

// ProfileRecord is instance-profile.json: the instance profile, and for
// each of its roles the trust policy and every policy that grants it
// permissions, decoded.
type ProfileRecord struct {
	// ARN is the profile the instance carries; "" when it has none.
	ARN     string                    `json:"arn"`
	Profile *iamtypes.InstanceProfile `json:"profile,omitempty"`
	Roles   []RoleRecord              `json:"roles"`
}

// RoleRecord is one role of an instance profile.
type RoleRecord struct {
	Name string `json:"name"`
	ARN  string `json:"arn"`
	// Trust is the role's trust policy as JSON text (IAM returns it
	// URL-encoded).
	Trust    string         `json:"trust_policy,omitempty"`
	Attached []PolicyRecord `json:"attached_policies"`
	Inline   []PolicyRecord `json:"inline_policies"`
}

// PolicyRecord is one policy document. Document is set when
// awsiam.Decode reads it; otherwise Raw holds the text and DecodeError
// why, so a policy eksir does not model is kept rather than dropped.
type PolicyRecord struct {
	Name        string           `json:"name"`
	ARN         string           `json:"arn,omitempty"`
	Version     string           `json:"version,omitempty"`
	Document    *awsiam.Document `json:"document,omitempty"`
	Raw         string           `json:"raw,omitempty"`
	DecodeError string           `json:"decode_error,omitempty"`
}

func decodedPolicy(r PolicyRecord, doc string) PolicyRecord {
	d, err := awsiam.Decode(doc)
	if err == nil {
		r.Document = &d
		return r
	}
	r.Raw, r.DecodeError = unescape(doc), err.Error()
	return r
}

// unescape undoes IAM's URL encoding of a document; text that is not
// encoded is returned as is.
func unescape(doc string) string {
	if s, err := url.QueryUnescape(doc); err == nil && !strings.HasPrefix(doc, "{") {
		return s
	}
	return doc
}

func instanceProfile(ctx context.Context, c metaIAM, arn string) (ProfileRecord, error) {
	rec := ProfileRecord{ARN: arn, Roles: []RoleRecord{}}
	if arn == "" {
		return rec, nil
	}
	a, err := awsiam.ParseARN(arn)
	if err != nil {
		return rec, fmt.Errorf("instance profile %s: %w", arn, err)
	}
	out, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(a.Name)})
	if err != nil {
		return rec, fmt.Errorf("get instance profile %s: %w", a.Name, err)
	}
	rec.Profile = out.InstanceProfile
	for _, role := range out.InstanceProfile.Roles {
		r, err := roleRecord(ctx, c, role)
		if err != nil {
			return rec, err
		}
		rec.Roles = append(rec.Roles, r)
	}
	return rec, nil
}

func roleRecord(ctx context.Context, c metaIAM, role iamtypes.Role) (RoleRecord, error) {
	name := aws.ToString(role.RoleName)
	r := RoleRecord{Name: name, ARN: aws.ToString(role.Arn), Trust: unescape(aws.ToString(role.AssumeRolePolicyDocument)), Attached: []PolicyRecord{}, Inline: []PolicyRecord{}}
	ap := iam.NewListAttachedRolePoliciesPaginator(c, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)})
	for ap.HasMorePages() {
		page, err := ap.NextPage(ctx)
		if err != nil {
			return r, fmt.Errorf("list policies attached to role %s: %w", name, err)
		}
		for _, p := range page.AttachedPolicies {
			pol, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: p.PolicyArn})
			if err != nil {
				return r, fmt.Errorf("get policy %s: %w", aws.ToString(p.PolicyArn), err)
			}
			ver := aws.ToString(pol.Policy.DefaultVersionId)
			v, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: p.PolicyArn, VersionId: aws.String(ver)})
			if err != nil {
				return r, fmt.Errorf("get version %s of policy %s: %w", ver, aws.ToString(p.PolicyArn), err)
			}
			r.Attached = append(r.Attached, decodedPolicy(PolicyRecord{Name: aws.ToString(p.PolicyName), ARN: aws.ToString(p.PolicyArn), Version: ver},
				aws.ToString(v.PolicyVersion.Document)))
		}
	}
	ip := iam.NewListRolePoliciesPaginator(c, &iam.ListRolePoliciesInput{RoleName: aws.String(name)})
	for ip.HasMorePages() {
		page, err := ip.NextPage(ctx)
		if err != nil {
			return r, fmt.Errorf("list inline policies of role %s: %w", name, err)
		}
		for _, pn := range page.PolicyNames {
			doc, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
			if err != nil {
				return r, fmt.Errorf("get inline policy %s of role %s: %w", pn, name, err)
			}
			r.Inline = append(r.Inline, decodedPolicy(PolicyRecord{Name: pn}, aws.ToString(doc.PolicyDocument)))
		}
	}
	return r, nil
}

// ConsoleOutput is console-output.json: the serial console as EC2 last
// captured it, decoded from base64.
type ConsoleOutput struct {
	Instance  string     `json:"instance"`
	Timestamp *time.Time `json:"timestamp,omitempty"`
	Output    string     `json:"output"`
}

func consoleOutput(ctx context.Context, e metaEC2, id string) (ConsoleOutput, error) {
	out, err := e.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil {
		return ConsoleOutput{}, fmt.Errorf("get console output of %s: %w", id, err)
	}
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return ConsoleOutput{}, fmt.Errorf("console output of %s is not base64: %w", id, err)
	}
	return ConsoleOutput{Instance: id, Timestamp: out.Timestamp, Output: string(b)}, nil
}

// errNoImage is a screenshot answer without image data.
var errNoImage = errors.New("no image data in the answer")

func screenshot(ctx context.Context, s *store, e metaEC2, rel string, info evidence.ItemInfo, id string) error {
	if s.has(rel) {
		return nil
	}
	out, err := e.GetConsoleScreenshot(ctx, &ec2.GetConsoleScreenshotInput{InstanceId: aws.String(id), WakeUp: aws.Bool(false)})
	if err == nil && aws.ToString(out.ImageData) == "" {
		err = errNoImage
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return s.notCollected(rel, info, fmt.Sprintf("get console screenshot of %s: %v", id, err))
	}
	// The image is small (EC2 caps it well under a megabyte); decoding
	// while writing still keeps it out of memory twice.
	return s.stream(ctx, rel, info, func(w io.Writer) error {
		_, err := io.Copy(w, base64.NewDecoder(base64.StdEncoding, strings.NewReader(aws.ToString(out.ImageData))))
		return err
	})
}
