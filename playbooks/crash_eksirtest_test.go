//go:build eksirtest

package playbooks

import "testing"

// TestAWSReadOnly: the crash-inside hook dies after mutating AWS
// operations only. Run with -tags eksirtest.
func TestAWSReadOnly(t *testing.T) {
	for _, c := range []struct {
		service, op string
		readOnly    bool
	}{
		{"EC2", "DescribeInstances", true},
		{"EC2", "ModifyNetworkInterfaceAttribute", false},
		{"EC2", "CreateSecurityGroup", false},
		{"EC2", "DisassociateIamInstanceProfile", false},
		{"IAM", "GetRolePolicy", true},
		{"IAM", "PutRolePolicy", false},
		{"IAM", "UpdateAccessKey", false},
		{"IAM", "GenerateCredentialReport", true},
		{"Auto Scaling", "SetInstanceProtection", false},
		{"Auto Scaling", "DetachInstances", false},
		{"S3", "HeadObject", true},
		{"S3", "PutObject", false},
		{"STS", "AssumeRole", true},
		{"CloudWatch Logs", "FilterLogEvents", true},
		{"EKS", "ListPodIdentityAssociations", true},
	} {
		if got := awsReadOnly(c.service, c.op); got != c.readOnly {
			t.Errorf("awsReadOnly(%s, %s) = %v, want %v", c.service, c.op, got, c.readOnly)
		}
	}
}
