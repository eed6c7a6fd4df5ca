package labtest

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// ResponderKey creates an IAM user with an access key in the test's moto
// account and returns the key. An eksir binary run by a test sends no
// x-moto-account-id header; moto maps a request to the account that holds
// its access key, so these credentials reach the test's own account, as a
// responder's credentials reach theirs.
func (e *Env) ResponderKey(t testing.TB) (id, secret string) {
	t.Helper()
	c := iam.NewFromConfig(e.AWS)
	if _, err := c.CreateUser(t.Context(), &iam.CreateUserInput{UserName: aws.String("eksir-responder")}); err != nil {
		t.Fatalf("create responder user: %v", err)
	}
	k, err := c.CreateAccessKey(t.Context(), &iam.CreateAccessKeyInput{UserName: aws.String("eksir-responder")})
	if err != nil {
		t.Fatalf("create responder key: %v", err)
	}
	return aws.ToString(k.AccessKey.AccessKeyId), aws.ToString(k.AccessKey.SecretAccessKey)
}

// AWSEnv is the environment for an eksir binary that should reach the
// test's moto account: region, endpoint and a responder key of its own.
func (e *Env) AWSEnv(t testing.TB) []string {
	t.Helper()
	id, secret := e.ResponderKey(t)
	return []string{"AWS_REGION=" + e.State.Region, "AWS_ENDPOINT_URL=" + e.State.AWSEndpoint,
		"AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret}
}
