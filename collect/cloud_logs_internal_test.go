package collect

import (
	"errors"
	"testing"
	"time"

	"github.com/eksir/eksir/action"
)

func TestCloudLogsQuery(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	env := &action.Env{Cluster: "prod", Now: func() time.Time { return now }}
	q, err := CloudLogs{}.query(env, action.Call{Params: map[string]any{
		"pod": "payments/web-0", "service-account": "payments/api", "node": "ip-10-0-1-5.ec2.internal",
		"role": "arn:aws:iam::111122223333:role/app", "access-key": "AKIAABCDEFGHIJKLMNOP", "instance": "i-0abc", "window": time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if q.LogGroup != "/aws/eks/prod/cluster" || !q.Since.Equal(now.Add(-time.Hour)) || !q.Until.Equal(now) {
		t.Errorf("query: %+v", q)
	}
	wantTerms := []LogTerm{{"pod", "web-0"}, {"service-account", "system:serviceaccount:payments:api"}, {"node", "ip-10-0-1-5.ec2.internal"}}
	if len(q.Terms) != len(wantTerms) {
		t.Fatalf("terms %v, want %v", q.Terms, wantTerms)
	}
	for i := range wantTerms {
		if q.Terms[i] != wantTerms[i] {
			t.Errorf("term %d: %v, want %v", i, q.Terms[i], wantTerms[i])
		}
	}
	wantLookups := []TrailLookup{{"role", "ResourceName", "arn:aws:iam::111122223333:role/app"}, {"role", "Username", "app"},
		{"access-key", "AccessKeyId", "AKIAABCDEFGHIJKLMNOP"}, {"instance", "ResourceName", "i-0abc"}}
	if len(q.Lookups) != len(wantLookups) {
		t.Fatalf("lookups %v, want %v", q.Lookups, wantLookups)
	}
	for i := range wantLookups {
		if q.Lookups[i] != wantLookups[i] {
			t.Errorf("lookup %d: %v, want %v", i, q.Lookups[i], wantLookups[i])
		}
	}

	// The window defaults to 24 hours; since and until override it.
	q, err = CloudLogs{}.query(env, action.Call{Params: map[string]any{"instance": "i-0abc"}})
	if err != nil || !q.Since.Equal(now.Add(-DefaultLogWindow)) || q.LogGroup != "" {
		t.Errorf("default window: %+v %v", q, err)
	}
	q, err = CloudLogs{}.query(env, action.Call{Params: map[string]any{"instance": "i-0abc", "since": "2026-11-29T00:00:00Z", "until": "2026-11-29T06:00:00+02:00", "window": time.Hour}})
	if err != nil || !q.Since.Equal(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)) || !q.Until.Equal(time.Date(2026, 11, 29, 4, 0, 0, 0, time.UTC)) {
		t.Errorf("since/until: %+v %v", q, err)
	}
}

func TestCloudLogsQueryBadInput(t *testing.T) {
	env := &action.Env{Cluster: "prod", Now: time.Now}
	for name, p := range map[string]map[string]any{
		"nothing":         {"window": time.Hour},
		"pod":             {"pod": "web-0"},
		"quote in pod":    {"pod": `ns/a"b`},
		"service-account": {"service-account": "api"},
		"node":            {"node": `n" OR "x`},
		"role":            {"role": "arn:aws:iam::111122223333:user/bob"},
		"access-key":      {"access-key": "secret"},
		"instance":        {"instance": "web-0"},
		"window":          {"instance": "i-0abc", "window": -time.Hour},
		"since":           {"instance": "i-0abc", "since": "yesterday"},
		"until":           {"instance": "i-0abc", "until": "now"},
		"since after":     {"instance": "i-0abc", "since": "2026-11-30T00:00:00Z", "until": "2026-11-29T00:00:00Z"},
		"cluster":         {"node": "n1", "cluster": "a/b"},
	} {
		if _, err := (CloudLogs{}).query(env, action.Call{Params: p}); !errors.Is(err, action.ErrBadInput) {
			t.Errorf("%s: %v, want bad input", name, err)
		}
	}
	// No cluster name: the query goes on without the control-plane log
	// group (CloudTrail needs none); the step records why.
	q, err := (CloudLogs{}).query(&action.Env{Now: time.Now}, action.Call{Params: map[string]any{"node": "n1"}})
	if err != nil || q.LogGroup != "" || len(q.Terms) == 0 {
		t.Errorf("no cluster: %+v %v, want a query without a log group", q, err)
	}
}

func TestCloudLogsBase(t *testing.T) {
	for step, want := range map[string]string{"trail": "aws/cloud-logs/trail/", "": "aws/cloud-logs/cloud-logs/", "../x": "aws/cloud-logs/..-x/", "..": "aws/cloud-logs/cloud-logs/", "a b/c": "aws/cloud-logs/a-b-c/"} {
		if got := cloudLogsBase(step); got != want {
			t.Errorf("cloudLogsBase(%q) = %q, want %q", step, got, want)
		}
	}
}
