package labtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain stops the lab TestAWSSnapshotSeesChanges starts: without it,
// every run of these tests left a lab's processes behind.
func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestMissingBinary checks the contract for a machine without the lab:
// locally the test skips, with CI=true it fails, and both name the command
// that provides the binary. The cases run in a child test process so that
// the failure under CI=true can be observed.
func TestMissingBinary(t *testing.T) {
	if os.Getenv("LABTEST_CHILD") == "1" {
		Start(t)
		t.Fatal("Start returned without a lab")
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMissingBinary$", "-test.v")
		cmd.Env = append(os.Environ(), "LABTEST_CHILD=1", "CI="+ci, "EKSIR_LAB_BIN="+t.TempDir())
		out, err := cmd.CombinedOutput()
		s := string(out)
		if !strings.Contains(s, "make lab-tools") {
			t.Errorf("CI=%q: output does not name 'make lab-tools':\n%s", ci, s)
		}
		switch ci {
		case "true":
			if err == nil || !strings.Contains(s, "--- FAIL") {
				t.Errorf("CI=true: want a failing test, got err=%v\n%s", err, s)
			}
		default:
			if err != nil || !strings.Contains(s, "--- SKIP") {
				t.Errorf("local: want a skipped test, got err=%v\n%s", err, s)
			}
		}
	}
}

func TestPrefixIsDNSLabel(t *testing.T) {
	p := prefixFor("TestSomething/with_sub.test", 12)
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			t.Fatalf("prefix %q has %q, not allowed in namespace names", p, r)
		}
	}
	if prefixFor("a", 1) == prefixFor("a", 2) {
		t.Error("prefixes repeat across Start calls")
	}
}
