package collect_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/evidence"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
)

// A well-formed hash for the AVML binary: moto runs nothing, so no binary
// is ever checked against it.
const testAVMLSHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeAgent stands in for the SSM agent on the instance, which moto does
// not have: moto accepts SendCommand and answers GetCommandInvocation with
// Success and no output at once. The middleware rewrites only that answer
// (status and stdout), counting the polls; before the first answer it may
// do what the script would, an HTTP PUT of the image to the presigned URL
// the command carries. Every other call is moto's own.
type fakeAgent struct {
	mu    sync.Mutex
	polls int
	// pending is how many polls answer InProgress first.
	pending int
	// status and stdout, stderr replace the final answer's.
	status         ssmtypes.CommandInvocationStatus
	stdout, stderr string
	// upload runs once, at the first poll, as the instance's script would.
	upload func(ctx context.Context) error
	err    error
}

func (f *fakeAgent) add(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("fakeSSMAgent", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		if awsmiddleware.GetOperationName(ctx) != "GetCommandInvocation" || err != nil {
			return out, md, err
		}
		r := out.Result.(*ssm.GetCommandInvocationOutput)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.polls++
		if f.polls == 1 && f.upload != nil {
			f.err = f.upload(ctx)
		}
		if f.polls <= f.pending {
			r.Status = ssmtypes.CommandInvocationStatusInProgress
			return out, md, nil
		}
		if f.status != "" {
			r.Status = f.status
		}
		r.StandardOutputContent, r.StandardErrorContent = aws.String(f.stdout), aws.String(f.stderr)
		return out, md, nil
	}), middleware.Before)
}

type memoryFixture struct {
	s        *labtest.Scenario
	instance string
	bucket   string
	ssm      *ssm.Client
	s3       *s3.Client
}

func setupMemory(t testing.TB) *memoryFixture {
	t.Helper()
	s := labtest.SeedScenario(t, 1, 1, collect.Register)
	s.Env.AWS = s.Lab.AWS
	return &memoryFixture{s: s, instance: s.Seed.Targets[lab.TargetInstance], bucket: s.Seed.EvidenceBucket,
		ssm: ssm.NewFromConfig(s.Lab.AWS), s3: eaws.S3(s.Lab.AWS)}
}

// env is an Env for incident with a fresh case and an AWS configuration
// through agent and rec.
func (f *memoryFixture) env(t testing.TB, incident string, agent *fakeAgent, rec *eaws.Recorder) *action.Env {
	t.Helper()
	env := *f.s.Env
	env.Incident = incident
	env.Evidence = labtest.NewCase(t, incident)
	env.AWS = f.s.Lab.AWSWith(t, eaws.Options{Recorder: rec})
	if agent != nil {
		env.AWS.APIOptions = append(env.AWS.APIOptions, agent.add)
	}
	return &env
}

func memoryCall(params map[string]any) action.Call {
	for _, p := range (collect.Memory{}).Spec().Params {
		if _, ok := params[p.Name]; !ok && p.Default != nil {
			params[p.Name] = p.Default
		}
	}
	return action.Call{Step: "memory", Params: params}
}

// commands are the SSM commands sent to the instance with comment.
func (f *memoryFixture) commands(t testing.TB, comment string) []ssmtypes.Command {
	t.Helper()
	out, err := f.ssm.ListCommands(t.Context(), &ssm.ListCommandsInput{InstanceId: aws.String(f.instance)})
	if err != nil {
		t.Fatal(err)
	}
	var mine []ssmtypes.Command
	for _, c := range out.Commands {
		if aws.ToString(c.Comment) == comment {
			mine = append(mine, c)
		}
	}
	return mine
}

// putURL is the presigned URL the script's last line uploads to.
func putURL(t testing.TB, cmd ssmtypes.Command) string {
	t.Helper()
	lines := cmd.Parameters["commands"]
	if len(lines) == 0 {
		t.Fatalf("command without commands: %+v", cmd.Parameters)
	}
	last := lines[len(lines)-1]
	i := strings.Index(last, "'")
	if i < 0 || !strings.HasSuffix(last, "'") {
		t.Fatalf("last line is no upload: %q", last)
	}
	return last[i+1 : len(last)-1]
}

// uploadAsTheNode PUTs image to the URL in the command sent with comment,
// as the script's curl -T would. moto keeps an account per test, chosen by
// a header the real instance would not send.
func (f *memoryFixture) uploadAsTheNode(t testing.TB, comment string, image []byte) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		cmds := f.commands(t, comment)
		if len(cmds) != 1 {
			return errors.New("no single command to upload for")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, putURL(t, cmds[0]), bytes.NewReader(image))
		if err != nil {
			return err
		}
		req.Header.Set("x-moto-account-id", f.s.Lab.Account)
		md5sum := md5.Sum(image)
		req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(md5sum[:]))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New("presigned PUT: " + resp.Status)
		}
		return nil
	}
}

func itemOf(t testing.TB, env *action.Env, rel string) evidence.Item {
	t.Helper()
	it, ok := env.Evidence.Lookup(rel)
	if !ok {
		t.Fatalf("no item %s", rel)
	}
	return it
}

// The ssm method end to end: the exact command sent, polled until done,
// the object the node uploaded through the presigned URL streamed into the
// case with both hashes; a rerun and a resume send no second command.
func TestAWSMemorySSM(t *testing.T) {
	f := setupMemory(t)
	ctx := t.Context()
	image := make([]byte, 3<<20+17)
	rand.Read(image)
	sum := sha256.Sum256(image)
	hexSum := hex.EncodeToString(sum[:])
	incident := "mem-ok"
	comment := collect.MemoryComment(incident, "memory")
	agent := &fakeAgent{pending: 2, stdout: "/var/tmp/eksir-memory.Xa1/avml: OK\n" + hexSum + "  /var/tmp/eksir-memory.Xa1/memory.lime\n"}
	agent.upload = f.uploadAsTheNode(t, comment, image)
	rec := &eaws.Recorder{}
	env := f.env(t, incident, agent, rec)
	call := memoryCall(map[string]any{"node": f.s.Node, "avml-sha256": testAVMLSHA, "poll-interval": time.Millisecond})
	a := collect.Memory{}

	plan, err := a.Plan(ctx, env, call)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 2 || !strings.Contains(plan.Changes[0].Detail, comment) || plan.Changes[0].Object != "instance "+f.instance {
		t.Errorf("plan: %+v", plan.Changes)
	}
	if len(f.commands(t, comment)) != 0 {
		t.Fatal("plan sent a command")
	}

	res, err := a.Run(ctx, env, call)
	if err != nil {
		t.Fatal(err)
	}
	if agent.err != nil {
		t.Fatalf("upload as the node: %v", agent.err)
	}
	cmds := f.commands(t, comment)
	if len(cmds) != 1 {
		t.Fatalf("%d commands sent with comment %q, want 1", len(cmds), comment)
	}
	cmd := cmds[0]
	if aws.ToString(cmd.DocumentName) != "AWS-RunShellScript" || !slices.Equal(cmd.InstanceIds, []string{f.instance}) {
		t.Errorf("command: document %s on %v", aws.ToString(cmd.DocumentName), cmd.InstanceIds)
	}
	put := putURL(t, cmd)
	if want := collect.MemoryScript(collect.DefaultAVMLURL, testAVMLSHA, put); !slices.Equal(cmd.Parameters["commands"], want) {
		t.Errorf("script sent:\n%s\nwant:\n%s", strings.Join(cmd.Parameters["commands"], "\n"), strings.Join(want, "\n"))
	}
	if got := cmd.Parameters["executionTimeout"]; !slices.Equal(got, []string{"1800"}) {
		t.Errorf("executionTimeout %v, want the 30m default", got)
	}
	script := strings.Join(cmd.Parameters["commands"], "\n")
	for _, want := range []string{"curl -fsSL --retry 3 -o \"$d/avml\" '" + collect.DefaultAVMLURL + "'", "echo '" + testAVMLSHA + "  '\"$d/avml\" | sha256sum -c -", `sha256sum "$d/memory.lime"`} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	key := collect.MemoryKey(collect.DefaultMemoryPrefix, incident, f.instance)
	u, err := url.Parse(put)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/"+f.bucket+"/"+key || u.Query().Get("X-Amz-Signature") == "" || u.Query().Get("X-Amz-Expires") != "2700" {
		t.Errorf("presigned URL %s: want a signed PUT of /%s/%s valid 45m", u.Redacted(), f.bucket, key)
	}
	if agent.polls != 3 {
		t.Errorf("polled %d times, want 3 (two InProgress, then Success)", agent.polls)
	}

	rel := "aws/instances/" + f.instance + "/memory.lime"
	it := itemOf(t, env, rel)
	if it.Status != "collected" || it.SHA256 != hexSum || it.Size != int64(len(image)) {
		t.Errorf("item %+v, want collected with sha256 %s", it, hexSum)
	}
	if !strings.Contains(it.Method, "instance sha256 "+hexSum) || !strings.Contains(it.Method, aws.ToString(cmd.CommandId)) {
		t.Errorf("method %q lacks the instance's hash or the command", it.Method)
	}
	got, err := os.ReadFile(filepath.Join(env.Evidence.(*evidence.Case).Dir(), "data", rel))
	if err != nil || !bytes.Equal(got, image) {
		t.Errorf("image in the case differs (%v)", err)
	}
	if res.Outputs["command-id"] != aws.ToString(cmd.CommandId) || res.Outputs["complete"] != true || len(res.Warnings) != 0 {
		t.Errorf("result %+v", res)
	}
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range rec.Calls() {
		if !action.IAMAllows([]action.Spec{a.Spec()}, c) {
			t.Errorf("calls %s, which its IAM permissions do not allow", c)
		}
	}

	// A rerun on the same case: nothing sent, nothing fetched.
	polls := agent.polls
	res, err = a.Run(ctx, env, call)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.commands(t, comment)) != 1 || agent.polls != polls || len(res.Items) != 0 {
		t.Errorf("rerun: %d commands, %d more polls, items %v", len(f.commands(t, comment)), agent.polls-polls, res.Items)
	}
	// A resume that lost the item (killed after SendCommand): the command
	// is found by its comment, not sent again, and the object fetched.
	env2 := *env
	env2.Evidence = labtest.NewCase(t, incident)
	if _, err := a.Run(ctx, &env2, call); err != nil {
		t.Fatal(err)
	}
	if n := len(f.commands(t, comment)); n != 1 {
		t.Errorf("resume sent a second command: %d", n)
	}
	if it := itemOf(t, &env2, rel); it.Status != "collected" || it.SHA256 != hexSum {
		t.Errorf("resumed item %+v", it)
	}
}

// Failures are evidence: each is a not-collected record with its reason,
// and the step's capture output says incomplete.
func TestAWSMemorySSMFailures(t *testing.T) {
	f := setupMemory(t)
	image := []byte("LiME image as the node uploaded it")
	sum := sha256.Sum256(image)
	other := sha256.Sum256([]byte("what the instance hashed"))
	cases := []struct {
		name   string
		agent  *fakeAgent
		place  bool
		params map[string]any
		reason string
	}{
		{name: "hash-mismatch", place: true, agent: &fakeAgent{stdout: hex.EncodeToString(other[:]) + "  /var/tmp/eksir-memory.1/memory.lime\n"},
			reason: "hash mismatch: the instance's sha256sum of the image is " + hex.EncodeToString(other[:]) + ", the object in s3://"},
		{name: "failed", agent: &fakeAgent{status: ssmtypes.CommandInvocationStatusFailed, stderr: "sha256sum: WARNING: 1 computed checksum did NOT match"},
			reason: "failed: Failed"},
		{name: "timed-out", agent: &fakeAgent{pending: 1 << 30}, params: map[string]any{"timeout": 20 * time.Millisecond}, reason: "timed out: not finished after 20ms"},
		// moto's own answer: Success, no output, and nothing uploaded.
		{name: "not-uploaded", reason: "the command succeeded but the image is not readable at s3://"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			incident := "mem-" + c.name
			env := f.env(t, incident, c.agent, nil)
			if c.place {
				// Placed as the node would, at the deterministic key.
				md5sum := md5.Sum(image)
				if _, err := f.s3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(collect.MemoryKey("", incident, f.instance)), Body: bytes.NewReader(image),
					ContentMD5: aws.String(base64.StdEncoding.EncodeToString(md5sum[:]))}); err != nil {
					t.Fatal(err)
				}
			}
			params := map[string]any{"instance": f.instance, "avml-sha256": testAVMLSHA, "poll-interval": time.Millisecond}
			for k, v := range c.params {
				params[k] = v
			}
			res, err := collect.Memory{}.Run(t.Context(), env, memoryCall(params))
			if err != nil {
				t.Fatal(err)
			}
			it := itemOf(t, env, "aws/instances/"+f.instance+"/memory.lime")
			if it.Status == "collected" || !strings.Contains(it.Reason, c.reason) {
				t.Errorf("item %s %q, want not collected because %q", it.Status, it.Reason, c.reason)
			}
			if c.place && strings.Contains(it.Reason, hex.EncodeToString(sum[:])) == false {
				t.Errorf("reason %q lacks eksir's own hash", it.Reason)
			}
			if res.Outputs["complete"] != false {
				t.Errorf("complete = %v", res.Outputs["complete"])
			}
		})
	}
}

// Bad input changes nothing: no command is sent.
func TestAWSMemoryBadInput(t *testing.T) {
	f := setupMemory(t)
	for name, params := range map[string]map[string]any{
		"no hash":          {"instance": f.instance},
		"short hash":       {"instance": f.instance, "avml-sha256": "abc"},
		"unknown instance": {"instance": "i-0123456789abcdef0", "avml-sha256": testAVMLSHA},
		"no target":        {"avml-sha256": testAVMLSHA},
		"method":           {"instance": f.instance, "avml-sha256": testAVMLSHA, "method": "ftp"},
		"node-pod no node": {"instance": f.instance, "method": collect.MemoryNodePod},
	} {
		t.Run(name, func(t *testing.T) {
			env := f.env(t, "mem-bad", nil, nil)
			call := memoryCall(params)
			if _, err := (collect.Memory{}).Plan(t.Context(), env, call); !errors.Is(err, action.ErrBadInput) {
				t.Errorf("plan: %v, want bad input", err)
			}
			if _, err := (collect.Memory{}).Run(t.Context(), env, call); !errors.Is(err, action.ErrBadInput) {
				t.Errorf("run: %v, want bad input", err)
			}
		})
	}
	out, err := f.ssm.ListCommands(t.Context(), &ssm.ListCommandsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Commands) != 0 {
		t.Errorf("bad input sent %d commands", len(out.Commands))
	}
}

// The node-pod method is collect.node-files' memory capture alone: the
// lab's collector pod answers avml with a 1 MiB image, streamed into the
// item node-files writes, so running node-files afterwards acquires it
// no second time.
func TestMemoryNodePod(t *testing.T) {
	f := setup(t, 1, 1)
	res := f.run(t, "collect.memory", map[string]any{"method": collect.MemoryNodePod, "node": f.node})
	rel := "node/" + f.node + "/memory.lime"
	if res.Outputs["complete"] != true || !slices.Equal(res.Items, []string{"data/" + rel}) {
		t.Fatalf("result %+v", res)
	}
	mem := f.item(t, rel)
	sum := sha256.Sum256([]byte(f.read(t, rel)))
	if mem.Size != 1<<20 || mem.SHA256 != hex.EncodeToString(sum[:]) || !strings.Contains(mem.Method, "avml /dev/stdout") {
		t.Errorf("memory image: %+v, file sha %x", mem, sum)
	}
	res = f.run(t, "collect.node-files", map[string]any{"node": f.node, "memory": true, "units": []string{}})
	if slices.Contains(res.Items, "data/"+rel) {
		t.Errorf("node-files acquired the image again: %v", res.Items)
	}
}
