package collect

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logstypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	"github.com/eksir/eksir/internal/awsiam"
)

// CloudLogs is collect.cloud-logs: the EKS control-plane log lines
// (audit and authenticator) that name the suspect pod, service account or
// node, and the CloudTrail events of the suspect role, access key or
// instance, over a time window. Both are streamed to JSON-lines items page
// by page, so a busy cluster's day of audit log never sits in memory.
type CloudLogs struct{}

// DefaultLogWindow is how far back collect.cloud-logs looks by default.
const DefaultLogWindow = 24 * time.Hour

// controlPlaneStreams are the prefixes of the log streams EKS writes the
// audit and authenticator logs to, in the cluster's log group.
var controlPlaneStreams = []string{"kube-apiserver-audit-", "authenticator-"}

// maxStreamsPerFilter is FilterLogEvents' limit on logStreamNames.
const maxStreamsPerFilter = 100

// pageSize, when positive, bounds the events per API page; zero leaves
// the services' own maximum. Tests lower it to exercise pagination.
var pageSize atomic.Int32

// logsAPI is the part of CloudWatch Logs collect.cloud-logs reads.
type logsAPI interface {
	DescribeLogStreams(ctx context.Context, in *cloudwatchlogs.DescribeLogStreamsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogStreamsOutput, error)
	FilterLogEvents(ctx context.Context, in *cloudwatchlogs.FilterLogEventsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error)
}

// trailAPI is the part of CloudTrail collect.cloud-logs reads.
type trailAPI interface {
	LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, opts ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

// Spec implements action.Action.
func (CloudLogs) Spec() action.Spec {
	return action.Spec{
		Name: "collect.cloud-logs",
		Doc: "Collect the EKS control-plane audit and authenticator log lines naming a pod, service account or node (CloudWatch Logs), " +
			"and the CloudTrail management events of a role, access key or instance, over a time window.",
		Kind:  action.Collect,
		Needs: []action.Cloud{action.AWS},
		Params: []action.Param{
			{Name: "pod", Type: action.Pod, Doc: "control-plane lines naming this pod (its name is the search term)"},
			{Name: "service-account", Type: action.String, Doc: "control-plane lines naming this service account, NAMESPACE/NAME (searched as system:serviceaccount:NAMESPACE:NAME)"},
			{Name: "node", Type: action.Node, Doc: "control-plane lines naming this node"},
			{Name: "role", Type: action.IAMRole, Doc: "CloudTrail events on this role (ResourceName) or by it (Username, its name)"},
			{Name: "access-key", Type: action.AccessKey, Doc: "CloudTrail events made with this access key"},
			{Name: "instance", Type: action.Instance, Doc: "CloudTrail events on this EC2 instance"},
			{Name: "window", Type: action.Duration, Default: DefaultLogWindow, Doc: "how far back from until to look, when since is not given"},
			{Name: "since", Type: action.String, Doc: "start of the window, RFC 3339 (default: until minus window)"},
			{Name: "until", Type: action.String, Doc: "end of the window, RFC 3339 (default: now)"},
			{Name: "cluster", Type: action.String, Doc: "EKS cluster whose log group to read (default: the cluster eksir is connected to)"},
		},
		Outputs: captureOutputs("log_events", "trail_events"),
		Permissions: action.Permissions{IAM: []action.IAMPermission{
			{Actions: []string{"logs:DescribeLogStreams", "logs:FilterLogEvents"}, Resources: []string{"arn:aws:logs:*:*:log-group:/aws/eks/*"}},
			// LookupEvents has no resource type.
			{Actions: []string{"cloudtrail:LookupEvents"}},
		}},
		Notes: cloudLogsNotes,
	}
}

// LogTerm is one search term of the control-plane logs and the parameter
// it came from.
type LogTerm struct {
	Param string `json:"param"`
	Term  string `json:"term"`
}

// TrailLookup is one CloudTrail lookup attribute.
type TrailLookup struct {
	Param     string `json:"param"`
	Attribute string `json:"attribute"`
	Value     string `json:"value"`
}

// CloudQuery is what collect.cloud-logs searches; it is written to the
// case as query.json next to what it found.
type CloudQuery struct {
	Cluster  string        `json:"cluster,omitempty"`
	LogGroup string        `json:"log_group,omitempty"`
	Streams  []string      `json:"stream_prefixes,omitempty"`
	Since    time.Time     `json:"since"`
	Until    time.Time     `json:"until"`
	Terms    []LogTerm     `json:"terms,omitempty"`
	Lookups  []TrailLookup `json:"lookups,omitempty"`
}

var (
	accessKeyRE = regexp.MustCompile(`^(AKIA|ASIA)[A-Z0-9]{12,124}$`)
	// nameRE is a Kubernetes name: it cannot break out of a quoted
	// filter-pattern term.
	nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
)

func badParam(name, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", action.ErrBadInput, name, fmt.Sprintf(format, args...))
}

// query validates the call into a CloudQuery.
func (CloudLogs) query(env *action.Env, call action.Call) (CloudQuery, error) {
	var q CloudQuery
	now := time.Now
	if env.Now != nil {
		now = env.Now
	}
	q.Until = now().UTC()
	if u := call.String("until"); u != "" {
		t, err := time.Parse(time.RFC3339, u)
		if err != nil {
			return q, badParam("until", "%q is not an RFC 3339 time (hint: 2026-11-30T12:00:00Z)", u)
		}
		q.Until = t.UTC()
	}
	if s := call.String("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return q, badParam("since", "%q is not an RFC 3339 time (hint: 2026-11-30T12:00:00Z)", s)
		}
		q.Since = t.UTC()
	} else {
		w := call.Duration("window")
		if _, set := call.Params["window"]; !set {
			w = DefaultLogWindow
		}
		if w <= 0 {
			return q, badParam("window", "%s: must be positive (hint: 24h)", w)
		}
		q.Since = q.Until.Add(-w)
	}
	if !q.Since.Before(q.Until) {
		return q, badParam("since", "%s is not before until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	}

	if p := call.String("pod"); p != "" {
		ns, name, ok := strings.Cut(p, "/")
		if !ok || !nameRE.MatchString(ns) || !nameRE.MatchString(name) {
			return q, badParam("pod", "%q: want NAMESPACE/NAME", p)
		}
		q.Terms = append(q.Terms, LogTerm{Param: "pod", Term: name})
	}
	if sa := call.String("service-account"); sa != "" {
		ns, name, ok := strings.Cut(sa, "/")
		if !ok || !nameRE.MatchString(ns) || !nameRE.MatchString(name) {
			return q, badParam("service-account", "%q: want NAMESPACE/NAME", sa)
		}
		q.Terms = append(q.Terms, LogTerm{Param: "service-account", Term: "system:serviceaccount:" + ns + ":" + name})
	}
	if n := call.String("node"); n != "" {
		if !nameRE.MatchString(n) {
			return q, badParam("node", "%q is not a node name", n)
		}
		q.Terms = append(q.Terms, LogTerm{Param: "node", Term: n})
	}
	if r := call.String("role"); r != "" {
		a, err := awsiam.ParseRoleARN(r)
		if err != nil {
			return q, badParam("role", "%v (hint: arn:aws:iam::ACCOUNT:role/NAME)", err)
		}
		q.Lookups = append(q.Lookups, TrailLookup{Param: "role", Attribute: string(cttypes.LookupAttributeKeyResourceName), Value: r},
			TrailLookup{Param: "role", Attribute: string(cttypes.LookupAttributeKeyUsername), Value: a.Name})
	}
	if k := call.String("access-key"); k != "" {
		if !accessKeyRE.MatchString(k) {
			return q, badParam("access-key", "%q is not an access key ID (hint: AKIA... or ASIA...)", k)
		}
		q.Lookups = append(q.Lookups, TrailLookup{Param: "access-key", Attribute: string(cttypes.LookupAttributeKeyAccessKeyId), Value: k})
	}
	if i := call.String("instance"); i != "" {
		if !strings.HasPrefix(i, "i-") || strings.ContainsAny(i, " /\"") {
			return q, badParam("instance", "%q is not an EC2 instance ID (hint: i-0123456789abcdef0)", i)
		}
		q.Lookups = append(q.Lookups, TrailLookup{Param: "instance", Attribute: string(cttypes.LookupAttributeKeyResourceName), Value: i})
	}
	if len(q.Terms) == 0 && len(q.Lookups) == 0 {
		return q, badParam("pod, service-account, node, role, access-key or instance", "give at least one: they are what the logs are searched for")
	}
	if len(q.Terms) > 0 {
		q.Cluster = call.String("cluster")
		if q.Cluster == "" {
			q.Cluster = env.Cluster
		}
		if strings.ContainsAny(q.Cluster, "/ ") {
			return q, badParam("cluster", "%q: not an EKS cluster name; it names the log group /aws/eks/<cluster>/cluster", q.Cluster)
		}
		// Without a name the control-plane logs are not collected, and
		// the step says why; CloudTrail needs none.
		if q.Cluster != "" {
			q.LogGroup = "/aws/eks/" + q.Cluster + "/cluster"
			q.Streams = controlPlaneStreams
		}
	}
	return q, nil
}

var stepUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// cloudLogsBase is the folder of one step's items: the step names it, so
// that a resumed step finds what it already collected.
func cloudLogsBase(step string) string {
	s := stepUnsafe.ReplaceAllString(step, "-")
	if s == "" || strings.Trim(s, ".") == "" {
		s = "cloud-logs"
	}
	return "aws/cloud-logs/" + s + "/"
}

func (q CloudQuery) items(base string) []string {
	out := []string{base + "query.json"}
	if len(q.Terms) > 0 {
		out = append(out, base+"control-plane.jsonl")
	}
	if len(q.Lookups) > 0 {
		out = append(out, base+"cloudtrail.jsonl")
	}
	return out
}

// Plan implements action.Action.
func (a CloudLogs) Plan(ctx context.Context, env *action.Env, call action.Call) (action.Plan, error) {
	var p action.Plan
	q, err := a.query(env, call)
	if err != nil {
		return p, err
	}
	for _, rel := range q.items(cloudLogsBase(call.Step)) {
		if env.Evidence == nil || !env.Evidence.Has(rel) {
			p.Changes = append(p.Changes, action.Change{Verb: "collect", Object: rel, Detail: q.Since.Format(time.RFC3339) + " to " + q.Until.Format(time.RFC3339)})
		}
	}
	p.Done = len(p.Changes) == 0
	if len(q.Terms) > 0 && q.LogGroup == "" {
		p.Warnings = append(p.Warnings, noClusterReason)
	}
	if q.LogGroup != "" && !p.Done {
		_, err := cloudwatchlogs.NewFromConfig(env.AWS).DescribeLogStreams(ctx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(q.LogGroup), Limit: aws.Int32(1)})
		if isLogGroupMissing(err) {
			p.Warnings = append(p.Warnings, missingGroupReason(q))
		} else if err != nil {
			return p, fmt.Errorf("read log group %s: %w", q.LogGroup, err)
		}
	}
	return p, nil
}

// Run implements action.Action.
func (a CloudLogs) Run(ctx context.Context, env *action.Env, call action.Call) (action.Result, error) {
	q, err := a.query(env, call)
	if err != nil {
		return action.Result{}, err
	}
	return collectCloudLogs(ctx, env, cloudwatchlogs.NewFromConfig(env.AWS), cloudtrail.NewFromConfig(env.AWS), q, cloudLogsBase(call.Step))
}

func collectCloudLogs(ctx context.Context, env *action.Env, l logsAPI, c trailAPI, q CloudQuery, base string) (action.Result, error) {
	s := newStore(env)
	src := evidence.Source{Cluster: q.Cluster, Region: env.AWS.Region}
	if err := s.json(ctx, base+"query.json", evidence.ItemInfo{Source: src, Method: "eksir collect.cloud-logs parameters"}, q); err != nil {
		return action.Result{}, err
	}
	var logEvents, trailEvents int
	if len(q.Terms) > 0 {
		info := evidence.ItemInfo{Source: evidence.Source{Cluster: q.Cluster, Region: env.AWS.Region, ARN: q.LogGroup},
			Method: "logs:DescribeLogStreams, logs:FilterLogEvents " + q.LogGroup + " streams " + strings.Join(q.Streams, "*, ") + "*"}
		rel := base + "control-plane.jsonl"
		var streams []string
		err := errNoCluster
		if q.LogGroup != "" {
			streams, err = logStreams(ctx, l, q)
		}
		switch {
		case errors.Is(err, errNoCluster):
			if err := s.notCollected(rel, info, noClusterReason); err != nil {
				return action.Result{}, err
			}
		case isLogGroupMissing(err):
			if err := s.notCollected(rel, info, missingGroupReason(q)); err != nil {
				return action.Result{}, err
			}
		case err != nil && ctx.Err() != nil:
			return action.Result{}, err
		case err != nil:
			if err := s.notCollected(rel, info, err.Error()); err != nil {
				return action.Result{}, err
			}
		default:
			err = s.stream(ctx, rel, info, func(w io.Writer) error {
				logEvents, err = filterLogs(ctx, l, q, streams, w)
				return err
			})
			if err != nil {
				return action.Result{}, err
			}
		}
	}
	if len(q.Lookups) > 0 {
		info := evidence.ItemInfo{Source: evidence.Source{Region: env.AWS.Region}, Method: "cloudtrail:LookupEvents"}
		err := s.stream(ctx, base+"cloudtrail.jsonl", info, func(w io.Writer) error {
			var err error
			trailEvents, err = lookupTrail(ctx, c, q, w)
			return err
		})
		if err != nil {
			return action.Result{}, err
		}
	}
	return s.result(map[string]any{"log_events": logEvents, "trail_events": trailEvents}, nil), nil
}

// errNoCluster stands for a query without a cluster name.
var errNoCluster = errors.New("no cluster name")

const noClusterReason = "no cluster name (--cluster or EKSIR_CLUSTER): the control-plane log group /aws/eks/<cluster>/cluster is unknown, so its audit and authenticator logs are not collected"

func isLogGroupMissing(err error) bool {
	var nf *logstypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

func missingGroupReason(q CloudQuery) string {
	return "log group " + q.LogGroup + " not found: the cluster's control-plane logging (audit, authenticator) is off, or the region or cluster name is wrong"
}

// logStreams lists the audit and authenticator streams. FilterLogEvents
// takes a name prefix or a list of names, not several prefixes.
func logStreams(ctx context.Context, l logsAPI, q CloudQuery) ([]string, error) {
	var out []string
	for _, prefix := range q.Streams {
		p := cloudwatchlogs.NewDescribeLogStreamsPaginator(l, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(q.LogGroup), LogStreamNamePrefix: aws.String(prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list log streams %s* of %s: %w", prefix, q.LogGroup, err)
			}
			for _, st := range page.LogStreams {
				// A stream whose last event is older than the window has
				// nothing in it.
				if st.LastEventTimestamp != nil && time.UnixMilli(*st.LastEventTimestamp).Before(q.Since) {
					continue
				}
				out = append(out, aws.ToString(st.LogStreamName))
			}
		}
	}
	return out, nil
}

// LogLine is one line of control-plane.jsonl.
type LogLine struct {
	Stream    string    `json:"log_stream"`
	EventID   string    `json:"event_id"`
	Time      time.Time `json:"time"`
	Ingestion time.Time `json:"ingestion_time"`
	// Matched is the parameter whose term found the line first.
	Matched string `json:"matched"`
	Message string `json:"message"`
}

// filterLogs writes the events matching any term, once each. Patterns are
// one quoted term each, the plainest form CloudWatch Logs (and emulators)
// understand, rather than an OR pattern; an event found by two terms is
// written once, so only event IDs are kept in memory.
func filterLogs(ctx context.Context, l logsAPI, q CloudQuery, streams []string, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	seen := map[string]bool{}
	n := 0
	for _, t := range q.Terms {
		for i := 0; i < len(streams); i += maxStreamsPerFilter {
			in := &cloudwatchlogs.FilterLogEventsInput{
				LogGroupName:   aws.String(q.LogGroup),
				LogStreamNames: streams[i:min(i+maxStreamsPerFilter, len(streams))],
				FilterPattern:  aws.String(`"` + t.Term + `"`),
				StartTime:      aws.Int64(q.Since.UnixMilli()),
				EndTime:        aws.Int64(q.Until.UnixMilli()),
			}
			if ps := pageSize.Load(); ps > 0 {
				in.Limit = aws.Int32(ps)
			}
			p := cloudwatchlogs.NewFilterLogEventsPaginator(l, in)
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return n, fmt.Errorf("filter %s for %q: %w", q.LogGroup, t.Term, err)
				}
				for _, e := range page.Events {
					id := aws.ToString(e.EventId)
					if seen[id] {
						continue
					}
					seen[id] = true
					line := LogLine{Stream: aws.ToString(e.LogStreamName), EventID: id, Time: time.UnixMilli(aws.ToInt64(e.Timestamp)).UTC(),
						Ingestion: time.UnixMilli(aws.ToInt64(e.IngestionTime)).UTC(), Matched: t.Param, Message: aws.ToString(e.Message)}
					if err := enc.Encode(line); err != nil {
						return n, err
					}
					n++
				}
			}
		}
	}
	return n, bw.Flush()
}

// TrailLine is one line of cloudtrail.jsonl.
type TrailLine struct {
	// Lookup is the attribute that found the event first.
	Lookup      TrailLookup        `json:"lookup"`
	EventID     string             `json:"event_id"`
	EventTime   *time.Time         `json:"event_time,omitempty"`
	EventName   string             `json:"event_name"`
	EventSource string             `json:"event_source"`
	Username    string             `json:"username,omitempty"`
	AccessKeyID string             `json:"access_key_id,omitempty"`
	ReadOnly    string             `json:"read_only,omitempty"`
	Resources   []cttypes.Resource `json:"resources,omitempty"`
	Event       json.RawMessage    `json:"cloudtrail_event,omitempty"`
	RawEvent    string             `json:"cloudtrail_event_text,omitempty"`
}

// lookupTrail writes the events of every lookup attribute, once each:
// LookupEvents takes one attribute per call.
func lookupTrail(ctx context.Context, c trailAPI, q CloudQuery, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	seen := map[string]bool{}
	n := 0
	for _, lk := range q.Lookups {
		in := &cloudtrail.LookupEventsInput{
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKey(lk.Attribute), AttributeValue: aws.String(lk.Value)}},
			StartTime:        aws.Time(q.Since),
			EndTime:          aws.Time(q.Until),
		}
		if ps := pageSize.Load(); ps > 0 {
			in.MaxResults = aws.Int32(ps)
		}
		p := cloudtrail.NewLookupEventsPaginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return n, fmt.Errorf("look up CloudTrail events by %s %s: %w", lk.Attribute, lk.Value, err)
			}
			for _, e := range page.Events {
				id := aws.ToString(e.EventId)
				if seen[id] {
					continue
				}
				seen[id] = true
				line := TrailLine{Lookup: lk, EventID: id, EventTime: e.EventTime, EventName: aws.ToString(e.EventName), EventSource: aws.ToString(e.EventSource),
					Username: aws.ToString(e.Username), AccessKeyID: aws.ToString(e.AccessKeyId), ReadOnly: aws.ToString(e.ReadOnly), Resources: e.Resources}
				if raw := aws.ToString(e.CloudTrailEvent); json.Valid([]byte(raw)) {
					line.Event = json.RawMessage(raw)
				} else {
					line.RawEvent = raw
				}
				if err := enc.Encode(line); err != nil {
					return n, err
				}
				n++
			}
		}
	}
	return n, bw.Flush()
}
