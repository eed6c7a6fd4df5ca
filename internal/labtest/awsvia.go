package labtest

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	eaws "github.com/eksir/eksir/internal/aws"
)

// AWSVia returns an AWS configuration like e.AWS, for the test's moto
// account, that sends every request to endpoint instead of moto: a proxy
// in front of moto, such as internal/awsfault's.
func (e *Env) AWSVia(t testing.TB, endpoint string) aws.Config {
	t.Helper()
	return e.AWSWith(t, eaws.Options{Endpoint: endpoint})
}

// AWSWith returns an AWS configuration for moto and the test's account,
// with o's other settings (a Recorder, a Timeout, a RoleARN, an Endpoint
// for a proxy). Region, credentials and the account header are the lab's.
func (e *Env) AWSWith(t testing.TB, o eaws.Options) aws.Config {
	t.Helper()
	if o.Endpoint == "" {
		o.Endpoint = e.State.AWSEndpoint
	}
	o.Region = e.State.Region
	o.StaticKey, o.StaticSecret = labKey, labSecret
	h := map[string]string{"x-moto-account-id": e.Account}
	for k, v := range o.Headers {
		h[k] = v
	}
	o.Headers = h
	cfg, err := eaws.Load(t.Context(), o)
	if err != nil {
		t.Fatalf("AWS config: %v", err)
	}
	return cfg
}
