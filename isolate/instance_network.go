package isolate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/naming"
)

// InstanceNetwork is isolate.instance-network.
type InstanceNetwork struct{}

// NetworkUndo is the Undo record of isolate.instance-network: each
// interface's original security groups, as also kept in its tags.
type NetworkUndo struct {
	VPC             string              `json:"vpc"`
	QuarantineGroup string              `json:"quarantineGroup"`
	ForensicGroup   string              `json:"forensicGroup,omitempty"`
	Interfaces      map[string][]string `json:"interfaces"`
}

// isolatedPrefix + hash(incident) is the ENI tag holding the groups the
// interface had before the incident isolated it (comma-separated, spread
// over .2, .3, ... when longer than a tag value).
const isolatedPrefix = naming.Domain + "/isolated-"

func isolatedKey(incident string) string { return isolatedPrefix + naming.ShortHash(incident, 10) }

// Security group names are unique per VPC, which makes every create
// idempotent: a second create fails with InvalidGroup.Duplicate.
func quarantineName(vpc string) string { return "eksir-quarantine-" + vpc }
func untrackedName(vpc string) string  { return "eksir-untracked-" + vpc }
func forensicName(incident string) string {
	return "eksir-forensic-" + naming.ShortHash(incident, 10)
}

// Spec implements action.Action.
func (InstanceNetwork) Spec() action.Spec {
	return action.Spec{
		Name: "isolate.instance-network",
		Doc: "Isolate an EC2 instance: every network interface (primary, secondary, trunk and the branch interfaces of security groups for pods) gets the VPC's quarantine security group, " +
			"which has no rules; by default first an allow-all group so that tracked connections become untracked and are cut when the empty group follows. " +
			"Each interface's original groups are kept in a tag on it for release.",
		Kind:  action.Contain,
		Needs: []action.Cloud{action.AWS},
		Params: []action.Param{
			{Name: "instance", Type: action.Instance, Required: true, Doc: "the EC2 instance to isolate"},
			{Name: "node", Type: action.Node, Doc: "the Kubernetes node on the instance, named in the plan's warning"},
			{Name: "two-step", Type: action.Bool, Default: true, Doc: "first put an allow-all group on every interface, wait settle, then the empty quarantine group: this cuts established connections, which a single step leaves open"},
			{Name: "settle", Type: action.Duration, Default: 5 * time.Second, Doc: "wait between the two steps, for tracked flows to become untracked"},
			{Name: "forensic-cidr", Type: action.String, Doc: "allow ingress from this CIDR (an analyst's network) through a per-incident forensic group"},
			{Name: "forensic-group", Type: action.String, Doc: "allow ingress from this security group ID (a forensic workstation's) through a per-incident forensic group"},
		},
		Outputs:     []string{"quarantine_group", "vpc", "interfaces", "isolated"},
		Permissions: action.Permissions{IAM: networkIAM()},
		Reversible:  true,
		Notes:       instanceNetworkNotes,
	}
}

func networkIAM() []action.IAMPermission {
	sg := "arn:aws:ec2:*:*:security-group/*"
	eni := "arn:aws:ec2:*:*:network-interface/*"
	ours := map[string]map[string][]string{"StringEquals": {"aws:ResourceTag/" + managedByTag: {managedByVal}}}
	return []action.IAMPermission{
		{Actions: []string{"ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups", "ec2:DescribeIamInstanceProfileAssociations", "autoscaling:DescribeAutoScalingInstances"}},
		// A group is created in a VPC (no tag on the VPC to condition on)
		// and only with eksir's tag in the same call.
		{Actions: []string{"ec2:CreateSecurityGroup"}, Resources: []string{"arn:aws:ec2:*:*:vpc/*"}},
		{Actions: []string{"ec2:CreateSecurityGroup"}, Resources: []string{sg}, Conditions: map[string]map[string][]string{"StringEquals": {"aws:RequestTag/" + managedByTag: {managedByVal}}}},
		{Actions: []string{"ec2:CreateTags"}, Resources: []string{sg}, Conditions: map[string]map[string][]string{"StringEquals": {"ec2:CreateAction": {"CreateSecurityGroup"}}}},
		{Actions: []string{"ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:DeleteSecurityGroup"},
			Resources: []string{sg}, Conditions: ours},
		// The original-groups tags: only keys under eksir.io.
		{Actions: []string{"ec2:CreateTags", "ec2:DeleteTags"}, Resources: []string{eni},
			Conditions: map[string]map[string][]string{"ForAllValues:StringLike": {"aws:TagKeys": {naming.Domain + "/*"}}}},
		// Swapping groups needs the interface and every group it gets.
		{Actions: []string{"ec2:ModifyNetworkInterfaceAttribute"}, Resources: []string{eni, sg}},
	}
}

// forensicSource validates the forensic parameters: at most one of a CIDR
// or a security group ID.
func forensicSource(call action.Call) (cidr, group string, err error) {
	cidr, group = call.String("forensic-cidr"), call.String("forensic-group")
	if cidr != "" && group != "" {
		return "", "", fmt.Errorf("%w: forensic-cidr and forensic-group: give one of them (hint: a second source needs a second step)", action.ErrBadInput)
	}
	if cidr != "" {
		p, perr := netip.ParsePrefix(cidr)
		if perr != nil {
			return "", "", fmt.Errorf("%w: forensic-cidr: %v (hint: an address range such as 10.20.0.0/24)", action.ErrBadInput, perr)
		}
		cidr = p.Masked().String()
	}
	if group != "" && !strings.HasPrefix(group, "sg-") {
		return "", "", fmt.Errorf("%w: forensic-group: %q is not a security group ID (hint: sg-...)", action.ErrBadInput, group)
	}
	return cidr, group, nil
}

func checkForensicGroup(ctx context.Context, e ec2API, group string) error {
	if group == "" {
		return nil
	}
	ok, err := groupsExist(ctx, e, []string{group})
	if err != nil {
		return err
	}
	if !ok[group] {
		return fmt.Errorf("%w: forensic-group: security group %s does not exist (hint: check the ID and the region)", action.ErrBadInput, group)
	}
	return nil
}

func ifcName(i awstarget.Interface) string {
	kind := i.Type
	if i.Primary {
		kind = "primary " + kind
	}
	if i.Trunk != "" {
		return fmt.Sprintf("network-interface %s (%s of trunk %s)", i.ID, kind, i.Trunk)
	}
	return fmt.Sprintf("network-interface %s (%s, device %d)", i.ID, kind, i.DeviceIndex)
}

// Plan implements action.Action.
func (a InstanceNetwork) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	var p action.Plan
	e, g := awsClients(env)
	cidr, fgroup, err := forensicSource(call)
	if err != nil {
		return p, err
	}
	inst, err := resolveInstance(ctx, e, g, call)
	if err != nil {
		return p, err
	}
	if err := checkForensicGroup(ctx, e, fgroup); err != nil {
		return p, err
	}
	q, err := findGroup(ctx, e, inst.VPC, quarantineName(inst.VPC))
	if err != nil {
		return p, err
	}
	final := []string{quarantineName(inst.VPC) + " (new)"}
	if q != nil {
		final[0] = aws.ToString(q.GroupId)
		p.Changes = append(p.Changes, action.Change{Verb: "reuse", Object: "security-group " + final[0], Detail: "the quarantine group of " + inst.VPC + " (no rules)"})
	} else {
		p.Changes = append(p.Changes, action.Change{Verb: "create", Object: "security-group " + quarantineName(inst.VPC), Detail: "in " + inst.VPC + ", tagged, every rule removed"})
	}
	two := call.Bool("two-step")
	if two {
		o, err := findGroup(ctx, e, inst.VPC, untrackedName(inst.VPC))
		if err != nil {
			return p, err
		}
		if o == nil {
			p.Changes = append(p.Changes, action.Change{Verb: "create", Object: "security-group " + untrackedName(inst.VPC), Detail: "in " + inst.VPC + ": all traffic in and out (0.0.0.0/0, ::/0), the first step"})
		}
	}
	if cidr != "" || fgroup != "" {
		name := forensicName(env.Incident)
		f, err := findGroup(ctx, e, inst.VPC, name)
		if err != nil {
			return p, err
		}
		if f == nil {
			p.Changes = append(p.Changes, action.Change{Verb: "create", Object: "security-group " + name, Detail: "ingress from " + cidr + fgroup})
			final = append(final, name+" (new)")
		} else {
			final = append(final, aws.ToString(f.GroupId))
		}
	}
	done := true
	for _, i := range inst.Interfaces {
		if sameSet(i.Groups, final) {
			continue
		}
		done = false
		detail := fmt.Sprintf("groups %s -> %s", strings.Join(i.Groups, ","), strings.Join(final, ","))
		if two {
			detail += " (through " + untrackedName(inst.VPC) + ", settle " + call.Duration("settle").String() + ")"
		}
		if _, ok := i.Tags[isolatedKey(env.Incident)]; !ok {
			detail += "; original groups tagged " + isolatedKey(env.Incident)
		}
		if others := otherBases(i.Tags, isolatedPrefix, isolatedKey(env.Incident)); len(others) > 0 {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s is already isolated by another incident (%s): this incident keeps its originals and its release leaves the isolation to the other", i.ID, strings.Join(others, ", ")))
		}
		p.Changes = append(p.Changes, action.Change{Verb: "modify", Object: ifcName(i), Detail: detail})
	}
	p.Done = done && q != nil && len(inst.Interfaces) > 0
	if p.Done {
		p.Changes = nil
	}

	_, err = e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{DryRun: aws.Bool(true), VpcId: aws.String(inst.VPC), GroupName: aws.String(quarantineName(inst.VPC)),
		Description: aws.String("eksir quarantine"), TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: awstarget.Tags(groupTags("quarantine", ""))}}})
	p.Checks = append(p.Checks, dryRunCheck("ec2:CreateSecurityGroup", err))
	if len(inst.Interfaces) > 0 {
		i := inst.Interfaces[0]
		_, err = e.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{DryRun: aws.Bool(true), NetworkInterfaceId: aws.String(i.ID), Groups: i.Groups})
		p.Checks = append(p.Checks, dryRunCheck("ec2:ModifyNetworkInterfaceAttribute", err))
		_, err = e.CreateTags(ctx, &ec2.CreateTagsInput{DryRun: aws.Bool(true), Resources: []string{i.ID}, Tags: awstarget.Tags(map[string]string{isolatedKey(env.Incident): strings.Join(i.Groups, ",")})})
		p.Checks = append(p.Checks, dryRunCheck("ec2:CreateTags", err))
	}

	node := "the node on " + inst.ID
	if n := call.String("node"); n != "" {
		node = "node " + n
	}
	p.Warnings = append(p.Warnings,
		fmt.Sprintf("every pod on %s loses its network, including its branch interfaces (security groups for pods)", node),
		fmt.Sprintf("the kubelet of %s loses the API server: the node goes NotReady and, after the default 300s toleration, the node lifecycle controller evicts its pods from the API while their containers keep running on the isolated instance", node))
	if !two {
		p.Warnings = append(p.Warnings, "single step: connections already established (tracked) stay open until they end; two-step cuts them")
	}
	return p, nil
}

// groupTags are the tags of a security group eksir creates.
func groupTags(role, incident string) map[string]string {
	t := map[string]string{managedByTag: managedByVal, roleTag: role, "Name": "eksir " + role}
	if incident != "" {
		t[incidentTag(incident)] = incident
	}
	return t
}

// Run implements action.Action.
func (a InstanceNetwork) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	var res action.Result
	e, g := awsClients(env)
	cidr, fgroup, err := forensicSource(call)
	if err != nil {
		return res, err
	}
	inst, err := resolveInstance(ctx, e, g, call)
	if err != nil {
		return res, err
	}
	if err := checkForensicGroup(ctx, e, fgroup); err != nil {
		return res, err
	}
	vpc := inst.VPC
	q, _, err := ensureGroup(ctx, e, vpc, quarantineName(vpc), "eksir quarantine: no rules, for isolated instances", groupTags("quarantine", ""))
	if err != nil {
		return res, err
	}
	if err := ensureNoRules(ctx, e, q); err != nil {
		return res, err
	}
	u := NetworkUndo{VPC: vpc, QuarantineGroup: aws.ToString(q.GroupId), Interfaces: map[string][]string{}}
	final := []string{u.QuarantineGroup}
	if cidr != "" || fgroup != "" {
		f, _, err := ensureGroup(ctx, e, vpc, forensicName(env.Incident), "eksir forensic access for incident "+naming.ShortHash(env.Incident, 10), groupTags("forensic", env.Incident))
		if err != nil {
			return res, err
		}
		if err := ensureForensicRules(ctx, e, f, cidr, fgroup); err != nil {
			return res, err
		}
		u.ForensicGroup = aws.ToString(f.GroupId)
		final = append(final, u.ForensicGroup)
	}
	var open string
	if call.Bool("two-step") {
		o, _, err := ensureGroup(ctx, e, vpc, untrackedName(vpc), "eksir untracked: all traffic, first step of isolation", groupTags("untracked", ""))
		if err != nil {
			return res, err
		}
		if err := ensureOpenRules(ctx, e, o); err != nil {
			return res, err
		}
		open = aws.ToString(o.GroupId)
	}

	// Originals first, on the interface itself: whatever happens next, a
	// resumed run or a release without a record still knows them.
	key := isolatedKey(env.Incident)
	var pending []awstarget.Interface
	for _, i := range inst.Interfaces {
		orig, err := recordOriginal(ctx, e, i, key, final, open)
		if err != nil {
			return res, err
		}
		u.Interfaces[i.ID] = orig
		if !sameSet(i.Groups, final) {
			pending = append(pending, i)
		}
	}
	if open != "" && len(pending) > 0 {
		for _, i := range pending {
			if err := setGroups(ctx, e, i.ID, []string{open}, i.Groups); err != nil {
				return res, err
			}
		}
		if err := wait(ctx, call.Duration("settle")); err != nil {
			return res, err
		}
	}
	for _, i := range pending {
		if err := setGroups(ctx, e, i.ID, final, nil); err != nil {
			return res, err
		}
	}
	isolated := make([]string, 0, len(inst.Interfaces))
	for _, i := range inst.Interfaces {
		isolated = append(isolated, i.ID)
	}
	res.Outputs = map[string]any{"quarantine_group": u.QuarantineGroup, "vpc": vpc, "interfaces": len(inst.Interfaces), "isolated": isolated}
	if res.Undo, err = json.Marshal(u); err != nil {
		return res, err
	}
	if len(inst.Interfaces) == 0 {
		res.Warnings = append(res.Warnings, "instance "+inst.ID+" has no network interface")
	}
	return res, nil
}

// recordOriginal tags an interface with the groups it had before the
// incident, unless it carries them already (a resumed run must not record
// the quarantine groups as originals). When another incident isolated it
// first, that incident's originals are the true ones.
func recordOriginal(ctx context.Context, e ec2API, i awstarget.Interface, key string, final []string, open string) ([]string, error) {
	if v, ok := joinTag(i.Tags, key); ok {
		return splitList(v), nil
	}
	orig := i.Groups
	if others := otherBases(i.Tags, isolatedPrefix, key); len(others) > 0 {
		v, _ := joinTag(i.Tags, others[0])
		orig = splitList(v)
	}
	if sameSet(orig, final) || sameSet(orig, []string{open}) {
		// Untagged but already on eksir's groups: no original to keep
		// would make release a no-op, so say so rather than record these.
		return nil, fmt.Errorf("network interface %s already carries eksir's groups but no record of its originals: restore its groups by hand before isolating again", i.ID)
	}
	if _, err := e.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{i.ID}, Tags: awstarget.Tags(splitTag(key, strings.Join(orig, ",")))}); err != nil {
		return nil, fmt.Errorf("record the original groups of %s: %w", i.ID, err)
	}
	return orig, nil
}

func splitList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// setGroups replaces the groups of an interface (ModifyNetworkInterface-
// Attribute reaches every interface; ModifyInstanceAttribute only the
// primary). unless skips the call when the interface already has them.
func setGroups(ctx context.Context, e ec2API, eni string, groups, current []string) error {
	if current != nil && sameSet(current, groups) {
		return nil
	}
	if _, err := e.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), Groups: groups}); err != nil {
		return fmt.Errorf("set the security groups of %s to %s: %w", eni, strings.Join(groups, ","), err)
	}
	return nil
}

// ensureNoRules revokes every rule of the quarantine group (a new group
// allows all egress by default).
func ensureNoRules(ctx context.Context, e ec2API, g *ec2types.SecurityGroup) error {
	if len(g.IpPermissions) > 0 {
		if _, err := e.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: g.IpPermissions}); err != nil && !isCode(err, "InvalidPermission.NotFound") {
			return fmt.Errorf("remove the ingress rules of %s: %w", aws.ToString(g.GroupId), err)
		}
	}
	if len(g.IpPermissionsEgress) > 0 {
		if _, err := e.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: g.IpPermissionsEgress}); err != nil && !isCode(err, "InvalidPermission.NotFound") {
			return fmt.Errorf("remove the egress rules of %s: %w", aws.ToString(g.GroupId), err)
		}
	}
	return nil
}

var (
	allV4 = ec2types.IpPermission{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}
	allV6 = ec2types.IpPermission{IpProtocol: aws.String("-1"), Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}}
)

// hasRule reports whether perms hold an all-protocols rule for want's
// source (one CIDR, IPv6 CIDR or group).
func hasRule(perms []ec2types.IpPermission, want ec2types.IpPermission) bool {
	for _, p := range perms {
		if aws.ToString(p.IpProtocol) != "-1" {
			continue
		}
		for _, r := range want.IpRanges {
			if slices.ContainsFunc(p.IpRanges, func(x ec2types.IpRange) bool { return aws.ToString(x.CidrIp) == aws.ToString(r.CidrIp) }) {
				return true
			}
		}
		for _, r := range want.Ipv6Ranges {
			if slices.ContainsFunc(p.Ipv6Ranges, func(x ec2types.Ipv6Range) bool { return aws.ToString(x.CidrIpv6) == aws.ToString(r.CidrIpv6) }) {
				return true
			}
		}
		for _, r := range want.UserIdGroupPairs {
			if slices.ContainsFunc(p.UserIdGroupPairs, func(x ec2types.UserIdGroupPair) bool { return aws.ToString(x.GroupId) == aws.ToString(r.GroupId) }) {
				return true
			}
		}
	}
	return false
}

func authorize(ctx context.Context, e ec2API, g *ec2types.SecurityGroup, ingress, egress []ec2types.IpPermission) error {
	for _, p := range ingress {
		if hasRule(g.IpPermissions, p) {
			continue
		}
		if _, err := e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: []ec2types.IpPermission{p}}); err != nil && !isCode(err, "InvalidPermission.Duplicate") {
			return fmt.Errorf("allow ingress on %s: %w", aws.ToString(g.GroupId), err)
		}
	}
	for _, p := range egress {
		if hasRule(g.IpPermissionsEgress, p) {
			continue
		}
		if _, err := e.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: []ec2types.IpPermission{p}}); err != nil && !isCode(err, "InvalidPermission.Duplicate") {
			return fmt.Errorf("allow egress on %s: %w", aws.ToString(g.GroupId), err)
		}
	}
	return nil
}

// ensureOpenRules makes the untracked group allow everything both ways:
// traffic matching an all-open rule in both directions is not tracked.
func ensureOpenRules(ctx context.Context, e ec2API, g *ec2types.SecurityGroup) error {
	all := []ec2types.IpPermission{allV4, allV6}
	return authorize(ctx, e, g, all, all)
}

// ensureForensicRules allows ingress from the forensic source and nothing
// out but the replies (the default egress rule is removed).
func ensureForensicRules(ctx context.Context, e ec2API, g *ec2types.SecurityGroup, cidr, group string) error {
	var p ec2types.IpPermission
	switch {
	case group != "":
		p = ec2types.IpPermission{IpProtocol: aws.String("-1"), UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(group)}}}
	case strings.Contains(cidr, ":"):
		p = ec2types.IpPermission{IpProtocol: aws.String("-1"), Ipv6Ranges: []ec2types.Ipv6Range{{CidrIpv6: aws.String(cidr)}}}
	default:
		p = ec2types.IpPermission{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String(cidr)}}}
	}
	if len(g.IpPermissionsEgress) > 0 {
		if _, err := e.RevokeSecurityGroupEgress(ctx, &ec2.RevokeSecurityGroupEgressInput{GroupId: g.GroupId, IpPermissions: g.IpPermissionsEgress}); err != nil && !isCode(err, "InvalidPermission.NotFound") {
			return fmt.Errorf("remove the egress rules of %s: %w", aws.ToString(g.GroupId), err)
		}
	}
	return authorize(ctx, e, g, []ec2types.IpPermission{p}, nil)
}

// taggedInterfaces lists the interfaces carrying tag key, wherever they
// are attached now.
func taggedInterfaces(ctx context.Context, e ec2API, key string) ([]ec2types.NetworkInterface, error) {
	var out []ec2types.NetworkInterface
	p := ec2.NewDescribeNetworkInterfacesPaginator(e, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("tag-key"), Values: []string{key}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list network interfaces tagged %s: %w", key, err)
		}
		out = append(out, page.NetworkInterfaces...)
	}
	slices.SortFunc(out, func(a, b ec2types.NetworkInterface) int {
		return strings.Compare(aws.ToString(a.NetworkInterfaceId), aws.ToString(b.NetworkInterfaceId))
	})
	return out, nil
}

// Undo implements action.Reverser. The interfaces' tags are the truth; the
// record only adds interfaces to report as already clean.
func (a InstanceNetwork) Undo(ctx context.Context, env *action.Env, call action.Call, undo json.RawMessage) ([]action.Restored, error) {
	var u NetworkUndo
	if len(undo) > 0 {
		if err := json.Unmarshal(undo, &u); err != nil {
			return nil, fmt.Errorf("read the undo record: %w", err)
		}
	}
	e, _ := awsClients(env)
	key := isolatedKey(env.Incident)
	enis, err := taggedInterfaces(ctx, e, key)
	if err != nil {
		return nil, err
	}
	forensic, err := findForensic(ctx, e, env.Incident, u.ForensicGroup)
	if err != nil {
		return nil, err
	}
	var (
		report []action.Restored
		errs   []error
		seen   = map[string]bool{}
	)
	for _, n := range enis {
		id := aws.ToString(n.NetworkInterfaceId)
		seen[id] = true
		r, err := restoreInterface(ctx, e, n, key, forensic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		report = append(report, r)
	}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range u.Interfaces {
			if !yield(id) {
				return
			}
		}
	}) {
		if !seen[id] {
			report = append(report, action.Restored{Object: "network-interface " + id, Outcome: action.OutcomeClean})
		}
	}
	if forensic != "" {
		report = append(report, deleteForensic(ctx, e, forensic))
	}
	return report, errors.Join(errs...)
}

// restoreInterface puts an interface's original groups back and removes
// the incident's tags, or, when another incident still isolates it, only
// removes this incident's tags (and its forensic group).
func restoreInterface(ctx context.Context, e ec2API, n ec2types.NetworkInterface, key, forensic string) (action.Restored, error) {
	id := aws.ToString(n.NetworkInterfaceId)
	out := action.Restored{Object: "network-interface " + id, Outcome: action.OutcomeRestored}
	tags := awstarget.TagMap(n.TagSet)
	var cur []string
	for _, g := range n.Groups {
		cur = append(cur, aws.ToString(g.GroupId))
	}
	v, _ := joinTag(tags, key)
	orig := splitList(v)
	if others := otherBases(tags, isolatedPrefix, key); len(others) > 0 {
		keep := slices.DeleteFunc(slices.Clone(cur), func(g string) bool { return g == forensic })
		if len(keep) > 0 && len(keep) != len(cur) {
			if err := setGroups(ctx, e, id, keep, nil); err != nil {
				return out, err
			}
		}
		out.Detail = "left isolated: another incident still holds it (" + strings.Join(others, ", ") + ")"
	} else {
		exist, err := groupsExist(ctx, e, orig)
		if err != nil {
			return out, err
		}
		var keep, gone []string
		for _, g := range orig {
			if exist[g] {
				keep = append(keep, g)
			} else {
				gone = append(gone, g)
			}
		}
		if len(keep) == 0 {
			return out, fmt.Errorf("network interface %s: none of its original groups (%s) exists any more: it stays isolated; give it a group by hand, then release again", id, v)
		}
		if err := setGroups(ctx, e, id, keep, cur); err != nil {
			return out, err
		}
		out.Detail = "groups " + strings.Join(keep, ",") + " restored"
		if len(gone) > 0 {
			out.Detail += "; original groups that no longer exist: " + strings.Join(gone, ",")
		}
	}
	var del []ec2types.Tag
	for _, k := range tagKeysOf(tags, key) {
		del = append(del, ec2types.Tag{Key: aws.String(k)})
	}
	if _, err := e.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: del}); err != nil {
		return out, fmt.Errorf("remove the isolation tags of %s: %w", id, err)
	}
	return out, nil
}

// findForensic returns the incident's forensic group ID, "" when none.
func findForensic(ctx context.Context, e ec2API, incident, recorded string) (string, error) {
	out, err := e.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("group-name"), Values: []string{forensicName(incident)}}}})
	if err != nil {
		return "", fmt.Errorf("look up the forensic group: %w", err)
	}
	for _, g := range out.SecurityGroups {
		if recorded == "" || aws.ToString(g.GroupId) == recorded {
			return aws.ToString(g.GroupId), nil
		}
	}
	return "", nil
}

// deleteForensic deletes the incident's forensic group unless an
// interface still uses it.
func deleteForensic(ctx context.Context, e ec2API, id string) action.Restored {
	out := action.Restored{Object: "security-group " + id, Outcome: action.OutcomeRestored, Detail: "forensic group deleted"}
	users, err := e.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{id}}}})
	if err == nil && len(users.NetworkInterfaces) > 0 {
		out.Detail = fmt.Sprintf("forensic group kept: %d interface(s) still use it", len(users.NetworkInterfaces))
		return out
	}
	if _, err := e.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)}); err != nil && !isCode(err, "InvalidGroup.NotFound") {
		out.Detail = fmt.Sprintf("forensic group kept: %v", err)
	}
	return out
}
