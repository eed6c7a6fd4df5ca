package collect_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/evidence"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/awsiam"
	"github.com/eksir/eksir/internal/awstarget"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
)

// awsMeta is a seeded scenario whose action env talks to moto.
type awsMeta struct {
	s        *labtest.Scenario
	instance string
}

func setupAWSMeta(t *testing.T) *awsMeta {
	t.Helper()
	s := labtest.SeedScenario(t, 2, 1, collect.Register)
	s.Env.AWS = s.Lab.AWS
	return &awsMeta{s: s, instance: s.Seed.Targets[lab.TargetInstance]}
}

// envWith is the scenario's env with its own empty case and AWS config.
func (m *awsMeta) envWith(t *testing.T, cfg aws.Config) (*action.Env, *evidence.Case) {
	t.Helper()
	env := *m.s.Env
	c := labtest.NewCase(t, env.Incident)
	env.Evidence, env.AWS = c, cfg
	return &env, c
}

// call applies the spec's defaults as the engine does.
func metaCall(t *testing.T, a action.Action, step string, params map[string]any) action.Call {
	t.Helper()
	for _, p := range a.Spec().Params {
		if _, ok := params[p.Name]; !ok && p.Default != nil {
			params[p.Name] = p.Default
		}
	}
	return action.Call{Step: step, Params: params}
}

func readItem(t *testing.T, c *evidence.Case, rel string, v any) []byte {
	t.Helper()
	it, ok := c.Lookup(rel)
	if !ok || it.Status != evidence.StatusCollected {
		t.Fatalf("%s: not collected: %+v", rel, it)
	}
	b, err := os.ReadFile(filepath.Join(c.Dir(), "data", rel))
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
	}
	return b
}

// checkIAM fails the test if a call the recorder saw is not in the
// action's generated policy.
func checkIAM(t *testing.T, a action.Action, rec *eaws.Recorder) {
	t.Helper()
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rec.Calls()) == 0 {
		t.Fatal("no AWS call recorded")
	}
	for _, c := range rec.Calls() {
		if !action.IAMAllows([]action.Spec{a.Spec()}, c) {
			t.Errorf("%s called %s, which its permissions do not grant", a.Spec().Name, c)
		}
	}
}

// nodeProfile is the name of the suspect instance's instance profile.
func nodeProfile(t *testing.T, m *awsMeta) string {
	t.Helper()
	d, err := ec2.NewFromConfig(m.s.Lab.AWS).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{m.instance}})
	if err != nil || len(d.Reservations) == 0 || d.Reservations[0].Instances[0].IamInstanceProfile == nil {
		t.Fatalf("instance %s: no profile (%v)", m.instance, err)
	}
	arn := aws.ToString(d.Reservations[0].Instances[0].IamInstanceProfile.Arn)
	return arn[strings.LastIndex(arn, "/")+1:]
}

func TestAWSInstanceMetadata(t *testing.T) {
	m := setupAWSMeta(t)
	a := collect.InstanceMetadata{}
	rec := &eaws.Recorder{}
	env, c := m.envWith(t, m.s.Lab.AWSWith(t, eaws.Options{Recorder: rec}))
	call := metaCall(t, a, "meta", map[string]any{"node": m.s.Node})
	// An inline policy on the node role, as an attacker might add one.
	inline, err := awsiam.Decode(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","secretsmanager:GetSecretValue"],"Resource":"*"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	iamc := iam.NewFromConfig(m.s.Lab.AWS)
	prof0, err := iamc.GetInstanceProfile(t.Context(), &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(nodeProfile(t, m))})
	if err != nil || len(prof0.InstanceProfile.Roles) != 1 {
		t.Fatalf("instance profile: %v", err)
	}
	if _, err := iamc.PutRolePolicy(t.Context(), &iam.PutRolePolicyInput{RoleName: prof0.InstanceProfile.Roles[0].RoleName, PolicyName: aws.String("added-by-attacker"), PolicyDocument: aws.String(inline.String())}); err != nil {
		t.Fatal(err)
	}

	plan, err := a.Plan(t.Context(), env, call)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 8 || plan.Done || len(c.Items()) != 0 {
		t.Fatalf("plan: %+v; case has %d items", plan, len(c.Items()))
	}
	res, err := a.Run(t.Context(), env, call)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["instance"] != m.instance {
		t.Fatalf("node %s resolved to %v, want %s", m.s.Node, res.Outputs["instance"], m.instance)
	}
	checkIAM(t, a, rec)
	base := "aws/instances/" + m.instance + "/"

	// Each item against what EC2 and IAM answer now.
	ec2c := ec2.NewFromConfig(m.s.Lab.AWS)
	d, err := ec2c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{m.instance}})
	if err != nil {
		t.Fatal(err)
	}
	want := d.Reservations[0].Instances[0]
	var inst ec2types.Instance
	readItem(t, c, base+"instance.json", &inst)
	if aws.ToString(inst.InstanceId) != m.instance || aws.ToString(inst.PrivateIpAddress) != aws.ToString(want.PrivateIpAddress) || inst.IamInstanceProfile == nil {
		t.Errorf("instance.json: id %s ip %s profile %v", aws.ToString(inst.InstanceId), aws.ToString(inst.PrivateIpAddress), inst.IamInstanceProfile)
	}

	var vols []ec2types.Volume
	readItem(t, c, base+"volumes.json", &vols)
	var gotVols, wantVols []string
	for _, v := range vols {
		gotVols = append(gotVols, aws.ToString(v.VolumeId))
	}
	for _, b := range want.BlockDeviceMappings {
		wantVols = append(wantVols, aws.ToString(b.Ebs.VolumeId))
	}
	sort.Strings(wantVols)
	if !slices.Equal(gotVols, wantVols) || !slices.Contains(gotVols, m.s.Seed.DataVolume) {
		t.Errorf("volumes.json: %v, want %v with the data volume %s", gotVols, wantVols, m.s.Seed.DataVolume)
	}

	var nics []ec2types.NetworkInterface
	readItem(t, c, base+"interfaces.json", &nics)
	branches := 0
	groups := map[string]bool{}
	for _, n := range nics {
		for _, tg := range n.TagSet {
			if aws.ToString(tg.Key) == "vpcresources.k8s.aws/trunk-eni-id" {
				branches++
			}
		}
		for _, g := range n.Groups {
			groups[aws.ToString(g.GroupId)] = true
		}
	}
	// The seed attaches a trunk interface to the suspect's instance with
	// branch interfaces for its pods.
	if len(nics) < 3 || branches == 0 {
		t.Errorf("interfaces.json: %d interfaces, %d branches", len(nics), branches)
	}

	var sgs []ec2types.SecurityGroup
	readItem(t, c, base+"security-groups.json", &sgs)
	rules := 0
	for _, g := range sgs {
		if !groups[aws.ToString(g.GroupId)] {
			t.Errorf("security-groups.json: %s is on no interface", aws.ToString(g.GroupId))
		}
		delete(groups, aws.ToString(g.GroupId))
		rules += len(g.IpPermissions) + len(g.IpPermissionsEgress)
	}
	if len(groups) != 0 || rules == 0 || !slices.ContainsFunc(sgs, func(g ec2types.SecurityGroup) bool { return aws.ToString(g.GroupId) == m.s.Seed.SecurityGroup }) {
		t.Errorf("security-groups.json: missing %v, %d rules", groups, rules)
	}

	var prof collect.ProfileRecord
	readItem(t, c, base+"instance-profile.json", &prof)
	if prof.Profile == nil || len(prof.Roles) != 1 || !strings.Contains(prof.Roles[0].Trust, "ec2.amazonaws.com") || len(prof.Roles[0].Attached) == 0 {
		t.Fatalf("instance-profile.json: %+v", prof)
	}
	if len(prof.Roles[0].Attached) != 3 {
		t.Errorf("attached policies: %+v, want the node role's three", prof.Roles[0].Attached)
	}
	for _, p := range prof.Roles[0].Attached {
		if p.Document == nil || p.Version == "" || len(p.Document.Statement) == 0 {
			t.Errorf("attached policy %s: not decoded: %s", p.ARN, p.DecodeError)
		}
	}
	if in := prof.Roles[0].Inline; len(in) != 1 || in[0].Name != "added-by-attacker" || in[0].Document == nil || !awsiam.Equal(*in[0].Document, inline) {
		t.Errorf("inline policies: %+v, want added-by-attacker as put", in)
	}

	var tags map[string]string
	readItem(t, c, base+"tags.json", &tags)
	if len(tags) != len(want.Tags) || len(tags) == 0 {
		t.Errorf("tags.json: %v, want %d tags", tags, len(want.Tags))
	}
	for _, tg := range want.Tags {
		if tags[aws.ToString(tg.Key)] != aws.ToString(tg.Value) {
			t.Errorf("tags.json: %s=%q, want %q", aws.ToString(tg.Key), tags[aws.ToString(tg.Key)], aws.ToString(tg.Value))
		}
	}

	var co collect.ConsoleOutput
	readItem(t, c, base+"console-output.json", &co)
	if co.Instance != m.instance || !strings.Contains(co.Output, "Linux version") {
		t.Errorf("console-output.json: %+v", co)
	}

	// moto has no GetConsoleScreenshot: the item is recorded as not
	// collected, with the reason, and the rest is complete.
	shot, ok := c.Lookup(base + "screenshot.jpg")
	if !ok || shot.Status == evidence.StatusCollected || shot.Reason == "" {
		t.Errorf("screenshot.jpg: %+v", shot)
	}
	if missing, _ := res.Outputs["missing"].([]string); len(missing) != 1 || len(res.Items) != 8 {
		t.Errorf("missing %v, items %v", res.Outputs["missing"], res.Items)
	}

	// After the run, Plan and a second run retry only what was not
	// collected (the screenshot) and acquire nothing twice.
	if plan, err := a.Plan(t.Context(), env, call); err != nil || len(plan.Changes) != 1 || plan.Changes[0].Object != base+"screenshot.jpg" {
		t.Errorf("plan after run: %+v %v", plan, err)
	}
	res2, err := a.Run(t.Context(), env, metaCall(t, a, "meta", map[string]any{"instance": m.instance}))
	if err != nil || !slices.Equal(res2.Items, []string{"data/" + base + "screenshot.jpg"}) || len(res2.Outputs["collected"].([]string)) != 0 {
		t.Errorf("second run: %v items %v outputs %v", err, res2.Items, res2.Outputs)
	}
}

// screenshotServer stands in front of moto and answers GetConsoleScreenshot
// itself, since moto lacks it, in the shape of the EC2 API model (query
// protocol, XML answer); every other request goes on to moto.
func screenshotServer(t *testing.T, moto string, image []byte) *httptest.Server {
	t.Helper()
	u, err := url.Parse(moto)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") != "GetConsoleScreenshot" {
			proxy.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<GetConsoleScreenshotResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
  <instanceId>%s</instanceId>
  <imageData>%s</imageData>
</GetConsoleScreenshotResponse>`, form.Get("InstanceId"), base64.StdEncoding.EncodeToString(image))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestAWSInstanceMetadataScreenshot(t *testing.T) {
	m := setupAWSMeta(t)
	// A JPEG's start-of-image marker and random bytes: the item must hold
	// exactly the decoded image.
	image := append([]byte{0xff, 0xd8, 0xff, 0xe0}, bytes.Repeat([]byte("eksir-screenshot"), 4096)...)
	srv := screenshotServer(t, m.s.Lab.State.AWSEndpoint, image)
	env, c := m.envWith(t, m.s.Lab.AWSVia(t, srv.URL))
	a := collect.InstanceMetadata{}
	res, err := a.Run(t.Context(), env, metaCall(t, a, "meta", map[string]any{"instance": m.instance}))
	if err != nil {
		t.Fatal(err)
	}
	got := readItem(t, c, "aws/instances/"+m.instance+"/screenshot.jpg", nil)
	if !bytes.Equal(got, image) {
		t.Errorf("screenshot.jpg: %d bytes, want the %d served", len(got), len(image))
	}
	if res.Outputs["complete"] != true {
		t.Errorf("missing: %v", res.Outputs["missing"])
	}
}

// TestAWSInstanceMetadataPod: a pod resolves to its node's instance, and
// collects the same items as the node would.
func TestAWSInstanceMetadataPod(t *testing.T) {
	m := setupAWSMeta(t)
	a := collect.InstanceMetadata{}
	rec := &eaws.Recorder{}
	env, c := m.envWith(t, m.s.Lab.AWSWith(t, eaws.Options{Recorder: rec}))
	call := metaCall(t, a, "meta", map[string]any{"pod": m.s.NS + "/" + m.s.Pod})
	plan, err := a.Plan(t.Context(), env, call)
	if err != nil || len(plan.Changes) != 8 || len(plan.Warnings) != 0 || !strings.Contains(plan.Changes[0].Object, m.instance) {
		t.Fatalf("plan: %+v %v", plan, err)
	}
	res, err := a.Run(t.Context(), env, call)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outputs["instance"] != m.instance || len(res.Warnings) != 0 {
		t.Fatalf("pod %s/%s resolved to %v (warnings %v), want %s", m.s.NS, m.s.Pod, res.Outputs["instance"], res.Warnings, m.instance)
	}
	checkIAM(t, a, rec)
	var inst ec2types.Instance
	readItem(t, c, "aws/instances/"+m.instance+"/instance.json", &inst)
	if aws.ToString(inst.InstanceId) != m.instance {
		t.Errorf("instance.json is %s", aws.ToString(inst.InstanceId))
	}
	it, _ := c.Lookup("aws/instances/" + m.instance + "/instance.json")
	if it.Source.Node != m.s.Node || it.Source.Instance != m.instance {
		t.Errorf("instance.json source: %+v", it.Source)
	}
}

// noInstanceNodes creates nodes without an EC2 instance behind them, each
// with a pod, and a pod not scheduled: what triage meets on Fargate and on
// nodes that are not EC2 instances. It returns the pods (namespace/name)
// by case, and the node of each.
func noInstanceNodes(t *testing.T, m *awsMeta) (pods, nodes map[string]string) {
	t.Helper()
	k := m.s.Lab.Kube.Typed
	prefix := m.s.Lab.Prefix
	pods, nodes = map[string]string{}, map[string]string{}
	for name, n := range map[string]*corev1.Node{
		// As EKS registers a Fargate node: the compute-type label and a
		// provider ID naming the Fargate task, not an instance.
		"fargate": {ObjectMeta: metav1.ObjectMeta{Name: prefix + "fargate-ip-192-168-7-7.ec2.internal", Labels: map[string]string{awstarget.FargateLabel: "fargate"}},
			Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/0a1b2c3d4e/fargate-ip-192-168-7-7.ec2.internal"}},
		"bare":  {ObjectMeta: metav1.ObjectMeta{Name: prefix + "bare"}},
		"other": {ObjectMeta: metav1.ObjectMeta{Name: prefix + "other"}, Spec: corev1.NodeSpec{ProviderID: "gce://proj/us-central1-a/vm-1"}},
	} {
		if _, err := k.CoreV1().Nodes().Create(t.Context(), n, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create node %s: %v", n.Name, err)
		}
		nodes[name] = n.Name
	}
	for name, node := range map[string]string{"fargate": nodes["fargate"], "bare": nodes["bare"], "other": nodes["other"], "pending": ""} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-" + name, Namespace: m.s.NS},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "web", Image: "nginx"}}}}
		if _, err := k.CoreV1().Pods(m.s.NS).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
		pods[name] = m.s.NS + "/" + p.Name
	}
	return pods, nodes
}

// TestAWSInstanceMetadataNoInstance: with allow-no-instance, a pod on a
// Fargate node, on a node without an EC2 provider ID, or not scheduled,
// and a Fargate node named directly, plan one not-collected record, run
// records it with the reason and succeeds with a warning, calls no AWS API,
// and a second run records nothing again. Without it, each is bad input.
func TestAWSInstanceMetadataNoInstance(t *testing.T) {
	m := setupAWSMeta(t)
	pods, nodes := noInstanceNodes(t, m)
	a := collect.InstanceMetadata{}
	for _, tc := range []struct {
		name   string
		params map[string]any
		rel    string
		reason []string
	}{
		{"fargate pod", map[string]any{"pod": pods["fargate"]}, "aws/nodes/" + nodes["fargate"] + "/instance.json",
			[]string{"pod " + pods["fargate"] + " runs on Fargate node " + nodes["fargate"] + ": there is no EC2 instance to describe"}},
		{"fargate node", map[string]any{"node": nodes["fargate"]}, "aws/nodes/" + nodes["fargate"] + "/instance.json",
			[]string{"node " + nodes["fargate"] + " runs on Fargate: there is no EC2 instance to describe"}},
		{"pod on a node without providerID", map[string]any{"pod": pods["bare"]}, "aws/nodes/" + nodes["bare"] + "/instance.json",
			[]string{"pod " + pods["bare"] + " runs on node " + nodes["bare"], "no spec.providerID"}},
		{"pod on a node of another cloud", map[string]any{"pod": pods["other"]}, "aws/nodes/" + nodes["other"] + "/instance.json",
			[]string{"pod " + pods["other"] + " runs on node " + nodes["other"], `"gce://proj/us-central1-a/vm-1"`, "no EC2 instance"}},
		{"pod not scheduled", map[string]any{"pod": pods["pending"]}, "aws/pods/" + pods["pending"] + "/instance.json",
			[]string{"pod " + pods["pending"] + " is not scheduled on a node"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &eaws.Recorder{}
			env, c := m.envWith(t, m.s.Lab.AWSWith(t, eaws.Options{Recorder: rec}))
			refused := metaCall(t, a, "meta", maps.Clone(tc.params))
			if _, err := a.Plan(t.Context(), env, refused); !errors.Is(err, action.ErrBadInput) || !strings.Contains(err.Error(), "allow-no-instance") ||
				!strings.Contains(err.Error(), tc.reason[0]) {
				t.Errorf("plan without allow-no-instance: %v, want bad input saying %q and naming allow-no-instance", err, tc.reason[0])
			}
			if _, err := a.Run(t.Context(), env, refused); !errors.Is(err, action.ErrBadInput) {
				t.Errorf("run without allow-no-instance: %v, want bad input", err)
			}
			if n := len(c.Items()); n != 0 {
				t.Fatalf("refused run wrote %d items", n)
			}

			params := maps.Clone(tc.params)
			params["allow-no-instance"] = true
			call := metaCall(t, a, "meta", params)
			plan, err := a.Plan(t.Context(), env, call)
			if err != nil || plan.Done || len(plan.Changes) != 1 || plan.Changes[0].Verb != "record" || plan.Changes[0].Object != tc.rel ||
				!strings.HasPrefix(plan.Changes[0].Detail, "not collected: ") || len(plan.Warnings) != 1 {
				t.Fatalf("plan: %+v %v", plan, err)
			}
			for _, want := range tc.reason {
				if !strings.Contains(plan.Changes[0].Detail, want) || !strings.Contains(plan.Warnings[0], want) {
					t.Errorf("plan does not say %q: %+v", want, plan)
				}
			}
			if n := len(c.Items()); n != 0 {
				t.Fatalf("plan wrote %d items", n)
			}
			res, err := a.Run(t.Context(), env, call)
			if err != nil {
				t.Fatal(err)
			}
			it, ok := c.Lookup(tc.rel)
			if !ok || it.Status != evidence.StatusNotCollected || len(c.Items()) != 1 {
				t.Fatalf("%s: %+v (case has %d items)", tc.rel, it, len(c.Items()))
			}
			for _, want := range tc.reason {
				if !strings.Contains(it.Reason, want) {
					t.Errorf("reason %q does not say %q", it.Reason, want)
				}
			}
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], it.Reason) || res.Outputs["instance"] != "" || res.Outputs["complete"] != false ||
				!slices.Equal(res.Items, []string{"data/" + tc.rel}) {
				t.Errorf("result: %+v", res)
			}
			// Nothing to ask AWS: the answer came from Kubernetes.
			if calls := rec.Calls(); len(calls) != 0 {
				t.Errorf("AWS called: %v", calls)
			}

			// Plan after the run is done; a second run records nothing again.
			records := len(c.Log().Records())
			if plan, err := a.Plan(t.Context(), env, call); err != nil || !plan.Done || len(plan.Changes) != 0 || len(plan.Warnings) != 1 {
				t.Errorf("plan after run: %+v %v", plan, err)
			}
			res2, err := a.Run(t.Context(), env, call)
			if err != nil || len(res2.Items) != 0 || len(res2.Warnings) != 1 || res2.Outputs["complete"] != false || len(c.Log().Records()) != records {
				t.Errorf("second run: %+v %v; custody records %d, were %d", res2, err, len(c.Log().Records()), records)
			}
		})
	}
}

func TestAWSInstanceMetadataBadInput(t *testing.T) {
	m := setupAWSMeta(t)
	env, c := m.envWith(t, m.s.Lab.AWS)
	a := collect.InstanceMetadata{}
	for name, p := range map[string]map[string]any{
		"none":             {},
		"both":             {"instance": m.instance, "node": m.s.Node},
		"not an ID":        {"instance": "web-0"},
		"missing instance": {"instance": "i-0123456789abcdef0"},
		"missing node":     {"node": "no-such-node"},
		"missing pod":      {"pod": m.s.NS + "/no-such-pod"},
		"pod not ns/name":  {"pod": "web-0"},
		"pod and node":     {"pod": m.s.NS + "/" + m.s.Pod, "node": m.s.Node},
		// allow-no-instance covers what a node or pod leads to, never an
		// instance given explicitly.
		"missing instance, allowed": {"instance": "i-0123456789abcdef0", "allow-no-instance": true},
		"not an ID, allowed":        {"instance": "web-0", "allow-no-instance": true},
		"missing node, allowed":     {"node": "no-such-node", "allow-no-instance": true},
	} {
		call := metaCall(t, a, "meta", p)
		if _, err := a.Plan(t.Context(), env, call); !errors.Is(err, action.ErrBadInput) {
			t.Errorf("%s: plan: %v, want bad input", name, err)
		}
		if _, err := a.Run(t.Context(), env, call); !errors.Is(err, action.ErrBadInput) {
			t.Errorf("%s: run: %v, want bad input", name, err)
		}
	}
	if n := len(c.Items()); n != 0 {
		t.Errorf("bad input wrote %d items", n)
	}
}

// trailEvent is a CloudTrail event as the fake serves it.
type trailEvent struct {
	id, name, user, key, resource string
	at                            time.Time
}

// cloudTrailServer stands in front of moto and answers CloudTrail
// LookupEvents itself, since moto lacks it, in the shape of the
// CloudTrail API model (JSON 1.1, X-Amz-Target
// com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents):
// one lookup attribute, the time window, MaxResults and NextToken as an
// offset. The SDK sends the target as CloudTrail_20131101.LookupEvents;
// the fully qualified form is accepted too. Every other request goes on to moto. It counts the lookups.
func cloudTrailServer(t *testing.T, moto string, events []trailEvent, lookups *atomic.Int32) *httptest.Server {
	t.Helper()
	u, err := url.Parse(moto)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if !strings.Contains(target, "CloudTrail_20131101.") {
			proxy.ServeHTTP(w, r)
			return
		}
		if target != "CloudTrail_20131101.LookupEvents" && target != "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents" || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
			http.Error(w, `{"__type":"UnknownOperationException"}`, http.StatusBadRequest)
			return
		}
		lookups.Add(1)
		var in struct {
			LookupAttributes []struct{ AttributeKey, AttributeValue string }
			StartTime        float64
			EndTime          float64
			MaxResults       int
			NextToken        string
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.LookupAttributes) != 1 || in.StartTime == 0 || in.EndTime == 0 {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":"InvalidLookupAttributesException","message":"bad request %v"}`, err)
			return
		}
		la := in.LookupAttributes[0]
		var match []map[string]any
		for _, e := range events {
			ok := la.AttributeKey == "Username" && e.user == la.AttributeValue || la.AttributeKey == "AccessKeyId" && e.key == la.AttributeValue ||
				la.AttributeKey == "ResourceName" && e.resource == la.AttributeValue
			sec := float64(e.at.Unix())
			if !ok || sec < in.StartTime || sec > in.EndTime {
				continue
			}
			raw, _ := json.Marshal(map[string]any{"eventVersion": "1.09", "eventID": e.id, "eventName": e.name, "eventTime": e.at.Format(time.RFC3339),
				"userIdentity": map[string]any{"accessKeyId": e.key, "sessionContext": map[string]any{"sessionIssuer": map[string]any{"userName": e.user}}}})
			ev := map[string]any{"EventId": e.id, "EventName": e.name, "EventTime": sec, "EventSource": "ec2.amazonaws.com", "Username": e.user,
				"AccessKeyId": e.key, "ReadOnly": "false", "CloudTrailEvent": string(raw)}
			if e.resource != "" {
				ev["Resources"] = []map[string]string{{"ResourceType": "AWS::EC2::Instance", "ResourceName": e.resource}}
			}
			match = append(match, ev)
		}
		from, _ := strconv.Atoi(in.NextToken)
		size := in.MaxResults
		if size == 0 {
			size = 50
		}
		out := map[string]any{"Events": match[min(from, len(match)):min(from+size, len(match))]}
		if from+size < len(match) {
			out["NextToken"] = strconv.Itoa(from + size)
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_ = json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func readLines[T any](t *testing.T, c *evidence.Case, rel string) []T {
	t.Helper()
	b := readItem(t, c, rel, nil)
	var out []T
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v in %q", rel, err, sc.Text())
		}
		out = append(out, v)
	}
	return out
}

// seedControlPlaneLogs creates the cluster's log group with an audit, an
// authenticator and a scheduler stream (the last is not searched).
func seedControlPlaneLogs(t *testing.T, cfg aws.Config, group string, now time.Time, pod, sa, node string) {
	t.Helper()
	l := cloudwatchlogs.NewFromConfig(cfg)
	ctx := t.Context()
	if _, err := l.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	audit := func(i int, user, name string) string {
		return fmt.Sprintf(`{"kind":"Event","auditID":"a-%d","verb":"get","user":{"username":%q},"objectRef":{"resource":"pods","namespace":"payments","name":%q}}`, i, user, name)
	}
	streams := map[string][]logstypes.InputLogEvent{}
	add := func(stream string, at time.Time, msg string) {
		streams[stream] = append(streams[stream], logstypes.InputLogEvent{Timestamp: aws.Int64(at.UnixMilli()), Message: aws.String(msg)})
	}
	// 25 lines on the pod, by someone else: more than a page.
	for i := range 25 {
		add("kube-apiserver-audit-0a1b", now.Add(-3*time.Hour+time.Duration(i)*time.Second), audit(i, "kubernetes-admin", pod))
	}
	// The service account reading the pod: found by two terms, written once.
	add("kube-apiserver-audit-0a1b", now.Add(-2*time.Hour), audit(100, sa, pod))
	// The service account reading secrets.
	add("kube-apiserver-audit-9f8e", now.Add(-90*time.Minute), `{"kind":"Event","auditID":"s-1","verb":"list","user":{"username":"`+sa+`"},"objectRef":{"resource":"secrets"}}`)
	// Someone else's pod: not collected.
	add("kube-apiserver-audit-0a1b", now.Add(-time.Hour), audit(200, "kubernetes-admin", "frontend-7d9"))
	// The pod, but before the window: not collected.
	add("kube-apiserver-audit-0a1b", now.Add(-30*time.Hour), audit(300, "kubernetes-admin", pod))
	// The node's kubelet authenticating.
	add("authenticator-5c6d", now.Add(-50*time.Minute), `level=info msg="access granted" username="system:node:`+node+`" uid="aws-iam-authenticator:1"`)
	// The scheduler placing the pod: not an audit or authenticator stream.
	add("kube-scheduler-1234", now.Add(-40*time.Minute), `"Successfully bound pod to node" pod="payments/`+pod+`" node="`+node+`"`)
	for name, evs := range streams {
		if _, err := l.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		sort.Slice(evs, func(i, j int) bool { return *evs[i].Timestamp < *evs[j].Timestamp })
		if _, err := l.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(name), LogEvents: evs}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAWSCloudLogs(t *testing.T) {
	m := setupAWSMeta(t)
	collect.SetPageSize(t, 4)
	now := time.Now().UTC().Truncate(time.Second)
	ns, pod, _ := strings.Cut(m.s.Seed.Targets[lab.TargetPod], "/")
	sa, node := "system:serviceaccount:"+ns+":checkout-api", m.s.Node
	seedControlPlaneLogs(t, m.s.Lab.AWS, "/aws/eks/"+m.s.Env.Cluster+"/cluster", now, pod, sa, node)

	role := m.s.Seed.Targets[lab.TargetIAMRole]
	roleName := role[strings.LastIndex(role, "/")+1:]
	key := "ASIAEXAMPLEKEY123456"
	events := []trailEvent{
		{id: "e1", name: "DescribeInstances", user: roleName, key: key, at: now.Add(-5 * time.Hour)},
		{id: "e2", name: "GetSecretValue", user: roleName, key: key, at: now.Add(-4 * time.Hour)},
		{id: "e3", name: "PutRolePolicy", user: "admin", resource: role, at: now.Add(-3 * time.Hour)},
		// By the role and on it: found twice, written once.
		{id: "e4", name: "UpdateAssumeRolePolicy", user: roleName, resource: role, at: now.Add(-2 * time.Hour)},
		{id: "e5", name: "StopInstances", user: "admin", resource: m.instance, at: now.Add(-time.Hour)},
		// Before the window.
		{id: "e6", name: "RunInstances", user: roleName, at: now.Add(-48 * time.Hour)},
		// Someone else's.
		{id: "e7", name: "ListBuckets", user: "other", key: "AKIAOTHERKEY12345678", at: now.Add(-time.Hour)},
	}
	var lookups atomic.Int32
	srv := cloudTrailServer(t, m.s.Lab.State.AWSEndpoint, events, &lookups)
	rec := &eaws.Recorder{}
	env, c := m.envWith(t, m.s.Lab.AWSWith(t, eaws.Options{Endpoint: srv.URL, Recorder: rec}))
	env.Now = func() time.Time { return now }
	a := collect.CloudLogs{}
	call := metaCall(t, a, "cloud-logs", map[string]any{"pod": ns + "/" + pod, "service-account": ns + "/checkout-api", "node": node,
		"role": role, "access-key": key, "instance": m.instance})

	plan, err := a.Plan(t.Context(), env, call)
	if err != nil || len(plan.Changes) != 3 || len(plan.Warnings) != 0 || len(c.Items()) != 0 || lookups.Load() != 0 {
		t.Fatalf("plan: %+v %v; case has %d items; %d lookups", plan, err, len(c.Items()), lookups.Load())
	}
	res, err := a.Run(t.Context(), env, call)
	if err != nil {
		t.Fatal(err)
	}
	checkIAM(t, a, rec)
	base := "aws/cloud-logs/cloud-logs/"

	lines := readLines[collect.LogLine](t, c, base+"control-plane.jsonl")
	byParam := map[string]int{}
	ids := map[string]bool{}
	for _, l := range lines {
		byParam[l.Matched]++
		if ids[l.EventID] {
			t.Errorf("event %s written twice", l.EventID)
		}
		ids[l.EventID] = true
		if strings.Contains(l.Message, "frontend-7d9") || strings.Contains(l.Message, "a-300") || strings.HasPrefix(l.Stream, "kube-scheduler") {
			t.Errorf("line outside the search: %+v", l)
		}
		if l.Time.Before(now.Add(-24*time.Hour)) || l.Time.After(now) {
			t.Errorf("line outside the window: %+v", l)
		}
	}
	// 25 + 1 lines on the pod (the service account's read of it is found
	// by the pod's term first), 1 more for the service account, 1 for the
	// node.
	if len(lines) != 28 || byParam["pod"] != 26 || byParam["service-account"] != 1 || byParam["node"] != 1 {
		t.Errorf("control-plane.jsonl: %d lines by term %v, want 28 (pod 26, service-account 1, node 1)", len(lines), byParam)
	}
	if res.Outputs["log_events"] != 28 {
		t.Errorf("log_events %v", res.Outputs["log_events"])
	}

	trail := readLines[collect.TrailLine](t, c, base+"cloudtrail.jsonl")
	var got []string
	for _, e := range trail {
		got = append(got, e.EventID)
		var raw map[string]any
		if err := json.Unmarshal(e.Event, &raw); err != nil || raw["eventID"] != e.EventID {
			t.Errorf("event %s: CloudTrail record %s (%v)", e.EventID, e.Event, err)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, []string{"e1", "e2", "e3", "e4", "e5"}) {
		t.Errorf("cloudtrail.jsonl: events %v, want e1..e5", got)
	}
	// Role by ARN (e3, e4), by name (e1, e2, e4), key (e1, e2), instance
	// (e5): one page each at 4 a page.
	if n := lookups.Load(); n != 4 {
		t.Errorf("%d LookupEvents calls, want 4", n)
	}
	var q collect.CloudQuery
	readItem(t, c, base+"query.json", &q)
	if !q.Until.Equal(now) || !q.Since.Equal(now.Add(-24*time.Hour)) || len(q.Terms) != 3 || len(q.Lookups) != 4 {
		t.Errorf("query.json: %+v", q)
	}

	// Plan after the run, and a second run, collect nothing again.
	n := len(c.Items())
	if plan, err := a.Plan(t.Context(), env, call); err != nil || !plan.Done {
		t.Errorf("plan after run: %+v %v", plan, err)
	}
	before := lookups.Load()
	if res2, err := a.Run(t.Context(), env, call); err != nil || len(res2.Items) != 0 || len(c.Items()) != n || lookups.Load() != before {
		t.Errorf("second run: %v items %v", err, res2.Items)
	}
}

// TestAWSCloudTrailPages checks LookupEvents pagination (moto lacks
// LookupEvents: the fake answers in its place).
func TestAWSCloudTrailPages(t *testing.T) {
	m := setupAWSMeta(t)
	collect.SetPageSize(t, 3)
	now := time.Now().UTC().Truncate(time.Second)
	key := "AKIAEXAMPLEKEY123456"
	var events []trailEvent
	for i := range 10 {
		events = append(events, trailEvent{id: fmt.Sprintf("k%02d", i), name: "ListBuckets", key: key, at: now.Add(-time.Duration(i+1) * time.Minute)})
	}
	var lookups atomic.Int32
	srv := cloudTrailServer(t, m.s.Lab.State.AWSEndpoint, events, &lookups)
	env, c := m.envWith(t, m.s.Lab.AWSVia(t, srv.URL))
	env.Now = func() time.Time { return now }
	a := collect.CloudLogs{}
	res, err := a.Run(t.Context(), env, metaCall(t, a, "trail", map[string]any{"access-key": key, "window": time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	lines := readLines[collect.TrailLine](t, c, "aws/cloud-logs/trail/cloudtrail.jsonl")
	if len(lines) != 10 || lookups.Load() != 4 || res.Outputs["trail_events"] != 10 {
		t.Errorf("%d events in %d pages (want 10 in 4), output %v", len(lines), lookups.Load(), res.Outputs["trail_events"])
	}
	if _, ok := c.Lookup("aws/cloud-logs/trail/control-plane.jsonl"); ok {
		t.Error("control-plane.jsonl collected without a pod, service account or node")
	}
}

func TestAWSCloudLogsNoLogGroup(t *testing.T) {
	m := setupAWSMeta(t)
	env, c := m.envWith(t, m.s.Lab.AWS)
	a := collect.CloudLogs{}
	call := metaCall(t, a, "logs", map[string]any{"node": m.s.Node, "cluster": "no-logging"})
	plan, err := a.Plan(t.Context(), env, call)
	if err != nil || len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0], "/aws/eks/no-logging/cluster") {
		t.Errorf("plan: %+v %v", plan, err)
	}
	res, err := a.Run(t.Context(), env, call)
	if err != nil {
		t.Fatal(err)
	}
	it, ok := c.Lookup("aws/cloud-logs/logs/control-plane.jsonl")
	if !ok || it.Status == evidence.StatusCollected || !strings.Contains(it.Reason, "not found") || res.Outputs["complete"] != false {
		t.Errorf("control-plane.jsonl: %+v, outputs %v", it, res.Outputs)
	}
}

func TestAWSCloudLogsBadInput(t *testing.T) {
	m := setupAWSMeta(t)
	env, c := m.envWith(t, m.s.Lab.AWS)
	a := collect.CloudLogs{}
	for name, p := range map[string]map[string]any{
		"nothing": {},
		"pod":     {"pod": "web-0"},
		"window":  {"node": m.s.Node, "window": time.Duration(0)},
		"role":    {"role": "arn:aws:iam::123456789012:user/bob"},
	} {
		call := metaCall(t, a, "bad", p)
		if _, err := a.Plan(t.Context(), env, call); !errors.Is(err, action.ErrBadInput) {
			t.Errorf("%s: plan: %v, want bad input", name, err)
		}
		if _, err := a.Run(t.Context(), env, call); !errors.Is(err, action.ErrBadInput) {
			t.Errorf("%s: run: %v, want bad input", name, err)
		}
	}
	if n := len(c.Items()); n != 0 {
		t.Errorf("bad input wrote %d items", n)
	}
}
