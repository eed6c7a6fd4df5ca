package action

import (
	"strings"
	"testing"
	"time"
)

func TestMarkdown(t *testing.T) {
	md := string(Markdown([]Spec{
		{Name: "z.collect", Kind: Collect, Volatile: true, Doc: "Collect z from /proc/<pid>.", Notes: "Writes `z/<pid>`.\n",
			Params: []Param{{Name: "wait", Type: Duration, Default: 2 * time.Hour, Doc: "a | b"},
				{Name: "how", Type: String, Required: true, Enum: []string{"x", "y"}, Doc: "how"}},
			Needs: []Cloud{Kubernetes, AWS},
			Permissions: Permissions{IAM: []IAMPermission{{Actions: []string{"ec2:CreateSnapshot"}},
				{Actions: []string{"iam:PutRolePolicy"}, Resources: []string{"arn:aws:iam::*:role/*"}, Conditions: map[string]map[string][]string{"StringEquals": {"aws:ResourceTag/x": {"1"}}}}},
				Kube: []KubeRule{{APIGroups: []string{""}, Resources: []string{"pods", "pods/exec"}, Verbs: []string{"get", "create"}}}}},
		{Name: "a.contain", Kind: Contain, Needs: []Cloud{Kubernetes}, Reversible: true, RevokesCredential: true, Doc: "Contain a.", Outputs: []string{"o1", "o2"}},
	}))
	for _, want := range []string{
		"## Containment\n\n### `a.contain`\n\nContain a.\n\nKind: **contain** · reversible: **yes** · revokes a credential (release keeps it revoked without `--restore-credentials`) · needs: kubernetes\n\nOutputs: `o1`, `o2`.\n\nIAM permissions: none.\n",
		"Kind: **collect** · volatile (ordered first) · reversible: **no** · needs: kubernetes, aws\n",
		"| `wait` | duration |  | `2h` |  | a \\| b |\n",
		"| `how` | string | yes |  | `x`, `y` | how |\n",
		"IAM permissions:\n\n- `ec2:CreateSnapshot` on `*`\n- `iam:PutRolePolicy` on `arn:aws:iam::*:role/*` when `{\"StringEquals\":{\"aws:ResourceTag/x\":[\"1\"]}}`\n",
		"| `pod` | pod as namespace/name | `string` | `--pod` |\n",
		"- core: `pods`, `pods/exec`: get, create\n\nWrites `z/<pid>`.\n",
		"Collect z from /proc/&lt;pid&gt;.\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Index(md, "## Containment") > strings.Index(md, "## Collection") {
		t.Error("Containment should come before Collection")
	}
}
