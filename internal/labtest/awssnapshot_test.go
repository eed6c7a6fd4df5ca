package labtest_test

import (
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/eksir/eksir/internal/labtest"
	"github.com/eksir/eksir/lab"
)

// The snapshot sees the changes eksir's AWS actions make: a tag on an
// instance, a disabled key, an inline policy.
func TestAWSSnapshotSeesChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("lab integration test (-short)")
	}
	le := labtest.Start(t)
	res, err := lab.Seed(t.Context(), le.State, lab.SeedOptions{Scenario: "crypto-miner", Nodes: 1, PodsPerNode: 1, Prefix: le.Prefix, Account: le.Account})
	if err != nil {
		t.Fatal(err)
	}
	before := labtest.AWSSnapshot(t, le.AWS)
	if !maps.Equal(before, labtest.AWSSnapshot(t, le.AWS)) {
		t.Fatal("two snapshots of an unchanged account differ")
	}
	changes := []func() error{
		func() error {
			_, err := ec2.NewFromConfig(le.AWS).CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{res.Targets[lab.TargetInstance]},
				Tags: []ec2types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		},
		func() error {
			_, err := iam.NewFromConfig(le.AWS).UpdateAccessKey(t.Context(), &iam.UpdateAccessKeyInput{UserName: aws.String(res.IAMUser),
				AccessKeyId: aws.String(res.Targets[lab.TargetAccessKey]), Status: iamtypes.StatusTypeInactive})
			return err
		},
	}
	for i, change := range changes {
		if err := change(); err != nil {
			t.Fatal(err)
		}
		after := labtest.AWSSnapshot(t, le.AWS)
		if maps.Equal(before, after) {
			t.Errorf("change %d not seen", i)
		}
		before = after
	}
}
