package finding

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/eksir/eksir/action"
)

func fixtures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) < 5 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	return files
}

func parseFile(t *testing.T, name string) *Finding {
	t.Helper()
	fh, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	f, raw, err := Read(fh)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(raw) == 0 {
		t.Fatalf("%s: no bytes returned", name)
	}
	return f
}

// TestFixtures: each documented shape (get-findings output, EventBridge
// event with camelCase keys, the bare finding) and each kind of finding
// gives its targets.
func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		file, id, typ, cluster string
		severity               float64
		targets                map[action.ParamType]string
	}{
		{"eks-audit-privileged-deployment.json", "3cc9a0e8b1d24f7a9e5c6b7d8e9f0a1b", "PrivilegeEscalation:Kubernetes/PrivilegedContainer", "payments-prod", 5,
			map[action.ParamType]string{action.Pod: "deployment:shop/checkout"}},
		{"eks-runtime-new-binary.json", "a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d", "Execution:Runtime/NewBinaryExecuted", "shop-prod", 5,
			map[action.ParamType]string{action.Pod: "payments/web-7d9f8c6b5-x2k4q", action.Instance: "i-0a1b2c3d4e5f67890"}},
		{"ec2-bitcoin-tool.json", "0be3f0e1c2d3a4b5c6d7e8f9a0b1c2d3", "CryptoCurrency:EC2/BitcoinTool.B!DNS", "", 8,
			map[action.ParamType]string{action.Instance: "i-0fedcba9876543210"}},
		{"iam-user-key.json", "7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f", "CredentialAccess:IAMUser/AnomalousBehavior", "", 5,
			map[action.ParamType]string{action.AccessKey: "AKIAQ3EXAMPLEKEY0001"}},
		{"assumed-role-session.json", "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b", "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", "", 8,
			map[action.ParamType]string{action.IAMRole: "arn:aws:iam::111122223333:role/eks-node-general"}},
	} {
		f := parseFile(t, tc.file)
		if f.ID != tc.id || f.Type != tc.typ || f.Cluster != tc.cluster || f.Severity != tc.severity || !reflect.DeepEqual(f.Targets, tc.targets) {
			t.Errorf("%s: %+v", tc.file, f)
		}
	}
	if f := parseFile(t, "assumed-role-session.json"); len(f.Notes) != 1 || !strings.Contains(f.Notes[0], "ASIAQ3EXAMPLESESS001") {
		t.Errorf("an AssumedRole session's key is not a target, and the finding says why: %q", f.Notes)
	}
}

// TestRefused: findings eksir cannot act on are refused with the field
// named, and a syntax error with its line and column.
func TestRefused(t *testing.T) {
	good, err := os.ReadFile("testdata/eks-audit-privileged-deployment.json")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) string {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(string(good), old, new, 1)
	}
	runtime, err := os.ReadFile("testdata/eks-runtime-new-binary.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, doc, field, want string }{
		{"s3", edit(`"ResourceType": "EKSCluster"`, `"ResourceType": "S3Bucket"`), "Findings[0].Resource.ResourceType", `"S3Bucket" is not a Kubernetes, instance or access key finding`},
		{"no-namespace", edit(`"Namespace": "shop",`, ``), "Findings[0].Resource.KubernetesDetails.KubernetesWorkloadDetails.Namespace", "missing"},
		{"bad-namespace", edit(`"Namespace": "shop",`, `"Namespace": "../etc",`), "Findings[0].Resource.KubernetesDetails.KubernetesWorkloadDetails.Namespace", "not a namespace name"},
		{"cronjob", edit(`"Type": "deployments"`, `"Type": "cronjobs"`), "Findings[0].Resource.KubernetesDetails.KubernetesWorkloadDetails.Type", "cronjobs"},
		{"no-cluster", edit(`"Name": "payments-prod",`, ``), "Findings[0].Resource.EksClusterDetails.Name", "missing"},
		{"no-workload", edit(`"KubernetesWorkloadDetails": {`, `"Other": {`), "Findings[0].Resource.KubernetesDetails.KubernetesWorkloadDetails", "names no workload"},
		{"no-id", edit(`"Id": "3cc9a0e8b1d24f7a9e5c6b7d8e9f0a1b",`, ``), "Findings[0].Id", "missing"},
		{"path-id", edit(`"Id": "3cc9a0e8b1d24f7a9e5c6b7d8e9f0a1b",`, `"Id": "../x",`), "Findings[0].Id", "not a GuardDuty finding ID"},
		{"severity-text", edit(`"Severity": 5,`, `"Severity": "high",`), "Findings[0].Severity", "want a number"},
		{"account", edit(`"AccountId": "111122223333",`, `"AccountId": "1111",`), "Findings[0].AccountId", "12 digits"},
		{"two", `{"Findings": [{}, {}]}`, "Findings", "holds 2 findings"},
		{"none", `{"Findings": []}`, "Findings", "holds 0 findings"},
		{"array", `[1]`, "", "want an object"},
		{"two-values", string(good) + "{}", "", "more than one JSON value"},
		{"empty", ``, "", "not JSON"},
		{"syntax", "{\n  \"Id\": \"x\",\n  \"Type\" \"y\"\n}", "", "line 3, column 10"},
		{"other-event", `{"source": "aws.securityhub", "detail": {}}`, "source", "another service"},
		{"event-missing", `{"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "detail": {"id": "abc"}}`, "detail.Type", "missing"},
		{"runtime-bad-instance", strings.Replace(string(runtime), `"i-0a1b2c3d4e5f67890"`, `"i-XYZ"`, 1), "detail.Resource.InstanceDetails.InstanceId", "not an EC2 instance ID"},
		{"root-key", `{"Id": "a1", "Type": "Policy:IAMUser/RootCredentialUsage", "Severity": 2, "AccountId": "111122223333", "Region": "us-east-1",
			"Resource": {"ResourceType": "AccessKey", "AccessKeyDetails": {"AccessKeyId": "AKIAQ3EXAMPLEKEY0001", "UserType": "Root", "UserName": "root"}}}`, "Resource.AccessKeyDetails.UserType", `"Root"`},
		{"sample-key", `{"Id": "a1", "Type": "CredentialAccess:IAMUser/AnomalousBehavior", "Severity": 5, "AccountId": "111122223333", "Region": "us-east-1",
			"Resource": {"ResourceType": "AccessKey", "AccessKeyDetails": {"AccessKeyId": "GeneratedFindingAccessKeyId", "UserType": "IAMUser", "UserName": "u"}}}`, "Resource.AccessKeyDetails.AccessKeyId", "not an IAM user's access key ID"},
	} {
		_, err := Parse([]byte(tc.doc))
		var fe *Error
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Msg, tc.want) {
			t.Errorf("%s: %v, want field %q saying %q", tc.name, err, tc.field, tc.want)
		}
	}
	_, _, err = Read(strings.NewReader(`{"Id": "` + strings.Repeat("a", MaxSize) + `"}`))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "over") {
		t.Errorf("oversized finding: %v", err)
	}
}

// TestDifferentialJQ compares the reading of every fixture with an
// independent one written in jq (testdata/targets.jq).
func TestDifferentialJQ(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("jq is required in CI: apt-get install jq (make host-tools)")
		}
		t.Skip("jq not installed: apt-get install jq")
	}
	for _, file := range fixtures(t) {
		out, err := exec.Command("jq", "-c", "-f", "testdata/targets.jq", file).Output()
		if err != nil {
			t.Fatalf("jq on %s: %v", file, err)
		}
		var want map[string]any
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatalf("jq output for %s: %v", file, err)
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		got := map[string]any{"id": f.ID, "type": f.Type, "severity": f.Severity, "account": f.Account, "region": f.Region,
			"resource_type": f.ResourceType, "cluster": f.Cluster}
		for _, typ := range []action.ParamType{action.Pod, action.Instance, action.AccessKey, action.IAMRole} {
			got[string(typ)] = f.Targets[typ]
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n go %v\n jq %v", file, got, want)
		}
	}
}

// FuzzParse: no input panics, and every accepted finding names at least
// one target, each a valid value of its type's text form and, for pods, a
// reference --pod takes.
func FuzzParse(f *testing.F) {
	for _, file := range fixtures(f) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Findings":[{"Id":"a"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fd, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		if len(fd.Targets) == 0 {
			t.Fatalf("accepted a finding without targets: %+v", fd)
		}
		for typ, v := range fd.Targets {
			if _, ok := typ.Target(); !ok {
				t.Fatalf("target of non-target type %s", typ)
			}
			if _, err := typ.ParseText(v); err != nil {
				t.Fatalf("target %s %q does not parse: %v", typ, v, err)
			}
			if strings.ContainsAny(v, " \n\t,") {
				t.Fatalf("target %s %q holds a separator", typ, v)
			}
		}
		if p, ok := fd.Targets[action.Pod]; ok {
			rest := p
			if _, r, ok := strings.Cut(p, ":"); ok {
				rest = r
			}
			if ns, name, ok := strings.Cut(rest, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
				t.Fatalf("pod target %q is not [KIND:]NAMESPACE/NAME", p)
			}
		}
	})
}
