package action

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"testing"
)

func TestIAMAllows(t *testing.T) {
	specs := []Spec{
		{Name: "a", Kind: Collect, Permissions: Permissions{IAM: []IAMPermission{{Actions: []string{"ec2:Describe*", "s3:PutObject"}}}}},
		{Name: "b", Kind: Contain, Permissions: Permissions{IAM: []IAMPermission{
			{Actions: []string{"iam:PutRolePolicy", "iam:Get?olePolicy"}, Resources: []string{"arn:aws:iam::*:role/*"}},
			{Actions: []string{"autoscaling:*"}},
		}}},
	}
	for call, want := range map[string]bool{
		"ec2:DescribeInstances":             true,
		"EC2:describeinstances":             true, // IAM action names are case-insensitive
		"ec2:Describe":                      true, // '*' matches nothing too
		"ec2:CreateSnapshot":                false,
		"s3:PutObject":                      true,
		"s3:PutObjectLegalHold":             false, // no implicit prefix match
		"iam:PutRolePolicy":                 true,
		"iam:GetRolePolicy":                 true,
		"iam:GetUserPolicy":                 false,
		"iam:DeleteRolePolicy":              false,
		"autoscaling:SetInstanceProtection": true,
		"sts:AssumeRole":                    false,
		"":                                  false,
	} {
		if got := IAMAllows(specs, call); got != want {
			t.Errorf("IAMAllows(%q) = %v, want %v", call, got, want)
		}
	}
	if IAMAllows(nil, "ec2:DescribeInstances") {
		t.Error("no specs allow a call")
	}
}

func TestIAMMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "ec2:anything", true},
		{"ec2:*instance*", "ec2:describeinstances", true},
		{"ec2:*instance*", "ec2:describeinstancestatus", true},
		{"ec2:*s", "ec2:describeinstance", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"??", "ab", true},
		{"??", "abc", false},
	} {
		if got := iamMatch(c.pattern, c.name); got != c.want {
			t.Errorf("iamMatch(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

// TestIAMPolicyShape: the document is valid JSON with a Version, unique
// Sids, sorted actions, one statement per kind and distinct (resources,
// conditions) set, and the same bytes whatever the order of the specs.
func TestIAMPolicyShape(t *testing.T) {
	tagged := map[string]map[string][]string{"StringEquals": {"aws:ResourceTag/eksir": {"true"}}}
	specs := []Spec{
		{Name: "a", Kind: Contain, Permissions: Permissions{IAM: []IAMPermission{
			{Actions: []string{"iam:PutRolePolicy", "iam:DeleteRolePolicy"}, Resources: []string{"arn:aws:iam::*:role/b", "arn:aws:iam::*:role/a"}, Conditions: tagged},
			{Actions: []string{"ec2:ModifyInstanceAttribute"}},
			{Actions: nil, Resources: []string{"arn:aws:s3:::x"}},
		}}},
		{Name: "b", Kind: Collect, Permissions: Permissions{IAM: []IAMPermission{{Actions: []string{"ec2:DescribeVolumes"}}}}},
		{Name: "c", Kind: Contain, Permissions: Permissions{IAM: []IAMPermission{
			{Actions: []string{"iam:GetRolePolicy"}, Resources: []string{"arn:aws:iam::*:role/a", "arn:aws:iam::*:role/b"}, Conditions: tagged},
			{Actions: []string{"ec2:CreateTags", "ec2:ModifyInstanceAttribute"}},
		}}},
	}
	b, err := IAMPolicy(specs)
	if err != nil {
		t.Fatal(err)
	}
	rev := slices.Clone(specs)
	slices.Reverse(rev)
	if b2, _ := IAMPolicy(rev); !bytes.Equal(b, b2) {
		t.Errorf("policy depends on the order of the specs:\n%s\n%s", b, b2)
	}
	var doc struct {
		Version   string
		Statement []struct {
			Sid, Effect string
			Action      []string
			Resource    any
			Condition   map[string]map[string][]string
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("invalid policy JSON: %v\n%s", err, b)
	}
	if doc.Version != "2012-10-17" || len(doc.Statement) != 3 {
		t.Fatalf("want Version and 3 statements (collect; contain on *; contain on the roles):\n%s", b)
	}
	sids := map[string]bool{}
	for _, st := range doc.Statement {
		if st.Sid == "" || sids[st.Sid] || st.Effect != "Allow" || len(st.Action) == 0 || !sort.StringsAreSorted(st.Action) {
			t.Errorf("statement %+v: want a unique Sid, Allow, sorted non-empty actions", st)
		}
		sids[st.Sid] = true
	}
	if got := doc.Statement[2].Action; !slices.Equal(got, []string{"iam:DeleteRolePolicy", "iam:GetRolePolicy", "iam:PutRolePolicy"}) {
		t.Errorf("the roles' statement merges the two specs' actions: %v", got)
	}
	if got := doc.Statement[1].Action; !slices.Equal(got, []string{"ec2:CreateTags", "ec2:ModifyInstanceAttribute"}) {
		t.Errorf("the wildcard containment statement: %v", got)
	}
}
