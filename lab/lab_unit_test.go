package lab

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/internal/awstarget"
)

func TestParseStat(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := []byte("4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 12 0 987654 1 2 3\n")
	state, ticks, err := parseStat(line)
	if err != nil || state != 'S' || ticks != 987654 {
		t.Fatalf("parseStat = %c %d %v, want S 987654", state, ticks, err)
	}
	if _, _, err := parseStat([]byte("12 (x) S 1")); err == nil {
		t.Error("short line: want error")
	}
}

func TestOwnProcessIdentity(t *testing.T) {
	ticks, err := procStartTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	p := Proc{PID: os.Getpid(), StartTicks: ticks}
	if !p.Alive() {
		t.Error("this process is not alive by its own record")
	}
	p.StartTicks++
	if p.Alive() {
		t.Error("a reused pid (different start time) counts as alive")
	}
}

func TestLayout(t *testing.T) {
	for _, tc := range []struct{ nodes, per int }{{1, 1}, {3, 4}, {100, 10}, {7, 3}} {
		deps := layout(cryptoMiner, "p-", tc.nodes, tc.per)
		perNode := make([]int, tc.nodes)
		names := map[string]bool{}
		for _, d := range deps {
			if len(d.Pods) > 10 || len(d.Pods) != len(d.Nodes) {
				t.Fatalf("deployment %s: %d pods, %d nodes", d.Name, len(d.Pods), len(d.Nodes))
			}
			if !strings.HasPrefix(d.Namespace, "p-") {
				t.Errorf("namespace %s lacks the prefix", d.Namespace)
			}
			for i, p := range d.Pods {
				if names[d.Namespace+"/"+p] {
					t.Fatalf("duplicate pod name %s", p)
				}
				names[d.Namespace+"/"+p] = true
				perNode[d.Nodes[i]]++
			}
		}
		for n, c := range perNode {
			if c != tc.per {
				t.Fatalf("%dx%d: node %d holds %d pods", tc.nodes, tc.per, n, c)
			}
		}
		if !deps[0].Suspect || deps[0].Nodes[0] != 0 || deps[0].Namespace != "p-payments" {
			t.Errorf("suspect deployment not first on node 0: %+v", deps[0])
		}
	}
	a, b := layout(stolenCredentials, "", 5, 5), layout(stolenCredentials, "", 5, 5)
	if a[3].Pods[0] != b[3].Pods[0] {
		t.Error("layout names are not deterministic")
	}
}

func TestCRILines(t *testing.T) {
	end := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	got := criLines([]string{"one", "two"}, end)
	want := "2026-11-25T21:59:58Z stdout F one\n2026-11-25T21:59:59Z stdout F two\n"
	if got != want {
		t.Errorf("criLines:\n%q\nwant\n%q", got, want)
	}
}

func TestProviderID(t *testing.T) {
	az, id, err := awstarget.ParseProviderID(providerID("us-east-1a", "i-0123456789abcdef0"))
	if err != nil || az != "us-east-1a" || id != "i-0123456789abcdef0" {
		t.Errorf("round trip: %q %q %v", az, id, err)
	}
	for _, bad := range []string{"", "aws:///us-east-1a", "gce://p/z/n", "aws:///us-east-1a/vol-1", "aws:///a/i-1/x"} {
		if _, _, err := awstarget.ParseProviderID(bad); err == nil {
			t.Errorf("awstarget.ParseProviderID(%q): want error", bad)
		}
	}
}

func TestNodeName(t *testing.T) {
	if got := nodeName("", "10.0.1.4", "us-east-1"); got != "ip-10-0-1-4.ec2.internal" {
		t.Errorf("us-east-1: %s", got)
	}
	if got := nodeName("t1-", "10.0.1.4", "eu-west-1"); got != "t1-ip-10-0-1-4.eu-west-1.compute.internal" {
		t.Errorf("eu-west-1: %s", got)
	}
}

func TestShellQuote(t *testing.T) {
	if got := shellQuote("/tmp/it's here"); got != `'/tmp/it'\''s here'` {
		t.Errorf("shellQuote: %s", got)
	}
}

func TestIPLess(t *testing.T) {
	if !ipLess("10.0.2.9", "10.0.16.4") || ipLess("10.0.16.4", "10.0.2.9") {
		t.Error("ipLess compares text, not numbers")
	}
	if accountFromArn("arn:aws:iam::123456789012:role/x") != "123456789012" {
		t.Error("accountFromArn")
	}
}

// TestToolsKeyMatchesBuildScript keeps lab.BinDir and lab/tools/build.sh
// computing the same cache folder.
func TestToolsKeyMatchesBuildScript(t *testing.T) {
	t.Setenv(EnvBin, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	got, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), "bash", filepath.Join("tools", "build.sh"), "--print-bin").Output()
	if err != nil {
		t.Fatalf("build.sh --print-bin: %v", err)
	}
	if want := strings.TrimSpace(string(out)); got != want {
		t.Errorf("BinDir = %s, build.sh says %s", got, want)
	}
}

func TestFindBinariesMissing(t *testing.T) {
	t.Setenv(EnvBin, t.TempDir())
	_, err := FindBinaries()
	var me *MissingError
	if !errors.As(err, &me) || !errors.Is(err, ErrMissingBinary) || !strings.Contains(me.Hint(), HintTools) {
		t.Fatalf("FindBinaries in an empty folder: %v", err)
	}
}

func TestPollStopsOnPermanentError(t *testing.T) {
	calls := 0
	err := poll(t.Context(), func(_ context.Context) (bool, error) {
		calls++
		if calls == 3 {
			return false, &permanentError{errors.New("died")}
		}
		return false, errors.New("not yet")
	})
	if err == nil || err.Error() != "died" || calls != 3 {
		t.Errorf("poll = %v after %d calls", err, calls)
	}
}

func TestMemoryImageHoldsArtefacts(t *testing.T) {
	img := memoryImage(cryptoMiner, &awsWorld{IRSARoleArn: "arn:aws:iam::1:role/r", AccessKeyID: "AKIAXYZ"}, "node")
	if len(img) != 1<<20 || !strings.Contains(string(img), "AWS_ACCESS_KEY_ID=AKIAXYZ") || !strings.Contains(string(img), "xmrig") {
		t.Error("memory image lacks the scenario's artefacts")
	}
}
